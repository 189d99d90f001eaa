//! `--overlay`/`--overlay-ro` of host directories under a user namespace.
//!
//! Root of the container's namespace may not reach host directories below
//! one closed to others (systemd's `/var/lib/machines` is 0700), nor make
//! an overlay's work directory next to a host upper layer. So, as the
//! reference mounts them before its user namespace exists, the runner
//! (the host's root) makes each overlay whose layers are all host
//! directories as a detached mount (`fsopen`/`fsmount`, through rustix)
//! and hands it to the child, which attaches it. Overlays with layers in
//! the tree (`+PATH`) are the child's to make: those it can reach.

use super::Range;
use crate::error::{Context, Error, Result};
use crate::mount::spec::{CustomMount, MountKind, Source};
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
    MountAttrFlags,
};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The overlay of `m` (one `CustomMount::host_overlay` accepts), detached. Files that
/// root inside creates in a throw-away upper layer are its own.
pub fn make(m: &CustomMount, range: &Range) -> Result<OwnedFd> {
    let MountKind::Overlay {
        lowers,
        upper,
        read_only,
    } = &m.kind
    else {
        return Err(Error::invalid(format!("no overlay on {}", m.dest)));
    };
    let dest = m.dest.as_str();
    let host = |s: &Source| match s {
        Source::Host(p) => Ok(p.clone()),
        _ => Err(Error::invalid(format!(
            "overlay layers for {dest} must be host directories here"
        ))),
    };
    // Descriptors named in the options stay open until the mount is made.
    let lower_fds: Vec<OwnedFd> = lowers
        .iter()
        .map(|l| open_dir(&host(l)?, dest))
        .collect::<Result<_>>()?;
    if upper.is_none() && lower_fds.len() == 1 {
        // One read-only layer is a read-only bind, as the child makes it.
        let p = host(&lowers[0])?;
        let tree = crate::sys::open_tree_clone(&p)
            .ctx(|| format!("cannot clone the mount of {}", p.display()))?;
        crate::sys::mount_setattr_read_only(tree.as_fd(), true)
            .ctx(|| format!("cannot make the overlay on {dest} read-only"))?;
        return Ok(tree);
    }
    // overlayfs lists the highest layer first; we are given the lowest first.
    let lowerdir: Vec<String> = lower_fds.iter().rev().map(proc_fd).collect();
    let mut opts = vec![("lowerdir", lowerdir.join(":"))];
    let mut keep: Vec<OwnedFd> = vec![];
    match upper {
        None => {}
        Some(Source::Temporary) => {
            let tmp = temporary(range, dest)?;
            opts.push(("upperdir", format!("{}/upper", proc_fd(&tmp))));
            opts.push(("workdir", format!("{}/work", proc_fd(&tmp))));
            keep.push(tmp);
        }
        Some(up) => {
            let up = open_dir(&host(up)?, dest)?;
            let work = crate::mount::custom::work_dir(up.as_fd(), dest)?;
            opts.push(("upperdir", proc_fd(&up)));
            opts.push(("workdir", proc_fd(&work)));
            keep.extend([up, work]);
        }
    }
    let what = || format!("cannot mount the overlay on {dest}");
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ctx(what)?;
    for (k, v) in &opts {
        fsconfig_set_string(fs.as_fd(), *k, v.as_str()).ctx(what)?;
    }
    fsconfig_create(fs.as_fd()).ctx(what)?;
    let attrs = match read_only {
        true => MountAttrFlags::MOUNT_ATTR_RDONLY,
        false => MountAttrFlags::empty(),
    };
    let mnt = fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs).ctx(what)?;
    drop((lower_fds, keep));
    Ok(mnt)
}

/// A detached tmpfs for a throw-away upper layer, with `upper` and `work`
/// in it, owned by root of the container's namespace.
fn temporary(range: &Range, dest: &str) -> Result<OwnedFd> {
    let what = || format!("cannot make the overlay's upper layer for {dest}");
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).ctx(what)?;
    fsconfig_set_string(fs.as_fd(), "mode", "0755").ctx(what)?;
    fsconfig_create(fs.as_fd()).ctx(what)?;
    let tmp = fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .ctx(what)?;
    for d in ["upper", "work"] {
        nix::sys::stat::mkdirat(&tmp, d, nix::sys::stat::Mode::from_bits_truncate(0o755))
            .ctx(what)?;
        nix::unistd::fchownat(
            &tmp,
            d,
            Some(nix::unistd::Uid::from_raw(range.base)),
            Some(nix::unistd::Gid::from_raw(range.base)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(what)?;
    }
    Ok(tmp)
}

fn open_dir(p: &Path, dest: &str) -> Result<OwnedFd> {
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENOTDIR => {
            Error::invalid(format!("overlay layers for {dest} must be directories"))
        }
        e => Error::Os {
            what: format!("cannot open {}", p.display()),
            errno: e,
        },
    })
}

fn proc_fd(f: &OwnedFd) -> String {
    crate::inroot::proc_fd(f.as_fd())
}
