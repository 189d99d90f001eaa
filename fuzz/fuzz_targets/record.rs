//! A machine record in /run/nspawn/machines, as nspawnctl and the NSS
//! module read it: no input may panic, and a record read is one a runner
//! could have written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(r) = nspawn_registry::parse(data) {
        assert!(nspawn_registry::machine_name_is_valid(&r.name));
        assert!(r.leader > 0 && r.runner > 0);
        assert!(r.addresses.len() <= 64 && r.interfaces.len() <= 64);
    }
});
