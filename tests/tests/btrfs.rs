//! The image store on a btrfs pool: subvolume images, snapshots, the
//! read-only flag, removal with nested subvolumes, quota limits; and the
//! block device read-only flag. Each test makes its own loop-backed file
//! system (a sparse file under /var/tmp/nspawn-tests, `mkfs.btrfs`,
//! `losetup`, a mount) and its own search path on it
//! (`NSPAWN_IMAGE_PATH`); the guard unmounts, detaches and removes all of
//! it, and checks that, even when the test fails. Without `mkfs.btrfs` or
//! a free loop device a test fails and says so. Our own tool: skipped in
//! reference mode (machinectl needs systemd-machined).

use nspawn_tests::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn cmd(prog: &str, args: &[&str]) -> Output {
    let mut c = Command::new(prog);
    c.args(args);
    run(c)
}

/// A loop device backed by a sparse file, detached on drop.
struct Loop {
    file: PathBuf,
    dev: String,
}

impl Loop {
    fn new(file: &Path, size: u64) -> Loop {
        std::fs::File::create(file).unwrap().set_len(size).unwrap();
        let o = cmd("losetup", &["--find", "--show", file.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "cannot attach a loop device to {}: {}",
            file.display(),
            stderr(&o)
        );
        Loop {
            file: file.to_path_buf(),
            dev: stdout(&o).trim().to_string(),
        }
    }
}

/// Whether a loop device is attached to `file`.
fn attached(file: &Path) -> bool {
    !stdout(&cmd("losetup", &["-j", file.to_str().unwrap()]))
        .trim()
        .is_empty()
}

impl Drop for Loop {
    fn drop(&mut self) {
        // The kernel lets go of a loop device a moment after its last user.
        wait_until(Duration::from_secs(10), || {
            cmd("losetup", &["-d", &self.dev]);
            !attached(&self.file)
        });
    }
}

/// A btrfs file system on a loop device, mounted below `root`, with the
/// image search path `mnt/machines` (not yet made) and `mnt/second`.
struct Fs {
    root: PathBuf,
    mnt: PathBuf,
    pool: PathBuf,
    second: PathBuf,
    runners: Vec<Child>,
    /// Detached after the unmount.
    dev: Option<Loop>,
}

impl Fs {
    fn new(prefix: &str) -> Fs {
        assert!(
            Command::new("mkfs.btrfs")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "mkfs.btrfs not found: install btrfs-progs (scripts/test does)"
        );
        let root = Path::new("/var/tmp/nspawn-tests").join(unique(prefix));
        let mnt = root.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let mut fs = Fs {
            pool: mnt.join("machines"),
            second: mnt.join("second"),
            root: root.clone(),
            mnt: mnt.clone(),
            runners: vec![],
            dev: None,
        };
        // 320 MiB: above mkfs.btrfs's minimum, room for a 50 MiB tree.
        let dev = Loop::new(&root.join("fs.img"), 320 << 20);
        let o = cmd("mkfs.btrfs", &["-q", "-f", &dev.dev]);
        let d = dev.dev.clone();
        fs.dev = Some(dev);
        assert!(o.status.success(), "mkfs.btrfs {d}: {}", stderr(&o));
        nix::mount::mount(
            Some(d.as_str()),
            &mnt,
            Some("btrfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("cannot mount btrfs from {d}: {e}"));
        std::fs::create_dir(&fs.second).unwrap();
        fs
    }

    fn env(&self) -> String {
        format!("{}:{}", self.pool.display(), self.second.display())
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut c = nspawnctl(args);
        c.env("NSPAWN_IMAGE_PATH", self.env());
        run(c)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        ok(self.ctl(args))
    }

    /// A refusal: exit 1 and one line on stderr, returned.
    #[track_caller]
    fn refused(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("nspawnctl: "), "{err}");
        err
    }

    fn prop(&self, name: &str, p: &str) -> String {
        self.ok(&["show-image", "-p", p, "--value", name])
            .trim()
            .to_string()
    }

    /// A busybox tree at `dir`, with `mib` MiB of data in /srv/data.
    fn busybox(&self, dir: &Path, mib: usize) -> PathBuf {
        let st = Command::new(repo_root().join("scripts/fixtures.sh"))
            .arg("busybox")
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "busybox fixture failed");
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        std::fs::create_dir_all(dir.join("srv")).unwrap();
        let mut data = vec![];
        for _ in 0..mib {
            data.extend_from_slice(&chunk);
        }
        std::fs::write(dir.join("srv/data"), data).unwrap();
        dir.to_path_buf()
    }

    fn temporaries(&self) -> Vec<String> {
        std::fs::read_dir(&self.pool)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".#"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Paths of every subvolume, relative to the file system's top.
    fn subvolumes(&self) -> Vec<String> {
        ok(cmd(
            "btrfs",
            &["subvolume", "list", self.mnt.to_str().unwrap()],
        ))
        .lines()
        .filter_map(|l| l.split(" path ").nth(1).map(str::to_string))
        .collect()
    }

    /// Start `nspawn -M name` with a long sleep, until its machine is up.
    fn start(&mut self, name: &str) {
        let mut c = nspawn(&["-q", "--pipe", "-M", name, "/bin/sleep", &marker()]);
        c.env("NSPAWN_IMAGE_PATH", self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.runners.push(c.spawn().unwrap());
        assert!(
            wait_until(T, || Path::new("/run/nspawn/machines").join(name).exists()),
            "machine {name} did not start"
        );
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        for mut r in self.runners.drain(..) {
            let _ = r.kill();
            let _ = r.wait();
        }
        for dir in [&self.pool, &self.second] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                stop_runners_of(e.path().to_str().unwrap());
            }
        }
        // A container's mount namespace may hold the file system a moment.
        let unmounted = wait_until(Duration::from_secs(10), || {
            nix::mount::umount(&self.mnt).is_ok() || mounts_under(&self.mnt).is_empty()
        });
        if !unmounted {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
        let detached = match self.dev.take() {
            Some(d) => {
                let file = d.file.clone();
                drop(d);
                !attached(&file)
            }
            None => true,
        };
        let _ = std::fs::remove_dir_all(&self.root);
        if !std::thread::panicking() {
            assert!(unmounted, "{} stayed mounted", self.mnt.display());
            assert!(detached, "the loop device stayed attached");
        }
    }
}

fn subvolume_id(p: &Path) -> Option<u64> {
    let o = cmd("btrfs", &["subvolume", "show", p.to_str().unwrap()]);
    if !o.status.success() {
        return None;
    }
    stdout(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Subvolume ID:"))
        .and_then(|v| v.trim().parse().ok())
}

fn subvolume_field(p: &Path, field: &str) -> String {
    let out = ok(cmd("btrfs", &["subvolume", "show", p.to_str().unwrap()]));
    out.lines()
        .find_map(|l| l.trim().strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

fn is_subvolume(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.ino() == 256 && m.is_dir()) && subvolume_id(p).is_some()
}

/// `btrfs filesystem du -s --raw`: (total, exclusive) bytes.
fn fs_du(p: &Path) -> (u64, u64) {
    let out = ok(cmd(
        "btrfs",
        &["filesystem", "du", "-s", "--raw", p.to_str().unwrap()],
    ));
    let row: Vec<u64> = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    (row[0], row[1])
}

fn ro_property(p: &Path) -> String {
    ok(cmd(
        "btrfs",
        &["property", "get", p.to_str().unwrap(), "ro"],
    ))
    .trim()
    .to_string()
}

/// Rows of `btrfs qgroup show -re --raw`: qgroupid -> (rfer, max_rfer).
fn qgroups(p: &Path) -> Vec<(String, u64, Option<u64>)> {
    let out = ok(cmd(
        "btrfs",
        &[
            "qgroup",
            "show",
            "--sync",
            "-re",
            "--raw",
            p.to_str().unwrap(),
        ],
    ));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let id = f.first()?;
            if !id.contains('/') || id.starts_with('-') {
                return None;
            }
            let rfer = f.get(1)?.parse().ok()?;
            let max = f.get(3)?.parse().ok();
            Some((id.to_string(), rfer, max))
        })
        .collect()
}

#[test]
fn subvolume_images() {
    if ours_only() {
        return;
    }
    let fs = Fs::new("btrfs-img");
    // The source tree is a plain directory elsewhere on the file system.
    let src = fs.busybox(&fs.mnt.join("src"), 50);

    // import-fs: the pool is made as a subvolume, the image is one.
    let img = unique("img");
    fs.ok(&["import-fs", src.to_str().unwrap(), &img]);
    assert!(is_subvolume(&fs.pool), "the pool is not a subvolume");
    let path = fs.pool.join(&img);
    assert!(is_subvolume(&path), "{} is not a subvolume", path.display());
    assert_eq!(fs.prop(&img, "Type"), "subvolume");
    let row = fs.ok(&["list-images", "--no-legend"]);
    assert_eq!(
        &row.split_whitespace().collect::<Vec<_>>()[1..3],
        ["subvolume", "no"]
    );
    assert!(fs.temporaries().is_empty(), "{:?}", fs.temporaries());

    // A subvolume nested in the image, with data of its own.
    let nested = path.join("var/nested");
    ok(cmd(
        "btrfs",
        &["subvolume", "create", nested.to_str().unwrap()],
    ));
    std::fs::write(nested.join("inside"), "nested").unwrap();

    // clone: a snapshot, at once, sharing every extent.
    let copy = unique("copy");
    let started = Instant::now();
    fs.ok(&["clone", &img, &copy]);
    let took = started.elapsed();
    let cpath = fs.pool.join(&copy);
    assert!(is_subvolume(&cpath));
    assert_eq!(
        subvolume_field(&cpath, "Parent UUID:"),
        subvolume_field(&path, "UUID:"),
        "not a snapshot of the image"
    );
    assert!(took < Duration::from_secs(5), "clone took {took:?}");
    let (total, exclusive) = fs_du(&cpath);
    assert!(total >= 50 << 20, "total {total}");
    assert!(exclusive < 1 << 20, "exclusive {exclusive} of {total}");
    // The nested subvolume is snapshotted in its place.
    assert!(is_subvolume(&cpath.join("var/nested")));
    assert_eq!(
        std::fs::read_to_string(cpath.join("var/nested/inside")).unwrap(),
        "nested"
    );
    assert_eq!(
        std::fs::read(cpath.join("srv/data")).unwrap(),
        std::fs::read(src.join("srv/data")).unwrap()
    );

    // A plain directory image: cloned into a new subvolume, by reflinks.
    let plain = unique("plain");
    fs.busybox(&fs.second.join(&plain), 50);
    assert_eq!(fs.prop(&plain, "Type"), "directory");
    let pcopy = unique("pcopy");
    fs.ok(&["clone", &plain, &pcopy]);
    let ppath = fs.pool.join(&pcopy);
    assert!(is_subvolume(&ppath));
    let (total, exclusive) = fs_du(&ppath);
    assert!(total >= 50 << 20, "total {total}");
    assert!(exclusive < 1 << 20, "not reflinked: exclusive {exclusive}");

    // read-only: the subvolume flag, set and cleared.
    assert_eq!(ro_property(&cpath), "ro=false");
    fs.ok(&["read-only", &copy]);
    assert_eq!(ro_property(&cpath), "ro=true");
    assert_eq!(fs.prop(&copy, "ReadOnly"), "yes");
    assert!(fs.ok(&["image-status", &copy]).contains("RO: read-only"));
    let e = std::fs::write(cpath.join("new-file"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    // A read-only subvolume is renamed, and stays read-only.
    let moved = unique("moved");
    fs.ok(&["rename", &copy, &moved]);
    let mpath = fs.pool.join(&moved);
    assert_eq!(ro_property(&mpath), "ro=true");
    fs.ok(&["read-only", &moved, "no"]);
    assert_eq!(ro_property(&mpath), "ro=false");
    assert_eq!(fs.prop(&moved, "ReadOnly"), "no");
    std::fs::write(mpath.join("new-file"), "x").unwrap();
    // clone --read-only: a read-only snapshot.
    let ro = unique("ro");
    fs.ok(&["clone", "--read-only", &img, &ro]);
    assert_eq!(ro_property(&fs.pool.join(&ro)), "ro=true");

    // remove: the subvolume and the one nested in it, even read-only.
    fs.ok(&["read-only", &moved]);
    fs.ok(&["remove", &moved, &ro]);
    assert!(!mpath.exists() && !fs.pool.join(&ro).exists());
    let left = fs.subvolumes();
    assert!(
        !left.iter().any(|s| s.contains(&moved) || s.contains(&ro)),
        "{left:?}"
    );
    assert!(
        left.iter()
            .any(|s| s.ends_with(&format!("{img}/var/nested"))),
        "{left:?}"
    );
    assert!(fs.temporaries().is_empty(), "{:?}", fs.temporaries());
}

/// What `cp -a` must keep of the files `plain_with_metadata` makes:
/// owners, modes, sizes, device numbers, a hard link, holes, an ACL, a
/// file capability and a user xattr.
fn metadata(root: &Path) -> Vec<String> {
    let mut out = vec![];
    for rel in ["srv", "srv/owned", "srv/hard", "srv/null", "srv/sparse"] {
        let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
        out.push(format!(
            "{rel} {:o} {}:{} size={} rdev={:x} nlink={}",
            m.mode(),
            m.uid(),
            m.gid(),
            if m.is_dir() { 0 } else { m.size() },
            m.rdev(),
            m.nlink()
        ));
    }
    let ino = |rel: &str| std::fs::metadata(root.join(rel)).unwrap().ino();
    out.push(format!(
        "hard link kept: {}",
        ino("srv/owned") == ino("srv/hard")
    ));
    let sparse = std::fs::metadata(root.join("srv/sparse")).unwrap();
    out.push(format!("holes kept: {}", sparse.blocks() * 512 < 1 << 20));
    let tool = |prog: &str, args: &[&str], rel: &str| {
        let p = root.join(rel);
        let mut a = args.to_vec();
        a.push(p.to_str().unwrap());
        ok(cmd(prog, &a))
            .lines()
            .filter(|l| !l.starts_with("# file:"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(p.to_str().unwrap(), rel)
    };
    out.push(tool("getfacl", &["-n"], "srv/owned"));
    out.push(tool("getcap", &[], "srv/owned"));
    let mut buf = [0u8; 64];
    let path = std::ffi::CString::new(root.join("srv/owned").to_str().unwrap()).unwrap();
    // SAFETY: reads at most buf.len() bytes into buf.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"user.note".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    out.push(format!("user.note={:?}", buf.get(..n.max(0) as usize)));
    out
}

/// A busybox tree at `dir` with the files `metadata` looks at.
fn plain_with_metadata(fs: &Fs, dir: &Path) {
    fs.busybox(dir, 20);
    let f = dir.join("srv/owned");
    std::fs::write(&f, "owned").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::hard_link(&f, dir.join("srv/hard")).unwrap();
    let fs_ = f.to_str().unwrap();
    ok(cmd("setfacl", &["-m", "u:4321:r", fs_]));
    ok(cmd("setcap", &["cap_net_raw+ep", fs_]));
    let path = std::ffi::CString::new(fs_).unwrap();
    // SAFETY: the name and value are valid for the given lengths.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"user.note".as_ptr(),
            b"kept".as_ptr().cast(),
            4,
            0,
        )
    };
    assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
    nix::sys::stat::mknod(
        &dir.join("srv/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let sparse = std::fs::File::create(dir.join("srv/sparse")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"end", (64 << 20) - 3).unwrap();
    std::fs::set_permissions(
        dir.join("srv"),
        std::os::unix::fs::PermissionsExt::from_mode(0o2751),
    )
    .unwrap();
}

#[test]
fn directory_clone_by_reflinks_keeps_metadata() {
    if ours_only() {
        return;
    }
    let fs = Fs::new("btrfs-reflink");
    let plain = unique("plain");
    let src = fs.second.join(&plain);
    plain_with_metadata(&fs, &src);
    assert_eq!(fs.prop(&plain, "Type"), "directory");
    let before = metadata(&src);
    assert!(
        before.iter().any(|l| l.contains("cap_net_raw")),
        "{before:?}"
    );
    let copy = unique("copy");
    fs.ok(&["clone", &plain, &copy]);
    let dst = fs.pool.join(&copy);
    // Into a new subvolume, as the reference, sharing the data.
    assert!(is_subvolume(&dst));
    assert_eq!(before, metadata(&dst));
    let (total, exclusive) = fs_du(&dst);
    assert!(total >= 20 << 20, "total {total}");
    assert!(exclusive < 1 << 20, "not reflinked: exclusive {exclusive}");
    assert_eq!(
        std::fs::read(src.join("srv/data")).unwrap(),
        std::fs::read(dst.join("srv/data")).unwrap()
    );

    // export-tar and import-tar: the unpacker writes into a subvolume.
    let tar = fs.root.join("img.tar");
    fs.ok(&["export-tar", &copy, tar.to_str().unwrap()]);
    let imported = unique("imp");
    fs.ok(&["import-tar", tar.to_str().unwrap(), &imported]);
    assert!(is_subvolume(&fs.pool.join(&imported)));
    assert_eq!(fs.prop(&imported, "Type"), "subvolume");
    assert!(fs.temporaries().is_empty(), "{:?}", fs.temporaries());

    // A failed import removes its subvolume temporary.
    let data = std::fs::read(&tar).unwrap();
    let cut = fs.root.join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let before = fs.subvolumes();
    let o = fs.ctl(&["import-tar", cut.to_str().unwrap(), &unique("cut")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(fs.temporaries().is_empty(), "{:?}", fs.temporaries());
    assert_eq!(before, fs.subvolumes());
}

#[test]
fn running_subvolume_image() {
    if ours_only() {
        return;
    }
    let mut fs = Fs::new("btrfs-run");
    let src = fs.busybox(&fs.mnt.join("src"), 1);
    let img = unique("run");
    fs.ok(&["import-fs", src.to_str().unwrap(), &img]);
    assert!(is_subvolume(&fs.pool.join(&img)));

    let mut c = nspawn(&["-q", "--pipe", "-M", &img, "/bin/true"]);
    c.env("NSPAWN_IMAGE_PATH", fs.env());
    ok(run(c));

    fs.start(&img);
    for args in [vec!["remove", &img], vec!["read-only", &img]] {
        let err = fs.refused(&args);
        assert!(err.contains("busy"), "{args:?}: {err}");
    }
    assert!(is_subvolume(&fs.pool.join(&img)));
    assert_eq!(ro_property(&fs.pool.join(&img)), "ro=false");
    // A snapshot of a running machine's image is fine.
    let copy = unique("copy");
    fs.ok(&["clone", &img, &copy]);
    assert!(is_subvolume(&fs.pool.join(&copy)));

    for mut r in fs.runners.drain(..) {
        r.kill().unwrap();
        r.wait().unwrap();
    }
    let left = wait_clean(&img, &fs.pool.join(&img));
    assert!(left.is_empty(), "{left:?}");
    fs.ok(&["remove", &img]);
    assert!(!fs.pool.join(&img).exists());
    assert!(!fs.subvolumes().iter().any(|s| s.ends_with(&img)));
}

#[test]
fn killed_clone_into_subvolume_is_swept() {
    if ours_only() {
        return;
    }
    let fs = Fs::new("btrfs-kill");
    // A plain directory with many files: copying it takes a while.
    let big = unique("big");
    let tree = fs.busybox(&fs.second.join(&big), 1);
    for i in 0..3000 {
        std::fs::write(tree.join(format!("srv/f{i}")), [i as u8; 64]).unwrap();
    }
    std::fs::create_dir(&fs.pool).unwrap();
    let dst = unique("dst");
    let mut c = nspawnctl(&["clone", &big, &dst]);
    c.env("NSPAWN_IMAGE_PATH", fs.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(wait_until(T, || !fs.temporaries().is_empty()));
    child.kill().unwrap();
    child.wait().unwrap();
    let temps = fs.temporaries();
    assert!(!temps.is_empty(), "the copy ended before it was killed");
    let temp = fs.pool.join(&temps[0]);
    assert!(is_subvolume(&temp), "the temporary is not a subvolume");
    assert!(wait_until(T, || processes_with(temp.to_str().unwrap()).is_empty()));

    // The next clone sweeps the dead temporary, subvolume and all.
    let small = unique("small");
    fs.busybox(&fs.second.join(&small), 0);
    fs.ok(&["clone", &small, &unique("next")]);
    assert!(fs.temporaries().is_empty(), "{:?}", fs.temporaries());
    assert!(!fs.subvolumes().iter().any(|s| s.contains(".#")));
}

#[test]
fn set_limit_on_btrfs() {
    if ours_only() {
        return;
    }
    let fs = Fs::new("btrfs-quota");
    let src = fs.busybox(&fs.mnt.join("src"), 1);
    let img = unique("lim");
    fs.ok(&["import-fs", src.to_str().unwrap(), &img]);
    let path = fs.pool.join(&img);
    let id = subvolume_id(&path).unwrap();
    // Quotas are off until a limit is set: no limit, "infinity" as machinectl says.
    assert_eq!(fs.prop(&img, "Limit"), "infinity");

    fs.ok(&["set-limit", &img, "20M"]);
    let groups = qgroups(&fs.mnt);
    let limited: Vec<_> = groups
        .iter()
        .filter(|(g, _, _)| g.ends_with(&format!("/{id}")))
        .collect();
    assert!(
        limited.len() == 2 && limited.iter().all(|(_, _, m)| *m == Some(20 << 20)),
        "{groups:?}"
    );
    assert_eq!(fs.prop(&img, "Limit"), (20u64 << 20).to_string());
    ok(cmd(
        "btrfs",
        &["filesystem", "sync", fs.mnt.to_str().unwrap()],
    ));
    let usage: u64 = fs.prop(&img, "Usage").parse().unwrap();
    assert!(usage > 1 << 20 && usage < 20 << 20, "usage {usage}");
    // The kernel holds the image to it.
    let big = vec![1u8; 30 << 20];
    let e = std::fs::File::create(path.join("big"))
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, &big)?;
            f.sync_all()
        })
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EDQUOT), "{e}");
    // A limit below what the image holds is taken too.
    fs.ok(&["set-limit", &img, "1M"]);
    assert_eq!(fs.prop(&img, "Limit"), (1u64 << 20).to_string());
    let st = fs.ok(&["image-status", &img]);
    assert!(st.contains("Limit: 1.0M\n"), "{st}");
    assert!(st.contains("Usage: "), "{st}");
    let _ = std::fs::remove_file(path.join("big"));

    // Lifted again; the pool gets its own.
    fs.ok(&["set-limit", &img, "-"]);
    assert_eq!(fs.prop(&img, "Limit"), "infinity");
    fs.ok(&["set-limit", "1G"]);
    let pool_id = subvolume_id(&fs.pool).unwrap();
    let groups = qgroups(&fs.mnt);
    assert!(
        groups.iter().any(|(g, _, m)| g.starts_with("255/")
            && g.ends_with(&format!("/{pool_id}"))
            && *m == Some(1 << 30)),
        "{groups:?}"
    );
    // A new image lands in the pool's group: the pool's usage grows.
    let before = groups
        .iter()
        .find(|(g, _, _)| g == &format!("255/{pool_id}"))
        .unwrap()
        .1;
    let copy = unique("copy");
    fs.ok(&["import-fs", src.to_str().unwrap(), &copy]);
    let after = qgroups(&fs.mnt)
        .into_iter()
        .find(|(g, _, _)| g == &format!("255/{pool_id}"))
        .unwrap()
        .1;
    assert!(after > before, "pool usage {before} -> {after}");

    // Bad sizes, and a plain directory image: one clear line each.
    let err = fs.refused(&["set-limit", &img, "lots"]);
    assert!(err.contains("Failed to parse size: lots"), "{err}");
    let plain = unique("plain");
    fs.busybox(&fs.second.join(&plain), 0);
    let err = fs.refused(&["set-limit", &plain, "1G"]);
    assert!(err.contains("Quota is only supported on btrfs"), "{err}");

    // remove takes the image's quota groups along.
    fs.ok(&["remove", &copy]);
    let id = subvolume_id(&fs.pool.join(&img)).unwrap();
    fs.ok(&["remove", &img]);
    let groups = qgroups(&fs.mnt);
    assert!(
        !groups
            .iter()
            .any(|(g, _, _)| g.starts_with("254/") && g.ends_with(&format!("/{id}"))),
        "{groups:?}"
    );
}

#[test]
fn set_limit_elsewhere_refused() {
    if ours_only() {
        return;
    }
    // A pool on the host's /var/tmp file system, which is not btrfs here.
    let root = Path::new("/var/tmp/nspawn-tests").join(unique("noquota"));
    let pool = root.join("pool");
    let img = unique("dir");
    let st = Command::new(repo_root().join("scripts/fixtures.sh"))
        .arg("busybox")
        .arg(pool.join(&img))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let fstype = ok(cmd("stat", &["-f", "-c", "%T", pool.to_str().unwrap()]));
    let ctl = |args: &[&str]| {
        let mut c = nspawnctl(args);
        c.env("NSPAWN_IMAGE_PATH", &pool);
        run(c)
    };
    if fstype.trim() != "btrfs" {
        for (args, want) in [
            (vec!["set-limit", "1G"], "Quota is only supported on btrfs."),
            (
                vec!["set-limit", &img, "1G"],
                "Quota is only supported on btrfs",
            ),
        ] {
            let o = ctl(&args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
    // A directory clone on this file system still works.
    let copy = unique("copy");
    ok(ctl(&["clone", &img, &copy]));
    assert!(pool.join(&copy).join("etc/os-release").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn block_device_read_only() {
    if ours_only() {
        return;
    }
    let root = Path::new("/var/tmp/nspawn-tests").join(unique("blk"));
    let pool = root.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let dev = Loop::new(&root.join("disk.img"), 8 << 20);
    let name = unique("blk");
    std::os::unix::fs::symlink(&dev.dev, pool.join(&name)).unwrap();
    let ctl = |args: &[&str]| {
        let mut c = nspawnctl(args);
        c.env("NSPAWN_IMAGE_PATH", &pool);
        ok(run(c))
    };
    let getro = || {
        ok(cmd("blockdev", &["--getro", &dev.dev]))
            .trim()
            .to_string()
    };
    assert_eq!(
        ctl(&["show-image", "-p", "Type", "--value", &name]).trim(),
        "block"
    );
    assert_eq!(getro(), "0");
    ctl(&["read-only", &name]);
    assert_eq!(getro(), "1");
    assert_eq!(
        ctl(&["show-image", "-p", "ReadOnly", "--value", &name]).trim(),
        "yes"
    );
    ctl(&["read-only", &name, "no"]);
    assert_eq!(getro(), "0");
    assert_eq!(
        ctl(&["show-image", "-p", "ReadOnly", "--value", &name]).trim(),
        "no"
    );
    drop(dev);
    let _ = std::fs::remove_dir_all(&root);
}

/// OCI images on a btrfs pool: the tree after each layer is kept as a
/// read-only subvolume by chain of layers, so an image on the same base
/// begins as a snapshot of it (sharing its extents) and unpacks only
/// its own layers; `clean` removes the trees no image's layers need.
#[test]
fn oci_images_share_their_base_tree() {
    use nspawn_tests::oci::{Layout, LAYER_GZIP, LAYER_TAR};
    if reference() {
        return;
    }
    let fs = Fs::new("ocitrees");
    let base = fs.busybox(&fs.root.join("base"), 16);
    let base_layer = nspawn_tests::oci::tar_of(&base, Some("gzip"));
    let top = fs.root.join("top");
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("mine"), "two").unwrap();
    let run = serde_json::json!({"Cmd": ["/bin/cat", "/mine"]});
    let a = Layout::new(&fs.root.join("a"));
    let ma = a.image("amd64", &[(LAYER_GZIP, base_layer.clone())], run.clone());
    a.finish(vec![ma]);
    let b = Layout::new(&fs.root.join("b"));
    let top_layer = nspawn_tests::oci::tar_of(&top, None);
    let mb = b.image(
        "amd64",
        &[(LAYER_GZIP, base_layer), (LAYER_TAR, top_layer)],
        run,
    );
    b.finish(vec![mb]);

    fs.ok(&["import-oci", a.dir.to_str().unwrap(), "one"]);
    let trees = fs.pool.join(".oci_store/trees");
    let kept = || -> Vec<PathBuf> {
        std::fs::read_dir(&trees)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let first = kept();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(is_subvolume(&first[0]) && ro_property(&first[0]).contains("true"));
    fs.ok(&["import-oci", b.dir.to_str().unwrap(), "two"]);
    assert_eq!(kept().len(), 2);
    // "two" is a snapshot of the base's tree, its 16 MiB shared.
    assert_eq!(
        subvolume_field(&fs.pool.join("two"), "Parent UUID:"),
        subvolume_field(&first[0], "UUID:")
    );
    let (total, exclusive) = fs_du(&fs.pool.join("two"));
    assert!(
        total > 16 << 20 && exclusive < 1 << 20,
        "{total} {exclusive}"
    );
    assert_eq!(
        std::fs::read_to_string(fs.pool.join("two/mine")).unwrap(),
        "two"
    );
    assert!(fs.pool.join("two/srv/data").is_file());

    fs.ok(&["remove", "two"]);
    fs.ok(&["clean"]);
    assert_eq!(kept(), first, "the base's tree stays for 'one'");
    fs.ok(&["remove", "one"]);
    fs.ok(&["clean"]);
    assert!(kept().is_empty());
    assert_eq!(
        std::fs::read_dir(fs.pool.join(".oci_store/sha256"))
            .unwrap()
            .count(),
        0
    );
}
