//! `reprove toolchain lock` against a real registry on 127.0.0.1 with a
//! toolchain image built by reprove from a GOROOT on this machine: the lock
//! file pins the pushed digest, a Go version the image does not contain is
//! refused (exit 2, file untouched), updates keep other entries, and the
//! lookup API names a missing version.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use recipe::lock::{LockError, LockFile, LOCK_FILE_NAME};

use crate::support::{self, registry};

use registry::Registry;
use support::{reprove_toolchain_cmd, run, run_ok, RUN_SETUP};

/// The smallest Debian Go toolchain `ci/setup` installs.
fn goroot() -> PathBuf {
    ["/usr/lib/go-1.21", "/usr/lib/go-1.22", "/usr/lib/go-1.23", "/usr/lib/go-1.19"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("bin/go").is_file())
        .unwrap_or_else(|| panic!("no Debian Go toolchain in /usr/lib/go-1.2x: {RUN_SETUP}"))
}

#[test]
fn lock_pins_the_digest_and_checks_the_go_version() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache").display().to_string();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let repo_s = repo.display().to_string();
    let goroot = goroot();
    let version = std::fs::read_to_string(goroot.join("VERSION")).unwrap().lines().next().unwrap().to_string();
    let tag = format!("{}/toolchains/go:{}", registry.addr, version.trim_start_matches("go"));

    let built = run_ok(&mut reprove_toolchain_cmd(&[
        "toolchain",
        "build",
        "--goroot",
        &goroot.display().to_string(),
        "--tag",
        &tag,
        "--push",
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let built: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    let digest = built["digest"].as_str().unwrap().to_string();

    // A version the image does not contain: refused, exit 2, no file written.
    let wrong =
        run(&mut reprove_toolchain_cmd(&["toolchain", "lock", "go1.99.0", &tag, "-C", &repo_s, "--cache-dir", &cache]))
            .unwrap();
    assert_eq!(wrong.status, Some(2), "{}", wrong.stderr_str());
    assert!(wrong.stderr_str().contains(&version) && wrong.stderr_str().contains("go1.99.0"), "{}", wrong.stderr_str());
    assert!(!repo.join(LOCK_FILE_NAME).exists());

    // An older entry survives the update.
    let other = format!("127.0.0.1:1/toolchains/go:1.20.0@sha256:{}", "ab".repeat(32));
    std::fs::write(repo.join(LOCK_FILE_NAME), format!("[toolchains]\n\"go1.20.0\" = \"{other}\"\n")).unwrap();

    let ok = run_ok(&mut reprove_toolchain_cmd(&[
        "toolchain",
        "lock",
        &version,
        &tag,
        "-C",
        &repo_s,
        "--cache-dir",
        &cache,
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let pinned = format!("{tag}@{digest}");
    assert!(ok.stdout_str().contains(&pinned), "{}", ok.stdout_str());
    let lock = LockFile::load(&repo).unwrap().expect("reprove.lock written");
    assert_eq!(lock.toolchain(&version).unwrap().to_string(), pinned);
    assert_eq!(lock.toolchain("go1.20.0").unwrap().to_string(), other);
    assert_eq!(lock.toolchain(&version).unwrap().digest().to_string(), digest);
    match lock.toolchain("go1.30.1") {
        Err(e @ LockError::MissingVersion { .. }) => assert!(e.to_string().contains("go1.30.1"), "{e}"),
        other => panic!("{other:?}"),
    }
    let files: Vec<_> = std::fs::read_dir(&repo).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "temporary files left: {files:?}");

    // Locking again (cached pull) gives the same file.
    let before = std::fs::read(repo.join(LOCK_FILE_NAME)).unwrap();
    run_ok(&mut reprove_toolchain_cmd(&["toolchain", "lock", &version, &pinned, "-C", &repo_s, "--cache-dir", &cache]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(repo.join(LOCK_FILE_NAME)).unwrap(), before);
}
