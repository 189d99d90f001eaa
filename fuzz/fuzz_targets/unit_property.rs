//! `--property=NAME=VALUE`: no input may panic, and whatever parses comes
//! out with a name systemd knows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnspawn::systemd::property;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(props) = property::parse(s) {
            assert!(!props.is_empty());
            for p in props {
                assert!(s.starts_with(p.name.trim_end_matches("Scale"))
                    || p.name.ends_with("USec"));
            }
        }
    }
});
