//! The console, driven through a real pseudo terminal as a person would.

use nspawn_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn session(t: &Tree, extra: &[&str], rows: u16, cols: u16) -> PtySession {
    let mut args = vec!["-D", t.dir()];
    args.extend_from_slice(extra);
    let mut c = nspawn(&args);
    c.env("TERM", "xterm-256color").env("ENV", "");
    PtySession::spawn(c, rows, cols)
}

#[test]
fn typing_window_size_and_term() {
    let t = Tree::busybox("tty");
    let mut s = session(&t, &["/bin/sh"], 30, 100);
    let banner = s.expect("Press ^] three times within 1s to kill container.", T);
    assert!(
        banner.contains(&format!("Spawning container {} on {}.", t.name, t.dir())),
        "{banner}"
    );
    s.expect("# ", T);
    s.send(b"echo $((6*7)) $TERM; stty size; tty\n");
    s.expect("42 xterm-256color", T);
    s.expect("30 100", T);
    s.expect("/dev/", T);
    s.expect("# ", T);
    // A resize of our terminal reaches the container (the runner passes
    // SIGWINCH on).
    assert!(
        s.resize_and_ask(40, 120),
        "the new size did not reach the container"
    );
    s.expect("# ", T);
    s.send(b"exit 4\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 4, "{out}");
}

#[test]
fn three_escapes_within_a_second_kill_the_container() {
    let t = Tree::busybox("escape");
    let mut s = session(&t, &["-q", "/bin/sh"], 24, 80);
    s.expect("# ", T);
    s.send(&[0x1d]);
    std::thread::sleep(Duration::from_millis(100));
    s.send(&[0x1d]);
    std::thread::sleep(Duration::from_millis(100));
    s.send(&[0x1d]);
    let (code, out) = s.finish(T);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("Container {} terminated by signal KILL.", t.name)),
        "{out:?}"
    );
}

#[test]
fn slow_escapes_are_just_input() {
    let t = Tree::busybox("noescape");
    let mut s = session(&t, &["-q", "/bin/sh"], 24, 80);
    s.expect("# ", T);
    // More than a second between each, however late the runner reads them.
    for _ in 0..3 {
        s.send(&[0x1d]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    s.send(b"\x15echo still-here\n");
    s.expect("still-here\r\n", T);
    s.send(b"exit\n");
    assert_eq!(s.finish(T).0, 0);
}

#[test]
fn the_terminal_is_restored_on_exit() {
    if ours_only() {
        return;
    }
    // Our runner reads its own terminal settings back after the container
    // ends: run it under `sh -c` and print `stty -a` afterwards.
    let t = Tree::busybox("restore");
    let script = format!(
        "{} -q -D {} /bin/sh -c 'exit 0'; stty -a",
        nspawn_bin().display(),
        t.dir()
    );
    let mut c = std::process::Command::new("/bin/sh");
    c.args(["-c", &script]);
    let mut s = PtySession::spawn(c, 24, 80);
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    // Canonical mode and echo are back on (raw mode would show -icanon -echo).
    assert!(out.contains(" icanon") && out.contains(" echo "), "{out}");
    // And the same after the escape kills the container.
    let script = format!(
        "{} -q -D {} /bin/sh -c 'sleep 30'; stty -a",
        nspawn_bin().display(),
        t.dir()
    );
    let mut c = std::process::Command::new("/bin/sh");
    c.args(["-c", &script]);
    let mut s = PtySession::spawn(c, 24, 80);
    std::thread::sleep(Duration::from_millis(500));
    s.send(&[0x1d, 0x1d, 0x1d]);
    let (_, out) = s.finish(T);
    assert!(out.contains(" icanon") && out.contains(" echo "), "{out}");
}

#[test]
fn read_only_console_shows_output_but_takes_no_input() {
    let t = Tree::busybox("ro");
    let mut s = session(
        &t,
        &[
            "-q",
            "--console=read-only",
            "/bin/sh",
            "-c",
            "read -t 1 x; echo got:$x",
        ],
        24,
        80,
    );
    s.send(b"typed\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0);
    assert!(out.contains("got:\r") || out.contains("got:\n"), "{out:?}");
    assert!(!out.contains("got:typed"), "{out:?}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A machine floods its console while nobody reads our terminal (a
/// stalled ssh connection, a terminal scrolled back): `^]^]^]` still ends
/// it at once and everything of it goes. A runner blocked writing to the
/// terminal would never read the escape.
#[test]
fn a_flood_on_a_terminal_nobody_reads_still_takes_the_escape() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("floodtty");
    let marker = format!("flood-{}", t.name);
    // Through sh: the runner's own arguments must not hold the marker.
    let script = format!("exec /bin/yes {marker}");
    let mut s = session(&t, &["-q", "/bin/sh", "-c", &script], 24, 80);
    assert!(wait_until(T, || runs_with_arg(&marker)));
    // Nothing is read: the terminal is full within moments.
    std::thread::sleep(Duration::from_millis(500));
    s.send(&[0x1d, 0x1d, 0x1d]);
    assert!(
        wait_until(Duration::from_secs(5), || !runs_with_arg(&marker)),
        "the escape was not read while the terminal was full"
    );
    assert_eq!(wait_clean(&t.name, &t.path), Vec::<String>::new());
    // What waited is read now, and the runner ends as after any escape.
    let (code, _) = s.finish(T);
    assert_eq!(code, 1);
}

/// The same flood into a pipe nobody reads (the console is read-only
/// without a terminal): the runner keeps answering — `status`, then
/// `terminate`, which returns once nothing of the machine is left — and
/// holds at most a bounded piece of the output. It exits once its
/// reader goes.
#[test]
fn a_flood_into_a_pipe_nobody_reads_leaves_the_runner_answering() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("floodpipe");
    let marker = format!("flood-{}", t.name);
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let script = format!("exec /bin/yes {marker}");
    let mut c = nspawn(&["-q", "-D", t.dir(), "/bin/sh", "-c", &script]);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(w))
        .stderr(std::process::Stdio::null());
    let mut runner = c.spawn().unwrap();
    let record = std::path::Path::new("/run/nspawn/machines").join(&t.name);
    assert!(wait_until(T, || runs_with_arg(&marker) && record.exists()));
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(runner.id());
    std::thread::sleep(Duration::from_millis(1000));
    let grown = rss_kib(runner.id()).saturating_sub(rss);
    assert!(grown < 1024, "the runner grew by {grown} KiB");
    let answer = |args: &[&str]| {
        let mut c = nspawnctl(args);
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let done = wait_until(Duration::from_secs(5), || {
            child.try_wait().unwrap().is_some()
        });
        if !done {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        (done, out)
    };
    let (done, out) = answer(&["status", &t.name]);
    assert!(done && out.status.success(), "status: {out:?}");
    let (done, out) = answer(&["terminate", &t.name]);
    assert!(done && out.status.success(), "terminate: {out:?}");
    assert!(!runs_with_arg(&marker));
    assert_eq!(wait_clean(&t.name, &t.path), Vec::<String>::new());
    drop(r);
    assert!(
        wait_until(T, || runner.try_wait().unwrap().is_some()),
        "the runner did not end with its reader"
    );
}
