//! `-i`: disk images built on the fly from a busybox tree — bare file
//! systems (`mkfs.ext4 -d`, `mksquashfs`) and GPT images per the
//! Discoverable Partitions Specification (`sfdisk` with the spec's type
//! UUIDs, each file system written into its partition's place with `dd`,
//! since mkfs cannot reach a partition without a partition device) — run
//! with the options that apply to them, broken in the ways images break,
//! and killed. Every image's teardown checks that nothing is left: no loop
//! device backed by it, no mount, none of the machine's records.

use nspawn_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[cfg(target_arch = "x86_64")]
const ROOT: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
#[cfg(target_arch = "x86_64")]
const ROOT_VERITY: &str = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5";
#[cfg(target_arch = "x86_64")]
const ROOT_VERITY_SIG: &str = "41092b05-9fc8-4523-994f-2def0408b176";
#[cfg(target_arch = "aarch64")]
const ROOT: &str = "b921b045-1df0-41c3-af44-4c6f280d3fae";
#[cfg(target_arch = "aarch64")]
const ROOT_VERITY: &str = "df3300ce-d69f-4c92-978c-9bfb0f38d820";
#[cfg(target_arch = "aarch64")]
const ROOT_VERITY_SIG: &str = "6db69de6-29f4-4758-a7a5-962190f00ce3";
const HOME: &str = "933ac7e1-2eb4-4f13-b844-0e14e2aef915";
const SRV: &str = "3b8f8425-20e0-4f3b-907f-1a25a76f98e8";
const VAR: &str = "4d21b016-b534-45c2-a9fb-5c16e091fd2d";
const TMP: &str = "7ec6f557-3bc5-4aca-b293-16ef5df639d1";
const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const XBOOTLDR: &str = "bc13c2ff-59e6-4262-a352-b275fd6f7172";
const SWAP: &str = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd} failed");
}

/// One partition of a GPT image: its type, label, attribute bits for
/// sfdisk (`GUID:60` ...), size, and the file system image written in.
struct Part<'a> {
    ty: &'a str,
    label: &'a str,
    attrs: &'a str,
    mib: u64,
    fs: Option<PathBuf>,
}

fn part<'a>(ty: &'a str, label: &'a str, mib: u64, fs: Option<PathBuf>) -> Part<'a> {
    Part {
        ty,
        label,
        attrs: "",
        mib,
        fs,
    }
}

/// A scratch directory holding `NAME.raw` (the machine is `NAME`) and what
/// it is built from; the teardown checks that the image left nothing.
struct Img {
    dir: PathBuf,
    path: PathBuf,
    name: String,
}

impl Img {
    fn new(prefix: &str) -> Img {
        let name = unique(prefix);
        let dir = Path::new("/var/tmp/nspawn-tests").join(format!("{name}.d"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.raw"));
        Img { dir, path, name }
    }

    fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// A busybox tree at `sub` in the scratch directory.
    fn tree(&self, sub: &str) -> PathBuf {
        let t = self.dir.join(sub);
        let st = Command::new(repo_root().join("scripts/fixtures.sh"))
            .arg("busybox")
            .arg(&t)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "busybox fixture failed");
        t
    }

    /// A directory `sub` holding one file `name` with `content`.
    fn files(&self, sub: &str, name: &str, content: &str) -> PathBuf {
        let t = self.dir.join(sub);
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(name), content).unwrap();
        t
    }

    /// A file system image of `src` in the scratch directory.
    fn fs(&self, kind: &str, src: &Path, mib: u64) -> PathBuf {
        let out = self.dir.join(format!(
            "{}.{kind}",
            src.file_name().unwrap().to_string_lossy()
        ));
        let (o, s) = (out.display(), src.display());
        match kind {
            "ext4" => sh(&format!(
                "truncate -s {mib}M {o} && mkfs.ext4 -q -F -d {s} {o}"
            )),
            "squashfs" => sh(&format!(
                "mksquashfs {s} {o} -quiet -noappend -all-root >/dev/null"
            )),
            "vfat" => sh(&format!("mkfs.vfat -C {o} {} >/dev/null", mib * 1024)),
            _ => unreachable!(),
        }
        out
    }

    /// `NAME.raw` as a bare file system of a busybox tree.
    fn bare(prefix: &str, kind: &str) -> Img {
        let img = Img::new(prefix);
        let t = img.tree("root");
        let fs = img.fs(kind, &t, 12);
        std::fs::rename(fs, &img.path).unwrap();
        img
    }

    /// `NAME.raw` as a GPT image of `parts`, from 1 MiB on.
    fn gpt(prefix: &str, parts: impl FnOnce(&Img) -> Vec<Part<'static>>) -> Img {
        let img = Img::new(prefix);
        let parts = parts(&img);
        let total: u64 = parts.iter().map(|p| p.mib).sum::<u64>() + 2;
        sh(&format!("truncate -s {total}M {}", img.p()));
        let mut script = String::from("label: gpt\n");
        let mut start = 1u64;
        for p in &parts {
            script += &format!(
                "start={}, size={}, type={}, name=\"{}\"{}\n",
                start * 2048,
                p.mib * 2048,
                p.ty,
                p.label,
                match p.attrs {
                    "" => String::new(),
                    a => format!(", attrs=\"{a}\""),
                }
            );
            start += p.mib;
        }
        img.partition(&script);
        // The file systems after the table: sfdisk would warn of them.
        let mut start = 1u64;
        for p in &parts {
            if let Some(fs) = &p.fs {
                sh(&format!(
                    "dd if={} of={} bs=1M seek={start} conv=notrunc,sparse status=none",
                    fs.display(),
                    img.p()
                ));
            }
            start += p.mib;
        }
        img
    }

    /// Write the partition table `script` (sfdisk's input) into the image.
    fn partition(&self, script: &str) {
        let mut c = Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel", self.p()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "sfdisk failed:\n{script}");
    }

    /// A GPT image with a partition of each kind the specification
    /// mounts: root, /home (read-only), /srv (no-auto), /var/tmp (before
    /// /var in the table), /var, and a swap partition; each but root and
    /// swap holds one file named after it.
    fn every_partition(prefix: &str) -> Img {
        Img::gpt(prefix, |i| {
            let t = i.tree("root");
            let home = i.files("home", "h", "home\n");
            let srv = i.files("srv", "s", "srv\n");
            let var = i.files("var", "v", "var\n");
            let tmp = i.files("tmp", "t", "tmp\n");
            vec![
                part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
                Part {
                    attrs: "GUID:60",
                    ..part(HOME, "home", 4, Some(i.fs("ext4", &home, 4)))
                },
                Part {
                    attrs: "GUID:63",
                    ..part(SRV, "srv", 4, Some(i.fs("ext4", &srv, 4)))
                },
                part(TMP, "tmp", 4, Some(i.fs("ext4", &tmp, 4))),
                part(VAR, "var", 4, Some(i.fs("ext4", &var, 4))),
                part(SWAP, "swap", 1, None),
            ]
        })
    }

    /// The usual GPT image: a root partition of a busybox tree.
    fn gpt_root(prefix: &str) -> Img {
        Img::gpt(prefix, |i| {
            let t = i.tree("root");
            vec![part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12)))]
        })
    }

    fn sh(&self, extra: &[&str], script: &str) -> Output {
        let mut args = vec!["-q", "--pipe", "-i", self.p()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["/bin/sh", "-c", script]);
        run(nspawn(&args))
    }

    /// A cheap fingerprint of the image file: its size, modification time
    /// and a hash of its bytes.
    fn fingerprint(&self) -> (u64, std::time::SystemTime, u64) {
        use std::hash::Hasher;
        let md = std::fs::metadata(&self.path).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(&std::fs::read(&self.path).unwrap());
        (md.len(), md.modified().unwrap(), h.finish())
    }

    fn left(&self) -> Vec<String> {
        let mut v = leftovers(&self.name, &self.dir);
        v.extend(loops_backed_by(&self.path));
        v
    }
}

impl Drop for Img {
    fn drop(&mut self) {
        stop_runners_of(self.p());
        let mut left = vec![];
        if !std::thread::panicking() {
            wait_until(Duration::from_secs(15), || self.left().is_empty());
            left = self.left();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        assert!(left.is_empty(), "image {} left {left:?}", self.name);
    }
}

/// A refused start: exit status 1 and one line on stderr, `nspawn: ...`
/// (ours) or the reference's own line; returns it.
#[track_caller]
fn one_line_failure(o: &Output) -> String {
    let err = host_quirks_removed(&stderr(o));
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    err.trim_end().to_string()
}

/// Lines of the host's mount table (ours) whose source is one of `devs`.
fn host_mounts_of(devs: &[String]) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| devs.iter().any(|d| l.contains(&format!(" {d} "))))
        .map(String::from)
        .collect()
}

#[test]
fn bare_ext4_runs_and_keeps_what_it_writes() {
    let img = Img::bare("img-ext4", "ext4");
    let o = img.sh(&[], "/bin/true && hostname && echo kept > /root/file");
    assert_eq!(ok(o).trim(), img.name);
    let o = img.sh(&[], "cat /root/file; grep ' / / ' /proc/self/mountinfo");
    let out = ok(o);
    assert!(out.starts_with("kept\n"), "{out}");
    assert!(out.contains(" - ext4 /dev/loop"), "{out}");
}

#[test]
fn squashfs_is_read_only() {
    if !Path::new("/usr/bin/mksquashfs").exists() {
        eprintln!("mksquashfs missing (apt-get install squashfs-tools); skipped");
        return;
    }
    let img = Img::bare("img-sqfs", "squashfs");
    let before = img.fingerprint();
    let o = img.sh(
        &[],
        "cat /etc/os-release >/dev/null && grep ' / / ' /proc/self/mountinfo; touch /x 2>&1; true",
    );
    let out = ok(o);
    assert!(out.contains(" - squashfs /dev/loop"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(img.fingerprint(), before);
}

#[test]
fn gpt_partitions_go_where_the_specification_says() {
    let img = Img::every_partition("img-gpt");
    let o = img.sh(
        &[],
        "cat /home/h /var/v /var/tmp/t; ls /srv; \
         sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \\([^ ]*\\) \\([^ ]*\\) .*- \\(ext4\\) \\/dev\\/loop.*/\\1 \\2 \\3/p' \
           /proc/self/mountinfo; \
         echo w > /var/w && (echo w > /home/w) 2>&1; true",
    );
    let out = ok(o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["home", "var", "tmp"], "{out}");
    assert!(!out.contains("\ns\n"), "a no-auto /srv was mounted: {out}");
    let mounts: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l.ends_with(" ext4"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0], f[1].split(',').next().unwrap())
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("/", "rw"),
            ("/home", "ro"),
            ("/var", "rw"),
            ("/var/tmp", "rw")
        ],
        "{out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
}

/// The boot partitions' file system: FAT as the specification wants, or
/// ext4 where the kernel has no vfat (the places are the same).
fn boot_fs() -> &'static str {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap();
    match fs
        .lines()
        .any(|l| l.trim_start_matches("nodev").trim() == "vfat")
    {
        true => "vfat",
        false => "ext4",
    }
}

#[test]
fn esp_and_xbootldr() {
    let img = Img::gpt("img-esp", |i| {
        let t = i.tree("root");
        let esp = i.files("esp", "EFI", "");
        let xbootldr = i.files("xbootldr", "LOADER", "");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(ESP, "esp", 4, Some(i.fs(boot_fs(), &esp, 4))),
            part(XBOOTLDR, "xbootldr", 4, Some(i.fs(boot_fs(), &xbootldr, 4))),
        ]
    });
    let o = img.sh(
        &[],
        &format!(
            r"sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) \([^ ]*\) .*- {} \/dev\/loop.*/\1 \2/p' /proc/self/mountinfo",
            boot_fs()
        ),
    );
    let out = ok(o);
    let places: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let want: &[&str] = match boot_fs() {
        "vfat" => &["/efi", "/boot"],
        _ => &["/", "/efi", "/boot"],
    };
    assert_eq!(places, want, "{out}");
    assert!(out.contains("nosuid,nodev,noexec"), "{out}");
}

#[test]
fn ephemeral_never_writes_the_image() {
    let img = Img::gpt("img-eph", |i| {
        let t = i.tree("root");
        let home = i.files("home", "h", "home\n");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(HOME, "home", 4, Some(i.fs("ext4", &home, 4))),
        ]
    });
    let before = img.fingerprint();
    let o = img.sh(
        &["-x"],
        "echo new > /etc/new && rm /etc/passwd && echo h2 > /home/h2 && cat /etc/new /home/h2",
    );
    assert_eq!(ok(o), "new\nh2\n");
    let o = img.sh(
        &["-x"],
        "ls /etc/new /home/h2 2>&1; cat /etc/passwd >/dev/null && echo passwd",
    );
    let out = ok(o);
    assert!(
        out.contains("passwd") && out.contains("No such file"),
        "{out}"
    );
    assert_eq!(img.fingerprint(), before, "the image changed");
}

#[test]
fn read_only_and_volatile() {
    let img = Img::gpt_root("img-ro");
    let before = img.fingerprint();
    let out = ok(img.sh(&["--read-only"], "touch /x 2>&1; true"));
    assert!(out.contains("Read-only file system"), "{out}");
    let out = ok(img.sh(
        &["--volatile=state"],
        "touch /x 2>&1; echo v > /var/v && cat /var/v",
    ));
    assert!(
        out.contains("Read-only file system") && out.ends_with("v\n"),
        "{out}"
    );
    let out = ok(img.sh(
        &["--volatile=yes"],
        "echo e > /etc/e && cat /etc/e; ls /home | wc -l",
    ));
    assert_eq!(out, "e\n0\n");
    let out = ok(img.sh(&["--volatile=overlay"], "echo e > /etc/e && cat /etc/e"));
    assert_eq!(out, "e\n");
    assert_eq!(img.fingerprint(), before, "the image changed");
}

/// `systemd-nspawn -i IMG` in a mount namespace of its own, with a tmpfs
/// on /run holding a stand-in for udev's control socket: the reference
/// refuses `-i` unless it can connect to one (it sends nothing there). So
/// nothing of it is seen on the host, nor by other tests' references.
fn reference_sh(img: &Img, script: &str) -> Output {
    const WRAP: &str = r#"
        set -e
        mount -t tmpfs tmpfs /run
        mkdir /run/udev
        python3 -c 'import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("/run/udev/control"); s.listen(64); time.sleep(120)' &
        udev=$!
        while [ ! -S /run/udev/control ]; do sleep 0.05; done
        rc=0
        systemd-nspawn --register=no --keep-unit -q --pipe -i "$1" /bin/sh -c "$2" || rc=$?
        kill $udev
        exit $rc
    "#;
    run({
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", WRAP, "sh"])
            .args([img.p(), script]);
        c
    })
}

/// The reference reads the same images the same way: which partitions
/// are mounted where (whole file systems, not the binds of host files),
/// read-only or not, and the machine's name.
#[test]
fn the_reference_reads_images_alike() {
    if !Path::new("/usr/bin/systemd-nspawn").exists() {
        eprintln!("systemd-nspawn missing (apt-get install systemd-container); skipped");
        return;
    }
    let gpt = Img::every_partition("img-ref");
    let bare = Img::bare("img-ref-bare", "ext4");
    let script = "hostname; cat /home/h /var/v /var/tmp/t /srv/s 2>/dev/null; \
                  awk '{ for (i = 7; $i != \"-\"; i++); \
                         if ($(i + 1) == \"ext4\" && $4 == \"/\") { split($6, o, \",\"); print $5, o[1] } }' \
                      /proc/self/mountinfo | sort";
    for img in [&gpt, &bare] {
        let ours = ok(img.sh(&[], script));
        let theirs = ok(reference_sh(img, script));
        assert_eq!(ours, theirs, "{}", img.name);
    }
    assert!(ok(gpt.sh(&[], script)).contains("/home ro\n"));
}

/// The grow-fs flag (bit 59): a writable ext4 smaller than its partition
/// fills it once mounted; not under `-x` (the image is never written), nor
/// without the flag.
#[test]
fn grow_fs_fills_the_partition() {
    let img = |prefix: &str, attrs: &'static str| {
        Img::gpt(prefix, |i| {
            let t = i.tree("root");
            vec![Part {
                attrs,
                ..part(ROOT, "root", 40, Some(i.fs("ext4", &t, 12)))
            }]
        })
    };
    let size_kib = |img: &Img, extra: &[&str]| -> u64 {
        let out = ok(img.sh(extra, "df -k / | awk 'NR == 2 { print $2 }'"));
        out.trim().parse().unwrap()
    };
    let grown = img("img-grow", "GUID:59");
    let before = grown.fingerprint();
    // Not grown under -x: a grown file system is a written image.
    ok(grown.sh(&["-x"], "true"));
    assert_eq!(grown.fingerprint(), before, "-x wrote the image");
    // The kernel grows a mounted ext4 only for CAP_SYS_RESOURCE, which
    // the sandboxes these tests run in may withhold: then the start goes
    // on at the old size, and says so.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    let sys_resource = u64::from_str_radix(eff.trim(), 16).unwrap() & 1 << 24 != 0;
    if sys_resource {
        assert!(size_kib(&grown, &[]) > 36 * 1024);
        // Kept, and asked again at the next start: nothing to do.
        assert!(size_kib(&grown, &[]) > 36 * 1024);
    } else {
        let o = grown.sh(&[], "df -k / | awk 'NR == 2 { print $2 }'");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cannot grow partition 1 (root)")
                && err.contains("Operation not permitted; it keeps its size"),
            "{err}"
        );
        assert!(ok(o).trim().parse::<u64>().unwrap() < 13 * 1024);
    }
    let plain = img("img-nogrow", "");
    assert!(size_kib(&plain, &[]) < 13 * 1024);
}

/// An MBR ("dos") table, as the reference reads one: the one bootable
/// Linux (0x83) partition is the root; two of them are refused.
#[test]
fn mbr_with_a_bootable_linux_partition() {
    let mbr = |prefix: &str, table: &str| {
        let img = Img::new(prefix);
        let t = img.tree("root");
        let fs = img.fs("ext4", &t, 12);
        sh(&format!("truncate -s 30M {}", img.p()));
        img.partition(table);
        sh(&format!(
            "dd if={} of={} bs=1M seek=14 conv=notrunc,sparse status=none",
            fs.display(),
            img.p()
        ));
        img
    };
    // A FAT partition and a non-bootable Linux one first, passed over.
    let img = mbr(
        "img-mbr",
        "label: dos\nstart=2048, size=4096, type=c\nstart=8192, size=4096, type=83\n\
         start=28672, size=24576, type=83, bootable\n",
    );
    let out = ok(img.sh(&[], "hostname; grep ' / / ' /proc/self/mountinfo"));
    assert!(out.starts_with(&format!("{}\n", img.name)), "{out}");
    assert!(out.contains(" - ext4 /dev/loop"), "{out}");
    let two = mbr(
        "img-mbr2",
        "label: dos\nstart=2048, size=4096, type=83, bootable\n\
         start=28672, size=24576, type=83, bootable\n",
    );
    let o = two.sh(&[], "true");
    let line = one_line_failure(&o);
    assert!(
        line.ends_with(": No suitable root partition found in image."),
        "{line}"
    );
}

/// `-U`: the image's file systems are mounted idmapped with the
/// container's range, so its root-owned files are root's inside and what
/// root writes inside is root's on disk; never shifted on disk.
#[test]
fn user_namespace_maps_the_images_files() {
    let img = Img::gpt("img-userns", |i| {
        let t = i.tree("root");
        let home = i.files("home", "h", "home\n");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(HOME, "home", 4, Some(i.fs("ext4", &home, 4))),
        ]
    });
    let out = ok(img.sh(
        &["-U"],
        "stat -c %u /etc/passwd /home/h; echo w > /home/w && stat -c %u /home/w; \
         awk '{ print ($1 == 0 && $2 != 0) }' /proc/self/uid_map",
    ));
    assert_eq!(out, "0\n0\n0\n1\n");
    // Written as root inside, root's on disk; nothing else was changed.
    let out = ok(img.sh(&[], "stat -c %u /home/w /etc/passwd"));
    assert_eq!(out, "0\n0\n");
    let before = img.fingerprint();
    let out = ok(img.sh(&["-U", "-x"], "echo e > /etc/e && stat -c %u /etc/e"));
    assert_eq!(out, "0\n");
    assert_eq!(img.fingerprint(), before, "the image changed");
    let o = img.sh(&["-U", "--private-users-ownership=chown"], "true");
    assert_eq!(
        one_line_failure(&o),
        "nspawn: --private-users-ownership=chown cannot shift the files of an image: use map"
    );
}

#[test]
fn refused_combinations() {
    let img = Img::bare("img-comb", "ext4");
    let d = img.tree("tree");
    let o = run(nspawn(&[
        "-i",
        img.p(),
        "-D",
        d.to_str().unwrap(),
        "/bin/true",
    ]));
    assert_eq!(
        one_line_failure(&o),
        "nspawn: --directory= and --image= may not be combined."
    );
    let o = run(nspawn(&[
        "-i",
        img.p(),
        "--template",
        d.to_str().unwrap(),
        "/bin/true",
    ]));
    assert_eq!(
        one_line_failure(&o),
        "nspawn: --template= and --image= may not be combined."
    );
    let o = run(nspawn(&["-i", img.p(), "--root-hash=abc", "/bin/true"]));
    assert!(one_line_failure(&o).contains("root hash"));
}

#[test]
fn machine_name_finds_a_raw_image_and_its_settings_file() {
    let img = Img::bare("img-name", "ext4");
    std::fs::write(
        img.dir.join(format!("{}.nspawn", img.name)),
        "[Exec]\nEnvironment=FROM_FILE=yes\n",
    )
    .unwrap();
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-M",
        &img.name,
        "/bin/sh",
        "-c",
        "echo $FROM_FILE; hostname",
    ]);
    c.env("NSPAWN_IMAGE_PATH", &img.dir);
    let out = ok(run(c));
    assert_eq!(out, format!("yes\n{}\n", img.name));
}

#[test]
fn image_is_locked_while_it_runs() {
    let img = Img::bare("img-lock", "ext4");
    let mark = marker();
    let mut first = nspawn(&["-q", "--pipe", "-i", img.p(), "/bin/sleep", &mark]);
    let first = first
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("/bin/sleep {mark}")
    )
    .is_empty()));
    let o = run(nspawn(&["-M", "other", "-i", img.p(), "/bin/true"]));
    assert_eq!(
        one_line_failure(&o),
        format!("nspawn: Disk image {} is currently busy.", img.p())
    );
    let _ = wait_output(kill_runner(first, libc::SIGTERM), Duration::from_secs(10));
    // Read-only runs share it.
    let ro = nspawn(&[
        "-q",
        "--pipe",
        "--read-only",
        "-i",
        img.p(),
        "/bin/sleep",
        &mark,
    ])
    .stdin(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
        &format!("/bin/sleep {mark}")
    )
    .is_empty()));
    let out = ok(run(nspawn(&[
        "-q",
        "--pipe",
        "-M",
        "other2",
        "-x",
        "-i",
        img.p(),
        "/bin/true",
    ])));
    assert_eq!(out, "");
    let _ = wait_output(kill_runner(ro, libc::SIGTERM), Duration::from_secs(10));
}

fn kill_runner(c: std::process::Child, sig: libc::c_int) -> std::process::Child {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.id() as i32, sig) };
    c
}

#[test]
fn bind_and_overlay_into_an_image() {
    let img = Img::gpt_root("img-bind");
    let host = img.files("host", "f", "from host\n");
    let bind = format!("--bind={}:/mnt", host.display());
    assert_eq!(ok(img.sh(&[&bind], "cat /mnt/f")), "from host\n");
    // A host directory over another, and one of the image's own over
    // itself with a throw-away upper layer (what is written there is gone
    // at the next start).
    let upper = img.files("upper", "u", "upper\n");
    let overlay = format!("--overlay={}:{}:/mnt", host.display(), upper.display());
    let out = ok(img.sh(&[&overlay], "cat /mnt/f /mnt/u && echo new > /mnt/n"));
    assert_eq!(out, "from host\nupper\n");
    assert!(upper.join("n").exists());
    let out = ok(img.sh(&["--overlay=+/etc::/etc"], "echo x > /etc/x && cat /etc/x"));
    assert_eq!(out, "x\n");
    assert_eq!(ok(img.sh(&[], "test -e /etc/x || echo gone")), "gone\n");
}

/// Rewrite entry `idx` (from 0) of the primary GPT of `file` to span
/// sectors `first..=last`, with the table's and header's CRCs made right.
fn patch_entry(file: &Path, idx: u32, first: u64, last: i64) {
    let script = r#"
import struct, sys, zlib
f, idx, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(f, 'r+b') as fh:
    fh.seek(512); h = bytearray(fh.read(92))
    hsize, = struct.unpack_from('<I', h, 12)
    pstart, = struct.unpack_from('<Q', h, 72)
    n, size = struct.unpack_from('<II', h, 80)
    fh.seek(pstart * 512); ents = bytearray(fh.read(n * size))
    struct.pack_into('<Qq', ents, idx * size + 32, first, last)
    fh.seek(pstart * 512); fh.write(ents)
    struct.pack_into('<I', h, 88, zlib.crc32(ents) & 0xffffffff)
    struct.pack_into('<I', h, 16, 0)
    struct.pack_into('<I', h, 16, zlib.crc32(bytes(h[:hsize])) & 0xffffffff)
    fh.seek(512); fh.write(h[:hsize])
"#;
    let st = Command::new("python3")
        .args(["-c", script, file.to_str().unwrap()])
        .args([idx.to_string(), first.to_string(), last.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn bad_images_fail_with_one_line_and_leave_nothing() {
    let root_and_home = |prefix: &str| {
        Img::gpt(prefix, |i| {
            let t = i.tree("root");
            let home = i.files("home", "h", "h\n");
            vec![
                part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
                part(HOME, "home", 4, Some(i.fs("ext4", &home, 4))),
            ]
        })
    };
    let mut cases: Vec<(Img, &str)> = vec![];
    let img = root_and_home("bad-trunc");
    sh(&format!("truncate -s 10M {}", img.p()));
    cases.push((img, "reaches past the end of the image"));
    let img = Img::new("bad-zeros");
    sh(&format!("truncate -s 4M {}", img.p()));
    cases.push((
        img,
        "Couldn't identify a suitable partition table or file system.",
    ));
    let img = Img::new("bad-empty");
    std::fs::write(&img.path, b"").unwrap();
    cases.push((
        img,
        "Couldn't identify a suitable partition table or file system.",
    ));
    let img = Img::gpt("bad-noroot", |i| {
        let home = i.files("home", "h", "h\n");
        vec![part(HOME, "home", 4, Some(i.fs("ext4", &home, 4)))]
    });
    cases.push((img, "No suitable root partition found in image."));
    let img = Img::gpt("bad-tworoots", |i| {
        let t = i.tree("root");
        let fs = i.fs("ext4", &t, 12);
        vec![
            part(ROOT, "root", 12, Some(fs.clone())),
            part(ROOT, "root", 12, Some(fs)),
        ]
    });
    cases.push((img, "two root partitions (1 and 2)"));
    let img = Img::gpt("bad-unknownfs", |_| vec![part(ROOT, "root", 4, None)]);
    cases.push((img, "partition 1 (root) holds no file system we know"));
    let img = root_and_home("bad-overlap");
    // Home from 12 MiB on: inside the root partition (1..13 MiB).
    patch_entry(&img.path, 1, 12 * 2048, 17 * 2048 - 1);
    cases.push((img, "partitions 1 and 2 overlap"));
    let img = root_and_home("bad-zerolen");
    patch_entry(&img.path, 1, 13 * 2048, 13 * 2048 - 1);
    cases.push((img, "partition 2 has no size"));
    let img = root_and_home("bad-fserrors");
    // The group descriptors after the root file system's superblock.
    sh(&format!(
        "dd if=/dev/zero of={} bs=1024 seek={} count=6 conv=notrunc status=none",
        img.p(),
        1024 + 2
    ));
    cases.push((
        img,
        "cannot mount partition 1 (root) of /var/tmp/nspawn-tests/bad-fserrors",
    ));
    for (img, want) in &cases {
        let o = img.sh(&[], "/bin/true");
        let line = one_line_failure(&o);
        assert!(
            line.starts_with("nspawn: ") && line.contains(want),
            "{}: {line:?}, wanted {want:?}",
            img.name
        );
        assert!(loops_backed_by(&img.path).is_empty(), "{}", img.name);
    }
}

#[test]
fn verity_is_refused_without_the_device_mapper() {
    let hash = "a".repeat(64);
    let img = Img::gpt_root("img-verity");
    let o = img.sh(&[&format!("--root-hash={hash}")], "/bin/true");
    assert!(one_line_failure(&o).contains("refusing to run it unverified"));
    let side = img.dir.join(format!("{}.roothash", img.name));
    std::fs::write(&side, format!("{hash}\n")).unwrap();
    let o = img.sh(&[], "/bin/true");
    let line = one_line_failure(&o);
    assert!(
        line.contains(".roothash exists") && line.contains("unverified"),
        "{line}"
    );
    std::fs::remove_file(side).unwrap();
    // Verity data that `veritysetup format` made of the root file system
    // (it needs no device mapper): with its own root hash, refused only
    // for want of dm-verity; with another, refused as not matching (the
    // same for the `NAME.verity` the reference looks for beside the image).
    let data = img.dir.join(format!("{}.verity", img.name));
    let root = verity_format(&img.dir.join("root.ext4"), &data);
    for (given, refusal) in [
        (root.as_str(), "no device mapper"),
        (hash.as_str(), "does not match"),
    ] {
        let o = img.sh(&[&format!("--root-hash={given}")], "/bin/true");
        let line = one_line_failure(&o);
        assert!(line.contains(refusal), "{given}: {line}");
    }
    std::fs::remove_file(&data).unwrap();
    // Verity data of more than the root file system (here: of the whole
    // image) cannot be the root's.
    let whole = img.dir.join("whole.verity");
    let root = verity_format(&img.path, &whole);
    let o = img.sh(
        &[
            &format!("--root-hash={root}"),
            &format!("--verity-data={}", whole.display()),
        ],
        "/bin/true",
    );
    let line = one_line_failure(&o);
    assert!(line.contains("more than its root file system's"), "{line}");
    let img2 = Img::gpt("img-verity-part", |i| {
        let t = i.tree("root");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(ROOT_VERITY, "root-verity", 1, None),
        ]
    });
    let o = img2.sh(&[], "/bin/true");
    let line = one_line_failure(&o);
    assert!(
        line.contains("root-verity partition") && line.contains("unverified"),
        "{line}"
    );
}

/// `veritysetup format DATA HASH`: the root hash it printed.
fn verity_format(data: &Path, hash: &Path) -> String {
    let o = Command::new("veritysetup")
        .arg("format")
        .args([data, hash])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string()
}

/// A GPT image as systemd-repart makes a verified one: the root, its hash
/// area in a root-verity partition, and a root-verity-sig partition whose
/// JSON names the root hash. Everything is found and checked in the
/// image itself — the root hash in the JSON, the superblock and the tree's
/// top at the verity partition's offset — before the refusal for want of
/// a device mapper. A signed hash that is not the tree's, or a given one
/// that is not the signed one, is refused as such.
#[test]
fn verity_partitions_are_found_and_checked_in_the_image() {
    if reference() {
        return;
    }
    let build = |prefix: &str, signed: Option<&str>| {
        Img::gpt(prefix, |i| {
            let t = i.tree("root");
            let root = i.fs("ext4", &t, 12);
            let hash = i.dir.join("root.verity");
            let real = verity_format(&root, &hash);
            let json = i.dir.join("root.sig");
            std::fs::write(
                &json,
                format!(
                    "{{\"rootHash\":\"{}\",\"signature\":\"MIIB\"}}\n",
                    signed.unwrap_or(&real)
                ),
            )
            .unwrap();
            std::fs::write(i.dir.join("real-root-hash"), &real).unwrap();
            vec![
                part(ROOT, "root", 12, Some(root)),
                part(ROOT_VERITY, "root-verity", 1, Some(hash)),
                part(ROOT_VERITY_SIG, "root-verity-sig", 1, Some(json)),
            ]
        })
    };
    let img = build("img-vsig", None);
    let real = std::fs::read_to_string(img.dir.join("real-root-hash")).unwrap();
    let line = one_line_failure(&img.sh(&[], "/bin/true"));
    assert!(
        line.contains("root-verity partition") && line.contains("no device mapper"),
        "{line}"
    );
    let other = "c".repeat(64);
    let line = one_line_failure(&img.sh(&[&format!("--root-hash={other}")], "/bin/true"));
    assert!(
        line.contains("not the one its root-verity-sig partition signs"),
        "{line}"
    );
    let line = one_line_failure(&img.sh(&[&format!("--root-hash={real}")], "/bin/true"));
    assert!(line.contains("no device mapper"), "{line}");
    let forged = build("img-vsig-forged", Some(&other));
    let line = one_line_failure(&forged.sh(&[], "/bin/true"));
    assert!(line.contains("does not match"), "{line}");
    for i in [&img, &forged] {
        assert!(loops_backed_by(&i.path).is_empty(), "{}", i.name);
    }
}

#[test]
fn killed_runner_leaves_no_loop_device_or_mount() {
    let img = Img::gpt("img-kill", |i| {
        let t = i.tree("root");
        let home = i.files("home", "h", "h\n");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(HOME, "home", 4, Some(i.fs("ext4", &home, 4))),
        ]
    });
    for extra in [&[][..], &["-x"][..]] {
        let mark = marker();
        let mut args = vec!["-q", "--pipe", "-i", img.p()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["/bin/sleep", &mark]);
        let runner = nspawn(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || !processes_exactly(
            &format!("/bin/sleep {mark}")
        )
        .is_empty()));
        let devs: Vec<String> = loops_backed_by(&img.path)
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(devs.len(), 2, "{devs:?}");
        // Mounted in the container's namespace only.
        assert_eq!(host_mounts_of(&devs), Vec::<String>::new());
        let _ = wait_output(kill_runner(runner, libc::SIGKILL), Duration::from_secs(10));
        // The image starts again at once: the lock its dying container
        // still shares is waited for, not reported busy.
        let mut again = vec!["-q", "--pipe", "-i", img.p()];
        again.extend_from_slice(extra);
        again.push("/bin/true");
        let o = run(nspawn(&again));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            wait_until(Duration::from_secs(15), || loops_backed_by(&img.path)
                .is_empty()),
            "left {:?}",
            loops_backed_by(&img.path)
        );
        // A device still mounted anywhere would still be attached.
        let losetup = Command::new("losetup").arg("-a").output().unwrap();
        assert!(!text(&losetup.stdout).contains(img.p()));
        assert!(wait_until(Duration::from_secs(15), || img
            .left()
            .is_empty()));
    }
}

#[test]
fn a_failure_at_each_stage_leaves_no_loop_device() {
    if ours_only() {
        return;
    }
    let img = Img::gpt("img-stages", |i| {
        let t = i.tree("root");
        let home = i.files("home", "h", "h\n");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            part(HOME, "home", 4, Some(i.fs("ext4", &home, 4))),
        ]
    });
    let args = ["-q", "--pipe", "-x", "-i", img.p(), "/bin/true"];
    let mut c = nspawn(&args);
    c.env("NSPAWN_FAILPOINT", "list");
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stages: Vec<String> = stderr(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("failpoint: "))
        .map(str::to_string)
        .collect();
    assert!(stages.iter().any(|s| s == "reserve.tree"), "{stages:?}");
    assert!(stages.iter().any(|s| s == "child.root"), "{stages:?}");
    for stage in &stages {
        let mut c = nspawn(&args);
        c.env("NSPAWN_FAILPOINT", stage);
        let o = run(c);
        assert_eq!(
            one_line_failure(&o),
            format!("nspawn: injected failure at {stage}")
        );
        assert!(
            wait_until(Duration::from_secs(15), || img.left().is_empty()),
            "{stage}: left {:?}",
            img.left()
        );
    }
}

/// A Debian 12 image made from the fixture tree boots to multi-user.target
/// with `-i`, `-i -x` and `-i --read-only --volatile=state`, powers off,
/// and leaves nothing; `-x` and the read-only runs never change it.
#[test]
fn debian_image_boots_to_multi_user() {
    let tree = std::env::var("NSPAWN_TEST_DEBIAN")
        .unwrap_or_else(|_| "/var/cache/nspawn-rs/debian12".into());
    assert!(
        Path::new(&tree).join("usr/lib/systemd/systemd").exists(),
        "no Debian tree at {tree}: run scripts/fixtures.sh debian (scripts/test does)"
    );
    let img = Img::new("img-deb");
    sh(&format!(
        "truncate -s 600M {0} && mkfs.ext4 -q -d {tree} {0}",
        img.p()
    ));
    let boot = Duration::from_secs(120);
    let t = Duration::from_secs(30);
    let mut before = None;
    for extra in [
        &[][..],
        &["-x"][..],
        &["--read-only", "--volatile=state"][..],
        // Its file systems idmapped into a user namespace.
        &["-U", "-x"][..],
    ] {
        let mut args = vec!["-b", "-i", img.p()];
        args.extend_from_slice(extra);
        let mut c = nspawn(&args);
        c.env("TERM", "xterm");
        let mut s = PtySession::spawn(c, 40, 160);
        s.expect("login: ", boot);
        s.send(b"root\n");
        s.expect("# ", t);
        s.send(b"systemctl is-active multi-user.target\n");
        s.expect("\ractive\r\n", t);
        s.expect("# ", t);
        s.send(b"poweroff\n");
        let (code, out) = s.finish(t);
        assert_eq!(code, 0, "{extra:?}: {out}");
        assert!(
            wait_until(Duration::from_secs(15), || img.left().is_empty()),
            "{extra:?}: left {:?}",
            img.left()
        );
        // The writable boot comes first; the others must not change it.
        match &before {
            None => before = Some(img.fingerprint()),
            Some(b) => assert_eq!(&img.fingerprint(), b, "{extra:?} changed the image"),
        }
    }
}

#[test]
fn image_status_shows_a_raw_images_partitions() {
    if ours_only() {
        return;
    }
    let img = Img::gpt("img-status", |i| {
        let t = i.tree("root");
        let home = i.files("home", "h", "h\n");
        vec![
            part(ROOT, "root", 12, Some(i.fs("ext4", &t, 12))),
            Part {
                attrs: "GUID:60",
                ..part(HOME, "home", 4, Some(i.fs("ext4", &home, 4)))
            },
        ]
    });
    let mut c = nspawnctl(&["image-status", &img.name]);
    c.env("NSPAWN_IMAGE_PATH", &img.dir);
    let out = ok(run(c));
    assert!(
        out.contains("\tPartitions: 1 root ext4 12.0M \"root\"\n"),
        "{out}"
    );
    assert!(
        out.contains("\t            2 home ext4 4.0M read-only \"home\"\n"),
        "{out}"
    );
}
