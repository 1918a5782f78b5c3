//! Tables generated from Go must still equal what the machine's Go generates.

use std::process::Command;

#[test]
fn isprint_table_matches_go_strconv() {
    // The repository root: the generator is ci/gen/isprint.go.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("go")
        .args(["run", "./ci/gen/isprint.go"])
        .current_dir(root)
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("run go (is Go installed?)");
    assert!(out.status.success(), "go run failed: {}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read(format!("{root}/crates/goinfo/src/isprint_table.rs")).expect("read table");
    assert!(
        out.stdout == committed,
        "crates/goinfo/src/isprint_table.rs is stale: regenerate with `go run ./ci/gen/isprint.go > crates/goinfo/src/isprint_table.rs`"
    );
}
