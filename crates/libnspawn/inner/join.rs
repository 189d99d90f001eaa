//! `join TTY NAME N CANDIDATE... ARGV0 ARG...`, with the session's
//! environment: `nspawnctl shell`/`login`'s process in the machine.
//!
//! nspawnctl has joined the machine's namespaces (its PID namespace for
//! children only) and taken the session's terminal, confinement and
//! identity in a process of the host's PID namespace, which the machine
//! cannot name, and executed us there. Only now does anything enter the
//! machine's PID namespace: our child, mapping this sealed program alone
//! and holding the session's 0-2 alone. It starts a session (the terminal
//! on 0 its controlling one when TTY is `t`) and executes the first of
//! the N candidates that runs. We wait and end as it did (128 + signal
//! for a signal); SIGTERM (nspawnctl's escape) kills it, SIGINT, SIGQUIT
//! and SIGHUP are passed on.

use super::*;

const TIOCSCTTY: c_ulong = 0x540E;

pub unsafe fn main(
    argv: *const *const c_char,
    args: &[&CStr],
    envp: *const *const c_char,
) -> c_int {
    let usage = || {
        say(&[b"nspawn-inner: join TTY NAME N CANDIDATE... ARGV0 ARG...\n"]);
        2
    };
    let n = std::str::from_utf8(args.get(2).map_or(&[][..], |a| a.to_bytes()))
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    if n == 0 || args.len() < 4 + n {
        return usage();
    }
    let tty = args[0].to_bytes() == b"t";
    let name = args[1].to_bytes();
    let candidates = &args[3..3 + n];
    let session_argv = argv.add(3 + n);

    // Signals are read with sigwaitinfo; the session gets the mask we
    // were given. We are in nspawnctl's process group: the terminal's
    // SIGINT, SIGQUIT and SIGHUP reach us, and go on to the session.
    let (mut set, mut old) = (SigSet::empty(), SigSet::empty());
    for sig in [SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP] {
        sigaddset(&mut set, sig);
    }
    if sigprocmask(SIG_BLOCK, &set, &mut old) < 0 {
        fail("cannot block signals");
    }
    let pid = fork();
    if pid < 0 {
        fail("cannot start a process in the machine");
    }
    if pid == 0 {
        sigprocmask(SIG_SETMASK, &old, std::ptr::null_mut());
        signal(SIGPIPE, SIG_DFL);
        setsid();
        if tty && ioctl(0, TIOCSCTTY, 0 as c_ulong) < 0 {
            fail("cannot make the terminal the session's");
        }
        let mut last = 0;
        for c in candidates {
            execve(c.as_ptr(), session_argv, envp);
            last = errno();
        }
        // A path given, or the name searched for.
        let shown = if n == 1 { candidates[0] } else { args[3 + n] };
        say(&[
            b"nspawnctl: cannot execute ",
            shown.to_bytes(),
            b" in machine ",
            name,
            b": ",
            describe(last),
            b"\n",
        ]);
        _exit(127);
    }
    loop {
        match set.wait() {
            SIGTERM => kill(pid, SIGKILL),
            sig @ (SIGINT | SIGQUIT | SIGHUP) => kill(pid, sig),
            _ => 0,
        };
        let mut status = 0;
        if waitpid(pid, &mut status, WNOHANG) == pid {
            return match ended(status) {
                Ok(code) => code,
                Err(sig) => 128 + sig,
            };
        }
    }
}
