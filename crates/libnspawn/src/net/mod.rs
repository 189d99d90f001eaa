//! The container's network: the settings (`NetSettings`) and what the runner
//! does with them between `clone3` and the payload's start (`setup`), and
//! after the container's end (`Network`'s drop).
//!
//! | file | owns |
//! |---|---|
//! | `rtnl` | a synchronous rtnetlink socket, in our or the container's namespace |
//! | `links` | veth, MACVLAN/IPVLAN, moving host interfaces, interface names |
//! | `bridge` | `--network-bridge`, zone bridges, the host-wide lock |
//! | `spec` | the option syntax (ports, interface pairs) |
//! | `addr` | IPv4 subnets from a private pool, addresses, default route |
//! | `dhcp` | a DHCP server for the container's `host0`, run from the runner's poll loop |
//! | `nat` | the machine's nftables table (masquerading, `--port`), IPv4 forwarding |
//! | `record` | the per-machine record under /run/nspawn/net, sweeping stale ones |

pub mod addr;
pub mod bridge;
pub mod dhcp;
pub mod links;
pub mod nat;
mod nftq;
pub mod record;
pub mod rtnl;
pub mod spec;

use crate::error::{Context, Error, Result};
use links::Stacked;
use rtnl::Rtnl;
pub use spec::{NetSettings, Port, Proto};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Checks made before anything is created: named bridges and host
/// interfaces exist, the host ends' names are free, a namespace path is a
/// network namespace. Returns the opened namespace for
/// `--network-namespace-path`.
pub fn check(s: &NetSettings, machine: &str) -> Result<Option<OwnedFd>> {
    if !s.wants_links() {
        return s.namespace_path.as_deref().map(open_netns).transpose();
    }
    let mut rt = Rtnl::open()?;
    let ours = host_link_name(s, machine);
    if let Some(short) = ours.as_deref().filter(|n| n.len() < machine.len() + 3) {
        // As the reference, even with --quiet: scripts may look for it.
        eprintln!(
            "Network interface name '{}{machine}' has been changed to '{short}' to fit length constraints.",
            &short[..3]
        );
    }
    for name in ours.iter().chain(s.veth_extra.iter().map(|(h, _)| h)) {
        if links::find(&mut rt, name)?.is_some() {
            return Err(rtnl::fail(
                || format!("cannot create veth link {name}"),
                nix::errno::Errno::EEXIST,
            ));
        }
    }
    if let Some(br) = &s.bridge {
        bridge::check_existing(&mut rt, br)?;
    }
    for (name, _) in s.interfaces.iter().chain(&s.macvlan).chain(&s.ipvlan) {
        links::index(&mut rt, name)?;
    }
    s.namespace_path.as_deref().map(open_netns).transpose()
}

/// Open a network namespace file, refusing anything else.
fn open_netns(path: &std::path::Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", path.display()))?;
    // NS_GET_NSTYPE (ioctl_ns(2)) fails on anything but a namespace file.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an argument-less ioctl on a descriptor we own.
    let t = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), NS_GET_NSTYPE as _) };
    if t != libc::CLONE_NEWNET {
        return Err(Error::invalid(format!(
            "Path {} doesn't refer to a network namespace, refusing.",
            path.display()
        )));
    }
    Ok(fd)
}

/// What the runner made for one run of the container; undone on drop.
pub struct Network {
    /// Keeps the container's namespace alive after its last process, so
    /// moved interfaces can be given back (a veth would die with it).
    netns: OwnedFd,
    host_links: Vec<String>,
    zone: Option<String>,
    /// (host name, name inside) of `--network-interface` links.
    moved: Vec<(String, String)>,
    /// Serves `host0` its address to guests that ask.
    pub dhcp: Option<dhcp::Server>,
    /// The machine whose nftables table we installed.
    nat: Option<String>,
}

fn host0_host_name(s: &NetSettings, machine: &str) -> String {
    let prefix = if s.bridge.is_some() || s.zone.is_some() {
        "vb-"
    } else {
        "ve-"
    };
    links::shorten(&format!("{prefix}{machine}"))
}

/// The host-side name of the main veth link, if the settings make one.
pub fn host_link_name(s: &NetSettings, machine: &str) -> Option<String> {
    s.wants_veth().then(|| host0_host_name(s, machine))
}

/// Make the links of container process `pid` (in a new network namespace),
/// and give them the addresses in `record`.
pub fn setup(
    s: &NetSettings,
    machine: &str,
    pid: u32,
    record: Option<&record::Held>,
) -> Result<Network> {
    let netns = nix::fcntl::open(
        format!("/proc/{pid}/ns/net").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "cannot open the container's network namespace".into())?;
    let mut net = Network {
        netns,
        host_links: vec![],
        zone: None,
        moved: vec![],
        dhcp: None,
        nat: None,
    };
    let mut rt = Rtnl::open()?;
    if let Some(host) = host_link_name(s, machine) {
        links::add_veth(&mut rt, &host, "host0", pid)?;
        net.host_links.push(host.clone());
        let master = match (&s.bridge, &s.zone) {
            (Some(br), _) => Some(bridge::check_existing(&mut rt, br)?),
            (_, Some(zone)) => {
                let br = bridge::zone_bridge(zone);
                let _lock = bridge::lock()?;
                net.zone = Some(br.clone());
                let idx = bridge::ensure_zone(&mut rt, &br)?;
                // Joined under the lock: an empty new bridge must not be
                // removed by a container leaving the zone meanwhile.
                links::set_up(&mut rt, &host, Some(idx))?;
                None
            }
            _ => None,
        };
        if s.zone.is_none() {
            links::set_up(&mut rt, &host, master)?;
        }
    }
    for (host, inner) in &s.veth_extra {
        links::add_veth(&mut rt, host, inner, pid)?;
        net.host_links.push(host.clone());
        links::set_up(&mut rt, host, None)?;
    }
    for (lower, name) in &s.macvlan {
        links::add_stacked(&mut rt, Stacked::MacVlan, lower, &links::shorten(name), pid)?;
    }
    for (lower, name) in &s.ipvlan {
        links::add_stacked(&mut rt, Stacked::IpVlan, lower, &links::shorten(name), pid)?;
    }
    for (host, inner) in &s.interfaces {
        links::move_to(&mut rt, host, net.netns.as_fd(), inner)?;
        net.moved.push((host.clone(), inner.clone()));
    }
    if let Some(r) = record {
        configure(&mut rt, &mut net, r, &s.ports)?;
    }
    Ok(net)
}

/// Host end (or zone bridge) .1, `host0` its own address and a default
/// route through the host, configured before the payload starts so guests
/// that configure nothing (busybox) are reachable. IPv6 link-local
/// addresses come by themselves once the links are up.
fn configure(rt: &mut Rtnl, net: &mut Network, held: &record::Held, ports: &[Port]) -> Result<()> {
    let r = &held.record;
    let (Some(subnet), Some(host_ip), Some(ip)) = (r.subnet, r.host_addr, r.container_addr) else {
        return Ok(());
    };
    let host_side = match (&r.zone, &r.host_link) {
        (Some(z), _) => z,
        (None, Some(l)) => l,
        _ => return Ok(()),
    };
    if addr::link_address(rt, host_side)?.is_none() {
        addr::add(rt, host_side, host_ip, subnet)?;
    }
    let mut inside = Rtnl::open_in(net.netns.as_fd())?;
    addr::add(&mut inside, "host0", ip, subnet)?;
    links::set_up(&mut inside, "host0", None)?;
    addr::add_default_route(&mut inside, "host0", host_ip)?;
    let mac = links::mac(&mut inside, "host0")?;
    net.dhcp = Some(dhcp::Server::open(host_side, mac, host_ip, ip, subnet)?);
    net.nat = Some(r.machine.clone());
    nat::install_finish(held.installing(), ports, host_side)
}

impl Network {
    fn give_back(&self) -> Result<()> {
        let host = nix::fcntl::open(
            "/proc/self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| "cannot open the host's network namespace".into())?;
        let mut inside = Rtnl::open_in(self.netns.as_fd())?;
        for (name, inner) in &self.moved {
            links::move_to(&mut inside, inner, host.as_fd(), name)?;
        }
        Ok(())
    }

    pub fn netns(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.moved.is_empty() {
            if let Err(e) = self.give_back() {
                eprintln!("nspawn: {e}");
            }
        }
        // The table and the links each cost the kernel a grace period or
        // two: both at once (`nft` removes the table while we remove the
        // links); the record's release then finds no table.
        let table = self.nat.as_deref().and_then(nat::remove_start);
        // The kernel removes veth links with the namespace, but only once
        // its last reference is gone, asynchronously: remove ours now so a
        // zone is seen empty and a restart can reuse the names.
        if let Ok(mut rt) = Rtnl::open() {
            for l in &self.host_links {
                let _ = links::delete(&mut rt, l);
            }
        }
        if let Some(t) = table {
            let _ = t.wait();
        }
        if let Some(zone) = &self.zone {
            if let Err(e) = bridge::remove_zone_if_empty(zone) {
                eprintln!("nspawn: {e}");
            }
        }
    }
}

/// Whether the container reaches the host's resolvers: it gets our
/// addresses (and so is masqueraded), and none of the host's nameservers is
/// a loopback address (the container's loopback is its own). Then the
/// `auto` `/etc/resolv.conf` is the host's, as without a private network.
pub fn reaches_host_resolvers(s: &NetSettings) -> bool {
    if !record::wants_addresses(s) {
        return false;
    }
    let Ok(conf) = std::fs::read_to_string("/etc/resolv.conf") else {
        return false;
    };
    let servers: Vec<std::net::IpAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    !servers.is_empty() && servers.iter().all(|a| a.is_ipv4() && !a.is_loopback())
}

/// Bring the loopback link up in our own (the container's new) namespace.
pub fn loopback_up() -> Result<()> {
    let mut rt = Rtnl::open()?;
    links::set_up(&mut rt, "lo", None)
}
