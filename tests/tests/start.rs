//! The start path: one name, one start; every stage undone on failure and
//! on a stop request; the child never runs the runner's code.

use nspawn_tests::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The container process's stages.
const CHILD_STAGES: &[&str] = &["child.start", "child.root", "child.mounts", "child.exec"];

/// Options that make every stage do something: a user namespace, a veth
/// link with addresses, a bind.
fn every_feature<'a>(t: &'a Tree, name: &'a str) -> Vec<&'a str> {
    vec![
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        name,
        "-U",
        "-n",
        "--bind=/etc/hostname:/mnt/hostname",
    ]
}

fn with_failpoint(args: &[&str], point: &str) -> Command {
    let mut c = nspawn(args);
    c.env("NSPAWN_FAILPOINT", point);
    c
}

#[test]
fn the_stages_are_the_ones_the_runner_passes() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fpl");
    let name = unique("fpl");
    let mut args = every_feature(&t, &name);
    args.push("/bin/true");
    let o = run(with_failpoint(&args, "list"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let passed: Vec<String> = stderr(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("failpoint: "))
        .map(str::to_string)
        .collect();
    // The child's stages print into the container's stderr, which is ours
    // with --pipe; every stage is passed once, runner's in order.
    for s in RUNNER_STAGES.iter().chain(CHILD_STAGES) {
        assert_eq!(
            passed.iter().filter(|p| p == s).count(),
            1,
            "{s}: {passed:?}"
        );
    }
    let runner: Vec<&String> = passed
        .iter()
        .filter(|p| RUNNER_STAGES.contains(&p.as_str()))
        .collect();
    assert_eq!(runner, RUNNER_STAGES.iter().collect::<Vec<_>>());
    assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new());
}

#[test]
fn a_failure_at_each_stage_says_so_in_one_line_and_leaves_nothing() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fps");
    for stage in RUNNER_STAGES.iter().chain(CHILD_STAGES) {
        let name = unique("fps");
        let mut args = every_feature(&t, &name);
        args.push("/bin/true");
        let o = run(with_failpoint(&args, stage));
        assert_eq!(o.status.code(), Some(1), "{stage}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim_end(),
            format!("nspawn: injected failure at {stage}"),
            "{stage}: exactly one line"
        );
        assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new(), "{stage}");
    }
    // And the tree is not left busy.
    ok(t.sh(&[], "true"));
}

/// Start `cmd` with its stderr read line by line into a channel.
fn start_reading(mut c: Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn sigterm_during_each_setup_stage_stops_the_start_at_once() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fpt");
    for stage in RUNNER_STAGES {
        let name = unique("fpt");
        let mut args = every_feature(&t, &name);
        args.push("/bin/true");
        let (mut child, lines) = start_reading(with_failpoint(&args, &format!("{stage}:pause")));
        let paused = format!("nspawn: paused at {stage}");
        let mut seen = vec![];
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l == paused => break,
                Ok(l) => seen.push(l),
                Err(_) => {}
            }
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let sent = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "{stage}: still running"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = sent.elapsed();
        // The rest, until the runner's stderr closes.
        let mut rest = vec![];
        while let Ok(l) = lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(l);
        }
        assert_eq!(status.code(), Some(1), "{stage}: {seen:?} {rest:?}");
        assert!(took < Duration::from_secs(1), "{stage}: took {took:?}");
        assert!(
            rest.iter().any(|l| l.contains("start interrupted by TERM")),
            "{stage}: {seen:?} {rest:?}"
        );
        assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new(), "{stage}");
    }
}

/// Ephemeral runs share the tree, so only the name decides; `-M` keeps the
/// name given (the reference adds a random suffix only without one).
#[test]
fn concurrent_starts_of_one_name_run_it_once() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("one");
    let name = unique("one");
    let script = "sleep 2";
    let runners: Vec<Child> = (0..6)
        .map(|_| {
            let mut c = nspawn(&[
                "-q",
                "--pipe",
                "-x",
                "-D",
                t.dir(),
                "-M",
                &name,
                "-n",
                "/bin/sh",
                "-c",
                script,
            ]);
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let outs: Vec<_> = runners
        .into_iter()
        .map(|c| wait_output(c, Duration::from_secs(60)))
        .collect();
    let won: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    let lost: Vec<_> = outs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    for o in lost {
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(o).trim_end(),
            format!("nspawn: machine '{name}' is already running"),
        );
    }
    assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new());
}

#[test]
fn a_name_held_for_a_recycled_pid_is_not_taken_for_a_running_machine() {
    if ours_only() {
        return;
    }
    use std::os::fd::AsRawFd;
    let t = Tree::busybox("pid");
    let name = unique("pid");
    // A live process that is not the runner: its PID with the wrong start
    // time, as a recycled PID would look.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::create_dir_all("/run/nspawn/names").unwrap();
    let path = format!("/run/nspawn/names/{name}");
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(&path, format!("runner {} 1 {}\n", other.id(), boot.trim())).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    // SAFETY: flock on a file we opened; held by this test until dropped.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    let held = Instant::now();
    let o = t.sh(&["-M", &name], "true");
    // Waited for the "dying" holder, then refused: not "already running".
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is still shutting down"),
        "{}",
        stderr(&o)
    );
    assert!(held.elapsed() > Duration::from_secs(10));
    drop(f);
    // Released: the start takes the stale file over.
    ok(t.sh(&["-M", &name], "true"));
    other.kill().unwrap();
    let _ = other.wait();
    assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new());
}

#[test]
fn timing_names_every_stage_in_order() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("tim");
    // `1`: from `launch::run`'s start; a time in ns: from the caller's.
    for from_caller in [false, true] {
        let mut c = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/true"]);
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let value = match from_caller {
            true => since.as_nanos().to_string(),
            false => "1".into(),
        };
        c.env("NSPAWN_TIMING", value);
        let o = run(c);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let marks: Vec<(String, f64)> = stderr(&o)
            .lines()
            .filter_map(|l| l.strip_prefix("nspawn: timing "))
            .filter_map(|l| {
                let (stage, ms) = l.split_once(" +")?;
                Some((stage.to_string(), ms.strip_suffix(" ms")?.parse().ok()?))
            })
            .collect();
        let runner: Vec<&(String, f64)> = marks
            .iter()
            .filter(|(s, _)| !s.starts_with("child."))
            .collect();
        let names: Vec<&str> = runner.iter().map(|(s, _)| s.as_str()).collect();
        // No user namespace or links here: their wiring stages are not
        // passed. Timing alone marks the start and the filters built.
        let want: Vec<&str> = std::iter::once("run")
            .chain(
                RUNNER_STAGES
                    .iter()
                    .copied()
                    .filter(|s| !matches!(*s, "wire.userns" | "wire.net"))
                    .flat_map(|s| match s {
                        "wire.place" => vec!["wire.filters", s],
                        _ => vec![s],
                    }),
            )
            .chain(["exited", "released"])
            .collect();
        assert_eq!(names, want, "{}", stderr(&o));
        assert!(runner.windows(2).all(|w| w[0].1 <= w[1].1), "{runner:?}");
        assert!(marks.iter().any(|(s, _)| s == "child.exec"), "{marks:?}");
        // From the caller's clock, the exec and the command line count:
        // `run` is well past zero (a debug build takes milliseconds).
        let run_at = runner[0].1;
        assert_eq!(from_caller, run_at > 0.2, "run at {run_at} ms");
    }
}

/// The runner is linked statically (scripts/rustc-wrapper): no ld.so and
/// no libc.so to map at each exec, no shared mappings to copy at each
/// fork. Seen from the kernel: a running runner maps no shared object.
#[test]
fn the_runner_maps_no_shared_object() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("static");
    let m = marker();
    let mut runner = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/sleep", &m])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_until(Duration::from_secs(10), || !processes_with(&m).is_empty());
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", runner.id())).unwrap();
    runner.kill().unwrap();
    let _ = runner.wait();
    assert!(running, "the payload never ran");
    let shared: Vec<&str> = maps.lines().filter(|l| l.contains(".so")).collect();
    assert!(shared.is_empty(), "the runner maps {shared:#?}");
    assert!(maps.contains("nspawn"), "{maps}");
}
