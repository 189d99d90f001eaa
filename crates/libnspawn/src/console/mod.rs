//! The runner's side of the console: our terminal in raw mode, bytes copied
//! between it and the container's pty, the window size followed, and the
//! `^]^]^]` escape.

mod sink;

pub use sink::Sink;

/// The caller's standard output and error as the runner writes them
/// while a machine runs: neither ever blocks it.
pub struct Streams {
    pub out: Sink,
    pub err: Sink,
}

impl Streams {
    pub fn new() -> Streams {
        Streams {
            out: Sink::stdout(),
            err: Sink::stderr(),
        }
    }

    /// One line of ours on standard error.
    pub fn say(&mut self, line: &str) {
        self.err.write(format!("{line}\n").as_bytes());
    }

    /// Write what waits, up to `deadline` (`None`: however long it takes).
    pub fn finish(&mut self, deadline: Option<std::time::Instant>) {
        if self.out.finish(deadline) {
            self.err.finish(deadline);
        }
    }
}

impl Default for Streams {
    fn default() -> Self {
        Self::new()
    }
}

use nix::errno::Errno;
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Puts a terminal in raw mode and restores it when dropped.
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'static>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // At once, not after the output drains (TCSADRAIN): a terminal
        // nobody reads would keep us here for ever.
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

pub fn is_tty(fd: BorrowedFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// Copy the window size of `from` (our terminal) to `to` (the pty).
pub fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    // SAFETY: winsize is plain data filled/read by the ioctls.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Counts `^]` (0x1d) presses: three within one second ask to kill the
/// container, as in the reference.
#[derive(Default)]
pub struct Escape {
    presses: Vec<Instant>,
}

impl Escape {
    pub const BYTE: u8 = 0x1d;

    /// Feed input; true when the escape was completed.
    pub fn feed(&mut self, data: &[u8], now: Instant) -> bool {
        for &b in data {
            if b != Self::BYTE {
                self.presses.clear();
                continue;
            }
            self.presses
                .retain(|t| now.duration_since(*t) < Duration::from_secs(1));
            self.presses.push(now);
            if self.presses.len() >= 3 {
                return true;
            }
        }
        false
    }
}

/// The pty master with a buffer of input the container has not taken yet.
pub struct Pty {
    pub master: OwnedFd,
    pending: Vec<u8>,
    pub hung_up: bool,
}

impl Pty {
    pub fn new(master: OwnedFd) -> Pty {
        let _ = nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Pty {
            master,
            pending: Vec::new(),
            hung_up: false,
        }
    }

    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Queue input for the container and write what it takes now. Input
    /// beyond `sink::ROOM` that the container has not taken is dropped,
    /// as a full terminal drops what is typed.
    pub fn send(&mut self, data: &[u8]) {
        let room = sink::ROOM.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&data[..data.len().min(room)]);
        self.flush();
    }

    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Move the container's output to `out`: at most `turns` reads, and
    /// none while `out` is full, so a machine that floods its console
    /// cannot keep the caller's loop from the rest (`None`: until the pty
    /// is empty, for its end, when nothing writes to it any more).
    /// `hung_up` is set once nothing holds the pty's other end open.
    pub fn drain(&mut self, out: &mut Sink, turns: Option<usize>) {
        let mut buf = [0u8; 8192];
        let mut left = turns.unwrap_or(usize::MAX);
        while left > 0 && (turns.is_none() || out.has_room()) {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.hung_up = true;
                    return;
                }
                Ok(n) => {
                    out.write(&buf[..n]);
                    left -= 1;
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(0) }
}

pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: fd 1 stays open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_needs_three_within_a_second() {
        let t0 = Instant::now();
        let mut e = Escape::default();
        assert!(!e.feed(&[0x1d, 0x1d], t0));
        assert!(e.feed(&[0x1d], t0 + Duration::from_millis(900)));
        let mut e = Escape::default();
        assert!(!e.feed(&[0x1d, 0x1d], t0));
        assert!(!e.feed(&[0x1d], t0 + Duration::from_millis(1500)));
        let mut e = Escape::default();
        assert!(!e.feed(&[0x1d, b'a', 0x1d, 0x1d], t0));
    }
}
