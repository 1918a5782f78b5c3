//! The build list computed in Rust (minimal version selection over the
//! go.mod files of the module cache) against `go list -m -json all` on real
//! projects: a pruned graph (go 1.22, ~150 modules), an unpruned one
//! (go 1.16), and one with a directory replacement, a version replacement and
//! an exclusion.

use std::collections::BTreeMap;

use gomod::{load_build_list, parse_go_list, BuildList, ModCache};
use serde_json::Value;

use crate::support::{self, harness};

use support::{run_ok, Failures};

/// `go list -m -json all` prints a stream of objects; split them.
fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text).into_iter::<Value>().filter_map(Result::ok).collect()
}

type Row = (String, String);

fn rows(list: &BuildList) -> BTreeMap<String, Row> {
    list.modules
        .iter()
        .map(|m| {
            let replace = list.replaced.get(m).map(|r| format!("{} {}", r.path, r.version)).unwrap_or_default();
            (m.path.clone(), (m.version.clone(), replace))
        })
        .collect()
}

#[test]
fn build_list_matches_go_list() {
    let cache_root = harness::shared_cache();
    let cache = ModCache::new(cache_root);
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Failures::new("build list vs go list -m all");
    for name in harness::PROJECTS {
        failures.case();
        let dir = scratch.path().join(name);
        harness::copy_tree(&harness::fixtures_dir().join(name), &dir);
        let mut cmd = harness::go(&dir, cache_root, false);
        cmd.args(["list", "-m", "-json", "all"]);
        let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
        // Go's list, read by reprove's own reader of `go list -m -json`.
        let go_list = match parse_go_list(&out.stdout, cache_root) {
            Ok(l) => l,
            Err(e) => {
                failures.fail(*name, format!("parse_go_list: {e}"));
                continue;
            }
        };
        let go_main = go_list.main.path.clone();
        let go_rows = rows(&go_list);
        // Cross-check the reader on the raw stream.
        let raw = json_stream(&out.stdout_str()).iter().filter(|m| m["Main"].as_bool() != Some(true)).count();
        if raw != go_rows.len() {
            failures.fail(*name, format!("go list printed {raw} modules, parse_go_list read {}", go_rows.len()));
        }
        let list = match load_build_list(&dir, &cache) {
            Ok(l) => l,
            Err(e) => {
                failures.fail(*name, format!("load_build_list: {e}"));
                continue;
            }
        };
        if !list.errors.is_empty() {
            failures.fail(*name, format!("graph errors: {:?}", list.errors));
        }
        let ours = rows(&list);
        if list.main.path != go_main {
            failures.fail(*name, format!("main module: go {go_main}, ours {}", list.main.path));
        }
        if ours != go_rows {
            let mut report = String::new();
            for (p, r) in &go_rows {
                if ours.get(p) != Some(r) {
                    report.push_str(&format!("  {p}: go {r:?}, ours {:?}\n", ours.get(p)));
                }
            }
            for (p, r) in &ours {
                if !go_rows.contains_key(p) {
                    report.push_str(&format!("  {p}: go -, ours {r:?}\n"));
                }
            }
            failures.fail(*name, report);
        }
        // The order of `go list -m all`: main module, then by path.
        let go_order: Vec<&String> = go_rows.keys().collect();
        let our_order: Vec<&String> = list.modules.iter().map(|m| &m.path).collect();
        if go_order != our_order && ours == go_rows {
            failures.fail(format!("{name} (order)"), format!("go {go_order:?}\nours {our_order:?}"));
        }
        eprintln!("{name}: {} modules", list.modules.len());
    }
    failures.assert_none();
}

/// `reprove mod verify --build-list go` reaches the same verdict on the same modules.
#[test]
fn verify_with_gos_build_list_agrees() {
    let cache_root = harness::shared_cache();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch.path().join("project");
    harness::copy_tree(&harness::fixtures_dir().join("project"), &dir);
    let doc = |extra: &[&str]| -> Value {
        let mut args = vec!["mod", "verify", "--json"];
        args.extend_from_slice(extra);
        let out = harness::reprove(&dir, cache_root, &args);
        assert_eq!(out.status, Some(0), "{}{}", out.stdout_str(), out.stderr_str());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
    };
    let ours = doc(&[]);
    let gos = doc(&["--build-list", "go"]);
    assert_eq!(ours["modules"], gos["modules"]);
    let zip_problems = |d: &Value| -> Vec<Value> {
        d["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| !p["kind"].as_str().unwrap_or("").starts_with("gomod"))
            .cloned()
            .collect()
    };
    assert_eq!(zip_problems(&ours), zip_problems(&gos));
}
