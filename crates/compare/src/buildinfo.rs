//! Field-by-field comparison of two build infos. Pure: no I/O, no parsing.

use std::collections::HashMap;

use bstr::{BString, ByteSlice};

use crate::model::{BuildInfoDiff, Change, DepChange, DepChangeKind, DepState};
use goinfo::{BuildInfo, Module};

/// Compares two build infos field by field, dependency by dependency, setting by setting.
pub(crate) fn diff(a: &BuildInfo, b: &BuildInfo) -> BuildInfoDiff {
    let mut out = BuildInfoDiff::default();
    field(&mut out.fields, "go", &a.go_version, &b.go_version);
    field(&mut out.fields, "path", &a.path, &b.path);
    field(&mut out.fields, "mod.path", &a.main.path, &b.main.path);
    field(&mut out.fields, "mod.version", &a.main.version, &b.main.version);
    field(&mut out.fields, "mod.sum", &a.main.sum, &b.main.sum);
    let (ra, rb) = (replace_text(&a.main), replace_text(&b.main));
    if ra != rb {
        out.fields.push(Change { name: "mod.replace".into(), a: ra, b: rb });
    }
    out.deps = diff_deps(&a.deps, &b.deps);
    out.settings = diff_settings(a, b);
    out
}

fn field(out: &mut Vec<Change>, name: &str, a: &BString, b: &BString) {
    if a != b {
        out.push(Change { name: name.into(), a: Some(text(a)), b: Some(text(b)) });
    }
}

/// Lossy UTF-8 text of a Go string.
pub(crate) fn text(s: &[u8]) -> String {
    s.to_str_lossy().into_owned()
}

fn replace_text(m: &Module) -> Option<String> {
    m.replace.as_ref().map(|r| {
        let mut s = text(&r.path);
        for part in [&r.version, &r.sum] {
            if !part.is_empty() {
                s.push(' ');
                s.push_str(&text(part));
            }
        }
        s
    })
}

fn state(m: &Module) -> DepState {
    DepState { version: text(&m.version), sum: text(&m.sum), replace: replace_text(m) }
}

fn diff_deps(a: &[Module], b: &[Module]) -> Vec<DepChange> {
    let in_b: HashMap<&[u8], &Module> = b.iter().map(|m| (m.path.as_slice(), m)).collect();
    let in_a: HashMap<&[u8], &Module> = a.iter().map(|m| (m.path.as_slice(), m)).collect();
    let mut out = Vec::new();
    for ma in a {
        let path = text(&ma.path);
        match in_b.get(ma.path.as_slice()) {
            None => out.push(DepChange { path, kind: DepChangeKind::Removed, a: Some(state(ma)), b: None }),
            Some(mb) => {
                let (sa, sb) = (state(ma), state(mb));
                // A replacement by a directory records no sum: the sum that goes with it
                // is part of the replacement, not a change of its own.
                let kind = if sa.version != sb.version {
                    DepChangeKind::Version
                } else if sa.replace != sb.replace {
                    DepChangeKind::Replace
                } else if sa.sum != sb.sum {
                    DepChangeKind::Sum
                } else {
                    continue;
                };
                out.push(DepChange { path, kind, a: Some(sa), b: Some(sb) });
            }
        }
    }
    for mb in b {
        if !in_a.contains_key(mb.path.as_slice()) {
            out.push(DepChange { path: text(&mb.path), kind: DepChangeKind::Added, a: None, b: Some(state(mb)) });
        }
    }
    out
}

fn diff_settings(a: &BuildInfo, b: &BuildInfo) -> Vec<Change> {
    let mut out = Vec::new();
    for s in &a.settings {
        let key = s.key.to_str_lossy();
        let other = b.setting(&key);
        if other.map(|v| v.as_bytes()) != Some(s.value.as_slice()) {
            out.push(Change { name: key.into_owned(), a: Some(text(&s.value)), b: other.map(|v| text(v)) });
        }
    }
    for s in &b.settings {
        let key = s.key.to_str_lossy();
        if a.setting(&key).is_none() {
            out.push(Change { name: key.into_owned(), a: None, b: Some(text(&s.value)) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use goinfo::BuildSetting;

    fn module(path: &str, version: &str, sum: &str) -> Module {
        Module { path: path.into(), version: version.into(), sum: sum.into(), replace: None }
    }

    fn info(go: &str, deps: Vec<Module>, settings: &[(&str, &str)]) -> BuildInfo {
        BuildInfo {
            go_version: go.into(),
            path: "example.com/m".into(),
            main: module("example.com/m", "(devel)", ""),
            deps,
            settings: settings.iter().map(|(k, v)| BuildSetting { key: (*k).into(), value: (*v).into() }).collect(),
        }
    }

    #[test]
    fn identical_build_infos_have_an_empty_diff() {
        let a = info("go1.22.5", vec![module("x.org/a", "v1.0.0", "h1:a")], &[("GOOS", "linux")]);
        assert!(diff(&a, &a.clone()).is_empty());
    }

    #[test]
    fn fields_deps_and_settings_are_diffed() {
        let a = info(
            "go1.22.5",
            vec![
                module("x.org/same", "v1.0.0", "h1:s"),
                module("x.org/ver", "v1.0.0", "h1:v1"),
                module("x.org/sum", "v1.0.0", "h1:one"),
                module("x.org/gone", "v0.1.0", "h1:g"),
            ],
            &[("-trimpath", "true"), ("GOAMD64", "v1"), ("GOOS", "linux")],
        );
        let b = info(
            "go1.23.1",
            vec![
                module("x.org/same", "v1.0.0", "h1:s"),
                module("x.org/ver", "v1.1.0", "h1:v2"),
                module("x.org/sum", "v1.0.0", ""),
                module("x.org/new", "v0.2.0", "h1:n"),
            ],
            &[("GOAMD64", "v3"), ("GOOS", "linux"), ("-tags", "foo")],
        );
        let d = diff(&a, &b);
        assert_eq!(
            d.fields,
            vec![Change { name: "go".into(), a: Some("go1.22.5".into()), b: Some("go1.23.1".into()) }]
        );
        let kinds: Vec<_> = d.deps.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("x.org/ver", DepChangeKind::Version),
                ("x.org/sum", DepChangeKind::Sum),
                ("x.org/gone", DepChangeKind::Removed),
                ("x.org/new", DepChangeKind::Added),
            ]
        );
        let settings: Vec<_> = d.settings.iter().map(|c| (c.name.as_str(), c.a.as_deref(), c.b.as_deref())).collect();
        assert_eq!(
            settings,
            vec![("-trimpath", Some("true"), None), ("GOAMD64", Some("v1"), Some("v3")), ("-tags", None, Some("foo")),]
        );
    }

    #[test]
    fn a_changed_replacement_is_a_replace_change() {
        let mut ma = module("x.org/r", "v1.0.0", "");
        ma.replace = Some(Box::new(module("../r1", "", "")));
        let mut mb = ma.clone();
        mb.replace = Some(Box::new(module("../r2", "", "")));
        let d = diff(&info("go1.22.5", vec![ma], &[]), &info("go1.22.5", vec![mb], &[]));
        assert_eq!(d.deps.len(), 1);
        assert_eq!(d.deps[0].kind, DepChangeKind::Replace);
        assert_eq!(d.deps[0].b.as_ref().and_then(|s| s.replace.as_deref()), Some("../r2"));
    }

    #[test]
    fn a_module_replaced_by_a_directory_is_a_replace_change_not_a_sum_change() {
        let ma = module("x.org/r", "v1.0.0", "h1:real");
        let mut mb = module("x.org/r", "v1.0.0", "");
        mb.replace = Some(Box::new(module("./r", "(devel)", "")));
        let d = diff(&info("go1.22.5", vec![ma], &[]), &info("go1.22.5", vec![mb], &[]));
        assert_eq!(d.deps.iter().map(|c| c.kind).collect::<Vec<_>>(), [DepChangeKind::Replace]);
    }
}
