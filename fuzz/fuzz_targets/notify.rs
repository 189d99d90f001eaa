//! A message on the guest's $NOTIFY_SOCKET: no input may panic, and what
//! is kept of it is bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnspawn::notify::parse;

fuzz_target!(|data: &[u8]| {
    let n = parse(data);
    assert!(n.main_pid.is_none_or(|p| p > 0));
    assert!(n.status.is_none_or(|s| s.len() <= 256));
});
