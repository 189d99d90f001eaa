//! `nspawn-oci` driven by the real clients, as a user would: podman 4.3
//! (through conmon) with a private storage, run root and configuration
//! under a temporary directory, and the runtime's command line itself.
//! With `NSPAWN_OCI_RUNTIME=runc` the same tests run with runc, so that
//! they check what a runtime must do; a case runc fails too on this host
//! is skipped there, with the reason.
//!
//! Each test's containers go below a cgroup parent of its own, and the
//! test checks that the parent is empty (no container's cgroup left in
//! any hierarchy), that no state directory of its containers is left,
//! and that nothing stays mounted below its directory.

use nspawn_tests::oci::{cgroup_hierarchies, cgroups_below, libpod_parents, remove_conmon_cgroups};
use nspawn_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn runc() -> bool {
    std::env::var("NSPAWN_OCI_RUNTIME").is_ok_and(|v| v == "runc")
}

/// The runtime under test.
fn runtime() -> PathBuf {
    if runc() {
        return PathBuf::from("/usr/sbin/runc");
    }
    let bin = nspawn_bin().with_file_name("nspawn-oci");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build` first",
        bin.display()
    );
    bin
}

/// Where the runtime keeps its state by default (podman passes no `--root`).
fn state_root() -> &'static str {
    if runc() {
        "/run/runc"
    } else {
        "/run/nspawn-oci"
    }
}

/// A podman of our own: storage, run root, temporary directory and
/// configuration (the shipped drop-in) under one directory, containers
/// below a cgroup parent of this test. Dropping it removes the
/// containers, checks for leftovers, and removes it all.
struct Podman {
    dir: PathBuf,
    parent: String,
    ids: std::cell::RefCell<Vec<String>>,
    /// Whether podman's default parent existed before this test.
    libpod_parent_before: bool,
}

impl Podman {
    fn new(prefix: &str) -> Podman {
        let name = unique(prefix);
        let dir = Path::new("/var/tmp/nspawn-tests").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            repo_root().join("dist/containers.conf.d/nspawn-oci.conf"),
            dir.join("containers.conf"),
        )
        .unwrap();
        let p = Podman {
            dir,
            parent: format!("/nspawn-tests-{name}"),
            ids: Default::default(),
            libpod_parent_before: !libpod_parents().is_empty(),
        };
        let tree = Tree::busybox(&format!("{prefix}-img"));
        let mut tar = Command::new("tar")
            .args(["-C", tree.dir(), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Copying an image in writes containers/image's blob-info cache
        // under /var/lib/containers whatever --root says: not the host's.
        let mut import = p.cmd_in(
            nspawn_tests::oci::contained(&p.dir.join("state"), "podman"),
            &["import", "-", "localhost/bb"],
        );
        import.stdin(tar.stdout.take().unwrap());
        ok(import.output().unwrap());
        assert!(tar.wait().unwrap().success(), "tar of the busybox tree");
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in(Command::new("podman"), args)
    }

    /// `c` (podman, or podman wrapped) with this podman's options.
    fn cmd_in(&self, mut c: Command, args: &[&str]) -> Command {
        let d = self.dir.display();
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg(format!("--root={d}/root"))
            .arg(format!("--runroot={d}/runroot"))
            .arg(format!("--tmpdir={d}/tmp"))
            .args([
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
                "--storage-driver=vfs",
            ])
            .arg(format!("--runtime={}", runtime().display()))
            .args(args);
        c
    }

    /// `podman run` with what this host needs, and `extra` before the
    /// image and `cmd` after it.
    fn run(&self, extra: &[&str], cmd: &[&str]) -> Output {
        let cg = format!("--cgroup-parent={}", self.parent);
        let mut args = vec![
            "run",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &cg,
        ];
        args.extend_from_slice(extra);
        args.push("localhost/bb");
        args.extend_from_slice(cmd);
        let out = self.cmd(&args).output().unwrap();
        if extra.contains(&"-d") && out.status.success() {
            self.ids.borrow_mut().push(stdout(&out).trim().to_string());
        }
        out
    }

    /// The full id of a container by name.
    fn id(&self, name: &str) -> String {
        let id = ok(self
            .cmd(&["inspect", "--format", "{{.Id}}", name])
            .output()
            .unwrap());
        let id = id.trim().to_string();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        ok(self
            .cmd(&["inspect", "--format", format, name])
            .output()
            .unwrap())
        .trim()
        .to_string()
    }

    /// The container's cgroup in the v1 hierarchy `controller`.
    fn cgroup(&self, controller: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.parent.trim_start_matches('/'))
            .join(format!("libpod-{id}"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]).output();
        let _ = self.cmd(&["image", "rm", "-a", "-f"]).output();
        nspawn_tests::oci::wait_for_processes_of(&self.dir);
        let left_cg = remove_conmon_cgroups(&self.parent);
        // Every podman call here names our parent: one that did not would
        // leave podman's default one behind.
        let libpod = match self.libpod_parent_before {
            true => vec![],
            false => libpod_parents(),
        };
        let left_state: Vec<String> = self
            .ids
            .borrow()
            .iter()
            .map(|id| Path::new(state_root()).join(id))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        // podman's own mounts (the containers' /dev/shm) go with `rm`.
        remove_and_check(
            &self.dir,
            &self.parent,
            vec![
                ("cgroups", left_cg),
                ("state", left_state),
                ("podman's default cgroup parent", libpod),
            ],
        );
    }
}

/// The end of a client's test: unmount what is left below `dir` (the
/// clients' own `/dev/shm` mounts, which `rm` should have taken), remove
/// the cgroup parent `cg_parent` in every hierarchy and `dir`, and fail
/// if anything in `left` (or a mount other than a `/shm`) was left.
fn remove_and_check(dir: &Path, cg_parent: &str, mut left: Vec<(&str, Vec<String>)>) {
    let mounts = mounts_under(dir);
    for m in mounts.iter().rev() {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    nspawn_tests::oci::remove_cgroup_parent(cg_parent);
    let _ = std::fs::remove_dir_all(dir);
    left.push((
        "mounts",
        mounts
            .into_iter()
            .filter(|m| !m.ends_with("/shm"))
            .collect(),
    ));
    if !std::thread::panicking() {
        for (what, l) in left {
            assert!(l.is_empty(), "{what} left: {l:?}");
        }
    }
}

#[test]
fn podman_run_rm_exit_status_and_process() {
    let p = Podman::new("ocirt-run");
    let hostdir = p.dir.join("vol");
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::write(hostdir.join("f"), "from-host").unwrap();
    let vol = format!("{}:/data", hostdir.display());
    let out = p.run(
        &[
            "--rm",
            "--network",
            "none",
            "-e",
            "FOO=bar baz",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "--hostname",
            "oci-host",
            "-v",
            &vol,
            "--read-only",
            "--tmpfs",
            "/scratch",
        ],
        &[
            "sh",
            "-c",
            "echo \"foo=$FOO\"; echo \"cwd=$(pwd)\"; echo \"id=$(id -u):$(id -g)\"; \
             echo \"host=$(hostname)\"; echo \"data=$(cat /data/f)\"; \
             touch /rootfile 2>/dev/null && echo root=rw || echo root=ro; \
             grep -q ' /scratch tmpfs' /proc/mounts && echo scratch=tmpfs; \
             ls /sys/class/net | tr '\\n' ' ' | sed 's/^/net=/'; echo; exit 7",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text}\n{}", stderr(&out));
    for want in [
        "foo=bar baz",
        "cwd=/tmp",
        "id=1000:1000",
        "host=oci-host",
        "data=from-host",
        "root=ro",
        "scratch=tmpfs",
        "net=lo ",
    ] {
        assert!(
            text.lines().any(|l| l == want.trim_end() || l == want),
            "{want:?} not in:\n{text}"
        );
    }
}

#[test]
fn podman_missing_command_is_127() {
    let p = Podman::new("ocirt-127");
    let out = p.run(&["--rm", "--network", "none"], &["/no/such/command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let out = p.run(&["--rm", "--network", "none"], &["nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
}

#[test]
fn podman_detached_limits_kill_stop_rm() {
    let p = Podman::new("ocirt-detach");
    let out = p.run(
        &[
            "-d",
            "--name",
            "d1",
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
        ],
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1' USR1; while :; do sleep 0.1; done",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = p.id("d1");
    assert_eq!(p.inspect("d1", "{{.State.Status}}"), "running");
    let pid: u32 = p.inspect("d1", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 0);
    // The limits, where the kernel enforces them on this host (v1).
    let mem = std::fs::read_to_string(p.cgroup("memory", &id).join("memory.limit_in_bytes"));
    assert_eq!(mem.unwrap().trim(), (64u64 << 20).to_string());
    let pids = std::fs::read_to_string(p.cgroup("pids", &id).join("pids.max"));
    assert_eq!(pids.unwrap().trim(), "50");
    let procs = std::fs::read_to_string(p.cgroup("pids", &id).join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    // `podman update` hands the runtime LinuxResources (`update --resources`).
    ok(
        p.cmd(&["update", "--memory", "32m", "--cpu-shares", "512", "d1"])
            .output()
            .unwrap(),
    );
    let mem = std::fs::read_to_string(p.cgroup("memory", &id).join("memory.limit_in_bytes"));
    assert_eq!(mem.unwrap().trim(), (32u64 << 20).to_string());
    let shares = std::fs::read_to_string(p.cgroup("cpu", &id).join("cpu.shares"));
    assert_eq!(shares.unwrap().trim(), "512");
    // Signals by name through `podman kill -s`.
    ok(p.cmd(&["kill", "-s", "USR1", "d1"]).output().unwrap());
    let seen = wait_until(Duration::from_secs(5), || {
        stdout(&p.cmd(&["logs", "d1"]).output().unwrap()).contains("got-usr1")
    });
    assert!(seen, "the container did not see SIGUSR1");
    // pause and resume (the freezer).
    ok(p.cmd(&["pause", "d1"]).output().unwrap());
    assert_eq!(p.inspect("d1", "{{.State.Status}}"), "paused");
    ok(p.cmd(&["unpause", "d1"]).output().unwrap());
    assert_eq!(p.inspect("d1", "{{.State.Status}}"), "running");
    ok(p.cmd(&["stop", "-t", "1", "d1"]).output().unwrap());
    assert_eq!(p.inspect("d1", "{{.State.Status}}"), "exited");
    ok(p.cmd(&["rm", "d1"]).output().unwrap());
    assert!(!p.cgroup("memory", &id).exists());
    assert!(!Path::new(state_root()).join(&id).exists());
}

#[test]
fn podman_exec_into_running_container() {
    let p = Podman::new("ocirt-exec");
    let out = p.run(
        &[
            "-d",
            "--name",
            "e1",
            "--network",
            "none",
            "-e",
            "IN=container",
        ],
        &["sleep", "1000"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = p.id("e1");
    let out = p
        .cmd(&[
            "exec", "-u", "1000", "-w", "/tmp", "-e", "EXTRA=1", "e1", "sh", "-c",
            "echo \"$IN $EXTRA $(id -u) $(pwd) $(hostname)\"; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs|Seccomp):'; exit 5",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}\n{}", stderr(&out));
    let first = text.lines().next().unwrap_or("");
    assert_eq!(first, format!("container 1 1000 /tmp {}", &id[..12]));
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("Seccomp:\t2"), "{text}");
    // A host block device stays out of reach of root inside, even made
    // with mknod (CAP_MKNOD is in podman's default set): the device
    // policy on the cgroup, which exec'd processes are in too.
    let dev = std::fs::read_dir("/sys/dev/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .next()
        .expect("a block device on the host");
    let (major, minor) = dev.split_once(':').unwrap();
    let script = format!(
        "mknod /blk b {major} {minor} 2>/dev/null || echo mknod=refused; \
         (: < /blk) 2>/dev/null && echo open=yes || echo open=refused"
    );
    let out = ok(p
        .cmd(&["exec", "e1", "sh", "-c", &script])
        .output()
        .unwrap());
    assert!(
        out.contains("open=refused") && !out.contains("open=yes"),
        "{out}"
    );
    // As root, exec'd processes get the container process's capability
    // sets and its system call filter.
    let caps = ok(p
        .cmd(&[
            "exec",
            "e1",
            "sh",
            "-c",
            "for f in /proc/1/status /proc/self/status; do \
             grep -E '^(CapBnd|CapEff|CapPrm|Seccomp):' $f | tr '\\n' ' '; echo; done",
        ])
        .output()
        .unwrap());
    let lines: Vec<&str> = caps.lines().collect();
    assert_eq!(lines.len(), 2, "{caps}");
    assert_eq!(lines[0], lines[1], "init and exec differ");
    assert!(lines[1].contains("Seccomp:\t2"), "{caps}");
    // `podman top` reads the processes through the runtime's `ps`.
    let top = ok(p.cmd(&["top", "e1", "pid", "args"]).output().unwrap());
    assert!(top.contains("sleep 1000"), "{top}");
    ok(p.cmd(&["rm", "-f", "-t", "0", "e1"]).output().unwrap());
}

#[test]
fn podman_devices_and_device_rules() {
    let p = Podman::new("ocirt-dev");
    // The node of `--device` as the host has it (10:229, and podman asks
    // for the host's mode), usable; a node made with mknod is usable
    // only with a rule (`--device-cgroup-rule`), else refused.
    let script = "stat -c '%F %t:%T %a %u:%g' /dev/fuse; \
                  (exec 3</dev/fuse) 2>/dev/null && echo fuse=open || echo fuse=refused; \
                  mknod /dev/lc c 10 237 && echo mknod=ok; \
                  (exec 3</dev/lc) 2>/dev/null && echo lc=open || echo lc=refused; \
                  (exec 3</dev/null) && echo null=open";
    let out = p.run(
        &[
            "--rm",
            "--network",
            "none",
            "--device",
            "/dev/fuse",
            "--device-cgroup-rule",
            "c 10:237 rw",
        ],
        &["sh", "-c", script],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for want in [
        "character special file a:e5 600 0:0",
        "fuse=open",
        "mknod=ok",
        "lc=open",
        "null=open",
    ] {
        assert!(text.lines().any(|l| l == want), "{want:?} not in:\n{text}");
    }
    let out = p.run(&["--rm", "--network", "none"], &["sh", "-c", script]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for want in ["mknod=ok", "lc=refused", "null=open"] {
        assert!(text.lines().any(|l| l == want), "{want:?} not in:\n{text}");
    }
    assert!(!text.contains("fuse=open"), "{text}");
}

/// A whole disk of the host: (its /dev path, major:minor).
fn host_disk() -> (String, String) {
    for e in std::fs::read_dir("/sys/block").unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        let dev = std::fs::read_to_string(e.path().join("dev")).unwrap_or_default();
        if !name.starts_with("loop") && Path::new("/dev").join(&name).exists() {
            return (format!("/dev/{name}"), dev.trim().to_string());
        }
    }
    panic!("no disk on the host");
}

#[test]
fn podman_block_io_limits() {
    let p = Podman::new("ocirt-blkio");
    let (disk, numbers) = host_disk();
    let rbps = format!("{disk}:1mb");
    let wiops = format!("{disk}:100");
    let out = p.run(
        &[
            "-d",
            "--name",
            "b1",
            "--network",
            "none",
            "--device-read-bps",
            &rbps,
            "--device-write-iops",
            &wiops,
        ],
        &["sleep", "1000"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = p.id("b1");
    let v2 = !Path::new("/sys/fs/cgroup/blkio").exists();
    if v2 {
        let dir = Path::new("/sys/fs/cgroup")
            .join(p.parent.trim_start_matches('/'))
            .join(format!("libpod-{id}"));
        let max = std::fs::read_to_string(dir.join("io.max")).unwrap();
        assert!(max.contains(&format!("{numbers} rbps=1048576")), "{max}");
        assert!(max.contains("wiops=100"), "{max}");
    } else {
        let dir = p.cgroup("blkio", &id);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(
            read("blkio.throttle.read_bps_device").trim(),
            format!("{numbers} 1048576")
        );
        assert_eq!(
            read("blkio.throttle.write_iops_device").trim(),
            format!("{numbers} 100")
        );
    }
    ok(p.cmd(&["stop", "-t", "0", "b1"]).output().unwrap());
    ok(p.cmd(&["rm", "b1"]).output().unwrap());
}

/// The host ids of `--uidmap`/`--gidmap` in `podman_user_namespace`.
const USERNS_BASE: u32 = 200_000;

#[test]
fn podman_user_namespace() {
    let p = Podman::new("ocirt-uns");
    // Root of the container is host uid USERNS_BASE: a volume it owns.
    let vol = p.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(USERNS_BASE), Some(USERNS_BASE)).unwrap();
    let map = format!("0:{USERNS_BASE}:65536");
    let volume = format!("{}:/data", vol.display());
    let userns = [
        "--uidmap",
        map.as_str(),
        "--gidmap",
        map.as_str(),
        "-v",
        volume.as_str(),
        "--tmpfs",
        "/scratch",
    ];
    // A device in a user namespace: the host's node, bound (mknod(2) of
    // a device is refused there).
    let mut extra = vec![
        "-d",
        "--name",
        "u1",
        "--network",
        "none",
        "--device",
        "/dev/fuse",
    ];
    extra.extend(userns);
    let out = p.run(&extra, &["sleep", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; \
                  touch /data/by-root /data/by-1000; chown 1000:1000 /data/by-1000; \
                  stat -c '%u:%g' / /bin/sh /dev/null /proc/1 /scratch; \
                  echo x > /dev/null && echo devnull=ok; touch /etc/written && echo rootfs=rw; \
                  test -c /dev/fuse && echo fuse=node";
    let text = ok(p.cmd(&["exec", "u1", "sh", "-c", script]).output().unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{text}");
    for want in [
        format!("0 {USERNS_BASE} 65536"),
        "devnull=ok".into(),
        "rootfs=rw".into(),
        "fuse=node".into(),
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
            "{want:?} not in:\n{text}"
        );
    }
    // The tree (podman copied the image with the mapped owners), /proc of
    // the container, and the tmpfs belong to root inside; /dev/null is
    // the host's, whose owner is not mapped.
    assert!(text.contains("0:0\n0:0\n65534:65534\n0:0\n0:0\n"), "{text}");
    // On the host, what root inside wrote is the mapped id's.
    use std::os::unix::fs::MetadataExt;
    for (f, id) in [("by-root", USERNS_BASE), ("by-1000", USERNS_BASE + 1000)] {
        let meta = std::fs::metadata(vol.join(f)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (id, id), "{f}");
    }
    // The container's process too, seen from the host.
    let pid = p.inspect("u1", "{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("Uid:\t{USERNS_BASE}\t")),
        "{status}"
    );
    // Stopped before its removal: `rm -f -t 0` here failed about one run
    // in ten with "unlinkat .../userdata/shm: device or resource busy",
    // podman 4.3's race of `rm` with conmon's cleanup process
    // (podman#11594, fixed after 4.3), as far as we can tell. Stop, then
    // rm still met it in CI (under runc too): rm is tried again while
    // that is its error, for at most 5 s.
    ok(p.cmd(&["stop", "-t", "0", "u1"]).output().unwrap());
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let o = p.cmd(&["rm", "-f", "u1"]).output().unwrap();
        if o.status.success() {
            break;
        }
        let err = stderr(&o);
        assert!(
            err.contains("device or resource busy") && std::time::Instant::now() < end,
            "podman rm: {err}"
        );
        eprintln!("podman rm met EBUSY, tried again: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // And `podman run --rm` with the maps: its exit status.
    let mut extra = vec!["--rm", "--network", "none"];
    extra.extend(userns);
    let out = p.run(&extra, &["sh", "-c", "cat /proc/self/uid_map; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains(&USERNS_BASE.to_string()));
    // Several ranges, smaller than 65536 ids (as `--userns=auto` sizes
    // them to the image), written as given.
    let low = format!("0:{USERNS_BASE}:1000");
    let high = format!("1000:{}:1000", USERNS_BASE + 100_000);
    let gids = format!("0:{USERNS_BASE}:2000");
    let out = p.run(
        &[
            "--rm",
            "--network",
            "none",
            "--uidmap",
            &low,
            "--uidmap",
            &high,
            "--gidmap",
            &gids,
        ],
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            format!("0 {USERNS_BASE} 1000"),
            format!("1000 {} 1000", USERNS_BASE + 100_000),
            format!("0 {USERNS_BASE} 2000"),
            "0".to_string(),
        ]
    );
}

/// The ids `/etc/subuid` and `/etc/subgid` give `containers` in
/// `podman_userns_auto` (far from `USERNS_BASE`'s).
const AUTO_BASE: u32 = 1_500_000;
const AUTO_SIZE: u32 = 200_000;

/// podman's `--userns=auto`: podman picks a range of `containers`'s
/// subordinate ids, sized to the image, and hands the runtime those maps.
/// The host's /etc is not touched: the one `podman run` that reads the
/// files runs in a private mount namespace with an overlay on /etc
/// holding them (a bind needs the files to exist on the host; they do
/// not here). Inside, uid 0 is not the host's 0; what it writes in a
/// volume belongs to the range's first id on the host.
#[test]
fn podman_userns_auto() {
    let p = Podman::new("ocirt-auto");
    let etc = p.dir.join("etc");
    for d in ["upper", "work"] {
        std::fs::create_dir_all(etc.join(d)).unwrap();
    }
    for f in ["subuid", "subgid"] {
        std::fs::write(
            etc.join("upper").join(f),
            format!("containers:{AUTO_BASE}:{AUTO_SIZE}\n"),
        )
        .unwrap();
    }
    let vol = p.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // The namespace starts as a copy of the host's mounts, other tests'
    // among them; a directory that is a mount point in any namespace
    // cannot be removed (EBUSY), so theirs are let go of first, or their
    // teardowns could fail while this podman runs.
    let mut unshare = Command::new("unshare");
    unshare.args(["-m", "--propagation", "private", "/bin/sh", "-c"]);
    unshare.arg(
        "awk -v own=\"$0\" '$5 ~ \"^/var/tmp/nspawn-tests/\" && index($5, own) != 1 { print $5 }' \
           /proc/self/mountinfo | sort -r | while read -r m; do umount -l \"$m\"; done; \
         mount -t overlay overlay -o lowerdir=/etc,upperdir=\"$0/etc/upper\",workdir=\"$0/etc/work\" /etc \
         && exec \"$@\"",
    );
    unshare.arg(&p.dir).arg("podman");
    let cg = format!("--cgroup-parent={}", p.parent);
    let volume = format!("{}:/data", vol.display());
    let out = p
        .cmd_in(
            unshare,
            &[
                "run",
                "--rm",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                &cg,
                "--userns=auto",
                "--network",
                "none",
                "-v",
                &volume,
                "localhost/bb",
                "sh",
                "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; touch /data/by-root; id -u",
            ],
        )
        .output()
        .unwrap();
    let text = ok(out);
    let lines: Vec<Vec<u64>> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    // One range each for uids and gids, container 0 at a host id of the
    // subordinate range, then root's `id -u` inside.
    assert_eq!(lines.len(), 3, "{text}");
    let range = u64::from(AUTO_BASE)..u64::from(AUTO_BASE + AUTO_SIZE);
    for map in &lines[..2] {
        assert!(
            map.len() == 3 && map[0] == 0 && range.contains(&map[1]) && map[2] < 65536 * 4,
            "{text}"
        );
    }
    assert_eq!(lines[2], [0], "{text}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(vol.join("by-root")).unwrap();
    assert_eq!(
        (u64::from(meta.uid()), u64::from(meta.gid())),
        (lines[0][1], lines[1][1]),
        "{text}"
    );
}

#[test]
fn podman_tty_has_the_terminal_size() {
    let p = Podman::new("ocirt-tty");
    let mut cmd = p.cmd(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &format!("--cgroup-parent={}", p.parent),
        "localhost/bb",
        "sh",
        "-c",
        // podman 4.3 gives no `process.consoleSize` (which we would set
        // before the process runs, console.rs): conmon sets the size once
        // podman has attached, which a fast start can beat (a 0x0 pty,
        // `stty size` failing, seen once in CI). Wait for it, as a shell
        // would for its SIGWINCH; it must come.
        "i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); \
         [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] && break; i=$((i+1)); sleep 0.05; done; \
         echo \"$s\"; tty; exit 3",
    ]);
    cmd.stdin(Stdio::null());
    let mut s = PtySession::spawn(cmd, 33, 101);
    let (code, out) = s.finish(Duration::from_secs(60));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("33 101"), "{out}");
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    // `exec -t`: a terminal of the container's devpts, of the caller's size.
    let out = p.run(
        &["-d", "--name", "t1", "--network", "none"],
        &["sleep", "1000"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut cmd = p.cmd(&["exec", "-t", "t1", "sh", "-c", "tty; stty size; exit 4"]);
    cmd.stdin(Stdio::null());
    let mut s = PtySession::spawn(cmd, 21, 77);
    let (code, out) = s.finish(Duration::from_secs(60));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("/dev/pts/") && out.contains("21 77"), "{out}");
    ok(p.cmd(&["rm", "-f", "-t", "0", "t1"]).output().unwrap());
}

/// The runtime's own command line: errors as its callers parse them.
#[test]
fn runtime_errors_and_log_lines() {
    let dir = Path::new("/var/tmp/nspawn-tests").join(unique("ocirt-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("state");
    let log = dir.join("log.json");
    let rt = |args: &[&str]| {
        Command::new(runtime())
            .arg(format!("--root={}", root.display()))
            .arg(format!("--log={}", log.display()))
            .arg("--log-format=json")
            .args(args)
            .output()
            .unwrap()
    };
    let out = rt(&["state", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container does not exist"),
        "{}",
        stderr(&out)
    );
    let out = rt(&["kill", "nosuch", "9"]);
    assert_eq!(out.status.code(), Some(1));
    let out = rt(&["delete", "--force", "nosuch"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A bundle with no config.json: one error, nothing made.
    let out = rt(&["create", "--bundle", dir.to_str().unwrap(), "c1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!root.join("c1").exists());
    let lines = std::fs::read_to_string(&log).unwrap();
    let parsed: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["level"] == "error")
        .collect();
    assert!(parsed.len() >= 3, "{lines}");
    assert!(parsed
        .iter()
        .any(|v| v["msg"].as_str().unwrap().contains("does not exist")));
    assert!(parsed.iter().all(|v| v["time"].is_string()));
    // `features` and `spec`, as runc has them.
    let f: serde_json::Value = serde_json::from_str(&ok(rt(&["features"]))).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "poststop"));
    let spec_dir = dir.join("spec");
    std::fs::create_dir_all(&spec_dir).unwrap();
    ok(rt(&["spec", "--bundle", spec_dir.to_str().unwrap()]));
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]));
    let out = rt(&["spec", "--bundle", spec_dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "spec over an existing config.json"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hook that keeps the state it is given in `BUNDLE/KIND.json`.
fn hook(bundle: &Path, kind: &str) -> serde_json::Value {
    let file = bundle.join(format!("{kind}.json"));
    serde_json::json!({"path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", file.display())]})
}

/// `create`, `state`, `start`, `kill`, `delete` by hand on a bundle,
/// with the pid file and the container left waiting between create and
/// start.
#[test]
fn runtime_lifecycle_by_hand() {
    let t = Tree::busybox("ocirt-life");
    let bundle = t.path.with_file_name(format!("{}.bundle", t.name));
    std::fs::create_dir_all(&bundle).unwrap();
    let root = bundle.join("state");
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", "echo started > /ran; exec sleep 1000"],
            "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": t.dir()},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
        "hostname": "h",
        "hooks": {
            "createRuntime": [hook(&bundle, "createRuntime")],
            "poststart": [hook(&bundle, "poststart")],
            "poststop": [hook(&bundle, "poststop")]
        },
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "network"}],
            "cgroupsPath": format!("/nspawn-tests-{}", t.name)}
    });
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    // Through files, not pipes: the container's process inherits the
    // runtime's standard descriptors, and a pipe would stay open with it.
    let n = std::cell::Cell::new(0);
    let rt = |args: &[&str]| {
        n.set(n.get() + 1);
        let (o, e) = (
            bundle.join(format!("out{}", n.get())),
            bundle.join(format!("err{}", n.get())),
        );
        let status = Command::new(runtime())
            .arg(format!("--root={}", root.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    };
    let id = t.name.as_str();
    let pidfile = bundle.join("pid");
    ok(rt(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        id,
    ]));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !pid.ends_with('\n') && pid.parse::<u32>().is_ok(),
        "{pid:?}"
    );
    let st: serde_json::Value = serde_json::from_str(&ok(rt(&["state", id]))).unwrap();
    assert_eq!(st["status"], "created");
    // The hooks got the state on their standard input.
    let seen = |kind: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(bundle.join(format!("{kind}.json")))
            .unwrap_or_else(|e| panic!("hook {kind} did not run: {e}"));
        serde_json::from_str(&text).unwrap()
    };
    let h = seen("createRuntime");
    assert_eq!(h["id"].as_str(), Some(id));
    assert_eq!(h["pid"].to_string(), pid);
    assert_eq!(st["pid"].to_string(), pid);
    assert!(!t.join("ran").exists(), "the process ran before start");
    let out = rt(&["create", "--bundle", bundle.to_str().unwrap(), id]);
    assert_eq!(out.status.code(), Some(1), "a second create of one id");
    ok(rt(&["start", id]));
    assert!(wait_until(Duration::from_secs(5), || t
        .join("ran")
        .exists()));
    assert_eq!(seen("poststart")["pid"].to_string(), pid);
    let st: serde_json::Value = serde_json::from_str(&ok(rt(&["state", id]))).unwrap();
    assert_eq!(st["status"], "running");
    let list: serde_json::Value =
        serde_json::from_str(&ok(rt(&["list", "--format", "json"]))).unwrap();
    let mine: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    assert_eq!(mine[0]["status"], "running");
    let ps: Vec<u32> = serde_json::from_str(&ok(rt(&["ps", "--format", "json", id]))).unwrap();
    assert_eq!(ps, vec![pid.parse::<u32>().unwrap()]);
    // `events`: runc's stats objects, once or every interval until the
    // container stops.
    let ev: serde_json::Value = serde_json::from_str(&ok(rt(&["events", "--stats", id]))).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"].as_str(), Some(id));
    assert!(ev["data"]["pids"]["current"].as_u64() >= Some(1), "{ev}");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64() > Some(0),
        "{ev}"
    );
    assert!(
        ev["data"]["cpu"]["usage"]["total"].as_u64() > Some(0),
        "{ev}"
    );
    let events_out = bundle.join("events.out");
    let mut events = Command::new(runtime())
        .arg(format!("--root={}", root.display()))
        .args(["events", "--interval", "100ms", id])
        .stdout(std::fs::File::create(&events_out).unwrap())
        .spawn()
        .unwrap();
    let lines = || {
        std::fs::read_to_string(&events_out)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(wait_until(Duration::from_secs(5), || lines() >= 2));
    let out = rt(&["delete", id]);
    assert_eq!(out.status.code(), Some(1), "delete of a running container");
    ok(rt(&["kill", id, "KILL"]));
    // Reaped by whoever adopted it when `create` exited (here the host's
    // init: this test is no subreaper).
    let stopped = wait_until(Duration::from_secs(5), || {
        let st: serde_json::Value = serde_json::from_str(&ok(rt(&["state", id]))).unwrap();
        st["status"] == "stopped"
    });
    assert!(stopped, "still not stopped after SIGKILL");
    // It ends with the container (runc's goes on: stopped here).
    if runc() {
        let _ = events.kill();
    }
    assert!(wait_until(Duration::from_secs(5), || events
        .try_wait()
        .unwrap()
        .is_some()));
    ok(rt(&["delete", id]));
    assert!(!root.join(id).exists());
    assert_eq!(seen("poststop")["id"].as_str(), Some(id));
    let left = cgroups_below("/");
    assert!(
        !left
            .iter()
            .any(|c| c.ends_with(&format!("nspawn-tests-{}", t.name))),
        "cgroup left"
    );
    let _ = std::fs::remove_dir_all(&bundle);
}

/// A hook that appends its kind to `DIR/order`, keeps its state in
/// `DIR/KIND.json` and its mount namespace in `DIR/KIND.mnt`, then exits
/// with `status`.
fn recording_hook(dir: &str, kind: &str, status: i32) -> serde_json::Value {
    serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "cat > {dir}/{kind}.json; echo {kind} >> {dir}/order; \
         readlink /proc/self/ns/mnt > {dir}/{kind}.mnt; exit {status}")]})
}

/// A bundle around a busybox tree whose process records that it ran,
/// with `hooks`; returns the bundle, the tree and the runtime's root.
fn hook_bundle(t: &Tree, hooks: serde_json::Value) -> (PathBuf, PathBuf) {
    let bundle = t.path.with_file_name(format!("{}.bundle", t.name));
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", "echo payload >> /order; exec sleep 1000"],
            "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": t.dir()},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
        "hostname": "h",
        "hooks": hooks,
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "network"}],
            "cgroupsPath": format!("/nspawn-tests-{}", t.name)}
    });
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let root = bundle.join("state");
    (bundle, root)
}

/// The guard of `hook_bundle`'s container `t`.
fn guard(t: &Tree, bundle: &Path, root: &Path) -> BundleGuard {
    BundleGuard {
        root: root.to_path_buf(),
        id: t.name.clone(),
        bundle: bundle.to_path_buf(),
    }
}

/// Whether a cgroup of `hook_bundle`'s container `t` is left anywhere.
fn cgroup_left(t: &Tree) -> bool {
    let cg = format!("nspawn-tests-{}", t.name);
    cgroups_below("/").iter().any(|c| c.ends_with(&cg))
}

/// The bundle's `config.json`, parsed.
fn read_config(config: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap()
}

/// Whatever a bundle test leaves when it fails: its container (deleted
/// with `--force`) and the bundle's directory.
struct BundleGuard {
    root: PathBuf,
    id: String,
    bundle: PathBuf,
}

impl Drop for BundleGuard {
    fn drop(&mut self) {
        let _ = rt_in(&self.root, &["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// The runtime with `--root=root`, its output through files (the
/// container's process inherits them; a pipe would stay open with it).
fn rt_in(root: &Path, args: &[&str]) -> Output {
    let dir = root.with_file_name(unique("out"));
    std::fs::create_dir_all(&dir).unwrap();
    let (o, e) = (dir.join("out"), dir.join("err"));
    let status = Command::new(runtime())
        .arg(format!("--root={}", root.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// All six kinds of hooks, where and when runtime-spec says: prestart,
/// createRuntime (runtime's namespaces), createContainer (the
/// container's, host paths) during `create`; startContainer (the
/// container's namespaces and root) when `start` is called, before the
/// process; poststart after it; poststop at `delete`. Then failing
/// ones: a failing or timed-out create hook fails `create` leaving
/// nothing, a failing startContainer hook fails `start`.
#[test]
fn runtime_hooks_all_six() {
    let t = Tree::busybox("ocirt-hooks");
    let bundle_dir = t.path.with_file_name(format!("{}.bundle", t.name));
    let b = bundle_dir.display().to_string();
    let hooks = serde_json::json!({
        "prestart": [recording_hook(&b, "prestart", 0)],
        "createRuntime": [recording_hook(&b, "createRuntime", 0)],
        "createContainer": [recording_hook(&b, "createContainer", 0)],
        // Its path and its directory are the container's.
        "startContainer": [recording_hook("", "startContainer", 0)],
        "poststart": [recording_hook(&b, "poststart", 0)],
        "poststop": [recording_hook(&b, "poststop", 0)],
    });
    let (bundle, root) = hook_bundle(&t, hooks);
    let _guard = guard(&t, &bundle, &root);
    let id = t.name.as_str();
    let pidfile = bundle.join("pid");
    let rt = |args: &[&str]| rt_in(&root, args);
    ok(rt(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        id,
    ]));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_default();
    // runc runs poststart at the end of `create` (its container start
    // runs them for the init process), not after the process started.
    let poststart_at_create = if runc() { "poststart\n" } else { "" };
    assert_eq!(
        read(bundle.join("order")),
        format!("prestart\ncreateRuntime\ncreateContainer\n{poststart_at_create}")
    );
    assert_eq!(read(t.join("order")), "", "startContainer before start");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_ne!(host_mnt, container_mnt);
    let mnt = |p: PathBuf| PathBuf::from(read(p).trim());
    for kind in ["prestart", "createRuntime"] {
        assert_eq!(mnt(bundle.join(format!("{kind}.mnt"))), host_mnt, "{kind}");
    }
    assert_eq!(mnt(bundle.join("createContainer.mnt")), container_mnt);
    let state = |p: PathBuf| -> serde_json::Value {
        serde_json::from_str(&read(p.clone())).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let st = state(bundle.join(format!("{kind}.json")));
        assert_eq!(st["id"].as_str(), Some(id), "{kind}");
        // runc gives the container's hooks the PID the container sees
        // (1); runtime-spec's state has the host's.
        if !(runc() && kind == "createContainer") {
            assert_eq!(st["pid"].to_string(), pid, "{kind}");
        }
        assert_eq!(st["status"], "creating", "{kind}");
    }
    ok(rt(&["start", id]));
    assert!(wait_until(Duration::from_secs(5), || read(t.join("order"))
        .contains("payload")));
    assert_eq!(read(t.join("order")), "startContainer\npayload\n");
    assert_eq!(mnt(t.join("startContainer.mnt")), container_mnt);
    let st = state(t.join("startContainer.json"));
    assert_eq!(st["id"].as_str(), Some(id));
    assert_eq!(st["status"], "created");
    if !runc() {
        assert_eq!(st["pid"].to_string(), pid);
    }
    if !runc() {
        assert_eq!(state(bundle.join("poststart.json"))["status"], "running");
    }
    ok(rt(&["kill", id, "KILL"]));
    assert!(wait_until(Duration::from_secs(5), || {
        let st: serde_json::Value = serde_json::from_str(&ok(rt(&["state", id]))).unwrap();
        st["status"] == "stopped"
    }));
    ok(rt(&["delete", id]));
    assert_eq!(
        read(bundle.join("order")),
        "prestart\ncreateRuntime\ncreateContainer\npoststart\npoststop\n"
    );
    assert_eq!(state(bundle.join("poststop.json"))["status"], "stopped");

    // Failing hooks of `create`: it fails with the hook named, and leaves
    // no state, cgroup or process.
    let sleeper = serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1});
    for (kind, hook, want) in [
        (
            "createContainer",
            recording_hook(&b, "x", 3),
            "hook createContainer[0] /bin/sh: exit status: 3",
        ),
        (
            "createRuntime",
            recording_hook(&b, "x", 4),
            "hook createRuntime[0] /bin/sh: exit status: 4",
        ),
        (
            "prestart",
            sleeper,
            "hook prestart[0] /bin/sleep: timed out",
        ),
    ] {
        hook_bundle(&t, serde_json::json!({ kind: [hook] }));
        let started = std::time::Instant::now();
        let out = rt(&["create", "--bundle", bundle.to_str().unwrap(), id]);
        assert!(!out.status.success(), "{kind}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{kind}: timeout"
        );
        if !runc() {
            assert!(stderr(&out).contains(want), "{kind}: {}", stderr(&out));
            assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        }
        // runc leaves a created container behind a failed hook: removed.
        if runc() {
            let _ = rt(&["delete", "--force", id]);
        }
        assert!(!root.join(id).exists(), "{kind}: state left");
        assert!(!cgroup_left(&t), "{kind}: cgroup left");
    }
    // A failing startContainer hook fails `start`; the container ends.
    hook_bundle(
        &t,
        serde_json::json!({"startContainer": [recording_hook("", "y", 5)]}),
    );
    std::fs::write(t.join("order"), "").unwrap();
    ok(rt(&["create", "--bundle", bundle.to_str().unwrap(), id]));
    let out = rt(&["start", id]);
    if !runc() {
        assert!(!out.status.success());
        assert_eq!(
            stderr(&out).trim(),
            "nspawn-oci: hook startContainer[0] /bin/sh: exit status: 5"
        );
    }
    assert!(wait_until(Duration::from_secs(5), || {
        let st: serde_json::Value = serde_json::from_str(&ok(rt(&["state", id]))).unwrap();
        st["status"] == "stopped"
    }));
    assert_eq!(read(t.join("order")), "y\n", "the process ran");
    ok(rt(&["delete", id]));
    assert!(!root.join(id).exists());
    assert!(!cgroup_left(&t));
}

/// Bad device entries fail `create` with one line naming the JSON path
/// and leave nothing; a node the bundle lists is made as asked.
#[test]
fn runtime_devices_by_hand() {
    let t = Tree::busybox("ocirt-devs");
    let (bundle, root) = hook_bundle(&t, serde_json::json!({}));
    let _guard = guard(&t, &bundle, &root);
    let id = t.name.as_str();
    let config = bundle.join("config.json");
    let base = read_config(&config);
    let with = |devices: serde_json::Value, rules: serde_json::Value| {
        let mut c = base.clone();
        c["linux"]["devices"] = devices;
        c["linux"]["resources"] = serde_json::json!({ "devices": rules });
        c["process"]["args"] = serde_json::json!([
            "/bin/sh",
            "-c",
            "stat -c '%F %t:%T %a %u:%g' /dev/x/lc > /order; \
             (exec 3</dev/x/lc) && echo open >> /order"
        ]);
        std::fs::write(&config, c.to_string()).unwrap();
    };
    let lc = serde_json::json!([{"path": "/dev/x/lc", "type": "c", "major": 10, "minor": 237,
        "fileMode": 0o640, "uid": 0, "gid": 8}]);
    for (devices, rules, want) in [
        (
            serde_json::json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 9}]),
            serde_json::json!([]),
            "linux.devices[0]: /dev/null is 1:3 in every container",
        ),
        (
            serde_json::json!([{"path": "/dev/x", "type": "c", "major": 1}]),
            serde_json::json!([]),
            "linux.devices[0]: a device needs its major and minor",
        ),
        (
            lc.clone(),
            serde_json::json!([{"allow": true, "access": "rwx"}]),
            "linux.resources.devices[0].access: 'x' is not r, w or m",
        ),
    ]
    .into_iter()
    // runc takes all three: it makes a /dev/null of other numbers, a
    // minor of 0, and ignores an access letter it does not know; we refuse
    // them (a standard node replaced, a device without its numbers, a
    // rule we cannot read).
    .skip(if runc() { 3 } else { 0 })
    {
        with(devices, rules);
        let out = rt_in(&root, &["create", "--bundle", bundle.to_str().unwrap(), id]);
        assert!(!out.status.success(), "{want}");
        if !runc() {
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.trim_end().ends_with(want), "{err}");
        } else {
            let _ = rt_in(&root, &["delete", "--force", id]);
        }
        assert!(!root.join(id).exists(), "{want}: state left");
        assert!(!cgroup_left(&t));
    }
    // Made with its numbers, mode and owner; used under an allow rule.
    with(
        lc,
        serde_json::json!([{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "rw"}]),
    );
    let out = rt_in(&root, &["run", "--bundle", bundle.to_str().unwrap(), id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(t.join("order")).unwrap(),
        "character special file a:ed 640 0:8\nopen\n"
    );
    assert!(!root.join(id).exists());
    assert!(!cgroup_left(&t));
}

/// A foreground `run` (no `--detach`): signals to the runtime reach the
/// container's process, and with `process.terminal` (no console socket)
/// the runtime's terminal is the container's, its size included.
#[test]
fn runtime_foreground_run_signals_and_terminal() {
    let t = Tree::busybox("ocirt-fg");
    let (bundle, root) = hook_bundle(&t, serde_json::json!({}));
    let _guard = guard(&t, &bundle, &root);
    let id = t.name.as_str();
    let config = bundle.join("config.json");
    let base = read_config(&config);
    let with = |terminal: bool, script: &str| {
        let mut c = base.clone();
        c["process"]["terminal"] = terminal.into();
        c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        // runc allocates the terminal in the container's devpts.
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}));
        std::fs::write(&config, c.to_string()).unwrap();
    };
    with(
        false,
        "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 9' TERM; echo ready; \
         while :; do sleep 0.1; done",
    );
    let out = bundle.join("fg.out");
    let mut child = Command::new(runtime())
        .arg(format!("--root={}", root.display()))
        .args(["run", "--bundle", bundle.to_str().unwrap(), id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let said = |w: &str| {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains(w)
    };
    assert!(wait_until(Duration::from_secs(10), || said("ready")));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert!(wait_until(Duration::from_secs(5), || said("got-usr1")));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(9),
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );
    assert!(said("got-term"));
    assert!(!root.join(id).exists(), "state left");

    with(true, "stty size; tty; read x; echo \"in=$x\"; exit 3");
    let mut cmd = Command::new(runtime());
    cmd.arg(format!("--root={}", root.display())).args([
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        id,
    ]);
    let mut s = PtySession::spawn(cmd, 33, 101);
    let head = s.expect("/dev/pts/", Duration::from_secs(10));
    assert!(head.contains("33 101"), "{head}");
    s.send(b"hello\r");
    let (code, text) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("in=hello"), "{text}");
    assert!(!root.join(id).exists(), "state left");
    assert!(!cgroup_left(&t));
}

/// An I/O weight written where this kernel keeps it (BFQ's file on v1
/// here); huge page limits without a hugetlb controller fail `create`
/// with one line naming them, and leave nothing.
#[test]
fn runtime_io_weight_and_hugetlb() {
    let t = Tree::busybox("ocirt-lim");
    let (bundle, root) = hook_bundle(&t, serde_json::json!({}));
    let _guard = guard(&t, &bundle, &root);
    let id = t.name.as_str();
    let cg = format!("nspawn-tests-{}", t.name);
    let config = bundle.join("config.json");
    let base = read_config(&config);
    let with = |resources: serde_json::Value| {
        let mut c = base.clone();
        c["linux"]["resources"] = resources;
        std::fs::write(&config, c.to_string()).unwrap();
    };
    with(serde_json::json!({"blockIO": {"weight": 300}}));
    ok(rt_in(
        &root,
        &["create", "--bundle", bundle.to_str().unwrap(), id],
    ));
    let blkio = Path::new("/sys/fs/cgroup/blkio").join(&cg);
    if blkio.exists() {
        let w = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .find_map(|f| std::fs::read_to_string(blkio.join(f)).ok())
            .unwrap_or_default();
        // BFQ's file shows "default N".
        assert_eq!(w.split_whitespace().last(), Some("300"), "{w:?}");
    }
    ok(rt_in(&root, &["delete", "--force", id]));
    let hugetlb = Path::new("/sys/fs/cgroup/hugetlb").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| c.contains("hugetlb"));
    if !hugetlb {
        with(serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}));
        let out = rt_in(&root, &["create", "--bundle", bundle.to_str().unwrap(), id]);
        if runc() {
            // runc ignores it here: the container starts unlimited.
            let _ = rt_in(&root, &["delete", "--force", id]);
        } else {
            assert!(!out.status.success());
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.contains("linux.resources.hugepageLimits: no hugetlb controller here"),
                "{err}"
            );
        }
    }
    assert!(!root.join(id).exists(), "state left");
    assert!(!cgroup_left(&t));
}

/// A bundle's user namespace by hand: a tmpfs's owner options are ids
/// of the container's namespace (podman's `--tmpfs` takes none).
#[test]
fn runtime_user_namespace_mount_options() {
    let t = Tree::busybox("ocirt-unsm");
    let (bundle, root) = hook_bundle(&t, serde_json::json!({}));
    let _guard = guard(&t, &bundle, &root);
    let config = bundle.join("config.json");
    let mut c = read_config(&config);
    let map = serde_json::json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    c["linux"]["uidMappings"] = map.clone();
    c["linux"]["gidMappings"] = map;
    // The tree is the host root's: its mount point is made beforehand.
    std::fs::create_dir(t.join("owned")).unwrap();
    c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
        {"destination": "/owned", "type": "tmpfs", "source": "tmpfs",
         "options": ["uid=1000", "gid=1000", "mode=0710"]}));
    c["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "stat -c '%u:%g %a' /owned; cat /proc/self/uid_map"
    ]);
    std::fs::write(&config, c.to_string()).unwrap();
    let out = rt_in(
        &root,
        &["run", "--bundle", bundle.to_str().unwrap(), &t.name],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // runc gives the tmpfs the mode of the directory it covers.
    let mode = if runc() { "755" } else { "710" };
    assert_eq!(
        lines,
        [format!("1000:1000 {mode}"), "0 300000 65536".into()],
        "{text}"
    );
    assert!(!root.join(&t.name).exists());
}

/// A containerd of our own (root, state and sockets under a temporary
/// directory, the CRI plugin off), stopped and removed on drop with the
/// leftovers checked: its shims, the runtime's state, the containers'
/// cgroups below the namespace's.
struct Containerd {
    dir: PathBuf,
    daemon: std::process::Child,
    ns: String,
}

impl Containerd {
    fn start(prefix: &str) -> Containerd {
        let name = unique(prefix);
        let dir = Path::new("/var/tmp/nspawn-tests").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n"
            ),
        )
        .unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            daemon,
            ns: name.replace('-', "x"),
        };
        assert!(
            wait_until(Duration::from_secs(20), || c
                .ctr(&["version"])
                .output()
                .unwrap()
                .status
                .success()),
            "containerd did not start"
        );
        c.import_busybox();
        c
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .args(["--namespace", &self.ns])
            .args(args);
        c
    }

    /// `ctr run` with the runtime under test (the runc shim's binary).
    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let rt = runtime();
        let root = self.dir.join("runtime");
        let mut args = vec![
            "run",
            "--runc-binary",
            rt.to_str().unwrap(),
            "--runc-root",
            root.to_str().unwrap(),
            "--snapshotter",
            "native",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["localhost/bb:latest", id]);
        args.extend_from_slice(cmd);
        let mut c = self.ctr(&args);
        if extra.contains(&"-d") {
            c.stdout(Stdio::null()).stderr(Stdio::null());
        }
        c.output().unwrap()
    }

    /// An OCI image layout of the busybox tree, imported.
    fn import_busybox(&self) {
        let tree = Tree::busybox("ocirt-ctd-img");
        let img = self.dir.join("img");
        let blobs = img.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let sha = |p: &Path| {
            let o = ok(Command::new("sha256sum").arg(p).output().unwrap());
            o.split(' ').next().unwrap().to_string()
        };
        let put = |p: &Path| -> (String, u64) {
            let h = sha(p);
            let size = std::fs::metadata(p).unwrap().len();
            std::fs::rename(p, blobs.join(&h)).unwrap();
            (h, size)
        };
        let layer = img.join("layer.tar");
        ok(Command::new("tar")
            .args(["-C", tree.dir(), "-cf"])
            .arg(&layer)
            .arg(".")
            .output()
            .unwrap());
        let (l, ls) = put(&layer);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        let cfg = img.join("cfg");
        std::fs::write(
            &cfg,
            serde_json::json!({"architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/bin:/sbin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{l}")]}})
            .to_string(),
        )
        .unwrap();
        let (c, cs) = put(&cfg);
        let man = img.join("man");
        std::fs::write(&man, serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{c}"), "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{l}"), "size": ls}]}).to_string()).unwrap();
        let (m, ms) = put(&man);
        std::fs::write(img.join("index.json"), serde_json::json!({"schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{m}"), "size": ms,
                "annotations": {"io.containerd.image.name": "localhost/bb:latest"}}]}).to_string()).unwrap();
        std::fs::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = self.dir.join("bb.tar");
        ok(Command::new("tar")
            .arg("-C")
            .arg(&img)
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .output()
            .unwrap());
        ok(self
            .ctr(&["image", "import"])
            .arg(&archive)
            .output()
            .unwrap());
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in stdout(&self.ctr(&["task", "ls", "-q"]).output().unwrap()).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]).output();
            wait_until(Duration::from_secs(5), || {
                self.ctr(&["task", "rm", id])
                    .output()
                    .unwrap()
                    .status
                    .success()
            });
        }
        for id in stdout(&self.ctr(&["container", "ls", "-q"]).output().unwrap()).lines() {
            let _ = self.ctr(&["container", "rm", id]).output();
        }
        let _ = self.ctr(&["image", "rm", "localhost/bb:latest"]).output();
        // SAFETY: kill(2) of the daemon we started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        let shims = processes_with(&format!("{}/c.sock", self.dir.display()));
        let left_cg = cgroups_below(&format!("/{}", self.ns));
        let left_state: Vec<String> = std::fs::read_dir(self.dir.join("runtime").join(&self.ns))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for pid in &shims {
            // SAFETY: kill(2) of a shim of our daemon.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
        remove_and_check(
            &self.dir,
            &self.ns,
            vec![
                ("shims", shims.iter().map(|p| p.to_string()).collect()),
                ("cgroups", left_cg),
                ("state", left_state),
            ],
        );
    }
}

#[test]
fn containerd_run_exec_kill_delete() {
    let c = Containerd::start("ocirt-ctd");
    let out = c.run(&["--rm"], "c1", &["sh", "-c", "echo hello-ctr; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "hello-ctr");
    let out = c.run(&["-d"], "c2", &["sleep", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c
        .ctr(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "c2",
            "sh",
            "-c",
            "echo in-exec $(hostname); exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // ctr's spec names no host name: the container keeps the host's.
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(stdout(&out).trim(), format!("in-exec {host}"));
    // `task ps` asks the runtime (`ps --format json`).
    let ps = ok(c.ctr(&["task", "ps", "c2"]).output().unwrap());
    assert_eq!(ps.lines().count(), 2, "{ps}");
    ok(c.ctr(&["task", "pause", "c2"]).output().unwrap());
    assert!(ok(c.ctr(&["task", "ls"]).output().unwrap()).contains("PAUSED"));
    ok(c.ctr(&["task", "resume", "c2"]).output().unwrap());
    ok(c.ctr(&["task", "kill", "-s", "SIGKILL", "c2"])
        .output()
        .unwrap());
    assert!(wait_until(Duration::from_secs(10), || {
        ok(c.ctr(&["task", "ls"]).output().unwrap()).contains("STOPPED")
    }));
    ok(c.ctr(&["task", "rm", "c2"]).output().unwrap());
    ok(c.ctr(&["container", "rm", "c2"]).output().unwrap());
}

/// A bundle next to `t` for the killed-create tests: `spec(cgroup parent,
/// marker)` as its config.json. Returns the bundle, its runtime's state
/// root, the cgroup parent, the marker (a number, for `sleep`) and a
/// quiet runtime command under that root.
fn kill_bundle(
    t: &Tree,
    spec: impl FnOnce(&str, &str) -> serde_json::Value,
) -> (PathBuf, PathBuf, String, String, impl Fn() -> Command) {
    let bundle = t.path.with_file_name(format!("{}.bundle", t.name));
    std::fs::create_dir_all(&bundle).unwrap();
    let root = bundle.join("state");
    let parent = format!("/nspawn-tests-{}", t.name);
    let marker = marker();
    std::fs::write(
        bundle.join("config.json"),
        spec(&parent, &marker).to_string(),
    )
    .unwrap();
    let state = root.clone();
    let rt = move || {
        let mut c = Command::new(runtime());
        c.arg(format!("--root={}", state.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    (bundle, root, parent, marker, rt)
}

/// Remove `kill_bundle`'s cgroup parent and bundle.
fn remove_kill_bundle(parent: &str, bundle: &Path) {
    for h in cgroup_hierarchies() {
        let _ = std::fs::remove_dir(h.join(parent.trim_start_matches('/')));
    }
    let _ = std::fs::remove_dir_all(bundle);
}

/// `create` killed at points spread over its run: `delete --force` clears
/// whatever it left (record, cgroups, a waiting container process).
#[test]
fn killed_create_is_cleared_by_delete_force() {
    if runc() {
        // Seen with runc 1.1.5 here: killed about 20 ms in, it leaves its
        // v1 cpuset cgroup, which its `delete --force` does not remove.
        eprintln!("skipped under runc: a killed runc create leaves a cgroup on this host");
        return;
    }
    let t = Tree::busybox("ocirt-kill");
    let (bundle, root, parent, marker, rt) = kill_bundle(&t, |parent, marker| {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sleep", marker], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": t.dir()},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}],
                "cgroupsPath": format!("{parent}/c")}
        })
    });
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let mut create = rt()
            .args(["create", "--bundle", bundle.to_str().unwrap(), "c"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = create.kill();
        let _ = create.wait();
        let st = rt().args(["delete", "--force", "c"]).status().unwrap();
        assert!(st.success(), "delete --force after a kill at {delay_ms} ms");
        let left = cgroups_below(&parent);
        assert!(
            left.is_empty(),
            "after {delay_ms} ms: cgroups left: {left:?}"
        );
        assert!(!root.join("c").exists(), "after {delay_ms} ms: state left");
        let procs = processes_with(&marker);
        assert!(
            wait_until(Duration::from_secs(5), || processes_with(&marker)
                .is_empty()),
            "after {delay_ms} ms: processes left: {procs:?}"
        );
    }
    remove_kill_bundle(&parent, &bundle);
}

/// A `create` killed while its prestart hook runs takes the hook with it
/// (the hook is not left running on, owned by nobody), and `delete
/// --force` clears the rest.
#[test]
fn a_killed_create_takes_its_running_hook_along() {
    if runc() {
        eprintln!("skipped under runc: its hooks outlive a killed runc create");
        return;
    }
    let t = Tree::busybox("ocirt-hookkill");
    let (bundle, root, parent, marker, rt) = kill_bundle(&t, |parent, marker| {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
                "args": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": t.dir()},
            "hooks": {"prestart": [{"path": "/bin/sleep", "args": ["sleep", marker]}]},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}],
                "cgroupsPath": format!("{parent}/c")}
        })
    });
    let mut create = rt()
        .args(["create", "--bundle", bundle.to_str().unwrap(), "c"])
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !processes_with(&marker)
            .is_empty()),
        "the hook never ran"
    );
    let _ = create.kill();
    let _ = create.wait();
    assert!(
        wait_until(Duration::from_secs(2), || processes_with(&marker)
            .is_empty()),
        "the hook outlived create: {:?}",
        processes_with(&marker)
    );
    assert!(rt()
        .args(["delete", "--force", "c"])
        .status()
        .unwrap()
        .success());
    assert!(cgroups_below(&parent).is_empty());
    assert!(!root.join("c").exists());
    remove_kill_bundle(&parent, &bundle);
}

/// `--systemd-cgroup` with a `slice:prefix:name` path: the scope's
/// cgroup below its slice's, in every hierarchy, gone with `delete`.
#[test]
fn systemd_cgroup_path() {
    if runc() {
        eprintln!(
            "skipped under runc: it says \"systemd not running on this host, cannot use systemd cgroups manager\""
        );
        return;
    }
    let t = Tree::busybox("ocirt-sd");
    let bundle = t.path.with_file_name(format!("{}.bundle", t.name));
    std::fs::create_dir_all(&bundle).unwrap();
    let slice = format!("nspawntests-{}.slice", t.name.replace('-', ""));
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sleep", "1000"], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": t.dir()},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "network"}],
            "cgroupsPath": format!("{slice}:pfx:c1")}
    });
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let root = bundle.join("state");
    let rt = |args: &[&str]| {
        Command::new(runtime())
            .arg(format!("--root={}", root.display()))
            .arg("--systemd-cgroup")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(rt(&["create", "--bundle", bundle.to_str().unwrap(), "c1"]).success());
    let rel = format!("nspawntests.slice/{slice}/pfx-c1.scope");
    let made: Vec<PathBuf> = cgroup_hierarchies().iter().map(|h| h.join(&rel)).collect();
    assert!(made.iter().all(|d| d.is_dir()), "{made:?}");
    assert!(rt(&["delete", "--force", "c1"]).success());
    assert!(made.iter().all(|d| !d.exists()), "{made:?}");
    for h in cgroup_hierarchies() {
        let _ = std::fs::remove_dir(h.join(format!("nspawntests.slice/{slice}")));
        let _ = std::fs::remove_dir(h.join("nspawntests.slice"));
    }
    let _ = std::fs::remove_dir_all(&bundle);
}

/// A v1 memory cgroup of a test's own, for the processes it starts
/// (`enter`); dropped with everything made below it, deepest first.
struct MemoryCgroup(PathBuf);

impl MemoryCgroup {
    fn new(name: &str) -> MemoryCgroup {
        let dir = Path::new("/sys/fs/cgroup/memory").join(format!("nspawn-tests-{name}"));
        std::fs::create_dir(&dir).unwrap();
        MemoryCgroup(dir)
    }

    /// `cmd` run from a shell that first moves itself into this cgroup.
    fn enter(&self, cmd: Command) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$@\"",
                self.0.display()
            ))
            .arg("sh")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    }

    /// The directories below it (cgroups left by what ran in it).
    fn below(&self) -> Vec<PathBuf> {
        let mut out = vec![];
        let mut todo = vec![self.0.clone()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                    todo.push(e.path());
                }
            }
        }
        out
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for d in self.below().iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `--systemd-cgroup` where systemd is init, for real: inside a booted
/// Debian guest, `create` asks the guest's systemd for the transient
/// scope `nspawnoci-ID.scope` around the container's process (delegated,
/// the process in its cgroup, our memory limit in it; `exec`, `pause`
/// and `resume` work in it), and `delete`
/// stops it, leaving no unit and no cgroup; first over the system bus,
/// then, with dbus stopped, over systemd's private socket. A second
/// container asking for a scope of the same name fails with systemd's
/// words and stops nothing of the first's; one failing once its scope
/// runs leaves nothing, and so do one that reaches no systemd and a
/// foreground `run`.
///
/// The guest's cgroup layout here: our nspawn gives a booted guest the
/// unified hierarchy alone, where this hybrid host has no memory
/// controller (only hugetlb is in v2); the guest's systemd runs in
/// unified mode. So the guest mounts the v1 memory hierarchy itself, and
/// is started in a memory cgroup of this test's, which is where that
/// mount is rooted (its cgroup namespace) and which the test removes.
/// systemd does not manage that hierarchy, so `create` makes the scope's
/// path there (runc does the same for the v1 controllers systemd leaves
/// alone) and `delete` removes it.
#[test]
fn systemd_cgroup_scope_on_a_systemd_host() {
    if runc() {
        eprintln!("skipped under runc: the guest has no memory controller in v2 for runc's systemd driver");
        return;
    }
    let memcg = MemoryCgroup::new(&unique("sdguest"));
    let t = DebianTree::new("ocirt-sdg");
    // The bundle is the tree itself, its config.json at its top.
    let bundle = Tree::busybox("ocirt-sdg-bb");
    let config = |id: &str| {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sleep", "1000"], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": "/srv/bundle"},
            // No network namespace: the guest's root lacks CAP_NET_ADMIN
            // (a guest sharing the host's network), which bringing up a
            // new namespace's loopback needs.
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}],
                "cgroupsPath": format!("system.slice:nspawnoci:{id}"),
                "resources": {"memory": {"limit": 67108864}}}
        })
        .to_string()
    };
    std::fs::write(bundle.join("config.json"), config("c1")).unwrap();
    let mut args = vec![
        "-b".to_string(),
        "-D".to_string(),
        t.dir().to_string(),
        format!(
            "--bind-ro={}:/usr/local/bin/nspawn-oci",
            runtime().display()
        ),
        format!("--bind={}:/srv/bundle", bundle.dir()),
        // The device program is attached to the scope's cgroup with
        // bpf(2), which a guest's default system call filter refuses
        // (it keeps CAP_SYS_ADMIN, which the kernel asks for).
        "--system-call-filter=bpf".to_string(),
    ];
    args.extend(nspawn_tests::guest::our_tools());
    let mut c = memcg.enter(nspawn(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    c.env("TERM", "xterm");
    let mut s = PtySession::spawn(c, 40, 160);
    use nspawn_tests::guest::{console, login};
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    assert!(state.contains("running"), "{state}");
    let out = console(
        &mut s,
        "mkdir -p /run/memcg && mount -t cgroup -o memory memory /run/memcg && echo mounted; \
         systemctl is-active dbus.service",
    );
    assert!(out.contains("mounted") && out.contains("active"), "{out}");

    // One container's life, `id` (the config's cgroupsPath names it).
    let life = |s: &mut PtySession, id: &str| {
        let unit = format!("nspawnoci-{id}.scope");
        let out = console(
            s,
            &format!(
                "nspawn-oci --systemd-cgroup create --bundle /srv/bundle {id} </dev/null >/tmp/{id}.out 2>&1; \
                 echo create=$?; cat /tmp/{id}.out; nspawn-oci --systemd-cgroup start {id}; \
                 P=$(nspawn-oci state {id} | sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); \
                 systemctl show {unit} -p ActiveState -p Delegate -p ControlGroup --no-pager; \
                 echo proc; cat /proc/$P/cgroup; \
                 echo limit=$(cat /run/memcg/system.slice/{unit}/memory.limit_in_bytes); \
                 nspawn-oci exec {id} /bin/true; echo exec=$?; \
                 nspawn-oci pause {id}; nspawn-oci state {id} | grep -o '\"status\": *\"[a-z]*\"'; \
                 nspawn-oci resume {id}; nspawn-oci state {id} | grep -o '\"status\": *\"[a-z]*\"'"
            ),
        );
        assert!(
            out.contains("create=0")
                && out.contains("ActiveState=active")
                && out.contains("Delegate=yes")
                && out.contains(&format!("ControlGroup=/system.slice/{unit}"))
                && out.contains(&format!("0::/system.slice/{unit}"))
                && out.contains(&format!("memory:/system.slice/{unit}"))
                && out.contains("limit=67108864")
                && out.contains("exec=0")
                && out.contains("\"status\": \"paused\"\n\"status\": \"running\""),
            "{out}"
        );
        let out = console(
            s,
            &format!(
                "nspawn-oci kill {id} KILL; \
                 for i in $(seq 100); do nspawn-oci state {id} | grep -q stopped && break; sleep 0.05; done; \
                 nspawn-oci delete {id}; echo delete=$?; \
                 systemctl show {unit} -p LoadState --no-pager; \
                 ls -d /sys/fs/cgroup/system.slice/{unit} /run/memcg/system.slice/{unit} 2>&1; \
                 nspawn-oci list -q | wc -l"
            ),
        );
        assert!(
            out.contains("delete=0")
                && out.contains("LoadState=not-found")
                && out.matches("No such file or directory").count() == 2
                && out.trim_end().ends_with('0'),
            "{out}"
        );
    };
    life(&mut s, "c1");

    // A scope of that name already there: one line, exit 1, nothing
    // left of the second, the first's scope untouched.
    let out = console(
        &mut s,
        "nspawn-oci --systemd-cgroup create --bundle /srv/bundle first </dev/null >/dev/null 2>&1; \
         nspawn-oci --systemd-cgroup create --bundle /srv/bundle second </dev/null; echo rc=$?; \
         nspawn-oci list -q | sed 's/^/listed:/'; systemctl is-active nspawnoci-c1.scope; \
         nspawn-oci delete --force first; systemctl show nspawnoci-c1.scope -p LoadState --no-pager",
    );
    assert!(
        out.contains(
            "nspawn-oci: unable to start unit \"nspawnoci-c1.scope\": \
             Unit nspawnoci-c1.scope was already loaded or has a fragment file."
        ) && out.contains("rc=1")
            && out.contains("listed:first")
            && !out.contains("listed:second")
            && out.contains("\nactive")
            && out.contains("LoadState=not-found"),
        "{out}"
    );

    // A failure once the scope runs (the guest has no pids controller
    // for the limit): the scope is stopped, nothing is left.
    let mut failing: serde_json::Value = serde_json::from_str(&config("c3")).unwrap();
    failing["linux"]["resources"]["pids"] = serde_json::json!({"limit": 10});
    std::fs::write(bundle.join("config.json"), failing.to_string()).unwrap();
    let out = console(
        &mut s,
        "nspawn-oci --systemd-cgroup create --bundle /srv/bundle c3 </dev/null; echo rc=$?; \
         systemctl show nspawnoci-c3.scope -p LoadState --no-pager; \
         ls -d /sys/fs/cgroup/system.slice/nspawnoci-c3.scope /run/memcg/system.slice/nspawnoci-c3.scope 2>&1; \
         nspawn-oci list -q | wc -l",
    );
    assert!(
        out.contains("nspawn-oci: no pids controller for linux.resources.pids")
            && out.contains("rc=1")
            && out.contains("LoadState=not-found")
            && out.matches("No such file or directory").count() == 2
            && out.trim_end().ends_with('0'),
        "{out}"
    );

    // A foreground `run`: the process's exit status, then no unit.
    let mut run: serde_json::Value = serde_json::from_str(&config("c5")).unwrap();
    run["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "exit 3"]);
    std::fs::write(bundle.join("config.json"), run.to_string()).unwrap();
    let out = console(
        &mut s,
        "nspawn-oci --systemd-cgroup run --bundle /srv/bundle c5 </dev/null; echo rc=$?; \
         systemctl show nspawnoci-c5.scope -p LoadState --no-pager; nspawn-oci list -q | wc -l",
    );
    assert!(
        out.contains("rc=3")
            && out.contains("LoadState=not-found")
            && out.trim_end().ends_with('0'),
        "{out}"
    );

    // No bus daemon: systemd's private socket.
    let out = console(
        &mut s,
        "systemctl stop dbus.socket dbus.service; systemctl is-active dbus.service; \
         test -S /run/dbus/system_bus_socket && echo socket-left",
    );
    assert!(out.contains("inactive"), "{out}");
    std::fs::write(bundle.join("config.json"), config("c2")).unwrap();
    life(&mut s, "c2");
    // Neither: the private socket covered (in a mount namespace of the
    // command's), one line and nothing left.
    let out = console(
        &mut s,
        "unshare -m sh -c 'mount --bind /dev/null /run/systemd/private && \
           nspawn-oci --systemd-cgroup create --bundle /srv/bundle c4 </dev/null'; echo rc=$?; \
         ls -d /sys/fs/cgroup/system.slice/nspawnoci-c2.scope 2>&1; nspawn-oci list -q | wc -l",
    );
    assert!(
        out.contains("nspawn-oci: cannot reach systemd: system bus: ")
            && out.contains("; /run/systemd/private: Connection refused")
            && out.contains("rc=1")
            && out.contains("No such file or directory")
            && out.trim_end().ends_with('0'),
        "{out}"
    );
    s.send(b"poweroff\n");
    let (code, out) = s.finish(nspawn_tests::guest::T);
    assert_eq!(code, 0, "{out}");
    // The guest's nested cgroups in the test's memory cgroup: the scope's
    // path went with `delete`; its slice's and the container process's
    // first stop (`leave_v1_roots`) are all that is there.
    let left: Vec<String> = memcg
        .below()
        .iter()
        .map(|p| p.strip_prefix(&memcg.0).unwrap().display().to_string())
        .collect();
    assert!(
        left.iter()
            .all(|p| p == "system.slice" || p == "machine.slice"),
        "{left:?}"
    );
    assert!(leftovers(&t.name, &t.path).is_empty());
}
