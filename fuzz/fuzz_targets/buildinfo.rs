//! Arbitrary bytes as an executable: every reader of `goinfo` must
//! return a value or an error, never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use goinfo::{self, ExtraFields};

fuzz_target!(|data: &[u8]| {
    if let Ok(bi) = goinfo::read_build_info(data) {
        // Whatever was read must also render, as `go version -m` and `-json`.
        let text = goinfo::format_text(b"fuzz", &bi);
        assert!(text.starts_with(b"fuzz: "));
        let json = goinfo::format_json(&bi, &ExtraFields::default());
        assert!(json.ends_with(b"\n"));
    }
    let _ = goinfo::read_go_build_id(data);
    let _ = goinfo::read_gnu_build_id(data);
    // The self-check streams the whole input: it must never panic, and a file is
    // always the same as itself.
    let _ = goinfo::self_check(data);
    if let Ok(m) = goinfo::first_mismatch(data, data) {
        assert_eq!(m, None);
    }
});
