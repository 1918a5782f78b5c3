//! `reprove mod hash` and the h1 hashes behind it, against golang.org/x/mod's
//! dirhash on real and hostile inputs: odd directory trees (symlinks, empty
//! directories, unicode names), zips Go accepts (prefixed, trailing bytes,
//! directory entries, no CRC), zips Go refuses (bad checksums, lying sizes,
//! truncated, not a zip), and zips only reprove refuses (path traversal,
//! duplicate names, more than 500 MiB of content): there reprove must fail
//! cleanly, with a message, never a panic.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::Path;

use gomod::{hash_dir, hash_zip, ModCache, ModuleVersion};
use serde_json::{json, Value};

use crate::support::{self, harness};

use support::Failures;

use harness::{make_zip, ZipEntry};

const P: &str = "example.com/m@v1.0.0";

fn e(name: &str, data: &[u8]) -> ZipEntry {
    ZipEntry::new(&format!("{P}/{name}"), data)
}

/// What reprove should do with a zip Go's dirhash reads.
enum Expect {
    /// The same hash, or the same error words, as dirhash.
    SameAsGo,
    /// An error containing this text, whatever dirhash does.
    Refused(&'static str),
}

fn deflate_zip(name: &str, size: usize) -> Vec<u8> {
    // One deflated entry of `size` zero bytes, written by hand around flate2's raw deflate.
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    let mut crc = flate2::Crc::new();
    while left > 0 {
        let n = left.min(chunk.len());
        enc.write_all(&chunk[..n]).unwrap_or_else(|e| panic!("{e}"));
        crc.update(&chunk[..n]);
        left -= n;
    }
    let data = enc.finish().unwrap_or_else(|e| panic!("{e}"));
    let crc = crc.sum();
    let mut z = make_zip(&[ZipEntry {
        name: name.as_bytes().to_vec(),
        data: data.clone(),
        declared_size: Some(size as u32),
        crc: Some(crc),
    }]);
    // Mark the entry as deflated (method 8) in the local and central headers.
    z[8] = 8;
    let cd = z.len() - 22 - (46 + name.len());
    z[cd + 10] = 8;
    z
}

fn zip_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let good =
        make_zip(&[e("go.mod", b"module example.com/m\n"), e("a b/é.go", b"package a\n"), e("A.go", b"package a\n")]);
    let mut prefixed = b"#!/bin/sh\necho self-extracting\n".to_vec();
    prefixed.extend_from_slice(&good);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0u8; 500]);
    let mut far_trailing = good.clone();
    far_trailing.extend_from_slice(&vec![0u8; 70 * 1024]);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut short_body = good.clone();
    // Cut the entries' data but keep the directory: the reads run into other headers.
    short_body.drain(40..60);
    vec![
        ("ordinary", good.clone(), Expect::SameAsGo),
        (
            "unsorted with a directory entry",
            make_zip(&[e("z.go", b"z"), e("dir/", b""), e("a.go", b"a")]),
            Expect::SameAsGo,
        ),
        ("prefixed by a script", prefixed, Expect::SameAsGo),
        ("trailing bytes", trailing, Expect::SameAsGo),
        ("trailing bytes beyond the search window", far_trailing, Expect::SameAsGo),
        ("no CRC recorded", make_zip(&[ZipEntry { crc: Some(0), ..e("a.go", b"abc") }]), Expect::SameAsGo),
        ("bad CRC", make_zip(&[ZipEntry { crc: Some(1), ..e("a.go", b"abc") }]), Expect::SameAsGo),
        (
            "declared size 4 GiB",
            make_zip(&[ZipEntry { declared_size: Some(u32::MAX - 1), ..e("a.go", b"abc") }]),
            Expect::SameAsGo,
        ),
        (
            "declared size too small",
            make_zip(&[ZipEntry { declared_size: Some(1), ..e("a.go", b"abc") }]),
            Expect::SameAsGo,
        ),
        ("directory entry with content", make_zip(&[e("d/", b"x")]), Expect::SameAsGo),
        ("truncated", truncated, Expect::SameAsGo),
        ("data cut", short_body, Expect::SameAsGo),
        ("empty file", Vec::new(), Expect::SameAsGo),
        ("not a zip", b"hello, world\n".to_vec(), Expect::SameAsGo),
        ("newline in a name", make_zip(&[e("a\nb.go", b"x")]), Expect::SameAsGo),
        ("empty zip", make_zip(&[]), Expect::SameAsGo),
        ("path traversal", make_zip(&[e("../../../etc/passwd", b"root")]), Expect::Refused("unsafe zip entry name")),
        ("absolute name", make_zip(&[ZipEntry::new("/etc/passwd", b"root")]), Expect::Refused("unsafe zip entry name")),
        ("duplicate names", make_zip(&[e("a.go", b"one"), e("a.go", b"two")]), Expect::Refused("duplicate zip entry")),
        ("510 MiB of zeros", deflate_zip(&format!("{P}/zeros"), 510 << 20), Expect::Refused("exceeds the limit")),
    ]
}

fn result_of(v: &Value) -> Result<String, String> {
    match v.get("Err").and_then(Value::as_str) {
        Some(e) => Err(e.to_string()),
        None => Ok(v["Value"].as_str().unwrap_or_default().to_string()),
    }
}

#[test]
fn zips_match_dirhash_or_are_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cases = zip_cases();
    let mut files = Vec::new();
    for (i, (_, data, _)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("case{i}.zip"));
        fs::write(&f, data).unwrap_or_else(|e| panic!("{e}"));
        files.push(f.display().to_string());
    }
    // dirhash is asked only about the zips where its answer is the expectation.
    let asked: Vec<&String> =
        files.iter().zip(&cases).filter(|(_, c)| matches!(c.2, Expect::SameAsGo)).map(|(f, _)| f).collect();
    let answer = harness::gocheck(&json!({ "Zips": asked }));
    let mut next_answer = 0;
    let mut failures = Failures::new("zip hashes vs dirhash.HashZip");
    for (i, (name, _, expect)) in cases.iter().enumerate() {
        failures.case();
        let go = match expect {
            Expect::SameAsGo => {
                next_answer += 1;
                result_of(&answer["Zips"][next_answer - 1])
            }
            Expect::Refused(_) => Err("not asked".to_string()),
        };
        let ours = hash_zip(Path::new(&files[i]), None).map(|h| h.to_string()).map_err(|e| e.to_string());
        let ok = match (expect, &go, &ours) {
            (Expect::SameAsGo, Ok(g), Ok(o)) => g == o,
            // Go's error words, with our file and entry names around them.
            (Expect::SameAsGo, Err(g), Err(o)) => o.contains(g.as_str()),
            (Expect::Refused(words), _, Err(o)) => o.contains(words),
            _ => false,
        };
        if !ok {
            failures.fail(*name, format!("dirhash: {go:?}\nours:    {ours:?}"));
        }
        // The CLI agrees with the library and exits 0, or 2 with the message.
        let out = harness::reprove(dir.path(), dir.path(), &["mod", "hash", &files[i]]);
        let cli_ok = match &ours {
            Ok(h) => out.status == Some(0) && out.stdout_str() == format!("{h}\n"),
            Err(e) => out.status == Some(2) && out.stderr_str().contains(e.as_str()),
        };
        if !cli_ok {
            failures
                .fail(format!("{name} (cli)"), format!("{:?}\n{}{}", out.status, out.stdout_str(), out.stderr_str()));
        }
    }
    failures.assert_none();
}

#[test]
fn directories_match_dirhash() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mk = |name: &str| {
        let d = root.path().join(name);
        fs::create_dir_all(d.join("sub/deeper")).unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir_all(d.join("empty")).unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join("go.mod"), b"module example.com/m\n").unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join("sub/deeper/x y é.go"), b"package deeper\n").unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join(".hidden"), b"").unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join("Upper.txt"), b"U").unwrap_or_else(|e| panic!("{e}"));
        d
    };
    let plain = mk("plain");
    let links = mk("links");
    symlink("go.mod", links.join("link-to-file")).unwrap_or_else(|e| panic!("{e}"));
    let dirlink = mk("dirlink");
    symlink("sub", dirlink.join("link-to-dir")).unwrap_or_else(|e| panic!("{e}"));
    let broken = mk("broken");
    symlink("nowhere", broken.join("dangling")).unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<(String, String)> = vec![
        (plain.display().to_string(), P.to_string()),
        (plain.display().to_string(), String::new()),
        (format!("{}/", plain.display()), "odd//prefix/./x".to_string()),
        (links.display().to_string(), P.to_string()),
        (dirlink.display().to_string(), P.to_string()),
        (broken.display().to_string(), P.to_string()),
        (plain.join("go.mod").display().to_string(), P.to_string()),
        (root.path().join("missing").display().to_string(), P.to_string()),
    ];
    let answer = harness::gocheck(&json!({
        "Dirs": cases.iter().map(|(d, p)| json!({"Dir": d, "Prefix": p})).collect::<Vec<_>>()
    }));
    let mut failures = Failures::new("directory hashes vs dirhash.HashDir");
    for (i, (d, prefix)) in cases.iter().enumerate() {
        failures.case();
        let go = result_of(&answer["Dirs"][i]);
        let ours = hash_dir(Path::new(d), prefix).map(|h| h.to_string()).map_err(|e| e.to_string());
        if go != ours {
            failures.fail(format!("{d} {prefix:?}"), format!("dirhash: {go:?}\nours:    {ours:?}"));
        }
    }
    failures.assert_none();
}

#[test]
fn mod_hash_cli_on_the_real_cache() {
    let cache_root = harness::shared_cache();
    let cache = ModCache::new(cache_root);
    let m = ModuleVersion::new("github.com/BurntSushi/toml", "v1.4.0");
    let p = |s| cache.cache_path(&m, s).unwrap_or_else(|e| panic!("{e}"));
    let want = fs::read_to_string(p("ziphash")).unwrap_or_else(|e| panic!("{e}")).trim().to_string();
    let dir = cache.extracted_dir(&m).unwrap_or_else(|e| panic!("{e}"));
    let cwd = harness::fixtures_dir();
    let zip = p("zip").display().to_string();
    let modfile = p("mod").display().to_string();
    let dirs = dir.display().to_string();
    let prefix = "github.com/BurntSushi/toml@v1.4.0";

    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &zip]);
    assert_eq!((out.status, out.stdout_str()), (Some(0), format!("{want}\n")), "{}", out.stderr_str());
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &zip, "--prefix", prefix]);
    assert_eq!((out.status, out.stdout_str()), (Some(0), format!("{want}\n")), "{}", out.stderr_str());
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &zip, "--prefix", "github.com/other/x@v1.0.0"]);
    assert_eq!(out.status, Some(2));
    assert!(out.stderr_str().contains("zip for github.com/other/x@v1.0.0 has unexpected file"), "{}", out.stderr_str());
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &dirs, "--prefix", prefix]);
    assert_eq!((out.status, out.stdout_str()), (Some(0), format!("{want}\n")), "{}", out.stderr_str());
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &dirs]);
    assert_eq!(out.status, Some(2), "a directory without --prefix");
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &dirs, "--prefix", "not a module"]);
    assert_eq!(out.status, Some(2), "a malformed --prefix");

    let sum = harness::go_sum_lines(&harness::fixtures_dir().join("project/go.sum"));
    let want_mod = sum
        .iter()
        .find(|(path, v, _)| path == &m.path && v == "v1.4.0/go.mod")
        .map(|(_, _, h)| h.clone())
        .unwrap_or_default();
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", &modfile, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout_str()));
    assert_eq!(doc["hash"], json!(want_mod));
    assert_eq!(doc["kind"], json!("go.mod"));
    let out = harness::reprove(&cwd, cache_root, &["mod", "hash", "/nonexistent/file.zip"]);
    assert_eq!(out.status, Some(2));
}
