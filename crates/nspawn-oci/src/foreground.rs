//! A foreground `run` (no `--detach`): we stay the container process's
//! parent until it ends, as runc does. Every signal we can catch but
//! SIGCHLD and SIGWINCH goes to the container's process (through its
//! pidfd, never a recycled PID); with `process.terminal` and no console
//! socket, our own terminal is the container's: bytes copied both ways
//! (raw mode while it runs) and the window size followed on SIGWINCH.

use anyhow::{Context, Result};
use libnspawn::console::{self, RawMode};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Signals caught and read from a signalfd, from before `create` on: a
/// signal to the runtime while the container is set up is forwarded once
/// it runs (runc's order).
pub struct Forwarder(SignalFd);

impl Forwarder {
    /// Block every signal but those that cannot be, or that stop or
    /// fault us. The container process unblocks its own.
    pub fn block() -> Result<Forwarder> {
        let mut mask = SigSet::all();
        for s in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGTSTP,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
            Signal::SIGABRT,
            Signal::SIGTRAP,
            Signal::SIGSYS,
        ] {
            mask.remove(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .context("cannot block signals")?;
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("cannot create a signalfd")
            .map(Forwarder)
    }

    /// Until the process of `pidfd` ends: its signals, its terminal.
    pub fn relay(&self, pidfd: BorrowedFd, master: Option<OwnedFd>) -> Result<()> {
        let stdin = console::stdin();
        let tty = console::is_tty(stdin);
        // Raw only when we have a terminal to hand over; restored on drop.
        let _raw = master
            .as_ref()
            .filter(|_| tty)
            .and_then(|_| RawMode::enter(stdin));
        if let Some(m) = &master {
            // Its output read in turns with the rest: never blocking on it.
            let _ = nix::fcntl::fcntl(m, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        let mut stdin_open = master.is_some();
        // Polled until its other end is closed (a process that closed its
        // terminal but runs on would make it readable for ever).
        let mut pty_open = master.is_some();
        // Input the container has not taken yet.
        let mut pending: Vec<u8> = vec![];
        loop {
            let mut fds = vec![
                PollFd::new(self.0.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd, PollFlags::POLLIN),
            ];
            if let Some(m) = master.as_ref().filter(|_| pty_open) {
                let mut want = PollFlags::POLLIN;
                if !pending.is_empty() {
                    want |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(m.as_fd(), want));
                if stdin_open && pending.is_empty() {
                    fds.push(PollFd::new(stdin, PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                r => r.context("cannot poll")?,
            };
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig, ended, pty, input) = (ready(0), ready(1), ready(2), ready(3));
            drop(fds);
            if sig {
                self.forward(pidfd, master.as_ref());
            }
            if let Some(m) = &master {
                if pty {
                    pty_open = copy_out(m);
                    match nix::unistd::write(m, &pending) {
                        Ok(n) => drop(pending.drain(..n)),
                        Err(Errno::EAGAIN | Errno::EINTR) => {}
                        Err(_) => pending.clear(),
                    }
                }
                if input {
                    let mut buf = [0u8; 4096];
                    match nix::unistd::read(stdin, &mut buf) {
                        Ok(0) | Err(_) => stdin_open = false,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            }
            if ended {
                // What it wrote last, before its end closed the pty.
                if let Some(m) = master.as_ref().filter(|_| pty_open) {
                    copy_out(m);
                }
                return Ok(());
            }
        }
    }

    /// The pending signals: the window size followed, the others sent on.
    fn forward(&self, pidfd: BorrowedFd, master: Option<&OwnedFd>) {
        while let Ok(Some(info)) = self.0.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => {}
                libc::SIGWINCH => {
                    if let Some(m) = master {
                        console::copy_winsize(console::stdin(), m.as_fd());
                    }
                }
                s => {
                    let _ = libnspawn::sys::pidfd_send_signal(pidfd, s);
                }
            }
        }
    }
}

/// What the pty has for us, to our standard output, until it has no
/// more; false once nothing holds its other end (EIO, pty(7)).
fn copy_out(master: &OwnedFd) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => return false,
            Err(_) => return true,
            Ok(n) => {
                if libnspawn::inroot::write_all(console::stdout(), &buf[..n]).is_err() {
                    return true;
                }
            }
        }
    }
}
