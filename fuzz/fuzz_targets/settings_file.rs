//! A `.nspawn` file is untrusted input: its text, through the unit-file
//! parser, the key table and the command line's own value checks, must
//! never panic, trusted or not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nspawn::cli::settings_file::options_from_text(text, true);
        let _ = nspawn::cli::settings_file::options_from_text(text, false);
        if let Ok((entries, _)) = libnspawn::unitfile::parse(text) {
            for e in entries {
                let _ = libnspawn::unitfile::split_words(&e.value);
            }
        }
    }
});
