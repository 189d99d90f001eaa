//! A real Debian 12 tree with systemd as init, booted with `-b` on its
//! console through a pseudo terminal.

use nspawn_tests::guest::*;
use nspawn_tests::*;

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

/// A boot in the host's user namespace raises the host root's inotify
/// instance limit from the kernel's default (128, about 15 booted
/// guests) so that many guests can boot at once (the boot storm of
/// `storm.rs`); it is never lowered again.
#[test]
fn a_boot_raises_the_inotify_instance_limit() {
    if ours_only() {
        return;
    }
    const LIMIT: &str = "/proc/sys/fs/inotify/max_user_instances";
    let read = || -> u64 {
        std::fs::read_to_string(LIMIT)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // The kernel's default (the other tests need no more), put back
    // afterwards if the host had set more than we raise it to.
    let original = read();
    std::fs::write(LIMIT, "128").unwrap();
    let t = DebianTree::new("deb-inotify");
    let mut s = boot(&t);
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    assert_eq!(state.trim(), "running", "{state}");
    s.send(b"poweroff\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    let raised = read();
    if original > raised {
        std::fs::write(LIMIT, original.to_string()).unwrap();
    }
    assert_eq!(raised, 8192, "{LIMIT}");
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
    journal_reaches_the_host(
        "deb-journal",
        "5b1c8d2e3f4a40b5a6c7d8e9f0a1b2c3",
        &["--link-journal=guest"],
    );
}

/// Under a user namespace, as the service template runs machines
/// (`-U --link-journal=try-guest`), and with the journal kept on the host
/// (`host`: the host directory is handed to the container's root, so its
/// journald can write there).
#[test]
fn journal_reaches_the_host_under_a_user_namespace() {
    // Without systemd on the host the reference cannot delegate a cgroup
    // to a guest under -U, which then fails to boot (as in the other -U
    // boot tests).
    if ours_only() {
        return;
    }
    journal_reaches_the_host(
        "deb-journal-u",
        "6c2d9e3f4a5b41c6b7d8e9f0a1b2c3d4",
        &["-U", "--link-journal=try-guest"],
    );
    journal_reaches_the_host(
        "deb-journal-h",
        "7d3e0f4a5b6c42d7c8e9f0a1b2c3d4e5",
        &["-U", "--link-journal=host"],
    );
}

/// Boot with `extra`, log a marker in the guest, and find it with
/// `journalctl -D /var/log/journal/ID` on the host after power-off.
fn journal_reaches_the_host(prefix: &str, id: &str, extra: &[&str]) {
    let t = DebianTree::new(prefix);
    let host_dir = std::path::Path::new("/var/log/journal").join(id);
    let clean = || {
        let _ = std::fs::remove_file(&host_dir);
        let _ = std::fs::remove_dir_all(&host_dir);
    };
    clean();
    let uuid = format!("--uuid={id}");
    let mut args = vec!["-b", &uuid, "-D", t.dir()];
    args.extend_from_slice(extra);
    let mut c = nspawn(&args);
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
    clean();
    assert!(
        text(&out.stdout).contains("journal-marker-42"),
        "{extra:?}: {} {}",
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
    let mut binds = our_tools();
    binds.extend([
        format!(
            "--bind-ro={}:/etc/systemd/system/nspawn@.service",
            repo_root().join("units/nspawn@.service").display()
        ),
        format!("--bind={}:/var/lib/machines/inner", inner.dir()),
    ]);
    // A network of its own, so the inner machine's veth link can be made.
    binds.push("--network-veth".to_string());
    let mut s = boot_with(&t, &binds.iter().map(String::as_str).collect::<Vec<_>>());
    login(&mut s);
    // The template's own command line, but -U: no user namespace can mount
    // a fresh proc inside another container (see the unit's comment).
    let out = console(
        &mut s,
        "mkdir -p /etc/systemd/system/nspawn@.service.d; \
         printf '[Service]\\nExecStart=\\n%s\\n' \
           \"$(grep '^ExecStart=' /etc/systemd/system/nspawn@.service | sed 's/ -U / /')\" \
           > /etc/systemd/system/nspawn@.service.d/nested.conf; \
         systemctl daemon-reload; nspawnctl enable inner; nspawnctl start inner; \
         ls /etc/systemd/system/machines.target.wants/; \
         systemctl is-active nspawn@inner.service; systemctl show -p ExecStart nspawn@inner.service; \
         nspawnctl list --no-legend; ip -br link show ve-inner",
    );
    assert!(
        out.contains("active")
            && out.contains("nspawn@inner.service")
            && out.contains("--network-veth")
            && out.contains("inner")
            && out.contains("busybox")
            && out.contains("192.168.")
            && out.contains("ve-inner"),
        "{out}"
    );
    // --keep-unit: the machine stays in the service, registered there with
    // the guest's systemd-machined, its payload beside our supervisor.
    let out = console(
        &mut s,
        "machinectl show inner -p Unit -p Class --no-pager; \
         ls /sys/fs/cgroup/machine.slice/nspawn@inner.service",
    );
    assert!(
        out.contains("Unit=nspawn@inner.service")
            && out.contains("Class=container")
            && out.contains("payload")
            && out.contains("supervisor"),
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
    let out = console(
        &mut s,
        "nspawnctl disable inner; ls /etc/systemd/system/machines.target.wants/ | grep -c inner",
    );
    assert!(out.trim_end().ends_with('0'), "{out}");
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}

/// A systemd host, for real: inside a booted Debian guest (systemd as init,
/// systemd-machined installed), our runner gets the reference's scope unit
/// and registers with machined, so systemd's own tools see and end the
/// machine; `--register=no` still gets a scope with `-S` and `--property=`;
/// `--keep-unit` registers the caller's unit; a bad property or a running
/// name is refused with nothing left; a runner killed with SIGKILL leaves
/// no scope, registration or record.
#[test]
fn scopes_and_machined_registration_on_a_systemd_host() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-sd");
    let inner = Tree::busybox("sd-inner");
    let inner2 = Tree::busybox("sd-inner2");
    let mut binds = our_tools();
    binds.push(format!("--bind={}:/srv/bb", inner.dir()));
    binds.push(format!("--bind={}:/srv/bb2", inner2.dir()));
    let mut s = boot_with(&t, &binds.iter().map(String::as_str).collect::<Vec<_>>());
    login(&mut s);
    // Wait until `what` succeeds (up to thirty seconds; says so if not).
    let until = |what: &str| {
        format!(
            "w=; for i in $(seq 300); do if {what}; then w=1; break; fi; sleep 0.1; done; [ -n \"$w\" ] || echo UNTIL-TIMEOUT"
        )
    };

    // Registered: machined made machine-reg1.scope around the leader, which
    // runs in its payload cgroup.
    let out = console(
        &mut s,
        &format!(
            "(nspawn -q -D /srv/bb -M reg1 /bin/sleep 120 >/tmp/reg1.log 2>&1 &); {}; \
             machinectl show reg1 -p Unit -p Class -p RootDirectory -p Leader --no-pager; \
             echo payload=$(cat /sys/fs/cgroup/machine.slice/machine-reg1.scope/payload/cgroup.procs); \
             systemctl show machine-reg1.scope -p DevicePolicy -p Delegate --no-pager; \
             nspawnctl list --no-legend",
            // Registered first, then moved into payload by the runner.
            until(
                "machinectl show reg1 >/dev/null 2>&1 && grep -q . /sys/fs/cgroup/machine.slice/machine-reg1.scope/payload/cgroup.procs"
            )
        ),
    );
    let leader = out
        .lines()
        .find_map(|l| l.strip_prefix("Leader="))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string();
    assert!(
        out.contains("Unit=machine-reg1.scope")
            && out.contains("Class=container")
            && out.contains("RootDirectory=/srv/bb")
            && out.contains(&format!("payload={leader}"))
            && out.contains("DevicePolicy=closed")
            && out.contains("Delegate=yes")
            && out.contains("reg1"),
        "{out}"
    );
    // A second machine of that name, on another tree: refused, one line.
    let out = console(
        &mut s,
        "nspawn -q -D /srv/bb2 -M reg1 /bin/true; echo rc=$?",
    );
    assert!(
        out.contains("machine 'reg1' is already running") && out.contains("rc=1"),
        "{out}"
    );
    // systemd's own tool ends it; the runner ends and nothing stays.
    let out = console(
        &mut s,
        &format!(
            "machinectl terminate reg1; {}; machinectl list --no-legend --no-pager | wc -l; \
             systemctl is-active machine-reg1.scope; ls /run/nspawn/machines | wc -l",
            until("! nspawnctl list --no-legend | grep -q reg1")
        ),
    );
    assert!(
        out.split_whitespace().collect::<Vec<_>>() == ["0", "inactive", "0"],
        "{out}"
    );

    // Not registered: a scope of our own in the slice, with the properties.
    let out = console(
        &mut s,
        &format!(
            "(nspawn -q -D /srv/bb -M reg2 --register=no -S test-inner.slice \
               --property=CPUWeight=123 --property=TasksMax=50 --property=MemoryMax=64M \
               /bin/sleep 120 >/tmp/reg2.log 2>&1 &); {}; \
             systemctl show machine-reg2.scope -p Slice -p CPUWeight -p TasksMax -p MemoryMax --no-pager; \
             machinectl show reg2 >/dev/null 2>&1 || echo not-in-machined; \
             nspawnctl terminate reg2; {}; systemctl is-active machine-reg2.scope",
            until("systemctl -q is-active machine-reg2.scope"),
            until("! systemctl -q is-active machine-reg2.scope"),
        ),
    );
    for want in [
        "Slice=test-inner.slice",
        "CPUWeight=123",
        "TasksMax=50",
        "MemoryMax=67108864",
        "not-in-machined",
        "inactive",
    ] {
        assert!(out.contains(want), "{want} missing: {out}");
    }

    // A bad property: one line, exit 1, no unit.
    let out = console(
        &mut s,
        "nspawn -q -D /srv/bb -M reg4 --property=Frobnicate=1 /bin/true; echo rc=$?; \
         systemctl list-units --all --no-legend 'machine-reg4*' | wc -l",
    );
    assert!(
        out.contains("Unknown assignment: Frobnicate=1")
            && out.contains("rc=1")
            && out.trim_end().ends_with('0'),
        "{out}"
    );

    // The same name again at once, registered or not: each run's scope is
    // gone before its runner returns.
    let out = console(
        &mut s,
        "for i in 1 2 3 4 5; do \
           nspawn -q -D /srv/bb -M again /bin/true || echo FAILED; \
           nspawn -q --register=no -D /srv/bb -M again /bin/true || echo FAILED; \
         done; echo looped",
    );
    assert!(out.contains("looped") && !out.contains("FAILED"), "{out}");

    // Concurrent starts of one name, in each placement mode (a registered
    // scope, our own scope, --keep-unit in a service): one runs, the
    // others are refused in one line, and nothing of any of them stays.
    let out = console(
        &mut s,
        "rm -f /tmp/conc-*; for mode in reg noreg keep; do \
           for i in 1 2 3 4; do \
             case $mode in \
               reg) (nspawn -q -x -D /srv/bb -M conc /bin/sleep 3 >/tmp/conc-$mode-$i.log 2>&1; echo $? >/tmp/conc-$mode-$i.rc) & ;; \
               noreg) (nspawn -q -x --register=no -D /srv/bb -M conc /bin/sleep 3 >/tmp/conc-$mode-$i.log 2>&1; echo $? >/tmp/conc-$mode-$i.rc) & ;; \
               keep) (systemd-run -q --wait --unit=conc$i -p Delegate=yes nspawn -q -x --keep-unit -D /srv/bb -M conc /bin/sleep 3 >/tmp/conc-$mode-$i.log 2>&1; \
                      echo $? >/tmp/conc-$mode-$i.rc; journalctl -q -b -u conc$i >>/tmp/conc-$mode-$i.log) & ;; \
             esac; \
           done; wait; \
           echo $mode ran=$(cat /tmp/conc-$mode-*.rc | grep -c '^0$') refused=$(grep -l \"machine 'conc' is already running\" /tmp/conc-$mode-*.log | wc -l); \
         done; \
         echo left=$(machinectl list --no-legend --no-pager | wc -l)$(ls /run/nspawn/machines /run/nspawn/names | grep -c conc)",
    );
    for want in [
        "reg ran=1 refused=3",
        "noreg ran=1 refused=3",
        "keep ran=1 refused=3",
        "left=00",
    ] {
        assert!(out.contains(want), "{want} missing: {out}");
    }

    // --keep-unit in a service: registered in that unit, payload beside
    // supervisor; stopping the service ends the machine.
    let out = console(
        &mut s,
        &format!(
            "systemd-run -q --unit=held -p Delegate=yes nspawn -q --keep-unit -D /srv/bb -M reg3 /bin/sleep 120; {}; \
             machinectl show reg3 -p Unit --no-pager; ls /sys/fs/cgroup/system.slice/held.service; \
             systemctl stop held.service; machinectl list --no-legend --no-pager | wc -l",
            until("machinectl show reg3 >/dev/null 2>&1")
        ),
    );
    assert!(
        out.contains("Unit=held.service")
            && out.contains("payload")
            && out.contains("supervisor")
            && out.trim_end().ends_with('0'),
        "{out}"
    );

    // SIGKILL of the runner (the service's main process): the container
    // dies with it; no scope, registration or record stays.
    let out = console(
        &mut s,
        &format!(
            "systemd-run -q --unit=doomed -p KillMode=process nspawn -q -D /srv/bb -M reg5 /bin/sleep 120; {}; \
             systemctl kill -s KILL --kill-whom=main doomed.service; {}; \
             machinectl list --no-legend --no-pager | wc -l; systemctl is-active machine-reg5.scope; \
             {}; ls /run/nspawn/machines | wc -l",
            until("machinectl show reg5 >/dev/null 2>&1"),
            // machined forgets the machine when it hears the unit is gone.
            until(
                "! systemctl -q is-active machine-reg5.scope && [ -z \"$(machinectl list --no-legend --no-pager)\" ]"
            ),
            until("[ -z \"$(ls /run/nspawn/machines)\" ]"),
        ),
    );
    assert!(
        out.split_whitespace().collect::<Vec<_>>() == ["0", "inactive", "0"],
        "{out}"
    );
    // And once more, starting the same name again at once: the new start
    // waits for the dead runner's machine to be gone, then registers.
    let out = console(
        &mut s,
        &format!(
            "systemd-run -q --unit=doomed2 -p KillMode=process nspawn -q -D /srv/bb -M reg5 /bin/sleep 120; {}; \
             systemctl kill -s KILL --kill-whom=main doomed2.service; {}; \
             nspawn -q -D /srv/bb -M reg5 /bin/sh -c 'cat /proc/self/cgroup'; echo rc=$?; \
             {}; machinectl list --no-legend --no-pager | wc -l",
            until("machinectl show reg5 >/dev/null 2>&1"),
            // The runner is gone (its tree lock with it); its machine may
            // not be yet.
            until("! systemctl -q is-active doomed2.service"),
            until("[ -z \"$(machinectl list --no-legend --no-pager)\" ]"),
        ),
    );
    assert!(
        out.contains("0::/") && out.contains("rc=0") && out.trim_end().ends_with('0'),
        "{out}"
    );

    // A reboot from inside: the second run gets a scope of its own again.
    let out = console(
        &mut s,
        "nspawn -q -D /srv/bb -M reg6 /bin/sh -c \
           'if [ -e /rebooted ]; then cat /proc/self/cgroup; exit 7; fi; touch /rebooted; reboot -f'; \
         echo rc=$?; rm -f /srv/bb/rebooted; machinectl list --no-legend --no-pager | wc -l",
    );
    assert!(
        out.contains("0::/") && out.contains("rc=7") && out.trim_end().ends_with('0'),
        "{out}"
    );

    // No systemd-machined on this host (not installed): --register=yes
    // says so in one line and the machine still gets its scope.
    let out = console(
        &mut s,
        "mv /usr/share/dbus-1/system-services/org.freedesktop.machine1.service /root/; \
         busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig; \
         systemctl stop systemd-machined; \
         nspawn -D /srv/bb -M reg7 --register=yes /bin/sh -c 'cat /proc/1/cgroup'; echo rc=$?; \
         echo started=$(journalctl -q -b -u machine-reg7.scope | grep -c 'Started machine-reg7.scope'); \
         nspawn -q -D /srv/bb -M reg8 /bin/true 2>&1 | wc -l",
    );
    assert!(
        out.contains("not registered with systemd-machined")
            && out.contains("0::/")
            && out.contains("started=1")
            && out.contains("rc=0")
            && out.trim_end().ends_with('0'),
        "{out}"
    );
    // No system bus at all: a cgroup of our own, removed afterwards.
    let out = console(
        &mut s,
        "systemctl stop dbus.socket dbus.service; \
         nspawn -D /srv/bb -M reg9 /bin/sh -c 'cat /proc/1/cgroup'; echo rc=$?; \
         ls /sys/fs/cgroup/machine.slice | grep -c reg9",
    );
    assert!(
        out.contains("the machine gets a cgroup of its own")
            && out.contains("0::/")
            && out.contains("rc=0")
            && out.trim_end().ends_with('0'),
        "{out}"
    );
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}

/// machinectl on a systemd host drives a booted guest we registered the
/// way it drives the reference's: `machinectl shell` gets a shell inside
/// through machined (which enters the leader's namespaces and asks the
/// guest's own systemd over its bus), and `machinectl poweroff` ends it.
#[test]
fn machinectl_shell_and_poweroff_reach_a_booted_guest() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("deb-mctl");
    let lower = std::env::var("NSPAWN_TEST_DEBIAN")
        .unwrap_or_else(|_| "/var/cache/nspawn-rs/debian12".into());
    let mut binds = our_tools();
    binds.push(format!("--bind-ro={lower}:/srv/deb"));
    let mut s = boot_with(&t, &binds.iter().map(String::as_str).collect::<Vec<_>>());
    login(&mut s);
    let out = console(
        &mut s,
        "(nspawn -q -b -x -D /srv/deb -M inner --console=passive >/tmp/inner.log 2>&1 &); \
         w=; for i in $(seq 300); do \
           N=$(machinectl list --no-legend --no-pager | awk '/^inner/ {print $1}'); \
           [ -n \"$N\" ] && systemctl -q -M \"$N\" is-system-running --wait >/dev/null 2>&1 && \
             L=$(machinectl show -p Leader --value \"$N\") && [ -S /proc/$L/root/run/dbus/system_bus_socket ] && { w=1; break; }; \
           sleep 0.1; done; [ -n \"$w\" ] || echo UNTIL-TIMEOUT; \
         machinectl shell \"$N\" /bin/sh -c 'echo hi-from-$(hostname)'; \
         machinectl poweroff \"$N\"; \
         for i in $(seq 300); do [ -z \"$(machinectl list --no-legend --no-pager)\" ] && break; sleep 0.1; done; \
         echo machines=$(machinectl list --no-legend --no-pager | wc -l) ours=$(nspawnctl list --no-legend | wc -l)",
    );
    assert!(!out.contains("UNTIL-TIMEOUT"), "{out}");
    assert!(out.contains("hi-from-inner"), "{out}");
    assert!(out.contains("machines=0 ours=0"), "{out}");
    s.send(b"poweroff\n");
    assert_eq!(s.finish(BOOT).0, 0);
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
        "for i in $(seq 300); do grep -h ^ADDRESS= /run/systemd/netif/leases/* 2>/dev/null && break; sleep 0.1; done",
    );
    assert_eq!(lease.trim(), format!("ADDRESS={ip}"), "{ours}");
    let addr = console(&mut s, "ip -4 -o addr show host0");
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    s.send(b"poweroff\n");
    assert_eq!(s.finish(T).0, 0);
}

/// A Debian 12 tree published as a signed tarball on a local HTTP server,
/// pulled with the default `--verify=signature` and booted by name: the
/// whole path a user takes with `nspawnctl pull-tar URL NAME && nspawn -M
/// NAME -b`.
#[test]
fn pulled_debian_tree_boots_by_name() {
    if reference() {
        return;
    }
    let t = DebianTree::new("deb-src");
    // A file capability (as ping's) that must survive the round trip.
    let capped = t.path.join("usr/local/bin/capped");
    std::fs::copy(t.path.join("usr/bin/true"), &capped).unwrap();
    ok(run({
        let mut c = std::process::Command::new("setcap");
        c.arg("cap_net_raw+ep").arg(&capped);
        c
    }));
    let root = std::path::Path::new("/var/tmp/nspawn-tests").join(unique("deb-pull"));
    let _gone = RemoveOnDrop(root.clone());
    let (srv, pool) = (root.join("srv"), root.join("pool"));
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::create_dir_all(&pool).unwrap();
    let tar = srv.join("debian.tar");
    ok(run({
        let mut c = std::process::Command::new("tar");
        c.args([
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&t.path)
        .arg(".");
        c
    }));
    let sum = run({
        let mut c = std::process::Command::new("sha256sum");
        c.arg(&tar);
        c
    });
    let sum = text(&sum.stdout);
    let sums = srv.join("SHA256SUMS");
    std::fs::write(&sums, format!("{} *debian.tar\n", &sum[..64])).unwrap();
    let key = GpgKey::new(&root, "publisher");
    key.sign(&sums, &srv.join("SHA256SUMS.gpg"), false);
    let http = HttpDir::start(&srv, None);

    let name = unique("debpull");
    let mut c = nspawnctl(&[
        "pull-tar",
        &format!("--keyring={}", key.pubring.display()),
        &http.url("debian.tar"),
        &name,
    ]);
    c.env("NSPAWN_IMAGE_PATH", &pool);
    ok(run(c));
    let image = pool.join(&name);
    let caps = run({
        let mut c = std::process::Command::new("getcap");
        c.arg(image.join("usr/local/bin/capped"));
        c
    });
    assert!(text(&caps.stdout).contains("cap_net_raw"), "{caps:?}");

    let mut c = nspawn(&["-b", "-M", &name]);
    c.env("TERM", "xterm").env("NSPAWN_IMAGE_PATH", &pool);
    let mut s = PtySession::spawn(c, 40, 160);
    login(&mut s);
    let state = console(&mut s, "systemctl is-system-running --wait");
    assert_eq!(state.trim(), "running", "{state}");
    assert_eq!(console(&mut s, "hostname").trim(), name);
    s.send(b"poweroff\n");
    let (code, out) = s.finish(T);
    assert_eq!(code, 0, "{out}");
    assert_eq!(wait_clean(&name, &image), Vec::<String>::new());
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
