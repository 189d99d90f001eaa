//! Bridges: `--network-bridge` joins one the user made; `--network-zone`
//! joins `vz-ZONE`, made on first use and removed with its last member.
//!
//! Creating a zone bridge, joining it and removing an empty one happen under
//! one host-wide lock (`/run/nspawn/net.lock`), so a container joining a zone
//! cannot lose its bridge to another container leaving it.

use super::links::{self, IFNAME_MAX};
use super::rtnl::{fail, Rtnl};
use crate::error::{Context, Error, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;

pub const RUN_DIR: &str = "/run/nspawn";

/// The bridge of zone `zone`.
pub fn zone_bridge(zone: &str) -> String {
    format!("vz-{zone}")
}

/// Whether `zone` gives a valid bridge name (the reference's check).
pub fn zone_is_valid(zone: &str) -> bool {
    !zone.is_empty()
        && links::name_is_valid(&zone_bridge(zone))
        && zone_bridge(zone).len() <= IFNAME_MAX
}

/// The host-wide lock for zones and address allocation, held until dropped.
pub fn lock() -> Result<crate::lock::Lock> {
    std::fs::create_dir_all(RUN_DIR).ctx(|| format!("cannot create {RUN_DIR}"))?;
    let path = std::path::Path::new(RUN_DIR).join("net.lock");
    crate::lock::open_locked(&path, true, true)?
        .ok_or_else(|| Error::invalid(format!("cannot lock {}", path.display())))
}

/// Check that `name` exists and is a bridge, before anything is created.
pub fn check_existing(rt: &mut Rtnl, name: &str) -> Result<u32> {
    let link = links::find(rt, name)?
        .ok_or_else(|| fail(|| format!("cannot use bridge {name}"), Errno::ENODEV))?;
    if !links::is_kind(&link, &InfoKind::Bridge) {
        return Err(Error::invalid(format!(
            "cannot use bridge {name}: not a bridge"
        )));
    }
    Ok(link.header.index)
}

/// Make the zone's bridge unless it exists, and bring it up. The caller
/// holds `lock()`.
pub fn ensure_zone(rt: &mut Rtnl, bridge: &str) -> Result<u32> {
    if let Ok(idx) = check_existing(rt, bridge) {
        return Ok(idx);
    }
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(bridge.to_string()));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    rt.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
        .map_err(|e| fail(|| format!("cannot create bridge {bridge}"), e))?;
    links::set_up(rt, bridge, None)?;
    links::index(rt, bridge)
}

/// Whether bridge `name` has no member left (or is gone).
pub fn is_empty(name: &str) -> bool {
    match std::fs::read_dir(format!("/sys/class/net/{name}/brif")) {
        Ok(mut d) => d.next().is_none(),
        Err(_) => true,
    }
}

/// Remove a zone's bridge if nobody is in it any more. Takes the lock.
pub fn remove_zone_if_empty(bridge: &str) -> Result<()> {
    let _lock = lock()?;
    if !is_empty(bridge) {
        return Ok(());
    }
    let mut rt = Rtnl::open()?;
    links::delete(&mut rt, bridge)
}
