//! Fuzzes the parsers of ClickHouse server output, `rvbbit_sql_text::server`.
//!
//! The input, read lossily as UTF-8, is a server's answer (an error message or
//! `version()` output):
//! - neither `error_code` nor `parse_version` panics;
//! - `error_code(s) == Some(n)` only if `s` contains `Code: {n}`;
//! - a version that parses prints as `major.minor` and parses back to itself.
//!
//! Its first 8 bytes are also read as two u32 `a`, `b` and the rest as a tail `c`:
//! `parse_version("{a}.{b}.{c}")` is `a.b`, whatever `c` is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvbbit_sql_text::server::{error_code, parse_version, Version};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Some(n) = error_code(&text) {
        assert!(
            text.contains(&format!("Code: {n}")),
            "error_code({text:?}) = {n}"
        );
    }

    if let Some(v) = parse_version(&text) {
        assert_eq!(
            parse_version(&v.to_string()),
            Some(v),
            "{text:?} parsed as {v}"
        );
    }

    if let (Some(a), Some(b)) = (data.get(0..4), data.get(4..8)) {
        let a = u32::from_le_bytes(a.try_into().unwrap());
        let b = u32::from_le_bytes(b.try_into().unwrap());
        let c = String::from_utf8_lossy(&data[8..]);
        let version = format!("{a}.{b}.{c}");
        assert_eq!(
            parse_version(&version),
            Some(Version { major: a, minor: b }),
            "parse_version({version:?})"
        );
    }
});
