//! The runner's signals, blocked and read through a signalfd from its
//! first step: a SIGTERM during a long setup step (a `chown` shift, a
//! template copy, waiting for the container's setup) is seen by that
//! step, which stops the start and undoes it, instead of waiting for
//! SIGKILL. Once the container runs, the monitor loop reads the same
//! descriptor.

use crate::error::{Context, Error, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{siginfo, SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd};

/// The signals the runner handles.
const HANDLED: [Signal; 5] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

pub struct Signals(SignalFd);

/// Whether `sig` asks the runner to stop.
pub fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGHUP)
}

impl Signals {
    /// Block the handled signals and open a signalfd for them. Programs we
    /// run start with an empty mask again (std's `Command` resets it), and
    /// the container process resets it itself.
    pub fn block() -> Result<Signals> {
        let mut mask = SigSet::empty();
        HANDLED.iter().for_each(|&sig| mask.add(sig));
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .ctx(|| "cannot block signals".into())?;
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .ctx(|| "cannot create a signalfd".into())
            .map(Signals)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// The next pending signal, if any.
    pub fn read(&self) -> Option<siginfo> {
        self.0.read_signal().ok().flatten()
    }

    /// During setup: an error if a stop was asked for (the start is then
    /// undone), nothing otherwise; other signals are of no interest yet.
    pub fn check(&self) -> Result<()> {
        while let Some(info) = self.read() {
            let sig = info.ssi_signo as i32;
            if is_stop(sig) {
                return Err(interrupted(sig));
            }
        }
        Ok(())
    }
}

/// The error of a start stopped by signal `sig` before its payload ran.
pub fn interrupted(sig: i32) -> Error {
    Error::invalid(format!(
        "start interrupted by {} before the container ran",
        crate::settings::signal_name(sig)
    ))
}
