//! `--bind`, `--tmpfs`, `--overlay` and `--inaccessible`, mounted after the
//! API file systems (so targets under `/tmp` or `/run` work) and before
//! `pivot_root` (so host sources are still reachable). Targets are resolved
//! inside the tree; host sources are opened once and used by descriptor.

use super::{bind_fd, mount_on, remount};
use crate::error::{Context, Error, Result};
use crate::inroot;
use crate::mount::spec::{CustomMount, MountKind, Source};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, Mode};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// `detached`: under a user namespace, the runner's copies of every bind
/// with a host source (idmapped where asked) and its overlays of host
/// directories, in order (userns/binds.rs).
pub fn mount_all(
    root: BorrowedFd,
    run: BorrowedFd,
    mounts: &[CustomMount],
    detached: Option<Vec<OwnedFd>>,
) -> Result<()> {
    let userns = detached.is_some();
    let mut detached = detached.unwrap_or_default().into_iter();
    for m in mounts {
        match &m.kind {
            MountKind::Bind {
                source: Source::Host(_),
                read_only,
                ..
            } if userns => {
                let tree = detached
                    .next()
                    .ok_or_else(|| Error::invalid(format!("no prepared mount for {}", m.dest)))?;
                attach(root, &m.dest, tree, *read_only)?;
            }
            MountKind::Overlay { .. } if userns && m.host_overlay() => {
                let tree = detached
                    .next()
                    .ok_or_else(|| Error::invalid(format!("no prepared mount for {}", m.dest)))?;
                // Read-only already, where asked.
                attach(root, &m.dest, tree, false)?;
            }
            _ => mount_one(root, run, m)?,
        }
    }
    Ok(())
}

/// Attach a detached mount the runner made on `dest`, made like its source.
fn attach(root: BorrowedFd, dest: &str, tree: OwnedFd, read_only: bool) -> Result<()> {
    let t = target(root, dest, is_dir(tree.as_fd())?)?;
    crate::sys::move_mount_onto_fd(tree.as_fd(), t.as_fd())
        .ctx(|| format!("cannot attach the mount on {dest}"))?;
    if read_only {
        read_only_recursive(root, dest)?;
    }
    Ok(())
}

fn open_source(root: BorrowedFd, s: &Source) -> Result<OwnedFd> {
    match s {
        Source::Host(p) => nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("cannot open {}", p.display())),
        Source::Tree(p) => inroot::open(root, p, OFlag::O_PATH)
            .ctx(|| format!("cannot open +{p} in the container tree")),
        Source::Temporary => unreachable!("temporary sources are mounted as tmpfs"),
    }
}

fn is_dir(fd: BorrowedFd) -> Result<bool> {
    Ok(fstat(fd)
        .ctx(|| "cannot stat a mount source".into())?
        .st_mode
        & libc::S_IFMT
        == libc::S_IFDIR)
}

/// Create the target like the source (directory or file) and open it.
fn target(root: BorrowedFd, dest: &str, dir: bool) -> Result<OwnedFd> {
    if dir {
        inroot::mkdir_p(root, dest, 0o755)
    } else {
        inroot::touch(root, dest, 0o644)
    }
}

fn mount_one(root: BorrowedFd, run: BorrowedFd, m: &CustomMount) -> Result<()> {
    let dest = m.dest.as_str();
    match &m.kind {
        MountKind::Bind {
            source: Source::Temporary,
            read_only,
            ..
        } => {
            // A fresh empty directory: a tmpfs, gone with the container.
            let t = inroot::mkdir_p(root, dest, 0o755)?;
            mount_on(
                Some("tmpfs"),
                t.as_fd(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
                &format!("a temporary directory on {dest}"),
            )?;
            if *read_only {
                remount(root, dest, MsFlags::MS_RDONLY)?;
            }
            Ok(())
        }
        MountKind::Bind {
            source,
            read_only,
            recursive,
            flags,
            ..
        } => {
            let src = open_source(root, source)?;
            let t = target(root, dest, is_dir(src.as_fd())?)?;
            bind_fd(
                src.as_fd(),
                t.as_fd(),
                *recursive,
                &format!("the bind on {dest}"),
            )?;
            if *read_only && *recursive {
                read_only_recursive(root, dest)?;
            }
            // A bind remount sets exactly the flags it names: read-only
            // is named again with nosuid, nodev, noexec.
            let ro = if *read_only {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            if (*read_only && !*recursive) || !flags.is_empty() {
                remount(root, dest, ro | *flags)?;
            }
            Ok(())
        }
        MountKind::Tmpfs { flags, data } => {
            let t = inroot::mkdir_p(root, dest, 0o755)?;
            mount_on(
                Some("tmpfs"),
                t.as_fd(),
                Some("tmpfs"),
                *flags,
                data.as_deref(),
                &format!("a tmpfs on {dest}"),
            )
        }
        MountKind::Overlay {
            lowers,
            upper,
            read_only,
        } => overlay(root, dest, lowers, upper.as_ref(), *read_only),
        MountKind::Fs {
            fstype,
            source,
            flags,
            data,
        } => {
            let t = inroot::mkdir_p(root, dest, 0o755)?;
            mount_on(
                Some(source.as_str()),
                t.as_fd(),
                Some(fstype.as_str()),
                *flags,
                data.as_deref(),
                &format!("the {fstype} on {dest}"),
            )
        }
        MountKind::Inaccessible { graceful } => {
            let t = match inroot::open(root, dest, OFlag::O_PATH) {
                Err(nix::errno::Errno::ENOENT) if *graceful => return Ok(()),
                r => r.ctx(|| format!("cannot make {dest} inaccessible"))?,
            };
            let node = match fstat(t.as_fd())
                .ctx(|| format!("cannot stat {dest}"))?
                .st_mode
                & libc::S_IFMT
            {
                libc::S_IFDIR => "dir",
                libc::S_IFCHR => "chr",
                libc::S_IFBLK => "blk",
                libc::S_IFIFO => "fifo",
                libc::S_IFSOCK => "sock",
                _ => "reg",
            };
            let src = inroot::open(run, &format!("/host/inaccessible/{node}"), OFlag::O_PATH)
                .ctx(|| "cannot open the inaccessible nodes".into())?;
            bind_fd(
                src.as_fd(),
                t.as_fd(),
                false,
                &format!("an inaccessible node on {dest}"),
            )?;
            remount(
                root,
                dest,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )
        }
    }
}

/// Read-only for a recursive bind means its submounts too: mount_setattr(2)
/// with AT_RECURSIVE (nix does not wrap it).
fn read_only_recursive(root: BorrowedFd, dest: &str) -> Result<()> {
    let top = inroot::open(root, dest, OFlag::O_PATH).ctx(|| format!("cannot open {dest}"))?;
    crate::sys::mount_setattr_read_only(top.as_fd(), true)
        .ctx(|| format!("cannot make {dest} read-only"))
}

fn overlay(
    root: BorrowedFd,
    dest: &str,
    lowers: &[Source],
    upper: Option<&Source>,
    read_only: bool,
) -> Result<()> {
    // Open every layer before anything is mounted on the destination (a
    // layer may be the destination itself).
    let lower_fds: Vec<OwnedFd> = lowers
        .iter()
        .map(|l| open_source(root, l))
        .collect::<Result<_>>()?;
    for fd in &lower_fds {
        if !is_dir(fd.as_fd())? {
            return Err(Error::invalid(format!(
                "overlay layers for {dest} must be directories"
            )));
        }
    }
    // overlayfs lists the highest layer first; we are given the lowest first.
    let lowerdir: Vec<String> = lower_fds
        .iter()
        .rev()
        .map(|f| inroot::proc_fd(f.as_fd()))
        .collect();
    let t = inroot::mkdir_p(root, dest, 0o755)?;
    // Descriptors named in the options must stay open until the mount.
    let mut keep: Vec<OwnedFd> = Vec::new();
    let opts = match upper {
        None if lower_fds.len() == 1 => {
            // overlayfs needs two layers without an upper one; one read-only
            // layer is simply a read-only bind.
            mount_on(
                Some(lowerdir[0].as_str()),
                t.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                &format!("the overlay on {dest}"),
            )?;
            return read_only_recursive(root, dest);
        }
        None => format!("lowerdir={}", lowerdir.join(":")),
        Some(Source::Temporary) => {
            // A throw-away upper layer: a tmpfs in our mount namespace only.
            mount_on(
                Some("tmpfs"),
                t.as_fd(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
                &format!("the overlay's upper layer for {dest}"),
            )?;
            let tmp = inroot::open_dir(root, dest).ctx(|| format!("cannot open {dest}"))?;
            for d in ["upper", "work"] {
                nix::sys::stat::mkdirat(&tmp, d, Mode::from_bits_truncate(0o755))
                    .ctx(|| format!("cannot create {d} for {dest}"))?;
            }
            let p = inroot::proc_fd(tmp.as_fd());
            let opts = format!(
                "lowerdir={},upperdir={p}/upper,workdir={p}/work",
                lowerdir.join(":")
            );
            keep.push(tmp);
            opts
        }
        Some(up) => {
            let up = open_source(root, up)?;
            let work = work_dir(up.as_fd(), dest)?;
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                lowerdir.join(":"),
                inroot::proc_fd(up.as_fd()),
                inroot::proc_fd(work.as_fd())
            );
            keep.extend([up, work]);
            opts
        }
    };
    let t = inroot::open_dir(root, dest).ctx(|| format!("cannot open {dest}"))?;
    let flags = if read_only {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    mount_on(
        Some("overlay"),
        t.as_fd(),
        Some("overlay"),
        flags,
        Some(&opts),
        &format!("the overlay on {dest}"),
    )?;
    drop((lower_fds, keep));
    Ok(())
}

/// The work directory of the upper layer `up` of the overlay on `dest`:
/// it must be on the upper layer's file system, so a fixed sibling,
/// reused (and emptied by overlayfs) each time. Opened without following
/// a symlink (whoever may write beside the upper layer must not send
/// overlayfs, which empties the work directory, elsewhere) and owned by
/// us; its descriptor is what names it in the mount options.
pub(crate) fn work_dir(up: BorrowedFd, dest: &str) -> Result<OwnedFd> {
    let parent = nix::fcntl::openat(
        up,
        "..",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open the parent of the upper layer for {dest}"))?;
    let name = std::fs::read_link(inroot::proc_fd(up))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "upper".into());
    let work = format!(".#{name}.nspawn-work");
    let what = || format!("cannot create the overlay work directory for {dest}");
    match nix::sys::stat::mkdirat(&parent, work.as_str(), Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e).ctx(what),
    }
    let fd = nix::fcntl::openat(
        &parent,
        work.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(what)?;
    if fstat(fd.as_fd()).ctx(what)?.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(Error::invalid(format!(
            "the overlay work directory {work} for {dest} belongs to another user"
        )));
    }
    Ok(fd)
}
