//! One record per running machine with a network, `/run/nspawn/net/NAME`:
//! what it holds on the host (its host link, zone, subnet and addresses) so
//! that allocation sees what others hold, and so that whoever outlives the
//! runner (the reaper, or the next start's sweep) can remove it.
//!
//! The runner holds `flock(2)` on its record while it lives, and the reaper
//! inherits that lock; a record nobody has locked is stale. Creating,
//! sweeping and allocating happen under the host-wide `bridge::lock()`.

use super::addr::{self, Subnet};
use super::{bridge, links, nat, rtnl::Rtnl, NetSettings};
use crate::error::{Context, Error, Result};
use crate::lock::{open_locked, Lock};
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

const DIR: &str = "/run/nspawn/net";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The machine (the record's file name; not written in it).
    pub machine: String,
    /// The host end of the main veth link.
    pub host_link: Option<String>,
    /// The zone's bridge (`vz-ZONE`).
    pub zone: Option<String>,
    pub subnet: Option<Subnet>,
    pub host_addr: Option<Ipv4Addr>,
    pub container_addr: Option<Ipv4Addr>,
    /// The host ports it forwards (`--port`), as `tcp:8080`.
    pub ports: Vec<String>,
}

impl Record {
    fn to_text(&self) -> String {
        let mut s = String::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!("{k}={v}\n"));
            }
        };
        put("host_link", self.host_link.clone());
        put("zone", self.zone.clone());
        put("subnet", self.subnet.map(|s| s.to_string()));
        put("host_address", self.host_addr.map(|a| a.to_string()));
        put(
            "container_address",
            self.container_addr.map(|a| a.to_string()),
        );
        put(
            "ports",
            (!self.ports.is_empty()).then(|| self.ports.join(" ")),
        );
        s
    }

    fn parse(machine: &str, text: &str) -> Record {
        let mut r = Record {
            machine: machine.to_string(),
            ..Default::default()
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "host_link" => r.host_link = Some(v.to_string()),
                "zone" => r.zone = Some(v.to_string()),
                "subnet" => r.subnet = Subnet::parse(v),
                "host_address" => r.host_addr = v.parse().ok(),
                "container_address" => r.container_addr = v.parse().ok(),
                "ports" => r.ports = v.split_whitespace().map(str::to_string).collect(),
                _ => {}
            }
        }
        r
    }

    /// Undo what the record says on the host, once the container is gone:
    /// its nftables table; its veth end vanishes with the container's
    /// namespace, then a zone left empty is removed. `locked`: the caller
    /// holds the network lock.
    pub fn clean_host(&self, locked: bool) {
        // Removed while we wait for the links (see `Network`'s drop).
        let table = self
            .container_addr
            .and_then(|_| nat::remove_start(&self.machine));
        if let Some(l) = &self.host_link {
            // The kernel tears a dead namespace down asynchronously.
            for _ in 0..300 {
                if !std::path::Path::new("/sys/class/net").join(l).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if let Ok(mut rt) = Rtnl::open() {
                let _ = links::delete(&mut rt, l);
            }
        }
        if let Some(t) = table {
            let _ = t.wait();
        }
        match (&self.zone, locked) {
            (Some(z), false) => {
                let _ = bridge::remove_zone_if_empty(z);
            }
            (Some(z), true) if bridge::is_empty(z) => {
                if let Ok(mut rt) = Rtnl::open() {
                    let _ = links::delete(&mut rt, z);
                }
            }
            _ => {}
        }
    }
}

/// A machine's record, locked for as long as this lives (and in the reaper).
pub struct Held {
    pub record: Record,
    path: PathBuf,
    lock: Lock,
    /// The `nft` installing its table, started with the record and waited
    /// for once the links are made (`net::setup`) or before the release.
    installing: std::cell::RefCell<Option<nat::Pending>>,
}

fn record_path(machine: &str) -> PathBuf {
    PathBuf::from(DIR).join(machine)
}

/// Remove the records (and what they hold) of runners and reapers that are
/// gone. The caller holds `bridge::lock()`.
fn sweep() {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if let Ok(Some(_lock)) = open_locked(&path, false, false) {
            let name = e.file_name().to_string_lossy().into_owned();
            Record::parse(&name, &std::fs::read_to_string(&path).unwrap_or_default())
                .clean_host(true);
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A forwarded host port as records write it: `tcp:8080`.
fn port_key(p: &super::Port) -> String {
    let proto = match p.proto {
        super::Proto::Tcp => "tcp",
        super::Proto::Udp => "udp",
    };
    format!("{proto}:{}", p.host)
}

/// Every record's subnet and container address, but `except`'s.
fn others(except: &std::path::Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| e.path() != except)
        .filter_map(|e| {
            let t = std::fs::read_to_string(e.path()).ok()?;
            Some(Record::parse(&e.file_name().to_string_lossy(), &t))
        })
        .collect()
}

/// Turn IPv4 forwarding off if we turned it on and no machine with an
/// address of ours is left but `path`'s. The caller holds the lock.
fn forwarding_release(path: &std::path::Path) {
    let needed = others(path).iter().any(|o| o.container_addr.is_some());
    nat::forwarding_release(needed);
}

/// Whether the settings get addresses from us: a veth link of its own
/// (`-n`) or a zone; a user's bridge is the user's to address.
pub fn wants_addresses(s: &NetSettings) -> bool {
    s.wants_veth() && s.bridge.is_none()
}

/// Make and lock the record of `machine`, sweeping stale ones and
/// allocating its addresses, before anything else is created.
pub fn reserve(s: &NetSettings, machine: &str) -> Result<Held> {
    let _lock = bridge::lock()?;
    std::fs::create_dir_all(DIR).ctx(|| format!("cannot create {DIR}"))?;
    sweep();
    let path = record_path(machine);
    forwarding_release(&path);
    let lock = open_locked(&path, true, false)?
        .ok_or_else(|| Error::invalid(format!("machine '{machine}' is already running")))?;
    // Our name's own record, left by a start whose runner and reaper were
    // both killed (we hold the name, so nobody else's): its table and
    // links go first, or the new links would clash with the old ones
    // still dying with the old namespace.
    if let Ok(old) = lock.read().map(|t| Record::parse(machine, &t)) {
        old.clean_host(true);
    }
    // Whatever fails from here leaves no record behind (nobody else may
    // have this name's path: we hold the name).
    let made = (|| -> Result<(Record, Option<nat::Pending>)> {
        let mut record = Record {
            machine: machine.to_string(),
            host_link: super::host_link_name(s, machine),
            zone: s.zone.as_deref().map(bridge::zone_bridge),
            ..Default::default()
        };
        if wants_addresses(s) {
            let others = others(&path);
            record.ports = s.ports.iter().map(port_key).collect();
            // Two DNAT rules for one host port: the first table's would win
            // in silence; refuse the second machine instead.
            for p in &record.ports {
                if let Some(o) = others.iter().find(|o| o.ports.contains(p)) {
                    return Err(Error::invalid(format!(
                        "host port {p} is already forwarded to machine {}",
                        o.machine
                    )));
                }
            }
            let mut rt = Rtnl::open()?;
            match &record.zone {
                Some(z) => {
                    // The zone's subnet is its bridge's, or a member's record's
                    // while the bridge is being made, or a new one.
                    let existing = match links::find(&mut rt, z)? {
                        Some(_) => addr::link_address(&mut rt, z)?.map(|(_, n)| n),
                        None => None,
                    };
                    let net = match existing.or_else(|| {
                        others
                            .iter()
                            .find(|o| o.zone == record.zone)
                            .and_then(|o| o.subnet)
                    }) {
                        Some(n) => n,
                        None => {
                            let mut taken = addr::host_subnets(&mut rt)?;
                            taken.extend(others.iter().filter_map(|o| o.subnet));
                            addr::allocate(addr::ZONE_PREFIX, &taken)?
                        }
                    };
                    let used: Vec<Ipv4Addr> =
                        others.iter().filter_map(|o| o.container_addr).collect();
                    let ip = (2..=net.hosts())
                        .map(|n| net.host(n))
                        .find(|a| !used.contains(a))
                        .ok_or_else(|| Error::invalid(format!("zone {z} is full")))?;
                    record.subnet = Some(net);
                    record.host_addr = Some(net.host(1));
                    record.container_addr = Some(ip);
                }
                None => {
                    let mut taken = addr::host_subnets(&mut rt)?;
                    taken.extend(others.iter().filter_map(|o| o.subnet));
                    let net = addr::allocate(addr::VETH_PREFIX, &taken)?;
                    record.subnet = Some(net);
                    record.host_addr = Some(net.host(1));
                    record.container_addr = Some(net.host(2));
                }
            }
            // Outbound traffic is forwarded and masqueraded (nat.rs).
            nat::forwarding_on()?;
        }
        lock.write(record.to_text().as_bytes())
            .ctx(|| format!("cannot write {}", path.display()))?;
        // The table needs no link: made while the container starts.
        let installing = match (record.container_addr, record.subnet) {
            (Some(ip), Some(subnet)) => {
                nat::install_start(machine, ip, subnet, &s.ports, lock.fd())?
            }
            _ => None,
        };
        Ok((record, installing))
    })();
    match made {
        Ok((record, installing)) => Ok(Held {
            record,
            path,
            lock,
            installing: installing.into(),
        }),
        Err(e) => {
            // Forwarding turned on for us goes off again if nobody else
            // needs it (we still hold the network lock).
            let _ = std::fs::remove_file(&path);
            forwarding_release(&path);
            Err(e)
        }
    }
}

impl Held {
    /// The record of `machine` that its killed runner left (for its
    /// reaper, which holds the name), once nobody holds it any more.
    pub fn adopt(machine: &str) -> Option<Held> {
        let path = record_path(machine);
        let lock = crate::lock::take_over(&path, crate::name::DYING_WAIT)?;
        let record = Record::parse(machine, &lock.read().unwrap_or_default());
        Some(Held {
            record,
            path,
            lock,
            installing: None.into(),
        })
    }

    /// The locked descriptor, for the reaper to keep.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock.fd()
    }

    /// The `nft` installing the table, to wait for (once).
    pub fn installing(&self) -> Option<nat::Pending> {
        self.installing.borrow_mut().take()
    }

    /// Once the container is gone (its links went with `Network`'s drop,
    /// or die with its namespace): remove the nftables table, an emptied
    /// zone and the record, and turn forwarding off if it was the last to
    /// need it. Run by the runner and again by its reaper; only a record
    /// still this one is undone (a missing record was released, one with
    /// another inode is a new runner's of the same name).
    pub fn release(&self) {
        // A table still being installed is removed once it is there.
        if let Some(p) = self.installing() {
            let _ = p.wait();
        }
        if !self.lock.is_at(&self.path) {
            return;
        }
        self.record.clean_host(false);
        let _ = std::fs::remove_file(&self.path);
        if let Ok(_lock) = bridge::lock() {
            forwarding_release(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let r = Record {
            machine: "m".into(),
            host_link: Some("ve-x".into()),
            zone: Some("vz-z".into()),
            subnet: Subnet::parse("192.168.4.0/24"),
            host_addr: Some(Ipv4Addr::new(192, 168, 4, 1)),
            container_addr: Some(Ipv4Addr::new(192, 168, 4, 2)),
            ports: vec!["tcp:8080".into(), "udp:53".into()],
        };
        assert_eq!(Record::parse("m", &r.to_text()), r);
    }
}
