//! Bad input, busy trees, signals to the runner, and what is left behind.

use nspawn_tests::*;
use std::process::Stdio;
use std::time::Duration;

fn start(args: &[&str]) -> std::process::Child {
    let mut c = nspawn(args);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

fn kill(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_nothing() {
    let t = Tree::busybox("bad");
    let nousr = Tree::busybox("nousr");
    std::fs::remove_dir_all(nousr.join("usr")).unwrap();
    let noos = Tree::busybox("noos");
    std::fs::remove_file(noos.join("etc/os-release")).unwrap();
    let tree_before = listing(&t);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-D", "/nonexistent/x", "true"],
            "Failed to resolve path /nonexistent/x",
        ),
        (
            vec!["-D", nousr.dir(), "true"],
            "/usr/ directory is missing",
        ),
        (vec!["-b", "-D", noos.dir()], "os-release file is missing"),
        (vec!["--uuid=", "-D", t.dir(), "true"], "Invalid UUID: "),
        (
            vec!["--uuid=xyz", "-D", t.dir(), "true"],
            "Invalid UUID: xyz",
        ),
        (
            vec!["--kill-signal=%$š", "-D", t.dir(), "true"],
            "Cannot parse signal",
        ),
        (
            vec!["--console=foo", "-D", t.dir(), "true"],
            "Unknown console mode: foo",
        ),
        (
            vec!["-M", "a b", "-D", t.dir(), "true"],
            "Invalid machine name: a b",
        ),
        (
            vec!["-b", "-a", "-D", t.dir()],
            "--boot and --as-pid2 may not be combined.",
        ),
        (
            vec!["--chdir=tmp", "-D", t.dir(), "true"],
            "Working directory tmp is not an absolute path.",
        ),
        (
            vec!["-E", "=x", "-D", t.dir(), "true"],
            "Cannot assign environment variable =x",
        ),
        (
            vec!["--bogus-option", "-D", t.dir(), "true"],
            "bogus-option",
        ),
    ];
    for (args, msg) in cases {
        let o = run(nspawn(&args));
        let err = host_quirks_removed(&stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err:?} lacks {msg:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    for tree in [&t, &nousr, &noos] {
        assert!(mounts_under(&tree.path).is_empty());
    }
    if !reference() {
        // The reference writes etc/localtime and etc/resolv.conf even here.
        assert_eq!(listing(&t), tree_before);
        for name in [&t.name, &nousr.name, &noos.name] {
            assert!(!machine_cgroup(name).exists());
        }
    }
}

#[test]
fn missing_command_is_one_clear_error() {
    let t = Tree::busybox("nocmd");
    let o = run(nspawn(&["-q", "--pipe", "-D", t.dir(), "no-such-command"]));
    assert_eq!(o.status.code(), Some(1));
    let err = host_quirks_removed(&stderr(&o));
    assert!(
        err.contains("no-such-command") && err.contains("No such file or directory"),
        "{err}"
    );
    if !reference() {
        assert_eq!(
            err,
            "nspawn: cannot execute no-such-command: No such file or directory\n"
        );
        assert!(!machine_cgroup(&t.name).exists());
    }
}

fn listing(t: &Tree) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(t.dir())
        .output()
        .unwrap();
    let mut v: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_busy_tree_is_refused() {
    let t = Tree::busybox("busy");
    let marker = marker();
    let script = format!(
        "exec >/dev/null 2>&1; for i in $(seq 400); do sleep {marker} & done; touch /running; wait"
    );
    let first = start(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        // Many processes, so the container takes a while to die once its
        // runner is killed, and none holding the runner's output pipes, so
        // we see the runner end before they do.
        &script,
    ]);
    assert!(wait_until(Duration::from_secs(10), || t
        .join("running")
        .exists()));
    let o = run(nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/true"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("Directory tree {} is currently busy.", t.dir())),
        "{}",
        stderr(&o)
    );
    kill(&first, libc::SIGKILL);
    let _ = wait_output(first, Duration::from_secs(10));
    // Free again once the first runner is gone, even after SIGKILL, and
    // even while its container is still dying: the start waits for that.
    ok(run(nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/true"])));
    if !reference() {
        assert!(processes_exactly(&format!("sleep {marker}")).is_empty());
    }
}

/// Run `sleep MARKER` in `t` (with `failpoint`), SIGTERM the runner once
/// the payload runs: it ends with 1, the container with it, saying so
/// (ours) as the reference does.
fn sigterm_once_running(t: &Tree, failpoint: Option<&str>) {
    let marker = &marker();
    let mut c = nspawn(&["-D", t.dir(), "--pipe", "sleep", marker]);
    if let Some(f) = failpoint {
        c.env("NSPAWN_FAILPOINT", f);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("sleep {marker}")
    )
    .is_empty()));
    kill(&child, libc::SIGTERM);
    let o = wait_output(child, Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(1));
    assert!(processes_exactly(&format!("sleep {marker}")).is_empty());
    if !reference() {
        assert!(
            stderr(&o).contains(&format!("Container {} terminated by signal KILL.", t.name)),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn sigterm_to_the_runner_kills_the_container() {
    sigterm_once_running(&Tree::busybox("term"), None);
}

/// SIGTERM that crosses the end of the setup (the payload executed, the
/// runner not yet told): the container ran, so it is ended as a running
/// one, not reported as a start interrupted before it ran (the runner
/// reads what the container sent before the signal; `supervise.setup:delay`
/// holds it back until both are pending).
#[test]
fn sigterm_crossing_the_end_of_the_setup_ends_a_running_container() {
    if ours_only() {
        return;
    }
    sigterm_once_running(&Tree::busybox("term-cross"), Some("supervise.setup:delay"));
}

#[test]
fn sigterm_with_a_kill_signal_asks_first() {
    // With -a the stub powers off on SIGRTMIN+4, like an init.
    let t = Tree::busybox("halt");
    let child = start(&[
        "-D",
        t.dir(),
        "-a",
        "--kill-signal=SIGRTMIN+4",
        "/bin/sh",
        "-c",
        "touch /running; sleep 30",
    ]);
    assert!(wait_until(Duration::from_secs(10), || t
        .join("running")
        .exists()));
    kill(&child, libc::SIGTERM);
    let o = wait_output(child, Duration::from_secs(15));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "Trying to halt container. Send SIGTERM again to trigger immediate termination."
        ),
        "{err}"
    );
    assert!(err.contains("has been shut down."), "{err}");
}

#[test]
fn sigkill_of_the_runner_leaves_nothing_behind() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("sigkill");
    let marker = &marker();
    let child = start(&["-q", "--pipe", "-D", t.dir(), "sleep", marker]);
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("sleep {marker}")
    )
    .is_empty()));
    assert!(machine_cgroup(&t.name).exists());
    kill(&child, libc::SIGKILL);
    let _ = wait_output(child, Duration::from_secs(10));
    // The container dies with its runner (PR_SET_PDEATHSIG on PID 1), and
    // the reaper removes the cgroup.
    assert!(wait_until(Duration::from_secs(5), || processes_exactly(
        &format!("sleep {marker}")
    )
    .is_empty()));
    assert!(
        wait_until(Duration::from_secs(5), || !machine_cgroup(&t.name).exists()),
        "cgroup left behind"
    );
    assert!(mounts_under(&t.path).is_empty(), "mounts left on the host");
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(t.dir())
            .is_empty()),
        "a process of ours outlived the runner"
    );
}

#[test]
fn a_stale_cgroup_is_swept_by_the_next_start() {
    if ours_only() {
        return;
    }
    // Kill the runner and its reaper at once: the next start of any
    // container removes the orphaned cgroup.
    let t = Tree::busybox("stale");
    let marker = &marker();
    let child = start(&["-q", "--pipe", "-D", t.dir(), "sleep", marker]);
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("sleep {marker}")
    )
    .is_empty()));
    // Stop both first, so the reaper cannot act between the two kills.
    let pids = processes_with(t.dir());
    assert_eq!(pids.len(), 2, "runner and reaper: {pids:?}");
    for sig in [libc::SIGSTOP, libc::SIGKILL] {
        for &pid in &pids {
            // SAFETY: signalling the runner and its reaper.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }
    let _ = wait_output(child, Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(5), || processes_exactly(
        &format!("sleep {marker}")
    )
    .is_empty()));
    // Another test's start may sweep it first; either way a start does.
    let other = Tree::busybox("sweeper");
    ok(run(nspawn(&[
        "-q",
        "--pipe",
        "-D",
        other.dir(),
        "/bin/true",
    ])));
    assert!(!machine_cgroup(&t.name).exists(), "stale cgroup not swept");
    // And what else it left under its name.
    let left: Vec<String> = leftovers(&t.name, &t.path);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_running_machine_name_is_refused() {
    if ours_only() {
        return;
    }
    let a = Tree::busybox("namea");
    let b = Tree::busybox("nameb");
    let first = start(&[
        "-q",
        "--pipe",
        "-M",
        &a.name,
        "-D",
        a.dir(),
        "/bin/sh",
        "-c",
        "touch /running; sleep 30",
    ]);
    assert!(wait_until(Duration::from_secs(10), || a
        .join("running")
        .exists()));
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "-M",
        &a.name,
        "-D",
        b.dir(),
        "/bin/true",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("nspawn: machine '{}' is already running\n", a.name)
    );
    kill(&first, libc::SIGKILL);
    let _ = wait_output(first, Duration::from_secs(10));
}

#[test]
fn options_of_later_features_say_so() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("pending");
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "--notify-ready=yes",
        "-D",
        t.dir(),
        "/bin/true",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "nspawn: --notify-ready is not supported yet\n");
    // What they would switch off is accepted.
    ok(run(nspawn(&[
        "-q",
        "--pipe",
        "--private-users=no",
        "--settings=no",
        "-D",
        t.dir(),
        "/bin/true",
    ])));
}

#[test]
fn slice_places_the_cgroup_and_goes_with_it() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("slice");
    let slice = format!("nspawntest{}", std::process::id());
    let arg = format!("--slice={slice}-sub.slice");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        &arg,
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "touch /running; sleep 30",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || t
        .join("running")
        .exists()));
    let scope = machine_cgroup(&t.name);
    let root = scope.parent().unwrap().parent().unwrap();
    let expected = root.join(format!(
        "{slice}.slice/{slice}-sub.slice/machine-{}.scope",
        t.name.replace('-', "\\x2d")
    ));
    assert!(
        expected.join("cgroup.procs").exists(),
        "{}",
        expected.display()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !root
            .join(format!("{slice}.slice"))
            .exists()),
        "slices left behind"
    );
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "--slice=bad",
        "-D",
        t.dir(),
        "/bin/true",
    ]));
    assert_eq!(stderr(&o), "nspawn: Invalid slice name: bad\n");
}
