//! The crate layout's dependency rules (ARCHITECTURE.md, "Dependency rules"),
//! read from `cargo metadata` and the crates' sources. Each workspace crate
//! names its layer in `[package.metadata.reprove] layer`; dependencies run one
//! way: leaf → stage → pipeline → orchestrator → binary, with servers beside
//! the pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Leaf,
    Stage,
    Pipeline,
    Orchestrator,
    Server,
    Binary,
}

impl Layer {
    fn parse(s: &str) -> Option<Layer> {
        Some(match s {
            "leaf" => Layer::Leaf,
            "stage" => Layer::Stage,
            "pipeline" => Layer::Pipeline,
            "orchestrator" => Layer::Orchestrator,
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
            Layer::Orchestrator => matches!(dep, Layer::Leaf | Layer::Stage | Layer::Pipeline),
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
const NOT_FOR_ATTEST: &[&str] = &["oci", "attach", "modfetch", "source", "sandbox", "rebuild", "confined"];

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
                            "{name} ({layer:?}) depends on {dep} ({dl:?}): dependencies run leaf → stage → pipeline → orchestrator → binary"
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
                let code = text[..test_module_start(&text)].to_string();
                out.push((p, code));
            }
        }
    }
    out
}

/// Where a file's `#[cfg(test)]` tests module starts (of any visibility, such as
/// `pub(super) mod tests` shared with sibling modules' tests), or its end.
fn test_module_start(text: &str) -> usize {
    let attribute = "#[cfg(test)]\n";
    let mut from = 0;
    while let Some(i) = text[from..].find(attribute).map(|i| i + from) {
        let next = text[i + attribute.len()..].lines().next().unwrap_or_default();
        let words: Vec<&str> = next.split_whitespace().collect();
        if words.ends_with(&["mod", "tests", "{"]) || words.ends_with(&["mod", "tests;"]) {
            return i;
        }
        from = i + attribute.len();
    }
    text.len()
}

/// The public functions of `code` that return `Result<_, String>`, by name.
fn string_errors(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("pub fn ") {
        let Some(end) = code[at..].find('{').map(|e| at + e) else { continue };
        let signature: String = code[at..end].split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(ret) = signature.split("-> Result<").nth(1) {
            if ret.trim_end().trim_end_matches('>').trim_end().ends_with(", String") {
                found.push(signature.split('(').next().unwrap_or_default().to_string());
            }
        }
    }
    found
}

/// Lines that start a process, or do file or network I/O, where the rules forbid it.
fn source_violations(ws: &Workspace) -> Vec<String> {
    let mut v = Vec::new();
    for (name, (_, dir)) in &ws.members {
        for (path, code) in sources(dir) {
            if name != "reprove" {
                for signature in string_errors(&code) {
                    let shown = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&path).display();
                    v.push(format!("{shown}: `{signature}` returns Result<_, String>: give it a typed error"));
                }
            }
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
                // A bench is a program of its own (the caller), not library code.
                let bench = path.strip_prefix(dir).is_ok_and(|p| p.starts_with("benches"));
                if runtime && name != "reprove" && !bench {
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
    let cases: [(Edit, &str); 7] = [
        (&add("goinfo", "stdx"), "goinfo depends on stdx"),
        (&add("stdx", "compare"), "stdx (Leaf) depends on compare (Stage)"),
        (&add("compare", "rebuild"), "compare (Stage) depends on rebuild (Pipeline)"),
        (&add("rebuild", "audit"), "rebuild (Pipeline) depends on audit (Orchestrator)"),
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
        "fn f() { let _ = std::process::Command::new(\"go\").output(); let _ = std::fs::read(\"x\"); }\nfn g() { tokio::runtime::Builder::new_current_thread(); }\npub fn h(\n    x: u8,\n) -> Result<Vec<u8>, String> {\n    Ok(vec![x])\n}\n",
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
    assert!(v.iter().any(|m| m.contains("`pub fn h` returns Result<_, String>")), "{v:?}");
}

/// The subcommand modules of the CLI (`src/cmd/*.rs`) and the modules each names as
/// `super::NAME` (outside its tests).
fn cli_module_imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    let files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            Some((stem, text.split("#[cfg(test)]").next().unwrap_or_default().to_string()))
        })
        .collect();
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).filter(|m| *m != "mod").collect();
    let mut imports = BTreeMap::new();
    for (module, code) in &files {
        let used: BTreeSet<String> = code
            .split("super::")
            .skip(1)
            .map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default())
            .filter(|name| modules.contains(name) && name != module)
            .map(str::to_string)
            .collect();
        imports.insert(module.clone(), used);
    }
    imports
}

/// A circle of imports, if any: the modules along it.
fn import_circle(imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|m| m == module) {
            let mut circle = path[i..].to_vec();
            circle.push(module.to_string());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in imports.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, imports, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    imports.keys().find_map(|m| visit(m, imports, &mut Vec::new(), &mut done))
}

/// Shared CLI helpers live in one module the subcommands use (`signing`), so no two
/// subcommand modules import each other in a circle.
#[test]
fn cli_modules_import_no_circle() {
    let imports = cli_module_imports();
    assert!(imports.get("attest").is_some_and(|used| used.contains("signing")), "{imports:?}");
    assert_eq!(import_circle(&imports), None, "{imports:?}");
    let mut circular = imports.clone();
    circular.entry("signing".into()).or_default().insert("attest".into());
    let circle = import_circle(&circular).unwrap_or_default();
    assert!(circle.first() == circle.last() && circle.contains(&"signing".to_string()), "{circle:?}");
}

/// Every long flag of the `reprove` binary, read from its help, command by command.
fn cli_flags() -> BTreeSet<String> {
    fn help(path: &[String]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_reprove"))
            .args(path)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("reprove {path:?} --help: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    let mut flags = BTreeSet::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        let mut in_commands = false;
        for line in text.lines() {
            if line.starts_with("Commands:") {
                in_commands = true;
                continue;
            }
            if in_commands {
                match line.split_whitespace().next() {
                    Some(cmd) if line.starts_with("  ") && cmd != "help" => {
                        todo.push(path.iter().cloned().chain([cmd.to_string()]).collect());
                    }
                    Some(_) if line.starts_with("  ") => {}
                    _ => in_commands = false,
                }
            }
            for word in line.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=' || c == '<') {
                if word.starts_with("--")
                    && word.len() > 3
                    && word[2..].bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                {
                    flags.insert(word.to_string());
                }
            }
        }
    }
    flags.remove("--help");
    flags.remove("--version");
    flags
}

/// `(file, flag)` for each string literal of a library crate that names a flag of
/// the CLI (a message telling the user what to pass). The CLI adds such hints;
/// the sandbox, which writes other programs' command lines, is not scanned.
fn flag_mentions(ws: &Workspace, flags: &BTreeSet<String>) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (name, (_, dir)) in &ws.members {
        if name == "reprove" || name == "sandbox" {
            continue;
        }
        for (path, code) in sources(dir) {
            let shown = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&path).display().to_string();
            for literal in string_literals(&code) {
                let words = literal.split(|c: char| c.is_whitespace() || "(),=:;".contains(c));
                for word in words.filter(|w| flags.contains(*w)) {
                    found.insert((shown.clone(), word.to_string()));
                }
            }
        }
    }
    found
}

/// The contents of the string literals of `code` (comments and char literals skipped).
fn string_literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                // A char literal ('"', '\\') or a lifetime: skip what could hide a quote.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\\") {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '"' => {
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => literal.push(c),
                    }
                }
                out.push(literal);
            }
            _ => {}
        }
    }
    out
}

/// Strings of libraries that spell a CLI flag and are not messages. Messages
/// name a `stdx::setting::Setting`, which the CLI spells as its flag.
const FLAG_MENTIONS_LEFT: &[(&str, &str)] = &[
    // Not messages: go build's own flags, parsed from a recipe's arguments.
    ("crates/attest/src/from_report.rs", "--ldflags"),
    ("crates/attest/src/from_report.rs", "--tags"),
];

#[test]
fn no_new_library_message_names_a_cli_flag() {
    let ws = Workspace::load();
    let flags = cli_flags();
    assert!(flags.contains("--allow-dirty") && flags.contains("--max-unpacked-size"), "flags read: {flags:?}");
    let found = flag_mentions(&ws, &flags);
    let left: BTreeSet<(String, String)> =
        FLAG_MENTIONS_LEFT.iter().map(|(f, g)| (f.to_string(), g.to_string())).collect();
    let new: Vec<_> = found.difference(&left).collect();
    assert!(new.is_empty(), "library messages that name a CLI flag (the CLI adds such hints): {new:?}");
    let gone: Vec<_> = left.difference(&found).collect();
    assert!(gone.is_empty(), "no longer named, take them off FLAG_MENTIONS_LEFT: {gone:?}");
}

#[test]
fn a_library_message_naming_a_flag_is_caught() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        src.join("lib.rs"),
        "#[error(\"refused; pass --allow-dirty\")]\nstruct E;\n// --keep in a comment\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ws =
        Workspace { members: BTreeMap::from([("oci".to_string(), (Some(Layer::Stage), src))]), deps: BTreeMap::new() };
    let flags = BTreeSet::from(["--allow-dirty".to_string(), "--keep".to_string()]);
    let found = flag_mentions(&ws, &flags);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found.iter().all(|(_, f)| f == "--allow-dirty"), "{found:?}");
}
