//! The file system options, and trees that try to make us write or mount
//! outside them.

use nspawn_tests::*;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Compare two listings, naming only what differs.
#[track_caller]
fn same(a: &[String], b: &[String], what: &str) {
    let gone: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
    let new: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "{what}: gone {gone:?}, new {new:?}"
    );
}

fn listing(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .arg("-printf")
        .arg("%p %s %m %U\\n")
        .output()
        .unwrap();
    let mut v: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    v.sort();
    v
}

/// A scratch directory on the host, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(prefix: &str) -> Scratch {
        let p = Path::new("/var/tmp/nspawn-tests").join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ephemeral_never_writes_the_tree() {
    let t = Tree::busybox("eph");
    let before = listing(&t.path);
    let out = ok(t.sh(
        &["-x"],
        "hostname; echo data > /etc/new; rm /etc/passwd; cat /etc/new",
    ));
    let mut lines = out.lines();
    let host = lines.next().unwrap();
    assert!(
        host.starts_with(&format!("{}-", t.name)) && host.len() == t.name.len() + 17,
        "{host}"
    );
    assert_eq!(lines.next(), Some("data"));
    same(&before, &listing(&t.path), "the tree changed");
}

#[test]
fn ephemeral_instances_share_a_tree() {
    let t = Tree::busybox("ephshare");
    let m = marker();
    let mut c = nspawn(&["-q", "--pipe", "-x", "-D", t.dir(), "/bin/sleep", &m]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut first = c.spawn().unwrap();
    // Running (so holding its lock on the tree) until we end it.
    let cmd = format!("/bin/sleep {m}");
    assert!(wait_until(Duration::from_secs(10), || {
        processes_exactly(&cmd).len() == 1
    }));
    ok(t.sh(&["-x"], "true"));
    // A writer is still refused while they run: overlayfs must not see its
    // lower layer change (the reference copies the tree instead).
    let o = t.sh(&[], "true");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGTERM) };
    first.wait().unwrap();
    if ours_only() {
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is currently busy"));
}

#[test]
fn ephemeral_runner_killed_leaves_nothing() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("ephkill");
    let before = listing(&t.path);
    // Entries next to the tree that carry its name (other tests share the
    // directory).
    let beside = || -> Vec<String> {
        std::fs::read_dir(t.path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&t.name))
            .collect()
    };
    let parent_before = beside();
    let m = marker();
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-x",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        &format!("echo x > /junk; exec sleep {m}"),
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("sleep {m}")
    )
    .is_empty()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(wait_until(Duration::from_secs(5), || processes_exactly(
        &format!("sleep {m}")
    )
    .is_empty()));
    assert!(mounts_under(&t.path).is_empty());
    same(&before, &listing(&t.path), "tree");
    assert_eq!(beside(), parent_before, "something left next to the tree");
    ok(t.sh(&["-x"], "test ! -e /junk"));
}

#[test]
fn read_only_and_volatile() {
    let t = Tree::busybox("ro");
    let before = listing(&t.path);
    let out = ok(t.sh(
        &["--read-only"],
        "touch /x 2>/dev/null || echo root-ro; touch /tmp/x && echo tmp-rw",
    ));
    assert_eq!(out, "root-ro\ntmp-rw\n");
    let out = ok(t.sh(
        &["--volatile=state"],
        "touch /x 2>/dev/null || echo root-ro; touch /var/x && echo var-rw",
    ));
    assert_eq!(out, "root-ro\nvar-rw\n");
    let out = ok(t.sh(&["--volatile=overlay"], "touch /x && echo root-rw"));
    assert_eq!(out, "root-rw\n");
    let out = ok(t.sh(&["--volatile=yes"], "touch /x && echo root-rw; touch /usr/x 2>/dev/null || echo usr-ro; test -e /etc/passwd || echo empty-etc"));
    assert_eq!(out, "root-rw\nusr-ro\nempty-etc\n");
    if !reference() {
        // The reference writes /etc/localtime even with --volatile=state.
        same(&before, &listing(&t.path), "the tree changed");
    }
}

#[test]
fn volatile_yes_needs_merged_usr() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("split");
    std::fs::remove_file(t.join("bin")).unwrap();
    std::fs::create_dir(t.join("bin")).unwrap();
    std::fs::copy(t.join("usr/bin/busybox"), t.join("bin/sh")).unwrap();
    let o = t.sh(&["--volatile=yes"], "true");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("merged /usr"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);
}

#[test]
fn binds_files_directories_and_options() {
    let t = Tree::busybox("bind");
    let host = Scratch::new("bindsrc");
    std::fs::create_dir_all(host.0.join("dir/sub")).unwrap();
    std::fs::write(host.0.join("dir/f"), "hostfile").unwrap();
    std::fs::write(host.0.join("file"), "single").unwrap();
    std::fs::create_dir_all(t.join("srv/inside")).unwrap();
    std::fs::write(t.join("srv/inside/g"), "treefile").unwrap();
    let b1 = format!("--bind={}/dir:/mnt/deep/dir", host.s());
    let b2 = format!("--bind-ro={}/file:/tmp/sub/file", host.s());
    let b3 = "--bind=+/srv/inside:/run/inside".to_string();
    let b4 = "--bind=:/scratch".to_string();
    let out = ok(t.sh(&[&b1, &b2, &b3, &b4],
        "cat /mnt/deep/dir/f /tmp/sub/file /run/inside/g; echo; echo w > /mnt/deep/dir/new; \
         echo x 2>/dev/null > /tmp/sub/file || echo file-ro; ls -A /scratch | wc -l; touch /scratch/t && echo scratch-rw"));
    assert_eq!(out, "hostfilesingletreefile\nfile-ro\n0\nscratch-rw\n");
    assert_eq!(
        std::fs::read_to_string(host.0.join("dir/new")).unwrap(),
        "w\n"
    );
    // rbind (default) carries submounts along; norbind does not.
    nix::mount::mount(
        Some("tmpfs"),
        &host.0.join("dir/sub"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(host.0.join("dir/sub/m"), "").unwrap();
    let out = ok(t.sh(
        &[
            &format!("--bind={}/dir:/a", host.s()),
            &format!("--bind={}/dir:/b:norbind", host.s()),
        ],
        "ls /a/sub; echo -; ls /b/sub",
    ));
    nix::mount::umount2(&host.0.join("dir/sub"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(out, "m\n-\n");
}

#[test]
fn tmpfs_overlay_and_inaccessible() {
    let t = Tree::busybox("ovl");
    let host = Scratch::new("ovlsrc");
    for d in ["low1", "low2", "up"] {
        std::fs::create_dir_all(host.0.join(d)).unwrap();
    }
    std::fs::write(host.0.join("low1/a"), "1").unwrap();
    std::fs::write(host.0.join("low2/a"), "2").unwrap();
    std::fs::write(host.0.join("low1/b"), "b").unwrap();
    let h = host.s();
    let out = ok(t.sh(
        &[
            "--tmpfs=/data:mode=0700,size=1m",
            &format!("--overlay={h}/low1:{h}/low2:{h}/up:/ov"),
            &format!("--overlay={h}/low1::/ovtmp"),
            &format!("--overlay-ro={h}/low1:{h}/low2:/ovro"),
        ],
        "stat -c %a /data; cat /ov/a /ov/b; echo; echo new > /ov/c; echo t > /ovtmp/t; \
        touch /ovro/x 2>/dev/null || echo ovro-ro",
    ));
    assert_eq!(out, "700\n2b\novro-ro\n");
    assert_eq!(
        std::fs::read_to_string(host.0.join("up/c")).unwrap(),
        "new\n"
    );
    assert!(!host.0.join("low1/t").exists() && !host.0.join("low1/c").exists());
}

#[test]
fn inaccessible_paths_are_empty_and_unwritable() {
    // The reference binds /run/systemd/inaccessible/* from the host, which
    // this host (without systemd) lacks; ours needs nothing from the host.
    if ours_only() {
        return;
    }
    let t = Tree::busybox("inacc");
    let out = ok(t.sh(&["--inaccessible=/home", "--inaccessible=/etc/os-release"],
        "ls -A /home | wc -l; touch /home/x 2>/dev/null || echo home-ro; \
         test -s /etc/os-release || echo empty-file; echo x 2>/dev/null > /etc/os-release || echo file-ro"));
    assert_eq!(out, "0\nhome-ro\nempty-file\nfile-ro\n");
    assert!(t.join("home/tester").exists());
}

#[test]
fn resolv_conf_and_timezone_modes() {
    let t = Tree::busybox("etc");
    let host_resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    ok(t.sh(&["--resolv-conf=copy-host"], "true"));
    assert_eq!(
        std::fs::read(t.join("etc/resolv.conf")).unwrap(),
        host_resolv
    );
    // Unchanged since the last start: not written again (its inode's
    // change time stays); different: replaced.
    let ctime = |t: &Tree| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(t.join("etc/resolv.conf")).unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let before = ctime(&t);
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(t.sh(&["--resolv-conf=copy-host"], "true"));
    assert_eq!(ctime(&t), before);
    std::fs::write(t.join("etc/resolv.conf"), b"nameserver 192.0.2.1\n").unwrap();
    ok(t.sh(&["--resolv-conf=copy-host"], "true"));
    assert_eq!(
        std::fs::read(t.join("etc/resolv.conf")).unwrap(),
        host_resolv
    );
    let out = ok(t.sh(&["--resolv-conf=bind-host"], "grep -c ' /etc/resolv.conf ' /proc/self/mountinfo; echo x > /etc/resolv.conf 2>/dev/null || echo ro"));
    assert_eq!(out, "1\nro\n");
    ok(t.sh(&["--resolv-conf=delete"], "true"));
    assert!(!t.join("etc/resolv.conf").exists());
    ok(t.sh(&["--resolv-conf=off", "--timezone=off"], "true"));
    assert!(!t.join("etc/resolv.conf").exists());
    if Path::new("/etc/localtime").exists() {
        let host_tz = std::fs::read("/etc/localtime").unwrap();
        ok(t.sh(&["--timezone=copy"], "true"));
        assert_eq!(std::fs::read(t.join("etc/localtime")).unwrap(), host_tz);
        let out = ok(t.sh(
            &["--timezone=bind"],
            "grep -c ' /etc/localtime ' /proc/self/mountinfo",
        ));
        assert_eq!(out, "1\n");
        ok(t.sh(&["--timezone=delete"], "true"));
        assert!(std::fs::symlink_metadata(t.join("etc/localtime")).is_err());
    }
    let o = run(nspawn(&["--resolv-conf=help"]));
    assert!(
        stdout(&o).contains("copy-host") && stdout(&o).contains("bind-stub"),
        "{}",
        stdout(&o)
    );
    let o = run(nspawn(&["--timezone=help"]));
    assert!(stdout(&o).contains("symlink"));
}

#[test]
fn credentials_are_readable_by_the_payload() {
    let t = Tree::busybox("cred");
    let host = Scratch::new("credsrc");
    std::fs::write(host.0.join("secret"), "from-file").unwrap();
    let load = format!("--load-credential=file:{}/secret", host.s());
    let script = "echo $CREDENTIALS_DIRECTORY; cat $CREDENTIALS_DIRECTORY/lit; echo; cat $CREDENTIALS_DIRECTORY/file; echo; \
                  echo x > $CREDENTIALS_DIRECTORY/lit 2>/dev/null || echo ro";
    let out = ok(t.sh(&["--set-credential=lit:a b", &load], script));
    assert_eq!(out, "/run/host/credentials\na b\nfrom-file\nro\n");
    if !ours_only() {
        let out = ok(t.sh(&["--set-credential=lit:a b", &load, "-u", "tester"], script));
        assert_eq!(out, "/run/host/credentials\na b\nfrom-file\nro\n");
    }
}

#[test]
fn pivot_root_into_a_subtree() {
    let t = Tree::busybox("pivot");
    let st = std::process::Command::new(repo_root().join("scripts/fixtures.sh"))
        .arg("busybox")
        .arg(t.join("sysroot"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(t.join("sysroot/etc/marker"), "inner").unwrap();
    // The reference needs OLD to exist in NEW.
    std::fs::create_dir(t.join("sysroot/oldroot")).unwrap();
    std::fs::write(t.join("etc/marker"), "outer").unwrap();
    // Without OLD the outer tree is gone.
    let out = ok(t.sh(
        &["--pivot-root=/sysroot"],
        "cat /etc/marker; ls -A /oldroot | wc -l",
    ));
    assert_eq!(out, "inner0\n");
    // The reference fails here on this host (MS_MOVE of the old root: EINVAL).
    if ours_only() {
        return;
    }
    let out = ok(t.sh(
        &["--pivot-root=/sysroot:/oldroot"],
        "cat /etc/marker; echo; cat /oldroot/etc/marker",
    ));
    assert_eq!(out, "inner\nouter");
}

#[test]
fn template_fills_a_missing_tree_once() {
    let template = Tree::busybox("tmpl");
    let target = Path::new("/var/tmp/nspawn-tests").join(unique("fromtmpl"));
    let d = target.to_str().unwrap();
    let arg = format!("--template={}", template.dir());
    ok(run(nspawn(&[
        "-q",
        "--pipe",
        &arg,
        "-D",
        d,
        "/bin/sh",
        "-c",
        "echo first > /mine",
    ])));
    assert_eq!(
        std::fs::read_to_string(target.join("mine")).unwrap(),
        "first\n"
    );
    assert!(!template.join("mine").exists());
    std::fs::write(template.join("later"), "").unwrap();
    ok(run(nspawn(&["-q", "--pipe", &arg, "-D", d, "/bin/true"])));
    assert!(!target.join("later").exists(), "the tree was filled again");
    std::fs::remove_dir_all(&target).unwrap();
}

#[test]
fn journal_linked_to_the_host() {
    let t = Tree::busybox("jrnl");
    let id = "4a0b9c1e2d3f405162738495a6b7c8d9";
    let host_dir = Path::new("/var/log/journal").join(id);
    let _ = std::fs::remove_file(&host_dir);
    let _ = std::fs::remove_dir_all(&host_dir);
    std::fs::write(t.join("etc/machine-id"), format!("{id}\n")).unwrap();
    ok(t.sh(
        &["--link-journal=host"],
        &format!("echo entry > /var/log/journal/{id}/x"),
    ));
    assert_eq!(
        std::fs::read_to_string(host_dir.join("x")).unwrap(),
        "entry\n"
    );
    std::fs::remove_dir_all(&host_dir).unwrap();
    ok(t.sh(
        &["--link-journal=guest"],
        &format!("echo entry > /var/log/journal/{id}/y"),
    ));
    let link = std::fs::read_link(&host_dir).unwrap();
    assert_eq!(link, t.join(&format!("var/log/journal/{id}")));
    assert_eq!(
        std::fs::read_to_string(host_dir.join("y")).unwrap(),
        "entry\n"
    );
    std::fs::remove_file(&host_dir).unwrap();
}

/// A tree whose paths point at host locations: nothing outside the tree may
/// be created, mounted over or changed.
#[test]
fn hostile_tree_cannot_reach_the_host() {
    let t = Tree::busybox("hostile");
    let host = Scratch::new("victim");
    let victim_file = host.0.join("resolv");
    let victim_tz = host.0.join("localtime");
    std::fs::write(&victim_file, "original").unwrap();
    std::fs::write(&victim_tz, "original").unwrap();
    let missing = host.0.join("made-by-nspawn");
    let run_target = host.0.join("run");
    std::fs::remove_file(t.join("etc/resolv.conf")).ok();
    symlink(&victim_file, t.join("etc/resolv.conf")).unwrap();
    symlink(&victim_tz, t.join("etc/localtime")).unwrap();
    std::fs::remove_dir_all(t.join("run")).unwrap();
    symlink(&run_target, t.join("run")).unwrap();
    std::fs::remove_dir_all(t.join("mnt")).ok();
    symlink(&missing, t.join("mnt")).unwrap();
    symlink("../../../../../../..", t.join("up")).unwrap();
    let src = Scratch::new("src");
    let before = listing(&host.0);
    for mode in [
        &["--resolv-conf=copy-host", "--timezone=copy"][..],
        &["--resolv-conf=replace-host", "--timezone=symlink"],
        &["--resolv-conf=bind-host", "--timezone=bind"],
        &[],
    ] {
        let mut args: Vec<&str> = mode.to_vec();
        let bind = format!("--bind={}:/mnt/x", src.s());
        args.extend([
            bind.as_str(),
            "--tmpfs=/up/tmp/escaped",
            "--bind=:/up/var/tmp/escaped2",
        ]);
        let o = t.sh(&args, "ls /run/host >/dev/null && echo ok");
        // The reference refuses this tree ("Failed to create /run/host"),
        // which is safe too; we run it, inside the tree.
        if !reference() {
            assert_eq!(stdout(&o), "ok\n", "{mode:?}: {}", stderr(&o));
        }
        assert_eq!(
            std::fs::read_to_string(&victim_file).unwrap(),
            "original",
            "{mode:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim_tz).unwrap(),
            "original",
            "{mode:?}"
        );
        same(
            &before,
            &listing(&host.0),
            "{mode:?}: host directory changed",
        );
        assert!(!Path::new("/tmp/escaped").exists() && !Path::new("/var/tmp/escaped2").exists());
        assert!(mounts_under(&host.0).is_empty() && mounts_under(Path::new("/tmp")).is_empty());
    }
}

#[test]
fn bad_specs_fail_before_anything_starts() {
    let t = Tree::busybox("badspec");
    let before = listing(&t.path);
    for (arg, msg) in [
        ("--bind=relative:path", "--bind"),
        ("--bind=/tmp:/x:bogus", "bind"),
        ("--overlay=onlyone", "at least two"),
        ("--tmpfs=", "--tmpfs"),
        ("--bind=/nonexistent-source:/x", "/nonexistent-source"),
        ("--volatile=-1", "--volatile"),
        ("--resolv-conf=bogus", "resolv.conf mode: bogus"),
        ("--timezone=bogus", "localtime mode: bogus"),
        ("--set-credential=nocolon", "--set-credential"),
        ("--link-journal=bogus", "link journal"),
        ("--pivot-root=relative", "--pivot-root"),
    ] {
        let o = run(nspawn(&["-q", "--pipe", arg, "-D", t.dir(), "/bin/true"]));
        let err = host_quirks_removed(&stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{arg}: {err}");
        assert!(err.contains(msg), "{arg}: {err:?}");
        assert_eq!(err.lines().count(), 1, "{arg}: {err:?}");
    }
    assert!(mounts_under(&t.path).is_empty());
    if !reference() {
        same(&before, &listing(&t.path), "tree");
    }
}
