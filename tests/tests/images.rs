//! The image store and nspawnctl's local image verbs. Each test has its
//! own search path (`NSPAWN_IMAGE_PATH`, two directories under
//! /var/tmp/nspawn-tests) and unique image names, and its `Pool` guard
//! removes all of it, and the settings files it put in
//! /etc/systemd/nspawn, even when the test fails. Our own tool: skipped
//! in reference mode (machinectl needs systemd-machined).

use nspawn_tests::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

struct Pool {
    root: PathBuf,
    /// First and second directory of the search path.
    first: PathBuf,
    second: PathBuf,
    /// Files of ours in the trusted settings directories.
    trusted: Vec<PathBuf>,
    runners: Vec<Child>,
    mounts: Vec<PathBuf>,
}

impl Pool {
    fn new(prefix: &str) -> Pool {
        let root = Path::new("/var/tmp/nspawn-tests").join(unique(prefix));
        let (first, second) = (root.join("first"), root.join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        Pool {
            root,
            first,
            second,
            trusted: vec![],
            runners: vec![],
            mounts: vec![],
        }
    }

    fn env(&self) -> String {
        format!("{}:{}", self.first.display(), self.second.display())
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut c = nspawnctl(args);
        c.env("NSPAWN_IMAGE_PATH", self.env());
        run(c)
    }

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

    /// A busybox tree at `dir/name`.
    fn busybox(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        let st = Command::new(repo_root().join("scripts/fixtures.sh"))
            .arg("busybox")
            .arg(&p)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "busybox fixture failed");
        p
    }

    fn trusted(&mut self, name: &str, text: &str) -> PathBuf {
        let p = Path::new("/etc/systemd/nspawn").join(format!("{name}.nspawn"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        self.trusted.push(p.clone());
        p
    }

    fn note_trusted(&mut self, name: &str) -> PathBuf {
        let p = Path::new("/etc/systemd/nspawn").join(format!("{name}.nspawn"));
        self.trusted.push(p.clone());
        p
    }

    /// Run `nspawn -D tree` with a long sleep, until its machine is up.
    fn start(&mut self, tree: &Path) {
        let name = tree.file_name().unwrap().to_str().unwrap().to_string();
        let mut c = nspawn(&["-q", "--pipe", "-D", tree.to_str().unwrap()]);
        c.args(["/bin/sleep", &marker()]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.runners.push(c.spawn().unwrap());
        assert!(
            wait_until(T, || Path::new("/run/nspawn/machines").join(&name).exists()),
            "machine {name} did not start"
        );
    }

    fn names(&self, all: bool) -> Vec<String> {
        let mut args = vec!["list-images", "--no-legend"];
        if all {
            args.push("--all");
        }
        self.ok(&args)
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    }

    fn temporaries(&self) -> Vec<String> {
        std::fs::read_dir(&self.first)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".#"))
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for mut r in self.runners.drain(..) {
            let _ = r.kill();
            let _ = r.wait();
        }
        for m in &self.mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        for dir in [&self.first, &self.second] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                stop_runners_of(e.path().to_str().unwrap());
            }
            make_entries_mutable(dir);
        }
        let _ = std::fs::remove_dir_all(&self.root);
        for p in &self.trusted {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad json {s:?}: {e}"))
}

/// `du`'s count of the bytes allocated in a tree (no symlinks followed,
/// one file system, hard links once).
fn du(p: &Path) -> u64 {
    let out = ok(run({
        let mut c = Command::new("du");
        c.args(["-s", "-x", "-B1"]).arg(p);
        c
    }));
    out.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn list_status_show() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-list");
    assert_eq!(pool.ok(&["list-images"]), "No images.\n");
    assert_eq!(pool.ok(&["list-images", "-o", "json"]).trim(), "[]");

    let img = unique("img");
    let tree = pool.busybox(&pool.first.clone(), &img);
    std::fs::write(tree.join("etc/hostname"), "imghost\n").unwrap();
    std::fs::write(
        tree.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::write(pool.first.join(format!("{img}.nspawn")), "[Exec]\n").unwrap();
    // A second entry of the same name further down the path is shadowed.
    std::fs::create_dir(pool.second.join(&img)).unwrap();
    // A symlink to a tree outside the search path.
    let link = unique("lnk");
    let target = pool.busybox(&pool.root.clone(), "target");
    std::os::unix::fs::symlink(&target, pool.second.join(&link)).unwrap();
    let hidden = format!(".{}", unique("hid"));
    std::fs::create_dir(pool.first.join(&hidden)).unwrap();
    // A sparse raw file: 64 MiB long, one block written.
    let disk = unique("disk");
    let raw = pool.second.join(format!("{disk}.raw"));
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data", 4096).unwrap();
    drop(f);
    // Neither images nor hidden images: a temporary, a stray file, a bad name.
    std::fs::create_dir(pool.first.join(".#work")).unwrap();
    std::fs::write(pool.first.join("notes.txt"), "x").unwrap();
    std::fs::create_dir(pool.first.join("bad name")).unwrap();

    let mut sorted = vec![disk.clone(), img.clone(), link.clone()];
    sorted.sort();
    let text = pool.ok(&["list-images"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TYPE", "RO", "USAGE", "CREATED", "MODIFIED"],
        "{text}"
    );
    assert_eq!(lines.len(), 1 + 3 + 2, "{text}");
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "3 images listed.");
    assert_eq!(pool.names(false), sorted);
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(&row(&img)[1..3], ["directory", "no"]);
    assert_eq!(&row(&link)[1..3], ["directory", "no"]);
    assert_eq!(&row(&disk)[1..4], ["raw", "no", "4.0K"]);
    // Times as machinectl: `Tue 2026-12-01 14:00:00 UTC`.
    let created = &row(&img)[4..8];
    assert_eq!(created[0].len(), 3, "{created:?}");
    assert_eq!(created[1].len(), 10, "{created:?}");
    assert_eq!(created[2].len(), 8, "{created:?}");

    let mut with_hidden = sorted.clone();
    with_hidden.push(hidden.clone());
    with_hidden.sort();
    assert_eq!(pool.names(true), with_hidden);
    assert!(pool
        .ok(&["list-images", "--all"])
        .ends_with("\n4 images listed.\n"));

    let v = json(&pool.ok(&["list-images", "--output=json"]));
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    let by_name: BTreeMap<String, &serde_json::Value> = arr
        .iter()
        .map(|o| (o["name"].as_str().unwrap().to_string(), o))
        .collect();
    let i = by_name[&img];
    assert_eq!(i["type"], "directory");
    assert_eq!(i["ro"], false);
    assert_eq!(i["usage"].as_u64().unwrap(), du(&tree));
    let mtime = std::fs::metadata(&tree).unwrap().mtime() as u64;
    assert_eq!(i["modified"].as_u64().unwrap() / 1_000_000, mtime);
    assert!(i["created"].as_u64().is_some());
    assert_eq!(by_name[&link]["usage"].as_u64().unwrap(), du(&target));
    let d = by_name[&disk];
    assert_eq!(d["type"], "raw");
    assert_eq!(
        d["usage"].as_u64().unwrap(),
        std::fs::metadata(&raw).unwrap().blocks() * 512
    );
    let all = json(&pool.ok(&["list-images", "--all", "--output=json"]));
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["name"] == hidden.as_str()));

    // image-status: the shadowing entry is not the one found.
    let st = pool.ok(&["image-status", &img]);
    assert!(st.starts_with(&format!("{img}\n")), "{st}");
    for want in [
        "Type: directory".to_string(),
        format!("Path: {}", tree.display()),
        "Hostname: imghost".into(),
        "Machine ID: 0123456789abcdef0123456789abcdef".into(),
        "OS: BusyBox test tree (nspawn-rs fixture)".into(),
        "RO: writable".into(),
        "Created: ".into(),
        "Modified: ".into(),
        "Usage: ".into(),
        format!(
            "Settings: {} (untrusted)",
            pool.first.join(format!("{img}.nspawn")).display()
        ),
    ] {
        assert!(st.contains(&want), "{want:?} missing in\n{st}");
    }
    // A trusted settings file wins.
    let t = pool.trusted(&img, "[Exec]\n");
    let st = pool.ok(&["image-status", &img]);
    assert!(st.contains(&format!("Settings: {}\n", t.display())), "{st}");
    let st = pool.ok(&["image-status", &link, &disk]);
    assert!(st.contains(&format!("Path: {}", pool.second.join(&link).display())));
    assert!(st.contains("Type: raw"), "{st}");

    // show-image: the reference's properties, in its order.
    let show = pool.ok(&["show-image", &img]);
    let keys: Vec<&str> = show.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "Name",
            "Path",
            "Type",
            "ReadOnly",
            "CreationTimestamp",
            "ModificationTimestamp",
            "Usage",
            "Limit",
            "UsageExclusive",
            "LimitExclusive"
        ]
    );
    assert!(show.contains(&format!("Path={}\n", tree.display())));
    assert!(show.contains("ReadOnly=no\n"));
    assert_eq!(
        pool.ok(&["show-image", "-p", "Type", "--value", &disk]),
        "raw\n"
    );
    assert_eq!(
        pool.ok(&["show-image", "-p", "Name", "-p", "Type", &hidden]),
        format!("Name={hidden}\nType=directory\n")
    );
    assert_eq!(
        pool.ok(&["show-image", "-p", "Usage", "--value", &img])
            .trim(),
        du(&tree).to_string()
    );
}

/// Everything `cp -a` keeps, per path below `top`: type, mode, owner,
/// link target, size, and which paths share an inode.
fn walk(top: &Path) -> BTreeMap<String, String> {
    fn go(
        dir: &Path,
        rel: &str,
        inodes: &mut BTreeMap<u64, String>,
        out: &mut BTreeMap<String, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            let m = e.metadata().unwrap();
            let link = std::fs::read_link(e.path())
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            let shared = match m.nlink() > 1 && !m.is_dir() {
                true => inodes.entry(m.ino()).or_insert(name.clone()).clone(),
                false => String::new(),
            };
            let size = if m.is_dir() { 0 } else { m.size() };
            out.insert(
                name.clone(),
                format!(
                    "{:o} {}:{} {size} {link} {shared}",
                    m.mode(),
                    m.uid(),
                    m.gid()
                ),
            );
            if m.is_dir() {
                go(&e.path(), &name, inodes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    let m = std::fs::metadata(top).unwrap();
    out.insert(
        ".".into(),
        format!("{:o} {}:{}", m.mode(), m.uid(), m.gid()),
    );
    go(top, "", &mut BTreeMap::new(), &mut out);
    out
}

#[test]
fn clone_keeps_the_tree() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-clone");
    let img = unique("src");
    // The source lies further down the path, behind a symlink.
    let tree = pool.busybox(&pool.root.clone(), "real");
    std::os::unix::fs::symlink(&tree, pool.second.join(&img)).unwrap();
    let f = tree.join("srv/owned");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, "owned").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::hard_link(&f, tree.join("srv/hard")).unwrap();
    std::os::unix::fs::symlink("/etc/os-release", tree.join("srv/abs")).unwrap();
    std::os::unix::fs::symlink("../nowhere", tree.join("srv/dangling")).unwrap();
    std::fs::set_permissions(tree.join("srv"), std::fs::Permissions::from_mode(0o2751)).unwrap();
    std::fs::write(
        pool.second.join(format!("{img}.nspawn")),
        "[Exec]\nBoot=no\n",
    )
    .unwrap();
    pool.trusted(&img, "[Exec]\nBoot=no\n");

    let copy = unique("copy");
    let copy_trusted = pool.note_trusted(&copy);
    assert_eq!(pool.ok(&["clone", &img, &copy]), "");
    // Into the first directory of the path, as a real directory.
    let dst = pool.first.join(&copy);
    assert!(!dst.symlink_metadata().unwrap().is_symlink());
    assert_eq!(walk(&tree), walk(&dst));
    assert_eq!(
        std::fs::read_to_string(pool.first.join(format!("{copy}.nspawn"))).unwrap(),
        "[Exec]\nBoot=no\n"
    );
    assert!(copy_trusted.is_file());
    assert!(pool.temporaries().is_empty());
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &copy]),
        "no\n"
    );

    let ro = unique("ro");
    pool.note_trusted(&ro);
    pool.ok(&["clone", "--read-only", &img, &ro]);
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &ro]),
        "yes\n"
    );

    // An existing destination anywhere in the path: refused, nothing changed.
    let before = walk(&pool.root);
    let err = pool.refused(&["clone", &copy, &img]);
    assert!(err.contains("already exists"), "{err}");
    pool.refused(&["clone", &img, &copy]);
    pool.refused(&["clone", &img, "bad/name"]);
    pool.refused(&["clone", "nosuch", &unique("x")]);
    assert_eq!(before, walk(&pool.root));

    // A raw image stays sparse.
    let disk = unique("disk");
    let raw = pool.second.join(format!("{disk}.raw"));
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data", 1 << 20).unwrap();
    drop(f);
    let disk2 = unique("disk");
    pool.ok(&["clone", &disk, &disk2]);
    let raw2 = pool.first.join(format!("{disk2}.raw"));
    let m = std::fs::metadata(&raw2).unwrap();
    assert_eq!(m.len(), 64 << 20);
    assert!(m.blocks() * 512 < 1 << 20, "not sparse: {}", m.blocks());
    assert!(std::fs::read(&raw).unwrap() == std::fs::read(&raw2).unwrap());
}

#[test]
fn rename_moves_settings() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-rename");
    let img = unique("old");
    let tree = pool.busybox(&pool.second.clone(), &img);
    std::fs::write(pool.second.join(format!("{img}.nspawn")), "[Exec]\n").unwrap();
    let old_trusted = pool.trusted(&img, "[Exec]\n");
    let new = unique("new");
    let new_trusted = pool.note_trusted(&new);
    let inode = std::fs::metadata(&tree).unwrap().ino();
    assert_eq!(pool.ok(&["rename", &img, &new]), "");
    // In its own directory, the same tree.
    let moved = pool.second.join(&new);
    assert_eq!(std::fs::metadata(&moved).unwrap().ino(), inode);
    assert!(!tree.exists());
    assert!(pool.second.join(format!("{new}.nspawn")).is_file());
    assert!(!pool.second.join(format!("{img}.nspawn")).exists());
    assert!(new_trusted.is_file() && !old_trusted.exists());
    assert_eq!(pool.names(false), vec![new.clone()]);

    // Never over another image, nor to a bad name; a read-only one moves
    // and stays read-only.
    let other = unique("other");
    pool.busybox(&pool.first.clone(), &other);
    let before = walk(&pool.root);
    let err = pool.refused(&["rename", &new, &other]);
    assert!(
        err.contains(&format!("Image '{other}' already exists.")),
        "{err}"
    );
    pool.refused(&["rename", &new, ".#x"]);
    pool.refused(&["rename", &unique("nosuch"), &unique("x")]);
    assert_eq!(before, walk(&pool.root));
    pool.ok(&["read-only", &new]);
    let last = unique("last");
    pool.note_trusted(&last);
    pool.ok(&["rename", &new, &last]);
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &last]),
        "yes\n"
    );
}

#[test]
fn remove_and_clean() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-remove");
    let img = unique("rm");
    let tree = pool.busybox(&pool.first.clone(), &img);
    std::fs::write(pool.first.join(format!("{img}.nspawn")), "[Exec]\n").unwrap();
    let t = pool.trusted(&img, "[Exec]\n");
    // A symlink to something outside the tree that must survive.
    let outside = pool.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("srv-link")).unwrap();
    // A symlinked image: the link goes, its target stays.
    let link = unique("lnk");
    let target = pool.busybox(&pool.root.clone(), "target");
    std::os::unix::fs::symlink(&target, pool.second.join(&link)).unwrap();

    // An unknown name among them: nothing removed.
    pool.refused(&["remove", &img, &unique("nosuch")]);
    assert!(tree.is_dir());
    pool.ok(&["remove", &img, &link]);
    assert!(!tree.exists() && !pool.first.join(format!("{img}.nspawn")).exists());
    assert!(!t.exists());
    assert!(outside.join("keep").is_file());
    assert!(pool.second.join(&link).symlink_metadata().is_err());
    assert!(target.join("etc/os-release").exists());

    // clean: hidden images only; --all: everything.
    let (a, b) = (unique("a"), format!(".{}", unique("h")));
    pool.busybox(&pool.first.clone(), &a);
    pool.busybox(&pool.first.clone(), &b);
    let out = pool.ok(&["clean"]);
    assert!(out.contains(&format!("Removed image '{b}'.")), "{out}");
    assert_eq!(pool.names(true), vec![a.clone()]);
    pool.ok(&["read-only", &a]);
    let out = pool.ok(&["clean", "--all"]);
    assert!(out.contains(&format!("Removed image '{a}'.")), "{out}");
    assert!(pool.names(true).is_empty());
}

#[test]
fn read_only() {
    if ours_only() {
        return;
    }
    let pool = Pool::new("img-ro");
    let img = unique("ro");
    let tree = pool.busybox(&pool.first.clone(), &img);
    pool.ok(&["read-only", &img]);
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &img]),
        "yes\n"
    );
    assert!(pool.ok(&["image-status", &img]).contains("RO: read-only"));
    let row = pool.ok(&["list-images", "--no-legend"]);
    assert_eq!(row.split_whitespace().nth(2), Some("yes"), "{row}");
    let e = std::fs::write(tree.join("new-file"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    pool.ok(&["read-only", &img, "no"]);
    std::fs::write(tree.join("new-file"), "x").unwrap();
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &img]),
        "no\n"
    );

    let disk = unique("disk");
    let raw = pool.first.join(format!("{disk}.raw"));
    std::fs::write(&raw, "x").unwrap();
    std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o664)).unwrap();
    pool.ok(&["read-only", &disk, "yes"]);
    assert_eq!(std::fs::metadata(&raw).unwrap().mode() & 0o777, 0o444);
    assert_eq!(
        pool.ok(&["show-image", "-p", "ReadOnly", "--value", &disk]),
        "yes\n"
    );
    pool.ok(&["read-only", &disk, "false"]);
    assert_eq!(std::fs::metadata(&raw).unwrap().mode() & 0o777, 0o644);
    pool.refused(&["read-only", &disk, "maybe"]);
}

#[test]
fn busy_image_refused() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-busy");
    let img = unique("busy");
    let tree = pool.busybox(&pool.first.clone(), &img);
    let other = unique("other");
    pool.busybox(&pool.first.clone(), &other);
    pool.start(&tree);
    for args in [
        vec!["remove", &img],
        vec!["rename", &img, "renamed"],
        vec!["read-only", &img],
    ] {
        let err = pool.refused(&args);
        assert!(err.contains("busy"), "{args:?}: {err}");
    }
    let out = nspawnctl(&["clean", "--all"])
        .env("NSPAWN_IMAGE_PATH", pool.env())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains(&format!("Removed image '{other}'.")));
    assert!(stderr(&out).contains(&img), "{}", stderr(&out));
    assert!(tree.join("etc/os-release").exists());
    assert_eq!(pool.names(false), vec![img.clone()]);
    // Cloning from a running image is fine (as the reference).
    pool.ok(&["clone", &img, &unique("copy")]);
}

#[test]
fn failed_clone_leaves_nothing() {
    if ours_only() {
        return;
    }
    let mut pool = Pool::new("img-full");
    let img = unique("img");
    pool.busybox(&pool.second.clone(), &img);
    // A first directory too small for the copy.
    nix::mount::mount(
        Some("tmpfs"),
        &pool.first,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=256k"),
    )
    .unwrap();
    pool.mounts.push(pool.first.clone());
    let dst = unique("dst");
    let err = pool.refused(&["clone", &img, &dst]);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(pool.temporaries().is_empty(), "{:?}", pool.temporaries());
    assert!(std::fs::read_dir(&pool.first).unwrap().next().is_none());
    assert_eq!(pool.names(true), vec![img.clone()]);
}

/// A busybox image in the second directory with 300 MiB more in it,
/// enough that copying it takes a while; its name.
fn big_image(pool: &Pool) -> String {
    let big = unique("big");
    let tree = pool.busybox(&pool.second.clone(), &big);
    let data = tree.join("srv");
    std::fs::create_dir_all(&data).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for i in 0..300 {
        std::fs::write(data.join(format!("f{i}")), &chunk).unwrap();
    }
    big
}

#[test]
fn killed_clone_leaves_nothing() {
    if ours_only() {
        return;
    }
    let pool = Pool::new("img-kill");
    let big = big_image(&pool);
    let dst = unique("dst");
    let mut c = nspawnctl(&["clone", &big, &dst]);
    c.env("NSPAWN_IMAGE_PATH", pool.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    assert!(wait_until(T, || !pool.temporaries().is_empty()));
    std::thread::sleep(Duration::from_millis(20));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !pool.temporaries().is_empty(),
        "the copy ended before it was killed"
    );
    // Its cp dies with it.
    let temp = pool.first.join(&pool.temporaries()[0]);
    assert!(wait_until(T, || processes_with(temp.to_str().unwrap()).is_empty()));
    assert!(!pool.first.join(&dst).exists());
    assert!(!pool.names(true).contains(&dst));

    let small = unique("small");
    pool.busybox(&pool.second.clone(), &small);
    pool.ok(&["clone", &small, &unique("next")]);
    assert!(pool.temporaries().is_empty(), "{:?}", pool.temporaries());
    assert!(!temp.exists());
}

#[test]
fn bad_input() {
    if ours_only() {
        return;
    }
    let pool = Pool::new("img-bad");
    let img = unique("img");
    pool.busybox(&pool.first.clone(), &img);
    let before = walk(&pool.root);
    for args in [
        vec!["image-status", "no/such"],
        vec!["image-status", &img, "nosuch"],
        vec!["show-image", "-bad"],
        vec!["show-image", "nosuch"],
        vec!["remove", "a b"],
        vec!["remove", ".."],
        vec!["rename", &img, "a/b"],
        vec!["rename", &img, &img],
        vec!["clone", &img, ""],
        vec!["clone", &img, ".#tmp"],
        vec!["read-only", "nosuch"],
        vec!["read-only", &img, "2"],
    ] {
        let err = pool.refused(&args);
        assert!(!err.contains("\n\n"), "{err}");
    }
    assert_eq!(before, walk(&pool.root));
}

#[test]
fn machine_option_finds_store_image() {
    if ours_only() {
        return;
    }
    let pool = Pool::new("img-machine");
    let img = unique("mimg");
    let target = pool.busybox(&pool.root.clone(), "target");
    std::os::unix::fs::symlink(&target, pool.second.join(&img)).unwrap();
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-M",
        &img,
        "/bin/sh",
        "-c",
        "hostname; cat /etc/os-release >/dev/null && echo ok",
    ]);
    c.env("NSPAWN_IMAGE_PATH", pool.env());
    let out = ok(run(c));
    assert_eq!(out, format!("{img}\nok\n"));

    let mut c = nspawn(&["-q", "--pipe", "-M", &unique("nosuch"), "/bin/true"]);
    c.env("NSPAWN_IMAGE_PATH", pool.env());
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("No image for machine"),
        "{}",
        stderr(&o)
    );

    // A raw image runs as with -i: this one has no file system.
    let disk = unique("disk");
    std::fs::write(pool.first.join(format!("{disk}.raw")), "x").unwrap();
    let mut c = nspawn(&["-q", "--pipe", "-M", &disk, "/bin/true"]);
    c.env("NSPAWN_IMAGE_PATH", pool.env());
    let o = run(c);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Couldn't identify a suitable partition table or file system"),
        "{}",
        stderr(&o)
    );
}

/// SIGTERM or Ctrl-C (SIGINT) during a clone: the copy stops, the
/// temporary is removed at once (not only by the next clone's sweep), one
/// line says so.
#[test]
fn cancelled_clone_leaves_nothing() {
    if ours_only() {
        return;
    }
    let pool = Pool::new("img-cancel");
    let big = big_image(&pool);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dst = unique("dst");
        let mut c = nspawnctl(&["clone", &big, &dst]);
        c.env("NSPAWN_IMAGE_PATH", pool.env())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        assert!(wait_until(T, || !pool.temporaries().is_empty()));
        let temp = pool.first.join(&pool.temporaries()[0]);
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let o = wait_output(child, T);
        assert_eq!(o.status.code(), Some(1), "signal {sig}: {o:?}");
        assert_eq!(stderr(&o).trim(), "nspawnctl: copy cancelled");
        assert!(pool.temporaries().is_empty(), "{:?}", pool.temporaries());
        assert!(processes_with(temp.to_str().unwrap()).is_empty());
        assert!(!pool.names(true).contains(&dst));
    }
}
