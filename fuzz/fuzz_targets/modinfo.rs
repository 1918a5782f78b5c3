//! Arbitrary bytes as module-info text (`runtime/debug.ParseBuildInfo`'s input).
//!
//! Properties: parsing never panics, and whatever parses round-trips through
//! `format_modinfo` (Go's `BuildInfo.String`) to the same value and the same text.
//!
//! One restriction, inherited from Go: `BuildInfo.String` does not print the
//! checksum of a module that has a replacement (`mod\tPATH\tVERSION\n=>\t…`),
//! so `mod\ta\tv1\th1:x\n=>\tb\tv2\t\n` parses to a main module whose sum is
//! `h1:x` while its rendering re-parses with an empty sum. Go's own
//! `ParseBuildInfo(bi.String())` loses that sum the same way; the property is
//! checked with those sums cleared.
#![no_main]

use libfuzzer_sys::fuzz_target;
use goinfo::{self, BuildInfo, Module};

/// The value Go's text form can represent: no checksum on replaced modules.
fn representable(mut bi: BuildInfo) -> BuildInfo {
    fn clear(m: &mut Module) {
        if m.replace.is_some() {
            m.sum.clear();
        }
    }
    clear(&mut bi.main);
    bi.deps.iter_mut().for_each(clear);
    bi
}

fuzz_target!(|data: &[u8]| {
    let Ok(first) = goinfo::parse_modinfo(data) else {
        return;
    };
    // `parse_modinfo` never sets the Go version, so `format_modinfo` prints no `go` line.
    assert!(first.go_version.is_empty());
    let text = goinfo::format_modinfo(&first);
    let second = match goinfo::parse_modinfo(&text) {
        Ok(bi) => bi,
        Err(e) => panic!("formatted build info does not parse: {e}\n{:?}", String::from_utf8_lossy(&text)),
    };
    assert_eq!(representable(first), second, "round trip changed the value");
    assert_eq!(goinfo::format_modinfo(&second), text, "round trip changed the text");
});
