//! A DHCP server (RFC 2131) for one client: the container's `host0`. It
//! hands out the address nspawn already configured, so guests that ask
//! (systemd-networkd, ifupdown, udhcpc) end up with the same one.
//!
//! Hand-written: the protocol subset needed (DISCOVER/OFFER, REQUEST/ACK or
//! NAK, INFORM) is a fixed 236-byte header plus a few options, and the
//! maintained Rust DHCP codec (dhcproto) pulls in a DNS library and some
//! seventy crates; the servers on crates.io are async. It runs from the
//! runner's poll loop, on a non-blocking socket bound to the host end.

use super::addr::Subnet;
use crate::error::{Context, Result};
use nix::sys::socket::{
    bind, recvfrom, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag,
    SockType, SockaddrIn,
};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The address is the machine's for as long as it runs.
const LEASE_SECS: u32 = 86400;

const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;
const INFORM: u8 = 8;

const OPT_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_REQUESTED: u8 = 50;
const OPT_LEASE: u8 = 51;
const OPT_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_END: u8 = 255;

pub struct Server {
    sock: OwnedFd,
    mac: [u8; 6],
    server: Ipv4Addr,
    client: Ipv4Addr,
    subnet: Subnet,
}

/// What we read of a client's message.
#[derive(Debug, PartialEq)]
struct Request {
    xid: [u8; 4],
    flags: [u8; 2],
    ciaddr: Ipv4Addr,
    chaddr: [u8; 6],
    kind: u8,
    requested: Option<Ipv4Addr>,
}

fn parse(p: &[u8]) -> Option<Request> {
    // op BOOTREQUEST, htype Ethernet, hlen 6, and the magic cookie.
    if p.len() < 240 || p[0] != 1 || p[1] != 1 || p[2] != 6 || p[236..240] != COOKIE {
        return None;
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    let mut req = Request {
        xid: p[4..8].try_into().ok()?,
        flags: p[10..12].try_into().ok()?,
        ciaddr: ip(12),
        chaddr: p[28..34].try_into().ok()?,
        kind: 0,
        requested: None,
    };
    let mut i = 240;
    while i < p.len() {
        let code = p[i];
        match code {
            0 => {
                i += 1;
                continue;
            }
            OPT_END => break,
            _ => {}
        }
        let len = *p.get(i + 1)? as usize;
        let val = p.get(i + 2..i + 2 + len)?;
        match (code, len) {
            (OPT_TYPE, 1) => req.kind = val[0],
            (OPT_REQUESTED, 4) => {
                req.requested = Some(Ipv4Addr::new(val[0], val[1], val[2], val[3]))
            }
            _ => {}
        }
        i += 2 + len;
    }
    Some(req)
}

impl Server {
    /// Serve `client` to `mac` on link `ifname`, as `server`.
    pub fn open(
        ifname: &str,
        mac: [u8; 6],
        server: Ipv4Addr,
        client: Ipv4Addr,
        subnet: Subnet,
    ) -> Result<Server> {
        let what = || format!("cannot open the DHCP server socket on {ifname}");
        let sock = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .ctx(what)?;
        // Every container of a zone serves on the zone's bridge: each binds
        // port 67 there, gets every broadcast, and answers its own client.
        setsockopt(&sock, sockopt::ReuseAddr, &true).ctx(what)?;
        setsockopt(&sock, sockopt::Broadcast, &true).ctx(what)?;
        setsockopt(
            &sock,
            sockopt::BindToDevice,
            &std::ffi::OsString::from(ifname),
        )
        .ctx(what)?;
        bind(
            sock.as_raw_fd(),
            &SockaddrIn::from(std::net::SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                SERVER_PORT,
            )),
        )
        .ctx(what)?;
        Ok(Server {
            sock,
            mac,
            server,
            client,
            subnet,
        })
    }

    /// Answer every request waiting on the socket.
    pub fn handle(&self) {
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = recvfrom::<SockaddrIn>(self.sock.as_raw_fd(), &mut buf) {
            let Some(req) = parse(&buf[..n]) else {
                continue;
            };
            if req.chaddr != self.mac {
                continue;
            }
            if let Some(reply) = self.answer(&req) {
                let to = if req.ciaddr.is_unspecified() {
                    Ipv4Addr::BROADCAST
                } else {
                    req.ciaddr
                };
                let dest = SockaddrIn::from(std::net::SocketAddrV4::new(to, CLIENT_PORT));
                let _ = sendto(self.sock.as_raw_fd(), &reply, &dest, MsgFlags::empty());
            }
        }
    }

    fn answer(&self, req: &Request) -> Option<Vec<u8>> {
        let (kind, yiaddr) = match req.kind {
            DISCOVER => (OFFER, self.client),
            REQUEST => {
                let wanted = req.requested.unwrap_or(req.ciaddr);
                if wanted == self.client {
                    (ACK, self.client)
                } else {
                    (NAK, Ipv4Addr::UNSPECIFIED)
                }
            }
            INFORM => (ACK, Ipv4Addr::UNSPECIFIED),
            _ => return None,
        };
        Some(self.packet(req, kind, yiaddr))
    }

    fn packet(&self, req: &Request, kind: u8, yiaddr: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p[0] = 2; // BOOTREPLY
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&req.xid);
        p[10..12].copy_from_slice(&req.flags);
        p[12..16].copy_from_slice(&req.ciaddr.octets());
        p[16..20].copy_from_slice(&yiaddr.octets());
        p[20..24].copy_from_slice(&self.server.octets());
        p[28..34].copy_from_slice(&req.chaddr);
        p.extend_from_slice(&COOKIE);
        let mut opt = |code: u8, val: &[u8]| {
            p.push(code);
            p.push(val.len() as u8);
            p.extend_from_slice(val);
        };
        opt(OPT_TYPE, &[kind]);
        opt(OPT_SERVER_ID, &self.server.octets());
        if kind != NAK {
            let mask = Ipv4Addr::from(u32::MAX << (32 - self.subnet.prefix));
            opt(OPT_MASK, &mask.octets());
            opt(OPT_ROUTER, &self.server.octets());
            if req.kind != INFORM {
                opt(OPT_LEASE, &LEASE_SECS.to_be_bytes());
            }
        }
        p.push(OPT_END);
        // Some clients drop BOOTP replies shorter than 300 bytes (RFC 1542).
        p.resize(p.len().max(300), 0);
        p
    }
}

impl AsFd for Server {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover(mac: [u8; 6], kind: u8, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p[0] = 1;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&[1, 2, 3, 4]);
        p[28..34].copy_from_slice(&mac);
        p.extend_from_slice(&COOKIE);
        p.extend_from_slice(&[OPT_TYPE, 1, kind]);
        if let Some(r) = requested {
            p.extend_from_slice(&[OPT_REQUESTED, 4]);
            p.extend_from_slice(&r.octets());
        }
        p.push(OPT_END);
        p
    }

    fn server() -> Server {
        Server {
            sock: nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap(),
            mac: [2, 0, 0, 0, 0, 1],
            server: Ipv4Addr::new(192, 168, 0, 1),
            client: Ipv4Addr::new(192, 168, 0, 2),
            subnet: Subnet::parse("192.168.0.0/28").unwrap(),
        }
    }

    #[test]
    fn offers_then_acks_the_configured_address() {
        let s = server();
        let req = parse(&discover(s.mac, DISCOVER, None)).unwrap();
        let offer = s.answer(&req).unwrap();
        assert_eq!(offer[0], 2);
        assert_eq!(&offer[16..20], &[192, 168, 0, 2]);
        assert_eq!(&offer[240..243], &[OPT_TYPE, 1, OFFER]);
        let req = parse(&discover(s.mac, REQUEST, Some(s.client))).unwrap();
        assert_eq!(&s.answer(&req).unwrap()[240..243], &[OPT_TYPE, 1, ACK]);
        let req = parse(&discover(s.mac, REQUEST, Some(Ipv4Addr::new(10, 0, 0, 9)))).unwrap();
        assert_eq!(&s.answer(&req).unwrap()[240..243], &[OPT_TYPE, 1, NAK]);
    }

    #[test]
    fn ignores_garbage() {
        assert!(parse(&[0u8; 100]).is_none());
        let mut p = discover([0; 6], DISCOVER, None);
        p[236] = 0;
        assert!(parse(&p).is_none());
    }
}
