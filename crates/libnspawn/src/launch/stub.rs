//! `--as-pid2`: a minimal init stays PID 1 and reaps orphans. It answers the
//! init signals as systemd does (SIGINT, SIGRTMIN+5: reboot; SIGRTMIN+3,
//! SIGRTMIN+4: power off, as the reference's stub) and forwards every other
//! signal to the payload (PID 2). It exits as the payload did (255 if a
//! signal killed it, as the reference), and the kernel then ends whatever
//! else is left in the namespace.
//!
//! The stub is the one process of ours that lives on inside the container.
//! It keeps no descriptor of the runner's (root inside could borrow them
//! through `/proc/1/fd`), and its `/proc/1/exe` is a sealed copy of our
//! binary, not the file on the host (see `sealed`).

use crate::error::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// Fork: the child returns and goes on to become the payload; this process
/// becomes the stub and never returns.
pub fn fork_stub() -> Result<()> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .ctx(|| "cannot block signals".into())?;
    // The payload waits until the stub has cleaned up (end of file on this
    // pipe): until then the stub still holds the runner's descriptors and
    // the caller's environment, which the payload could read in /proc/1.
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "cannot create a pipe".into())?;
    // SAFETY: single-threaded process.
    match unsafe { fork() }.ctx(|| "cannot fork the payload".into())? {
        ForkResult::Child => {
            drop(ready_w);
            let mut b = [0u8; 1];
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&ready_r, &mut b) {}
            drop(ready_r);
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .ctx(|| "cannot unblock signals".into())?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            drop(ready_r);
            wipe_environment();
            // Nothing of the runner's stays open in PID 1, where root in
            // the container could borrow it through /proc/1/fd; the channel
            // must close too (the runner learns of the payload's exec by
            // its end), and so does the pipe, which lets the payload go on.
            // It cannot fail here: the same call with CLOSE_RANGE_CLOEXEC
            // worked before the stub was forked.
            let _ = crate::sys::close_range(3, u32::MAX, false);
            std::mem::forget(ready_w);
            stub_loop(child)
        }
    }
}

/// `/proc/1/environ` shows the memory our environment was handed in at
/// exec (proc(5), env_start..env_end): the caller's, which the container
/// must not see. The stub reads no variable, so the block is zeroed in
/// place (moving it would need CAP_SYS_RESOURCE, PR_SET_MM).
fn wipe_environment() {
    let Ok(stat) = crate::sys::read_proc("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which may contain spaces: field 3 is
    // the first; env_start and env_end are fields 50 and 51.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let fields: Vec<usize> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let (Some(&start), Some(&end)) = (fields.get(50 - 3), fields.get(51 - 3)) else {
        return;
    };
    if start == 0 || end <= start {
        return;
    }
    // SAFETY: [start, end) is this process's environment block, mapped and
    // writable (it is on the initial stack); nothing reads it after this,
    // Rust's std::env included (the stub never asks).
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
}

fn stub_loop(main: Pid) -> ! {
    // SAFETY: plain libc calls on local, initialised signal sets; libc is
    // used directly because nix's Signal cannot name real-time signals.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            let rt = sig - libc::SIGRTMIN();
            if sig == libc::SIGINT || rt == 5 {
                shutdown(libc::RB_AUTOBOOT);
            } else if rt == 3 || rt == 4 {
                shutdown(libc::RB_POWER_OFF);
            } else if sig != libc::SIGCHLD {
                libc::kill(main.as_raw(), sig);
                continue;
            }
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == main => exit(code),
                    Ok(WaitStatus::Signaled(pid, _, _)) if pid == main => exit(255),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Ask everything to end, give it a moment, then reboot(2): in a PID
/// namespace that ends PID 1 with SIGHUP (restart) or SIGINT (power off),
/// which the runner sees (pid_namespaces(7)).
fn shutdown(cmd: libc::c_int) -> ! {
    // SAFETY: plain libc calls.
    unsafe {
        libc::kill(-1, libc::SIGTERM);
        for _ in 0..500 {
            if libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) < 0 {
                break;
            }
            libc::usleep(10_000);
        }
        libc::kill(-1, libc::SIGKILL);
        libc::reboot(cmd);
        libc::_exit(1)
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(code) }
}
