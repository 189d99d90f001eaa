//! Resource exhaustion and clashes (issue 16, part 5): each start that
//! cannot have what it needs fails with one clear line and exit status
//! 1, and leaves nothing. What is exhausted is the test's own: a private
//! `/run/nspawn` and network namespace (`Sandbox`), a cgroup of its own
//! (`Group`), a small file system of its own; never the host's, where
//! other machines run meanwhile.

use nspawn_tests::*;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CLEAN_WITHIN: Duration = Duration::from_secs(5);

/// The one line a failed start printed.
#[track_caller]
fn one_line_failure(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {err}");
    assert!(lines[0].starts_with("nspawn: "), "{what}: {err}");
    lines[0].to_string()
}

fn sandboxed(sb: &Sandbox, args: &[&str]) -> Output {
    run(sb.nspawn(args))
}

fn no_leftovers(sb: Option<&Sandbox>, name: &str, tree: &Path, what: &str) {
    let mut l = Leaks::new(name, tree);
    l.sandbox = sb;
    assert_eq!(l.wait(CLEAN_WITHIN), Vec::<String>::new(), "{what}");
}

/// The host's routes cover the whole pool 192.168.0.0/16 (a VPN, say):
/// there is no subnet left for a veth link or a zone.
#[test]
fn address_pool_exhausted() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("pool");
    let sb = Sandbox::new("size=1m,mode=755", true);
    for cmd in [
        "ip link add nsp-fill type bridge",
        "ip addr add 192.168.0.1/16 dev nsp-fill",
        "ip link set nsp-fill up",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        ok(run(sb.command(&args)));
    }
    for (opts, want) in [(vec!["-n"], "/28"), (vec!["--network-zone=pz"], "/24")] {
        let name = unique("pool");
        let mut args = vec!["-q", "--pipe", "-D", t.dir(), "-M", &name];
        args.extend(&opts);
        args.push("/bin/true");
        let line = one_line_failure(&sandboxed(&sb, &args), &name);
        assert_eq!(
            line,
            format!("nspawn: no free {want} subnet left in 192.168.0.0/16")
        );
        let mut l = Leaks::new(&name, &t.path);
        l.sandbox = Some(&sb);
        l.zone = Some("pz");
        assert_eq!(l.wait(CLEAN_WITHIN), Vec::<String>::new(), "{opts:?}");
    }
    // With room again, the same start works.
    ok(run(sb.command(&["ip", "addr", "flush", "dev", "nsp-fill"])));
    let name = unique("pool");
    ok(sandboxed(
        &sb,
        &[
            "-q",
            "--pipe",
            "-D",
            t.dir(),
            "-M",
            &name,
            "-n",
            "/bin/true",
        ],
    ));
    no_leftovers(Some(&sb), &name, &t.path, "after");
}

/// Every range `pick` may choose is held by a running machine's record
/// (one record holding all of them, locked as a runner locks its own).
#[test]
fn no_free_user_namespace_range() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("rng");
    let sb = Sandbox::new("size=1m,mode=755", false);
    let dir = sb.run_nspawn().join("userns");
    std::fs::create_dir_all(&dir).unwrap();
    let hog = dir.join("hog");
    // 0x80000 .. 0x6fffffff: the reference's UID_SHIFT_PICK_MIN..MAX.
    std::fs::write(
        &hog,
        format!("{} {}\n", 0x80000u32, 0x7000_0000u32 - 0x80000),
    )
    .unwrap();
    let held = std::fs::File::open(&hog).unwrap();
    // SAFETY: flock on a file we opened; released when it closes.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let name = unique("rng");
    for (opt, want) in [
        ("-U", "nspawn: no free UID range left".to_string()),
        (
            "--private-users=1048576:65536",
            "nspawn: UID range 1048576..1114111 is in use by machine hog".to_string(),
        ),
    ] {
        let o = sandboxed(
            &sb,
            &["-q", "--pipe", "-D", t.dir(), "-M", &name, opt, "/bin/true"],
        );
        assert_eq!(one_line_failure(&o, opt), want);
        no_leftovers(Some(&sb), &name, &t.path, opt);
    }
    drop(held);
    ok(sandboxed(
        &sb,
        &[
            "-q",
            "--pipe",
            "-D",
            t.dir(),
            "-M",
            &name,
            "-U",
            "/bin/true",
        ],
    ));
    no_leftovers(Some(&sb), &name, &t.path, "after");
}

/// Few descriptors: a start either works or says in one line what it
/// could not open, and leaves nothing.
#[test]
fn low_rlimit_nofile() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("nof");
    let mut worked = vec![];
    for n in [64, 32, 24, 16, 12, 10, 8, 6] {
        let name = unique("nof");
        let limit = format!("--nofile={n}:{n}");
        let mut c = Command::new("prlimit");
        c.arg(&limit)
            .arg(nspawn_bin())
            .args(["-q", "--pipe", "-D", t.dir(), "-M", &name, "-U", "-n"])
            .args(["/bin/true"]);
        let o = run(c);
        match o.status.code() {
            Some(0) => worked.push(n),
            _ => {
                let line = one_line_failure(&o, &limit);
                eprintln!("{limit}: {line}");
            }
        }
        no_leftovers(None, &name, &t.path, &limit);
    }
    assert!(worked.contains(&64), "64 descriptors must do: {worked:?}");
}

/// `/run/nspawn` on a full file system, at each point a start writes
/// there: out of inodes (1 to 16 left), and out of space (0 to 8 pages
/// left besides a file that fills the rest).
#[test]
fn run_nspawn_full() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("full");
    let mut outcomes = vec![];
    for inodes in 1..=16 {
        let sb = Sandbox::new(&format!("size=1m,nr_inodes={inodes},mode=755"), true);
        outcomes.push(full_start(&sb, &t, &format!("{inodes} inodes")));
    }
    let page = 4096;
    for free in 0..=8 {
        let sb = Sandbox::new("size=64k,mode=755", true);
        // Everything but `free` pages: a filler written until the file
        // system is full, then cut back.
        let filler = sb.run_nspawn().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; page];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(free * page as u64)).unwrap();
        drop(f);
        outcomes.push(full_start(&sb, &t, &format!("{free} pages")));
    }
    eprintln!("{}", outcomes.join("\n"));
    assert!(
        outcomes.iter().any(|o| o.contains(": ok")),
        "no start worked even with room: {outcomes:?}"
    );
}

/// One start in a sandbox whose /run/nspawn is (nearly) full.
fn full_start(sb: &Sandbox, t: &Tree, what: &str) -> String {
    // Short: `ve-NAME` must fit 15 characters, or a notice is printed.
    let name = unique("f").replace('-', "");
    let args = [
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        &name,
        "-U",
        "-n",
        "/bin/true",
    ];
    let o = sandboxed(sb, &args);
    let outcome = match o.status.code() {
        Some(0) => format!("{what}: ok"),
        _ => format!("{what}: {}", one_line_failure(&o, what)),
    };
    let mut l = Leaks::new(&name, &t.path);
    l.sandbox = Some(sb);
    assert_eq!(l.wait(CLEAN_WITHIN), Vec::<String>::new(), "{outcome}");
    outcome
}

/// `--template` into a file system too small for the copy.
#[test]
fn template_on_a_full_file_system() {
    if ours_only() {
        return;
    }
    let template = Tree::busybox("tpl");
    let before = tree_state(&template.path);
    let sb = Sandbox::new("size=1m,mode=755", false);
    let small = format!("/var/tmp/nspawn-tests/small-{}", std::process::id());
    std::fs::create_dir_all(&small).unwrap();
    ok(run(sb.command(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=256k",
        "small",
        &small,
    ])));
    let target = format!("{small}/machine");
    let name = unique("tpl");
    let tpl = format!("--template={}", template.dir());
    let o = sandboxed(
        &sb,
        &[
            "-q",
            "--pipe",
            "-D",
            &target,
            "-M",
            &name,
            &tpl,
            "/bin/true",
        ],
    );
    let line = one_line_failure(&o, "template");
    assert_eq!(
        line,
        format!(
            "nspawn: cannot copy template {} to {target}: No space left on device",
            template.dir()
        )
    );
    // Nothing of the copy is left in the small file system, and the
    // template is as it was.
    let inside = sb.root().join(small.trim_start_matches('/'));
    let left: Vec<_> = std::fs::read_dir(&inside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    no_leftovers(Some(&sb), &name, Path::new(&target), "template");
    assert_eq!(
        state_diff(&before, &tree_state(&template.path)),
        Vec::<String>::new()
    );
    drop(sb);
    let _ = std::fs::remove_dir(&small);
}

/// Out of PIDs in the cgroup the runner starts in (`pids.max` of a v1
/// `pids` cgroup of the test's; all we fork stays in it), at each count
/// from 1 up to enough.
#[test]
fn out_of_pids() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("pid");
    let id = std::process::id();
    let Some(group) = Group::new("pids", &format!("nspawn-test-pids-{id}")) else {
        eprintln!("no v1 pids hierarchy here; skipped");
        return;
    };
    let mut outcomes = vec![];
    for max in 1..=8 {
        // The last start's reaper is charged until PID 1 of the host
        // reaps it (here, up to a second later).
        assert!(wait_until(Duration::from_secs(5), || group.current() == 0));
        group.set("pids.max", &max.to_string());
        let name = unique("pid");
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
        c.stdin(Stdio::null());
        group.join(&mut c);
        let o = run(c);
        outcomes.push(match o.status.code() {
            Some(0) => format!("pids.max={max}: ok"),
            _ => {
                let line = one_line_failure(&o, &format!("pids.max={max}"));
                // Says why, not fork(2)'s "Try again".
                assert!(line.contains("no more processes allowed"), "{line}");
                format!("pids.max={max}: {line}")
            }
        });
        no_leftovers(None, &name, &t.path, &format!("pids.max={max}"));
    }
    group.set("pids.max", "max");
    eprintln!("{}", outcomes.join("\n"));
    assert!(outcomes.last().unwrap().ends_with("ok"), "{outcomes:?}");
}

/// A second machine asking for a host port a running machine forwards.
#[test]
fn a_forwarded_port_is_refused_to_a_second_machine() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("prt");
    let u = Tree::busybox("prt");
    let port = 40000 + std::process::id() % 20000;
    let fwd = format!("--port=tcp:{port}:80");
    let first = unique("pa");
    let mut a = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-M",
        &first,
        "-n",
        &fwd,
        "/bin/sleep",
        "1000",
    ]);
    a.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut a = a.spawn().unwrap();
    let record = Path::new("/run/nspawn/machines").join(&first);
    assert!(wait_until(Duration::from_secs(20), || record.exists()));
    let second = unique("pb");
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "-D",
        u.dir(),
        "-M",
        &second,
        "-n",
        &fwd,
        "/bin/true",
    ]));
    assert_eq!(
        one_line_failure(&o, "second"),
        format!("nspawn: host port tcp:{port} is already forwarded to machine {first}")
    );
    no_leftovers(None, &second, &u.path, "second");
    // The same number over UDP is another port.
    let udp = format!("--port=udp:{port}:80");
    ok(run(nspawn(&[
        "-q",
        "--pipe",
        "-D",
        u.dir(),
        "-M",
        &second,
        "-n",
        &udp,
        "/bin/true",
    ])));
    // The first machine still forwards it.
    let mut nft = Command::new("nft");
    nft.args(["list", "table", "inet", &format!("nspawn-{first}")]);
    let tables = ok(run(nft));
    assert!(tables.contains(&format!("dport {port}")), "{tables}");
    let _ = a.kill();
    let _ = a.wait();
    assert_eq!(wait_clean(&first, &t.path), Vec::<String>::new());
}
