//! A machine's os-release, as `nspawnctl status` and `image-status` read
//! it: no input may panic, and what is kept of it is bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnspawn::env::parse_os_release;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs = parse_os_release(&text);
    assert!(pairs.len() <= 128);
    for (k, v) in pairs {
        assert!(!k.is_empty() && k.len() <= 64);
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert!(v.len() <= 512);
    }
});
