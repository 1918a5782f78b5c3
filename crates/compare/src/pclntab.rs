//! The name of the Go function at an address, from Go's function table
//! (`.gopclntab`), which a binary keeps when its symbol table is stripped.
//!
//! Only the layout of Go 1.18 and later is read (`runtime.pcHeader` with the
//! magic `0xfffffff0` or `0xfffffff1`):
//!
//! ```text
//! magic u32, pad u8, pad u8, minLC u8, ptrSize u8,
//! nfunc int, nfiles uint, textStart (zero since Go 1.23), funcnameOffset, cuOffset, filetabOffset,
//! pctabOffset, pclnOffset (each ptrSize bytes)
//! ```
//!
//! At `pclnOffset`, `nfunc + 1` pairs `(entryOff u32, funcOff u32)` sorted by
//! entry; at `pclnOffset + funcOff`, a `runtime._func` that starts with
//! `entryOff u32, nameOff i32`; the name is NUL-terminated at
//! `funcnameOffset + nameOff`. A function's entry is `textStart + entryOff`.
//! Anything out of bounds or out of order gives `None`: the table is read from
//! the file as it is, which may have been edited.

/// The function whose code holds `address`, and the offset of `address` within it.
/// `text` is the address of the text section, which Go 1.23 and later no longer store
/// in the header (`textStart` is zero; `debug/gosym` takes it from the caller too).
pub(crate) fn function_at(table: &[u8], little: bool, text: Option<u64>, address: u64) -> Option<(String, u64)> {
    let word = |at: usize, size: usize| -> Option<u64> {
        let bytes = table.get(at..at.checked_add(size)?)?;
        let mut v = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            let shift = if little { 8 * i } else { 8 * (size - 1 - i) };
            v |= u64::from(b) << shift;
        }
        Some(v)
    };
    let magic = word(0, 4)?;
    if magic != 0xffff_fff0 && magic != 0xffff_fff1 {
        return None;
    }
    let ptr = usize::from(*table.get(7)?);
    if ptr != 4 && ptr != 8 {
        return None;
    }
    let field = |i: usize| word(8 + i * ptr, ptr);
    let nfunc = usize::try_from(field(0)?).ok()?;
    let text_start = match field(2)? {
        0 => text?,
        stored => stored,
    };
    let funcname = usize::try_from(field(3)?).ok()?;
    let pcln = usize::try_from(field(7)?).ok()?;
    let rel = address.checked_sub(text_start)?;
    let entry = |i: usize| word(pcln.checked_add(i.checked_mul(8)?)?, 4);
    // The last pair's entry is the end of the text.
    if nfunc == 0 || rel >= entry(nfunc)? {
        return None;
    }
    // The last function whose entry is at or below `rel`.
    let (mut lo, mut hi) = (0usize, nfunc);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if entry(mid)? <= rel {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let start = entry(lo)?;
    if start > rel {
        return None;
    }
    let func = pcln.checked_add(usize::try_from(word(pcln.checked_add(lo * 8 + 4)?, 4)?).ok()?)?;
    if word(func, 4)? != start {
        return None;
    }
    let name_off = word(func + 4, 4)? as u32 as i32;
    let name_at = funcname.checked_add(usize::try_from(name_off).ok()?)?;
    let rest = table.get(name_at..)?;
    let name = &rest[..memchr::memchr(0, rest)?];
    if name.is_empty() {
        return None;
    }
    Some((String::from_utf8_lossy(name).into_owned(), rel - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of two functions, `main.a` at text+0 and `main.b` at text+0x20, text
    /// ending at 0x40, laid out as the Go 1.20 linker does for a 64-bit target.
    fn table() -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&0xffff_fff1u32.to_le_bytes());
        t.extend_from_slice(&[0, 0, 1, 8]);
        let names = b"main.a\0main.b\0";
        let header_len = 8 + 8 * 8;
        let funcname = header_len as u64;
        let pcln = funcname + names.len() as u64;
        // nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset
        for v in [2u64, 0, 0x40_1000, funcname, 0, 0, 0, pcln] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(names);
        // functab: (entryOff, funcOff) for each, then the end.
        let funcs = 3 * 8u32;
        for (entry, func) in [(0u32, funcs), (0x20, funcs + 8), (0x40, 0)] {
            t.extend_from_slice(&entry.to_le_bytes());
            t.extend_from_slice(&func.to_le_bytes());
        }
        for (entry, name) in [(0u32, 0i32), (0x20, 7)] {
            t.extend_from_slice(&entry.to_le_bytes());
            t.extend_from_slice(&name.to_le_bytes());
        }
        t
    }

    #[test]
    fn functions_are_found_by_address() {
        let t = table();
        assert_eq!(function_at(&t, true, None, 0x40_1000), Some(("main.a".into(), 0)));
        assert_eq!(function_at(&t, true, None, 0x40_101f), Some(("main.a".into(), 0x1f)));
        assert_eq!(function_at(&t, true, None, 0x40_1025), Some(("main.b".into(), 5)));
        assert_eq!(function_at(&t, true, None, 0x40_1040), None, "past the end of the text");
        assert_eq!(function_at(&t, true, None, 0x40_0fff), None, "before the text");
        // Without textStart in the header, the text section's address counts.
        let mut zero = t.clone();
        zero[8 + 16..8 + 24].fill(0);
        assert_eq!(function_at(&zero, true, None, 0x40_1025), None);
        assert_eq!(function_at(&zero, true, Some(0x40_1000), 0x40_1025), Some(("main.b".into(), 5)));
    }

    #[test]
    fn damaged_tables_give_nothing() {
        let t = table();
        for cut in 0..t.len() {
            let _ = function_at(&t[..cut], true, None, 0x40_1025);
        }
        let mut bad = t.clone();
        bad[0] = 0;
        assert_eq!(function_at(&bad, true, None, 0x40_1000), None);
        // A _func whose entry disagrees with the table.
        let mut bad = t;
        let at = bad.len() - 8;
        bad[at] = 9;
        assert_eq!(function_at(&bad, true, None, 0x40_1025), None);
        assert_eq!(function_at(&bad, true, None, 0x40_1000), Some(("main.a".into(), 0)));
    }
}
