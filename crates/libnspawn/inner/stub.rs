//! `stub PID`: `--as-pid2`'s PID 1, PID being the payload (PID 2). It
//! reaps orphans, answers the init signals as systemd does (SIGINT,
//! SIGRTMIN+5: reboot; SIGRTMIN+3, SIGRTMIN+4: power off, as the
//! reference's stub) and forwards every other signal to the payload. It
//! ends as the payload did (255 if a signal killed it, as the
//! reference), and the kernel then ends whatever else is left in the
//! namespace.
//!
//! The runner's child executes us with every signal blocked (the mask
//! and what is pending survive execve), no environment and no descriptor
//! but 0-2.

use super::*;

const RB_AUTOBOOT: c_int = 0x0123_4567;
const RB_POWER_OFF: c_int = 0x4321_FEDC;

pub unsafe fn main(args: &[&CStr]) -> c_int {
    let Some(payload) = args
        .first()
        .and_then(|a| std::str::from_utf8(a.to_bytes()).ok())
        .and_then(|a| a.parse::<c_int>().ok())
    else {
        say(&[b"nspawn-inner: stub PID\n"]);
        return 2;
    };
    let mut all = SigSet::empty();
    sigfillset(&mut all);
    let rtmin = __libc_current_sigrtmin();
    loop {
        let sig = all.wait();
        if sig < 0 {
            continue;
        }
        let rt = sig - rtmin;
        if sig == SIGINT || rt == 5 {
            shutdown(RB_AUTOBOOT);
        } else if rt == 3 || rt == 4 {
            shutdown(RB_POWER_OFF);
        } else if sig != SIGCHLD {
            kill(payload, sig);
            continue;
        }
        loop {
            let mut status = 0;
            let pid = waitpid(-1, &mut status, WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == payload {
                _exit(ended(status).unwrap_or(255));
            }
        }
    }
}

/// Ask everything to end, give it a moment, then reboot(2): in a PID
/// namespace that ends PID 1 with SIGHUP (restart) or SIGINT (power off),
/// which the runner sees (pid_namespaces(7)).
unsafe fn shutdown(cmd: c_int) -> ! {
    kill(-1, SIGTERM);
    for _ in 0..500 {
        if waitpid(-1, std::ptr::null_mut(), WNOHANG) < 0 {
            break;
        }
        usleep(10_000);
    }
    kill(-1, SIGKILL);
    reboot(cmd);
    _exit(1)
}
