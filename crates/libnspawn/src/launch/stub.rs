//! `--as-pid2`: a minimal init stays PID 1, reaps orphans, answers the
//! init signals and forwards the others to the payload (PID 2): the `stub`
//! role of `nspawn-inner` (crates/libnspawn/inner/stub.rs).
//!
//! The stub is the one process of ours that lives on inside the container,
//! so it is not our binary: PID 1 executes the static `nspawn-inner` from a
//! sealed memfd (`crate::inner`), with no environment and no descriptor of
//! the runner's but 0-2. Root inside, which without `-U` may open
//! `/proc/1/exe`, `/proc/1/map_files` and `/proc/1/fd` and holds the
//! host's CAP_DAC_OVERRIDE, finds only that memfd there, never our binary
//! or the host's libc to write to.

use crate::error::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{fork, ForkResult};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Fork: the child returns and goes on to become the payload; this process
/// becomes the stub (executes `inner`, a sealed memfd of `nspawn-inner`)
/// and never returns.
pub fn fork_stub(inner: OwnedFd) -> Result<()> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .ctx(|| "cannot block signals".into())?;
    // The payload waits until the stub runs the sealed program (end of
    // file on this pipe, which closes on that execve after the new memory
    // map is in): until then PID 1 still maps our binary and the host's
    // libc and holds the runner's descriptors and the caller's
    // environment, all of which the payload could open in /proc/1.
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "cannot create a pipe".into())?;
    // SAFETY: single-threaded process.
    match unsafe { fork() }.ctx(|| "cannot fork the payload".into())? {
        ForkResult::Child => {
            drop((ready_w, inner));
            let mut b = [0u8; 1];
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&ready_r, &mut b) {}
            drop(ready_r);
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .ctx(|| "cannot unblock signals".into())?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            drop(ready_r);
            // Nothing of the runner's goes on into PID 1; the channel must
            // close too (the runner learns of the payload's exec by its
            // end). The memfd and the pipe close with the execve.
            let failed = match crate::sys::close_all_but(&[inner.as_raw_fd(), ready_w.as_raw_fd()])
            {
                Ok(()) => {
                    let pid = CString::new(child.as_raw().to_string()).unwrap_or_default();
                    let e = crate::inner::exec(inner.as_fd(), &[c"stub".to_owned(), pid], &[]);
                    format!("cannot execute the --as-pid2 stub: {}", e.desc())
                }
                Err(e) => e.to_string(),
            };
            // The payload cannot go on without its init: end both.
            eprintln!("nspawn: {failed}");
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            // SAFETY: ends PID 1, and so the container.
            unsafe { libc::_exit(1) }
        }
    }
}
