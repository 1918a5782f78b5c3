//! Recipe inference against the real `go`: build a fixture with a matrix of
//! flag sets, infer the recipe from each binary's build info, rebuild with the
//! host `go` from `Recipe::go_build_args` and `Recipe::build_env` in the same
//! directory, and require the same sha256.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use goinfo::read_build_info_file;
use recipe::{infer, BuildVcs, Origin};
use sha2::{Digest, Sha256};

use crate::support;

use support::{hermetic_go_env, run_ok, Failures, RUN_SETUP};

const MAIN_GO: &str = r#"package main

import (
	"fmt"
	"os"
)

var v = "dev"

func main() { fmt.Println("fixture", v, len(os.Args)) }
"#;

const TAGGED_GO: &str = r#"//go:build a && b

package main

func init() { v += "+ab" }
"#;

/// Writes a CPU profile to its argument: the fixture's `default.pgo`.
const PROFILE_GO: &str = r#"package main

import (
	"os"
	"runtime/pprof"
	"time"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	n := 0
	for t := time.Now(); time.Since(t) < 200*time.Millisecond; {
		n++
	}
	pprof.StopCPUProfile()
	f.Close()
}
"#;

/// Variables that must reach a build only through the case or the recipe.
const SCRUB: &[&str] = &[
    "GOOS",
    "GOARCH",
    "GOAMD64",
    "GOARM",
    "GOARM64",
    "GO386",
    "GOMIPS",
    "GOMIPS64",
    "GOPPC64",
    "GORISCV64",
    "GOWASM",
    "GOEXPERIMENT",
    "CGO_ENABLED",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_LDFLAGS",
];

fn go(dir: &Path) -> Command {
    go_at("go", dir)
}

fn go_at(go: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(go);
    hermetic_go_env(&mut cmd).current_dir(dir);
    for k in SCRUB {
        cmd.env_remove(k);
    }
    cmd
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    format!("{:x}", Sha256::digest(bytes))
}

/// The fixture module, committed to a Git repository so that the default
/// build stamps `vcs.*`, with a `default.pgo` in `cmd/app` so that Go's
/// default `-pgo=auto` uses it.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("recipe-infer").tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("cmd/app")).expect("mkdir");
    std::fs::write(root.join("go.mod"), "module example.com/fixture\n\ngo 1.21\n").expect("go.mod");
    std::fs::write(root.join("main.go"), MAIN_GO).expect("main.go");
    std::fs::write(root.join("cmd/app/main.go"), MAIN_GO).expect("main.go");
    std::fs::write(root.join("cmd/app/tagged.go"), TAGGED_GO).expect("tagged.go");
    let gen = tempfile::tempdir().expect("tempdir");
    std::fs::write(gen.path().join("go.mod"), "module example.com/profile\n\ngo 1.21\n").expect("go.mod");
    std::fs::write(gen.path().join("main.go"), PROFILE_GO).expect("main.go");
    run_ok(go(gen.path()).args(["run", "."]).arg(root.join("cmd/app/default.pgo")))
        .unwrap_or_else(|e| panic!("writing a CPU profile failed ({RUN_SETUP}): {e}"));
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "fixture"],
    ] {
        let mut cmd = Command::new("git");
        cmd.current_dir(root)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
            .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z");
        run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

struct Case {
    name: &'static str,
    package: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// `-ldflags` the case passed (`""` for none) that Go did not record
    /// because of `-trimpath`: the only thing the test supplies to the
    /// inferred recipe.
    unrecorded_ldflags: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case { name: "default", package: "./cmd/app", args: &[], env: &[], unrecorded_ldflags: None },
    Case { name: "root package", package: ".", args: &[], env: &[], unrecorded_ldflags: None },
    Case { name: "trimpath", package: "./cmd/app", args: &["-trimpath"], env: &[], unrecorded_ldflags: Some("") },
    Case { name: "tags a,b", package: "./cmd/app", args: &["-tags", "a,b"], env: &[], unrecorded_ldflags: None },
    Case {
        name: "ldflags",
        package: "./cmd/app",
        args: &["-ldflags", "-s -w -X main.v=1"],
        env: &[],
        unrecorded_ldflags: None,
    },
    Case {
        name: "ldflags with trimpath (not recorded by Go)",
        package: "./cmd/app",
        args: &["-trimpath", "-ldflags", "-s -w -X main.v=1"],
        env: &[],
        unrecorded_ldflags: Some("-s -w -X main.v=1"),
    },
    Case {
        name: "CGO_ENABLED=0",
        package: "./cmd/app",
        args: &[],
        env: &[("CGO_ENABLED", "0")],
        unrecorded_ldflags: None,
    },
    Case { name: "GOAMD64=v3", package: "./cmd/app", args: &[], env: &[("GOAMD64", "v3")], unrecorded_ldflags: None },
    Case {
        name: "GOARCH=arm64",
        package: "./cmd/app",
        args: &[],
        env: &[("GOARCH", "arm64")],
        unrecorded_ldflags: None,
    },
    Case {
        name: "GOARCH=arm GOARM=6",
        package: "./cmd/app",
        args: &[],
        env: &[("GOARCH", "arm"), ("GOARM", "6")],
        unrecorded_ldflags: None,
    },
    Case {
        name: "GOOS=windows (default pie)",
        package: "./cmd/app",
        args: &[],
        env: &[("GOOS", "windows")],
        unrecorded_ldflags: None,
    },
    Case { name: "buildmode=pie", package: "./cmd/app", args: &["-buildmode=pie"], env: &[], unrecorded_ldflags: None },
    Case { name: "gcflags -N -l", package: "./cmd/app", args: &["-gcflags=-N -l"], env: &[], unrecorded_ldflags: None },
    Case {
        name: "buildvcs=false",
        package: "./cmd/app",
        args: &["-buildvcs=false"],
        env: &[],
        unrecorded_ldflags: None,
    },
    Case {
        name: "everything",
        package: "./cmd/app",
        args: &["-trimpath", "-tags=a,b", "-gcflags=all=-N -l", "-buildmode=pie"],
        env: &[("CGO_ENABLED", "0"), ("GOAMD64", "v2")],
        unrecorded_ldflags: Some(""),
    },
];

#[test]
fn inferred_recipe_rebuilds_bit_identical() {
    let dir = fixture();
    let root = dir.path();
    // Outputs outside the repository, or the tree would be modified.
    let outs = tempfile::tempdir().expect("tempdir");
    let mut failures = Failures::new("recipe inference rebuilds");
    for (i, case) in CASES.iter().enumerate() {
        failures.case();
        let reference = outs.path().join(format!("ref-{i}"));
        let mut build = go(root);
        build.arg("build").arg("-o").arg(&reference).args(case.args).arg(case.package);
        for (k, v) in case.env {
            build.env(k, v);
        }
        if let Err(e) = run_ok(&mut build) {
            panic!("building the reference failed ({RUN_SETUP}): {e}");
        }
        let bi = read_build_info_file(&reference).expect("build info");
        let mut recipe = infer(&bi);
        if recipe.package != case.package {
            failures.fail(case.name, format!("package {:?}, want {:?}", recipe.package, case.package));
            continue;
        }
        let ldflags_undetermined = recipe.undetermined.iter().any(|u| u.field == "ldflags");
        match case.unrecorded_ldflags {
            Some(ld) => {
                if !ldflags_undetermined {
                    failures.fail(case.name, "ldflags under -trimpath should be undetermined");
                    continue;
                }
                recipe.ldflags = Some(ld.to_string()).filter(|s| !s.is_empty());
                recipe.undetermined.retain(|u| u.field != "ldflags");
            }
            None if ldflags_undetermined => {
                failures.fail(case.name, format!("unexpected undetermined ldflags: {:?}", recipe.undetermined));
                continue;
            }
            None => {}
        }
        if recipe.trimpath {
            // Nor does Go record the cgo flags under -trimpath; the test never
            // sets them (SCRUB), so "none" is the known value.
            recipe.undetermined.retain(|u| u.field != "cgo-flags");
        }
        if !recipe.undetermined.is_empty() {
            failures.fail(case.name, format!("undetermined: {:?}", recipe.undetermined));
            continue;
        }
        if let Some(field) = ["package", "goos", "goarch", "trimpath", "buildvcs", "go_version"]
            .iter()
            .find(|f| !matches!(recipe.origins.get(**f), Some(Origin::Reference(_))))
        {
            failures.fail(case.name, format!("{field} not from the reference: {:?}", recipe.origins.get(*field)));
        }
        let rebuilt = outs.path().join(format!("rebuilt-{i}"));
        let mut rebuild = go(root);
        rebuild.args(recipe.go_build_args(&rebuilt.to_string_lossy()));
        rebuild.envs(recipe.build_env());
        if let Err(e) = run_ok(&mut rebuild) {
            failures.fail(case.name, format!("rebuild failed: {e}"));
            continue;
        }
        let (a, b) = (sha256(&reference), sha256(&rebuilt));
        if a != b {
            failures.fail(
                case.name,
                format!("sha256 differs: reference {a}, rebuilt {b}\nrecipe: {}", recipe.command_line("OUT")),
            );
        }
    }
    failures.assert_none();
}

/// Older Go releases record less (no `-pgo` before 1.20, `DefaultGODEBUG`
/// from 1.21): the recipe inferred from their binaries rebuilds them too,
/// with the toolchain its Go version names.
#[test]
fn older_toolchains_rebuild_bit_identical() {
    let toolchains: Vec<PathBuf> = ["/usr/lib/go-1.19", "/usr/lib/go-1.21"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.join("bin/go").is_file())
        .collect();
    assert!(!toolchains.is_empty(), "no Debian Go toolchain in /usr/lib/go-1.19 or go-1.21: {RUN_SETUP}");
    let dir = fixture();
    let root = dir.path();
    // Older toolchains refuse a go.mod that asks for a newer Go.
    std::fs::write(root.join("go.mod"), "module example.com/fixture\n\ngo 1.18\n").expect("go.mod");
    let outs = tempfile::tempdir().expect("tempdir");
    let mut failures = Failures::new("recipe inference rebuilds with older Go");
    type OldCase = (&'static str, &'static [&'static str], &'static [(&'static str, &'static str)]);
    let cases: &[OldCase] = &[
        ("default", &["-buildvcs=false"], &[]),
        ("trimpath tags", &["-buildvcs=false", "-trimpath", "-tags=a,b"], &[("CGO_ENABLED", "0"), ("GOAMD64", "v2")]),
        ("ldflags gcflags", &["-buildvcs=false", "-ldflags=-s -X main.v=2", "-gcflags=-N -l"], &[]),
    ];
    for goroot in &toolchains {
        let gobin = goroot.join("bin/go");
        let version = std::fs::read_to_string(goroot.join("VERSION")).expect("VERSION");
        let version = version.lines().next().unwrap_or_default().to_string();
        for (i, (name, args, env)) in cases.iter().enumerate() {
            failures.case();
            let case = format!("{version} {name}");
            let reference = outs.path().join(format!("{version}-ref-{i}"));
            let mut build = go_at(&gobin, root);
            build.arg("build").arg("-o").arg(&reference).args(*args).arg("./cmd/app");
            build.envs(env.iter().copied());
            run_ok(&mut build).unwrap_or_else(|e| panic!("{e}"));
            let mut recipe = infer(&read_build_info_file(&reference).expect("build info"));
            if recipe.trimpath {
                // Go did not record -ldflags or cgo flags; the -trimpath case passes none.
                recipe.undetermined.retain(|u| u.field != "ldflags" && u.field != "cgo-flags");
            }
            if recipe.go_version.as_deref() != Some(version.as_str()) {
                failures.fail(&case, format!("go version {:?}", recipe.go_version));
                continue;
            }
            if !recipe.undetermined.is_empty() {
                failures.fail(&case, format!("undetermined: {:?}", recipe.undetermined));
                continue;
            }
            let rebuilt = outs.path().join(format!("{version}-rebuilt-{i}"));
            let mut rebuild = go_at(&gobin, root);
            rebuild.args(recipe.go_build_args(&rebuilt.to_string_lossy())).envs(recipe.build_env());
            if let Err(e) = run_ok(&mut rebuild) {
                failures.fail(&case, format!("rebuild failed: {e}"));
                continue;
            }
            if sha256(&reference) != sha256(&rebuilt) {
                failures.fail(&case, format!("sha256 differs; recipe: {}", recipe.command_line("OUT")));
            }
        }
    }
    failures.assert_none();
}

#[test]
fn vcs_stamping_and_go_version_are_inferred() {
    let dir = fixture();
    let root = dir.path();
    let outs = tempfile::tempdir().expect("tempdir");
    let out = outs.path().join("stamped");
    run_ok(go(root).args(["build", "-buildvcs=true", "-o"]).arg(&out).arg("./cmd/app")).expect("go build");
    let r = infer(&read_build_info_file(&out).expect("build info"));
    assert_eq!(r.buildvcs, BuildVcs::True);
    assert_eq!(r.origins["buildvcs"], Origin::Reference("vcs".into()));
    let head = run_ok(Command::new("git").current_dir(root).args(["rev-parse", "HEAD"])).expect("git");
    assert_eq!(r.revision.as_deref(), Some(head.stdout_str().trim()));
    // Go's default -pgo=auto used cmd/app/default.pgo, recorded by absolute path.
    assert_eq!(r.pgo.as_deref(), Some("auto"), "{:?}", r.origins.get("pgo"));
    let version = run_ok(go(root).args(["env", "GOVERSION"])).expect("go env");
    assert_eq!(r.go_version.as_deref(), Some(version.stdout_str().trim()));
}

#[test]
fn file_list_builds_are_undetermined() {
    let dir = fixture();
    let root = dir.path();
    let outs = tempfile::tempdir().expect("tempdir");
    let out = outs.path().join("files");
    run_ok(go(root).args(["build", "-o"]).arg(&out).arg("main.go")).expect("go build");
    let r = infer(&read_build_info_file(&out).expect("build info"));
    let u = r.undetermined.iter().find(|u| u.field == "package").expect("package undetermined");
    assert!(u.reason.contains("command-line-arguments"), "{}", u.reason);
}
