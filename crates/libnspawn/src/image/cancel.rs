//! Ctrl-C and SIGTERM during a long image operation (a pull, an import, a
//! clone): a flag the work loop checks, so that it returns an error and
//! the guards of the half-made image remove it, instead of the process
//! dying with its temporary still on disk.

use crate::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM set the flag (without SA_RESTART, so a
/// blocked read returns EINTR).
pub fn catch() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn requested() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// The error a cancelled operation ends with.
pub fn error(what: &str) -> Error {
    Error::invalid(format!("{what} cancelled"))
}
