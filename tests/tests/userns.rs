//! User namespaces: `-U`, `--private-users=`, `--private-users-ownership=`.
//! The maps seen inside, who owns on the host what root makes inside,
//! ranges of containers started together, and the refusals.

use nspawn_tests::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The first line of `/proc/self/uid_map` inside, as (inside, outside, count).
fn uid_map(out: &str) -> (u64, u64, u64) {
    let f: Vec<u64> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(f.len(), 3, "uid_map: {out}");
    (f[0], f[1], f[2])
}

/// Every file's path, size, mode and owner under `dir`.
fn listing(dir: &str) -> String {
    let o = Command::new("find")
        .args([dir, "-printf", "%p %s %m %U %G\\n"])
        .output()
        .unwrap();
    let mut v: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    v.sort();
    v.join("\n")
}

fn chown_tree(t: &Tree, id: u32) {
    let st = Command::new("chown")
        .args(["-hR", &format!("{id}:{id}"), t.dir()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn no_user_namespace_by_default() {
    let t = Tree::busybox("uns-no");
    let out = ok(t.sh(&["--private-users=no"], "cat /proc/self/uid_map"));
    assert_eq!(uid_map(&out), (0, 0, 4294967295));
}

#[test]
fn identity_maps_the_first_64k_onto_themselves() {
    let t = Tree::busybox("uns-id");
    let out = ok(t.sh(
        &["--private-users=identity"],
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /root/made",
    ));
    assert_eq!(uid_map(&out), (0, 0, 65536));
    let gid_map = out.lines().nth(1).unwrap_or_default();
    assert_eq!(uid_map(gid_map), (0, 0, 65536), "{out}");
    assert_eq!(std::fs::metadata(t.join("/root/made")).unwrap().uid(), 0);
}

#[test]
fn pick_with_auto_maps_the_tree_so_disk_stays_owned_by_0() {
    let t = Tree::busybox("uns-pick");
    let out = ok(t.sh(
        &["-U"],
        "cat /proc/self/uid_map; id -u; touch /root/made; stat -c %u /root/made; stat -c %u /dev/null",
    ));
    let (inside, base, count) = uid_map(&out);
    assert_eq!((inside, count), (0, 65536), "{out}");
    assert!(base >= 0x80000 && base.is_multiple_of(65536), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "0", "root inside: {out}");
    assert_eq!(lines[2], "0", "the file, seen inside: {out}");
    // On disk: owned by 0, the tree's own range (idmapped mount).
    assert_eq!(std::fs::metadata(t.join("/root/made")).unwrap().uid(), 0);
    assert_eq!(std::fs::metadata(t.dir()).unwrap().uid(), 0);
}

#[test]
fn explicit_range_with_map() {
    let t = Tree::busybox("uns-fixed");
    let out = ok(t.sh(
        &[
            "--private-users=2000000000:65536",
            "--private-users-ownership=map",
        ],
        "cat /proc/self/uid_map /proc/self/gid_map; touch /root/made; chown 1000:1000 /root/made",
    ));
    assert_eq!(uid_map(&out), (0, 2000000000, 65536));
    assert!(out.lines().nth(1).unwrap().contains("2000000000"), "{out}");
    // Through the idmapped mount, id 1000 inside is 1000 on disk.
    let m = std::fs::metadata(t.join("/root/made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
}

#[test]
fn yes_takes_the_range_from_the_trees_owner() {
    let t = Tree::busybox("uns-yes");
    chown_tree(&t, 1638400);
    let out = ok(t.sh(
        &["--private-users=yes"],
        "cat /proc/self/uid_map; touch /root/made; id -u",
    ));
    assert_eq!(uid_map(&out), (0, 1638400, 65536));
    // No mapping of the tree: root inside is 1638400 on disk.
    assert_eq!(
        std::fs::metadata(t.join("/root/made")).unwrap().uid(),
        1638400
    );
}

#[test]
fn api_file_systems_work_for_the_shifted_root() {
    let t = Tree::busybox("uns-api");
    let script = "set -e; echo x > /dev/null; head -c 4 /dev/urandom | wc -c; \
                  test -c /dev/console || test ! -e /dev/console; \
                  grep -q ' /sys ' /proc/self/mountinfo; ls /sys/class >/dev/null; \
                  ! touch /sys/kernel/x 2>/dev/null; \
                  ! echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; \
                  mkdir /sys/fs/cgroup/child; echo ok";
    let out = ok(t.sh(&["-U"], script));
    assert!(out.ends_with("ok\n"), "{out}");
    // A sysfs of its own (the runner's), not the host's /sys with what is
    // mounted below it (its cgroup hierarchies; tracefs, debugfs where
    // mounted): only the container's cgroup2 is below it.
    let out = ok(t.sh(
        &["-U"],
        "awk '$5 ~ \"^/sys\" { print $5, $(NF - 2), $(NF - 1), $6 }' /proc/self/mountinfo",
    ));
    assert_eq!(
        out,
        "/sys sysfs sysfs ro,nosuid,nodev,noexec,relatime\n\
         /sys/fs/cgroup cgroup2 cgroup2 rw,nosuid,nodev,noexec,relatime\n"
    );
    // With a private network, /proc/sys/net is the container's to write.
    let out = ok(t.sh(
        &["-U", "--private-network"],
        "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward",
    ));
    assert_eq!(out, "1\n");
}

#[test]
fn six_containers_started_at_once_get_disjoint_ranges() {
    let trees: Vec<Tree> = (0..6).map(|_| Tree::busybox("uns-six")).collect();
    let children: Vec<_> = trees
        .iter()
        .map(|t| {
            let mut c = nspawn(&[
                "-q",
                "--pipe",
                "-D",
                t.dir(),
                "-U",
                "/bin/sh",
                "-c",
                // All six run at once: none ends (and frees its range)
                // before every one has its own.
                "cat /proc/self/uid_map; touch /ready; while [ ! -e /go ]; do sleep 0.05; done",
            ]);
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let all_up = wait_until(Duration::from_secs(30), || {
        trees.iter().all(|t| t.join("ready").exists())
    });
    for t in &trees {
        std::fs::write(t.join("go"), "").unwrap();
    }
    assert!(all_up, "not all six containers started");
    let mut ranges: Vec<(u64, u64)> = children
        .into_iter()
        .map(|c| {
            let out = ok(wait_output(c, Duration::from_secs(60)));
            let (_, base, count) = uid_map(&out);
            (base, base + count)
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlap: {ranges:?}");
    }
}

/// A refusal: one line, exit 1, the tree as it was, no record left.
#[track_caller]
fn refused(t: &Tree, args: &[&str], want: &str) {
    let before = listing(t.dir());
    let o = t.sh(args, "touch /root/made");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "{err}");
    assert_eq!(listing(t.dir()), before, "the tree changed");
    let left = Path::new("/run/nspawn/userns").join(&t.name);
    assert!(!left.exists(), "{} left behind", left.display());
}

#[test]
fn bad_ranges_are_refused() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-bad");
    // uid 1 is the host's daemon.
    refused(
        &t,
        &["--private-users=1:65536", "--private-users-ownership=map"],
        "overlaps the host's user or group",
    );
    refused(
        &t,
        &[
            "--private-users=2300000000",
            "--private-users-ownership=chown",
        ],
        "a multiple of 65536",
    );
    refused(
        &t,
        &["--private-users=2300000000:1000"],
        "the range is too small",
    );
    // The tree is owned by 0: not in the range, and nothing maps it.
    refused(
        &t,
        &["--private-users=2300000000"],
        "outside the container's range",
    );
    chown_tree(&t, 1638400 + 7);
    refused(
        &t,
        &[
            "--private-users=2300000000",
            "--private-users-ownership=map",
        ],
        "which an idmapped mount cannot map",
    );
}

#[test]
fn a_range_in_use_is_refused() {
    if ours_only() {
        return;
    }
    let a = Tree::busybox("uns-busy-a");
    let b = Tree::busybox("uns-busy-b");
    let mut first = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        a.dir(),
        "--private-users=2100000000",
        "--private-users-ownership=map",
        "/bin/sleep",
        "30",
    ]);
    let mut first = first.stdin(std::process::Stdio::null()).spawn().unwrap();
    let rec = Path::new("/run/nspawn/userns").join(&a.name);
    assert!(wait_until(Duration::from_secs(10), || rec.exists()));
    refused(
        &b,
        &[
            "--private-users=2100032768:65536",
            "--private-users-ownership=map",
        ],
        &format!("in use by machine {}", a.name),
    );
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn map_on_a_file_system_without_idmapping_is_refused() {
    if ours_only() {
        return;
    }
    // ramfs cannot do idmapped mounts (no FS_ALLOW_IDMAP).
    let t = Tree::busybox("uns-ramfs");
    let mnt = format!("{}-ramfs", t.dir());
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "ramfs", "ramfs", &mnt])
        .status()
        .unwrap()
        .success());
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unmount = Unmount(mnt.clone());
    let copied = Command::new("cp")
        .args(["-a", &format!("{}/.", t.dir()), &mnt])
        .status()
        .unwrap();
    assert!(copied.success());
    // Removed (emptied) before the ramfs is unmounted.
    let tree = Tree {
        path: mnt.clone().into(),
        name: t.name.clone() + "-ramfs",
    };
    refused(
        &tree,
        &["-U", "--private-users-ownership=map"],
        "does not support idmapped mounts",
    );
}

#[test]
fn settings_file_keys() {
    let t = Tree::busybox("uns-file");
    let file = Path::new("/run/systemd/nspawn").join(format!("{}.nspawn", t.name));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "[Exec]\nPrivateUsers=2400000000\n[Files]\nPrivateUsersOwnership=map\n",
    )
    .unwrap();
    let o = t.sh(&[], "cat /proc/self/uid_map; touch /root/made");
    let _ = std::fs::remove_file(&file);
    assert_eq!(uid_map(&ok(o)), (0, 2400000000, 65536));
    assert_eq!(std::fs::metadata(t.join("/root/made")).unwrap().uid(), 0);
}

/// A POSIX ACL in its xattr form: the owner, user 1000, group, mask, other.
fn acl_with_user(id: u32) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 6, id),
        (4, 4, u32::MAX),
        (0x10, 6, u32::MAX),
        (0x20, 4, u32::MAX),
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 512];
    // SAFETY: valid strings and buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

#[test]
fn chown_shifts_the_tree_acls_and_keeps_setuid_bits() {
    let t = Tree::busybox("uns-chown");
    let acl_file = t.join("/root/acl");
    std::fs::write(&acl_file, "x").unwrap();
    let p = std::ffi::CString::new(acl_file.to_str().unwrap()).unwrap();
    let acl = acl_with_user(1000);
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            acl.as_ptr().cast(),
            acl.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
    let suid = t.join("/bin/suid");
    std::fs::write(&suid, "").unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(5)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let base = 38146 * 65536u32;
    let out = ok(t.sh(
        &[
            &format!("--private-users={base}"),
            "--private-users-ownership=chown",
        ],
        "cat /proc/self/uid_map; touch /root/made; stat -c %u:%g /bin/suid /root/acl",
    ));
    assert_eq!(uid_map(&out), (0, base as u64, 65536));
    assert!(out.contains("0:5\n0:0\n"), "{out}");
    let owner = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&t.path), (base, base));
    assert_eq!(owner(&t.join("/root/made")), (base, base));
    assert_eq!(owner(&t.join("/bin/sh")), (base, base));
    assert_eq!(owner(&suid), (base, base + 5));
    assert_eq!(std::fs::metadata(&suid).unwrap().mode() & 0o7777, 0o6755);
    assert_eq!(
        xattr(&acl_file, "system.posix_acl_access"),
        Some(acl_with_user(base + 1000))
    );
    // A second start finds the tree shifted and leaves it as it is.
    let out = ok(t.sh(
        &[
            &format!("--private-users={base}"),
            "--private-users-ownership=chown",
        ],
        "stat -c %u /root/made",
    ));
    assert_eq!(out, "0\n");
}

#[test]
fn an_interrupted_chown_is_finished_by_the_next_start() {
    if ours_only() {
        return;
    }
    // As a killed run leaves it: files below shifted, the root not yet.
    let t = Tree::busybox("uns-resume");
    let base = 39672 * 65536u32;
    chown_tree(&t, base);
    std::os::unix::fs::lchown(&t.path, Some(0), Some(0)).unwrap();
    std::os::unix::fs::lchown(t.join("/etc/passwd"), Some(0), Some(0)).unwrap();
    let out = ok(t.sh(
        &[
            &format!("--private-users={base}"),
            "--private-users-ownership=chown",
        ],
        "stat -c %u /etc/passwd /",
    ));
    assert_eq!(out, "0\n0\n");
    let m = std::fs::metadata(t.join("/etc/passwd")).unwrap();
    assert_eq!(m.uid(), base);
}

/// A host directory owned by 1000 with one file, removed on drop.
struct HostDir(std::path::PathBuf);

impl HostDir {
    fn new(prefix: &str) -> HostDir {
        let p = Path::new("/var/tmp/nspawn-tests").join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("f"), "x").unwrap();
        for f in [p.join("f"), p.clone()] {
            std::os::unix::fs::chown(&f, Some(1000), Some(1000)).unwrap();
        }
        HostDir(p)
    }

    fn bind(&self, dest: &str, opts: &str) -> String {
        format!("--bind={}:{dest}:{opts}", self.0.display())
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn idmap_bind_shows_host_ids_through_the_containers_map() {
    let t = Tree::busybox("uns-bind-idmap");
    let h = HostDir::new("uns-bind-src");
    let out = ok(t.sh(
        &["-U", &h.bind("/mnt", "idmap")],
        "stat -c %u:%g /mnt /mnt/f; touch /mnt/made",
    ));
    assert_eq!(out, "1000:1000\n1000:1000\n");
    // Root inside is 0 on disk through the mount.
    assert_eq!(std::fs::metadata(h.0.join("made")).unwrap().uid(), 0);
    // Without the option the source's ids are not in the range.
    let out = ok(t.sh(&["-U", &h.bind("/mnt", "noidmap")], "stat -c %u /mnt"));
    assert_eq!(out, "65534\n");
}

#[test]
fn rootidmap_and_owneridmap_binds() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-bind-root");
    let h = HostDir::new("uns-bind-src");
    let out = ok(t.sh(
        &["-U", &h.bind("/mnt", "rootidmap")],
        "stat -c %u:%g /mnt /mnt/f; touch /mnt/made",
    ));
    assert_eq!(out, "0:0\n0:0\n");
    // What root makes there belongs to the source's owner on disk.
    let m = std::fs::metadata(h.0.join("made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    std::fs::create_dir_all(t.join("/srv/own")).unwrap();
    std::os::unix::fs::chown(t.join("/srv/own"), Some(5), Some(7)).unwrap();
    let out = ok(t.sh(
        &["-U", &h.bind("/srv/own", "owneridmap")],
        "stat -c %u:%g /srv/own /srv/own/f",
    ));
    assert_eq!(out, "5:7\n5:7\n");
}

#[test]
fn idmap_binds_are_refused_where_they_cannot_work() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-bind-bad");
    let h = HostDir::new("uns-bind-src");
    let o = t.sh(&[&h.bind("/mnt", "idmap")], "true");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "nspawn: idmap bind options need a user namespace (--private-users)\n"
    );
    // A source on ramfs (no idmapping): refused before the tree is shifted.
    let mnt = format!("{}-ramfs", h.0.display());
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "ramfs", "ramfs", &mnt])
        .status()
        .unwrap()
        .success());
    let bind = format!("--bind={mnt}:/mnt:idmap");
    let o = t.sh(
        &[
            "--private-users=pick",
            "--private-users-ownership=chown",
            &bind,
        ],
        "true",
    );
    let _ = Command::new("umount").arg(&mnt).status();
    let _ = std::fs::remove_dir(&mnt);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not support idmapped mounts"), "{err}");
    assert_eq!(std::fs::metadata(t.dir()).unwrap().uid(), 0, "tree shifted");
    assert_eq!(
        std::fs::metadata(t.join("/bin")).unwrap().uid(),
        0,
        "tree shifted"
    );
}

/// A host user with a home, removed on drop.
struct HostUser(String);

impl HostUser {
    fn new() -> HostUser {
        let name = unique("nsbu");
        let st = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
        HostUser(name)
    }

    fn uid(&self) -> u32 {
        let o = Command::new("id").args(["-u", &self.0]).output().unwrap();
        text(&o.stdout).trim().parse().unwrap()
    }
}

impl Drop for HostUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", &self.0]).output();
    }
}

#[test]
fn bind_user_maps_the_users_home_and_records() {
    let t = Tree::busybox("uns-bind-user");
    let u = HostUser::new();
    let name = &u.0;
    let opt = format!("--bind-user={name}");
    let out = ok(t.sh(
        &["-U", &opt],
        &format!(
            "cat /proc/self/uid_map; stat -c %u:%g /run/host/home/{name}; \
             cat /run/host/userdb/{name}.user /run/host/userdb/60514.group; \
             touch /run/host/home/{name}/made"
        ),
    ));
    let lines: Vec<&str> = out.lines().collect();
    let mapped: Vec<u64> = lines[1]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(mapped, [60514, u.uid() as u64, 1], "{out}");
    assert_eq!(lines[3], "60514:60514", "{out}");
    assert_eq!(
        lines[4],
        format!(
            "{{\"userName\":\"{name}\",\"uid\":60514,\"gid\":60514,\"homeDirectory\":\"/run/host/home/{name}\",\"service\":\"io.systemd.NSpawn\"}}"
        )
    );
    assert!(lines[5].contains("\"gid\":60514"), "{out}");
    let home = Path::new("/home").join(name);
    // Root inside made it: the container's range, not the user's id.
    let made = std::fs::metadata(home.join("made")).unwrap().uid();
    assert!(made >= 65536, "{made}");
}

/// A user only an NSS module beside `files` knows: a drop-in record of
/// nss-systemd (userdb(5), read without systemd running), removed on drop.
struct DropInUser {
    name: String,
    uid: u32,
    home: std::path::PathBuf,
}

impl DropInUser {
    fn new() -> DropInUser {
        let name = unique("nsdb");
        let uid = 1_999_990_000 + std::process::id() % 10_000;
        let home = Path::new("/var/tmp").join(&name);
        std::fs::create_dir(&home).unwrap();
        std::fs::create_dir_all("/run/userdb").unwrap();
        let user = format!(
            "{{\"userName\":\"{name}\",\"uid\":{uid},\"gid\":{uid},\"homeDirectory\":\"{}\",\"disposition\":\"regular\"}}",
            home.display()
        );
        let group =
            format!("{{\"groupName\":\"{name}\",\"gid\":{uid},\"disposition\":\"regular\"}}");
        std::fs::write(format!("/run/userdb/{name}.user"), user).unwrap();
        std::fs::write(format!("/run/userdb/{name}.group"), group).unwrap();
        std::os::unix::fs::symlink(format!("{name}.group"), format!("/run/userdb/{uid}.group"))
            .unwrap();
        let u = DropInUser { name, uid, home };
        let o = Command::new("getent")
            .args(["passwd", &u.name])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "getent does not find the drop-in user {}: nss-systemd (libnss-systemd, which \
             scripts/test installs) must be named on the passwd line of /etc/nsswitch.conf",
            u.name
        );
        assert!(
            !text(&std::fs::read("/etc/passwd").unwrap()).contains(&u.name),
            "{} is in /etc/passwd",
            u.name
        );
        u
    }
}

impl Drop for DropInUser {
    fn drop(&mut self) {
        for f in [
            format!("{}.user", self.name),
            format!("{}.group", self.name),
            format!("{}.group", self.uid),
        ] {
            let _ = std::fs::remove_file(Path::new("/run/userdb").join(f));
        }
        let _ = std::fs::remove_dir("/run/userdb");
        let _ = std::fs::remove_dir(&self.home);
    }
}

/// The runner is linked statically; a static glibc cannot load NSS modules
/// (loading nss-systemd crashes it), so the lookup must still find users
/// only a module knows, and tell an unknown user from a failed lookup.
#[test]
fn bind_user_finds_a_user_only_an_nss_module_knows() {
    let t = Tree::busybox("uns-bind-dropin");
    let u = DropInUser::new();
    let opt = format!("--bind-user={}", u.name);
    let out = ok(t.sh(
        &["-U", &opt],
        &format!(
            "cat /proc/self/uid_map; cat /run/host/userdb/{}.group; ls -d /run/host/home/{}",
            u.name, u.name
        ),
    ));
    let lines: Vec<&str> = out.lines().collect();
    let mapped: Vec<u64> = lines[1]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(mapped, [60514, u.uid as u64, 1], "{out}");
    assert!(
        lines[3].starts_with(&format!("{{\"groupName\":\"{}\",\"gid\":60514", u.name)),
        "{out}"
    );
    assert_eq!(lines[4], format!("/run/host/home/{}", u.name), "{out}");
}

#[test]
fn bind_user_refusals() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-bind-user-bad");
    let u = HostUser::new();
    let opt = format!("--bind-user={}", u.0);
    let o = t.sh(&[&opt], "true");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "nspawn: --bind-user= requires --private-users\n"
    );
    refused(
        &t,
        &["-U", "--bind-user=no-such-user-here"],
        "no such user on the host",
    );
    // A tree with a user of that name already.
    let passwd = t.join("/etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str(&format!("{}:x:2000:2000::/home/x:/bin/sh\n", u.0));
    std::fs::write(&passwd, text).unwrap();
    refused(&t, &["-U", &opt], "the container already has a user");
}

#[test]
fn a_killed_runner_takes_the_container_and_its_range_with_it() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-kill");
    let m = marker();
    for extra in [&["-U"][..], &["-U", "--user=tester"][..]] {
        let mut args = vec!["-q", "--pipe", "-D", t.dir()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["/bin/sleep", &m]);
        let mut runner = nspawn(&args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let cmd = format!("/bin/sleep {m}");
        assert!(wait_until(Duration::from_secs(10), || {
            processes_exactly(&cmd).len() == 1
        }));
        let rec = Path::new("/run/nspawn/userns").join(&t.name);
        assert!(rec.exists());
        runner.kill().unwrap();
        let _ = runner.wait();
        assert!(
            wait_until(Duration::from_secs(10), || processes_exactly(&cmd)
                .is_empty()),
            "{extra:?}: the container outlived its runner"
        );
        assert!(
            wait_until(Duration::from_secs(10), || !rec.exists()),
            "{extra:?}: the reaper left {}",
            rec.display()
        );
    }
}

/// nspawnctl joins the machine's user namespace: a shell is root there,
/// and files copied in or out are root's on both sides.
#[test]
fn nspawnctl_shell_and_copy_under_a_user_namespace() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-ctl");
    let m = marker();
    let mut runner = nspawn(&["-q", "--pipe", "-D", t.dir(), "-U", "/bin/sleep", &m])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cmd = format!("/bin/sleep {m}");
    assert!(wait_until(Duration::from_secs(10), || {
        processes_exactly(&cmd).len() == 1
    }));
    // The record is published once the payload runs, just after.
    assert!(wait_until(Duration::from_secs(10), || Path::new(
        "/run/nspawn/machines"
    )
    .join(&t.name)
    .exists()));
    let shell = run(nspawnctl(&[
        "shell",
        &t.name,
        "/bin/sh",
        "-c",
        "id -u; head -1 /proc/self/uid_map; touch /root/from-shell",
    ]));
    let src = Path::new("/var/tmp/nspawn-tests").join(unique("uns-ctl-src"));
    std::fs::write(&src, "x").unwrap();
    let to = run(nspawnctl(&[
        "copy-to",
        &t.name,
        src.to_str().unwrap(),
        "/root/copied",
    ]));
    let back = src.with_extension("back");
    let from = run(nspawnctl(&[
        "copy-from",
        &t.name,
        "/root/from-shell",
        back.to_str().unwrap(),
    ]));
    let _ = runner.kill();
    let _ = runner.wait();
    let owner = |p: &Path| std::fs::metadata(p).map(|m| m.uid());
    let back_owner = owner(&back);
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&back);
    let out = ok(shell);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_ne!(uid_map(lines[1]).1, 0, "{out}");
    ok(to);
    ok(from);
    // The tree is idmapped: root inside is 0 on disk.
    assert_eq!(owner(&t.join("/root/from-shell")).unwrap(), 0);
    assert_eq!(owner(&t.join("/root/copied")).unwrap(), 0);
    assert_eq!(back_owner.unwrap(), 0);
}

/// The reference fails here ("Failed to set up ID mapped mounts: Device
/// or resource busy"); ours stacks the throw-away layer on the idmapped
/// tree.
#[test]
fn ephemeral_and_volatile_runs_under_a_user_namespace() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("uns-eph");
    let before = listing(t.dir());
    for extra in [&["-U", "-x"][..], &["-U", "--volatile=yes"][..]] {
        let out = ok(t.sh(extra, "touch /etc/made; id -u; stat -c %u /etc/made"));
        assert_eq!(out, "0\n0\n", "{extra:?}");
    }
    assert_eq!(listing(t.dir()), before, "the tree changed");
}

/// A tree below a directory closed to others (as systemd keeps
/// /var/lib/machines, mode 0700): root of the namespace could not search
/// it, the container still starts, with either ownership, and the host
/// sees no mount of ours.
#[test]
fn a_tree_below_a_closed_directory() {
    let closed = Path::new("/var/tmp/nspawn-tests").join(unique("closed"));
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let tree = closed.join("tree");
    let st = Command::new(repo_root().join("scripts/fixtures.sh"))
        .arg("busybox")
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    for ownership in ["map", "chown"] {
        let o = run(nspawn(&[
            "-q",
            "--pipe",
            "-U",
            &format!("--private-users-ownership={ownership}"),
            "-D",
            tree.to_str().unwrap(),
            "-x",
            "/bin/sh",
            "-c",
            "id -u; ls /etc/os-release",
        ]));
        assert!(o.status.success(), "{ownership}: {}", stderr(&o));
        assert_eq!(stdout(&o), "0\n/etc/os-release\n", "{ownership}");
    }
    // Not ephemeral as well: the tree itself is the root.
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        "-U",
        "-D",
        tree.to_str().unwrap(),
        "/bin/touch",
        "/root/made",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tree.join("root/made").exists());
    // Bind sources in a closed directory: plain binds too are made by the
    // host's root, not looked up by root of the namespace.
    std::fs::write(closed.join("note"), "kept\n").unwrap();
    std::fs::create_dir(closed.join("data")).unwrap();
    std::fs::write(closed.join("data/file"), "in data\n").unwrap();
    // An ephemeral run of the tree under -U with `extra`.
    let ephemeral = |extra: &[&str]| {
        let mut a = vec!["-q", "--pipe", "-U", "-x", "-D", tree.to_str().unwrap()];
        a.extend_from_slice(extra);
        run(nspawn(&a))
    };
    let o = ephemeral(&[
        &format!("--bind-ro={}:/note", closed.join("note").display()),
        &format!("--bind={}:/mnt/data:noidmap", closed.join("data").display()),
        "/bin/sh",
        "-c",
        "cat /note /mnt/data/file; touch /note 2>/dev/null || echo read-only",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "kept\nin data\nread-only\n");
    // Overlays of directories in it, made by the host's root as well: two
    // read-only layers; a throw-away upper layer root inside writes to; a
    // host upper layer handed to the range's root.
    for d in ["l1", "l2", "up"] {
        std::fs::create_dir(closed.join(d)).unwrap();
    }
    std::fs::write(closed.join("l1/a"), "one\n").unwrap();
    std::fs::write(closed.join("l2/b"), "two\n").unwrap();
    let base = 36_622u32 << 16;
    nix::unistd::chown(
        &closed.join("up"),
        Some(nix::unistd::Uid::from_raw(base)),
        Some(nix::unistd::Gid::from_raw(base)),
    )
    .unwrap();
    let (l1, l2, up) = (
        closed.join("l1").display().to_string(),
        closed.join("l2").display().to_string(),
        closed.join("up").display().to_string(),
    );
    let o = run(nspawn(&[
        "-q",
        "--pipe",
        &format!("--private-users={base}:65536"),
        "--private-users-ownership=chown",
        "-D",
        tree.to_str().unwrap(),
        &format!("--overlay-ro={l1}:{l2}:/home/ro"),
        // Mixed with the other kinds, in the order the runner makes them.
        &format!("--bind-ro={}:/home/note", closed.join("note").display()),
        "--overlay-ro=+/etc:+/root:/home/mixed",
        &format!("--overlay={l1}:{l2}::/home/tmp"),
        &format!("--overlay={l1}:{up}:/home/rw"),
        "/bin/sh",
        "-c",
        "cat /home/ro/a /home/ro/b; touch /home/ro/x 2>/dev/null || echo read-only; \
         cat /home/note; ls /home/mixed/os-release; \
         touch /home/tmp/x 2>/dev/null && stat -c %u /home/tmp/x || echo denied; \
         echo new > /home/rw/c && cat /home/rw/a",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    // The reference's throw-away upper layer belongs to the host's root, so
    // root inside cannot write to it; ours belongs to root inside.
    let tmp = if reference() { "denied" } else { "0" };
    assert_eq!(
        stdout(&o),
        format!("one\ntwo\nread-only\nkept\n/home/mixed/os-release\n{tmp}\none\n")
    );
    let c = closed.join("up/c");
    assert_eq!(std::fs::read_to_string(&c).unwrap(), "new\n");
    assert_eq!(std::fs::metadata(&c).unwrap().uid(), base);
    assert!(!closed.join("l1/c").exists());
    if !reference() {
        // A work directory that is a symlink (whoever can write beside the
        // upper layer could point overlayfs, which empties it, anywhere)
        // is refused, not followed.
        std::fs::create_dir(closed.join("up2")).unwrap();
        std::os::unix::fs::symlink("/tmp", closed.join(".#up2.nspawn-work")).unwrap();
        let o = ephemeral(&[
            &format!("--overlay={l1}:{}:/home/rw", closed.join("up2").display()),
            "/bin/true",
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(
            err,
            "nspawn: cannot create the overlay work directory for /home/rw: Not a directory\n"
        );
    }
    assert!(
        mounts_under(&closed).is_empty(),
        "{:?}",
        mounts_under(&closed)
    );
    std::fs::remove_dir_all(&closed).unwrap();
}
