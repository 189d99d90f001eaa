//! Work the runner must not do in its own process: a forked helper runs
//! it and writes its answer into a pipe. The runner `clone3`s containers
//! and so must stay single-threaded (`sys::spawn`), but some libraries
//! start threads or load code behind our back: zbus drives its connection
//! from threads, and a user lookup runs getent(1) (`bind_user.rs`). In a
//! helper, all of that ends with its `_exit`.
//!
//! A helper holds nothing of the runner's: it closes every descriptor it
//! inherited but 0-2 (the tree's and the name's locks among them, which a
//! helper still waiting on the bus would otherwise keep after a killed
//! runner, busy for the next start), and dies with the process that
//! forked it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Run `f` in a forked helper and return the text it produced, or `None`
/// if it died or took longer than `timeout` (it is killed then).
pub fn run(timeout: Duration, f: impl FnOnce() -> String) -> Option<String> {
    use nix::unistd::{fork, ForkResult};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    crate::sys::ensure_single_threaded().ok()?;
    let parent = rustix::process::getpid();
    // SAFETY: we are single-threaded (checked); the helper may start
    // threads of its own (it is a new process) and ends with _exit.
    match unsafe { fork() }.ok()? {
        ForkResult::Child => {
            drop(r);
            if crate::sys::die_with_parent(parent).is_err()
                || crate::sys::close_all_but(&[w.as_raw_fd()]).is_err()
            {
                // SAFETY: _exit is always safe; nothing to flush.
                unsafe { libc::_exit(1) }
            }
            crate::launch::failpoint::helper();
            let answer = f();
            let mut rest = answer.as_bytes();
            while !rest.is_empty() {
                match nix::unistd::write(&w, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            // SAFETY: _exit is always safe; nothing to flush.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let answer = read_until(r, timeout);
            if answer.is_none() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(child, None);
            answer
        }
    }
}

/// Everything written into `fd` until its end, within `timeout`.
fn read_until(fd: OwnedFd, timeout: Duration) -> Option<String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let ms = PollTimeout::from(left.as_millis().min(u16::MAX as u128) as u16);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return None,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(_) => {}
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}
