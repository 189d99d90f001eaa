//! The runner against a busybox tree: what the payload gets and how it ends.

use nspawn_tests::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn exit_status_is_the_payloads() {
    let t = Tree::busybox("exit");
    for (code, want) in [(0, 0), (3, 3), (255, 255), (133, 1)] {
        let o = run(nspawn(&[
            "-D",
            t.dir(),
            "/bin/sh",
            "-c",
            &format!("exit {code}"),
        ]));
        assert_eq!(o.status.code(), Some(want), "exit {code}: {}", stderr(&o));
        let msg = if code == 0 {
            format!("Container {} exited successfully.", t.name)
        } else {
            format!("Container {} failed with error code {code}.", t.name)
        };
        assert!(stderr(&o).contains(&msg), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("Spawning container {} on {}.", t.name, t.dir())));
    }
    // -q silences all of it.
    let o = run(nspawn(&["-q", "-D", t.dir(), "/bin/sh", "-c", "exit 3"]));
    assert_eq!(
        (o.status.code(), host_quirks_removed(&stderr(&o)).as_str()),
        (Some(3), "")
    );
}

#[test]
fn power_off_and_reboot_from_inside() {
    let t = Tree::busybox("power");
    let o = t.sh(&[], "poweroff -f");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The harness always passes --keep-unit to the reference, so 133 is
    // comparable; the restart itself is ours only (below).
    let o = t.sh(&["--keep-unit"], "reboot -f");
    assert_eq!(o.status.code(), Some(133), "{}", stderr(&o));
}

#[test]
fn reboot_restarts_the_container() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("reboot");
    // First boot asks for a reboot; the second ends with 7.
    let o = t.sh(
        &[],
        "echo boot >> /boots; [ $(wc -l < /boots) -ge 2 ] && exit 7; reboot -f",
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(t.join("boots")).unwrap(),
        "boot\nboot\n"
    );
}

#[test]
fn pid1_and_as_pid2() {
    let t = Tree::busybox("pid");
    assert_eq!(ok(t.sh(&[], "echo $$")).trim(), "1");
    let out = ok(t.sh(&["-a"], "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"));
    assert!(out.starts_with("2\n"), "{out}");
    assert_eq!(t.sh(&["-a"], "exit 5").status.code(), Some(5));
    // The payload killed by a signal: 255, as the reference's stub.
    assert_eq!(t.sh(&["-a"], "kill -9 $$").status.code(), Some(255));
    // The stub reaps orphans: a zombie-making payload still exits cleanly.
    let out = ok(t.sh(
        &["-a"],
        "(sleep 0.1 &) ; sleep 0.3; for i in $(seq 50); do [ $(ps -o stat | grep -c '^Z') = 0 ] && break; sleep 0.1; done; ps -o stat,comm | grep -c '^Z' || true",
    ));
    assert_eq!(out.trim(), "0");
}

#[test]
fn as_pid2_forwards_signals_to_the_payload() {
    if ours_only() {
        return;
    }
    // The stub passes SIGUSR1 on to PID 2 (the reference's stub drops it).
    let t = Tree::busybox("fwd");
    let o = t.sh(
        &["-a"],
        "trap 'echo got-usr1; exit 9' USR1; kill -USR1 1; sleep 5 & wait",
    );
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    assert_eq!(stdout(&o), "got-usr1\n");
}

#[test]
fn environment_is_built_not_inherited() {
    let t = Tree::busybox("env");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "-E",
        "FOO=1",
        "-E",
        "BAR",
        "-E",
        "PATH=/custom:/usr/bin",
        "/usr/bin/env",
    ]);
    c.env("SECRET", "hunter2")
        .env("BAR", "from-caller")
        .env("TERM", "xterm-256color")
        .env("LANG", "de_DE.UTF-8");
    let out = ok(run(c));
    let keys: BTreeSet<&str> = out.lines().map(|l| l.split('=').next().unwrap()).collect();
    let want: BTreeSet<&str> = [
        "PATH",
        "container",
        "TERM",
        "HOME",
        "USER",
        "LOGNAME",
        "container_uuid",
        "NOTIFY_SOCKET",
        "LANG",
        "container_host_id",
        "container_host_version_id",
        "FOO",
        "BAR",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want, "{out}");
    for line in [
        "PATH=/custom:/usr/bin",
        "container=systemd-nspawn",
        "TERM=xterm-256color",
        "HOME=/root",
        "USER=root",
        "LANG=C.UTF-8",
        "NOTIFY_SOCKET=/run/host/notify",
        "FOO=1",
        "BAR=from-caller",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} missing: {out}");
    }
    assert!(!out.contains("hunter2"));
}

#[test]
fn identity_hostname_machine_and_uuid() {
    let t = Tree::busybox("ident");
    assert_eq!(ok(t.sh(&[], "hostname")).trim(), t.name);
    assert_eq!(ok(t.sh(&["-M", "other"], "hostname")).trim(), "other");
    assert_eq!(
        ok(t.sh(&["-M", "other", "--hostname=xyz"], "hostname")).trim(),
        "xyz"
    );
    let uuid = "0123456789abcdef0123456789abcdef";
    let out = ok(t.sh(
        &["--uuid", uuid],
        "echo $container_uuid; cat /run/host/container-uuid",
    ));
    assert_eq!(
        out,
        "01234567-89ab-cdef-0123-456789abcdef\n01234567-89ab-cdef-0123-456789abcdef\n"
    );
    // The tree's own machine id wins over --uuid.
    std::fs::write(
        t.join("etc/machine-id"),
        "fedcba9876543210fedcba9876543210\n",
    )
    .unwrap();
    let out = ok(t.sh(&["--uuid", uuid], "echo $container_uuid"));
    assert_eq!(out, "fedcba98-7654-3210-fedc-ba9876543210\n");
    // A fresh boot id each time, not the host's.
    let a = ok(t.sh(&[], "cat /proc/sys/kernel/random/boot_id"));
    let b = ok(t.sh(&[], "cat /proc/sys/kernel/random/boot_id"));
    let host = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert!(a != b && a != host && a.len() == 37, "{a} {b} {host}");
}

#[test]
fn user_chdir_and_groups() {
    let t = Tree::busybox("user");
    std::fs::remove_dir_all(t.join("home/tester")).unwrap();
    let out = ok(t.sh(
        &["-u", "tester"],
        "id; pwd; echo $HOME $USER; grep ^Cap /proc/self/status",
    ));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "uid=1000(tester) gid=1000(tester) groups=1000(tester),1001(extra)"
    );
    assert_eq!(lines.next().unwrap(), "/");
    assert_eq!(lines.next().unwrap(), "/home/tester tester");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    let meta = std::fs::metadata(t.join("home/tester")).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta)
        ),
        (1000, 1000)
    );
    assert_eq!(ok(t.sh(&["--chdir=/tmp", "-u", "tester"], "pwd")), "/tmp\n");
    let o = t.sh(&["-u", "nosuch"], "true");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn no_command_runs_a_login_shell_in_home() {
    let t = Tree::busybox("shell");
    let mut c = nspawn(&["-q", "--pipe", "-D", t.dir()]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pwd; echo $0\n")
        .unwrap();
    let o = wait_output(child, Duration::from_secs(30));
    assert_eq!(ok(o), "/root\n-sh\n");
}

#[test]
fn mount_table_matches_the_reference() {
    let t = Tree::busybox("mounts");
    let out = ok(t.sh(&[], "cat /proc/self/mountinfo"));
    let mounts: Vec<(String, String, String, String)> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|&x| x == "-").unwrap();
            (
                f[4].to_string(),
                f[5].to_string(),
                f[sep + 1].to_string(),
                f[sep + 3].to_string(),
            )
        })
        .collect();
    let has = |opts: &str, want: &str| want.split(',').all(|w| opts.split(',').any(|o| o == w));
    for (path, fstype, opts, super_opts) in [
        ("/proc", "proc", "rw,nosuid,nodev,noexec", ""),
        ("/proc/sys", "proc", "ro,nosuid,nodev,noexec", ""),
        ("/sys", "sysfs", "ro,nosuid,nodev,noexec", ""),
        ("/dev", "tmpfs", "rw,nosuid", "mode=755"),
        (
            "/dev/pts",
            "devpts",
            "rw,nosuid,noexec",
            "gid=5,mode=620,ptmxmode=666",
        ),
        ("/dev/shm", "tmpfs", "rw,nosuid,nodev", ""),
        ("/dev/mqueue", "mqueue", "rw,nosuid,nodev,noexec", ""),
        ("/run", "tmpfs", "rw,nosuid,nodev", "mode=755"),
        ("/run/host", "tmpfs", "ro,nosuid,nodev,noexec", ""),
        ("/tmp", "tmpfs", "rw,nosuid,nodev", ""),
        ("/proc/sys/kernel/random/boot_id", "tmpfs", "ro", ""),
    ] {
        // The reference shows some mounts twice (propagated); one must fit.
        let fits = mounts.iter().any(|m| {
            m.0 == path
                && m.2 == fstype
                && has(&m.1, opts)
                && (super_opts.is_empty() || has(&m.3, super_opts))
        });
        assert!(
            fits,
            "no {fstype} on {path} with {opts} {super_opts}: {out}"
        );
    }
    // Nothing of the host's own mounts is visible.
    let allowed = [
        "/",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/tmp",
        "/etc/localtime",
        "/etc/resolv.conf",
    ];
    for m in &mounts {
        assert!(
            allowed
                .iter()
                .any(|a| m.0 == *a || m.0.starts_with(&format!("{a}/")) && *a != "/"),
            "unexpected {m:?}"
        );
    }
}

#[test]
fn dev_has_exactly_the_usual_nodes() {
    let t = Tree::busybox("dev");
    let out = ok(t.sh(
        &[],
        "cd /dev && ls -1A; echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c",
    ));
    let names: BTreeSet<&str> = out.lines().take_while(|l| *l != "null-ok").collect();
    let want: BTreeSet<&str> = [
        "char", "fd", "full", "mqueue", "net", "null", "ptmx", "pts", "random", "shm", "stderr",
        "stdin", "stdout", "tty", "urandom", "zero",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, want, "{out}");
    assert!(out.contains("null-ok\n4\n"), "{out}");
    let out = ok(t.sh(&[], "ls -l /dev/net/tun /dev/ptmx; readlink /dev/fd"));
    assert!(
        out.contains("10, 200") && out.contains("pts/ptmx") && out.contains("/proc/self/fd"),
        "{out}"
    );
    // No console with --pipe; one with a pty (read-only console here).
    assert_eq!(
        ok(t.sh(&[], "test -e /dev/console && echo yes || echo no")),
        "no\n"
    );
    let out = ok(run(nspawn(&[
        "-q",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "test -c /dev/console && tty",
    ])));
    assert!(out.starts_with("/dev/"), "{out}");
}

#[test]
fn capability_bounding_set() {
    let t = Tree::busybox("caps");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = u64::from_str_radix(
        host.lines().find(|l| l.starts_with("CapBnd:")).unwrap()[7..].trim(),
        16,
    )
    .unwrap();
    for (extra, set) in [
        (&[][..], 0xfdecafffu64),
        (&["--private-network"][..], 0xfdecbfff),
    ] {
        let out = ok(t.sh(extra, "grep CapBnd /proc/self/status"));
        let bnd = u64::from_str_radix(out.trim()[7..].trim(), 16).unwrap();
        assert_eq!(bnd, set & host_bnd, "{out}");
    }
}

#[test]
fn cgroup_is_the_containers_own_and_removed_after() {
    // The reference gives a tree without systemd read-only v1 hierarchies.
    if ours_only() {
        return;
    }
    let t = Tree::busybox("cg");
    let out = ok(t.sh(&[], "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | sed 's/.* - \\([^ ]*\\) .*/\\1/'; grep ^0:: /proc/self/cgroup; touch /sys/fs/cgroup/x 2>/dev/null; mkdir /sys/fs/cgroup/sub && echo mkdir-ok"));
    assert_eq!(out, "cgroup2\n0::/\nmkdir-ok\n");
    assert!(!machine_cgroup(&t.name).exists(), "cgroup left behind");
}

#[test]
fn descriptors_do_not_leak_into_the_payload() {
    let t = Tree::busybox("fds");
    let mut c = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/ls", "/proc/self/fd"]);
    let leaked = std::fs::File::open("/etc/hostname").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    // SAFETY: dup2 between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
            libc::dup2(raw, 7);
            Ok(())
        });
    }
    let out = ok(run(c));
    // ls itself holds one descriptor for the directory it reads.
    let fds: Vec<u32> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert!(fds.len() <= 4 && !fds.contains(&7), "{fds:?}");
}

#[test]
fn host_and_container_mounts_stay_apart() {
    let t = Tree::busybox("leak");
    std::fs::create_dir_all(t.join("mnt/late")).unwrap();
    let mut c = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/sh", "-c",
        "mount -t tmpfs inner /mnt && touch /mnt/x /ready; while [ ! -e /flag ]; do sleep 0.05; done; grep -c ' /mnt/late ' /proc/self/mountinfo"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || t
        .join("ready")
        .exists()));
    // A mount the host makes now inside the tree must not show up inside.
    nix::mount::mount(
        Some("tmpfs"),
        &t.join("mnt/late"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(t.join("flag"), "").unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    nix::mount::umount2(&t.join("mnt/late"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(stdout(&o).trim(), "0", "{}", stderr(&o));
    assert!(
        !t.join("mnt/x").exists(),
        "the container's mount leaked to the host"
    );
    assert!(
        mounts_under(&t.path).is_empty(),
        "{:?}",
        mounts_under(&t.path)
    );
}

#[test]
fn notifies_the_service_manager() {
    let t = Tree::busybox("notify");
    let sock_path = std::path::PathBuf::from(format!("/tmp/nspawn-notify-{}", unique("s")));
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut c = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/true"]);
    c.env("NOTIFY_SOCKET", &sock_path);
    ok(run(c));
    let mut msgs = vec![];
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        msgs.push(text(&buf[..n]));
    }
    std::fs::remove_file(&sock_path).unwrap();
    let all = msgs.join("\n");
    assert!(
        all.contains("READY=1") && all.contains("STOPPING=1"),
        "{msgs:?}"
    );
}
