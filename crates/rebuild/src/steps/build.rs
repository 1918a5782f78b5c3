//! The `build` step: `go build` with the recipe, in the sandbox.
//!
//! Mounts: the exported source at `/src` (read-only), the verified module
//! cache at `/gocache` keyed by the toolchain digest and the recipe, and by
//! the source's Git tree id too when the recipe makes the build run programs
//! it names (`recipe::exec`: `-toolexec`, `$CC`…). The cache is writable by
//! the build: a build that runs code of its own choosing could plant entries
//! that another source's build would link, so such a build gets a cache of its
//! own. Without such values only the pinned toolchain writes the cache, and
//! it writes an entry only under the action id of its inputs, so sources can
//! share it (a warm verify of a new commit: 5 s, against a cold build's
//! 160 s, BENCHMARKS.md j). The output directory is at `/out`.
//! Environment: the image's, then the recipe's (GOOS, GOARCH, CGO_ENABLED,
//! GOAMD64…), then the pipeline's, which always wins: `GOTOOLCHAIN=local`,
//! `GOPROXY=off`, `GOSUMDB=off`, `GOFLAGS=-mod=readonly` (unless the recipe
//! sets `-mod=` itself), `GOWORK` (the workspace's go.work under `/src`, else
//! `off`), `GOENV=off`, `GOTELEMETRY=off`, the
//! caches, `HOME`. Nothing comes from the host. No network.
//!
//! A released module version is built as `go install PKG@VERSION`
//! ([`install_args`]) so that its build info records `mod PATH VERSION h1:…`:
//! GOPROXY is then the read-only verified cache itself (`file://`, as go
//! looks the version and the latest up even when cached), GOPATH is under
//! `/out` (go refuses GOBIN for cross builds), and the cache is mounted at the
//! recipe's GOMODCACHE when it has one (the reference's, without `-trimpath`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stdx::sha256_hex;

use crate::{RebuildError, Request};
use confined::{self, ConfinedDir, ConfinedError};
use gomod::ModuleVersion;
use modfetch::failure::{classify_output, Tool};
use oci::{PinnedImage, PulledImage};
use recipe::{BuildVcs, Recipe};
use sandbox::{self, CancelToken, Job, JobConfig, Limits, Mount, Network, Status};

/// Where the module cache is mounted in the sandbox.
pub const MODCACHE: &str = "/gomodcache";
/// Where the build cache is mounted.
pub const GOCACHE: &str = "/gocache";
/// Where the source is mounted.
pub const SRC: &str = "/src";
/// Where the output goes.
pub const OUT: &str = "/out";

/// The command and environment of a build, before it runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The arguments after `go`.
    pub go_args: Vec<String>,
    /// The environment the pipeline sets (over the image's).
    pub env: BTreeMap<String, String>,
    /// The build cache directory on the host.
    pub gocache: PathBuf,
    /// The manifest digest of the toolchain image, recorded beside the build
    /// cache so `toolchain gc` can drop caches whose toolchain is gone.
    pub toolchain_manifest: String,
    /// The output file name.
    pub output_name: String,
    /// Where the source is mounted and the build runs (`/src`).
    pub src_mount: String,
    /// The user and group ids the build runs as; `None`: the sandbox's root.
    pub user: Option<(u32, u32)>,
    /// The build's umask; `None`: the runtime's default (022).
    pub umask: Option<u32>,
    /// `go install`: the binary is in GOPATH/bin (or GOPATH/bin/GOOS_GOARCH) below the output.
    pub installed: bool,
    /// Where the module cache is mounted: [`MODCACHE`], or for `go install`
    /// without `-trimpath` the recipe's GOMODCACHE (the reference's).
    pub modcache_mount: String,
}

/// Plans the build of `recipe` in `image`; `go_work`: the workspace's go.work
/// relative to the source root, when the build uses one (`GOWORK` points at it
/// in the sandbox), else `GOWORK=off`; `source_tree`: the Git tree id of the
/// source built (a module's zip sum), part of the build cache's key when the
/// recipe makes the build run programs it names (`recipe.exec`); `module`: a
/// released module version, built as `go install PKG@VERSION` ([`install_args`]).
pub fn plan(
    recipe: &Recipe,
    image: &PulledImage,
    toolchain: &PinnedImage,
    cache_dir: &Path,
    go_work: Option<&str>,
    source_tree: &str,
    module: Option<&ModuleVersion>,
) -> Plan {
    let output_name = if let Some(m) = module {
        let name = recipe::default_output_name(&install_package(&recipe.package, m));
        if recipe.goos == "windows" {
            format!("{name}.exe")
        } else {
            name
        }
    } else if recipe.output_name.is_empty() || recipe.output_name.contains('/') {
        "main".to_string()
    } else {
        recipe.output_name.clone()
    };
    let go_args = match module {
        Some(m) => install_args(recipe, m),
        None => recipe.go_build_args(&format!("{OUT}/{output_name}")),
    };
    let mut env: BTreeMap<String, String> = recipe.build_env().into_iter().collect();
    let user_flags = env.remove("GOFLAGS").unwrap_or_default();
    let goflags = if user_flags.split_whitespace().any(|f| f.starts_with("-mod=")) {
        user_flags
    } else {
        format!("-mod=readonly {user_flags}").trim().to_string()
    };
    for (k, v) in [
        ("GOTOOLCHAIN", "local"),
        ("GOPROXY", "off"),
        ("GOSUMDB", "off"),
        ("GOENV", "off"),
        ("GOTELEMETRY", "off"),
        ("GOMODCACHE", MODCACHE),
        ("GOCACHE", GOCACHE),
        ("GOPATH", "/tmp/gopath"),
        ("HOME", "/tmp"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("GOFLAGS".into(), goflags);
    let mut modcache_mount = MODCACHE.to_string();
    if module.is_some() {
        // Without -trimpath the binary embeds the cache's path: the recipe's
        // GOMODCACHE (the reference's, read from its file table) is where the
        // cache is mounted.
        if let Some(dir) = recipe.env.get("GOMODCACHE").filter(|d| usable_mount(d)) {
            modcache_mount = dir.clone();
            env.insert("GOMODCACHE".into(), dir.clone());
        }
        // `go install PKG@VERSION` looks the version up (and the latest, for
        // deprecations) through GOPROXY even when the cache holds it: the
        // verified cache itself is the proxy, read-only, without network.
        // GOBIN is refused for cross builds: the binary goes to GOPATH/bin
        // (or GOPATH/bin/GOOS_GOARCH).
        env.insert("GOPROXY".into(), format!("file://{modcache_mount}/cache/download"));
        env.insert("GOPATH".into(), format!("{OUT}/{INSTALL_GOPATH}"));
    }
    // Workspace mode: go reads go.work, every workspace module's go.sum and
    // go.work.sum; -mod=readonly is the only -mod it allows besides vendor.
    env.insert("GOWORK".into(), go_work.map_or_else(|| "off".to_string(), |w| format!("{SRC}/{w}")));
    if recipe.buildvcs == BuildVcs::True {
        // go runs git on the checkout; no system or user git configuration applies.
        for (k, v) in [
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "safe.directory"),
            ("GIT_CONFIG_VALUE_0", "*"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
    }
    let gocache = cache_dir.join("gocache").join(cache_key(toolchain, &go_args, &env, isolation(recipe, source_tree)));
    Plan {
        go_args,
        env,
        gocache,
        toolchain_manifest: image.manifest_digest.to_string(),
        output_name,
        src_mount: SRC.to_string(),
        user: None,
        umask: None,
        installed: module.is_some(),
        modcache_mount,
    }
}

/// Whether `dir` may be where the module cache is mounted: absolute and
/// clean, and clear of the sandbox's own places and the other mounts.
fn usable_mount(dir: &str) -> bool {
    let clean = dir.starts_with('/') && dir.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..");
    let first = dir.split('/').nth(1).unwrap_or_default();
    let taken = [SRC, OUT, GOCACHE, "/tmp", "/proc", "/dev", "/sys", "/usr", "/etc"]
        .iter()
        .any(|t| dir == *t || dir.starts_with(&format!("{t}/")) || t.starts_with(&format!("{dir}/")));
    clean && !first.is_empty() && !taken
}

/// GOPATH below the output directory for `go install`.
pub const INSTALL_GOPATH: &str = "gopath";

/// The import path `go install` builds: the recipe's package (`.`, `./cmd/x`
/// relative to the module root, or a full import path) in module `m`.
pub fn install_package(package: &str, m: &ModuleVersion) -> String {
    match package.trim_end_matches('/') {
        "." | "" => m.path.clone(),
        p => match p.strip_prefix("./") {
            Some(rel) => format!("{}/{rel}", m.path),
            None => p.to_string(),
        },
    }
}

/// `go install` with the recipe's flags for `PKG@VERSION` in module `m`:
/// what `go install PATH/CMD@VERSION` runs, so the build info records
/// `mod PATH VERSION h1:…` as the reference's does. `-buildvcs` is left out
/// (the module cache has no VCS information).
pub fn install_args(recipe: &Recipe, m: &ModuleVersion) -> Vec<String> {
    let build = recipe.go_build_args("-");
    let mut args = vec!["install".to_string()];
    // `build -o - FLAGS… PACKAGE`
    let flags = build.get(3..build.len().saturating_sub(1)).unwrap_or_default();
    args.extend(flags.iter().filter(|a| !a.starts_with("-buildvcs=")).cloned());
    args.push(format!("{}@{}", install_package(&recipe.package, m), m.version));
    args
}

/// The source tree that keys the build cache of `recipe`: only a recipe that
/// makes the build run programs it names gets a cache of its own.
fn isolation<'a>(recipe: &Recipe, source_tree: &'a str) -> Option<&'a str> {
    (!recipe.exec.is_empty()).then_some(source_tree)
}

/// The name of the Go build cache directory of a build: toolchain, `go`
/// arguments, environment and, for a build that runs programs the recipe
/// names, the source tree, hashed.
fn cache_key(
    toolchain: &PinnedImage,
    go_args: &[String],
    env: &BTreeMap<String, String>,
    tree: Option<&str>,
) -> String {
    let mut key_material = format!("{}\n{}\n{:?}", toolchain.digest(), go_args.join("\0"), env);
    if let Some(tree) = tree {
        key_material.push_str(&format!("\ntree {tree}"));
    }
    sha256_hex(key_material.as_bytes())[..32].to_string()
}

/// Whether the image has `git` on its PATH (the image's, else the sandbox default).
pub fn has_git(image: &PulledImage) -> bool {
    let path = image.env("PATH").unwrap_or_else(|| sandbox::DEFAULT_PATH.to_string());
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .any(|d| oci::read_file_in_image(image, &format!("{}/git", d.trim_end_matches('/')), 256 << 20).is_ok())
}

/// What the build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The binary on the host.
    pub path: PathBuf,
    /// The runtime that ran the build.
    pub runtime: String,
    /// Its content, read once from the checked file (see [`read_output`]).
    pub bytes: Vec<u8>,
}

fn tail(bytes: &[u8], max_lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// Runs the build.
pub fn run(
    plan: &Plan,
    image: &PulledImage,
    src: &Path,
    modcache: &Path,
    out: &Path,
    req: &Request,
    cancel: &CancelToken,
) -> Result<Built, RebuildError> {
    std::fs::create_dir_all(&plan.gocache).map_err(|e| RebuildError::io("create", &plan.gocache, e))?;
    // Rewritten on every build: its mtime is the cache's last use.
    let marker = oci::build_cache_marker(&plan.gocache);
    std::fs::write(&marker, format!("{}\n", plan.toolchain_manifest))
        .map_err(|e| RebuildError::io("write", &marker, e))?;
    let config = image.config.config().as_ref();
    let mut argv = vec!["go".to_string()];
    argv.extend(plan.go_args.iter().cloned());
    let job = Job::new(JobConfig {
        rootfs: image.rootfs.clone(),
        argv,
        image_env: config.and_then(|c| c.env().clone()).unwrap_or_default(),
        env: plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        workdir: Some(plan.src_mount.clone()),
        mounts: vec![
            Mount::new(src, &plan.src_mount, true)?,
            Mount::new(modcache, &plan.modcache_mount, true)?,
            Mount::new(&plan.gocache, GOCACHE, false)?,
            Mount::new(out, OUT, false)?,
        ],
        network: Network::None,
        limits: Limits { timeout: req.build_timeout, output_cap: 4 << 20, ..Limits::default() },
        echo: req.echo_build,
        user: plan.user,
        umask: plan.umask,
    })?;
    let selection = sandbox::select(req.runtime, &job, cancel)?;
    let outcome = selection.runner.run(&job, cancel)?;
    let runtime = outcome.runtime.name().to_string();
    match outcome.status {
        Status::Exited(0) => {}
        Status::Cancelled => return Err(RebuildError::Cancelled),
        status => {
            let mut output = tail(&outcome.stderr.bytes, 30);
            let stdout = tail(&outcome.stdout.bytes, 10);
            if !stdout.is_empty() {
                output = format!("{stdout}\n{output}");
            }
            let code = match status {
                Status::Exited(c) => Some(c),
                _ => None,
            };
            let diagnosis = classify_output(Tool::Go, code, &output);
            return Err(RebuildError::BuildFailed {
                status: status.to_string(),
                output,
                code: diagnosis.code,
                infrastructure: !matches!(status, Status::Exited(_)),
            });
        }
    }
    // The runner has returned: every process of the sandbox is gone (see
    // `sandbox`'s module docs), so only reprove can write `out` now.
    let path = out.join(&plan.output_name);
    let bytes = if plan.installed {
        read_output(&installed_dir(out, plan)?, &plan.output_name)?
    } else {
        read_output(out, &plan.output_name)?
    };
    Ok(Built { path, runtime, bytes })
}

/// Where `go install` put the binary below `out`: GOPATH/bin, or
/// GOPATH/bin/GOOS_GOARCH for a cross build. Each directory on the way must be
/// a directory, not a link (the build wrote them; no process of it is left).
fn installed_dir(out: &Path, plan: &Plan) -> Result<PathBuf, RebuildError> {
    let bin = out.join(INSTALL_GOPATH).join("bin");
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir());
    for dir in [out.join(INSTALL_GOPATH), bin.clone()] {
        if !real_dir(&dir) {
            if std::fs::symlink_metadata(&dir).is_ok() {
                let reason =
                    ConfinedError::NotRegular { path: dir.display().to_string(), kind: "symlink or non-directory" };
                return Err(RebuildError::OutputTampered { path: dir, reason });
            }
            return Err(RebuildError::NoOutput(bin.join(&plan.output_name)));
        }
    }
    if std::fs::symlink_metadata(bin.join(&plan.output_name)).is_ok() {
        return Ok(bin);
    }
    let platform = format!(
        "{}_{}",
        plan.env.get("GOOS").map_or("", String::as_str),
        plan.env.get("GOARCH").map_or("", String::as_str)
    );
    let cross = bin.join(platform);
    if std::fs::symlink_metadata(&cross).is_ok() && !real_dir(&cross) {
        let reason = ConfinedError::NotRegular { path: cross.display().to_string(), kind: "symlink or non-directory" };
        return Err(RebuildError::OutputTampered { path: cross, reason });
    }
    Ok(cross)
}

/// The largest build output reprove reads: far above any Go binary.
pub const OUTPUT_LIMIT: u64 = 2 << 30;

/// Reads the output `name` from `out` once: one name in the directory, not
/// followed if a symlink, a regular file with a single link, at most
/// [`OUTPUT_LIMIT`] bytes. Anything else is [`RebuildError::OutputTampered`].
pub fn read_output(out: &Path, name: &str) -> Result<Vec<u8>, RebuildError> {
    read_output_limited(out, name, OUTPUT_LIMIT)
}

fn read_output_limited(out: &Path, name: &str, limit: u64) -> Result<Vec<u8>, RebuildError> {
    let path = out.join(name);
    let tampered = |reason| RebuildError::OutputTampered { path: path.clone(), reason };
    let dir = ConfinedDir::open(out).map_err(|e| match e {
        ConfinedError::Io { source, .. } => RebuildError::io("open", out, source),
        e => tampered(e),
    })?;
    let read = dir.open_single(name, limit).and_then(|file| confined::read_bounded(file, name, limit));
    match read {
        Ok(bytes) => Ok(bytes),
        Err(ConfinedError::NotFound { .. }) => Err(RebuildError::NoOutput(path)),
        Err(ConfinedError::Io { source, .. }) => Err(RebuildError::io("read", &path, source)),
        Err(e) => Err(tampered(e)),
    }
}

/// With `--keep`: the kept binary is exactly the bytes that were judged,
/// written to a new file and renamed over the output.
pub fn keep_output(out: &Path, name: &str, bytes: &[u8]) -> Result<(), RebuildError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = out.join(format!(".{name}.reprove-kept"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| RebuildError::io("create", &tmp, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| RebuildError::io("write", &tmp, e))?;
    let path = out.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| RebuildError::io("rename into", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, Code};

    fn out() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(t.path().join("reference"), b"the reference").unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(t.path().join("out")).unwrap_or_else(|e| panic!("{e}"));
        t
    }

    fn tampered(r: Result<Vec<u8>, RebuildError>, what: &str) {
        match r {
            Err(e @ RebuildError::OutputTampered { .. }) => {
                assert_eq!((e.class(), e.code()), (Class::Security, Code::OutputTampered), "{what}");
                assert!(e.to_string().contains("tampered"), "{what}: {e}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    #[test]
    fn the_output_must_be_a_regular_single_linked_file_within_the_limit() {
        let t = out();
        let dir = t.path().join("out");
        std::fs::write(dir.join("app"), b"\x7fELF built").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_output(&dir, "app").ok(), Some(b"\x7fELF built".to_vec()));
        tampered(read_output_limited(&dir, "app", 4), "too large");
        std::fs::hard_link(dir.join("app"), dir.join("second")).unwrap_or_else(|e| panic!("{e}"));
        tampered(read_output(&dir, "app"), "hard link");
        std::os::unix::fs::symlink(t.path().join("reference"), dir.join("sym")).unwrap_or_else(|e| panic!("{e}"));
        tampered(read_output(&dir, "sym"), "symlink");
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        tampered(read_output(&dir, "fifo"), "fifo");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        std::fs::create_dir(dir.join("d")).unwrap_or_else(|e| panic!("{e}"));
        tampered(read_output(&dir, "d"), "directory");
        assert!(matches!(read_output(&dir, "missing"), Err(RebuildError::NoOutput(_))));
        // The output directory itself replaced by a symlink.
        std::os::unix::fs::symlink(&dir, t.path().join("out-link")).unwrap_or_else(|e| panic!("{e}"));
        tampered(read_output(&t.path().join("out-link"), "app"), "directory symlink");
    }

    #[test]
    fn the_kept_binary_is_the_judged_bytes() {
        let t = out();
        let dir = t.path().join("out");
        std::os::unix::fs::symlink(t.path().join("reference"), dir.join("app")).unwrap_or_else(|e| panic!("{e}"));
        keep_output(&dir, "app", b"judged").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_output(&dir, "app").ok(), Some(b"judged".to_vec()));
        assert_eq!(std::fs::read(t.path().join("reference")).ok(), Some(b"the reference".to_vec()));
    }

    /// Two sources with the same recipe and toolchain never share a build cache.
    #[test]
    fn the_cache_key_depends_on_the_source_tree() {
        let toolchain = toolchain_for_test();
        let args = Recipe::new(".", "linux", "amd64").go_build_args("/out/main");
        let env = BTreeMap::from([("GOFLAGS".to_string(), "-toolexec=/src/tools/wrap".to_string())]);
        let (a, b) = ("1".repeat(40), "2".repeat(40));
        let key = |tree: &str| cache_key(&toolchain, &args, &env, Some(tree));
        assert_ne!(key(&a), key(&b));
        assert_ne!(cache_key(&toolchain, &args, &env, None), key(&a));
        assert_eq!(key(&a), key(&a));
        assert_eq!(key(&a).len(), 32);
        let other: PinnedImage = match format!("127.0.0.1:5000/go:1@sha256:{}", "b".repeat(64)).parse() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_ne!(cache_key(&other, &args, &env, Some(&a)), key(&a));
    }

    /// Only a recipe that runs programs it names isolates its cache by source.
    #[test]
    fn only_builds_that_run_what_the_recipe_names_get_a_cache_of_their_own() {
        use recipe::{merge, Origin, Partial, Sourced};
        let with_goflags = |goflags: &str| {
            let env = [("GOFLAGS".to_string(), Sourced::new(goflags.to_string(), Origin::Flag))].into();
            merge(&[Partial { env, ..Partial::default() }])
        };
        let r = with_goflags("-trimpath");
        assert!(r.exec.is_empty());
        let with_exec = with_goflags("-toolexec=/src/w");
        assert_eq!(with_exec.exec.len(), 1);
        let key = |r: &Recipe, tree: &str| {
            let go_args = r.go_build_args("/out/main");
            let env: BTreeMap<String, String> = r.build_env().into_iter().collect();
            cache_key(&toolchain_for_test(), &go_args, &env, isolation(r, tree))
        };
        assert_eq!(key(&r, "1"), key(&r, "2"), "no program named: shared");
        assert_ne!(key(&with_exec, "1"), key(&with_exec, "2"), "a program named: per source");
    }

    /// A released module version is built as `go install PKG@VERSION`, without
    /// `-buildvcs`, the binary named as go install names it.
    #[test]
    fn a_module_is_built_with_go_install_at_its_version() {
        let m = ModuleVersion { path: "example.com/tool/v2".into(), version: "v2.1.0".into() };
        let mut r = Recipe::new("./cmd/tool", "linux", "amd64");
        r.trimpath = true;
        r.ldflags = Some("-s -w".into());
        assert_eq!(install_package(".", &m), "example.com/tool/v2");
        assert_eq!(install_package("./cmd/tool/", &m), "example.com/tool/v2/cmd/tool");
        assert_eq!(install_package("example.com/tool/v2/cmd/x", &m), "example.com/tool/v2/cmd/x");
        assert_eq!(
            install_args(&r, &m),
            ["install", "-trimpath", "-ldflags=-s -w", "example.com/tool/v2/cmd/tool@v2.1.0"]
        );
        for (dir, ok) in
            [("/home/builder/go/pkg/mod", true), ("/home/u/go/pkg/mod", true), ("/src/x", false), ("/out", false)]
        {
            assert_eq!(usable_mount(dir), ok, "{dir}");
        }
        for dir in ["relative", "/a/../b", "/a//b", "/", "/tmp/mod", "/usr/local/go/pkg", "/proc/1"] {
            assert!(!usable_mount(dir), "{dir}");
        }
    }

    fn toolchain_for_test() -> PinnedImage {
        match format!("127.0.0.1:5000/go:1@sha256:{}", "a".repeat(64)).parse() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }
}
