//! A real Debian 12 tree with systemd as init, booted with `-b` on its
//! console through a pseudo terminal.

use nspawn_tests::*;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(90);
const T: Duration = Duration::from_secs(30);

fn boot(t: &DebianTree) -> PtySession {
    let mut c = nspawn(&["-b", "-D", t.dir()]);
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
