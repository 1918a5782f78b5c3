//! Parity of reprove's Go module rules with golang.org/x/mod itself: semantic
//! versions, module paths and their escaping, pseudo-versions, `module.Check`,
//! prefix patterns, and go.mod / go.work parsing (values and error messages).
//! The oracle is tests/fixtures/mod/gocheck, run with the real `go`.

use gomod::{modfile, module, semver};
use serde_json::{json, Value};

use crate::support::{self, harness};

use support::Failures;

const VERSIONS: &[&str] = &[
    "",
    "v",
    "1.2.3",
    "v1",
    "v1.2",
    "v1.2.3",
    "v01.2.3",
    "v1.02.3",
    "v1.2.03",
    "v1.2.3-pre",
    "v1.2.3-pre.1",
    "v1.2.3-pre.01",
    "v1.2.3-0pre",
    "v1.2.3-pre+meta",
    "v1.2.3+meta",
    "v1.2.3+meta.",
    "v1.2.3+incompatible",
    "v2.0.0+incompatible",
    "v1.2.3-",
    "v1.2.3-a..b",
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta",
    "v1.0.0-beta.2",
    "v1.0.0-beta.11",
    "v1.0.0-rc.1",
    "v1.0.0",
    "v1.10.0",
    "v1.9.0",
    "v0.0.0-20191109021931-daa7c04131f5",
    "v1.2.4-0.20191109021931-daa7c04131f5",
    "v1.2.3-pre.0.20191109021931-daa7c04131f5",
    "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
    "v0.0.0-20191109021931-daa7c04131f5+build",
    "v1.0.0-0.20191109021931-daa7c04131f5",
    "v1.2.3-20191109021931-daa7c04131f5",
    "v0.0.0-2019110902193-daa7c04131f5",
    "v0.0.0-20191109021931-",
    "v1.2.3-RC1",
    "v1.2.3-rc!1",
    "v9999999999999999999.0.0",
    "v1.2.3.4",
    "vX.Y.Z",
    "v1.0.0-0.0",
];

const PATHS: &[&str] = &[
    "github.com/gin-gonic/gin",
    "github.com/Azure/azure-sdk-for-go",
    "github.com/!azure/x",
    "example.com",
    "example",
    "example.com/",
    "/example.com",
    "-example.com",
    "example.com//x",
    "example.com/./x",
    "example.com/../x",
    "example.com/.x",
    "example.com/x.",
    "example.com/x~1",
    "example.com/x~",
    "example.com/con",
    "example.com/CON.txt",
    "example.com/a b",
    "example.com/a+b",
    "example.com/é",
    "Example.com/x",
    "ex_ample.com/x",
    "gopkg.in/yaml.v3",
    "gopkg.in/yaml.v0",
    "gopkg.in/yaml",
    "gopkg.in/check.v1-unstable",
    "example.com/x/v2",
    "example.com/x/v1",
    "example.com/x/v0",
    "example.com/x/v2.1",
    "example.com/x/v02",
    "example.com/ü",
    "k8s.io/api",
    "a.b/c!d",
    "example.com/x!",
    "example.com/!!x",
    "",
    "example.com/\u{0}x",
    "example.com/x y/z",
    "example.com/file.go",
];

const CHECKS: &[(&str, &str)] = &[
    ("example.com/x", "v1.0.0"),
    ("example.com/x", "v2.0.0"),
    ("example.com/x", "v2.0.0+incompatible"),
    ("example.com/x/v2", "v2.1.0"),
    ("example.com/x/v2", "v1.0.0"),
    ("gopkg.in/yaml.v3", "v3.0.1"),
    ("gopkg.in/yaml.v3", "v2.0.0"),
    ("gopkg.in/check.v1", "v0.0.0-20201130134442-10cb98267c6c"),
    ("example.com/x", "1.0.0"),
    ("example", "v1.0.0"),
];

const PATTERNS: &[(&str, &str)] = &[
    ("*.corp.example.com,rsc.io/private", "git.corp.example.com/x/y"),
    ("rsc.io/private", "rsc.io/private/quote"),
    ("rsc.io/private", "rsc.io/privately"),
    ("github.com/org/*", "github.com/org/repo/sub"),
    ("github.com/org/*", "github.com/org"),
    ("*", "anything/at/all"),
    ("", "x.com/y"),
    (",,x.com,", "x.com/y"),
    ("x.com/", "x.com/y"),
    ("gith?b.com", "github.com/x"),
    ("[a-c].com", "b.com/x"),
    ("[^a-c].com", "b.com/x"),
    ("[", "x.com"),
    ("x.com/[", "x.com/y"),
    ("github.com/\\*", "github.com/*/x"),
];

fn go_mod_inputs() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("basic", "module example.com/m\n\ngo 1.21\n\nrequire golang.org/x/mod v0.14.0\n".into()),
        (
            "blocks",
            "// c\nmodule example.com/m\n\ngo 1.22.1\ntoolchain go1.22.5\n\nrequire (\n\tgolang.org/x/mod v0.14.0 // indirect\n\t\"rsc.io/quote\" v1.5\n\trsc.io/sampler v1.3.0 // indirect; needed\n\texample.com/x v1.0.0 //indirect\n\texample.com/y v1.0.0 // Indirect\n)\n\nexclude (\n\trsc.io/sampler v1.99.99\n)\nreplace (\n\trsc.io/quote v1.5.2 => ../quote\n\trsc.io/x => rsc.io/y v1.0.0\n\texample.com/z v1.0.0 => /abs/dir\n)\n\nretract (\n\t// broken\n\tv1.0.1\n\n\t// bad range\n\t// really\n\t[v1.1.0, v1.2.0]\n)\ngodebug (\n\tdefault=go1.21\n\tpanicnil=1\n)\ntool example.com/tool\nignore ./testdata\n".into(),
        ),
        ("deprecated", "// Deprecated: use example.com/m/v2 instead.\nmodule example.com/m\n".into()),
        ("deprecated-para", "// A module.\n//\n// Deprecated: gone\n//\n// More.\nmodule example.com/m\n".into()),
        ("deprecated-suffix", "module example.com/m // Deprecated: suffix\n".into()),
        ("quoted-module", "module \"example.com/m\"\n".into()),
        ("backquoted", "module `example.com/m`\n".into()),
        ("bad-version", "module m\nrequire x.com/y 1.2\n".into()),
        ("bad-major", "module m\nrequire x.com/y/v2 v1.0.0\n".into()),
        ("bad-major-incompatible", "module m\nrequire x.com/y v2.0.0\n".into()),
        ("unknown", "module m\nfoo bar\n".into()),
        ("unknown-block", "module m\nfoo (\n\tbar\n)\n".into()),
        ("unknown-block2", "module m\nrequire x (\n\ty v1.0.0\n)\n".into()),
        ("repeated", "module m\nmodule n\ngo 1.21\ngo 1.22\ntoolchain go1.21.0\ntoolchain go1.22.0\n".into()),
        ("bad-go", "module m\ngo 1.21.x\n".into()),
        ("lax-go", "module m\ngo v1.21rc\n".into()),
        ("go-rc", "module m\ngo 1.21rc1\n".into()),
        ("go-leading-zero", "module m\ngo 1.021\n".into()),
        ("bad-toolchain", "module m\ntoolchain 1.21\n".into()),
        ("toolchain-default", "module m\ntoolchain default\n".into()),
        ("unterminated", "module m\nrequire (\n\tx.com/y v1.0.0\n".into()),
        ("unterminated-string", "module \"m\n".into()),
        ("eof-string", "module \"m".into()),
        ("block-comment", "module m /* no */\n".into()),
        ("bad-char", "module m\nrequire x.com/y\u{0} v1.0.0\n".into()),
        ("paren-trailing", "module m\nrequire (\n) x\n".into()),
        ("empty-block", "module m\nrequire ()\n".into()),
        ("parens-inline", "module m\nrequire ( x.com/y v1.0.0 )\n".into()),
        ("replace-usage", "module m\nreplace x.com/y\n".into()),
        ("replace-at", "module m\nreplace x.com/y => x.com/z@v1.0.0\n".into()),
        ("replace-dir-version", "module m\nreplace x.com/y => ./z v1.0.0\n".into()),
        ("replace-windows", "module m\nreplace x.com/y => ..\\z\n".into()),
        ("replace-bad-version", "module m\nreplace x.com/y v1 => x.com/z vx\n".into()),
        ("retract-junk", "module m\nretract v1.0.0 junk\n".into()),
        ("retract-interval-bad", "module m\nretract [v1.0.0 v1.1.0]\n".into()),
        ("retract-paren", "module m\nretract (\n\t( v1.0.0\n)\n".into()),
        ("godebug-bad", "module m\ngodebug x\ngodebug \"a=b\"\n".into()),
        ("quote-in-word", "module m\nrequire x.com/y\"z v1.0.0\n".into()),
        ("escape", "module \"example.com/\\x41b\"\nrequire \"x.com/\\u00e9\" v1.0.0\n".into()),
        ("bad-escape", "module \"example.com/\\q\"\n".into()),
        ("crlf", "module example.com/m\r\n\r\nrequire x.com/y v1.0.0 // indirect\r\n".into()),
        ("no-newline", "module example.com/m".into()),
        ("usage", "module\nrequire x.com/y\nexclude x.com/y v1 v2\ntool\nignore a b\n".into()),
        ("comment-only", "// just a comment\n".into()),
        ("empty", String::new()),
        ("require-main", "module m\nrequire m v1.0.0\n".into()),
        ("unicode-space", "module m\u{a0}x\n".into()),
    ];
    for (name, file) in [
        ("fixture-project", "project/go.mod"),
        ("fixture-unpruned", "unpruned/go.mod"),
        ("fixture-replaced", "replaced/go.mod"),
    ] {
        let data = std::fs::read_to_string(harness::fixtures_dir().join(file)).unwrap_or_default();
        v.push((name, data));
    }
    v
}

fn go_work_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("basic", "go 1.22\n\nuse (\n\t./a\n\t\"./b c\"\n)\nuse ../d\n".into()),
        ("full", "go 1.23.0\ntoolchain go1.23.1\ngodebug default=go1.21\nreplace x.com/y v1.0.0 => ./y\n".into()),
        ("bad", "go 1.22\nmodule x\nrequire x v1.0.0\n".into()),
        ("bad-block", "use x (\n\t./a\n)\nrequire (\n)\n".into()),
        ("use-usage", "use\nuse a b\n".into()),
    ]
}

fn res_value(r: &Result<String, String>) -> Value {
    match r {
        Ok(v) if v.is_empty() => json!({}),
        Ok(v) => json!({"Value": v}),
        Err(e) => json!({"Err": e}),
    }
}

fn err_text<E: std::fmt::Display>(r: Result<(), E>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

fn describe_mod(name: &str, r: Result<modfile::ModFile, modfile::ModFileError>) -> Value {
    let f = match r {
        Err(e) => return json!({"Name": name, "Err": e.to_string()}),
        Ok(f) => f,
    };
    let nullish = |v: Vec<Value>| if v.is_empty() { Value::Null } else { Value::Array(v) };
    json!({
        "Name": name,
        "Module": f.module.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
        "Deprecated": f.module.as_ref().map(|m| m.deprecated.clone()).unwrap_or_default(),
        "Go": f.go.clone().unwrap_or_default(),
        "Toolchain": f.toolchain.clone().unwrap_or_default(),
        "Require": nullish(f.require.iter().map(|r| json!([r.module.path, r.module.version, if r.indirect { "indirect" } else { "" }])).collect()),
        "Exclude": nullish(f.exclude.iter().map(|(m, _)| json!([m.path, m.version])).collect()),
        "Replace": nullish(f.replace.iter().map(|r| json!([r.old.path, r.old.version, r.new.path, r.new.version])).collect()),
        "Retract": nullish(f.retract.iter().map(|r| json!([r.low, r.high, r.rationale])).collect()),
        "Godebug": nullish(f.godebug.iter().map(|g| json!([g.key, g.value])).collect()),
    })
}

fn compare(failures: &mut Failures, what: &str, go: &Value, ours: &Value) {
    failures.case();
    if go != ours {
        failures.fail(what, format!("x/mod: {go}\nours:  {ours}"));
    }
}

#[test]
fn module_rules_match_x_mod() {
    let go_mods = go_mod_inputs();
    let works = go_work_inputs();
    let request = json!({
        "Versions": VERSIONS,
        "Paths": PATHS,
        "Checks": CHECKS.iter().map(|(p, v)| [p, v]).collect::<Vec<_>>(),
        "ModFiles": go_mods.iter().map(|(n, d)| json!({"Name": format!("{n}/go.mod"), "Data": d})).collect::<Vec<_>>(),
        "Work": works.iter().map(|(n, d)| json!({"Name": format!("{n}/go.work"), "Data": d})).collect::<Vec<_>>(),
        "Patterns": PATTERNS.iter().map(|(g, t)| json!({"Globs": g, "Target": t})).collect::<Vec<_>>(),
    });
    let answer = harness::gocheck(&request);
    let mut failures = Failures::new("x/mod parity");

    for (i, v) in VERSIONS.iter().enumerate() {
        let go = &answer["Versions"][i];
        let pseudo = module::parse_pseudo_version(v);
        let ours = json!({
            "V": v,
            "IsValid": semver::is_valid(v),
            "Canonical": semver::canonical(v),
            "Major": semver::major(v),
            "MajorMinor": semver::major_minor(v),
            "Prerelease": semver::prerelease(v),
            "Build": semver::build(v),
            "CanonicalMod": module::canonical_version(v),
            "IsPseudo": module::is_pseudo_version(v),
            "PseudoBase": res_value(&pseudo.as_ref().map(|p| p.base.clone()).map_err(|e| e.to_string())),
            "PseudoRev": res_value(&module::pseudo_version_rev(v).map_err(|e| e.to_string())),
            "Escape": res_value(&module::escape_version(v).map_err(|e| e.to_string())),
            "Unescape": res_value(&module::unescape_version(v).map_err(|e| e.to_string())),
            "CompareToNext": VERSIONS[i..].iter().map(|w| semver::compare(v, w) as i32).collect::<Vec<_>>(),
        });
        compare(&mut failures, &format!("version {v:?}"), go, &ours);
    }
    for (i, p) in PATHS.iter().enumerate() {
        let go = &answer["Paths"][i];
        let split = match module::split_path_version(p) {
            Some((a, b)) => json!([a, b, "ok"]),
            None => json!(["", "", ""]),
        };
        let ours = json!({
            "Path": p,
            "Check": err_text(module::check_path(p)),
            "CheckImport": err_text(module::check_import_path(p)),
            "CheckFile": err_text(module::check_file_path(p)),
            "Escape": res_value(&module::escape_path(p).map_err(|e| e.to_string())),
            "Unescape": res_value(&module::unescape_path(p).map_err(|e| e.to_string())),
            "Split": split,
        });
        compare(&mut failures, &format!("path {p:?}"), go, &ours);
    }
    for (i, (p, v)) in CHECKS.iter().enumerate() {
        let ours = json!(module::check(p, v).err().map(|e| e.to_string()).unwrap_or_default());
        compare(&mut failures, &format!("module.Check({p:?}, {v:?})"), &answer["Checks"][i], &ours);
    }
    for (i, (name, data)) in go_mods.iter().enumerate() {
        let file = format!("{name}/go.mod");
        let mut ours = describe_mod(&file, modfile::parse_mod(&file, data.as_bytes()));
        ours["Lax"] = describe_mod(&file, modfile::parse_mod_lax(&file, data.as_bytes()));
        let mut go = answer["ModFiles"][i].clone();
        if go.get("Lax").is_none() {
            go["Lax"] = Value::Null;
        }
        // Fields Go omits when they are empty.
        for v in [&mut ours, &mut go] {
            normalize(v);
        }
        compare(&mut failures, &format!("go.mod {name}"), &go, &ours);
    }
    for (i, (name, data)) in works.iter().enumerate() {
        let file = format!("{name}/go.work");
        let mut ours = match modfile::parse_work(&file, data.as_bytes()) {
            Err(e) => json!({"Name": file, "Err": e.to_string()}),
            Ok(w) => json!({
                "Name": file,
                "Go": w.go.unwrap_or_default(),
                "Toolchain": w.toolchain.unwrap_or_default(),
                "Use": if w.use_dirs.is_empty() { Value::Null } else { json!(w.use_dirs.iter().map(|(d, _)| d).collect::<Vec<_>>()) },
                "Replace": if w.replace.is_empty() { Value::Null } else { json!(w.replace.iter().map(|r| json!([r.old.path, r.old.version, r.new.path, r.new.version])).collect::<Vec<_>>()) },
                "Godebug": if w.godebug.is_empty() { Value::Null } else { json!(w.godebug.iter().map(|g| json!([g.key, g.value])).collect::<Vec<_>>()) },
            }),
        };
        let mut go = answer["Work"][i].clone();
        normalize(&mut ours);
        normalize(&mut go);
        compare(&mut failures, &format!("go.work {name}"), &go, &ours);
    }
    for (i, (g, t)) in PATTERNS.iter().enumerate() {
        let ours = json!(module::match_prefix_patterns(g, t));
        compare(&mut failures, &format!("MatchPrefixPatterns({g:?}, {t:?})"), &answer["Patterns"][i], &ours);
    }
    failures.assert_none();
}

/// Drops keys whose value is empty or null, recursively, so that Go's
/// `omitempty` and our full objects compare.
fn normalize(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !(x.is_null() || x == "" || (x.is_array() && x.as_array().is_some_and(Vec::is_empty))));
        for x in m.values_mut() {
            normalize(x);
        }
    }
}

/// go.work files as a workspace commits them: block and line `use`, comments
/// everywhere, quoted paths, `replace` of one version or all, `go`,
/// `toolchain` and `godebug` lines; and broken ones.
const WORK_FILES: &[&str] = &[
    "go 1.22\n\n// The application and its library.\nuse (\n\t.\n\t./greet // the library\n)\n",
    "go 1.23.0 // the go line\ntoolchain go1.23.1\n\n// comment\nuse (\n\t. // root\n\t./lib\n\t\"./b c\"\n)\nuse ../d\nreplace (\n\tx.com/y v1.0.0 => ./y\n\tx.com/z => x.com/w v1.2.3 // moved\n)\ngodebug default=go1.21\n",
    "use ./a\nuse ./b\nreplace x.com/y => ../y\n",
    "go 1.22\nuse ( ./a )\n",
    "go 1.22\nuse (\n",
    "go 1.22\nuse x (\n\t./a\n)\n",
    "go 1.22\nrequire x.com/y v1.0.0\n",
    "go 1.22\nreplace x.com/y v1.0.0 => x.com/z\n",
];

/// `go work edit -json` on each file, compared with `modfile::parse_work`:
/// `Go`, `Toolchain`, `Godebug`, `Use` and `Replace` as the go command prints
/// them, and whether it accepts the file at all.
#[test]
fn go_work_parsing_matches_go_work_edit_json() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Failures::default();
    let (mut compared, mut refused) = (0, 0);
    for (i, text) in WORK_FILES.iter().enumerate() {
        let file = tmp.path().join(format!("w{i}.work"));
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = std::process::Command::new("go");
        support::hermetic_go_env(&mut cmd).current_dir(tmp.path()).args(["work", "edit", "-json"]).arg(&file);
        let out = support::run(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        let ours = modfile::parse_work(&format!("w{i}.work"), text.as_bytes());
        failures.case();
        let go: Value = match (out.status, &ours) {
            (Some(0), Ok(_)) => serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}")),
            (Some(0), Err(e)) => {
                failures.fail(format!("{text:?}"), format!("go accepts it, ours: {e}"));
                continue;
            }
            (_, Ok(_)) => {
                failures.fail(format!("{text:?}"), format!("go refuses it ({}), ours accepts it", out.stderr_str()));
                continue;
            }
            (_, Err(e)) => {
                // Go prints x/mod's errors under its own heading: each of ours is there.
                refused += 1;
                for line in e.to_string().lines() {
                    if !out.stderr_str().contains(line) {
                        failures.fail(format!("{text:?}"), format!("go: {}\nours: {e}", out.stderr_str()));
                    }
                }
                continue;
            }
        };
        compared += 1;
        let Ok(w) = ours else { continue };
        let module = |path: &str, version: &str| {
            if version.is_empty() {
                json!({"Path": path})
            } else {
                json!({"Path": path, "Version": version})
            }
        };
        let mut ours = json!({
            "Go": w.go.clone().unwrap_or_default(),
            "Use": w.use_dirs.iter().map(|(d, _)| json!({"DiskPath": d})).collect::<Vec<_>>(),
            "Replace": w.replace.iter().map(|r| json!({"Old": module(&r.old.path, &r.old.version), "New": module(&r.new.path, &r.new.version)})).collect::<Vec<_>>(),
        });
        // Older and newer go commands differ in printing these two: compare them when printed.
        if go.get("Toolchain").is_some() {
            ours["Toolchain"] = json!(w.toolchain.clone().unwrap_or_default());
        }
        if go.get("Godebug").is_some() {
            ours["Godebug"] =
                json!(w.godebug.iter().map(|g| json!({"Key": g.key, "Value": g.value})).collect::<Vec<_>>());
        }
        let (mut go, mut ours) = (go, ours);
        normalize(&mut go);
        normalize(&mut ours);
        if go != ours {
            failures.fail(format!("{text:?}"), format!("go work edit -json: {go}\nours: {ours}"));
        }
    }
    failures.assert_none();
    assert_eq!((compared, refused), (3, 5), "accepted and refused files");
}
