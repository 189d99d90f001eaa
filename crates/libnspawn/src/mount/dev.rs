//! A private `/dev`: a small tmpfs with exactly the usual nodes, its own
//! `devpts` instance, `/dev/shm`, `/dev/mqueue`, and the console.

use super::mount_on;
use crate::error::{Context, Result};
use crate::inroot;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// (name, major, minor, mode): the character devices every container gets,
/// with the reference's modes.
const NODES: &[(&str, u64, u64, u32)] = &[
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("net/tun", 10, 200, 0o600),
];

/// The character devices every container has, by path, with their numbers:
/// `NODES`, and the console and `ptmx` (pty devices). A bundle that lists
/// them (as `runc spec` and podman do) gets ours.
pub fn standard_node(path: &str) -> Option<(u64, u64)> {
    match path {
        "/dev/console" => Some((5, 1)),
        "/dev/ptmx" => Some((5, 2)),
        _ => NODES
            .iter()
            .find(|n| path.strip_prefix("/dev/") == Some(n.0))
            .map(|n| (n.1, n.2)),
    }
}

const LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// The group that owns terminals (Debian's and systemd's `tty`).
const TTY_GID: u32 = 5;

/// Build `/dev` in the tree. With `console`, also allocate the console pty
/// from the container's own devpts, `/dev/console` a link to its peer;
/// returns the master.
///
/// `userns`: in a user namespace mknod(2) of a device fails (CAP_MKNOD
/// counts only in the initial namespace), so the host's nodes are bound
/// onto empty files instead, as the reference does.
pub fn setup_dev(root: BorrowedFd, console: bool, userns: bool) -> Result<Option<OwnedFd>> {
    let dev = inroot::mkdir_p(root, "/dev", 0o755)?;
    mount_on(
        Some("tmpfs"),
        dev.as_fd(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=0755,size=4m,nr_inodes=64k"),
        "tmpfs on /dev",
    )?;
    // Handle to the new tmpfs (the one just mounted on top).
    let dev = inroot::open(root, "/dev", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .ctx(|| "cannot open /dev".into())?;
    for dir in ["net", "char"] {
        nix::sys::stat::mkdirat(&dev, dir, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("cannot create /dev/{dir}"))?;
    }
    // mknod honours the umask: none while the nodes are made (a chmod of
    // each would cost four system calls, glibc's fchmodat without
    // following links going through /proc).
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = make_standard_nodes(root, &dev, userns);
    nix::sys::stat::umask(umask);
    made?;
    for &(name, target) in LINKS {
        nix::unistd::symlinkat(target, &dev, name).ctx(|| format!("cannot create /dev/{name}"))?;
    }
    for (dir, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)] {
        nix::sys::stat::mkdirat(&dev, dir, Mode::from_bits_truncate(mode))
            .ctx(|| format!("cannot create /dev/{dir}"))?;
    }
    let sub = |name: &str| {
        inroot::open_dir(root, &format!("/dev/{name}")).ctx(|| format!("cannot open /dev/{name}"))
    };
    mount_on(
        Some("devpts"),
        sub("pts")?.as_fd(),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!("newinstance,ptmxmode=0666,mode=620,gid={TTY_GID}")),
        "devpts on /dev/pts",
    )?;
    mount_on(
        Some("tmpfs"),
        sub("shm")?.as_fd(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
        Some("mode=01777,size=10%,nr_inodes=400k"),
        "tmpfs on /dev/shm",
    )?;
    mount_on(
        Some("mqueue"),
        sub("mqueue")?.as_fd(),
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
        "mqueue on /dev/mqueue",
    )?;

    if !console {
        return Ok(None);
    }
    console_pty(dev.as_fd()).map(Some)
}

/// The standard nodes, with their `/dev/char` links: made (under an
/// empty umask), or under `userns` the host's bound.
fn make_standard_nodes(root: BorrowedFd, dev: &OwnedFd, userns: bool) -> Result<()> {
    for &(name, major, minor, mode) in NODES {
        let mode = Mode::from_bits_truncate(mode);
        if userns {
            if !bind_host_node(root, dev, name)? {
                continue;
            }
        } else {
            mknodat(dev, name, SFlag::S_IFCHR, mode, makedev(major, minor))
                .ctx(|| format!("cannot create /dev/{name}"))?;
        }
        // udev's /dev/char/MAJOR:MINOR links, which the reference also makes.
        nix::unistd::symlinkat(
            format!("../{name}").as_str(),
            dev,
            format!("char/{major}:{minor}").as_str(),
        )
        .ctx(|| format!("cannot link /dev/char/{major}:{minor}"))?;
    }
    Ok(())
}

/// Make `nodes` (an OCI bundle's devices) in the tree, each as asked:
/// type, numbers, mode, owner. A file already there must be that very
/// device (runtime-spec). In a user namespace, where mknod(2) of a
/// device is refused, the host's node at the same path is bound instead
/// (as the standard ones are), with the host's mode and owner.
pub fn make_nodes(
    root: BorrowedFd,
    nodes: &[crate::mount::spec::DeviceNode],
    userns: bool,
) -> Result<()> {
    use crate::mount::spec::NodeKind;
    use nix::unistd::{Gid, Uid};
    for n in nodes {
        let (parent, name) = n.path.rsplit_once('/').unwrap_or(("", &n.path));
        let dir = inroot::mkdir_p(root, if parent.is_empty() { "/" } else { parent }, 0o755)?;
        if userns {
            bind_host_path(root, &n.path)?;
            continue;
        }
        let kind = match n.kind {
            NodeKind::Char => SFlag::S_IFCHR,
            NodeKind::Block => SFlag::S_IFBLK,
            NodeKind::Fifo => SFlag::S_IFIFO,
        };
        let rdev = match n.kind {
            NodeKind::Fifo => 0,
            _ => makedev(n.major, n.minor),
        };
        let mode = Mode::from_bits_truncate(n.mode & 0o7777);
        match mknodat(&dir, name, kind, mode, rdev) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st =
                    nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                        .ctx(|| format!("cannot stat {}", n.path))?;
                if st.st_mode & libc::S_IFMT != kind.bits() || (rdev != 0 && st.st_rdev != rdev) {
                    return Err(crate::error::Error::invalid(format!(
                        "{} exists and is not the device asked for",
                        n.path
                    )));
                }
            }
            Err(e) => return Err(e).ctx(|| format!("cannot create {}", n.path)),
        }
        // mknod honours the umask.
        fchmodat(&dir, name, mode, FchmodatFlags::NoFollowSymlink)
            .ctx(|| format!("cannot chmod {}", n.path))?;
        nix::unistd::fchownat(
            &dir,
            name,
            Some(Uid::from_raw(n.uid)),
            Some(Gid::from_raw(n.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("cannot chown {}", n.path))?;
    }
    Ok(())
}

/// Bind the host's node at `path` onto an empty file at `path` in the tree.
fn bind_host_path(root: BorrowedFd, path: &str) -> Result<()> {
    let host = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("cannot open the host's {path}"))?;
    let target = inroot::touch(root, path, 0o644)?;
    super::bind_fd(
        host.as_fd(),
        target.as_fd(),
        false,
        &format!("the host's {path}"),
    )
}

/// A pty of the container's own devpts, with `/dev/console` a symlink to
/// its peer (`pts/N`), as the reference's: the payload's descriptors name
/// the pty itself. Returns the master for the runner.
fn console_pty(dev: BorrowedFd) -> Result<OwnedFd> {
    let master = nix::fcntl::openat(
        dev,
        "pts/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "cannot allocate the console pty".into())?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) })
        .ctx(|| "cannot unlock the console pty".into())?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN stores the pty's number in an unsigned int.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })
        .ctx(|| "cannot get the console pty's number".into())?;
    nix::unistd::symlinkat(format!("pts/{n}").as_str(), dev, "console")
        .ctx(|| "cannot create /dev/console".into())?;
    Ok(master)
}

/// Bind the host's `/dev/NAME` onto an empty file in our `/dev`; false if
/// the host has no such node (a kernel without tun).
fn bind_host_node(root: BorrowedFd, dev: &OwnedFd, name: &str) -> Result<bool> {
    let host = match nix::fcntl::open(
        format!("/dev/{name}").as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(e).ctx(|| format!("cannot open the host's /dev/{name}")),
    };
    nix::fcntl::openat(
        dev,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .ctx(|| format!("cannot create /dev/{name}"))?;
    let target = inroot::open(root, &format!("/dev/{name}"), OFlag::O_PATH)
        .ctx(|| format!("cannot open /dev/{name}"))?;
    super::bind_fd(
        host.as_fd(),
        target.as_fd(),
        false,
        &format!("the host's /dev/{name}"),
    )?;
    Ok(true)
}
