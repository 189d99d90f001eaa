//! The reaper: a small process forked as soon as the start holds the
//! machine's name, sharing its lock. It waits for the runner to end (a
//! pipe only the runner holds closes, however it ends). After an orderly
//! end the runner has given the name back, and there is nothing to do.
//! After SIGKILL of the runner, at whatever instant, the name is still
//! held: nobody else can have made anything under it, so the reaper takes
//! over the guards found by the name (`Held::adopt`: the records, the
//! cgroup the runner wrote down before making it, each once the
//! container that shares its lock has died with the runner through
//! `PR_SET_PDEATHSIG`) and runs their own release. The name's lock goes
//! with it. Meanwhile it clears the names whose runner and reaper were
//! both killed, and their machines' cgroups (`name::sweep`,
//! `cgroup::sweep_slice`), which the runner need not wait for.

use super::reserve::Held;
use crate::error::{Context, Error, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The runner's ends of the reaper's pipes: `pipe`, whose closing (by
/// the runner's end, orderly or killed) tells the reaper to act, and
/// `swept`, closed by the reaper once it has cleared the dead names.
pub struct Link {
    _pipe: OwnedFd,
    swept: OwnedFd,
}

impl Drop for Link {
    /// The runner's orderly end: once the reaper's sweep is done (it is
    /// long before; a start that has ended has swept, as tests and users
    /// expect), let it go. Bounded, should it ever hang.
    fn drop(&mut self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.swept.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(5000u16));
        // `pipe` closes next, with the fields.
    }
}

/// Fork the reaper of `held`; returns its PID and the runner's ends.
/// `cgroups`: the slice of the machine's own cgroup (`Some(None)`: ours),
/// whose dead machines' cgroups the reaper sweeps; `None` under systemd.
pub fn spawn(held: &Held, cgroups: Option<Option<&str>>) -> Result<(libc::pid_t, Link)> {
    let pipe =
        || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "cannot create a pipe".into());
    let (r, w) = pipe()?;
    let (swept_r, swept_w) = pipe()?;
    crate::sys::ensure_single_threaded()?;
    // SAFETY: single-threaded (checked); the child only makes system calls
    // and exits.
    match unsafe { nix::unistd::fork() }
        .ctx(|| "cannot fork the reaper".into())
        .map_err(Error::from_fork)?
    {
        nix::unistd::ForkResult::Parent { child } => Ok((
            child.as_raw(),
            Link {
                _pipe: w,
                swept: swept_r,
            },
        )),
        nix::unistd::ForkResult::Child => run(r, w.as_raw_fd(), swept_w, held, cgroups),
    }
}

fn run(
    pipe: OwnedFd,
    runner_end: i32,
    swept: OwnedFd,
    held: &Held,
    cgroups: Option<Option<&str>>,
) -> ! {
    keep_only(&[pipe.as_raw_fd(), swept.as_raw_fd()], runner_end, held);
    // SAFETY: setsid and prctl with constant arguments. Own session, so
    // signals for the runner's terminal or process group pass us by.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"nspawn-reaper".as_ptr());
    }
    // Only the runner's end (or SIGKILL) ends us: a SIGTERM sent to every
    // process of the runner's unit or name (systemd's KillMode=
    // control-group, `pkill nspawn`) must not stop the cleanup the runner
    // may still need. Blocked rather than ignored: programs we run (nft)
    // start with an empty mask, but would inherit ignored dispositions.
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(sig);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    // The names nobody holds any more, and the cgroups of machines whose
    // runners died, are cleared here, off the runner's path, while it goes
    // on with its start.
    crate::name::sweep(held.name.machine());
    if let Some(slice) = cgroups {
        crate::cgroup::sweep_slice(slice);
    }
    drop(swept);
    let mut b = [0u8; 1];
    while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&pipe, &mut b) {}
    if held.name.is_ours() {
        if let Ok(left) = held.adopt() {
            left.release(false);
        }
    }
    // SAFETY: _exit is always safe; nothing of ours to flush.
    unsafe { libc::_exit(0) }
}

/// Close every descriptor but the pipe and the guards' locks (not the
/// tree's lock, nor the terminal), and put /dev/null on the free ones of
/// 0-2, so that nothing the cleanup opens can become a standard
/// descriptor that a stray message would write into.
fn keep_only(pipes: &[i32], runner_end: i32, held: &Held) {
    let mut keep: Vec<u32> = held.fds().iter().map(|f| f.as_raw_fd() as u32).collect();
    keep.extend(pipes.iter().map(|&p| p as u32));
    keep.retain(|&k| k as i32 != runner_end);
    keep.sort_unstable();
    let mut from = 0u32;
    for &k in &keep {
        if k > from {
            let _ = crate::sys::close_range(from, k - 1, false);
        }
        from = k + 1;
    }
    let _ = crate::sys::close_range(from, u32::MAX, false);
    crate::sys::null_stdio(&keep);
}
