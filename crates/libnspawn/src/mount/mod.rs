//! The container's file system: the tree bound on itself, the API file
//! systems on top (what the reference's `/proc/self/mountinfo` shows), then
//! `pivot_root` into it. Runs in the container process, in its own mount
//! namespace, before anything of the tree is executed.

pub mod custom;
mod dev;
pub mod etc;
mod image;
pub mod options;
pub mod root;
pub mod spec;

pub use dev::{make_nodes, setup_dev, standard_node};

use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::inroot;
use crate::knobs::ApiVfsWritable;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Files in `/proc` that expose the host kernel and are hidden behind an
/// empty, unreadable file, as the reference does.
const PROC_MASKED: &[&str] = &["kallsyms", "kcore", "keys", "sysrq-trigger", "timer_list"];
/// Directories in `/proc` that reach host hardware and are made read-only.
const PROC_READ_ONLY: &[&str] = &["acpi", "apm", "asound", "bus", "fs", "irq", "scsi"];

/// Mount `fstype` (or bind `src`) on the file behind `target`.
pub fn mount_on(
    src: Option<&str>,
    target: BorrowedFd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> Result<()> {
    mount(src, inroot::proc_fd(target).as_str(), fstype, flags, data)
        .ctx(|| format!("cannot mount {what}"))
}

/// Bind the file or directory behind `src` onto the one behind `target`.
pub fn bind_fd(src: BorrowedFd, target: BorrowedFd, recursive: bool, what: &str) -> Result<()> {
    let flags = if recursive {
        MsFlags::MS_BIND | MsFlags::MS_REC
    } else {
        MsFlags::MS_BIND
    };
    mount_on(
        Some(inroot::proc_fd(src).as_str()),
        target,
        None,
        flags,
        None,
        what,
    )
}

/// Change the flags of the mount now on top of `path` in the tree (open it
/// again: a mount just made covers the handle taken before).
pub fn remount(root: BorrowedFd, path: &str, flags: MsFlags) -> Result<()> {
    let top = inroot::open(root, path, nix::fcntl::OFlag::O_PATH)
        .ctx(|| format!("cannot open {path}"))?;
    mount_on(
        None,
        top.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None,
        &format!("{path} again"),
    )
}

/// Bind `src` (or the path itself) over `path` in the tree, then remount
/// the new mount with `flags` (read-only, nosuid...). A missing `path` (a
/// kernel without that /proc entry) is skipped.
fn bind_remount(
    root: BorrowedFd,
    src: Option<BorrowedFd>,
    path: &str,
    flags: MsFlags,
) -> Result<()> {
    let target = match inroot::open(root, path, nix::fcntl::OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("cannot open {path}")),
    };
    bind_fd(
        src.unwrap_or(target.as_fd()),
        target.as_fd(),
        true,
        &format!("over {path}"),
    )?;
    remount(root, path, flags)
}

fn bind_read_only(root: BorrowedFd, path: &str, extra: MsFlags) -> Result<()> {
    bind_remount(root, None, path, MsFlags::MS_RDONLY | extra)
}

pub struct ApiOptions<'a> {
    pub private_network: bool,
    pub knobs: &'a crate::knobs::Knobs,
    pub boot_id: Id128,
    pub cgroup2: bool,
    pub host_os_release: &'a [u8],
    pub container_uuid: Id128,
    /// In a user namespace of our own.
    pub userns: bool,
    /// The runner's detached sysfs (`detached_sysfs`), for a user
    /// namespace without a network namespace of its own.
    pub sysfs: Option<BorrowedFd<'a>>,
}

/// `/run`, `/proc`, `/sys`, `/tmp` as the reference lays them out; `/dev`
/// is separate (`setup_dev`) since it also makes the console. Returns the
/// root of the tmpfs on `/run`: what is later made there is made through it.
pub fn setup_api(root: BorrowedFd, o: &ApiOptions) -> Result<OwnedFd> {
    let (run, boot_id) = setup_run(root, o)?;
    setup_proc(root, run.as_fd(), o, boot_id.as_fd())?;
    setup_sys(root, o)?;
    if o.knobs.tmpfs_tmp {
        let tmp = inroot::mkdir_p(root, "/tmp", 0o1777)?;
        mount_on(
            Some("tmpfs"),
            tmp.as_fd(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
            Some("mode=01777,size=10%,nr_inodes=400k"),
            "tmpfs on /tmp",
        )?;
    }
    Ok(run)
}

/// A tmpfs on /run with /run/host (the host's os-release, our name, the
/// container's UUID, the inaccessible nodes); returns the tmpfs's root and
/// the boot id file, already unlinked, for /proc.
/// The tree's `/run` can be swapped by whoever else writes the tree (a
/// machine it is bound into) once we opened it: a path through it may then
/// lead elsewhere in the tree. So the tmpfs is made detached
/// (`fsopen(2)`/`fsmount(2)`), filled through its own descriptor, then
/// attached on the directory we opened (`move_mount(2)`), and that
/// descriptor stays the only way to it.
fn setup_run(root: BorrowedFd, o: &ApiOptions) -> Result<(OwnedFd, OwnedFd)> {
    use rustix::mount::{fsconfig_create, fsconfig_set_string, fsmount, fsopen};
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let target = inroot::mkdir_p(root, "/run", 0o755)?;
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(crate::sys::errno)
        .ctx(|| "cannot create a tmpfs for /run".into())?;
    // The source as mount(2) would name it ("none" otherwise), as the
    // reference shows it in the mount table.
    let options = [
        ("source", "tmpfs"),
        ("mode", "0755"),
        ("size", "20%"),
        ("nr_inodes", "800k"),
    ];
    for (key, value) in options {
        fsconfig_set_string(&fs, key, value)
            .map_err(crate::sys::errno)
            .ctx(|| format!("cannot set {key}={value} on the tmpfs for /run"))?;
    }
    fsconfig_create(&fs)
        .map_err(crate::sys::errno)
        .ctx(|| "cannot create a tmpfs for /run".into())?;
    let run = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_STRICTATIME,
    )
    .map_err(crate::sys::errno)
    .ctx(|| "cannot mount the tmpfs for /run".into())?;
    let r = run.as_fd();
    inroot::mkdir_p(r, "/host", 0o755)?;
    inroot::write_file(r, "/host/os-release", o.host_os_release, 0o644)?;
    inroot::write_file(
        r,
        "/host/container-manager",
        format!("{}\n", o.knobs.container_service).as_bytes(),
        0o644,
    )?;
    inroot::write_file(
        r,
        "/host/container-uuid",
        format!("{}\n", o.container_uuid).as_bytes(),
        0o644,
    )?;
    inroot::mkdir_p(r, "/host/incoming", 0o700)?;
    make_inaccessible_nodes(r, o.userns)?;
    // The fresh boot id: a file on /run, bound over the kernel's and then
    // unlinked (the mount keeps it; `setup_proc`), named as the reference's.
    let name = boot_id_file(o);
    inroot::write_file(r, &name, format!("{}\n", o.boot_id).as_bytes(), 0o444)?;
    let boot_id = inroot::open(r, &name, nix::fcntl::OFlag::O_PATH)
        .ctx(|| "cannot open the boot id file".into())?;
    crate::sys::move_mount_onto_fd(r, target.as_fd())
        .ctx(|| "cannot mount tmpfs on /run".into())?;
    Ok((run, boot_id))
}

/// `/proc/kmsg` covered with an empty FIFO, as the reference's: a payload
/// kept CAP_SYSLOG must not read (and so take) the host's kernel messages.
/// Returns a descriptor open for writing on it, for the runner to hold
/// while the container runs: with a writer, a reader waits for messages
/// that never come instead of reading end-of-file in a loop.
pub fn cover_kmsg(root: BorrowedFd, run: BorrowedFd) -> Result<OwnedFd> {
    let name = format!(
        ".#proc-kmsg{}",
        &crate::id128::Id128::random()?.plain()[..16]
    );
    nix::unistd::mkfifoat(run, name.as_str(), Mode::from_bits_truncate(0o600))
        .ctx(|| "cannot create the FIFO for /proc/kmsg".into())?;
    let fifo = inroot::open(
        run,
        &name,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NONBLOCK,
    )
    .ctx(|| "cannot open the FIFO for /proc/kmsg".into())?;
    let target = inroot::open(root, "/proc/kmsg", nix::fcntl::OFlag::O_PATH)
        .ctx(|| "cannot open /proc/kmsg".into())?;
    bind_fd(fifo.as_fd(), target.as_fd(), false, "a FIFO on /proc/kmsg")?;
    nix::unistd::unlinkat(run, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
        .ctx(|| "cannot remove the FIFO for /proc/kmsg".into())?;
    Ok(fifo)
}

/// The boot id's file in `/run` until it is bound: a name no tree has.
fn boot_id_file(o: &ApiOptions) -> String {
    format!(
        ".#proc-sys-kernel-random-boot-id{}",
        &o.boot_id.plain()[..16]
    )
}

/// proc on /proc: /proc/sys read-only (but a private network's), our boot
/// id, the masked and read-only entries.
fn setup_proc(
    root: BorrowedFd,
    run: BorrowedFd,
    o: &ApiOptions,
    boot_id: BorrowedFd,
) -> Result<()> {
    let proc = inroot::mkdir_p(root, "/proc", 0o555)?;
    mount_on(
        Some("proc"),
        proc.as_fd(),
        Some("proc"),
        NOSUID_NODEV_NOEXEC,
        None,
        "proc on /proc",
    )?;
    let vfs_writable = o.knobs.api_vfs_writable;
    if vfs_writable != ApiVfsWritable::Yes {
        bind_read_only(root, "/proc/sys", NOSUID_NODEV_NOEXEC)?;
    }
    if o.private_network && vfs_writable == ApiVfsWritable::No
        || vfs_writable == ApiVfsWritable::Network
    {
        // A new network namespace's sysctls are the container's own: bind
        // them again on top of the read-only /proc/sys, writable.
        bind_remount(root, None, "/proc/sys/net", NOSUID_NODEV_NOEXEC)?;
    }
    bind_file_read_only(root, boot_id, "/proc/sys/kernel/random/boot_id")?;
    nix::unistd::unlinkat(
        run,
        boot_id_file(o).as_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )
    .ctx(|| "cannot remove the boot id file".into())?;
    let reg = inroot::open(run, "/host/inaccessible/reg", nix::fcntl::OFlag::O_PATH)
        .ctx(|| "cannot open /run/host/inaccessible/reg".into())?;
    for name in PROC_MASKED {
        bind_file_read_only(root, reg.as_fd(), &format!("/proc/{name}"))?;
    }
    for name in PROC_READ_ONLY {
        bind_read_only(root, &format!("/proc/{name}"), NOSUID_NODEV_NOEXEC)?;
    }
    Ok(())
}

/// A new sysfs of the runner's network namespace (the host's), detached,
/// with the flags /sys gets (`setup_sys`): for a container in a user
/// namespace of its own that shares the host's network, which may not
/// mount one itself.
pub fn detached_sysfs(knobs: &crate::knobs::Knobs) -> Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fail = |e: rustix::io::Errno| Error::Os {
        what: "cannot make a sysfs for the container".into(),
        errno: nix::errno::Errno::from_raw(e.raw_os_error()),
    };
    let ctx = rustix::mount::fsopen("sysfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail)?;
    // Named as mount(2) names it (and the reference shows it).
    rustix::mount::fsconfig_set_string(&ctx, "source", "sysfs").map_err(fail)?;
    rustix::mount::fsconfig_create(&ctx).map_err(fail)?;
    let mut attrs = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    if knobs.api_vfs_writable != ApiVfsWritable::Yes {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    rustix::mount::fsmount(&ctx, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(fail)
}

/// sysfs on /sys (the runner's, under a user namespace without a network
/// of its own), and the container's cgroup2 on /sys/fs/cgroup.
fn setup_sys(root: BorrowedFd, o: &ApiOptions) -> Result<()> {
    let vfs_writable = o.knobs.api_vfs_writable;
    let sys = inroot::mkdir_p(root, "/sys", 0o555)?;
    let sys_flags = if vfs_writable == ApiVfsWritable::Yes {
        NOSUID_NODEV_NOEXEC
    } else {
        NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY
    };
    if o.userns && !o.private_network {
        // sysfs may only be mounted by who owns the network namespace
        // (sysfs shows its interfaces): the host's, so the runner made it.
        // Not a bind of the host's /sys, which would bring what is
        // mounted below it (tracefs, debugfs, bpffs) along.
        let fs = o
            .sysfs
            .ok_or_else(|| Error::invalid("the runner sent no sysfs for /sys"))?;
        crate::sys::move_mount_onto_fd(fs, sys.as_fd())
            .ctx(|| "cannot mount sysfs on /sys".into())?;
    } else if o.private_network {
        sys_of_own_network(root, sys.as_fd(), sys_flags)?;
    } else {
        mount_on(
            Some("sysfs"),
            sys.as_fd(),
            Some("sysfs"),
            sys_flags,
            None,
            "sysfs on /sys",
        )?;
    }
    if o.cgroup2 {
        // We are already in our own cgroup namespace, so this shows the
        // container's cgroup as the root: writable for the guest's init.
        let cg =
            inroot::open_dir(root, "/sys/fs/cgroup").ctx(|| "cannot open /sys/fs/cgroup".into())?;
        mount_on(
            Some("cgroup2"),
            cg.as_fd(),
            Some("cgroup2"),
            NOSUID_NODEV_NOEXEC,
            None,
            "cgroup2 on /sys/fs/cgroup",
        )?;
    }
    Ok(())
}

/// The directories of sysfs a container with a network of its own sees,
/// as the reference's (mount_sysfs()): not `firmware`, `module`, `power`,
/// `hypervisor`, nor `fs` (but for the cgroup mount point).
const SYSFS_SHOWN: &[&str] = &["block", "bus", "class", "dev", "devices", "kernel"];

/// `/sys` for a container with its own network namespace: a small tmpfs
/// holding binds of `SYSFS_SHOWN` from a sysfs of that namespace, made
/// with `flags` (read-only unless the API file systems are writable).
fn sys_of_own_network(root: BorrowedFd, sys: BorrowedFd, flags: MsFlags) -> Result<()> {
    mount_on(
        Some("tmpfs"),
        sys,
        Some("tmpfs"),
        NOSUID_NODEV_NOEXEC,
        Some("mode=0555,size=4m,nr_inodes=1k"),
        "tmpfs on /sys",
    )?;
    let full = inroot::mkdir_p(root, "/sys/full", 0o755)?;
    mount_on(
        Some("sysfs"),
        full.as_fd(),
        Some("sysfs"),
        flags,
        None,
        "sysfs on /sys/full",
    )?;
    for d in SYSFS_SHOWN {
        let from = inroot::open(root, &format!("/sys/full/{d}"), nix::fcntl::OFlag::O_PATH)
            .ctx(|| format!("cannot open /sys/full/{d}"))?;
        let to = inroot::mkdir_p(root, &format!("/sys/{d}"), 0o755)?;
        bind_fd(
            from.as_fd(),
            to.as_fd(),
            false,
            &format!("sysfs's {d} on /sys/{d}"),
        )?;
        remount(root, &format!("/sys/{d}"), flags)?;
    }
    drop(full);
    // Opened again: the descriptor from before names the directory under
    // the sysfs mount, not the mount.
    let full = inroot::open(root, "/sys/full", nix::fcntl::OFlag::O_PATH)
        .ctx(|| "cannot open /sys/full".into())?;
    umount2(inroot::proc_fd(full.as_fd()).as_str(), MntFlags::MNT_DETACH)
        .ctx(|| "cannot unmount /sys/full".into())?;
    drop(full);
    let top = inroot::open_dir(root, "/sys").ctx(|| "cannot open /sys".into())?;
    nix::unistd::unlinkat(&top, "full", nix::unistd::UnlinkatFlags::RemoveDir)
        .ctx(|| "cannot remove /sys/full".into())?;
    // The cgroup mount point, made before the tmpfs turns read-only.
    inroot::mkdir_p(root, "/sys/fs/cgroup", 0o755)?;
    remount(root, "/sys", flags)
}

/// `/run/host/inaccessible/`: one node of each type with mode 0, as the
/// reference provides; our masks are bound from here, so they do not
/// depend on the host having `/run/systemd/inaccessible`.
/// In a user namespace no block node can be made (mknod(2) needs
/// CAP_MKNOD in the initial namespace; a 0:0 character node is a whiteout
/// and allowed), so `blk` is left out there.
fn make_inaccessible_nodes(run: BorrowedFd, userns: bool) -> Result<()> {
    use nix::sys::stat::{makedev, mknodat, SFlag};
    // The *at() calls take the O_PATH handle as their directory.
    let dir = inroot::mkdir_p(run, "/host/inaccessible", 0o755)?;
    let none = Mode::empty();
    for (name, kind) in [
        ("reg", SFlag::S_IFREG),
        ("fifo", SFlag::S_IFIFO),
        ("sock", SFlag::S_IFSOCK),
        ("chr", SFlag::S_IFCHR),
        ("blk", SFlag::S_IFBLK),
    ] {
        if userns && kind == SFlag::S_IFBLK {
            continue;
        }
        mknodat(&dir, name, kind, none, makedev(0, 0))
            .ctx(|| format!("cannot create /run/host/inaccessible/{name}"))?;
    }
    nix::sys::stat::mkdirat(&dir, "dir", none)
        .ctx(|| "cannot create /run/host/inaccessible/dir".into())?;
    Ok(())
}

/// Bind the file behind `src` over `path` in the tree, read-only.
fn bind_file_read_only(root: BorrowedFd, src: BorrowedFd, path: &str) -> Result<()> {
    bind_remount(
        root,
        Some(src),
        path,
        MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
    )
}

/// `--set-credential`/`--load-credential`: files in `/run/host/credentials`,
/// readable only by the payload's user, on a ramfs of their own as the
/// reference's (never swapped out), read-only once written. Without
/// credentials there is no such directory.
pub fn write_credentials(
    run: BorrowedFd,
    creds: &[(String, Vec<u8>)],
    owner: Option<(u32, u32)>,
) -> Result<()> {
    if creds.is_empty() {
        return Ok(());
    }
    const PATH: &str = "/run/host/credentials";
    const IN_RUN: &str = "/host/credentials";
    let (uid, gid) = owner.unwrap_or((0, 0));
    let target = inroot::mkdir_p(run, IN_RUN, 0o700)?;
    mount_on(
        Some("none"),
        target.as_fd(),
        Some("ramfs"),
        NOSUID_NODEV_NOEXEC,
        Some("mode=0700"),
        "a ramfs on /run/host/credentials",
    )?;
    // Opened again: the descriptor from before names the directory under
    // the ramfs.
    let dir = inroot::open(
        run,
        IN_RUN,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
    )
    .ctx(|| format!("cannot open {PATH}"))?;
    for (id, data) in creds {
        let path = format!("{PATH}/{id}");
        inroot::write_file(dir.as_fd(), id, data, 0o400)?;
        nix::unistd::fchownat(
            &dir,
            id.as_str(),
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("cannot chown {path}"))?;
    }
    nix::unistd::fchown(&dir, Some(uid.into()), Some(gid.into()))
        .ctx(|| format!("cannot chown {PATH}"))?;
    nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(0o500))
        .ctx(|| format!("cannot chmod {PATH}"))?;
    // The file system itself read-only (not only this mount of it).
    mount_on(
        None,
        dir.as_fd(),
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
        Some("mode=0700"),
        "/run/host/credentials read-only",
    )
}

/// Bind the runner's notify socket into `/run/host/notify` and make
/// `/run/host` read-only.
pub fn finish_run_host(run: BorrowedFd, notify: BorrowedFd) -> Result<()> {
    let host = inroot::open_dir(run, "/host").ctx(|| "cannot open /run/host".into())?;
    let path = format!("{}/notify", inroot::proc_fd(host.as_fd()));
    let addr =
        nix::sys::socket::UnixAddr::new(path.as_str()).ctx(|| "bad notify socket path".into())?;
    nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&notify), &addr)
        .ctx(|| "cannot bind /run/host/notify".into())?;
    bind_fd(host.as_fd(), host.as_fd(), true, "/run/host on itself")?;
    // Opened again: the descriptor from before names the directory under
    // the new mount.
    let top = inroot::open_dir(run, "/host").ctx(|| "cannot open /run/host".into())?;
    mount_on(
        None,
        top.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
        None,
        "/run/host read-only",
    )
}

/// Make the tree the root of our mount namespace and drop every host mount.
pub fn enter_root(root: BorrowedFd) -> Result<()> {
    nix::unistd::fchdir(root).ctx(|| "cannot enter the container tree".into())?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detaching unmount of "." then removes exactly it (pivot_root(2), NOTES).
    nix::unistd::pivot_root(".", ".").ctx(|| "cannot pivot_root into the container tree".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "cannot detach the host's file systems".into())?;
    nix::unistd::chdir("/").ctx(|| "cannot change directory to /".into())
}

/// The tree must hold an OS (for `--boot`) or at least a `/usr`.
pub fn check_tree(root: BorrowedFd, directory: &Path, boot: bool) -> Result<()> {
    if boot {
        let has = ["/etc/os-release", "/usr/lib/os-release"]
            .iter()
            .any(|p| inroot::open(root, p, nix::fcntl::OFlag::O_PATH).is_ok());
        if !has {
            return Err(Error::invalid(format!(
                "Directory {} doesn't look like an OS root directory (os-release file is missing). Refusing.",
                directory.display()
            )));
        }
    } else if inroot::open_dir(root, "/usr").is_err() {
        return Err(Error::invalid(format!(
            "Directory {} doesn't look like it has an OS tree (/usr/ directory is missing). Refusing.",
            directory.display()
        )));
    }
    Ok(())
}
