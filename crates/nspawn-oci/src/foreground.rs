//! A foreground `run` (no `--detach`): we stay the container process's
//! parent until it ends, as runc does. Every signal we can catch but
//! SIGCHLD and SIGWINCH goes to the container's process (through its
//! pidfd, never a recycled PID); with `process.terminal` and no console
//! socket, our own terminal is the container's: bytes copied both ways
//! (raw mode while it runs) and the window size followed on SIGWINCH.

use anyhow::{Context, Result};
use libnspawn::console::{self, Pty, RawMode};
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
        let mut pty = master.map(Pty::new);
        // Raw only when we have a terminal to hand over; restored on drop.
        let _raw = pty
            .as_ref()
            .filter(|_| console::is_tty(stdin))
            .and_then(|_| RawMode::enter(stdin));
        if let Some(p) = &pty {
            if console::is_tty(stdin) {
                console::copy_winsize(stdin, p.master.as_fd());
            }
        }
        let mut stdin_open = pty.is_some();
        loop {
            let mut fds = vec![
                PollFd::new(self.0.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd, PollFlags::POLLIN),
            ];
            if let Some(p) = &pty {
                fds.push(PollFd::new(p.master.as_fd(), PollFlags::POLLIN));
                if stdin_open {
                    fds.push(PollFd::new(stdin, PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r.context("cannot poll")?,
            };
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig, ended, out, input) = (ready(0), ready(1), ready(2), ready(3));
            if sig {
                while let Ok(Some(info)) = self.0.read_signal() {
                    match info.ssi_signo as i32 {
                        libc::SIGCHLD => {}
                        libc::SIGWINCH => {
                            if let Some(p) = &pty {
                                console::copy_winsize(stdin, p.master.as_fd());
                            }
                        }
                        s => {
                            let _ = libnspawn::sys::pidfd_send_signal(pidfd, s);
                        }
                    }
                }
            }
            if let Some(p) = &mut pty {
                if out {
                    p.drain(Some(console::stdout()));
                }
                if input {
                    let mut buf = [0u8; 4096];
                    match nix::unistd::read(stdin, &mut buf) {
                        Ok(0) | Err(_) => stdin_open = false,
                        Ok(n) => p.send(&buf[..n]),
                    }
                }
            }
            if ended {
                // What it wrote last, before its end closed the pty.
                if let Some(p) = &mut pty {
                    p.drain(Some(console::stdout()));
                }
                return Ok(());
            }
        }
    }
}
