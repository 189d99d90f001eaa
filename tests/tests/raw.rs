//! import-raw, pull-raw and export-raw. Each test has its own pool
//! (`NSPAWN_IMAGE_PATH`) under /var/tmp/nspawn-tests, removed by its `Pool`
//! guard; pulls go to the test's own HTTP server on 127.0.0.1. The images
//! are real: ext4 file systems made with `mkfs.ext4 -d`, mostly holes.
//! Where the reference's helpers run here (`systemd-import`,
//! `systemd-export`, without D-Bus), our results are compared with theirs.

use nspawn_tests::http::Server;
use nspawn_tests::pool::Pool;
use nspawn_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Raw images in a test's pool.
trait Raw {
    fn image(&self, name: &str) -> PathBuf;
    fn ext4(&self, name: &str) -> PathBuf;
}

impl Raw for Pool {
    fn image(&self, name: &str) -> PathBuf {
        self.pool.join(format!("{name}.raw"))
    }

    /// A 32 MiB ext4 file system holding a small tree (a text file, a
    /// random file, a symlink, a directory), as `root/NAME.raw`.
    fn ext4(&self, name: &str) -> PathBuf {
        let tree = self.root.join(format!("tree-{name}"));
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hello"), "hello from a raw image\n").unwrap();
        let noise: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(tree.join("noise"), noise).unwrap();
        std::os::unix::fs::symlink("etc/hello", tree.join("link")).unwrap();
        let img = self.root.join(format!("{name}.raw"));
        let st = Command::new("truncate")
            .args(["-s", "32M"])
            .arg(&img)
            .status()
            .unwrap();
        assert!(st.success());
        let o = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&tree)
            .arg(&img)
            .output()
            .unwrap();
        assert!(o.status.success(), "mkfs.ext4: {}", stderr(&o));
        img
    }
}

/// Whether `tool` is on PATH; a note if not.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !ok {
        eprintln!("note: {tool} missing, its part not checked");
    }
    ok
}

/// The compressions: `--format=` name, suffix, the tool that writes and
/// reads it.
const FORMATS: &[(&str, &str, &str)] = &[
    ("uncompressed", "", "cat"),
    ("xz", ".xz", "xz"),
    ("gzip", ".gz", "gzip"),
    ("bzip2", ".bz2", "bzip2"),
    ("zstd", ".zst", "zstd"),
];

/// `tool -c FILE` (compress) into `to`.
fn compress(tool: &str, file: &Path, to: &Path) {
    let out = std::fs::File::create(to).unwrap();
    let mut c = Command::new(tool);
    if tool != "cat" {
        c.args(["-c", "-q"]);
    }
    let st = c.arg(file).stdout(out).status().unwrap();
    assert!(st.success(), "{tool} {}", file.display());
}

/// `tool -dc FILE`: the decompressed bytes.
fn decompress(tool: &str, file: &Path) -> Vec<u8> {
    let mut c = Command::new(tool);
    if tool != "cat" {
        c.arg("-dc");
    }
    let o = c.arg(file).output().unwrap();
    assert!(
        o.status.success(),
        "{tool} -dc {}: {}",
        file.display(),
        stderr(&o)
    );
    o.stdout
}

#[track_caller]
fn same_bytes(a: &Path, b: &Path) {
    let o = Command::new("cmp").arg(a).arg(b).output().unwrap();
    assert!(
        o.status.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        stdout(&o)
    );
}

/// Bytes of `p` taken on disk: the holes of a sparse file are not.
fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[track_caller]
fn assert_sparse(p: &Path) {
    let (size, used) = (std::fs::metadata(p).unwrap().len(), allocated(p));
    assert!(
        used * 4 < size,
        "{} not sparse: {used} of {size} bytes allocated",
        p.display()
    );
}

/// The image is a file system that checks clean and holds our file.
#[track_caller]
fn usable(img: &Path) {
    let o = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
    assert!(o.status.success(), "e2fsck: {}{}", stdout(&o), stderr(&o));
    let o = Command::new("debugfs")
        .args(["-R", "cat /etc/hello"])
        .arg(img)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "hello from a raw image\n", "{}", stderr(&o));
}

fn sha256(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    text(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn import_file_and_stdin() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-import");
    let img = p.ext4("disk");
    // A file: the name from it, the bytes as they were, holes kept.
    let o = p.ctl(&["import-raw", img.to_str().unwrap()]);
    ok(o);
    assert_eq!(p.entries(), ["disk.raw"]);
    same_bytes(&img, &p.image("disk"));
    assert_sparse(&p.image("disk"));
    usable(&p.image("disk"));
    // stdin, which needs a name.
    let mut c = nspawnctl(&["import-raw", "-", "fromstdin"]);
    c.env("NSPAWN_IMAGE_PATH", &p.pool)
        .stdin(std::fs::File::open(&img).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().unwrap(), Duration::from_secs(60));
    assert!(
        stderr(&o).contains("Imported image 'fromstdin'."),
        "{}",
        stderr(&o)
    );
    same_bytes(&img, &p.image("fromstdin"));
    assert_sparse(&p.image("fromstdin"));
    let err = p.refused(&["import-raw", "-"]);
    assert!(err.contains("an image name is needed"), "{err}");
    // Nothing on stdin is no image.
    let err = p.refused(&["import-raw", "-", "empty"]);
    assert!(err.contains("is empty"), "{err}");
    // Listed as raw images, writable, with what they take on disk.
    let list = ok(p.ctl(&["list-images", "--output=json"]));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let disk = v
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "disk")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(disk["type"], "raw", "{list}");
    assert_eq!(disk["ro"], false, "{list}");
    let table = ok(p.ctl(&["list-images"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("disk ") && l.split_whitespace().nth(1) == Some("raw")),
        "{table}"
    );
    // An existing name is refused; --force replaces it, --read-only
    // clears the write bits.
    let err = p.refused(&["import-raw", img.to_str().unwrap()]);
    assert_eq!(err, "nspawnctl: Image 'disk' already exists.");
    std::fs::write(p.root.join("other.raw"), b"other bytes").unwrap();
    ok(p.ctl(&[
        "import-raw",
        "--force",
        "--read-only",
        p.root.join("other.raw").to_str().unwrap(),
        "disk",
    ]));
    assert_eq!(std::fs::read(p.image("disk")).unwrap(), b"other bytes");
    let mode = std::fs::metadata(p.image("disk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o222, 0, "{mode:o}");
    assert_eq!(
        ok(p.ctl(&["show-image", "-p", "ReadOnly", "--value", "disk"])).trim(),
        "yes"
    );
    assert_eq!(p.entries(), ["disk.raw", "fromstdin.raw"]);
}

/// Each compression out (`export-raw`, by suffix and by `--format=`) and in
/// (`import-raw`, by content): byte-identical round trips, the system's
/// tools reading what we write and we reading what they write.
#[test]
fn compressions_round_trip() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-comp");
    let img = p.ext4("base");
    ok(p.ctl(&["import-raw", img.to_str().unwrap()]));
    for (format, suffix, tool) in FORMATS {
        let tool_ok = have(tool);
        // Out by suffix: a neutral name for uncompressed.
        let out = p.root.join(format!("out-{format}.raw{suffix}"));
        ok(p.ctl(&["export-raw", "base", out.to_str().unwrap()]));
        if *format == "uncompressed" {
            same_bytes(&img, &out);
            assert_sparse(&out);
        } else if tool_ok {
            assert!(
                decompress(tool, &out) == std::fs::read(&img).unwrap(),
                "{format}: {tool} reads other bytes"
            );
        }
        // In again, the format told by the bytes alone.
        let neutral = p.root.join(format!("in-{format}.bin"));
        std::fs::rename(&out, &neutral).unwrap();
        let name = format!("back-{format}");
        ok(p.ctl(&["import-raw", neutral.to_str().unwrap(), &name]));
        same_bytes(&img, &p.image(&name));
        assert_sparse(&p.image(&name));
        // Written by the tool, read by us.
        if tool_ok {
            let theirs = p.root.join(format!("theirs-{format}"));
            compress(tool, &img, &theirs);
            let name = format!("theirs-{format}");
            ok(p.ctl(&["import-raw", theirs.to_str().unwrap(), &name]));
            same_bytes(&img, &p.image(&name));
        }
        // --format= to stdout, overriding no suffix at all.
        let o = p.ctl(&["export-raw", &format!("--format={format}"), "base"]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        let piped = p.root.join(format!("stdout-{format}"));
        std::fs::write(&piped, &o.stdout).unwrap();
        let name = format!("piped-{format}");
        ok(p.ctl(&["import-raw", piped.to_str().unwrap(), &name]));
        same_bytes(&img, &p.image(&name));
    }
    usable(&p.image("back-zstd"));
    // Concatenated xz streams are one stream, as xz(1) reads them.
    if have("xz") {
        let two = p.root.join("two.xz");
        let mut data = std::fs::read(p.root.join("theirs-xz")).unwrap();
        let half = p.root.join("half");
        std::fs::write(&half, b"more bytes\n").unwrap();
        compress("xz", &half, &p.root.join("half.xz"));
        data.extend(std::fs::read(p.root.join("half.xz")).unwrap());
        std::fs::write(&two, &data).unwrap();
        ok(p.ctl(&["import-raw", two.to_str().unwrap(), "two"]));
        let mut want = std::fs::read(&img).unwrap();
        want.extend_from_slice(b"more bytes\n");
        assert!(std::fs::read(p.image("two")).unwrap() == want);
    }
    let err = p.refused(&["export-raw", "--format=lz4", "base"]);
    assert!(err.contains("invalid format 'lz4'"), "{err}");
}

/// A stream cut short or damaged is refused with one line, and neither an
/// image nor a temporary is left.
#[test]
fn truncated_or_corrupt_leaves_nothing() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-bad");
    let img = p.ext4("good");
    for (format, _, tool) in FORMATS.iter().skip(1) {
        if !have(tool) {
            continue;
        }
        let full = p.root.join(format!("full-{format}"));
        compress(tool, &img, &full);
        let data = std::fs::read(&full).unwrap();
        let cut = p.root.join(format!("cut-{format}"));
        std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
        let err = p.refused(&["import-raw", cut.to_str().unwrap(), "cut"]);
        assert!(err.contains("corrupt or cut short"), "{format}: {err}");
        let mut bad = data.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let damaged = p.root.join(format!("damaged-{format}"));
        std::fs::write(&damaged, &bad).unwrap();
        let err = p.refused(&["import-raw", damaged.to_str().unwrap(), "damaged"]);
        assert!(err.contains("corrupt or cut short"), "{format}: {err}");
        eprintln!("{format}: {err}");
        assert!(p.entries().is_empty(), "{format}: {:?}", p.entries());
    }
    // The same cut short on the way down.
    if have("xz") {
        let data = std::fs::read(p.root.join("full-xz")).unwrap();
        std::fs::write(p.srv.join("cut.raw.xz"), &data[..data.len() / 2]).unwrap();
        let srv = Server::start(&p.srv, Duration::ZERO);
        let err = p.refused(&["pull-raw", "--verify=no", &srv.url("cut.raw.xz")]);
        assert!(err.contains("corrupt or cut short"), "{err}");
        assert!(p.entries().is_empty(), "{:?}", p.entries());
    }
}

/// pull-raw over HTTP: the name from the URL, `--verify=no`, good and bad
/// `SHA256SUMS`, the settings file beside the image, `--force`.
#[test]
fn pull_verify_and_settings() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-pull");
    let img = p.ext4("disk");
    let xz = p.srv.join("disk.raw.xz");
    if !have("xz") {
        return;
    }
    compress("xz", &img, &xz);
    let srv = Server::start(&p.srv, Duration::ZERO);
    ok(p.ctl(&["pull-raw", "--verify=no", &srv.url("disk.raw.xz")]));
    assert_eq!(p.entries(), ["disk.raw"]);
    same_bytes(&img, &p.image("disk"));
    assert_sparse(&p.image("disk"));
    let err = p.refused(&["pull-raw", "--verify=no", &srv.url("disk.raw.xz")]);
    assert_eq!(err, "nspawnctl: Image 'disk' already exists.");
    // No checksum file: cannot verify.
    let err = p.refused(&[
        "pull-raw",
        "--verify=checksum",
        &srv.url("disk.raw.xz"),
        "d2",
    ]);
    assert!(err.ends_with("cannot verify. (Try --verify=no?)"), "{err}");
    // Good sums, listing the settings file beside the image too.
    std::fs::write(p.srv.join("disk.nspawn"), "[Exec]\nBoot=no\n").unwrap();
    let sums = format!(
        "{} *disk.raw.xz\n{}  disk.nspawn\n",
        sha256(&xz),
        sha256(&p.srv.join("disk.nspawn"))
    );
    std::fs::write(p.srv.join("SHA256SUMS"), sums).unwrap();
    ok(p.ctl(&[
        "pull-raw",
        "--verify=checksum",
        &srv.url("disk.raw.xz"),
        "d2",
    ]));
    assert_eq!(p.entries(), ["d2.nspawn", "d2.raw", "disk.raw"]);
    assert_eq!(
        std::fs::read_to_string(p.pool.join("d2.nspawn")).unwrap(),
        "[Exec]\nBoot=no\n"
    );
    same_bytes(&img, &p.image("d2"));
    // A settings file not in the sums is refused before the download.
    std::fs::write(p.srv.join("disk.nspawn"), "[Exec]\nBoot=yes\n").unwrap();
    let err = p.refused(&[
        "pull-raw",
        "--verify=checksum",
        &srv.url("disk.raw.xz"),
        "d3",
    ]);
    assert_eq!(
        err,
        "nspawnctl: DOWNLOAD INVALID: Checksum of disk.nspawn file did not check out, file has been tampered with."
    );
    std::fs::remove_file(p.srv.join("disk.nspawn")).unwrap();
    // Wrong sum for the image: the reference's message, nothing left.
    std::fs::write(
        p.srv.join("SHA256SUMS"),
        format!("{} *disk.raw.xz\n", "0".repeat(64)),
    )
    .unwrap();
    let err = p.refused(&[
        "pull-raw",
        "--verify=checksum",
        &srv.url("disk.raw.xz"),
        "d3",
    ]);
    assert_eq!(
        err,
        "nspawnctl: DOWNLOAD INVALID: Checksum of disk.raw.xz file did not check out, file has been tampered with."
    );
    assert_eq!(p.entries(), ["d2.nspawn", "d2.raw", "disk.raw"]);
    // FILE.sha256 is read first.
    std::fs::write(p.srv.join("disk.raw.xz.sha256"), sha256(&xz)).unwrap();
    ok(p.ctl(&[
        "pull-raw",
        "--verify=checksum",
        &srv.url("disk.raw.xz"),
        "d3",
    ]));
    // --force replaces; --read-only; a missing URL.
    ok(p.ctl(&[
        "pull-raw",
        "--verify=no",
        "--force",
        "--read-only",
        &srv.url("disk.raw.xz"),
        "d3",
    ]));
    let mode = std::fs::metadata(p.image("d3"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o222, 0, "{mode:o}");
    let err = p.refused(&["pull-raw", "--verify=no", &srv.url("nothere.raw")]);
    assert!(err.contains("not found"), "{err}");
    // file:// URLs go the same way.
    let url = format!("file://{}", xz.display());
    ok(p.ctl(&["pull-raw", "--verify=checksum", &url, "local"]));
    same_bytes(&img, &p.image("local"));
    assert_eq!(
        p.entries(),
        ["d2.nspawn", "d2.raw", "d3.raw", "disk.raw", "local.raw"]
    );
    assert!(srv.requests() >= 8);
}

/// A pull of a mostly-random 2 MiB image from a slow server into `p`, once
/// its `.#slow` temporary is there.
fn slow_pull(p: &Pool, stderr: Stdio) -> (Server, std::process::Child) {
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(p.srv.join("slow.raw"), data).unwrap();
    p.pull_slowly(&["pull-raw", "--verify=no"], "slow.raw", None, stderr)
}

#[test]
fn sigterm_during_pull_leaves_nothing() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-term");
    let (_slow, child) = slow_pull(&p, Stdio::piped());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim(), "nspawnctl: transfer cancelled");
    assert!(p.entries().is_empty(), "{:?}", p.entries());
}

#[test]
fn killed_pull_is_swept_by_the_next() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-kill");
    let (_slow, mut child) = slow_pull(&p, Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        p.entries().iter().any(|e| e.starts_with(".#slow")),
        "{:?}",
        p.entries()
    );
    let other = p.root.join("next.raw");
    std::fs::write(&other, b"next").unwrap();
    ok(p.ctl(&["import-raw", other.to_str().unwrap()]));
    assert_eq!(p.entries(), ["next.raw"]);
}

/// QCOW2 images are converted to raw, plain and with compressed clusters;
/// those we cannot convert faithfully are refused with the reason.
#[test]
fn qcow2_is_converted() {
    if reference() || !have("qemu-img") {
        return;
    }
    let p = Pool::new("raw-qcow2");
    let img = p.ext4("vm");
    let qemu = |args: &[&str]| {
        let o = Command::new("qemu-img").args(args).output().unwrap();
        assert!(o.status.success(), "qemu-img {args:?}: {}", stderr(&o));
    };
    let q = |n: &str| p.root.join(n).to_str().unwrap().to_string();
    let src = img.to_str().unwrap();
    qemu(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        src,
        &q("plain.qcow2"),
    ]);
    qemu(&[
        "convert",
        "-c",
        "-f",
        "raw",
        "-O",
        "qcow2",
        src,
        &q("packed.qcow2"),
    ]);
    qemu(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "compat=0.10",
        src,
        &q("v2.qcow2"),
    ]);
    qemu(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=4096",
        src,
        &q("small.qcow2"),
    ]);
    for (file, name) in [
        ("plain.qcow2", "plain"),
        ("packed.qcow2", "packed"),
        ("v2.qcow2", "v2"),
        ("small.qcow2", "small"),
    ] {
        ok(p.ctl(&["import-raw", &q(file)]));
        same_bytes(&img, &p.image(name));
        assert_sparse(&p.image(name));
    }
    // Compressed on the way, as images are published.
    if have("xz") {
        compress(
            "xz",
            &p.root.join("packed.qcow2"),
            &p.srv.join("vm.qcow2.xz"),
        );
        let srv = Server::start(&p.srv, Duration::ZERO);
        ok(p.ctl(&["pull-raw", "--verify=no", &srv.url("vm.qcow2.xz")]));
        same_bytes(&img, &p.image("vm"));
    }
    usable(&p.image("vm"));
    qemu(&[
        "create",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        &q("plain.qcow2"),
        &q("overlay.qcow2"),
    ]);
    let err = p.refused(&["import-raw", &q("overlay.qcow2")]);
    assert!(err.contains("it has a backing file"), "{err}");
    let zstd = Command::new("qemu-img")
        .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
        .args(["-o", "compression_type=zstd", src, &q("zstd.qcow2")])
        .status()
        .unwrap()
        .success();
    if zstd {
        let err = p.refused(&["import-raw", &q("zstd.qcow2")]);
        assert!(err.contains("incompatible features"), "{err}");
    }
    // A QCOW2 image cut short.
    let data = std::fs::read(p.root.join("plain.qcow2")).unwrap();
    std::fs::write(p.root.join("cut.qcow2"), &data[..data.len() / 2]).unwrap();
    let err = p.refused(&["import-raw", &q("cut.qcow2")]);
    assert!(err.contains("past its end"), "{err}");
    let mut names: Vec<String> = p.entries();
    names.retain(|e| e.starts_with('.'));
    assert!(names.is_empty(), "{names:?}");
}

/// Export refuses what is not a raw image and never leaves a file behind
/// or overwrites one.
#[test]
fn export_refusals() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-export");
    std::fs::create_dir(p.pool.join("tree")).unwrap();
    std::fs::write(p.root.join("small.raw"), b"raw bytes").unwrap();
    ok(p.ctl(&["import-raw", p.root.join("small.raw").to_str().unwrap()]));
    let out = p.root.join("out.raw");
    let err = p.refused(&["export-raw", "tree", out.to_str().unwrap()]);
    assert!(err.contains("is not a raw disk image"), "{err}");
    assert!(!out.exists());
    let err = p.refused(&["export-raw", "nosuch", out.to_str().unwrap()]);
    assert!(err.contains("no image 'nosuch'"), "{err}");
    std::fs::write(&out, b"keep").unwrap();
    let err = p.refused(&["export-raw", "small", out.to_str().unwrap()]);
    assert!(err.contains("File exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    let err = p.refused(&[
        "export-tar",
        "small",
        p.root.join("t.tar").to_str().unwrap(),
    ]);
    assert!(err.contains("not a directory tree"), "{err}");
    assert!(!p.root.join("t.tar").exists());
    let left: Vec<_> = std::fs::read_dir(&p.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
}

/// The reference's helpers, run without D-Bus: `systemd-import raw` into a
/// directory of ours gives the same bytes as our import of the same file;
/// `systemd-export raw` (which finds images only in its own search path:
/// a symlink in /var/lib/machines under a unique name, removed after) and
/// our export decompress to the same bytes.
#[test]
fn same_bytes_as_the_reference() {
    let (import, export) = ("/lib/systemd/systemd-import", "/lib/systemd/systemd-export");
    if reference() || !Path::new(import).exists() || !Path::new(export).exists() {
        eprintln!("note: the reference's helpers are not here; skipped");
        return;
    }
    let p = Pool::new("raw-ref");
    let img = p.ext4("ref");
    let theirs = p.root.join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    let mut inputs = vec![("plain", img.clone())];
    for (format, _, tool) in &FORMATS[1..4] {
        if have(tool) {
            let f = p.root.join(format!("in-{format}"));
            compress(tool, &img, &f);
            inputs.push((*format, f));
        }
    }
    if have("qemu-img") {
        let f = p.root.join("in.qcow2");
        let st = Command::new("qemu-img")
            .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
            .arg(&img)
            .arg(&f)
            .status()
            .unwrap();
        assert!(st.success());
        inputs.push(("qcow2", f));
    }
    for (what, file) in &inputs {
        let name = format!("imp-{what}");
        let o = run({
            let mut c = Command::new(import);
            c.args(["raw", "--image-root"])
                .arg(&theirs)
                .arg(file)
                .arg(&name);
            c
        });
        assert!(o.status.success(), "systemd-import {what}: {}", stderr(&o));
        ok(p.ctl(&["import-raw", file.to_str().unwrap(), &name]));
        same_bytes(&theirs.join(format!("{name}.raw")), &p.image(&name));
        same_bytes(&img, &p.image(&name));
    }
    // Export: theirs and ours of the same image, per format.
    struct Link(PathBuf);
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let name = unique("nspawn-rs-raw-ref");
    std::fs::create_dir_all("/var/lib/machines").unwrap();
    let _link = Link(Path::new("/var/lib/machines").join(format!("{name}.raw")));
    std::os::unix::fs::symlink(p.image("imp-plain"), &_link.0).unwrap();
    for (format, suffix, tool) in &FORMATS[..4] {
        if !have(tool) {
            continue;
        }
        let (t, o) = (
            p.root.join(format!("ref-export.raw{suffix}")),
            p.root.join(format!("our-export.raw{suffix}")),
        );
        let out = run({
            let mut c = Command::new(export);
            c.args(["raw", &name]).arg(&t);
            c
        });
        assert!(
            out.status.success(),
            "systemd-export {format}: {}",
            stderr(&out)
        );
        ok(p.ctl(&["export-raw", "imp-plain", o.to_str().unwrap()]));
        let want = std::fs::read(&img).unwrap();
        assert!(decompress(tool, &t) == want, "{format}: reference export");
        assert!(decompress(tool, &o) == want, "{format}: our export");
    }
}

/// An export cancelled (SIGTERM) or killed (SIGKILL) half-way leaves no
/// file under the name asked for, nor anywhere beside it.
#[test]
fn interrupted_export_leaves_no_file() {
    if reference() {
        return;
    }
    let p = Pool::new("raw-export-kill");
    // Random bytes: xz takes its time over them.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..48u32 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let src = p.root.join("noise.raw");
    std::fs::write(&src, data).unwrap();
    ok(p.ctl(&["import-raw", src.to_str().unwrap()]));
    let out_dir = p.root.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let out = out_dir.join("noise.raw.xz");
        let mut c = nspawnctl(&["export-raw", "noise", out.to_str().unwrap()]);
        c.env("NSPAWN_IMAGE_PATH", &p.pool)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let o = wait_output(child, Duration::from_secs(20));
        assert!(!o.status.success(), "{sig}: finished before the signal");
        if sig == nix::sys::signal::Signal::SIGTERM {
            assert_eq!(stderr(&o).trim(), "nspawnctl: transfer cancelled");
        }
        let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
        assert!(left.is_empty(), "{sig}: {left:?}");
    }
}
