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
    bind, recvmsg, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag,
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

/// The largest request read: an Ethernet MTU. A longer datagram is
/// dropped whole, not read in part (`MSG_TRUNC`).
pub const MAX_REQUEST: usize = 1500;
/// Requests read per wake-up: a guest flooding the socket cannot keep the
/// runner's loop from its other sources; the rest waits in the socket
/// (whose queue the kernel bounds) for the next turn.
const BATCH: usize = 64;

pub struct Server {
    sock: OwnedFd,
    lease: Lease,
}

/// What the server gives out, and to whom.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// host0's MAC: the only client answered.
    pub mac: [u8; 6],
    pub server: Ipv4Addr,
    pub client: Ipv4Addr,
    pub subnet: Subnet,
}

/// What we read of a client's message.
#[derive(Debug, PartialEq)]
pub struct Request {
    xid: [u8; 4],
    flags: [u8; 2],
    ciaddr: Ipv4Addr,
    chaddr: [u8; 6],
    kind: u8,
    requested: Option<Ipv4Addr>,
}

/// Read a client's message; None for anything that is not a well-formed
/// BOOTREQUEST from an Ethernet client of at most `MAX_REQUEST` bytes.
pub fn parse(p: &[u8]) -> Option<Request> {
    // op BOOTREQUEST, htype Ethernet, hlen 6, and the magic cookie.
    if p.len() < 240
        || p.len() > MAX_REQUEST
        || p[0] != 1
        || p[1] != 1
        || p[2] != 6
        || p[236..240] != COOKIE
    {
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
        // A truncated option makes the whole message malformed.
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

/// The answer to `packet`, received from `from`, and where it goes; None
/// for no answer. Only host0's own client is answered, and only where it
/// is: a guest cannot make the host answer for another machine (another
/// MAC on a zone's bridge) or send to an address of its choosing.
pub fn respond(lease: &Lease, packet: &[u8], from: Ipv4Addr) -> Option<(Ipv4Addr, Vec<u8>)> {
    let req = parse(packet)?;
    if req.chaddr != lease.mac {
        return None;
    }
    // A client has no address yet (0.0.0.0) or the one it was given; a
    // datagram from any other source on the link is someone else's.
    if !from.is_unspecified() && from != lease.client {
        return None;
    }
    // RFC 2131 4.1 would unicast to ciaddr; the only ciaddr we unicast to
    // is the client's own, or the guest picks where the host sends.
    let to = if req.ciaddr == lease.client {
        lease.client
    } else {
        Ipv4Addr::BROADCAST
    };
    Some((to, lease.answer(&req)?))
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
            lease: Lease {
                mac,
                server,
                client,
                subnet,
            },
        })
    }

    /// Answer the requests waiting on the socket, at most `BATCH` of them.
    pub fn handle(&self) {
        let mut buf = [0u8; MAX_REQUEST];
        for _ in 0..BATCH {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let (n, from, truncated) = match recvmsg::<SockaddrIn>(
                self.sock.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(m) => (
                    m.bytes,
                    m.address.map(|a| a.ip()),
                    m.flags.contains(MsgFlags::MSG_TRUNC),
                ),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let (false, Some(from)) = (truncated, from) else {
                continue;
            };
            let Some((to, reply)) = respond(&self.lease, &buf[..n], from) else {
                continue;
            };
            let dest = SockaddrIn::from(std::net::SocketAddrV4::new(to, CLIENT_PORT));
            let _ = sendto(self.sock.as_raw_fd(), &reply, &dest, MsgFlags::empty());
        }
    }
}

impl Lease {
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
            let mask = Ipv4Addr::from(
                u32::MAX
                    .checked_shl(32 - u32::from(self.subnet.prefix).min(32))
                    .unwrap_or(0),
            );
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

    const NOBODY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

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

    fn lease() -> Lease {
        Lease {
            mac: [2, 0, 0, 0, 0, 1],
            server: Ipv4Addr::new(192, 168, 0, 1),
            client: Ipv4Addr::new(192, 168, 0, 2),
            subnet: Subnet::parse("192.168.0.0/28").unwrap(),
        }
    }

    fn kind(reply: &[u8]) -> u8 {
        assert_eq!(reply[240..242], [OPT_TYPE, 1]);
        reply[242]
    }

    #[test]
    fn offers_then_acks_the_configured_address() {
        let l = lease();
        let (to, offer) = respond(&l, &discover(l.mac, DISCOVER, None), NOBODY).unwrap();
        assert_eq!(to, Ipv4Addr::BROADCAST);
        assert_eq!(offer[0], 2);
        assert_eq!(&offer[16..20], &[192, 168, 0, 2]);
        assert_eq!(kind(&offer), OFFER);
        let (_, ack) = respond(&l, &discover(l.mac, REQUEST, Some(l.client)), NOBODY).unwrap();
        assert_eq!(kind(&ack), ACK);
        let other = Some(Ipv4Addr::new(10, 0, 0, 9));
        let (_, nak) = respond(&l, &discover(l.mac, REQUEST, other), NOBODY).unwrap();
        assert_eq!(kind(&nak), NAK);
    }

    #[test]
    fn ignores_garbage() {
        assert!(parse(&[0u8; 100]).is_none());
        assert!(parse(&[]).is_none());
        let mut p = discover([0; 6], DISCOVER, None);
        p[236] = 0;
        assert!(parse(&p).is_none());
        // A reply, not a request; not Ethernet; a hardware address that is
        // not six bytes long.
        for (at, v) in [(0, 2), (1, 6), (2, 16)] {
            let mut p = discover([0; 6], DISCOVER, None);
            p[at] = v;
            assert!(parse(&p).is_none(), "byte {at} = {v}");
        }
    }

    #[test]
    fn truncated_oversized_and_endless_options() {
        let l = lease();
        let p = discover(l.mac, REQUEST, Some(l.client));
        // Cut anywhere inside the requested-address option: malformed.
        for cut in 244..p.len() - 1 {
            assert!(parse(&p[..cut]).is_none(), "cut at {cut}");
        }
        // No end option: read to the end, still whole.
        assert!(parse(&p[..p.len() - 1]).is_some());
        // An option claiming 255 bytes with 3 left.
        let mut q = discover(l.mac, DISCOVER, None);
        q.truncate(q.len() - 1);
        q.extend_from_slice(&[12, 255, b'a', b'b', b'c']);
        assert!(parse(&q).is_none());
        // Padding to the limit is fine, a byte beyond it is not.
        let mut q = discover(l.mac, DISCOVER, None);
        q.resize(MAX_REQUEST, 0);
        assert!(respond(&l, &q, NOBODY).is_some());
        q.push(0);
        assert!(parse(&q).is_none());
        // Only padding after the cookie: no message type, no answer.
        let mut q = discover(l.mac, DISCOVER, None);
        q.truncate(240);
        q.resize(MAX_REQUEST, 0);
        assert!(respond(&l, &q, NOBODY).is_none());
        // Types we do not serve (DECLINE, RELEASE) and nonsense ones.
        for k in [4, 7, 0, 9, 200, 255] {
            assert!(respond(&l, &discover(l.mac, k, None), NOBODY).is_none());
        }
    }

    #[test]
    fn another_machines_mac_is_not_answered() {
        let l = lease();
        for mac in [[2, 0, 0, 0, 0, 2], [0xff; 6], [0; 6]] {
            for k in [DISCOVER, REQUEST, INFORM] {
                assert!(respond(&l, &discover(mac, k, Some(l.client)), NOBODY).is_none());
            }
        }
    }

    #[test]
    fn spoofed_sources_and_ciaddr_get_no_unicast_elsewhere() {
        let l = lease();
        let p = discover(l.mac, REQUEST, Some(l.client));
        // From an address on the link that is not the client's.
        for from in [l.server, Ipv4Addr::new(192, 168, 0, 3), Ipv4Addr::BROADCAST] {
            assert!(respond(&l, &p, from).is_none(), "{from}");
        }
        assert!(respond(&l, &p, l.client).is_some());
        // ciaddr naming somewhere else: the answer is broadcast on the
        // link, never sent there.
        for ciaddr in [Ipv4Addr::new(8, 8, 8, 8), l.server, Ipv4Addr::LOCALHOST] {
            let mut q = discover(l.mac, INFORM, None);
            q[12..16].copy_from_slice(&ciaddr.octets());
            let (to, _) = respond(&l, &q, NOBODY).unwrap();
            assert_eq!(to, Ipv4Addr::BROADCAST, "{ciaddr}");
        }
        let mut q = discover(l.mac, REQUEST, None);
        q[12..16].copy_from_slice(&l.client.octets());
        let (to, ack) = respond(&l, &q, l.client).unwrap();
        assert_eq!((to, kind(&ack)), (l.client, ACK));
    }

    #[test]
    fn any_prefix_makes_a_mask() {
        for prefix in [0, 1, 24, 31, 32] {
            let l = Lease {
                subnet: Subnet {
                    base: Ipv4Addr::UNSPECIFIED,
                    prefix,
                },
                ..lease()
            };
            let (_, offer) = respond(&l, &discover(l.mac, DISCOVER, None), NOBODY).unwrap();
            assert_eq!(kind(&offer), OFFER);
        }
    }
}
