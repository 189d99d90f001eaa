//! The Cockpit page (cockpit/nspawn) end to end: Debian's cockpit-ws and
//! cockpit-bridge serve it on 127.0.0.1, headless chromium driven by
//! selenium (tests/cockpit/e2e.py) uses it against real machines — two
//! busybox ones and, where the fixture is there, a booted Debian guest.
//!
//! Nothing is installed on the host: the page (with the PatternFly and
//! xterm.js files scripts/cockpit-vendor fetches) is found through a
//! temporary `XDG_DATA_DIRS`, `enable` links into a temporary
//! `NSPAWN_UNIT_DIR`, images go to a pool of the test's own
//! (`NSPAWN_IMAGE_PATH`), and every process the test started (cockpit-ws,
//! the bridge and what it spawned, python, chromedriver, chromium)
//! carries a marker in its environment by which it is found and killed at
//! the end.
//! Screenshots stay in target/<profile>/cockpit-screenshots.

use nspawn_tests::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const MARKER: &str = "NSPAWN_COCKPIT_TEST";

const TOOLS: [&str; 5] = [
    "/usr/lib/cockpit/cockpit-ws",
    "/usr/bin/cockpit-bridge",
    "/usr/bin/chromium",
    "/usr/bin/chromedriver",
    "/usr/lib/python3/dist-packages/selenium",
];

/// A busybox machine whose PID 1 ends on SIGRTMIN+4 (38), as an init
/// does on `poweroff`.
struct Machine {
    tree: Tree,
    runner: Child,
}

impl Machine {
    fn start(prefix: &str) -> Machine {
        let tree = Tree::busybox(prefix);
        let script = "trap 'exit 0' 38; touch /ready; while :; do sleep 0.2; done";
        let mut c = nspawn(&["-q", "--pipe", "-D", tree.dir(), "/bin/sh", "-c", script]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let runner = c.spawn().unwrap();
        assert!(wait_until(T, || tree.join("ready").exists()));
        assert!(wait_until(T, || Path::new("/run/nspawn/machines")
            .join(&tree.name)
            .exists()));
        Machine { tree, runner }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.runner.kill();
        let _ = self.runner.wait();
    }
}

/// The processes started with `MARKER=dir` in their environment.
fn marked(dir: &str) -> Vec<i32> {
    let needle = format!("{MARKER}={dir}");
    all_processes()
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|e| e.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|(pid, _)| pid as i32)
        .collect()
}

/// The test's own directory and processes; dropping it ends them (their
/// process groups, then any marked process by its PID) and removes it.
struct Session {
    dir: PathBuf,
    groups: Vec<i32>,
    /// Children nobody else waits for (cockpit-ws), reaped at the end.
    kept: Vec<Child>,
}

impl Session {
    fn new() -> Session {
        let dir = PathBuf::from(format!("/tmp/nspawn-cockpit-{}", unique("t")));
        std::fs::create_dir_all(&dir).unwrap();
        Session {
            dir,
            groups: vec![],
            kept: vec![],
        }
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// `c` in a process group of its own, marked.
    fn spawn(&mut self, mut c: Command) -> Child {
        c.env(MARKER, self.dir_str()).process_group(0);
        let child = c.spawn().unwrap();
        self.groups.push(child.id() as i32);
        child
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for g in &self.groups {
            // SAFETY: signalling the process groups this test made.
            unsafe { libc::kill(-g, libc::SIGTERM) };
        }
        let dir = self.dir_str().to_string();
        if !wait_until(Duration::from_secs(5), || marked(&dir).is_empty()) {
            for pid in marked(&dir) {
                // SAFETY: a process this test started (it carries the marker).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for c in &mut self.kept {
            let _ = c.wait();
        }
        let gone = wait_until(Duration::from_secs(5), || marked(&dir).is_empty());
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(gone, "processes left: {:?}", marked(&dir));
        }
    }
}

/// A free port on 127.0.0.1 (released again for cockpit-ws to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The machine the page starts from the pulled image: ended (should the
/// test fail before the page terminates it) and its start's log removed.
struct Started(String);

impl Drop for Started {
    fn drop(&mut self) {
        if std::path::Path::new("/run/nspawn/machines")
            .join(&self.0)
            .exists()
        {
            let _ = run(nspawnctl(&["terminate", &self.0]));
        }
        let _ = std::fs::remove_file(format!("/var/log/nspawn/{}.log", self.0));
    }
}

/// The journal directory a guest's `--link-journal=try-host` made on the
/// host, removed at the end.
struct HostJournal(PathBuf);

impl Drop for HostJournal {
    fn drop(&mut self) {
        if self.0.file_name().is_some_and(|n| n.len() == 32) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn the_page_in_a_browser() {
    if ours_only() {
        return;
    }
    for t in TOOLS {
        assert!(
            Path::new(t).exists(),
            "{t} missing: apt-get install cockpit-ws cockpit-bridge cockpit-system chromium chromium-driver python3-selenium (scripts/test does)"
        );
    }
    let shots = nspawn_bin().with_file_name("cockpit-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    // Images (the pull, its clone, the start) in a pool of the test's own.
    let pool = pool::Pool::new("ckpool");
    let off = Machine::start("ckoff");
    let shell = Machine::start("ckshell");
    // Its journal in the host's /var/log/journal, for the page to show.
    let debian = std::env::var_os("NSPAWN_TEST_DEBIAN").map(|_| {
        let t = DebianTree::new("ckdeb");
        let mut console = guest::boot_with(&t, &["--link-journal=try-host"]);
        console.expect("login: ", guest::BOOT);
        let id = ok(run(nspawnctl(&["show", &t.name, "-p", "Id", "--value"])));
        let journal = HostJournal(Path::new("/var/log/journal").join(id.trim()));
        (t, console, journal)
    });

    let mut s = Session::new();
    let share = s.dir.join("share");
    copy_dir(
        &repo_root().join("cockpit/nspawn"),
        &share.join("cockpit/nspawn"),
    );
    // PatternFly and xterm.js as scripts/install-cockpit puts them: from
    // the npm cache (fetched into it if missing), verified against their
    // pins by scripts/cockpit-vendor.
    ok(run({
        let mut c = Command::new(repo_root().join("scripts/cockpit-vendor"));
        c.arg(share.join("cockpit/nspawn"));
        c
    }));
    let units = s.dir.join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::copy(
        repo_root().join("units/nspawn@.service"),
        units.join("nspawn@.service"),
    )
    .unwrap();
    std::fs::create_dir_all(s.dir.join("home")).unwrap();

    // The archive to pull: a busybox tree, served slowly enough (~2 s)
    // that the tool shows progress (it does after a second).
    let www = &pool.srv;
    ok(run({
        let mut c = Command::new("tar");
        c.arg("-C")
            .arg(&off.tree.path)
            .arg("-cf")
            .arg(www.join("bb.tar"))
            .arg(".");
        c
    }));
    let http = http::Server::start(www, Duration::from_millis(4));
    let pulled = Started(unique("ckpull"));

    let port = free_port();
    let bin_dir = nspawn_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin_dir.display()
    );
    let mut ws = Command::new("/usr/lib/cockpit/cockpit-ws");
    ws.args([
        "--no-tls",
        "--local-session=cockpit-bridge",
        "--address=127.0.0.1",
    ])
    .arg(format!("--port={port}"))
    .env("HOME", s.dir.join("home"))
    .env("XDG_DATA_DIRS", format!("{}:/usr/share", share.display()))
    .env("PATH", &path)
    .env("NSPAWN_UNIT_DIR", &units)
    .env("NSPAWN_IMAGE_PATH", &pool.pool)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(shots.join("cockpit-ws.log")).unwrap());
    let ws = s.spawn(ws);
    s.kept.push(ws);
    assert!(
        wait_until(T, || std::net::TcpStream::connect(("127.0.0.1", port))
            .is_ok()),
        "cockpit-ws did not listen on {port}"
    );

    let mut cfg = serde_json::json!({
        "url": format!("http://127.0.0.1:{port}/cockpit/@localhost/nspawn/index.html"),
        "shell_url": format!("http://127.0.0.1:{port}/nspawn"),
        "chromium": "/usr/bin/chromium",
        "chromedriver": "/usr/bin/chromedriver",
        "profile": s.dir.join("profile"),
        "screenshots": shots,
        "machines": [off.tree.name, shell.tree.name],
        "console": shell.tree.name,
        "poweroff": off.tree.name,
        "pull_url": http.url("bb.tar"),
        "pull_name": pulled.0,
        "unit_dir": units,
    });
    if let Some((t, _, journal)) = &debian {
        cfg["debian"] = t.name.clone().into();
        // try-host links only where the host keeps a persistent journal.
        cfg["debian_journal"] = journal.0.exists().into();
    }
    let mut py = Command::new("/usr/bin/python3");
    py.arg(repo_root().join("tests/cockpit/e2e.py"))
        .arg(cfg.to_string())
        .env("HOME", s.dir.join("home"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = s.spawn(py);
    let out = wait_output(child, Duration::from_secs(180));
    eprintln!("{}{}", stdout(&out), stderr(&out));
    eprintln!("screenshots: {}", shots.display());
    assert!(out.status.success(), "the browser test failed");
    assert!(stdout(&out).contains("ok refused"));

    // The power-off ended the machine as its init's exit ends a machine.
    let mut off = off;
    assert!(wait_until(T, || off.runner.try_wait().unwrap().is_some()));
    drop(s);
    // The machine the page started from the image, ephemeral, ended.
    let image = pool.pool.join(&pulled.0);
    let left = wait_clean(&pulled.0, &image);
    assert!(left.is_empty(), "machine {} left {left:?}", pulled.0);
    drop(pulled);
    if let Some((t, console, journal)) = debian {
        drop(console);
        drop(journal);
        let name = t.name.clone();
        let path = t.path.clone();
        drop(t);
        let left = wait_clean(&name, &path);
        assert!(left.is_empty(), "machine {name} left {left:?}");
    }
}
