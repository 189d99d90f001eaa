//! A foreground `run` (no `--detach`): we stay the container process's
//! parent until it ends, as runc does. Every signal we can catch but
//! SIGCHLD and SIGWINCH goes to the container's process (through its
//! pidfd, never a recycled PID); with `process.terminal` and no console
//! socket, our own terminal is the container's: bytes copied both ways
//! (raw mode while it runs) and the window size followed on SIGWINCH.

use anyhow::{Context, Result};
use libnspawn::console::{self, Pty, RawMode, Sink};
use nix::errno::Errno;
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

    /// Until the process of `pidfd` ends: its signals, its terminal
    /// (copied as the runner's console is: `console::Pty` read in turns,
    /// our output through a `console::Sink` that never blocks us).
    pub fn relay(&self, pidfd: BorrowedFd, master: Option<OwnedFd>) -> Result<()> {
        const TURN: usize = 16;
        let stdin = console::stdin();
        // Raw only when we have a terminal to hand over; restored on drop.
        let _raw = master
            .as_ref()
            .filter(|_| console::is_tty(stdin))
            .and_then(|_| RawMode::enter(stdin));
        let mut pty = master.map(Pty::new);
        let mut out = Sink::stdout();
        let mut stdin_open = pty.is_some();
        loop {
            let mut fds = vec![
                PollFd::new(self.0.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd, PollFlags::POLLIN),
            ];
            let (mut pty_at, mut input_at) = (None, None);
            // Polled until its other end is closed (a process that closed
            // its terminal but runs on would make it readable for ever).
            if let Some(p) = pty.as_ref().filter(|p| !p.hung_up) {
                let mut want = PollFlags::empty();
                if out.has_room() {
                    want |= PollFlags::POLLIN;
                }
                if p.wants_write() {
                    want |= PollFlags::POLLOUT;
                }
                if !want.is_empty() {
                    pty_at = Some(fds.len());
                    fds.push(PollFd::new(p.master.as_fd(), want));
                }
                if stdin_open && !p.wants_write() {
                    input_at = Some(fds.len());
                    fds.push(PollFd::new(stdin, PollFlags::POLLIN));
                }
            }
            if let Some(fd) = out.waits_on() {
                fds.push(PollFd::new(fd, PollFlags::POLLOUT));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                r => r.context("cannot poll")?,
            };
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds.get(i))
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig, ended) = (ready(Some(0)), ready(Some(1)));
            let (pty_ready, input) = (ready(pty_at), ready(input_at));
            drop(fds);
            if sig {
                self.forward(pidfd, pty.as_ref().map(|p| p.master.as_fd()));
            }
            out.flush();
            if let Some(p) = pty.as_mut() {
                if pty_ready {
                    p.drain(&mut out, Some(TURN));
                    p.flush();
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
                if let Some(p) = pty.as_mut().filter(|p| !p.hung_up) {
                    p.drain(&mut out, None);
                }
                out.finish(None);
                return Ok(());
            }
        }
    }

    /// The pending signals: the window size followed, the others sent on.
    fn forward(&self, pidfd: BorrowedFd, master: Option<BorrowedFd>) {
        while let Ok(Some(info)) = self.0.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => {}
                libc::SIGWINCH => {
                    if let Some(m) = master {
                        console::copy_winsize(console::stdin(), m);
                    }
                }
                s => {
                    let _ = libnspawn::sys::pidfd_send_signal(pidfd, s);
                }
            }
        }
    }
}
