//! IPv4 addresses for the links we make (beyond the reference, which leaves
//! them to systemd-networkd): subnets from a private pool that clash with
//! nothing the host routes already, addresses and a default route.

use super::links;
use super::rtnl::{fail, Rtnl};
use crate::error::{Error, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Where subnets come from: 192.168.0.0/16, as systemd-networkd's default
/// pool for its own container links (RFC 1918).
const POOL: Subnet = Subnet {
    base: Ipv4Addr::new(192, 168, 0, 0),
    prefix: 16,
};

/// A veth link gets a /28 (host, container, room for --network-veth-extra
/// users); a zone a /24 for all its members.
pub const VETH_PREFIX: u8 = 28;
pub const ZONE_PREFIX: u8 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet {
            base: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    pub fn overlaps(&self, o: &Subnet) -> bool {
        let m = mask(self.prefix.min(o.prefix));
        u32::from(self.base) & m == u32::from(o.base) & m
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.overlaps(&Subnet::new(a, 32))
    }

    /// The `n`th address (1 = the host's end).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }

    /// Usable host numbers (network and broadcast excluded).
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, p) = s.split_once('/')?;
        let p: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        Some(Subnet::new(a.parse().ok()?, p))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Every IPv4 prefix the host routes or has an address in, in any table,
/// but the default route (which overlaps everything).
pub fn host_subnets(rt: &mut Rtnl) -> Result<Vec<Subnet>> {
    let mut out = vec![];
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    for m in rt.dump(RouteNetlinkMessage::GetRoute(req))? {
        if let RouteNetlinkMessage::NewRoute(r) = m {
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                _ => None,
            });
            if let (Some(d), p) = (dst, r.header.destination_prefix_length) {
                if p > 0 {
                    out.push(Subnet::new(d, p));
                }
            }
        }
    }
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    for m in rt.dump(RouteNetlinkMessage::GetAddress(req))? {
        if let RouteNetlinkMessage::NewAddress(a) = m {
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(v4)) = attr {
                    out.push(Subnet::new(*v4, a.header.prefix_len));
                }
            }
        }
    }
    Ok(out)
}

/// The first subnet of the pool of size `prefix` that overlaps none of
/// `taken`.
pub fn allocate(prefix: u8, taken: &[Subnet]) -> Result<Subnet> {
    let step = 1u32 << (32 - prefix);
    let count = 1u32 << (prefix - POOL.prefix);
    (0..count)
        .map(|i| Subnet::new(Ipv4Addr::from(u32::from(POOL.base) + i * step), prefix))
        .find(|s| !taken.iter().any(|t| t.overlaps(s)))
        .ok_or_else(|| Error::invalid(format!("no free /{prefix} subnet left in {POOL}")))
}

/// The first IPv4 address (and its subnet) on link `name`, if any.
pub fn link_address(rt: &mut Rtnl, name: &str) -> Result<Option<(Ipv4Addr, Subnet)>> {
    let idx = links::index(rt, name)?;
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    for m in rt.dump(RouteNetlinkMessage::GetAddress(req))? {
        if let RouteNetlinkMessage::NewAddress(a) = m {
            if a.header.index != idx {
                continue;
            }
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(v4)) = attr {
                    return Ok(Some((*v4, Subnet::new(*v4, a.header.prefix_len))));
                }
            }
        }
    }
    Ok(None)
}

/// Give link `name` the address `addr` in `net`.
pub fn add(rt: &mut Rtnl, name: &str, addr: Ipv4Addr, net: Subnet) -> Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = net.prefix;
    m.header.index = links::index(rt, name)?;
    m.attributes.push(AddressAttribute::Local(addr.into()));
    m.attributes.push(AddressAttribute::Address(addr.into()));
    m.attributes
        .push(AddressAttribute::Broadcast(net.host(net.hosts() + 1)));
    rt.request(
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(|e| {
        fail(
            || format!("cannot add address {addr}/{} to {name}", net.prefix),
            e,
        )
    })
}

/// A default route through `gw` on link `name`.
pub fn add_default_route(rt: &mut Rtnl, name: &str, gw: Ipv4Addr) -> Result<()> {
    let mut m = RouteMessage::default();
    m.header = RouteHeader {
        address_family: AddressFamily::Inet,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..Default::default()
    };
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    m.attributes
        .push(RouteAttribute::Oif(links::index(rt, name)?));
    rt.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(|e| fail(|| format!("cannot add a default route through {gw}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_what_is_taken() {
        let taken = [
            Subnet::parse("192.168.0.0/24").unwrap(),
            Subnet::parse("192.168.1.16/28").unwrap(),
        ];
        assert_eq!(allocate(28, &taken).unwrap().to_string(), "192.168.1.0/28");
        let taken = [Subnet::parse("192.168.1.5/32").unwrap(), taken[0]];
        assert_eq!(allocate(28, &taken).unwrap().to_string(), "192.168.1.16/28");
        assert_eq!(allocate(24, &taken).unwrap().to_string(), "192.168.2.0/24");
        assert!(allocate(24, &[Subnet::parse("192.0.0.0/8").unwrap()]).is_err());
    }

    #[test]
    fn subnet_arithmetic() {
        let s = Subnet::parse("192.168.3.77/28").unwrap();
        assert_eq!(s.to_string(), "192.168.3.64/28");
        assert_eq!(s.host(1), Ipv4Addr::new(192, 168, 3, 65));
        assert_eq!(s.hosts(), 14);
        assert!(s.contains(Ipv4Addr::new(192, 168, 3, 79)));
        assert!(!s.contains(Ipv4Addr::new(192, 168, 3, 80)));
    }
}
