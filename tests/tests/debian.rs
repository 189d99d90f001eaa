//! A real Debian 12 tree with systemd as init, booted with `-b` on its
//! console through a pseudo terminal.

use nspawn_tests::*;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(90);
const T: Duration = Duration::from_secs(30);

fn boot(t: &DebianTree) -> PtySession {
    boot_with(t, &[])
}

fn boot_with(t: &DebianTree, extra: &[&str]) -> PtySession {
    let mut args = vec!["-b", "-D", t.dir()];
    args.extend_from_slice(extra);
    let mut c = nspawn(&args);
    c.env("TERM", "xterm");
    PtySession::spawn(c, 40, 160)
}

fn login(s: &mut PtySession) {
    s.expect("login: ", BOOT);
    s.send(b"root\n");
    s.expect("# ", T);
}

/// Run a shell command on the console and return its output.
fn console(s: &mut PtySession, cmd: &str) -> String {
    s.send(format!("{cmd}; echo END-OF''-OUTPUT\n").as_bytes());
    let out = s.expect("END-OF-OUTPUT", T);
    s.expect("# ", T);
    // Drop the echoed command line.
    let out = out
        .split_once('\n')
        .map(|x| x.1)
        .unwrap_or("")
        .replace('\r', "")
        .replace("END-OF-OUTPUT", "");
    strip_csi(&out)
}

/// Drop terminal control sequences (bash's bracketed-paste switches).
fn strip_csi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            it.next();
            for c in it.by_ref() {
                if c.is_ascii_alphabetic() || c == '~' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn boots_to_multi_user_with_no_failed_units_and_powers_off() {
    let t = DebianTree::new("deb-boot");
    let mut s = boot(&t);
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    assert_eq!(state.trim(), "running", "{state}");
    assert_eq!(
        console(&mut s, "systemctl --failed --no-legend --plain").trim(),
        ""
    );
    assert_eq!(
        console(&mut s, "systemctl is-active multi-user.target").trim(),
        "active"
    );
    assert_eq!(
        console(&mut s, "systemd-detect-virt").trim(),
        "systemd-nspawn"
    );
    assert_eq!(console(&mut s, "hostname").trim(), t.name);
    s.send(b"poweroff\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Container {} has been shut down.", t.name)),
        "{out}"
    );
    if !reference() {
        assert!(!machine_cgroup(&t.name).exists(), "cgroup left behind");
    }
}

/// Under `-U` on this host (hybrid cgroups, no systemd): the guest's
/// systemd runs as a shifted root in a delegated cgroup, the tree stays
/// owned by root inside, and it powers off cleanly.
/// (The reference cannot boot a systemd guest under -U on a host without
/// systemd: its cgroup is not delegated.)
#[test]
fn boots_under_a_user_namespace() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-userns");
    let mut s = boot_with(&t, &["-U"]);
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    let failed = console(&mut s, "systemctl --failed --no-legend --plain");
    assert_eq!(state.trim(), "running", "{state} {failed}");
    assert_eq!(failed.trim(), "");
    let map = console(&mut s, "cat /proc/self/uid_map");
    let base: u64 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(base >= 65536 && base.is_multiple_of(65536), "{map}");
    console(&mut s, "touch /root/made-inside");
    s.send(b"poweroff\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    use std::os::unix::fs::MetadataExt;
    // Root inside is the tree's owner on disk: 0 through an idmapped
    // mount, or the range's base where the tree was shifted (overlayfs,
    // as this fixture, cannot be idmapped: `auto` chowns it).
    let made = std::fs::metadata(t.path.join("root/made-inside"))
        .unwrap()
        .uid();
    let root = std::fs::metadata(&t.path).unwrap().uid();
    assert_eq!(made, root);
    assert!(root == 0 || root as u64 == base, "{root}");
}

/// With a veth link too: sysfs and /proc/sys/net are the guest's own.
#[test]
fn boots_under_a_user_namespace_with_a_veth_link() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-userns-n");
    let mut s = boot_with(&t, &["-U", "-n"]);
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    let failed = console(&mut s, "systemctl --failed --no-legend --plain");
    assert_eq!(state.trim(), "running", "{state} {failed}");
    assert_eq!(failed.trim(), "");
    let link = console(&mut s, "cat /sys/class/net/host0/operstate");
    assert_eq!(link.trim(), "up", "{link}");
    s.send(b"poweroff\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn sigterm_to_the_runner_shuts_the_guest_down_cleanly() {
    let t = DebianTree::new("deb-term");
    let mut s = boot(&t);
    s.expect("login: ", BOOT);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) };
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    // systemd went through its shutdown, not a kill.
    assert!(
        out.contains("Reached target") && out.contains("has been shut down."),
        "{out}"
    );
}

#[test]
fn reboots_from_inside_and_comes_back() {
    // The reference under --keep-unit exits 133 instead (tested with busybox).
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-reboot");
    let mut s = boot(&t);
    login(&mut s);
    let first = console(&mut s, "cat /proc/sys/kernel/random/boot_id");
    s.send(b"reboot\n");
    s.expect("is being rebooted.", T);
    login(&mut s);
    let second = console(&mut s, "cat /proc/sys/kernel/random/boot_id");
    assert_ne!(first.trim(), second.trim());
    assert_eq!(
        console(&mut s, "systemctl is-system-running --wait").trim(),
        "running"
    );
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}

#[test]
fn guest_journal_is_readable_on_the_host() {
    let t = DebianTree::new("deb-journal");
    let id = "5b1c8d2e3f4a40b5a6c7d8e9f0a1b2c3";
    let host_dir = std::path::Path::new("/var/log/journal").join(id);
    let _ = std::fs::remove_file(&host_dir);
    let uuid = format!("--uuid={id}");
    let mut c = nspawn(&["-b", "--link-journal=guest", &uuid, "-D", t.dir()]);
    c.env("TERM", "xterm");
    let mut s = PtySession::spawn(c, 40, 160);
    login(&mut s);
    console(&mut s, "echo journal-marker-42 | systemd-cat -t nspawn-test; journalctl --flush; journalctl --sync");
    // nspawnctl status shows the machine's last journal lines.
    if !reference() {
        let st = run(nspawnctl(&["status", "-n", "500", &t.name]));
        assert!(stdout(&st).contains("journal-marker-42"), "{}", stdout(&st));
        assert!(
            stdout(&st).contains(&format!("Root: {}", t.dir())),
            "{}",
            stdout(&st)
        );
    }
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
    let out = std::process::Command::new("journalctl")
        .args(["--no-pager", "-D"])
        .arg(&host_dir)
        .args(["-t", "nspawn-test", "-o", "cat"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&host_dir);
    assert!(
        text(&out.stdout).contains("journal-marker-42"),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn nspawnctl_login_and_poweroff() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-login");
    let mut console = boot(&t);
    console.expect("login: ", BOOT);
    let mut c = nspawnctl(&["login", &t.name]);
    c.env("TERM", "xterm");
    let mut s = PtySession::spawn(c, 40, 160);
    s.expect("Press ^] three times within 1s to exit session.", T);
    s.expect("login: ", T);
    s.send(b"root\n");
    s.expect("# ", T);
    s.send(b"echo $((6*7)) $(systemd-detect-virt)\n");
    s.expect("42 systemd-nspawn", T);
    s.expect("# ", T);
    s.send(&[0x1d, 0x1d, 0x1d]);
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Connection to machine {} terminated.", t.name)),
        "{out}"
    );
    let o = run(nspawnctl(&["poweroff", &t.name]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (code, out) = console.finish(T);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("has been shut down."), "{out}");
}

/// Our service template, for real: inside a booted Debian guest (systemd
/// as its init), `systemctl start nspawn@inner` boots an inner machine with
/// our runner, and `systemctl stop` shuts it down.
#[test]
fn template_unit_boots_an_inner_machine() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-outer");
    let inner = Tree::busybox("inner");
    // An init that powers off on SIGRTMIN+3 (what the runner sends on stop).
    std::fs::remove_file(inner.join("sbin")).unwrap();
    std::fs::create_dir(inner.join("sbin")).unwrap();
    std::fs::write(
        inner.join("sbin/init"),
        "#!/bin/sh\ntrap 'poweroff -f' 37\ntouch /booted\nwhile :; do sleep 0.1; done\n",
    )
    .unwrap();
    std::fs::set_permissions(
        inner.join("sbin/init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = nspawn_bin();
    let binds = [
        format!("--bind-ro={}:/usr/local/bin/nspawn", bin.display()),
        format!(
            "--bind-ro={}:/usr/local/bin/nspawnctl",
            bin.with_file_name("nspawnctl").display()
        ),
        format!(
            "--bind-ro={}:/etc/systemd/system/nspawn@.service",
            repo_root().join("units/nspawn@.service").display()
        ),
        format!("--bind={}:/var/lib/machines/inner", inner.dir()),
    ];
    let mut args = vec!["-b", "-D", t.dir()];
    args.extend(binds.iter().map(String::as_str));
    let mut c = nspawn(&args);
    c.env("TERM", "xterm");
    let mut s = PtySession::spawn(c, 40, 160);
    login(&mut s);
    let out = console(&mut s, "systemctl daemon-reload; systemctl start nspawn@inner.service; systemctl is-active nspawn@inner.service; nspawnctl list --no-legend");
    assert!(
        out.contains("active") && out.contains("inner") && out.contains("busybox"),
        "{out}"
    );
    assert!(
        wait_until(T, || inner.join("booted").exists()),
        "the inner machine did not boot"
    );
    let out = console(&mut s, "systemctl stop nspawn@inner.service; systemctl is-active nspawn@inner.service; nspawnctl list --no-legend | wc -l");
    assert!(
        out.contains("inactive") && out.trim_end().ends_with('0'),
        "{out}"
    );
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}

#[test]
fn networkd_in_the_guest_gets_its_address_by_dhcp() {
    // The reference assigns no addresses without networkd on the host.
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-dhcp");
    // Debian ships networkd disabled; its 80-container-host0.network asks
    // for DHCP on host0.
    for (dir, unit) in [
        ("multi-user.target.wants", "systemd-networkd.service"),
        ("sockets.target.wants", "systemd-networkd.socket"),
    ] {
        let d = t.path.join("etc/systemd/system").join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(format!("/lib/systemd/system/{unit}"), d.join(unit)).unwrap();
    }
    let mut c = nspawn(&["-b", "-n", "-D", t.dir()]);
    c.env("TERM", "xterm");
    let mut s = PtySession::spawn(c, 40, 160);
    login(&mut s);
    let ours = std::fs::read_to_string(format!("/run/nspawn/net/{}", t.name)).unwrap();
    let ip = ours
        .lines()
        .find_map(|l| l.strip_prefix("container_address="))
        .unwrap()
        .to_string();
    // networkd writes the lease it got; wait for it.
    let lease = console(
        &mut s,
        "for i in $(seq 100); do grep -h ^ADDRESS= /run/systemd/netif/leases/* 2>/dev/null && break; sleep 0.1; done",
    );
    assert_eq!(lease.trim(), format!("ADDRESS={ip}"), "{ours}");
    let addr = console(&mut s, "ip -4 -o addr show host0");
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}
