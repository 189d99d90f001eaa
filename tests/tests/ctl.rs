//! nspawnctl against running machines. Tests of our own tool: skipped in
//! reference mode (machinectl needs systemd-machined).

use nspawn_tests::*;
use std::process::{Child, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// A busybox machine whose PID 1 records the signals it gets in /sigs.
struct Machine {
    tree: Tree,
    runner: Option<Child>,
}

impl Machine {
    fn start(prefix: &str) -> Machine {
        let tree = Tree::busybox(prefix);
        let script = "for s in INT TERM HUP USR1 USR2 38 37; do trap \"echo $s >> /sigs\" $s; done; touch /ready; while :; do sleep 0.05; done";
        let mut c = nspawn(&["-q", "--pipe", "-D", tree.dir(), "/bin/sh", "-c", script]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let runner = Some(c.spawn().unwrap());
        assert!(wait_until(T, || tree.join("ready").exists()));
        assert!(wait_until(T, || std::path::Path::new(
            "/run/nspawn/machines"
        )
        .join(&tree.name)
        .exists()));
        Machine { tree, runner }
    }

    fn name(&self) -> &str {
        &self.tree.name
    }

    fn signals(&self) -> String {
        std::fs::read_to_string(self.tree.join("sigs")).unwrap_or_default()
    }

    fn wait_signal(&self, sig: &str) -> bool {
        wait_until(T, || self.signals().lines().any(|l| l == sig))
    }

    fn runner_exit(&mut self) -> std::process::Output {
        wait_output(self.runner.take().unwrap(), T)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut r) = self.runner.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

/// Send `request` to a control endpoint and read its answers up to the
/// end of the connection ("" for the end).
fn control_request(path: &std::path::Path, request: &str) -> Vec<String> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    connect(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    nix::unistd::write(&fd, request.as_bytes()).unwrap();
    let mut out = vec![];
    loop {
        let mut buf = [0u8; 256];
        let n = nix::unistd::read(&fd, &mut buf).unwrap();
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if n == 0 {
            return out;
        }
    }
}

/// As `control_request`, from a process whose effective uid is `euid`
/// but whose real, saved and file system uids are 0.
fn control_request_as(path: &std::path::Path, request: &str, euid: u32) -> Vec<String> {
    let script = r#"
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
os.setresuid(0, int(sys.argv[2]), 0)
libc.setfsuid(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
try:
    s.send(sys.argv[3].encode())
except BrokenPipeError:
    # Closed before our request was sent (the peer check comes first
    # when the machine answers fast): dropped.
    print("")
    sys.exit(0)
while True:
    try:
        d = s.recv(256)
    except ConnectionResetError:
        # Closed with our request unread: dropped.
        d = b""
    print(d.decode())
    if not d:
        break
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .arg(euid.to_string())
        .arg(request)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

fn ctl(args: &[&str]) -> std::process::Output {
    run(nspawnctl(args))
}

#[test]
fn list_status_signals_shell_copy_terminate() {
    if ours_only() {
        return;
    }
    let mut a = Machine::start("ctla");
    let b = Machine::start("ctlb");

    let out = ok(ctl(&["list"]));
    assert!(out.starts_with("MACHINE"), "{out}");
    for m in [&a, &b] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{} ", m.name()))
                && l.contains("container")
                && l.contains("busybox")),
            "{out}"
        );
    }
    let json: serde_json_like::Value = serde_json_like::parse(&ok(ctl(&["list", "--output=json"])));
    for m in [&a, &b] {
        assert!(
            json.0.contains(&format!("\"machine\":\"{}\"", m.name())),
            "{}",
            json.0
        );
    }
    // As machinectl: null, not [], for a machine without addresses.
    assert!(json.0.contains("\"addresses\":null") && json.0.contains("\"os\":\"busybox\""));
    let no_legend = ok(ctl(&["list", "--no-legend"]));
    assert!(!no_legend.contains("MACHINE") && !no_legend.contains("listed"));

    let st = ok(ctl(&["status", a.name()]));
    assert!(st.contains(&format!("Root: {}", a.tree.dir())), "{st}");
    let leader = ok(ctl(&["show", a.name(), "-p", "Leader", "--value"]));
    assert!(st.contains(&format!("Leader: {}", leader.trim())), "{st}");
    assert!(
        st.contains("sleep") || st.contains("sh -c"),
        "process tree missing: {st}"
    );

    // The signals machinectl sends.
    ok(ctl(&["poweroff", a.name()]));
    assert!(a.wait_signal("38"), "SIGRTMIN+4: {}", a.signals());
    ok(ctl(&["reboot", a.name()]));
    assert!(a.wait_signal("INT"), "{}", a.signals());
    ok(ctl(&[
        "kill",
        "--kill-whom=leader",
        "--signal=USR1",
        a.name(),
    ]));
    assert!(a.wait_signal("USR1"), "{}", a.signals());

    // shell: environment, exit status, inside the machine.
    let o = ctl(&[
        "shell",
        "--setenv=GREETING=hello there",
        a.name(),
        "/bin/sh",
        "-c",
        "echo $GREETING $(hostname); exit 42",
    ]);
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("hello there {}\n", a.name()));
    let o = ctl(&[
        "shell",
        &format!("tester@{}", a.name()),
        "/usr/bin/id",
        "-u",
    ]);
    assert_eq!(ok(o), "1000\n");

    // copy-to / copy-from: a file byte for byte, a tree with modes.
    let scratch = std::path::Path::new("/var/tmp/nspawn-tests").join(unique("copy"));
    std::fs::create_dir_all(scratch.join("tree/sub")).unwrap();
    let blob: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(scratch.join("blob"), &blob).unwrap();
    std::fs::write(scratch.join("tree/sub/f"), "x").unwrap();
    std::os::unix::fs::symlink("sub/f", scratch.join("tree/link")).unwrap();
    std::fs::set_permissions(
        scratch.join("tree/sub/f"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let s = scratch.to_str().unwrap();
    ok(ctl(&[
        "copy-to",
        a.name(),
        &format!("{s}/blob"),
        "/root/blob",
    ]));
    ok(ctl(&[
        "copy-to",
        "--mkdir",
        a.name(),
        &format!("{s}/tree"),
        "/opt/deep/tree",
    ]));
    ok(ctl(&[
        "copy-from",
        a.name(),
        "/root/blob",
        &format!("{s}/blob.back"),
    ]));
    ok(ctl(&[
        "copy-from",
        a.name(),
        "/opt/deep/tree",
        &format!("{s}/tree.back"),
    ]));
    assert_eq!(std::fs::read(scratch.join("blob.back")).unwrap(), blob);
    let meta = std::fs::metadata(scratch.join("tree.back/sub/f")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o640
    );
    assert_eq!(
        std::fs::read_link(scratch.join("tree.back/link"))
            .unwrap()
            .to_str(),
        Some("sub/f")
    );
    // An existing destination is not overwritten.
    let o = ctl(&[
        "copy-from",
        a.name(),
        "/root/blob",
        &format!("{s}/blob.back"),
    ]);
    assert_ne!(o.status.code(), Some(0));

    // bind into the running machine.
    ok(ctl(&[
        "bind",
        "--read-only",
        "--mkdir",
        a.name(),
        &format!("{s}/tree"),
        "/mnt/bound",
    ]));
    let o = ctl(&[
        "shell",
        a.name(),
        "/bin/sh",
        "-c",
        "cat /mnt/bound/sub/f; touch /mnt/bound/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(ok(o), "xro\n");
    std::fs::remove_dir_all(&scratch).unwrap();

    // A second start under a running name is refused.
    let other = Tree::busybox("ctlc");
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "-M",
        a.name(),
        "-D",
        other.dir(),
        "/bin/true",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is already running"), "{}", stderr(&o));

    // Each runner offers a control endpoint, named in its record, in a
    // directory only root may enter; it tells the machine's state.
    let control = |name: &str| std::path::Path::new("/run/nspawn/control").join(name);
    for m in [&a, &b] {
        let rec =
            std::fs::read_to_string(std::path::Path::new("/run/nspawn/machines").join(m.name()))
                .unwrap();
        assert!(
            rec.contains(&format!("\"{}\"", control(m.name()).display())),
            "{rec}"
        );
        assert!(std::os::unix::fs::FileTypeExt::is_socket(
            &std::fs::metadata(control(m.name())).unwrap().file_type()
        ));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata("/run/nspawn/control")
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
    let state = ok(ctl(&["show", a.name(), "-p", "State", "--value"]));
    assert_eq!(state.trim(), "running");

    // The endpoint's protocol, spoken directly: a request it does not know
    // closes the connection and changes nothing; "state" is answered.
    assert_eq!(control_request(&control(a.name()), "frobnicate"), [""]);
    assert_eq!(
        control_request(&control(a.name()), "state"),
        ["running", ""]
    );
    // Only root is answered: a peer whose effective uid is another (with
    // the file system uid 0, so that it reaches the socket at all) is
    // dropped unanswered (SO_PEERCRED); the same peer as root is answered.
    assert_eq!(control_request_as(&control(a.name()), "state", 65534), [""]);
    assert_eq!(
        control_request_as(&control(a.name()), "state", 0),
        ["running", ""]
    );
    assert!(a.runner.as_mut().unwrap().try_wait().unwrap().is_none());

    // terminate ends it now and leaves nothing behind: through the
    // endpoint, which answers "ok" and ends when the runner has cleaned
    // up and exited.
    assert_eq!(control_request(&control(a.name()), "terminate"), ["ok", ""]);
    // The runner has exited (the kernel closes a process's descriptors a
    // moment before its parent can reap it).
    let runner = a.runner.as_mut().unwrap();
    assert!(
        wait_until(std::time::Duration::from_millis(500), || runner
            .try_wait()
            .unwrap()
            .is_some()),
        "the endpoint closed before the runner ended"
    );
    assert!(!control(a.name()).exists(), "endpoint left");
    assert!(
        !std::path::Path::new("/run/nspawn/machines")
            .join(a.name())
            .exists(),
        "record left"
    );
    let out = a.runner_exit();
    assert!(
        stderr(&out).contains("terminated by signal KILL"),
        "{}",
        stderr(&out)
    );
    assert!(!machine_cgroup(a.name()).exists());
    let listed = ok(ctl(&["list", "--no-legend"]));
    assert!(
        !listed.contains(a.name()) && listed.contains(b.name()),
        "{listed}"
    );

    // SIGKILL of b's runner: no record, no process.
    let mut b = b;
    let runner = b.runner.take().unwrap();
    let pid = runner.id();
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = wait_output(runner, T);
    // Dying is not running: it is no longer listed, at once.
    let out = ok(ctl(&["list", "--no-legend"]));
    assert!(!out.contains(b.name()), "{out}");
    assert!(
        wait_until(T, || !std::path::Path::new("/run/nspawn/machines")
            .join(b.name())
            .exists()),
        "record left"
    );
    assert!(
        wait_until(T, || !control(b.name()).exists()),
        "endpoint left"
    );
    assert!(
        wait_until(T, || processes_with(b.tree.dir()).is_empty()),
        "processes left"
    );
    let o = ctl(&["status", b.name()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(b.name()), "{}", stderr(&o));
}

/// A record left by a machine whose runner and leader have ended and whose
/// PIDs went to another process (here a `sleep` of ours, in the record's
/// cgroup, which is still locked as a reaper locks it); the record's start
/// times are not the sleep's. The machine is not listed as running, and
/// nothing reaches the process that got the PIDs.
#[test]
fn a_recycled_pid_is_not_the_machine() {
    if ours_only() {
        return;
    }
    let name = unique("recycled");
    let unified = machine_cgroup(&name);
    let unified = unified.parent().unwrap().parent().unwrap();
    let mut fake = RecycledPid {
        sleep: std::process::Command::new("sleep")
            .arg(marker())
            .spawn()
            .unwrap(),
        cgroup: unified.join(format!("nspawn-test-{name}")),
        record: std::path::Path::new("/run/nspawn/machines").join(&name),
    };
    let pid = fake.sleep.id();
    std::fs::create_dir(&fake.cgroup).unwrap();
    let _lock = nix::fcntl::Flock::lock(
        std::fs::File::open(&fake.cgroup).unwrap(),
        nix::fcntl::FlockArg::LockExclusive,
    )
    .unwrap();
    std::fs::write(fake.cgroup.join("cgroup.procs"), pid.to_string()).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: u64 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let start = format!("{{\"boot\":\"{}\",\"ticks\":{}}}", boot.trim(), ticks + 1);
    let record = format!(
        r#"{{"name":"{name}","class":"container","service":"nspawn",
            "root":"/var/tmp/nspawn-tests/{name}","leader":{pid},"runner":{pid},
            "starts":{{"runner":{start},"leader":{start}}},
            "id":"0123456789abcdef0123456789abcdef","cgroup":"{}",
            "interfaces":[],"addresses":[],"state":"running","started_usec":0,
            "bounding":0}}"#,
        fake.cgroup.display()
    );
    let tmp = fake.record.with_file_name(format!(".{name}.tmp"));
    std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
    std::fs::write(&tmp, record).unwrap();
    std::fs::rename(&tmp, &fake.record).unwrap();

    let listed = ok(ctl(&["list", "--no-legend"]));
    assert!(!listed.contains(&name), "{listed}");
    for args in [
        &["kill", &name][..],
        &["kill", "--kill-whom=leader", &name],
        &["kill", "--kill-whom=all", "--signal=KILL", &name],
        &["terminate", &name],
    ] {
        let o = ctl(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not running"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(
        fake.sleep.try_wait().unwrap().is_none(),
        "the sleep was signalled"
    );
}

/// What `a_recycled_pid_is_not_the_machine` makes, removed however it ends.
struct RecycledPid {
    sleep: Child,
    cgroup: std::path::PathBuf,
    record: std::path::PathBuf,
}

impl Drop for RecycledPid {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
        let _ = std::fs::remove_file(&self.record);
        // The cgroup empties a moment after its last process is reaped.
        wait_until(T, || std::fs::remove_dir(&self.cgroup).is_ok());
    }
}

#[test]
fn clear_errors() {
    if ours_only() {
        return;
    }
    for (args, msg) in [
        (
            &["status", "no-such-machine"][..],
            "No machine 'no-such-machine' known",
        ),
        (
            &["shell", "no-such-machine"],
            "No machine 'no-such-machine' known",
        ),
        (&["kill", "--signal=NOPE", "x"], "Cannot parse signal"),
        (&["bogus-verb"], "bogus-verb"),
        (&["enable", "bad name"], "Invalid machine name"),
    ] {
        let o = ctl(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(msg) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// A listing piped into a reader that has gone (`| head`) ends quietly,
/// killed by SIGPIPE as machinectl and coreutils are, not with a panic.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    if ours_only() {
        return;
    }
    for verb in ["list", "list-images"] {
        let script = format!(
            "(sleep 0.3; exec {} {verb}) | true; echo \"status ${{PIPESTATUS[0]}}\"",
            nspawn_bin().with_file_name("nspawnctl").display()
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "status 141\n", "{verb}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{verb}");
    }
}

#[test]
fn enable_and_disable_link_the_template() {
    if ours_only() {
        return;
    }
    let template = std::path::Path::new("/etc/systemd/system/nspawn@.service");
    let installed_here = !template.exists();
    if installed_here {
        std::fs::create_dir_all(template.parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join("units/nspawn@.service"), template).unwrap();
    }
    let name = unique("enabled");
    let link = std::path::Path::new("/etc/systemd/system/machines.target.wants")
        .join(format!("nspawn@{name}.service"));
    ok(ctl(&["enable", &name]));
    assert_eq!(std::fs::read_link(&link).unwrap(), template);
    ok(ctl(&["disable", &name]));
    assert!(std::fs::symlink_metadata(&link).is_err());
    if installed_here {
        std::fs::remove_file(template).unwrap();
    }
}

/// Just enough JSON checking without a JSON dependency in the tests:
/// compact the text and look for fields.
mod serde_json_like {
    pub struct Value(pub String);
    pub fn parse(s: &str) -> Value {
        assert!(s.trim_start().starts_with('['), "not a JSON list: {s}");
        Value(s.chars().filter(|c| !c.is_whitespace()).collect())
    }
}

#[test]
fn start_without_systemd_runs_in_the_background() {
    if ours_only() || std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let name = unique("started");
    let dir = std::path::Path::new("/var/lib/machines").join(&name);
    std::fs::create_dir_all("/var/lib/machines").unwrap();
    let st = std::process::Command::new(repo_root().join("scripts/fixtures.sh"))
        .arg("busybox")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let o = ctl(&["start", &name]);
    let out = ok(o);
    assert!(
        out.contains("in the background") && out.contains(&name),
        "{out}"
    );
    assert!(ok(ctl(&["list", "--no-legend"])).contains(&name));
    ok(ctl(&["terminate", &name]));
    assert!(!ok(ctl(&["list", "--no-legend"])).contains(&name));
    let _ = std::fs::remove_file(format!("/var/log/nspawn/{name}.log"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn top_reports_cpu_memory_and_tasks() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("top");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "sleep 60 & while :; do :; done",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runner = c.spawn().unwrap();
    assert!(wait_until(T, || std::path::Path::new(
        "/run/nspawn/machines"
    )
    .join(&t.name)
    .exists()));
    let out = ok(ctl(&["top", "--output=json", "--delay=1"]));
    let line = out.lines().next().unwrap();
    let start = line
        .find(&format!("\"machine\":\"{}\"", t.name))
        .expect("machine missing");
    let obj = &line[line[..start].rfind('{').unwrap()..start + line[start..].find('}').unwrap()];
    let num = |k: &str| -> f64 {
        let i = obj.find(&format!("\"{k}\":")).unwrap() + k.len() + 3;
        obj[i..].split([',', '}']).next().unwrap().parse().unwrap()
    };
    // A busy loop: well above an idle machine's ~0, even when it shares
    // two loaded cores with another test.
    assert!(num("cpu_percent") > 10.0, "{obj}");
    assert!(num("memory_bytes") > 0.0, "{obj}");
    assert!(num("tasks") >= 2.0, "{obj}");
    let out = ok(ctl(&["top", "--batch", "-n", "1", "--delay=0.2"]));
    assert!(out.starts_with("Machine") && out.contains(&t.name), "{out}");
    runner.kill().unwrap();
    runner.wait().unwrap();
}

#[test]
fn shell_gets_the_machines_confinement() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("confined");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "--system-call-filter=~sethostname",
        "--drop-capability=CAP_CHOWN",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "touch /ready; sleep 30",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runner = c.spawn().unwrap();
    assert!(wait_until(T, || t.join("ready").exists()
        && std::path::Path::new("/run/nspawn/machines")
            .join(&t.name)
            .exists()));
    let out = ok(ctl(&["shell", &t.name, "/bin/sh", "-c", "grep -E '^(Seccomp|CapBnd):' /proc/self/status; hostname x 2>/dev/null || echo no-sethostname; chown 1 /tmp 2>/dev/null || echo no-chown"]));
    // The reference's set less CAP_CHOWN, within what this host allows.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = u64::from_str_radix(
        host.lines().find(|l| l.starts_with("CapBnd:")).unwrap()[7..].trim(),
        16,
    )
    .unwrap();
    let want = format!(
        "CapBnd:\t{:016x}\nSeccomp:\t2\nno-sethostname\nno-chown\n",
        0xfdecaffe_u64 & host_bnd
    );
    assert_eq!(out, want);
    runner.kill().unwrap();
    runner.wait().unwrap();
}

/// `shell` on a terminal: the session's pty has our terminal's size, and
/// again after a resize (SIGWINCH), as a terminal window or Cockpit's
/// terminal (the channel's `window`) resizes it.
#[test]
fn shell_follows_the_terminal_size() {
    if ours_only() {
        return;
    }
    let m = Machine::start("ctlwinch");
    let mut c = nspawnctl(&["shell", m.name(), "/bin/sh"]);
    c.env("TERM", "xterm-256color").env("ENV", "");
    let mut s = PtySession::spawn(c, 30, 100);
    s.expect("# ", T);
    s.send(b"stty size\n");
    s.expect("30 100", T);
    s.expect("# ", T);
    assert!(
        s.resize_and_ask(40, 120),
        "the new size did not reach the session"
    );
    s.send(b"exit 3\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 3, "{out}");
}

/// `--json=MODE` as machinectl has it, on `list`, `list-images`, `top`
/// (a line per update with `--follow`), and our `status --json`.
#[test]
fn json_for_list_status_top_and_images() {
    if ours_only() {
        return;
    }
    let m = Machine::start("ctljson");
    let parse = |out: &str| -> serde_json::Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    };
    let find = |v: &serde_json::Value, key: &str| -> serde_json::Value {
        v.as_array()
            .unwrap()
            .iter()
            .find(|o| o[key] == m.name())
            .unwrap_or_else(|| panic!("{} missing: {v}", m.name()))
            .clone()
    };
    let short = ok(ctl(&["list", "--json=short"]));
    assert_eq!(short.lines().count(), 1, "{short}");
    let entry = find(&parse(&short), "machine");
    assert_eq!(entry["class"], "container");
    assert_eq!(entry["os"], "busybox");
    assert!(entry["addresses"].is_null(), "{entry}");
    let pretty = ok(ctl(&["list", "--json=pretty"]));
    assert!(pretty.lines().count() > 3, "{pretty}");
    assert_eq!(parse(&pretty), parse(&short));
    assert!(ok(ctl(&["list", "--json=off", "--no-legend"])).contains(m.name()));

    let status = parse(&ok(ctl(&["status", "--json=short", m.name()])));
    let s = find(&status, "machine");
    let leader = ok(ctl(&["show", m.name(), "-p", "Leader", "--value"]));
    assert_eq!(s["leader"].to_string(), leader.trim());
    assert_eq!(s["state"], "running");
    assert_eq!(s["root"], m.tree.dir());
    assert!(s["since"].as_u64().unwrap() > 0);
    assert!(
        s["processes"]
            .to_string()
            .contains(&format!("\"pid\":{}", leader.trim())),
        "leader not in the tree: {s}"
    );

    // Two samples, each a line of its own.
    let top = ok(ctl(&[
        "top",
        "--json=short",
        "--follow",
        "-n",
        "2",
        "--delay=0.3",
    ]));
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines.len(), 2, "{top}");
    for l in lines {
        let t = find(&parse(l), "machine");
        assert!(t["memory_bytes"].as_u64().unwrap() > 0, "{t}");
        assert!(t["tasks"].as_u64().unwrap() >= 1, "{t}");
    }

    let images = parse(&ok(ctl(&["list-images", "--json=short"])));
    for i in images.as_array().unwrap() {
        assert!(i["enabled"].is_boolean() && i["name"].is_string(), "{i}");
    }
    let bad = ctl(&["status", "--json=bogus", m.name()]);
    assert!(!bad.status.success());
}

/// `enable` links into `$NSPAWN_UNIT_DIR` when it is set, so a test (the
/// Cockpit one) leaves the host's units alone.
#[test]
fn enable_into_another_unit_dir() {
    if ours_only() {
        return;
    }
    let dir = std::path::PathBuf::from(format!("/tmp/nspawn-units-{}", unique("u")));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo_root().join("units/nspawn@.service"),
        dir.join("nspawn@.service"),
    )
    .unwrap();
    let name = unique("unitdir");
    let link = dir
        .join("machines.target.wants")
        .join(format!("nspawn@{name}.service"));
    let with_dir = |verb: &str| {
        let mut c = nspawnctl(&[verb, &name]);
        c.env("NSPAWN_UNIT_DIR", &dir);
        run(c)
    };
    ok(with_dir("enable"));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        dir.join("nspawn@.service")
    );
    ok(with_dir("disable"));
    assert!(std::fs::symlink_metadata(&link).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
