//! The network settings and the reference's value syntax for them.

use super::bridge;
use super::links;
use crate::error::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// `-p [tcp|udp:]HOST[:CONTAINER]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub proto: Proto,
    pub host: u16,
    pub container: u16,
}

#[derive(Debug, Clone, Default)]
pub struct NetSettings {
    /// `-n`: `ve-NAME` (or `vb-NAME` with a bridge or zone) and `host0`.
    pub veth: bool,
    /// (host, container) names.
    pub veth_extra: Vec<(String, String)>,
    pub bridge: Option<String>,
    pub zone: Option<String>,
    /// (host name, name inside).
    pub interfaces: Vec<(String, String)>,
    /// (host interface, name inside).
    pub macvlan: Vec<(String, String)>,
    pub ipvlan: Vec<(String, String)>,
    pub namespace_path: Option<PathBuf>,
    pub ports: Vec<Port>,
}

impl NetSettings {
    /// Whether the main veth pair is made (a bridge or zone implies it).
    pub fn wants_veth(&self) -> bool {
        self.veth || self.bridge.is_some() || self.zone.is_some()
    }

    /// Whether the runner has links to make after `clone3`, so the payload
    /// must wait for it.
    pub fn wants_links(&self) -> bool {
        self.wants_veth()
            || !self.veth_extra.is_empty()
            || !self.interfaces.is_empty()
            || !self.macvlan.is_empty()
            || !self.ipvlan.is_empty()
    }

    /// Whether these settings imply a private network namespace (as
    /// `--private-network` does).
    pub fn implies_private(&self) -> bool {
        self.wants_links()
    }

    /// The reference's rejected combinations; `private` is whether
    /// `--private-network` was given.
    pub fn check_combination(&self, private: bool) -> Result<()> {
        if self.bridge.is_some() && self.zone.is_some() {
            return Err(Error::invalid(
                "--network-bridge= and --network-zone= may not be combined.",
            ));
        }
        if self.namespace_path.is_some() && (self.wants_links() || !self.ports.is_empty()) {
            return Err(Error::invalid(
                "--network-namespace-path= cannot be combined with other network options.",
            ));
        }
        if !self.ports.is_empty() && !private && !self.implies_private() {
            return Err(Error::invalid(
                "Cannot use --port= without private networking.",
            ));
        }
        // Ours: forwards go to the address we give, which only our own
        // veth link or a zone has (the reference waits for whatever address
        // networkd assigns).
        let addressed = self.wants_veth() && self.bridge.is_none();
        if !self.ports.is_empty() && !addressed {
            return Err(Error::invalid(
                "--port= needs -n or --network-zone= (nspawn forwards to the address it assigns)",
            ));
        }
        Ok(())
    }
}

/// `[tcp|udp:]HOST[:CONTAINER]`, ports 1-65535.
pub fn parse_port(s: &str) -> Result<Port> {
    let bad = |why: &str| Error::invalid(format!("Failed to parse host port {s}: {why}"));
    let (proto, rest) = match s.split_once(':') {
        Some(("tcp", r)) => (Proto::Tcp, r),
        Some(("udp", r)) => (Proto::Udp, r),
        _ => (Proto::Tcp, s),
    };
    let num = |p: &str| -> Result<u16> {
        if p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
        {
            return Err(bad("Invalid argument"));
        }
        match p.parse::<i64>() {
            Ok(0) => Err(bad("Invalid argument")),
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(_) => Err(bad("Numerical result out of range")),
            Err(_) => Err(bad("Invalid argument")),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (num(h)?, num(c)?),
        None => {
            let h = num(rest)?;
            (h, h)
        }
    };
    Ok(Port {
        proto,
        host,
        container,
    })
}

/// `--network-veth-extra=HOST[:CONTAINER]`.
pub fn parse_veth_extra(s: &str) -> Result<(String, String)> {
    let bad = || {
        Error::invalid(format!(
            "Failed to parse --network-veth-extra= parameter: {s}"
        ))
    };
    let mut parts = s.split(':');
    let host = parts
        .next()
        .filter(|h| links::name_is_valid(h))
        .ok_or_else(bad)?;
    let inner = match parts.next() {
        Some(c) if links::name_is_valid(c) => c,
        Some(_) => return Err(bad()),
        None => host,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((host.to_string(), inner.to_string()))
}

/// The list syntax of `--network-interface`, `--network-macvlan` and
/// `--network-ipvlan`: space-separated `IF[:NAME]`; without a name the link
/// inside is `prefix` + IF (`mv-`, `iv-`, or the same name).
pub fn parse_iface_pairs(what: &str, prefix: &str, s: &str) -> Result<Vec<(String, String)>> {
    let bad = |n: &str| Error::invalid(format!("{what} name not valid: {n}"));
    let mut out = vec![];
    for word in s.split_whitespace() {
        let (a, b) = word.split_once(':').unwrap_or((word, ""));
        if !links::name_is_valid(a) {
            return Err(bad(a));
        }
        let b = if b.is_empty() {
            format!("{prefix}{a}")
        } else if links::name_is_valid(b) {
            b.to_string()
        } else {
            return Err(bad(b));
        };
        out.push((a.to_string(), b));
    }
    if out.is_empty() {
        return Err(bad(s));
    }
    Ok(out)
}

pub fn parse_bridge(s: &str) -> Result<String> {
    if links::name_is_valid(s) {
        Ok(s.to_string())
    } else {
        Err(Error::invalid(format!(
            "Bridge interface name not valid: {s}"
        )))
    }
}

pub fn parse_zone(s: &str) -> Result<String> {
    if bridge::zone_is_valid(s) {
        Ok(s.to_string())
    } else {
        Err(Error::invalid(format!(
            "Network zone name not valid: {}",
            bridge::zone_bridge(s)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let p = parse_port("udp:53").unwrap();
        assert_eq!((p.proto, p.host, p.container), (Proto::Udp, 53, 53));
        let p = parse_port("8080:80").unwrap();
        assert_eq!((p.proto, p.host, p.container), (Proto::Tcp, 8080, 80));
        for bad in [
            "",
            "-1",
            ":",
            "icmp:80:8080",
            "tcp::8080",
            "8080:",
            "0",
            "tcp:80:0",
            "70000",
            "1:2:3",
        ] {
            assert!(parse_port(bad).is_err(), "{bad:?}");
        }
        assert!(parse_port("-1")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn pairs() {
        assert_eq!(
            parse_iface_pairs("MACVLAN network interface", "mv-", "eth0 eth1:x").unwrap(),
            [
                ("eth0".into(), "mv-eth0".into()),
                ("eth1".into(), "x".into())
            ]
        );
        assert!(parse_iface_pairs("Network interface", "", "").is_err());
        assert!(parse_iface_pairs("Network interface", "", "a/b").is_err());
        assert_eq!(parse_veth_extra("a").unwrap(), ("a".into(), "a".into()));
        assert_eq!(parse_veth_extra("a:b").unwrap(), ("a".into(), "b".into()));
        for bad in ["", "a:b:c", "a/b", ":b"] {
            assert!(parse_veth_extra(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn combinations() {
        let mut s = NetSettings {
            bridge: Some("br0".into()),
            zone: Some("z".into()),
            ..Default::default()
        };
        assert!(s.check_combination(false).is_err());
        s.zone = None;
        assert!(s.check_combination(false).is_ok());
        let ports = NetSettings {
            ports: vec![parse_port("80").unwrap()],
            ..Default::default()
        };
        assert!(ports.check_combination(false).is_err());
        assert!(ports.check_combination(true).is_err());
        let veth_ports = NetSettings {
            veth: true,
            ..ports
        };
        assert!(veth_ports.check_combination(false).is_ok());
        let ns = NetSettings {
            namespace_path: Some("/run/netns/x".into()),
            veth: true,
            ..Default::default()
        };
        assert!(ns.check_combination(false).is_err());
    }
}
