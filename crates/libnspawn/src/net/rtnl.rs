//! A synchronous rtnetlink socket: one request at a time, acknowledged or
//! dumped, so the runner stays single-threaded and needs no async runtime.
//!
//! A netlink socket acts on the network namespace it was created in
//! (netlink(7)); `open_in` makes one inside a container's namespace by
//! entering it just for the `socket(2)` call.

use crate::error::{Context, Error, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use std::os::fd::{AsFd, BorrowedFd};

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Rtnl {
    /// A socket in our own network namespace.
    pub fn open() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)
            .map_err(io_errno)
            .ctx(|| "cannot open a netlink socket".into())?;
        sock.bind_auto()
            .map_err(io_errno)
            .ctx(|| "cannot bind a netlink socket".into())?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(io_errno)
            .ctx(|| "cannot connect a netlink socket".into())?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// A socket in the network namespace `netns` (a `/proc/PID/ns/net` or
    /// bind-mounted namespace descriptor). Only the calling thread moves, and
    /// only for the duration of `socket(2)`; the runner is single-threaded.
    pub fn open_in(netns: BorrowedFd) -> Result<Rtnl> {
        let own = nix::fcntl::open(
            "/proc/thread-self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| "cannot open our network namespace".into())?;
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| "cannot enter the container's network namespace".into())?;
        let r = Rtnl::open();
        // Failing to come back would leave the runner in the container's
        // namespace: nothing sensible can follow.
        if nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            eprintln!("nspawn: cannot return to the host's network namespace");
            std::process::abort();
        }
        r
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(io_errno)
            .ctx(|| "cannot send to netlink".into())?;
        Ok(self.seq)
    }

    /// Read replies to `seq`, handing each inner message to `f`, until the
    /// acknowledgement or the end of a dump.
    fn replies(
        &mut self,
        seq: u32,
        mut f: impl FnMut(RouteNetlinkMessage),
    ) -> std::result::Result<(), Errno> {
        loop {
            let (buf, _) = self.sock.recv_from_full().map_err(io_errno)?;
            let mut off = 0;
            while off < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
                    .map_err(|_| Errno::EBADMSG)?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(Errno::EBADMSG);
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(code) => Err(Errno::from_raw(-code.get())),
                            None => Ok(()),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(m) => f(m),
                    _ => {}
                }
            }
        }
    }

    /// Send a request and wait for its acknowledgement. The errno is
    /// returned bare so callers can tell ENODEV or EEXIST apart.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<(), Errno> {
        let seq = self
            .send(msg, NLM_F_REQUEST | NLM_F_ACK | flags)
            .map_err(|e| e.errno().unwrap_or(Errno::EIO))?;
        self.replies(seq, |_| {})
    }

    /// Dump a table (links, addresses, routes).
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut out = vec![];
        self.replies(seq, |m| out.push(m))
            .ctx(|| "cannot read a netlink dump".into())?;
        Ok(out)
    }
}

impl AsFd for Rtnl {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// `what: why` for a failed request.
pub fn fail(what: impl FnOnce() -> String, errno: Errno) -> Error {
    Error::Os {
        what: what(),
        errno,
    }
}
