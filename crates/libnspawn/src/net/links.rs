//! Links: veth pairs, MACVLAN/IPVLAN links on a host interface, host
//! interfaces moved into the container and back, over rtnetlink.

use super::rtnl::{fail, Rtnl};
use crate::error::Result;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, IpVlanMode, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use std::hash::Hasher;
use std::os::fd::{AsRawFd, BorrowedFd};

/// IFNAMSIZ less the terminating NUL.
pub const IFNAME_MAX: usize = 15;

/// The key systemd-nspawn hashes long interface names with, so that a
/// machine's links carry the same names under both implementations
/// (scripts and firewall rules refer to them).
const SHORTEN_KEY: [u8; 16] = [
    0xe1, 0x90, 0xa4, 0x04, 0xa8, 0xef, 0x4b, 0x51, 0x8c, 0xcc, 0xc3, 0x3a, 0x9f, 0x11, 0xfc, 0xa2,
];

/// Shorten a name longer than 15 bytes as the reference does: its first 11
/// bytes, then 24 bits of the SipHash-2-4 of the whole name in 4 URL-safe
/// base64 characters.
pub fn shorten(name: &str) -> String {
    if name.len() <= IFNAME_MAX {
        return name.to_string();
    }
    let mut h = siphasher::sip::SipHasher24::new_with_key(&SHORTEN_KEY);
    h.write(name.as_bytes());
    let h = h.finish();
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out: Vec<u8> = name.as_bytes()[..IFNAME_MAX - 4].to_vec();
    for shift in [18, 12, 6, 0] {
        out.push(B64[((h >> shift) & 63) as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kernel's rules for interface names (dev_valid_name()), plus no `:`,
/// which our option syntax uses as a separator.
pub fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b < 0x20)
}

fn by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

/// Create a veth pair: `host` here, `peer` in the namespace of `pid`.
pub fn add_veth(rt: &mut Rtnl, host: &str, peer: &str, pid: u32) -> Result<()> {
    let mut p = by_name(peer);
    p.attributes.push(LinkAttribute::NetNsPid(pid));
    let mut m = by_name(host);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    rt.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(|e| {
            fail(
                || format!("cannot create veth link {host} ({peer} inside)"),
                e,
            )
        })
}

/// Which kind of link `new_on` makes on top of a host interface.
#[derive(Clone, Copy)]
pub enum Stacked {
    MacVlan,
    IpVlan,
}

/// Create a MACVLAN (bridge mode) or IPVLAN (L2) link on host interface
/// `lower`, named `name`, straight in the namespace of `pid`.
pub fn add_stacked(rt: &mut Rtnl, kind: Stacked, lower: &str, name: &str, pid: u32) -> Result<()> {
    let lower_idx = index(rt, lower)?;
    let mut m = by_name(name);
    m.attributes.push(LinkAttribute::Link(lower_idx));
    m.attributes.push(LinkAttribute::NetNsPid(pid));
    let (kind_attr, data, what) = match kind {
        Stacked::MacVlan => (
            InfoKind::MacVlan,
            InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Bridge)]),
            "MACVLAN",
        ),
        Stacked::IpVlan => (
            InfoKind::IpVlan,
            InfoData::IpVlan(vec![InfoIpVlan::Mode(IpVlanMode::L2)]),
            "IPVLAN",
        ),
    };
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(kind_attr),
        LinkInfo::Data(data),
    ]));
    rt.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(|e| fail(|| format!("cannot create {what} link {name} on {lower}"), e))
}

/// Move link `name` into the namespace `netns`, renamed to `new_name`.
pub fn move_to(rt: &mut Rtnl, name: &str, netns: BorrowedFd, new_name: &str) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index(rt, name)?;
    m.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
    if new_name != name {
        m.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
    }
    rt.request(RouteNetlinkMessage::SetLink(m), 0)
        .map_err(|e| fail(|| format!("cannot move interface {name}"), e))
}

/// The index of link `name`; ENODEV as "name: No such device".
pub fn index(rt: &mut Rtnl, name: &str) -> Result<u32> {
    find(rt, name)?
        .map(|m| m.header.index)
        .ok_or_else(|| fail(|| format!("cannot find interface {name}"), Errno::ENODEV))
}

/// The link called `name`, if there is one.
pub fn find(rt: &mut Rtnl, name: &str) -> Result<Option<LinkMessage>> {
    Ok(rt
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l)
                if l.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name)) =>
            {
                Some(l)
            }
            _ => None,
        }))
}

/// The Ethernet address of link `name`.
pub fn mac(rt: &mut Rtnl, name: &str) -> Result<[u8; 6]> {
    find(rt, name)?
        .and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Address(v) => v.try_into().ok(),
                _ => None,
            })
        })
        .ok_or_else(|| {
            fail(
                || format!("cannot read the address of {name}"),
                Errno::ENODEV,
            )
        })
}

/// Whether `link` is of kind `kind` ("bridge", "veth"...).
pub fn is_kind(link: &LinkMessage, kind: &InfoKind) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(k) if k == kind)),
        _ => false,
    })
}

/// Bring link `name` up, optionally enslaving it to bridge index `master`.
pub fn set_up(rt: &mut Rtnl, name: &str, master: Option<u32>) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index(rt, name)?;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    if let Some(idx) = master {
        m.attributes.push(LinkAttribute::Controller(idx));
    }
    rt.request(RouteNetlinkMessage::SetLink(m), 0)
        .map_err(|e| fail(|| format!("cannot bring up interface {name}"), e))
}

/// Delete link `name`; one that is already gone is fine.
pub fn delete(rt: &mut Rtnl, name: &str) -> Result<()> {
    match rt.request(RouteNetlinkMessage::DelLink(by_name(name)), 0) {
        Ok(()) | Err(Errno::ENODEV) => Ok(()),
        Err(e) => Err(fail(|| format!("cannot remove interface {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_as_the_reference() {
        // Names the reference (systemd 252) gave on this host.
        assert_eq!(
            shorten("ve-nettest-averyveryverylongname"),
            "ve-nettest-WKBe"
        );
        assert_eq!(
            shorten("vb-nettest-averyveryverylongname"),
            "vb-nettest-Nq2O"
        );
        assert_eq!(shorten("ve-short"), "ve-short");
        assert_eq!(shorten("ve-exactly15chr").len(), 15);
    }

    #[test]
    fn names() {
        assert!(name_is_valid("host0"));
        for bad in ["", "a/b", "a:b", "a b", "sixteen-chars-xx", ".", ".."] {
            assert!(!name_is_valid(bad), "{bad:?}");
        }
    }
}
