//! A runner killed at any instant of a start (issue 16, part 4): SIGKILL
//! at delays swept from right after `exec` to after the payload runs, for
//! each feature set, of the runner alone, of the runner and its reaper,
//! and of every process of ours at once. After each: nothing of the
//! machine is left within a few seconds (or, with no process of ours left
//! to clean up, once the same name starts again, which it must at once),
//! and the tree is as it was.
//!
//! A freezer cgroup holds the runner and all it forks, so "at once" is
//! one instant: frozen, killed, thawed. Tens of trials per feature set
//! here; `NSPAWN_SOAK=1` (`scripts/soak`) runs hundreds.

use nspawn_tests::group::comm;
use nspawn_tests::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long a killed runner's reaper may take to leave nothing behind.
const CLEAN_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Victims {
    /// The runner: its reaper cleans up.
    Runner,
    /// The runner and its reaper: the next start of the name cleans up.
    RunnerAndReaper,
    /// Every process of ours (runner, reaper, helpers, container).
    Everything,
}

const VICTIMS: [Victims; 3] = [
    Victims::Runner,
    Victims::RunnerAndReaper,
    Victims::Everything,
];

fn trials() -> usize {
    match soak() {
        true => std::env::var("NSPAWN_SOAK_TRIALS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(150),
        false => 9,
    }
}

/// One feature set: its options (`{port}` and `{zone}` filled in) and a
/// zone whose bridge must go with the machine.
struct Features {
    label: &'static str,
    opts: Vec<String>,
    zone: Option<String>,
    /// Boot the tree's init (`-b`) in the killed starts, over this long
    /// (the restart runs `/bin/true` without `-b`).
    boot: Option<Duration>,
}

fn features(label: &'static str, opts: &[&str]) -> Features {
    let id = std::process::id();
    let zone = format!("fz{}", id % 100_000);
    let port = (20000 + id % 20000).to_string();
    Features {
        label,
        opts: opts
            .iter()
            .map(|o| o.replace("{zone}", &zone).replace("{port}", &port))
            .collect(),
        zone: opts.iter().any(|o| o.contains("{zone}")).then_some(zone),
        boot: None,
    }
}

/// The runner of one trial, in its freezer cgroup.
fn start(dir: &str, f: &Features, name: &str, group: Option<&Group>, payload: &[&str]) -> Child {
    let mut args = vec!["-q", "--pipe", "-D", dir, "-M", name];
    args.extend(f.opts.iter().map(String::as_str));
    match f.boot {
        Some(_) => args.push("-b"),
        None => args.extend_from_slice(payload),
    }
    let mut c = nspawn(&args);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(g) = group {
        g.join(&mut c);
    }
    c.spawn().unwrap()
}

/// How long a start of `f` takes to run its payload, from the runner's
/// `NSPAWN_TIMING=1` marks (one clean run, which is also the tree's
/// reference state for the trials).
fn start_time(dir: &str, f: &Features, name: &str) -> Duration {
    let mut args = vec!["-q", "--pipe", "-D", dir, "-M", name];
    args.extend(f.opts.iter().map(String::as_str));
    args.push("/bin/true");
    let mut c = nspawn(&args);
    c.env("NSPAWN_TIMING", "1");
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}: {}", f.label, stderr(&o));
    let marks = timing_marks(&stderr(&o));
    let ms = marks
        .iter()
        .find(|(s, _)| s == "supervise.publish")
        .map(|(_, ms)| *ms)
        .expect("timing marks");
    Duration::from_secs_f64(ms / 1000.0)
}

/// Kill `victims` of the runner `child` (all in `group`): frozen first,
/// so that they are killed at one instant of the start.
fn kill(child: &mut Child, group: Option<&Group>, victims: Victims) {
    let runner = child.id();
    match victims {
        Victims::Runner => {
            let _ = child.kill();
        }
        Victims::RunnerAndReaper | Victims::Everything => {
            let group = group.expect("a freezer cgroup");
            group.freeze(true);
            for pid in group.procs() {
                let hit = match victims {
                    Victims::Everything => true,
                    _ => pid == runner || comm(pid) == "nspawn-reaper",
                };
                if hit {
                    // SAFETY: a process of this trial, frozen in its cgroup.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
            group.freeze(false);
        }
    }
    let _ = child.wait();
    if let (Victims::Everything, Some(g)) = (victims, group) {
        g.kill_all();
    }
}

/// Sweep kills through starts of `f`, on a busybox tree.
fn sweep(f: Features) {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("flt");
    sweep_tree(&f, t.dir(), &t.path);
}

/// Sweep kills through starts of `f` on the tree `dir`, whose state
/// (`state_of`, the tree or a writable layer of it) must not change.
fn sweep_tree(f: &Features, dir: &str, state_of: &std::path::Path) {
    let name = unique("fk");
    // Without a v1 freezer (pure cgroup v2 hosts), only the runner.
    let group = Group::new("freezer", &format!("nspawn-faults-{name}"));
    let victims: &[Victims] = match group {
        Some(_) => &VICTIMS,
        None => {
            eprintln!("no v1 freezer hierarchy: only the runner is killed");
            &VICTIMS[..1]
        }
    };
    let tree_path = std::path::Path::new(dir);
    let leaks = |zone: Option<&str>| {
        let mut l = Leaks::new(&name, tree_path);
        l.zone = zone;
        l.wait(CLEAN_WITHIN)
    };
    let span = start_time(dir, f, &name);
    let reference = tree_state(state_of);
    assert_eq!(leaks(f.zone.as_deref()), Vec::<String>::new());
    let n = trials();
    // From right after exec to a third past the payload's start (or
    // into the boot).
    let end = f
        .boot
        .unwrap_or_else(|| span.mul_f64(1.35) + Duration::from_millis(5));
    // Every problem is reported (and the sweep goes on: the next start
    // of the name is what must cope), then the test fails on any.
    let mut problems: Vec<String> = vec![];
    let mut report = |p: String| {
        eprintln!("LEFTOVER {p}");
        problems.push(p);
    };
    let began = Instant::now();
    for i in 0..n {
        let victims = victims[i % victims.len()];
        let delay = end.mul_f64(i as f64 / n as f64);
        let what = format!("{} trial {i}: {victims:?} killed at {delay:?}", f.label);
        let mut child = start(dir, f, &name, group.as_ref(), &["/bin/sleep", "30"]);
        std::thread::sleep(delay);
        kill(&mut child, group.as_ref(), victims);
        if let Victims::Runner = victims {
            let left = leaks(f.zone.as_deref());
            if !left.is_empty() {
                report(format!("{what}: left {left:?}"));
            }
        }
        // The same name starts again at once (after a killed reaper, this
        // start is what cleans up), and then leaves nothing.
        let mut again = vec!["-q", "--pipe", "-D", dir, "-M", &name];
        again.extend(f.opts.iter().map(String::as_str));
        again.push("/bin/true");
        let o = run(nspawn(&again));
        if o.status.code() != Some(0) {
            report(format!("{what}: restart failed: {}", stderr(&o).trim()));
        }
        let left = leaks(f.zone.as_deref());
        if !left.is_empty() {
            report(format!("{what}: after the restart, left {left:?}"));
        }
        let diff = state_diff(&reference, &tree_state(state_of));
        if !diff.is_empty() {
            report(format!("{what}: the tree changed: {diff:?}"));
        }
    }
    eprintln!(
        "faults {}: {n} trials, kills from 0 to {end:?}, {} problems, {:?}",
        f.label,
        problems.len(),
        began.elapsed()
    );
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn killed_plain() {
    sweep(features("plain", &[]));
}

#[test]
fn killed_veth() {
    sweep(features("-n", &["-n"]));
}

#[test]
fn killed_veth_port() {
    sweep(features("-n --port", &["-n", "--port=tcp:{port}:80"]));
}

#[test]
fn killed_zone() {
    sweep(features("--network-zone", &["--network-zone={zone}"]));
}

#[test]
fn killed_userns() {
    sweep(features("-U", &["-U"]));
}

#[test]
fn killed_ephemeral() {
    sweep(features("-x", &["-x"]));
}

/// `-b` of a Debian 12 guest, ephemeral: kills from the start into the
/// boot (systemd making its cgroups in the delegated hierarchy, the
/// journal, logind...); the tree (its overlay's upper layer here) must
/// stay untouched.
#[test]
fn killed_booting_debian() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("flt-deb");
    let mut f = features("-b -x (Debian)", &["-x"]);
    f.boot = Some(Duration::from_millis(1500));
    let upper = std::path::Path::new("/var/tmp/nspawn-tests")
        .join(format!("{}.overlay", t.name))
        .join("upper");
    assert!(upper.is_dir());
    sweep_tree(&f, t.dir(), &upper);
}

/// `--private-users-ownership=chown` killed while it shifts the tree: the
/// next start finishes the shift (the tree's root is done last, so an
/// interrupted shift shows the old owner at the top), and every file ends
/// in the range, none left half-way.
#[test]
fn killed_during_a_chown_shift() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("flt-chown");
    for d in 0..20 {
        let dir = t.path.join(format!("srv/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..250 {
            std::fs::write(dir.join(format!("f{f}")), "x").unwrap();
        }
    }
    let name = unique("fkc");
    let n = trials();
    let mut problems = vec![];
    let mut mid_shift = 0;
    for i in 0..n {
        // Shift from root (0) to a new range each trial, or back: every
        // trial starts from a fully shifted tree of another range.
        let base: u32 = if i % 2 == 0 { 0x5a00_0000 } else { 0x5b00_0000 };
        let users = format!("--private-users={base}:65536");
        let args = [
            "-q",
            "--pipe",
            "-D",
            t.dir(),
            "-M",
            &name,
            &users,
            "--private-users-ownership=chown",
            "/bin/true",
        ];
        let mut c = nspawn(&args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(5 + 10 * i as u64));
        let _ = child.kill();
        let _ = child.wait();
        let left = wait_clean_of(&name, &t.path);
        if !left.is_empty() {
            problems.push(format!("trial {i}: left {left:?}"));
        }
        let (done, total) = in_range(&t.path, base);
        if done > 0 && done < total {
            mid_shift += 1;
        }
        let o = run(nspawn(&args));
        if o.status.code() != Some(0) {
            problems.push(format!("trial {i}: restart failed: {}", stderr(&o).trim()));
        }
        let (done, total) = in_range(&t.path, base);
        let outside = total - done;
        if outside != 0 {
            problems.push(format!("trial {i}: {outside} entries not in {base}:65536"));
        }
    }
    // Back to root-owned for the tree's removal.
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        &name,
        "--private-users=0:65536",
        "--private-users-ownership=chown",
        "/bin/true",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!("faults chown: {n} trials, {mid_shift} killed in the middle of the shift");
    assert_eq!(problems, Vec::<String>::new());
}

/// How many entries of the tree `root` have owner and group in the range
/// at `base`, of how many.
fn in_range(root: &std::path::Path, base: u32) -> (usize, usize) {
    use std::os::unix::fs::MetadataExt;
    let (mut done, mut total) = (0, 0);
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        total += 1;
        if (base..base + 65536).contains(&m.uid()) && (base..base + 65536).contains(&m.gid()) {
            done += 1;
        }
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    (done, total)
}

/// The first line the runner writes on its (piped) stderr that starts
/// with `prefix`; what was read last if none does.
fn stderr_line(child: &mut Child, prefix: &str) -> String {
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut err, &mut line).unwrap_or(0) > 0
        && !line.starts_with(prefix)
    {
        line.clear();
    }
    line
}

fn wait_clean_of(name: &str, tree: &std::path::Path) -> Vec<String> {
    Leaks::new(name, tree).wait(CLEAN_WITHIN)
}

#[test]
fn killed_bind_overlay() {
    sweep(features(
        "--bind/--overlay",
        &[
            "--bind=/etc:/mnt",
            "--bind-ro=/usr/share:/opt",
            "--overlay=/usr::/srv",
            "--overlay-ro=/etc:/usr/share:/media",
        ],
    ));
}

/// The deterministic half of the sweep: the runner stopped at each stage
/// (`STAGE:pause`) with every feature on, then SIGKILLed. A runner killed
/// between taking its name and forking its reaper used to leave its
/// records (the user-namespace one until another `-U` start swept it).
#[test]
fn killed_at_each_stage_leaves_nothing() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fst");
    // A first run makes the mount points and files a run makes.
    ok(t.sh(&["-U", "-n", "--bind=/etc/hostname:/mnt/hostname"], "true"));
    let reference = tree_state(&t.path);
    for stage in RUNNER_STAGES {
        let name = unique("fs");
        let args = [
            "-q",
            "--pipe",
            "-D",
            t.dir(),
            "-M",
            &name,
            "-U",
            "-n",
            "--bind=/etc/hostname:/mnt/hostname",
            "/bin/sleep",
            "30",
        ];
        let mut c = nspawn(&args);
        c.env("NSPAWN_FAILPOINT", format!("{stage}:pause"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let paused = format!("nspawn: paused at {stage}");
        assert_eq!(stderr_line(&mut child, &paused).trim_end(), paused);
        child.kill().unwrap();
        let _ = child.wait();
        let left = Leaks::new(&name, &t.path).wait(CLEAN_WITHIN);
        assert_eq!(left, Vec::<String>::new(), "killed at {stage}");
        let o = t.sh(
            &[
                "-M",
                &name,
                "-U",
                "-n",
                "--bind=/etc/hostname:/mnt/hostname",
            ],
            "true",
        );
        assert_eq!(o.status.code(), Some(0), "{stage}: {}", stderr(&o));
        assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new(), "{stage}");
    }
    assert_eq!(
        state_diff(&reference, &tree_state(&t.path)),
        Vec::<String>::new()
    );
}

/// A runner killed while `--template` copies the tree: its copy stops
/// with it (cp has PDEATHSIG), and the next start rolls the half copy
/// back and makes the tree whole; nothing is left then.
#[test]
fn killed_during_template_copy() {
    if ours_only() {
        return;
    }
    let template = Tree::busybox("ftp");
    let base = std::path::Path::new("/var/tmp/nspawn-tests").join(unique("ftpd"));
    std::fs::create_dir_all(&base).unwrap();
    let tpl = format!("--template={}", template.dir());
    let start_in = |dir: &std::path::Path, name: &str| {
        let mut c = nspawn(&[
            "-q",
            "--pipe",
            "-D",
            dir.to_str().unwrap(),
            "-M",
            name,
            &tpl,
            "/bin/true",
        ]);
        c.env("NSPAWN_TIMING", "1");
        c
    };
    // A whole copy, run once: the state every trial must end in, and how
    // long the copy takes (until the tree's lock).
    let name = unique("ft");
    let whole = base.join("whole");
    let o = run(start_in(&whole, &name));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let copy = timing_marks(&stderr(&o))
        .iter()
        .find(|(s, _)| s == "reserve.tree")
        .map(|(_, ms)| Duration::from_secs_f64(ms / 1000.0))
        .unwrap();
    let reference = tree_state(&whole);
    let n = if soak() { 60 } else { 6 };
    let mut problems = vec![];
    for i in 0..n {
        let dir = base.join(format!("t{i}"));
        let delay = copy.mul_f64(i as f64 / n as f64);
        let mut c = start_in(&dir, &name);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let o = run(start_in(&dir, &name));
        if o.status.code() != Some(0) {
            problems.push(format!("trial {i} at {delay:?}: restart: {}", stderr(&o)));
            continue;
        }
        let left = Leaks::new(&name, &dir).wait(CLEAN_WITHIN);
        if !left.is_empty() {
            problems.push(format!("trial {i} at {delay:?}: left {left:?}"));
        }
        let diff = state_diff(&reference, &tree_state(&dir));
        if !diff.is_empty() {
            problems.push(format!("trial {i} at {delay:?}: tree differs: {diff:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    eprintln!(
        "template: {n} kills during a {copy:?} copy, {} problems",
        problems.len()
    );
    assert_eq!(problems, Vec::<String>::new());
}

/// A start that takes the name over from a killed runner and its reaper
/// (the machine was running: its registry record and control socket are
/// there) and then fails itself: it must take the dead start's traces
/// with it, as nobody else would (its name file is gone with it).
#[test]
fn a_failed_start_after_a_killed_one_leaves_nothing() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fsf");
    let name = unique("ff");
    let Some(group) = Group::new("freezer", &format!("nspawn-faults-{name}")) else {
        eprintln!("no v1 freezer hierarchy; skipped");
        return;
    };
    let f = features("-n", &["-n"]);
    let mut child = start(t.dir(), &f, &name, Some(&group), &["/bin/sleep", "30"]);
    let record = std::path::Path::new("/run/nspawn/machines").join(&name);
    assert!(wait_until(Duration::from_secs(20), || record.exists()));
    kill(&mut child, Some(&group), Victims::RunnerAndReaper);
    for stage in ["reserve.name", "reserve.net", "reserve.control"] {
        let mut c = nspawn(&[
            "-q",
            "--pipe",
            "-D",
            t.dir(),
            "-M",
            &name,
            "-n",
            "/bin/true",
        ]);
        c.env("NSPAWN_FAILPOINT", stage);
        let o = run(c);
        assert_eq!(o.status.code(), Some(1), "{stage}: {}", stderr(&o));
        let left = Leaks::new(&name, &t.path).wait(CLEAN_WITHIN);
        assert_eq!(left, Vec::<String>::new(), "failed at {stage}");
        // Killed again, running, for the next stage.
        let mut child = start(t.dir(), &f, &name, Some(&group), &["/bin/sleep", "30"]);
        assert!(wait_until(Duration::from_secs(20), || record.exists()));
        kill(&mut child, Some(&group), Victims::RunnerAndReaper);
    }
    ok(t.sh(&["-M", &name, "-n"], "true"));
}

/// A runner killed while a forked helper of its (`helper.rs`: bus calls,
/// `--bind-user`'s lookup) waits: the helper dies with it and held none of
/// its descriptors, so the tree, the name and the reaper's pipe are free
/// at once. A helper waiting on machined for an answer that never came
/// once kept all three, and the tree busy, for as long as it waited.
#[test]
fn a_killed_runner_takes_its_helper_with_it() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("fhelper");
    let name = unique("fh");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        &name,
        "-U",
        "--bind-user=nobody",
        "/bin/true",
    ]);
    c.env("NSPAWN_FAILPOINT", "helper:pause")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let line = stderr_line(&mut child, "nspawn: helper ");
    let helper: u32 = line
        .strip_prefix("nspawn: helper ")
        .and_then(|l| l.strip_suffix(" paused\n"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no paused helper: {line:?}"));
    child.kill().unwrap();
    let _ = child.wait();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{helper}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true)
    };
    assert!(
        wait_until(CLEAN_WITHIN, gone),
        "helper {helper} outlived its runner"
    );
    assert_eq!(wait_clean_of(&name, &t.path), Vec::<String>::new());
    // The tree and the name at once: no dead runner's lock to wait for.
    let started = Instant::now();
    ok(t.sh(&["-M", &name], "true"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A runner killed while `--bind-user`'s lookup hangs in getent(1) (here
/// nss-systemd waiting on a user database service that never answers, as
/// an unreachable directory server would): the helper dies with the
/// runner and getent with the helper, so no lookup is left running.
#[test]
fn a_killed_runner_leaves_no_hanging_lookup() {
    if ours_only() {
        return;
    }
    // nss-systemd asks every service in this directory; one that accepts
    // and never answers keeps getent waiting.
    let dir = std::path::Path::new("/run/systemd/userdb");
    let made = !dir.exists();
    std::fs::create_dir_all(dir).unwrap();
    let sock = dir.join(format!("io.nspawn-rs.test.Hang{}", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = Tree::busybox("fgetent");
    let name = unique("fg");
    let user = unique("nsnobody");
    let opt = format!("--bind-user={user}");
    let mut child = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        &name,
        "-U",
        &opt,
        "/bin/true",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lookup = format!("getent passwd {user}");
    let getent = || processes_with(&lookup);
    let hanging = wait_until(Duration::from_secs(10), || !getent().is_empty());
    child.kill().unwrap();
    let _ = child.wait();
    let gone = wait_until(CLEAN_WITHIN, || getent().is_empty());
    let left = getent();
    for p in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    drop(listener);
    let _ = std::fs::remove_file(&sock);
    if made {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(hanging, "no getent of {user} seen");
    assert!(gone, "getent outlived its runner: {left:?}");
    assert_eq!(wait_clean_of(&name, &t.path), Vec::<String>::new());
}
