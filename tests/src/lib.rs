//! Harness for the integration tests: real trees, the real binary, as root.
//!
//! `NSPAWN_TEST_REFERENCE=1` runs the same tests against the reference
//! `systemd-nspawn --register=no --keep-unit` (tests of our own extensions
//! call `ours_only()` and return early there), so the tests are checked
//! against the behaviour they claim to match.

pub mod compat;
pub mod guest;
pub mod http;
pub mod oci;
pub mod pool;

use nix::pty::openpty;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod group;
pub mod leaks;
pub mod sandbox;
pub use group::Group;
pub use leaks::{leftovers, wait_clean, Leaks};
pub use sandbox::Sandbox;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn reference() -> bool {
    std::env::var_os("NSPAWN_TEST_REFERENCE").is_some_and(|v| v != "0")
}

/// True (and a note) when the test checks something only we do.
pub fn ours_only() -> bool {
    if reference() {
        eprintln!("not applicable to the reference; skipped");
    }
    reference()
}

/// The binary under test: `$NSPAWN_BIN`, else the `nspawn` next to this
/// test executable's directory (target/<profile>/).
pub fn nspawn_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NSPAWN_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("nspawn");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build` first",
        bin.display()
    );
    bin
}

/// `nspawnctl` next to the runner under test.
pub fn nspawnctl(args: &[&str]) -> Command {
    let mut c = Command::new(nspawn_bin().with_file_name("nspawnctl"));
    c.args(args);
    c
}

/// A command line for the runner under test, with the given arguments.
pub fn nspawn(args: &[&str]) -> Command {
    let mut c = if reference() {
        let mut c = Command::new("systemd-nspawn");
        c.args(["--register=no", "--keep-unit"]);
        c
    } else {
        Command::new(nspawn_bin())
    };
    c.args(args);
    c
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A unique name for a tree (and so a machine) of this test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::SeqCst)
    )
}

/// A number no other test (or leftover of an earlier run) uses: an
/// argument to `sleep` that finds exactly our container's payload.
pub fn marker() -> String {
    format!(
        "9{}{:03}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::SeqCst)
    )
}

/// A busybox tree made at `dir` by the fixture script.
pub fn busybox_at(dir: &Path) {
    let st = Command::new(repo_root().join("scripts/fixtures.sh"))
        .arg("busybox")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "busybox fixture failed");
}

/// A fresh busybox tree in /var/tmp (removed on drop).
pub struct Tree {
    pub path: PathBuf,
    pub name: String,
}

impl Tree {
    pub fn busybox(prefix: &str) -> Tree {
        let name = unique(prefix);
        let path = Path::new("/var/tmp/nspawn-tests").join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        busybox_at(&path);
        Tree { path, name }
    }

    pub fn dir(&self) -> &str {
        self.path.to_str().unwrap()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p.trim_start_matches('/'))
    }

    /// Run `sh -c SCRIPT` in the tree with `--pipe -q` plus `extra` options.
    pub fn sh(&self, extra: &[&str], script: &str) -> Output {
        let mut args = vec!["-q", "--pipe", "-D", self.dir()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["/bin/sh", "-c", script]);
        run(nspawn(&args))
    }
}

impl Drop for Tree {
    /// Every test's teardown checks that the machine named after the tree
    /// (the default name) left nothing on the host (`leftovers`), unless
    /// the test failed already.
    fn drop(&mut self) {
        stop_runners_of(self.dir());
        let left = match std::thread::panicking() || reference() {
            true => vec![],
            false => wait_clean(&self.name, &self.path),
        };
        let _ = std::fs::remove_dir_all(&self.path);
        assert!(left.is_empty(), "machine {} left {left:?}", self.name);
    }
}

/// End any runner (ours or the reference) still running a container of
/// `dir`: a test that failed half-way must not leave one behind to load
/// the machine for the tests after it. SIGTERM first (the reference's
/// container outlives a killed runner), then SIGKILL.
pub fn stop_runners_of(dir: &str) {
    let with_eq = format!("={dir}");
    let runners = || {
        processes_where(|cmd| {
            let mut args = cmd.split('\0');
            let runner = args
                .next()
                .and_then(|a| a.rsplit('/').next())
                .is_some_and(|a| a == "nspawn" || a == "systemd-nspawn");
            runner && args.any(|a| a == dir || a.ends_with(&with_eq))
        })
    };
    for (sig, wait) in [(libc::SIGTERM, 5), (libc::SIGKILL, 5)] {
        let pids = runners();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: signalling a runner of our own test's tree.
            unsafe { libc::kill(pid as i32, sig) };
        }
        wait_until(Duration::from_secs(wait), || runners().is_empty());
    }
}

/// Run to completion (60 s at most), stdin from /dev/null.
pub fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    wait_output(child, Duration::from_secs(60))
}

/// Wait (up to `limit`) for `child` and its piped output. The pipes are
/// read all along (a chatty child never blocks on a full pipe), and only
/// for a bounded time after it exits: a process left holding them (the
/// very leak a test may look for) fails the test instead of hanging it.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    use std::io::Read;
    fn reader(pipe: Option<impl Read + Send + 'static>) -> std::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![];
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    }
    let (out, err) = (reader(child.stdout.take()), reader(child.stderr.take()));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let drain = Duration::from_secs(5);
    let (stdout, stderr) = (out.recv_timeout(drain), err.recv_timeout(drain));
    match (status, stdout, stderr) {
        (Some(status), Ok(stdout), Ok(stderr)) => Output {
            status,
            stdout,
            stderr,
        },
        (None, o, e) => panic!(
            "timed out; stdout {:?} stderr {:?}",
            text(&o.unwrap_or_default()),
            text(&e.unwrap_or_default())
        ),
        (Some(st), ..) => panic!("exited ({st}), but something still holds its output open"),
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// Assert success and return stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The reference prints this on every run on a host whose /run is not a
/// tmpfs (this one); it says nothing about the behaviour under test.
pub fn host_quirks_removed(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Attempted to remove disk file system under"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The host's mount points at or below `dir` (other activity on the host
/// does not disturb the comparison).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .filter(|m| m == dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// The cgroup directories our runner makes, by machine name.
pub fn machine_cgroup(name: &str) -> PathBuf {
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .find(|p| Path::new(p).join("cgroup.procs").exists())
        .unwrap();
    Path::new(root)
        .join("machine.slice")
        .join(format!("machine-{}.scope", name.replace('-', "\\x2d")))
}

/// The unit name of a machine's scope, escaped as systemd (and the
/// runner) escape it: the name of its cgroup in every hierarchy.
pub fn scope_name(machine: &str) -> String {
    let escaped: String = machine
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect();
    format!("machine-{escaped}.scope")
}

/// Every process: its PID and command line (arguments separated by NUL).
pub fn all_processes() -> Vec<(u32, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            out.push((pid, text(&cmd)));
        }
    }
    out
}

/// The mount table of every mount namespace that a process is in, ours
/// first.
pub fn mount_namespaces() -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
    seen.extend(ours);
    out.push(std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    for (pid, _) in all_processes() {
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
            continue;
        };
        if seen.insert(ns) {
            out.extend(std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok());
        }
    }
    out
}

/// Processes whose whole command line (arguments joined by spaces) is `cmd`.
pub fn processes_exactly(cmd: &str) -> Vec<u32> {
    processes_with(cmd)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| text(&c).trim_end_matches('\0').replace('\0', " ") == cmd)
                .unwrap_or(false)
        })
        .collect()
}

/// Processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    processes_where(|cmd| cmd.replace('\0', " ").contains(needle))
}

/// Processes whose command line (arguments separated by NUL) passes `f`.
fn processes_where(f: impl Fn(&str) -> bool) -> Vec<u32> {
    all_processes()
        .into_iter()
        .filter(|(_, cmd)| f(cmd))
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether a process with `arg` among its arguments runs.
pub fn runs_with_arg(arg: &str) -> bool {
    !processes_where(|cmd| cmd.split('\0').any(|a| a == arg)).is_empty()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A program driven through a real pseudo terminal, as a person would.
pub struct PtySession {
    pub master: OwnedFd,
    pub child: Child,
    pub buf: Vec<u8>,
}

pub fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

impl PtySession {
    /// Start `cmd` as the session leader of a new terminal of the given size.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let pty = openpty(None, None).unwrap();
        // openpty(3) gives inheritable descriptors: a master leaked into the
        // runner would keep the terminal alive after we are gone.
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .unwrap();
        }
        set_winsize(&pty.master, rows, cols);
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        nix::fcntl::fcntl(
            &pty.master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        PtySession {
            master: pty.master,
            child,
            buf: vec![],
        }
    }

    fn fill(&mut self, wait: Duration) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&self.master),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = wait.as_millis().min(u16::MAX as u128) as u16;
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
        let mut b = [0u8; 65536];
        match nix::unistd::read(&self.master, &mut b) {
            Ok(0) | Err(nix::errno::Errno::EIO) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
            Err(_) => true,
        }
    }

    /// Wait for `pat` in the output; returns everything up to and including it.
    #[track_caller]
    pub fn expect(&mut self, pat: &str, limit: Duration) -> String {
        match self.try_expect(pat, limit) {
            Some(out) => out,
            None => panic!(
                "timed out waiting for {pat:?}; output so far: {:?}",
                text(&self.buf)
            ),
        }
    }

    /// Resize our terminal to `rows` x `cols` and ask the shell on the
    /// other end (`stty size`) until it reports that size, for at most
    /// 10 s: the size travels by SIGWINCH, which may be handled after
    /// input already waiting. Whether it arrived.
    pub fn resize_and_ask(&mut self, rows: u16, cols: u16) -> bool {
        set_winsize(&self.master, rows, cols);
        let want = format!("{rows} {cols}");
        (0..20).any(|_| {
            self.send(b"stty size\n");
            self.try_expect(&want, Duration::from_millis(500)).is_some()
        })
    }

    /// As `expect`, but `None` (the output kept) when `pat` does not come.
    pub fn try_expect(&mut self, pat: &str, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            if let Some(i) = find(&self.buf, pat.as_bytes()) {
                let rest = self.buf.split_off(i + pat.len());
                return Some(text(&std::mem::replace(&mut self.buf, rest)));
            }
            if Instant::now() > end || !self.fill(Duration::from_millis(50)) && Instant::now() > end
            {
                return None;
            }
        }
    }

    pub fn send(&mut self, data: &[u8]) {
        nix::unistd::write(&self.master, data).unwrap();
    }

    /// Read until the program exits; returns its exit code and the output.
    pub fn finish(&mut self, limit: Duration) -> (i32, String) {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // What is left to read; bounded, should something that
                // outlived the program still hold the terminal open.
                let drain = Instant::now() + Duration::from_secs(2);
                while self.fill(Duration::from_millis(20)) && Instant::now() < drain {}
                return (
                    st.code().unwrap_or(-1),
                    text(&std::mem::take(&mut self.buf)),
                );
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("did not exit; output: {:?}", text(&self.buf));
            }
            self.fill(Duration::from_millis(20));
        }
    }
}

/// A failed test must not leave its runner (and so its container) behind.
impl Drop for PtySession {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A throwaway Debian 12 tree with systemd: an overlay on the cached tree
/// (`$NSPAWN_TEST_DEBIAN`, made by `scripts/fixtures.sh debian`), so boots
/// never change the cache.
pub struct DebianTree {
    pub path: PathBuf,
    pub name: String,
    base: PathBuf,
}

impl DebianTree {
    pub fn new(prefix: &str) -> DebianTree {
        let lower = std::env::var("NSPAWN_TEST_DEBIAN")
            .unwrap_or_else(|_| "/var/cache/nspawn-rs/debian12".into());
        assert!(
            Path::new(&lower).join("usr/lib/systemd/systemd").exists(),
            "no Debian tree at {lower}: run scripts/fixtures.sh debian (scripts/test does)"
        );
        let name = unique(prefix);
        let base = Path::new("/var/tmp/nspawn-tests").join(format!("{name}.overlay"));
        let path = Path::new("/var/tmp/nspawn-tests").join(&name);
        for d in ["upper", "work"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::create_dir_all(&path).unwrap();
        let opts = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            base.join("upper").display(),
            base.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &path,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .expect("overlay mount");
        DebianTree { path, name, base }
    }

    pub fn dir(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for DebianTree {
    fn drop(&mut self) {
        if let Some(dir) = self.path.to_str() {
            stop_runners_of(dir);
        }
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Read a child's stderr to a string without blocking forever.
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// Clear the immutable attribute (`chattr -i`) of every entry of `dir`,
/// so that read-only images there can be removed.
pub fn make_entries_mutable(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = Command::new("chattr")
            .arg("-i")
            .arg(e.path())
            .stderr(Stdio::null())
            .status();
    }
}

/// A throw-away OpenPGP signing key in its own gpg home under `dir`, with
/// its public half exported as a binary keyring (`pubring`), the form the
/// reference's import keyrings have. Drop stops the gpg-agent gpg started.
pub struct GpgKey {
    home: PathBuf,
    pub pubring: PathBuf,
}

impl GpgKey {
    pub fn new(dir: &Path, name: &str) -> GpgKey {
        let home = dir.join(format!("gnupg-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let key = GpgKey {
            pubring: dir.join(format!("{name}.gpg")),
            home,
        };
        key.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("{name} <{name}@example.invalid>"),
            "ed25519",
            "sign",
            "never",
        ]);
        let o = key.gpg(&["--export"]);
        std::fs::write(&key.pubring, o.stdout).unwrap();
        key
    }

    fn gpg(&self, args: &[&str]) -> Output {
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("gpg (apt-get install gpg)");
        assert!(o.status.success(), "gpg {args:?}: {}", text(&o.stderr));
        o
    }

    /// A detached signature of `file` written to `out` (ASCII-armoured
    /// if `armor`).
    pub fn sign(&self, file: &Path, out: &Path, armor: bool) {
        let (f, o) = (file.to_str().unwrap(), out.to_str().unwrap());
        let mut args = vec!["--detach-sign", "-o", o];
        if armor {
            args.push("--armor");
        }
        args.push(f);
        self.gpg(&args);
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "gpg-agent"])
            .stderr(Stdio::null())
            .status();
    }
}

/// Python's HTTP (or, with a certificate and key, HTTPS) file server on
/// 127.0.0.1, serving `dir` until dropped.
pub struct HttpDir {
    child: Child,
    pub port: u16,
    scheme: &'static str,
}

impl HttpDir {
    pub fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> HttpDir {
        const SERVER: &str = r#"
import http.server, ssl, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=sys.argv[1], **k)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
if len(sys.argv) > 3:
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(sys.argv[2], sys.argv[3])
    s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut c = Command::new("python3");
        c.args(["-c", SERVER]).arg(dir);
        if let Some((cert, key)) = tls {
            c.arg(cert).arg(key);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("server port");
        HttpDir {
            child,
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    pub fn url(&self, file: &str) -> String {
        format!("{}://127.0.0.1:{}/{file}", self.scheme, self.port)
    }
}

impl Drop for HttpDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a tree holds, one line per entry (path, type, mode, owner, size,
/// and a hash of small files or a link's target), sorted: two states
/// compare equal when nothing in the tree was added, removed, re-owned or
/// (up to 1 MiB) rewritten. Times are left out.
pub fn tree_state(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    fn hash(data: &[u8]) -> u64 {
        // FNV-1a: enough to tell a rewritten file from the original.
        data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        })
    }
    fn visit(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let what = if m.is_symlink() {
                format!("-> {:?}", std::fs::read_link(&p).unwrap_or_default())
            } else if m.is_file() && m.len() <= 1 << 20 {
                format!("{:x}", hash(&std::fs::read(&p).unwrap_or_default()))
            } else {
                String::new()
            };
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            out.push(format!(
                "{rel} {:o} {}:{} {} {what}",
                m.mode(),
                m.uid(),
                m.gid(),
                if m.is_dir() { 0 } else { m.len() }
            ));
            if m.is_dir() {
                visit(root, &p, out);
            }
        }
    }
    let mut out = vec![];
    visit(root, root, &mut out);
    out.sort();
    out
}

/// The lines of `a` and `b` that differ (for a readable failure).
pub fn state_diff(a: &[String], b: &[String]) -> Vec<String> {
    let (sa, sb): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
        (a.iter().collect(), b.iter().collect());
    sa.symmetric_difference(&sb)
        .map(|l| {
            let side = if sa.contains(l) { "-" } else { "+" };
            format!("{side}{l}")
        })
        .collect()
}

/// The marks of `NSPAWN_TIMING=1` in a runner's stderr: each stage and
/// the milliseconds since the runner began.
pub fn timing_marks(stderr: &str) -> Vec<(String, f64)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("nspawn: timing "))
        .filter_map(|l| {
            let (stage, ms) = l.split_once(" +")?;
            Some((stage.to_string(), ms.strip_suffix(" ms")?.parse().ok()?))
        })
        .collect()
}

/// Whether the long versions of the fault and churn tests were asked for
/// (`NSPAWN_SOAK=1`, as `scripts/soak` does).
pub fn soak() -> bool {
    std::env::var_os("NSPAWN_SOAK").is_some_and(|v| v != "0")
}

/// The loop devices whose backing file is `file` (as `losetup -a` lists
/// them, from `/sys/block/loopN/loop/backing_file`): a disk image's run
/// must leave none, however it ended.
pub fn loops_backed_by(file: &Path) -> Vec<String> {
    let want = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let mut out = vec![];
    for e in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            let b = b.trim_end_matches('\n');
            if Path::new(b.trim_end_matches(" (deleted)")) == want {
                out.push(format!("/dev/{name} ({b})"));
            }
        }
    }
    out
}

/// Build a static helper from tests/escape/NAME.c, once per test process
/// (so an edited source is always picked up), into cargo's scratch space
/// (`scratch`: the test's `CARGO_TARGET_TMPDIR`, which cargo gives
/// integration tests only, not this library).
pub fn static_helper(name: &str, scratch: &Path) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = scratch.join("escape-helpers");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let src = repo_root().join(format!("tests/escape/{name}.c"));
        let tmp = dir.join(format!("{name}.tmp-{}", std::process::id()));
        let o = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .expect("gcc");
        assert!(o.status.success(), "gcc {name}: {}", stderr(&o));
        std::fs::rename(&tmp, &out).unwrap();
        built.push(name.to_string());
    }
    out
}

/// The runner's stages, in order, as `NSPAWN_FAILPOINT` names them.
pub const RUNNER_STAGES: &[&str] = &[
    "preflight",
    "reserve.tree",
    "reserve.name",
    "reserve.cgroup",
    "reserve.net",
    "reserve.userns",
    "reserve.control",
    "reserve.reaper",
    "spawn",
    "wire.userns",
    "wire.net",
    "wire.place",
    "supervise.publish",
];

/// The PIDs whose parent is `parent` (this kernel has no
/// /proc/PID/task/TID/children).
pub fn children(parent: u32) -> Vec<u32> {
    all_processes()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|&pid| status_field(pid, "PPid") == Some(parent))
        .collect()
}

/// A numeric field of `/proc/PID/status` (`PPid`, `Threads`).
pub fn status_field(pid: u32, key: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .trim()
        .parse()
        .ok()
}

/// The NSS module as glibc finds it (`libnss_nspawn.so.2` on the library
/// path) and an nsswitch.conf naming it, for host-name lookups in a
/// private mount namespace, so the host's configuration is untouched.
/// Removed on drop.
pub struct NssModule {
    dir: PathBuf,
}

impl NssModule {
    pub fn new() -> NssModule {
        let dir = Path::new("/var/tmp/nspawn-tests").join(unique("nss"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(
            nspawn_bin().with_file_name("libnss_nspawn.so"),
            dir.join("libnss_nspawn.so.2"),
        )
        .unwrap();
        let conf: String = std::fs::read_to_string("/etc/nsswitch.conf")
            .unwrap()
            .lines()
            .map(|l| match l.starts_with("hosts:") {
                true => "hosts: files nspawn\n".to_string(),
                false => format!("{l}\n"),
            })
            .collect();
        std::fs::write(dir.join("nsswitch.conf"), conf).unwrap();
        NssModule { dir }
    }

    /// `sh -c script` in a private mount namespace that uses the module,
    /// `getent` in `script` finding it.
    pub fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "sh",
            "-c",
            &format!(
                "mount --bind {d}/nsswitch.conf /etc/nsswitch.conf && export LD_LIBRARY_PATH={d} && {script}",
                d = self.dir.display()
            ),
        ]);
        c
    }
}

impl Default for NssModule {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NssModule {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
