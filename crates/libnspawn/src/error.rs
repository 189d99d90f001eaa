//! One error type for the library: what failed, on what, and why, in one line.

use nix::errno::Errno;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed: `what` says what we tried, on which object.
    #[error("{what}: {}", .errno.desc())]
    Os { what: String, errno: Errno },
    /// The request itself is wrong (bad tree, bad value, busy resource).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl fmt::Display) -> Self {
        Error::Invalid(msg.to_string())
    }

    /// For a failed fork, clone or program start: EAGAIN there means a
    /// limit on processes (fork(2)), which "Try again" does not say.
    pub fn from_fork(self) -> Self {
        match self {
            Error::Os {
                what,
                errno: Errno::EAGAIN,
            } => Error::Invalid(format!(
                "{what}: no more processes allowed (the cgroup's pids.max, or RLIMIT_NPROC)"
            )),
            e => e,
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            Error::Invalid(_) => None,
        }
    }
}

/// Attach a description of the failed operation to an errno-returning call.
pub trait Context<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|errno| Error::Os {
            what: what(),
            errno,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::Os {
            what: what(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::Os {
            what: what(),
            errno: Errno::from_raw(e.raw_os_error()),
        })
    }
}
