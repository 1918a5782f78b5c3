//! The crate layout's dependency rules (ARCHITECTURE.md, "Dependency rules"),
//! read from `cargo metadata` and the crates' sources. Each workspace crate
//! names its layer in `[package.metadata.reprove] layer`; dependencies run one
//! way: leaf → stage → pipeline → binary, with servers beside the pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Leaf,
    Stage,
    Pipeline,
    Server,
    Binary,
}

impl Layer {
    fn parse(s: &str) -> Option<Layer> {
        Some(match s {
            "leaf" => Layer::Leaf,
            "stage" => Layer::Stage,
            "pipeline" => Layer::Pipeline,
            "server" => Layer::Server,
            "binary" => Layer::Binary,
            _ => return None,
        })
    }

    /// Whether a crate of this layer may depend on one of `dep`'s.
    fn may_use(self, dep: Layer) -> bool {
        match self {
            Layer::Leaf => dep == Layer::Leaf,
            Layer::Stage => matches!(dep, Layer::Leaf | Layer::Stage),
            Layer::Pipeline | Layer::Server => matches!(dep, Layer::Leaf | Layer::Stage),
            Layer::Binary => dep != Layer::Binary,
        }
    }
}

/// The workspace as the rules see it.
#[derive(Debug, Clone)]
struct Workspace {
    /// Workspace crate → its layer (`None`: missing or unknown) and source directory.
    members: BTreeMap<String, (Option<Layer>, PathBuf)>,
    /// Crate → the crates it depends on for its library or binary (not dev-dependencies).
    deps: BTreeMap<String, BTreeSet<String>>,
}

/// External crates that talk to a network or a Git repository.
const NETWORK: &[&str] = &["reqwest", "hyper", "oci-client", "git2", "libgit2-sys"];
/// Crates a server may not link, directly or through others.
const NOT_FOR_SERVERS: &[&str] = &["rebuild", "sandbox", "source", "git2"];
/// Crates that do file or network I/O, which `attest` may not link.
const NOT_FOR_ATTEST: &[&str] = &["oci", "modfetch", "source", "sandbox", "rebuild", "confined"];

impl Workspace {
    fn load() -> Workspace {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let run = |args: &[&str]| {
            let out = Command::new(&cargo)
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap_or_else(|e| panic!("cargo {args:?}: {e}"));
            assert!(out.status.success(), "cargo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let meta: Value = serde_json::from_str(&run(&["metadata", "--format-version", "1", "--no-deps", "--offline"]))
            .unwrap_or_else(|e| panic!("cargo metadata output: {e}"));
        // What each crate links on this platform, with the features really enabled
        // (cargo metadata's resolve lists optional dependencies that are off).
        let tree = run(&[
            "tree",
            "--workspace",
            "--locked",
            "--offline",
            "-e",
            "normal,build",
            "--prefix",
            "depth",
            "-f",
            "{p}",
        ]);
        Workspace::from_parts(&meta, &tree)
    }

    fn from_parts(meta: &Value, tree: &str) -> Workspace {
        let mut ws = Workspace { members: BTreeMap::new(), deps: BTreeMap::new() };
        for p in meta["packages"].as_array().into_iter().flatten() {
            let Some(name) = p["name"].as_str() else { continue };
            let layer = p["metadata"]["reprove"]["layer"].as_str().and_then(Layer::parse);
            let dir = Path::new(p["manifest_path"].as_str().unwrap_or_default())
                .parent()
                .map(|d| d.join("src"))
                .unwrap_or_default();
            ws.members.insert(name.to_string(), (layer, dir));
        }
        // Lines are `<depth><name> v<version> …`; a line's parent is the last line one level up.
        let mut stack: Vec<String> = Vec::new();
        for line in tree.lines() {
            let digits = line.bytes().take_while(u8::is_ascii_digit).count();
            let (Ok(depth), Some(name)) = (line[..digits].parse::<usize>(), line[digits..].split_whitespace().next())
            else {
                continue;
            };
            stack.truncate(depth);
            if let Some(parent) = stack.last() {
                ws.deps.entry(parent.clone()).or_default().insert(name.to_string());
            }
            stack.push(name.to_string());
        }
        ws
    }

    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            for d in self.deps.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }

    /// Every broken rule, as a sentence.
    fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (name, (layer, _)) in &self.members {
            let Some(layer) = layer else {
                v.push(format!("{name}: no [package.metadata.reprove] layer (leaf, stage, pipeline, server, binary)"));
                continue;
            };
            let direct = self.deps.get(name).cloned().unwrap_or_default();
            for dep in &direct {
                if let Some((Some(dl), _)) = self.members.get(dep) {
                    if !layer.may_use(*dl) {
                        v.push(format!(
                            "{name} ({layer:?}) depends on {dep} ({dl:?}): dependencies run leaf → stage → pipeline → binary"
                        ));
                    }
                }
            }
            let closure = self.closure(name);
            if name == "goinfo" {
                for dep in direct.iter().filter(|d| self.members.contains_key(*d)) {
                    v.push(format!("goinfo depends on {dep}: it depends on no crate of ours"));
                }
            }
            if name == "attest" {
                for bad in NOT_FOR_ATTEST.iter().chain(NETWORK).filter(|b| closure.contains(**b)) {
                    v.push(format!("attest links {bad}: it does no network or file I/O"));
                }
            }
            if name != "oci" && direct.contains("oci-client") {
                v.push(format!("{name} depends on oci-client: only the oci crate talks to registries"));
            }
            if *layer == Layer::Server {
                for bad in NOT_FOR_SERVERS.iter().filter(|b| closure.contains(**b)) {
                    v.push(format!("{name} (server) links {bad}: servers never rebuild, run sandboxes or clone"));
                }
            }
        }
        v
    }
}

/// Non-test Rust source of a crate: each file up to its `#[cfg(test)]` module.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                // The test module is the file's last item, by convention.
                let end = text
                    .match_indices("#[cfg(test)]\n")
                    .map(|(i, m)| i + m.len())
                    .find(|&i| {
                        text[i..]
                            .lines()
                            .next()
                            .is_some_and(|l| l.trim_start().starts_with("mod ") || l.contains(") mod "))
                    })
                    .unwrap_or(text.len());
                let code = text[..end].to_string();
                out.push((p, code));
            }
        }
    }
    out
}

/// Lines that start a process, or do file or network I/O, where the rules forbid it.
fn source_violations(ws: &Workspace) -> Vec<String> {
    let mut v = Vec::new();
    for (name, (_, dir)) in &ws.members {
        for (path, code) in sources(dir) {
            for (i, line) in code.lines().enumerate() {
                let at = || {
                    format!("{}:{}", path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&path).display(), i + 1)
                };
                let starts = line.contains(".spawn()")
                    || line.contains(".output()")
                    || line.contains("Command::new(") && line.contains(".status()");
                if starts && name != "sandbox" && name != "reprove" {
                    v.push(format!("{}: starts a process: only the sandbox crate does", at()));
                }
                let runtime =
                    ["new_current_thread()", "new_multi_thread()", "Runtime::new()"].iter().any(|t| line.contains(t));
                if runtime && name != "reprove" {
                    v.push(format!("{}: builds an async runtime: libraries run on the caller's", at()));
                }
                let io =
                    ["std::fs", "std::net", "File::open", "File::create", "tokio::"].iter().any(|t| line.contains(t));
                if name == "attest" && io {
                    v.push(format!("{}: file or network I/O in attest", at()));
                }
            }
        }
    }
    v
}

#[test]
fn dependencies_follow_the_rules() {
    let ws = Workspace::load();
    assert!(ws.members.len() >= 14, "the workspace: {:?}", ws.members.keys());
    let mut v = ws.violations();
    v.extend(source_violations(&ws));
    assert!(v.is_empty(), "dependency rules broken:\n{}", v.join("\n"));
}

#[test]
fn a_forbidden_edge_is_caught() {
    let ws = Workspace::load();
    let broken = |edit: &dyn Fn(&mut Workspace)| {
        let mut w = ws.clone();
        edit(&mut w);
        w.violations()
    };
    let add = |from: &'static str, to: &'static str| {
        move |w: &mut Workspace| {
            w.deps.entry(from.into()).or_default().insert(to.into());
        }
    };
    type Edit<'a> = &'a dyn Fn(&mut Workspace);
    let cases: [(Edit, &str); 6] = [
        (&add("goinfo", "stdx"), "goinfo depends on stdx"),
        (&add("stdx", "compare"), "stdx (Leaf) depends on compare (Stage)"),
        (&add("compare", "rebuild"), "compare (Stage) depends on rebuild (Pipeline)"),
        (&add("attest", "reqwest"), "attest links reqwest"),
        (&add("gomod", "oci-client"), "gomod depends on oci-client"),
        (
            &|w: &mut Workspace| {
                w.members.insert("audit".into(), (Some(Layer::Server), PathBuf::new()));
                w.deps.entry("audit".into()).or_default().insert("rebuild".into());
            },
            "audit (server) links sandbox",
        ),
    ];
    for (edit, want) in cases {
        let v = broken(edit);
        assert!(v.iter().any(|m| m.contains(want)), "no {want:?} in {v:?}");
    }
    let mut w = ws.clone();
    if let Some(m) = w.members.get_mut("report") {
        m.0 = None;
    }
    assert!(w.violations().iter().any(|m| m.contains("report: no [package.metadata.reprove] layer")));
}

#[test]
fn a_process_started_outside_the_sandbox_is_caught() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        src.join("lib.rs"),
        "fn f() { let _ = std::process::Command::new(\"go\").output(); let _ = std::fs::read(\"x\"); }\nfn g() { tokio::runtime::Builder::new_current_thread(); }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ws = Workspace {
        members: BTreeMap::from([("attest".to_string(), (Some(Layer::Stage), src))]),
        deps: BTreeMap::new(),
    };
    let v = source_violations(&ws);
    assert!(v.iter().any(|m| m.contains("starts a process")), "{v:?}");
    assert!(v.iter().any(|m| m.contains("I/O in attest")), "{v:?}");
    assert!(v.iter().any(|m| m.contains("builds an async runtime")), "{v:?}");
}
