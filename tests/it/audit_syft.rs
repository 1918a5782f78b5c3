//! Parity of `reprove audit --list` with syft's Go cataloger (syft v1.57.2,
//! built by `ci/setup-syft`): on the same OCI layout (`syft scan oci-dir:DIR -o
//! syft-json --override-default-catalogers go-module-binary-cataloger`), the
//! same Go binaries at the same paths, and for each the same main module and
//! version and the same dependencies (path, version).
//!
//! The image holds real programs: cosign and syft (each `go install`ed from the
//! Go module proxy by `ci/setup-cosign` and `ci/setup-syft`, hundreds of
//! modules between them), the `sshd` test server built from its fixture module
//! and its real dependencies, and the small programs of `audit_discover` (PE and
//! Mach-O at non-executable paths, a binary replaced by an upper layer, one
//! whited out, one behind an opaque directory).
//!
//! Intended differences, applied to syft's side before comparing:
//! - syft lists a `stdlib` package (the Go version) per binary: not a module, dropped;
//! - syft reports a main module at `(devel)` as `UNKNOWN` when neither `-ldflags`
//!   nor VCS stamps give it a version: mapped back to `(devel)`;
//! - syft makes up a pseudo-version (`v0.0.0-TIME-REV12`) for a `(devel)` main module
//!   from its VCS stamps (`vcs.revision`, `vcs.time`; even with `vcs.modified=true`);
//!   reprove reports what the binary records: equal when TIME and REV12 are the stamps';
//! - a hardlink is one binary with `links` for reprove, a binary per path for syft:
//!   reprove's paths and links are compared with syft's paths;
//! - a hardlink in an upper layer to a file of a lower layer is a file of the final
//!   filesystem (containerd and `oci::unpack` resolve the target in the rootfs), but
//!   syft (stereoscope) does not see it: checked to be absent from syft's list;
//! - a Go binary whose build info was removed is `unverifiable: no build info` for
//!   reprove and invisible to syft: checked to be absent from syft's list.
//!
//! A replaced dependency is compared as syft reports it: the replacement's path and version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use oci::build::LayerCompression;
use serde_json::Value;

use crate::audit_discover::{audit_json, image, layer, programs, E};
use crate::support::harness::build_fixture_program;
use crate::support::{cached_tool, run_ok};

/// Per path: (main module path, version) and the dependencies (path, version).
type Listing = BTreeMap<String, ((String, String), BTreeSet<(String, String)>)>;

fn syft() -> std::path::PathBuf {
    cached_tool("syft/bin/syft", "ci/setup-syft").unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn module(m: &Value) -> (String, String) {
    let m = if m["Replace"].is_object() { &m["Replace"] } else { m };
    (m["Path"].as_str().unwrap_or_default().to_string(), m["Version"].as_str().unwrap_or_default().to_string())
}

fn ours(doc: &Value) -> (Listing, BTreeSet<String>) {
    let mut listing = Listing::new();
    let mut no_build_info = BTreeSet::new();
    for b in doc["platforms"][0]["binaries"].as_array().into_iter().flatten() {
        let mut paths = vec![b["path"].as_str().unwrap_or_default().to_string()];
        paths.extend(b["links"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_string)));
        let bi = &b["buildInfo"];
        if bi.is_null() {
            no_build_info.extend(paths);
            continue;
        }
        let main = module(&bi["Main"]);
        let deps: BTreeSet<(String, String)> = bi["Deps"].as_array().into_iter().flatten().map(module).collect();
        for p in paths {
            listing.insert(p, (main.clone(), deps.clone()));
        }
    }
    (listing, no_build_info)
}

/// For each binary with VCS stamps, the pseudo-version syft makes up from them for a
/// `(devel)` main module: `v0.0.0-YYYYMMDDHHMMSS-<first 12 of vcs.revision>`.
fn vcs_pseudo_versions(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for b in doc["platforms"][0]["binaries"].as_array().into_iter().flatten() {
        let settings = &b["buildInfo"]["Settings"];
        let get = |k: &str| {
            settings.as_array().into_iter().flatten().find(|s| s["Key"] == k).and_then(|s| s["Value"].as_str())
        };
        if let (Some(rev), Some(time)) = (get("vcs.revision"), get("vcs.time")) {
            let stamp: String = time.chars().filter(char::is_ascii_digit).take(14).collect();
            let pseudo = format!("v0.0.0-{stamp}-{}", rev.get(..12).unwrap_or(rev));
            let mut paths = vec![b["path"].as_str().unwrap_or_default().to_string()];
            paths.extend(b["links"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_string)));
            for p in paths {
                out.insert(p, pseudo.clone());
            }
        }
    }
    out
}

fn theirs(doc: &Value) -> Listing {
    let mut mains: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut deps: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for a in doc["artifacts"].as_array().into_iter().flatten() {
        if a["foundBy"] != "go-module-binary-cataloger" || a["name"] == "stdlib" {
            continue;
        }
        let name = a["name"].as_str().unwrap_or_default().to_string();
        let version = a["version"].as_str().unwrap_or_default().to_string();
        let is_main = a["metadata"]["mainModule"].as_str() == Some(name.as_str());
        for l in a["locations"].as_array().into_iter().flatten() {
            let path = l["path"].as_str().unwrap_or_default().to_string();
            deps.entry(path.clone()).or_default();
            if is_main {
                let version = if version == "UNKNOWN" { "(devel)".to_string() } else { version.clone() };
                mains.insert(path, (name.clone(), version));
            } else {
                deps.entry(path).or_default().insert((name.clone(), version.clone()));
            }
        }
    }
    deps.into_iter()
        .map(|(path, d)| {
            let main = mains.get(&path).cloned().unwrap_or_default();
            (path, (main, d))
        })
        .collect()
}

#[test]
fn the_same_go_binaries_and_modules_as_syft() {
    let syft = syft();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = programs();
    let cosign = read(&crate::support::signing::cosign().unwrap_or_else(|e| panic!("{e}")));
    let syft_bytes = read(&syft);
    let sshd = read(&build_fixture_program("sshd", dir.path()));
    let lower = layer(
        &[
            E::File("usr/bin/cosign", 0o755, &cosign),
            E::Link("usr/bin/cosign-same-layer", "usr/bin/cosign"),
            E::File("usr/local/bin/syft", 0o755, &syft_bytes),
            E::File("usr/sbin/sshd-test", 0o755, &sshd),
            E::File("usr/bin/hello", 0o755, &p.hello),
            E::File("usr/bin/replaced", 0o755, &p.hello),
            E::File("usr/bin/true", 0o755, &p.host_true),
            E::File("gone/x", 0o755, &p.hello),
            E::File("opq/y", 0o755, &p.greet),
        ],
        LayerCompression::Gzip,
    );
    let upper = layer(
        &[
            E::Link("usr/bin/cosign-link", "usr/bin/cosign"),
            E::File("opt/win/hello.exe", 0o644, &p.windows),
            E::File("opt/mac/hello", 0o644, &p.darwin),
            E::File("usr/bin/replaced", 0o755, &p.greet),
            E::File("usr/bin/stripped", 0o755, &p.stripped),
            E::File("gone/.wh.x", 0o644, b""),
            E::File("opq/.wh..wh..opq", 0o644, b""),
            E::File("opq/z", 0o755, &p.hello),
        ],
        LayerCompression::Gzip,
    );
    let img = image(vec![lower, upper], "amd64");
    let layout = dir.path().join("layout");
    img.write_layout(&layout, Some("v1")).unwrap_or_else(|e| panic!("{e}"));

    let doc = audit_json(&format!("oci:{}", layout.display()), &[], dir.path());
    let (mut ours, no_build_info) = ours(&doc);

    let mut cmd = Command::new(&syft);
    cmd.current_dir(dir.path())
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("XDG_CACHE_HOME", dir.path().join("syft-cache"))
        .args(["scan", "-q", "-o", "syft-json", "--override-default-catalogers", "go-module-binary-cataloger"])
        .arg(format!("oci-dir:{}", layout.display()));
    let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let syft_doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("syft's JSON: {e}"));
    let theirs = theirs(&syft_doc);

    let paths: BTreeSet<&String> = ours.keys().collect();
    let expected: BTreeSet<&str> = [
        "/opq/z",
        "/opt/mac/hello",
        "/opt/win/hello.exe",
        "/usr/bin/cosign",
        "/usr/bin/cosign-link",
        "/usr/bin/cosign-same-layer",
        "/usr/bin/hello",
        "/usr/bin/replaced",
        "/usr/local/bin/syft",
        "/usr/sbin/sshd-test",
    ]
    .into_iter()
    .collect();
    assert_eq!(paths.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>(), expected);
    drop(paths);
    assert_eq!(no_build_info, ["/usr/bin/stripped".to_string()].into_iter().collect());
    assert!(!theirs.contains_key("/usr/bin/stripped"), "syft saw the binary without build info");
    assert!(!theirs.contains_key("/usr/bin/cosign-link"), "syft now sees hardlinks to a lower layer: compare them");
    assert_eq!(ours.remove("/usr/bin/cosign-link").map(|m| m.0), Some(ours["/usr/bin/cosign"].0.clone()));

    let stamps = vcs_pseudo_versions(&doc);
    let mut diffs = Vec::new();
    for path in ours.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
        match (ours.get(path), theirs.get(path)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let made_up = a.0 .1 == "(devel)" && a.0 .0 == b.0 .0 && stamps.get(path) == Some(&b.0 .1);
                if a.0 != b.0 && !made_up {
                    diffs.push(format!("{path}: main {:?} (reprove) vs {:?} (syft)", a.0, b.0));
                }
                let only_ours: Vec<_> = a.1.difference(&b.1).collect();
                let only_theirs: Vec<_> = b.1.difference(&a.1).collect();
                if !only_ours.is_empty() || !only_theirs.is_empty() {
                    diffs.push(format!("{path}: deps only reprove lists {only_ours:?}, only syft {only_theirs:?}"));
                }
            }
            (Some(_), None) => diffs.push(format!("{path}: only reprove lists it")),
            (None, Some(_)) => diffs.push(format!("{path}: only syft lists it")),
            (None, None) => {}
        }
    }
    assert!(diffs.is_empty(), "reprove and syft differ:\n{}", diffs.join("\n"));
    // Real programs with real dependency lists were compared.
    assert!(ours["/usr/local/bin/syft"].1.len() > 100 && ours["/usr/bin/cosign"].1.len() > 100);
    assert!(!ours["/usr/sbin/sshd-test"].1.is_empty());
}
