//! The one socket between the runner and the container process, as in crun:
//! it carries the console's pseudo-terminal master up, a setup failure up as
//! one line of text, and its end-of-file (the child's copy is close-on-exec)
//! tells the runner that the payload was executed. When the runner has work
//! to do after `clone3` (network links), it sends one "go" down and the
//! child waits for it before starting the payload; last, it sends the
//! system call filters it assembled meanwhile.

use crate::error::{Context, Result};
use crate::security::seccomp::Filters;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct Channel(OwnedFd);

/// What the "go" carries: detached mounts from the runner for a user
/// namespace — the idmapped tree (`map` ownership), a sysfs (without a
/// network namespace of our own only the host's owner may mount one),
/// and the binds with an idmap option, in their order.
#[derive(Default)]
pub struct GoMounts {
    pub tree: Option<OwnedFd>,
    pub sysfs: Option<OwnedFd>,
    pub binds: Vec<OwnedFd>,
}

/// At most this many descriptors in one message (the idmapped binds):
/// the kernel's limit for one SCM_RIGHTS message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

pub enum Msg {
    /// Setup failed; the text is the error line.
    Error(String),
    /// The container's console pty master.
    Console(OwnedFd),
    /// The writing end of the FIFO on the container's `/proc/kmsg`, for
    /// the runner to hold (`mount::cover_kmsg`).
    Kmsg(OwnedFd),
    /// The machine id the container runs with (the tree's, else ours).
    MachineId(crate::id128::Id128),
    /// The child exec'd (or died) and closed its end.
    Eof,
    /// The runner did its part (the id maps, the network); with a user
    /// namespace it carries the idmapped mounts it made.
    Go(GoMounts),
    /// The system call filters to load before the payload.
    Filters(crate::security::seccomp::Filters),
    /// An OCI runtime's container is set up and waits on its exec FIFO.
    Ready,
    /// An OCI runtime's container made its mounts and waits, before it
    /// enters its root, for the runtime's hooks (`prestart`,
    /// `createRuntime`) and a "go".
    Mounted,
}

const TAG_ERROR: u8 = b'E';
const TAG_CONSOLE: u8 = b'C';
const TAG_KMSG: u8 = b'K';
const TAG_ID: u8 = b'I';
const TAG_GO: u8 = b'G';
const TAG_FILTERS: u8 = b'S';
const TAG_READY: u8 = b'R';
const TAG_MOUNTED: u8 = b'M';

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "cannot create the socket to the container".into())?;
    Ok((Channel(a), Channel(b)))
}

impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl Channel {
    pub fn send_error(&self, msg: &str) {
        let mut buf = vec![TAG_ERROR];
        buf.extend_from_slice(msg.as_bytes());
        // Best effort: if the runner is gone there is nobody to tell.
        let _ = sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&buf)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
    }

    pub fn send_id(&self, id: crate::id128::Id128) -> Result<()> {
        let mut buf = vec![TAG_ID];
        buf.extend_from_slice(&id.0);
        self.send_bytes(&buf)
            .ctx(|| "cannot pass the machine id to the runner".into())
    }

    /// Tell the child that what the runner does after `clone3` is done.
    pub fn send_go(&self) -> Result<()> {
        self.send_bytes(&[TAG_GO])
            .ctx(|| "cannot signal the container to start".into())
    }

    pub fn send_filters(&self, f: &crate::security::seccomp::Filters) -> Result<()> {
        let mut buf = vec![TAG_FILTERS];
        buf.extend_from_slice(&f.encode());
        self.send_bytes(&buf)
            .ctx(|| "cannot pass the system call filters to the container".into())
    }

    /// An OCI runtime's container: set up, about to wait on its exec FIFO.
    pub fn send_ready(&self) -> Result<()> {
        self.send_bytes(&[TAG_READY])
            .ctx(|| "cannot tell the runtime the container is ready".into())
    }

    /// An OCI runtime's container: mounts made, waiting for its hooks.
    pub fn send_mounted(&self) -> Result<()> {
        self.send_bytes(&[TAG_MOUNTED])
            .ctx(|| "cannot tell the runtime the mounts are made".into())
    }

    fn send_bytes(&self, buf: &[u8]) -> nix::Result<()> {
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(buf)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(drop)
    }

    /// "Go" with the runner's mounts; the second byte says which come
    /// first: the tree (bit 0), then the sysfs (bit 1).
    pub fn send_go_mounts(&self, m: &GoMounts) -> Result<()> {
        if m.tree.is_none() && m.sysfs.is_none() && m.binds.is_empty() {
            return self.send_go();
        }
        let fds: Vec<_> = m
            .tree
            .iter()
            .chain(m.sysfs.iter())
            .chain(m.binds.iter())
            .map(|f| f.as_raw_fd())
            .collect();
        if fds.len() > MAX_FDS {
            return Err(crate::error::Error::invalid(format!(
                "too many host directories to bind under a user namespace: {} (at most {MAX_FDS})",
                fds.len()
            )));
        }
        let head = m.tree.is_some() as u8 | (m.sysfs.is_some() as u8) << 1;
        self.send_tagged_fds(&[TAG_GO, head], &fds)
            .ctx(|| "cannot pass the idmapped mounts to the container".into())
    }

    pub fn send_fd(&self, fd: &OwnedFd) -> Result<()> {
        self.send_tagged_fds(&[TAG_CONSOLE], &[fd.as_raw_fd()])
            .ctx(|| "cannot pass the console to the runner".into())
    }

    pub fn send_kmsg(&self, fd: &OwnedFd) -> Result<()> {
        self.send_tagged_fds(&[TAG_KMSG], &[fd.as_raw_fd()])
            .ctx(|| "cannot pass the /proc/kmsg FIFO to the runner".into())
    }

    fn send_tagged_fds(&self, head: &[u8], fds: &[std::os::fd::RawFd]) -> nix::Result<()> {
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(head)],
            &[ControlMessage::ScmRights(fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(drop)
    }

    /// `recv` for the runner: waiting at most `timeout`, and giving up at
    /// once (with the error that undoes the start) when a stop is asked
    /// for meanwhile.
    pub fn recv_within(
        &self,
        signals: &super::signals::Signals,
        timeout: std::time::Duration,
    ) -> Result<Msg> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = PollTimeout::from(left.as_millis().min(u16::MAX as u128) as u16);
            let mut fds = [
                PollFd::new(self.0.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, ms) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r.ctx(|| "cannot poll".into())?,
            };
            // A message already there goes first: the end of the setup
            // (the payload executed) that a stop request crossed is read
            // as such, and the stop then ends a container that ran.
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return self.recv();
            }
            signals.check()?;
            if left.is_zero() {
                return Err(crate::error::Error::invalid(format!(
                    "the container did not finish its setup within {} s",
                    timeout.as_secs()
                )));
            }
        }
    }

    /// After a step of the runner failed: the container's own error, if
    /// it failed first (its process gone is often why the runner's step
    /// failed, and its line says why). Waits a moment for a container
    /// that is still ending.
    pub fn pending_error(&self, container: std::os::fd::BorrowedFd) -> Option<String> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [
            PollFd::new(self.0.as_fd(), PollFlags::POLLIN),
            PollFd::new(container, PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::from(100u8)).ok()?;
        loop {
            let mut fd = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fd, PollTimeout::ZERO).ok()? == 0 {
                return None;
            }
            match self.recv().ok()? {
                Msg::Error(m) => return Some(m),
                Msg::Eof => return None,
                _ => {}
            }
        }
    }

    pub fn recv(&self) -> Result<Msg> {
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS]);
        loop {
            // The message's length first: a seqpacket socket cuts a message
            // longer than the buffer, and the filters take up to 100 KiB
            // where the others take a few bytes (a buffer of the largest
            // for each was a tenth of the runner's memory).
            let peeked = nix::sys::socket::recv(
                self.0.as_raw_fd(),
                &mut [0u8; 1],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            );
            let len = match peeked {
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::ECONNRESET) => continue,
                r => r.ctx(|| "cannot read from the container".into())?,
            };
            let max = 1 + crate::security::seccomp::Filters::MAX_ENCODED;
            let mut buf = vec![0u8; len.clamp(1, max)];
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let msg = match r {
                Err(nix::errno::Errno::EINTR) => continue,
                // The peer ended with a message of ours unread (a "go" the
                // child never read): the kernel reports that once, before
                // what the peer sent before it ended (unix(7)). Read on.
                Err(nix::errno::Errno::ECONNRESET) => continue,
                r => r.ctx(|| "cannot read from the container".into())?,
            };
            let mut fds: Vec<OwnedFd> = vec![];
            for c in msg
                .cmsgs()
                .ctx(|| "bad message from the container".into())?
            {
                if let ControlMessageOwned::ScmRights(got) = c {
                    // SAFETY: SCM_RIGHTS gave us these descriptors.
                    fds.extend(got.iter().map(|&f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
            // The kernel drops the descriptors that did not fit: the
            // message is not what was sent.
            if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                return Err(crate::error::Error::invalid(
                    "a message on the setup channel carried more descriptors than expected",
                ));
            }

            let fd = (!fds.is_empty()).then(|| fds.remove(0));
            let n = msg.bytes;
            return Ok(match (n, buf.first()) {
                (0, _) => Msg::Eof,
                (_, Some(&TAG_CONSOLE)) if fd.is_some() => Msg::Console(fd.unwrap()),
                (1, Some(&TAG_KMSG)) if fd.is_some() => Msg::Kmsg(fd.unwrap()),
                (17, Some(&TAG_ID)) => {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&buf[1..17]);
                    Msg::MachineId(crate::id128::Id128(id))
                }
                (1, Some(&TAG_GO)) => Msg::Go(GoMounts::default()),
                (_, Some(&TAG_FILTERS)) => match Filters::decode(&buf[1..n]) {
                    Some(f) => Msg::Filters(f),
                    None => Msg::Error("the system call filters came garbled".into()),
                },
                (1, Some(&TAG_READY)) => Msg::Ready,
                (1, Some(&TAG_MOUNTED)) => Msg::Mounted,
                (2, Some(&TAG_GO)) => {
                    let mut binds: Vec<OwnedFd> = fd.into_iter().chain(fds).collect();
                    let mut first =
                        |bit: u8| (buf[1] & bit != 0 && !binds.is_empty()).then(|| binds.remove(0));
                    let (tree, sysfs) = (first(1), first(2));
                    Msg::Go(GoMounts { tree, sysfs, binds })
                }
                _ => Msg::Error(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            });
        }
    }
}
