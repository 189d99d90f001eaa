//! A datagram a guest sends to the runner's DHCP server: no input may
//! panic, and an answer goes only to host0's MAC, broadcast or to the
//! client's own address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnspawn::net::addr::Subnet;
use libnspawn::net::dhcp::{respond, Lease};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let lease = Lease {
        mac: [2, 0, 0, 0, 0, 1],
        server: Ipv4Addr::new(192, 168, 0, 1),
        client: Ipv4Addr::new(192, 168, 0, 2),
        subnet: Subnet::parse("192.168.0.0/28").unwrap(),
    };
    // The first byte picks the source address the datagram came from.
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let from = match pick % 4 {
        0 => Ipv4Addr::UNSPECIFIED,
        1 => lease.client,
        2 => lease.server,
        _ => Ipv4Addr::new(192, 168, 0, 3),
    };
    if let Some((to, reply)) = respond(&lease, packet, from) {
        assert!(to == Ipv4Addr::BROADCAST || to == lease.client);
        assert!(from.is_unspecified() || from == lease.client);
        assert_eq!(reply[0], 2);
        assert_eq!(reply[28..34], lease.mac);
        assert!(reply.len() >= 300 && reply.len() <= 576);
    }
});
