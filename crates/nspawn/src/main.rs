//! `nspawn`: parse the command line, run the container, exit as it did.
//!
//! `no_main`: std's runtime start-up is skipped. It reads /proc/self/maps
//! for the main thread's stack guard, polls descriptors 0-2 and sets up a
//! signal stack, about 0.15 ms of a 5 ms start. What of it matters to us
//! is done here: SIGPIPE ignored, so that a write to a closed pipe fails
//! with EPIPE, as it did under std's runtime (the container process
//! resets every signal before its payload). Descriptors 0-2 are put on
//! /dev/null where closed by `launch::run`. A stack overflow ends the
//! runner with SIGSEGV instead of std's message. `std::env::args` works
//! without the runtime on glibc (std takes them from `.init_array`).

#![no_main]

use nspawn::cli;

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN; single-threaded.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = match cli::parse(std::env::args_os().collect()) {
        Ok(settings) => match libnspawn::launch::run(&settings) {
            Ok(code) => code,
            Err(e) => fail(&e.to_string()),
        },
        Err(cli::Failure::Clap(e)) => {
            let _ = e.print();
            0
        }
        Err(cli::Failure::Message(m)) => fail(&m),
    };
    std::process::exit(code);
}

fn fail(msg: &str) -> i32 {
    eprintln!("nspawn: {msg}");
    1
}
