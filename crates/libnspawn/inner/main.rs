//! `nspawn-inner`: the only program of ours that a machine ever sees
//! running. Built static by `build.rs` (rustc and glibc alone) and
//! executed from a sealed memfd (`libnspawn::inner`), so the process maps
//! nothing of the host's: its `/proc/PID/exe` and `map_files` are that
//! memfd, which nobody can write. Our dynamically linked binaries would
//! show the host's libc there, and root of a machine without `-U` (which
//! holds CAP_SYS_ADMIN and CAP_SYS_PTRACE of the host) could open it for
//! writing through `/proc/PID/map_files` (docs/design/hostile.md).
//!
//! Two roles, by the first argument:
//! - `stub PID`: `--as-pid2`'s PID 1 ([`stub`]);
//! - `join TTY NAME N CANDIDATE... ARGV0 ARG...`: the process of
//!   `nspawnctl shell`/`login` that forks into the machine ([`join`]).
//!
//! `no_main`: std's runtime sets nothing up (it would ignore SIGPIPE, which
//! the programs we start would inherit); the few libc calls are declared
//! here, as the `libc` crate cannot be given to a bare `rustc`.

#![no_main]

mod join;
mod stub;

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

extern "C" {
    fn fork() -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
        -> c_int;
    fn setsid() -> c_int;
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut c_void) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn reboot(cmd: c_int) -> c_int;
    fn usleep(us: u32) -> c_int;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn _exit(code: c_int) -> !;
    fn __errno_location() -> *mut c_int;
    fn __libc_current_sigrtmin() -> c_int;
    fn strerror(e: c_int) -> *const c_char;
}

/// glibc's sigset_t: 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

impl SigSet {
    fn empty() -> SigSet {
        let mut s = SigSet([0; 16]);
        // SAFETY: initialises our own set.
        unsafe { sigemptyset(&mut s) };
        s
    }

    fn wait(&self) -> c_int {
        let mut info = [0u64; 16];
        // SAFETY: a siginfo_t is 128 bytes.
        unsafe { sigwaitinfo(self, info.as_mut_ptr().cast()) }
    }
}

const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGQUIT: c_int = 3;
const SIGKILL: c_int = 9;
const SIGPIPE: c_int = 13;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const SIG_DFL: usize = 0;
const WNOHANG: c_int = 1;

/// How a child ended, from its wait status: the code, or the signal.
fn ended(status: c_int) -> Result<c_int, c_int> {
    match status & 0x7f {
        0 => Ok(status >> 8 & 0xff),
        sig => Err(sig),
    }
}

fn say(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writing our own buffer to standard error.
        unsafe { write(2, p.as_ptr().cast(), p.len()) };
    }
}

fn errno() -> c_int {
    // SAFETY: glibc's thread-local errno.
    unsafe { *__errno_location() }
}

fn describe(e: c_int) -> &'static [u8] {
    // SAFETY: strerror's text stays valid until the next call; we exit.
    unsafe { CStr::from_ptr(strerror(e)) }.to_bytes()
}

fn fail(what: &str) -> ! {
    let e = errno();
    say(&[b"nspawn: ", what.as_bytes(), b": ", describe(e), b"\n"]);
    // SAFETY: ends this process.
    unsafe { _exit(1) }
}

/// # Safety
/// Called by glibc's start code with the process's arguments.
#[no_mangle]
pub unsafe extern "C" fn main(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let args: Vec<&CStr> = (0..argc as usize)
        .map(|i| CStr::from_ptr(*argv.add(i)))
        .collect();
    match args.get(1).map(|a| a.to_bytes()) {
        Some(b"stub") => stub::main(&args[2..]),
        Some(b"join") => join::main(argv.add(2), &args[2..], envp),
        _ => {
            say(&[b"nspawn-inner: runs only inside machines, started by nspawn\n"]);
            2
        }
    }
}
