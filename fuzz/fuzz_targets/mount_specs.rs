//! The `--bind`/`--tmpfs`/`--overlay`/... value syntax, shared by the
//! command line and settings files: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnspawn::mount::spec;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = spec::parse_bind(s, false);
        let _ = spec::parse_bind(s, true);
        let _ = spec::parse_tmpfs(s);
        let _ = spec::parse_overlay(s, false);
        let _ = spec::parse_overlay(s, true);
        let _ = spec::parse_inaccessible(s);
        let _ = spec::parse_set_credential(s);
        let _ = spec::parse_pivot_root(s);
        let _ = spec::split_colons(s);
        let _ = libnspawn::settings::parse_signal(s);
        let _ = libnspawn::Id128::parse(s);
        let _ = libnspawn::settings::machine_name_from_path(s);
    }
});
