//! Where the console's output goes: the caller's standard output (and
//! the runner's words: standard error), written without ever blocking
//! the loop that serves the machine. A runner stuck
//! in write(2) on a pipe nobody reads, or on a terminal whose ssh
//! connection stalled, answers neither signals, nor `^]^]^]`, nor the
//! control endpoint (`nspawnctl terminate` would wait for ever). Output
//! that cannot go out now waits here, up to `ROOM`; while it is full the
//! caller stops reading the pty, and the machine's console writes wait in
//! the kernel, as on a serial line nobody reads.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{Mode, SFlag};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

/// Output held back at most (the pty is not read beyond it).
pub const ROOM: usize = 64 * 1024;

/// How one write reaches the output without blocking.
enum Way {
    /// A description of our own, opened through `/proc/self/fd/1` with
    /// `O_NONBLOCK`: setting the flag on fd 1 itself would change the
    /// caller's shared description too (its shell's terminal), and leave
    /// it so if we are killed. Terminals, pipes and FIFOs.
    Own(OwnedFd),
    /// A socket: `send(2)` with `MSG_DONTWAIT` is non-blocking per call.
    Socket,
    /// Regular files and devices such as /dev/null, which do not wait for
    /// a reader (reopening a file would also lose its offset).
    Direct,
    /// Could not be reopened: at most `PIPE_BUF` bytes once poll(2) says
    /// there is room, which a pipe then takes whole.
    Gated,
    /// Gone (the reader closed it): output is dropped.
    Closed,
}

pub struct Sink {
    /// 1 or 2.
    target: i32,
    way: Way,
    pending: Vec<u8>,
}

impl Sink {
    /// Our standard output.
    pub fn stdout() -> Sink {
        Sink::of(1)
    }

    /// Our standard error: the runner's words while the machine runs
    /// ("Container ... exited") wait as its output does.
    pub fn stderr() -> Sink {
        Sink::of(2)
    }

    fn of(target: i32) -> Sink {
        // SAFETY: 0..3 stay open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(target) };
        let way = match nix::sys::stat::fstat(fd) {
            Err(_) => Way::Closed,
            Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                SFlag::S_IFSOCK => Way::Socket,
                SFlag::S_IFIFO => reopen(target).map_or(Way::Gated, Way::Own),
                SFlag::S_IFCHR if super::is_tty(fd) => reopen(target).map_or(Way::Gated, Way::Own),
                _ => Way::Direct,
            },
        };
        Sink {
            target,
            way,
            pending: Vec::new(),
        }
    }

    fn fd(&self) -> BorrowedFd<'static> {
        // SAFETY: 0..3 stay open for the life of the process.
        unsafe { BorrowedFd::borrow_raw(self.target) }
    }

    /// Whether more output may be taken in.
    pub fn has_room(&self) -> bool {
        self.pending.len() < ROOM
    }

    /// What to poll for `POLLOUT`, while output waits.
    pub fn waits_on(&self) -> Option<BorrowedFd<'_>> {
        if self.pending.is_empty() {
            return None;
        }
        match &self.way {
            Way::Own(fd) => Some(fd.as_fd()),
            Way::Socket | Way::Gated => Some(self.fd()),
            Way::Direct | Way::Closed => None,
        }
    }

    /// Queue `data` and write what goes out now.
    pub fn write(&mut self, data: &[u8]) {
        if !matches!(self.way, Way::Closed) {
            self.pending.extend_from_slice(data);
            self.flush();
        }
    }

    /// Write what goes out now, without waiting.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            let n = match &self.way {
                Way::Own(fd) => nix::unistd::write(fd, &self.pending),
                Way::Socket => nix::sys::socket::send(
                    self.target,
                    &self.pending,
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT
                        | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                ),
                Way::Direct => nix::unistd::write(self.fd(), &self.pending),
                Way::Gated if writable(self.fd(), PollTimeout::ZERO) => {
                    let end = self.pending.len().min(libc::PIPE_BUF);
                    nix::unistd::write(self.fd(), &self.pending[..end])
                }
                Way::Gated => return,
                Way::Closed => Err(Errno::EPIPE),
            };
            match n {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.way = Way::Closed;
                    self.pending = Vec::new();
                }
            }
        }
    }

    /// Write everything that waits, waiting for the reader until
    /// `deadline` (`None`: as long as it takes, for the very end, once
    /// nothing of the machine is left). Whether all went out.
    pub fn finish(&mut self, deadline: Option<Instant>) -> bool {
        loop {
            self.flush();
            let Some(fd) = self.waits_on() else {
                return true;
            };
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    None => return false,
                    Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                },
            };
            writable(fd, timeout);
        }
    }
}

/// Our own non-blocking description of what `target` is.
fn reopen(target: i32) -> Option<OwnedFd> {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    nix::fcntl::open(
        format!("/proc/self/fd/{target}").as_str(),
        flags,
        Mode::empty(),
    )
    .ok()
}

fn writable(fd: BorrowedFd, timeout: PollTimeout) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(nix::poll::poll(&mut fds, timeout), Ok(n) if n > 0)
}
