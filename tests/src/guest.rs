//! A booted Debian guest driven on its console: the systemd-host test
//! setup (`tests/tests/debian.rs`, `tests/tests/compat_ctl.rs`).

use crate::{nspawn, nspawn_bin, DebianTree, PtySession};
use std::time::Duration;

pub const BOOT: Duration = Duration::from_secs(90);
pub const T: Duration = Duration::from_secs(30);

pub fn boot(t: &DebianTree) -> PtySession {
    boot_with(t, &[])
}

pub fn boot_with(t: &DebianTree, extra: &[&str]) -> PtySession {
    let mut args = vec!["-b", "-D", t.dir()];
    args.extend_from_slice(extra);
    let mut c = nspawn(&args);
    c.env("TERM", "xterm");
    PtySession::spawn(c, 40, 160)
}

pub fn login(s: &mut PtySession) {
    s.expect("login: ", BOOT);
    s.send(b"root\n");
    s.expect("# ", T);
}

/// Binds that put our nspawn and nspawnctl into a guest.
pub fn our_tools() -> Vec<String> {
    let bin = nspawn_bin();
    vec![
        format!("--bind-ro={}:/usr/local/bin/nspawn", bin.display()),
        format!(
            "--bind-ro={}:/usr/local/bin/nspawnctl",
            bin.with_file_name("nspawnctl").display()
        ),
    ]
}

/// Run a shell command on the console and return its output.
pub fn console(s: &mut PtySession, cmd: &str) -> String {
    s.send(format!("{cmd}; echo END-OF''-OUTPUT\n").as_bytes());
    let out = s.expect("END-OF-OUTPUT", T);
    s.expect("# ", T);
    // Drop the echoed command line.
    let out = out
        .split_once('\n')
        .map(|x| x.1)
        .unwrap_or("")
        .replace('\r', "")
        .replace("END-OF-OUTPUT", "");
    strip_csi(&out)
}

/// Drop terminal control sequences (bash's bracketed-paste switches).
pub fn strip_csi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            it.next();
            for c in it.by_ref() {
                if c.is_ascii_alphabetic() || c == '~' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
