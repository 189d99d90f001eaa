//! A hostile machine (issue 17): its root attacks the host tools that serve
//! it — `copy-from`, `copy-to`, `bind`, `shell`, `status`, `list` — with
//! the static helper tests/escape/hostile.c racing symlink swaps, FIFOs,
//! endless files and ptrace from inside while the host drives the tool.
//! Each test keeps a marker directory on the host watched by inotify and
//! asserts that nothing in it was opened, read, written or added, and that
//! no mount landed on the host. Tests of our own tool: skipped in
//! reference mode.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nspawn_tests::*;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn hostile() -> PathBuf {
    static_helper("hostile", Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// A busybox machine with the attacker as `/hostile`; its payload runs
/// `script` (which may start attackers in the background), then waits
/// until the test stops it by creating `/stop`.
struct Machine {
    runner: Option<Child>,
    leader: i32,
    tree: Tree,
}

impl Machine {
    fn start(prefix: &str, extra: &[&str], setup: impl FnOnce(&Tree), script: &str) -> Machine {
        let tree = Tree::busybox(prefix);
        std::fs::copy(hostile(), tree.join("hostile")).unwrap();
        setup(&tree);
        let script = format!(
            "{script}\ntouch /ready; while [ ! -e /stop ]; do read -t 1 x <> /ready-fifo; done; wait"
        );
        nix::unistd::mkfifo(&tree.join("ready-fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut args = vec!["-q", "--pipe"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-D", tree.dir(), "/bin/sh", "-c", &script]);
        let mut c = nspawn(&args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let runner = Some(c.spawn().unwrap());
        let record = Path::new("/run/nspawn/machines").join(&tree.name);
        assert!(wait_until(T, || tree.join("ready").exists() && record.exists()));
        let leader = ok(ctl(&["show", &tree.name, "-p", "Leader", "--value"]));
        Machine {
            runner,
            leader: leader.trim().parse().unwrap(),
            tree,
        }
    }

    fn name(&self) -> &str {
        &self.tree.name
    }

    /// Stop the attackers (they write their reports) and the machine.
    fn stop(&mut self) {
        let Some(mut r) = self.runner.take() else {
            return;
        };
        let _ = std::fs::write(self.tree.join("stop"), "");
        if !wait_until(Duration::from_secs(15), || {
            r.try_wait().ok().flatten().is_some()
        }) {
            let _ = r.kill();
        }
        let _ = r.wait();
    }

    fn report(&self, file: &str) -> String {
        std::fs::read_to_string(self.tree.join(file)).unwrap_or_default()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ctl(args: &[&str]) -> std::process::Output {
    run(nspawnctl(args))
}

/// `nspawnctl ARGS`, ended after `limit`; None if it had to be killed.
fn ctl_within(args: &[&str], limit: Duration) -> Option<std::process::Output> {
    let mut c = nspawnctl(args);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(child.wait_with_output().unwrap())
}

/// A directory on the host that a machine must never reach: a marker
/// file with a secret in it, watched (the directory and the file) by
/// inotify from before the attack until the end; and a scratch directory
/// for the host side of the copies.
struct HostArea {
    dir: PathBuf,
    marker: PathBuf,
    secret: String,
    watch: Inotify,
    scratch: PathBuf,
}

impl HostArea {
    fn new() -> HostArea {
        let name = unique("hostile-host");
        let dir = Path::new("/var/tmp/nspawn-tests").join(&name);
        let scratch = Path::new("/var/tmp/nspawn-tests").join(format!("{name}.scratch"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        let secret = format!("host secret {}", marker());
        let marker = dir.join("marker");
        std::fs::write(&marker, &secret).unwrap();
        std::fs::write(scratch.join("payload"), "from the host\n").unwrap();
        std::fs::create_dir_all(scratch.join("bindsrc")).unwrap();
        std::fs::write(scratch.join("bindsrc/file"), "bound\n").unwrap();
        let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        watch.add_watch(&dir, AddWatchFlags::IN_ALL_EVENTS).unwrap();
        watch
            .add_watch(&marker, AddWatchFlags::IN_ALL_EVENTS)
            .unwrap();
        HostArea {
            dir,
            marker,
            secret,
            watch,
            scratch,
        }
    }

    fn events(&self) -> Vec<String> {
        match self.watch.read_events() {
            Ok(ev) => ev
                .iter()
                .map(|e| format!("{:?} {:?}", e.mask, e.name))
                .collect(),
            Err(_) => vec![],
        }
    }

    /// Nothing in the area was touched, nothing added, nothing mounted.
    fn assert_untouched(&self) {
        let events = self.events();
        assert!(events.is_empty(), "the host area was touched: {events:?}");
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["marker"], "the host area changed");
        assert_eq!(std::fs::read_to_string(&self.marker).unwrap(), self.secret);
        let _ = self.events(); // our own read just now
        let meta = std::fs::metadata(&self.marker).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.dir.to_str().unwrap()),
            "a mount on the host area"
        );
    }

    fn s(&self, p: &str) -> String {
        self.scratch.join(p).to_str().unwrap().to_string()
    }

    /// No file anywhere below the scratch directory holds the secret.
    fn assert_secret_not_copied(&self) {
        fn walk(p: &Path, secret: &str) {
            let Ok(meta) = p.symlink_metadata() else {
                return;
            };
            if meta.is_dir() {
                for e in std::fs::read_dir(p).unwrap().flatten() {
                    walk(&e.path(), secret);
                }
            } else if meta.is_file() {
                let data = std::fs::read(p).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&data).contains(secret),
                    "{} holds the host's secret",
                    p.display()
                );
            }
        }
        walk(&self.scratch, &self.secret);
    }
}

impl Drop for HostArea {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A process of the host's (host root, host mounts) in the machine's PID
/// namespace, as `nsenter --target LEADER --pid` leaves one for a
/// debugging session: its /proc/PID/root, seen from inside the machine,
/// is the host's `/`. Killed on drop.
struct HostProcessInside {
    nsenter: Child,
    /// Its PID inside the machine.
    inner: i32,
}

impl HostProcessInside {
    fn new(leader: i32) -> HostProcessInside {
        let nsenter = Command::new("nsenter")
            .args(["--target", &leader.to_string(), "--pid", "--"])
            .args(["sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = 0;
        assert!(wait_until(T, || {
            pid = children(nsenter.id()).first().copied().unwrap_or(0);
            pid > 0
        }));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let inner = status
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .parse()
            .unwrap();
        HostProcessInside { nsenter, inner }
    }
}

impl Drop for HostProcessInside {
    fn drop(&mut self) {
        // The sleep nsenter forked outlives a killed nsenter: killed first.
        for pid in children(self.nsenter.id()) {
            // SAFETY: signalling the child of our own nsenter.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.nsenter.kill();
        let _ = self.nsenter.wait();
    }
}

/// The machine's root plants `/evil`, a /proc magic link to the host's
/// marker directory through a host process in its PID namespace. The
/// link does lead to the host for anyone who follows it in the machine's
/// mount namespace (checked first, with nsenter); copy-from, copy-to and
/// bind through it are refused and leave the host alone. With and
/// without a user namespace.
#[test]
fn a_magic_link_to_the_host_is_not_followed() {
    if ours_only() {
        return;
    }
    for extra in [&[][..], &["-U"][..]] {
        let host = HostArea::new();
        let m = Machine::start("magic", extra, |_| {}, "");
        let inside = HostProcessInside::new(m.leader);
        let link = format!("/proc/{}/root{}", inside.inner, host.dir.display());
        std::os::unix::fs::symlink(&link, m.tree.join("evil")).unwrap();

        // The door is real: a naive lookup in the machine's mounts reads
        // the host's marker through it.
        let o = run({
            let mut c = Command::new("nsenter");
            c.args(["--target", &m.leader.to_string(), "--mount", "--"])
                .args(["cat", "/evil/marker"]);
            c
        });
        assert_eq!(stdout(&o), host.secret, "{}", stderr(&o));
        let _ = host.events();

        let name = m.name();
        let o = ctl(&["copy-from", name, "/evil/marker", &host.s("out")]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).starts_with("nspawnctl: cannot open /evil"),
            "{}",
            stderr(&o)
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(!Path::new(&host.s("out")).exists());
        // The link itself is copied as a link.
        ok(ctl(&["copy-from", name, "/evil", &host.s("link")]));
        assert_eq!(
            std::fs::read_link(host.s("link")).unwrap().to_str(),
            Some(link.as_str())
        );
        for (args, what) in [
            (
                vec!["copy-to", name, &host.s("payload"), "/evil/new"],
                "copy-to",
            ),
            (
                vec![
                    "copy-to",
                    "--mkdir",
                    name,
                    &host.s("payload"),
                    "/evil/sub/new",
                ],
                "copy-to --mkdir",
            ),
            (vec!["bind", name, &host.s("bindsrc"), "/evil"], "bind"),
            (
                vec!["bind", "--mkdir", name, &host.s("bindsrc"), "/evil/mnt"],
                "bind --mkdir",
            ),
        ] {
            let o = ctl(&args);
            assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
            assert_eq!(stderr(&o).lines().count(), 1, "{what}: {}", stderr(&o));
        }
        host.assert_untouched();
        host.assert_secret_not_copied();
        drop(inside);
        drop(m);
    }
}

/// While three attackers swap directories of the machine with symlinks
/// that aim at the host's marker directory (through /proc, absolute, and
/// by `..`), the host copies from and into those directories and binds
/// onto them, over and over. Whatever each call does, the host is never
/// reached.
#[test]
fn copies_and_binds_racing_symlink_swaps_stay_inside() {
    if ours_only() {
        return;
    }
    let host = HostArea::new();
    let hostdir = host.dir.to_str().unwrap().to_string();
    // The attackers wait for /go: the /proc aim needs a PID known only
    // once the machine runs.
    let attackers: String = (1..=3)
        .map(|i| {
            format!(
                "(while [ ! -e /go ]; do read -t 1 x <> /ready-fifo; done; \
                 exec /hostile exchange /race/d{i} /race/l{i} /exchange{i}.out) &\n"
            )
        })
        .collect();
    let mut m = Machine::start(
        "race",
        &[],
        |t| {
            for i in 1..=3 {
                std::fs::create_dir_all(t.join(&format!("race/d{i}/sub"))).unwrap();
                std::fs::write(t.join(&format!("race/d{i}/f")), "guest file\n").unwrap();
                std::fs::write(t.join(&format!("race/d{i}/sub/g")), "guest\n").unwrap();
            }
            // Absolute, and `..` enough to climb out of any tree; the
            // /proc one is made below.
            std::os::unix::fs::symlink(&hostdir, t.join("race/l2")).unwrap();
            std::os::unix::fs::symlink(format!("{}{hostdir}", "../".repeat(20)), t.join("race/l3"))
                .unwrap();
        },
        &attackers,
    );
    let inside = HostProcessInside::new(m.leader);
    std::os::unix::fs::symlink(
        format!("/proc/{}/root{hostdir}", inside.inner),
        m.tree.join("race/l1"),
    )
    .unwrap();
    std::fs::write(m.tree.join("go"), "").unwrap();
    let name = m.tree.name.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut calls, mut succeeded) = (0, 0);
    for n in 0.. {
        if n >= 40 && Instant::now() > deadline {
            break;
        }
        let i = n % 3 + 1;
        let d = format!("/race/d{i}");
        let calls_now: Vec<Vec<String>> = vec![
            vec![
                "copy-from".into(),
                name.clone(),
                format!("{d}/f"),
                host.s(&format!("f{n}")),
            ],
            vec![
                "copy-from".into(),
                name.clone(),
                format!("{d}/sub"),
                host.s(&format!("t{n}")),
            ],
            vec![
                "copy-from".into(),
                name.clone(),
                format!("{d}/marker"),
                host.s(&format!("m{n}")),
            ],
            vec![
                "copy-to".into(),
                name.clone(),
                host.s("payload"),
                format!("{d}/new{n}"),
            ],
            vec![
                "copy-to".into(),
                "--mkdir".into(),
                name.clone(),
                host.s("payload"),
                format!("{d}/a{n}/b/new"),
            ],
            vec![
                "bind".into(),
                "--mkdir".into(),
                name.clone(),
                host.s("bindsrc"),
                format!("{d}/mnt{n}"),
            ],
        ];
        for args in calls_now {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = ctl_within(&args, T).expect("nspawnctl hung");
            calls += 1;
            if o.status.success() {
                succeeded += 1;
            } else {
                assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
            }
        }
    }
    // Stop the attackers before looking: they report how often they swapped.
    m.stop();
    for i in 1..=3 {
        let r = m.report(&format!("exchange{i}.out"));
        let swaps: u64 = r
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(swaps > 1000, "attacker {i} did not run: {r:?}");
    }
    eprintln!("{calls} calls, {succeeded} succeeded");
    host.assert_untouched();
    host.assert_secret_not_copied();
    drop(inside);
}

/// A small tmpfs of the host's as a copy's destination; unmounted on drop.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn new(size_mib: u32) -> SmallFs {
        let dir = Path::new("/var/tmp/nspawn-tests").join(unique("smallfs"));
        std::fs::create_dir_all(&dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size_mib}m").as_str()),
        )
        .unwrap();
        SmallFs { dir }
    }

    fn s(&self, p: &str) -> String {
        self.dir.join(p).to_str().unwrap().to_string()
    }

    fn used(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.dir).unwrap();
        (s.blocks() - s.blocks_free()) as u64 * s.fragment_size() as u64
    }

    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// FIFOs, device nodes, set-user-ID files, hard links, a sparse terabyte,
/// a file that grows without end and a file swapped with a FIFO while it
/// is copied: copy-from never blocks, never makes a device node or a
/// set-user-ID program on the host, and stops at a clear error before
/// the host's file system is full, leaving nothing half-copied.
#[test]
fn special_endless_and_swapped_files_do_not_block_or_leak() {
    if ours_only() {
        return;
    }
    let mut m = Machine::start(
        "special",
        &[],
        |t| {
            use nix::sys::stat::{makedev, mknod, Mode, SFlag};
            std::fs::create_dir_all(t.join("data")).unwrap();
            nix::unistd::mkfifo(&t.join("data/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
            // /dev/null's numbers: harmless here, but any block device
            // could be named as well; and owned by a host user, 0666.
            mknod(
                &t.join("data/dev"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(1, 3),
            )
            .unwrap();
            std::fs::create_dir_all(t.join("devdir")).unwrap();
            std::fs::write(t.join("devdir/a"), "a").unwrap();
            std::fs::write(t.join("devdir/z"), "z").unwrap();
            mknod(
                &t.join("devdir/dev"),
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o666),
                makedev(7, 0),
            )
            .unwrap();
            std::fs::write(t.join("data/suid"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(t.join("data/suid"), PermissionsExt::from_mode(0o6755))
                .unwrap();
            std::fs::write(t.join("data/hard1"), vec![b'h'; 1 << 20]).unwrap();
            std::fs::hard_link(t.join("data/hard1"), t.join("data/hard2")).unwrap();
            let f = std::fs::File::create(t.join("data/sparse")).unwrap();
            f.set_len(1 << 40).unwrap();
            std::fs::create_dir_all(t.join("swap")).unwrap();
            std::fs::write(t.join("swap/f"), "regular\n").unwrap();
            nix::unistd::mkfifo(&t.join("swap/p"), Mode::from_bits_truncate(0o644)).unwrap();
            std::fs::create_dir_all(t.join("grow")).unwrap();
        },
        "/hostile exchange /swap/f /swap/p /exchange.out &\n/hostile grow /grow/log /grow.out &",
    );
    let name = m.tree.name.clone();
    let fs = SmallFs::new(64);

    // A FIFO is made, not opened.
    let o = ctl_within(&["copy-from", &name, "/data/fifo", &fs.s("fifo")], T).expect("hung");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(fs.s("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // A device node is not copied out, alone or in a directory, and the
    // half-copied directory is removed again.
    for (src, dst) in [("/data/dev", "dev"), ("/devdir", "devdir")] {
        let o = ctl(&["copy-from", &name, src, &fs.s(dst)]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("device node"), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(!Path::new(&fs.s(dst)).exists(), "{dst} left half-copied");
    }
    // No set-user-ID or set-group-ID program out of the machine.
    ok(ctl(&["copy-from", &name, "/data/suid", &fs.s("suid")]));
    let mode = std::fs::metadata(fs.s("suid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    // Hard links are copied as files (and count against the space).
    ok(ctl(&["copy-from", &name, "/data/hard2", &fs.s("hard2")]));
    assert_eq!(std::fs::metadata(fs.s("hard2")).unwrap().len(), 1 << 20);
    // A sparse terabyte is refused before a byte is written.
    let before = fs.used();
    let o = ctl(&["copy-from", &name, "/data/sparse", &fs.s("sparse")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("MiB free"), "{}", stderr(&o));
    assert!(!Path::new(&fs.s("sparse")).exists());
    assert_eq!(fs.used(), before);
    // A file that grows while it is copied ends, copied as it was when
    // opened or refused for space; never past the reserve.
    std::thread::sleep(Duration::from_millis(300));
    for n in 0..5 {
        let dst = fs.s(&format!("log{n}"));
        let o = ctl_within(&["copy-from", &name, "/grow/log", &dst], T).expect("grow hung");
        assert!(
            o.status.success() || stderr(&o).contains("MiB free"),
            "{}",
            stderr(&o)
        );
        assert!(fs.used() <= (64 << 20) - (3 << 20), "{} used", fs.used());
        let _ = std::fs::remove_file(&dst);
    }
    // A file swapped with a FIFO while it is copied: every copy ends.
    for n in 0..200 {
        let dst = fs.s(&format!("swap{n}"));
        let o = ctl_within(
            &["copy-from", &name, "/swap/f", &dst],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("copy {n} of a file swapped with a FIFO hung"));
        if !o.status.success() {
            assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        }
        let _ = std::fs::remove_file(&dst);
    }
    m.stop();
    assert!(
        m.report("exchange.out").starts_with("exchanged"),
        "{}",
        m.report("exchange.out")
    );
    let mut left = fs.entries();
    left.sort();
    assert_eq!(left, ["fifo", "hard2", "suid"]);
}

/// bind onto a target that is a symlink inside the machine, absolute or
/// climbing with `..`: the mount lands where the link leads inside the
/// machine, not on the host.
#[test]
fn bind_onto_a_symlink_lands_inside() {
    if ours_only() {
        return;
    }
    let host = HostArea::new();
    let hostdir = host.dir.to_str().unwrap().to_string();
    let m = Machine::start(
        "bindlink",
        &[],
        |t| {
            std::fs::create_dir_all(t.join("inside")).unwrap();
            std::os::unix::fs::symlink(&hostdir, t.join("abs")).unwrap();
            std::os::unix::fs::symlink(format!("{}inside", "../".repeat(20)), t.join("rel"))
                .unwrap();
        },
        "",
    );
    let name = m.name();
    ok(ctl(&[
        "bind",
        "--mkdir",
        name,
        &host.s("bindsrc"),
        "/abs/mnt",
    ]));
    ok(ctl(&[
        "bind",
        "--mkdir",
        name,
        &host.s("bindsrc"),
        "/rel/mnt",
    ]));
    // Both inside: /abs led to the machine's own copy of the host path.
    let o = ok(ctl(&[
        "shell",
        name,
        "/bin/sh",
        "-c",
        &format!("cat {hostdir}/mnt/file /inside/mnt/file"),
    ]));
    assert_eq!(o, "bound\nbound\n");
    host.assert_untouched();
}

/// What of the process `shell` starts in the machine its root can reach
/// before that process has become the machine's: ptrace,
/// process_vm_readv and /proc/PID/mem, fd, environ, exe and map_files
/// against each new process, in a loop, all the time the host runs shell
/// after shell. The first process of ours the machine can see is
/// nspawn-inner, static from a sealed memfd, holding the session's 0-2
/// and environment only; its memory map belongs to the machine's user
/// namespace under `-U`, and without `-U` root inside holds CAP_SYS_PTRACE
/// and CAP_SYS_ADMIN of the host's: either way the attacker reaches it, and
/// must find only the sealed memfd (when nspawnctl's own process forked
/// in, root without `-U` opened nspawnctl's binary and the host's libc).
/// Returns how often the attacker reached nspawn-inner.
fn joining_process_attacked(name: &str, opts: &[&str]) -> u64 {
    let mut m = Machine::start(name, opts, |_| {}, "/hostile ptrace /ptrace.out &");
    let name = m.tree.name.clone();
    for _ in 0..300 {
        let mut c = nspawnctl(&["shell", &name, "/bin/true"]);
        // What the attacker looks for in what it reads (see hostile.c).
        c.env("HOSTILE_MARKER", "host-environment");
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let o = wait_output(c.spawn().unwrap(), T);
        // A shell the attacker stopped and let go may end either way; it
        // must end.
        let _ = o;
    }
    m.stop();
    let report = m.report("ptrace.out");
    eprintln!("attacker: {report}");
    assert!(!report.contains("ESCAPED"), "{report}");
    report
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_joining_process_gives_root_with_userns_nothing_of_the_host() {
    if ours_only() {
        return;
    }
    let reached = joining_process_attacked("ptrace", &["-U"]);
    assert!(reached > 0, "the attacker never reached a joining process");
}

#[test]
fn the_joining_process_gives_root_without_userns_nothing_of_the_host() {
    if ours_only() {
        return;
    }
    let reached = joining_process_attacked("ptrace-nou", &[]);
    assert!(reached > 0, "the attacker never reached a joining process");
}

/// What the process `shell` starts carries in: no descriptor of the
/// caller's beyond 0-2 (one left open without close-on-exec included),
/// and no variable of the caller's environment but TERM.
#[test]
fn shell_carries_no_host_descriptors_or_environment() {
    if ours_only() {
        return;
    }
    let host = HostArea::new();
    let m = Machine::start("fds", &[], |_| {}, "");
    let mut c = nspawnctl(&[
        "shell",
        m.name(),
        "/bin/sh",
        "-c",
        "ls /proc/self/fd; env | sort",
    ]);
    c.env("NSPAWN_TEST_HOST_SECRET", "leaked");
    let file = std::fs::File::open(&host.dir).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: only dup2 between fork and exec; 9 is left without
    // close-on-exec, as a careless caller would.
    unsafe {
        c.pre_exec(move || match libc::dup2(fd, 9) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let out = ok(run(c));
    drop(file);
    let mut lines = out.lines();
    let fds: Vec<&str> = lines.by_ref().take_while(|l| !l.contains('=')).collect();
    // 0-2, and ls's own descriptor of /proc/self/fd.
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
    let _ = host.events();
    assert!(!out.contains("NSPAWN_TEST_HOST_SECRET"), "{out}");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for n in &names {
        assert!(
            [
                "HOME",
                "LOGNAME",
                "PATH",
                "PWD",
                "SHELL",
                "SHLVL",
                "TERM",
                "USER",
                "container"
            ]
            .contains(n),
            "{n} in {out}"
        );
    }
}

/// Files given as `shell`'s input and output reach the session as pipes
/// we copy through: root of a machine without `-U` holds the host's
/// CAP_DAC_OVERRIDE and would otherwise reopen them through
/// /proc/PID/fd, the input for writing, the output for reading.
#[test]
fn shell_hands_no_host_file_to_reopen() {
    if ours_only() {
        return;
    }
    let m = Machine::start("files", &[], |_| {}, "");
    let dir = Path::new("/var/tmp/nspawn-tests").join(unique("shell-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("input"), dir.join("output"));
    std::fs::write(&input, "host input\n").unwrap();
    let mut c = nspawnctl(&[
        "shell",
        m.name(),
        "/bin/sh",
        "-c",
        "readlink /proc/self/fd/0; readlink /proc/self/fd/1; cat; echo changed >> /proc/self/fd/0",
    ]);
    c.stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().unwrap(), T);
    let out = std::fs::read_to_string(&output).unwrap();
    let input_after = std::fs::read_to_string(&input).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("pipe:[") && lines[1].starts_with("pipe:["),
        "{out}"
    );
    assert_eq!(lines[2], "host input");
    assert_eq!(input_after, "host input\n");
    assert!(o.status.success(), "{o:?}");
}

/// `nspawnctl shell` with our terminal on stdin and stderr but output to a
/// pipe (no pty of the machine's then): the machine's root, which keeps
/// CAP_SYS_ADMIN without `-U`, tries to push a command into the terminal
/// on each of its descriptors (TIOCSTI), for our shell to run once we
/// end. It finds no terminal: pipes we copy through stand in for it. And
/// what is typed still reaches the session, what it writes still reaches
/// the terminal.
#[test]
fn shell_hands_no_terminal_to_push_input_into() {
    if ours_only() {
        return;
    }
    let m = Machine::start("tiocsti", &[], |_| {}, "");
    let pty = nix::pty::openpty(None, None).unwrap();
    let term = |fd: &std::os::fd::OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut c = nspawnctl(&[
        "shell",
        m.name(),
        "/bin/sh",
        "-c",
        "/hostile tiocsti /report; read line; echo \"got $line\"; echo to-stderr >&2",
    ]);
    c.stdin(term(&pty.slave))
        .stdout(Stdio::piped())
        .stderr(term(&pty.slave));
    let child = c.spawn().unwrap();
    nix::unistd::write(&pty.master, b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got typed\n");
    let report = m.report("report");
    for fd in 0..3 {
        assert!(
            report.contains(&format!("fd {fd} tty 0 pushed 0 ")),
            "{report}"
        );
    }
    // Nothing waits in the terminal's input for our shell; the session's
    // stderr came through (as the terminal echoes what it gets).
    for fd in [&pty.slave, &pty.master] {
        let nonblock = nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(fd, nonblock).unwrap();
    }
    let mut buf = [0u8; 256];
    let pending = nix::unistd::read(&pty.slave, &mut buf).unwrap_or(0);
    assert_eq!(pending, 0, "{:?}", String::from_utf8_lossy(&buf[..pending]));
    let mut seen = vec![];
    while let Ok(n @ 1..) = nix::unistd::read(&pty.master, &mut buf) {
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("to-stderr"), "{seen}");
}

/// `nspawnctl shell` on our terminal, where the session gets a pty of the
/// machine's: its root pushes input into that terminal (TIOCSTI), sets a
/// huge window size on it and floods it while we read nothing. `^]^]^]`
/// still ends the session at once; our terminal keeps its size and has
/// nothing waiting in its input. A session that closes its terminal and
/// goes on does not hang `nspawnctl`: its exit status comes back.
#[test]
fn a_hostile_session_terminal_cannot_hang_or_reach_ours() {
    if ours_only() {
        return;
    }
    let m = Machine::start("ptypeer", &[], |_| {}, "");
    let marker = format!("flood-{}", m.name());
    let script =
        format!("/hostile tiocsti /report; stty rows 65535 cols 65535; exec /bin/yes {marker}");
    let c = nspawnctl(&["shell", m.name(), "/bin/sh", "-c", &script]);
    let mut s = PtySession::spawn(c, 24, 80);
    assert!(
        wait_until(T, || runs_with_arg(&marker)),
        "{:?}",
        m.report("report")
    );
    std::thread::sleep(Duration::from_millis(500));
    s.send(&[0x1d, 0x1d, 0x1d]);
    assert!(
        wait_until(Duration::from_secs(5), || !runs_with_arg(&marker)),
        "the escape was not read while our terminal was full"
    );
    s.finish(T);
    // The pushes reached the session's own terminal only.
    let report = m.report("report");
    assert!(report.contains("fd 0 tty 1 pushed 20 ok"), "{report}");
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    assert_eq!((ws.ws_row, ws.ws_col), (24, 80));
    // Our terminal's input, seen from its slave side (TIOCGPTPEER).
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    // SAFETY: TIOCGPTPEER returns a new descriptor or -1.
    let peer = unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    assert!(peer >= 0);
    // SAFETY: a descriptor the ioctl just made.
    let peer = unsafe { std::os::fd::OwnedFd::from_raw_fd(peer) };
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD fills an int.
    unsafe { libc::ioctl(peer.as_raw_fd(), libc::FIONREAD, &mut waiting) };
    assert_eq!(waiting, 0, "input waits in our terminal");
    // A session that closes its terminal and goes on.
    let c = nspawnctl(&[
        "shell",
        m.name(),
        "/bin/sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; sleep 1; exit 3",
    ]);
    let mut s = PtySession::spawn(c, 24, 80);
    let (code, out) = s.finish(T);
    assert_eq!(code, 3, "{out}");
}

/// Escape sequences in what the machine controls — its os-release, its
/// processes' names and command lines — are shown as text by `status`
/// and `list`, never sent to the terminal.
#[test]
fn status_and_list_show_escape_sequences_as_text() {
    if ours_only() {
        return;
    }
    let m = Machine::start(
        "escseq",
        &[],
        |t| {
            std::fs::write(
                t.join("etc/os-release"),
                "ID=\"evil\x1b]0;owned\x07\"\nVERSION_ID=\"1\x1b[2J\"\nPRETTY_NAME=\"Evil\x1b[31m\u{9b}1;1H\x1bP+q\x1b\\\"\n",
            )
            .unwrap();
        },
        // Ready once the child has exec'd with that argument: before, its
        // command line is its parent's, this script's text, with no ESC.
        "sh -c 'while [ ! -e /stop ]; do sleep 1; done; :' \"$(printf 'x\\033]2;title\\007')\" &\n\
         while ! grep -q \"$(printf '\\033]2;title')\" /proc/$!/cmdline; do sleep 0.1; done",
    );
    for args in [vec!["status", m.name()], vec!["list"]] {
        let o = ctl(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            !out.contains('\x1b') && !out.contains('\x07') && !out.contains('\u{9b}'),
            "{args:?} sent a control character: {out:?}"
        );
        let mine: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("evil") || l.contains("Evil") || l.contains("OS:"))
            .collect();
        assert!(!mine.is_empty(), "{out}");
        if args[0] == "list" {
            assert!(out.contains("evil\\x1b]0;owned\\x07"), "{out}");
        } else {
            assert!(
                out.contains("OS: Evil\\x1b[31m\\x9b1;1H\\x1bP+q\\x1b\n"),
                "{out}"
            );
            assert!(out.contains("x\\x1b]2;title\\x07"), "{out}");
        }
    }
}

/// The runner's descriptor count and resident size (KiB).
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    (fds, rss)
}

/// The machine's root floods what the runner reads from it: its notify
/// socket with 64 KiB messages, messages carrying 250 descriptors and
/// bogus `MAINPID=`, and the DHCP server with garbage, truncated,
/// oversized and malformed datagrams and requests for another MAC. While
/// it does, a real DHCP client in the machine gets its lease, the
/// runner's descriptor count does not move and its size stays bounded,
/// nobody answers the other MAC, and the machine stops cleanly.
#[test]
fn the_runner_outlasts_notify_and_dhcp_floods() {
    if ours_only() {
        return;
    }
    let mut m = Machine::start(
        "flood",
        &["-n"],
        |_| {},
        "/hostile notify /notify.out & /hostile dhcp /dhcp.out &
         (sleep 3; udhcpc -i host0 -n -q -t 30 -T 1 -s /bin/true > /udhcpc.tmp 2>&1;
          mv /udhcpc.tmp /udhcpc.out) &",
    );
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new("/run/nspawn/machines").join(m.name())).unwrap(),
    )
    .unwrap();
    let runner = record["runner"].as_u64().unwrap() as u32;
    let ip = record["addresses"][0].as_str().unwrap().to_string();
    // The flood under way, then watched until the client is done and for
    // at least ten seconds.
    std::thread::sleep(Duration::from_secs(2));
    let (fds0, rss0) = fds_and_rss(runner);
    let start = Instant::now();
    let mut samples = vec![];
    while start.elapsed() < Duration::from_secs(10)
        || (!m.tree.join("udhcpc.out").exists() && start.elapsed() < Duration::from_secs(60))
    {
        samples.push(fds_and_rss(runner));
        std::thread::sleep(Duration::from_millis(200));
    }
    let leased = m.report("udhcpc.out");
    let status = ctl_within(&["status", m.name()], T);

    let _ = std::fs::write(m.tree.join("stop"), "");
    let mut r = m.runner.take().unwrap();
    let stopped = wait_until(Duration::from_secs(15), || {
        r.try_wait().ok().flatten().is_some()
    });
    if !stopped {
        let _ = r.kill();
    }
    let exit = r.wait().unwrap();
    let (notify, dhcp) = (m.report("notify.out"), m.report("dhcp.out"));
    eprintln!(
        "runner fds {fds0} rss {rss0} KiB, samples {samples:?}\nnotify: {notify}dhcp: {dhcp}"
    );

    assert!(
        leased.contains(&format!("lease of {ip} obtained")),
        "udhcpc: {leased}"
    );
    assert!(
        status.is_some_and(|o| o.status.success()),
        "status hung or failed"
    );
    assert!(
        samples.iter().all(|&(fds, _)| fds == fds0),
        "descriptors moved from {fds0}"
    );
    let max_rss = samples.iter().map(|&(_, rss)| rss).max().unwrap();
    assert!(
        max_rss < rss0 + 8192,
        "RSS grew from {rss0} to {max_rss} KiB"
    );
    assert!(
        stopped && exit.success(),
        "the machine did not stop cleanly: {exit:?}"
    );

    // The floods were real, and the other MAC got nothing.
    let count = |report: &str, what: &str| -> u64 {
        let mut words = report.split_whitespace();
        words
            .by_ref()
            .position(|w| w == what)
            .and_then(|_| words.next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what} in {report:?}"))
    };
    assert!(count(&notify, "with_fds") > 1000, "{notify}");
    assert!(count(&notify, "big") > 1000, "{notify}");
    assert!(count(&dhcp, "sent") > 10000, "{dhcp}");
    assert_eq!(count(&dhcp, "answered_spoofed"), 0, "{dhcp}");
}

/// Another machine's tree is a directory a running machine can write (bound
/// into it): while the first swaps the second's `/etc`, `/etc/resolv.conf`,
/// `/etc/localtime`, `/var/log` and `/run` with symlinks to a host
/// directory (absolute, and `..` enough to climb out of any tree), the
/// second is started again and again with `--resolv-conf=copy-host`,
/// `--timezone=copy`, `--link-journal=try-host` and `--set-credential`. Whether a start
/// succeeds depends on the swaps; the host directory is never touched.
#[test]
fn etc_and_journal_setup_racing_symlink_swaps_stay_inside() {
    if ours_only() {
        return;
    }
    let host = HostArea::new();
    let hostdir = host.dir.to_str().unwrap().to_string();
    let victim = Tree::busybox("swapped");
    let climb = format!("{}{hostdir}", "../".repeat(20));
    for (name, to) in [
        ("etc-evil", hostdir.clone()),
        ("etc/resolv-evil", format!("{hostdir}/marker")),
        ("etc/localtime-evil", format!("{climb}/marker")),
        ("var/log-evil", climb.clone()),
        ("run-evil", hostdir.clone()),
    ] {
        std::os::unix::fs::symlink(&to, victim.join(name)).unwrap();
    }
    std::fs::write(victim.join("etc/resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    std::fs::create_dir_all(victim.join("var/log")).unwrap();
    let bind = format!("--bind={}:/other", victim.dir());
    let swaps = [
        ("/other/etc", "/other/etc-evil"),
        ("/other/etc/resolv.conf", "/other/etc/resolv-evil"),
        ("/other/etc/localtime", "/other/etc/localtime-evil"),
        ("/other/var/log", "/other/var/log-evil"),
        ("/other/run", "/other/run-evil"),
    ];
    let attackers: String = swaps
        .iter()
        .enumerate()
        .map(|(i, (a, b))| format!("/hostile exchange {a} {b} /exchange{i}.out &\n"))
        .collect();
    let mut m = Machine::start("swapper", &[&bind], |_| {}, &attackers);
    let id = "5e5e5e5e5e5e4e5e8e5e5e5e5e5e5e5e";
    let (mut started, mut refused) = (0, 0);
    let mut errors = Vec::new();
    for _ in 0..12 {
        let o = victim.sh(
            &[
                "--resolv-conf=copy-host",
                "--timezone=copy",
                "--link-journal=try-host",
                "--set-credential=cred:secret",
                &format!("--uuid={id}"),
            ],
            "true",
        );
        if o.status.success() {
            started += 1;
        } else {
            refused += 1;
            errors.push(stderr(&o).trim().to_string());
        }
    }
    m.stop();
    let _ = std::fs::remove_dir_all(Path::new("/var/log/journal").join(id));
    eprintln!("{errors:#?}");
    // /run is filled through the tmpfs's own descriptor: its swap never
    // refuses a start (`run_setup_racing_symlink_swap_stays_on_the_tmpfs`).
    for e in &errors {
        assert!(
            !e.contains("/run") && !e.contains("boot id"),
            "refused because of /run: {e}"
        );
    }
    let reports: Vec<String> = (0..swaps.len())
        .map(|i| m.report(&format!("exchange{i}.out")))
        .collect();
    eprintln!("started {started}, refused {refused}; {reports:?}");
    for r in &reports {
        assert!(
            r.starts_with("exchanged "),
            "an attacker did not run: {reports:?}"
        );
    }
    host.assert_untouched();
}

/// Files a start made on `/run` left anywhere in `dir` (a tree on disk):
/// the tmpfs's, found outside it.
fn run_files_in(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with(".#proc-")
            || [
                "container-uuid",
                "container-manager",
                "notify",
                "inaccessible",
            ]
            .contains(&name.as_str())
        {
            out.push(path.clone());
        }
        if e.file_type().unwrap().is_dir() {
            run_files_in(&path, out);
        }
    }
}

/// As above, with only `/run` swapped: `/run` is made a tmpfs filled
/// through its own descriptor before it is attached, and written only
/// through that descriptor after, so a `/run` swapped for a symlink
/// (to a host directory, which resolves inside the tree) never fails a
/// start, and nothing of the tmpfs lands in the tree or on the host.
#[test]
fn run_setup_racing_symlink_swap_stays_on_the_tmpfs() {
    if ours_only() {
        return;
    }
    let host = HostArea::new();
    let victim = Tree::busybox("runswap");
    std::os::unix::fs::symlink(&host.dir, victim.join("run-evil")).unwrap();
    let bind = format!("--bind={}:/other", victim.dir());
    let mut m = Machine::start(
        "runswapper",
        &[&bind],
        |_| {},
        "/hostile exchange /other/run /other/run-evil /exchange.out &\n",
    );
    let mut errors = Vec::new();
    for _ in 0..12 {
        let o = victim.sh(&["--set-credential=cred:secret"], "true");
        if !o.status.success() {
            errors.push(stderr(&o).trim().to_string());
        }
    }
    m.stop();
    let report = m.report("exchange.out");
    assert!(report.starts_with("exchanged "), "no swaps: {report}");
    assert!(errors.is_empty(), "refused starts: {errors:#?}");
    let mut found = Vec::new();
    run_files_in(Path::new(victim.dir()), &mut found);
    assert!(found.is_empty(), "the tmpfs's files in the tree: {found:?}");
    host.assert_untouched();
}
