//! Idmapped bind mounts (`--bind=SRC:DST:idmap|rootidmap|owneridmap`).
//! As for the tree, only the host's root may idmap a mount
//! (mount_setattr(2)), so the runner makes each one detached, with
//! `open_tree(OPEN_TREE_CLONE)`, and hands it to the child, which
//! attaches it in place of opening the source.
//!
//! An idmapped mount shows on-disk id N as the id N has in the mount's
//! user namespace. `idmap` uses the container's own; `rootidmap` and
//! `owneridmap` need a mapping of one id, which only a user namespace of
//! its own can carry: a short-lived process is cloned into one, given the
//! maps, and its namespace kept by descriptor (user_namespaces(7)).

use super::Range;
use crate::error::{Context, Error, Result};
use crate::inroot;
use crate::mount::spec::{CustomMount, Idmap, MountKind, Source};
use crate::sys;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The detached mounts for the binds with a host source (idmapped where
/// asked) and the overlays of host directories (overlay.rs), in order.
pub fn make(
    mounts: &[CustomMount],
    pid: libc::pid_t,
    range: &Range,
    directory: &Path,
) -> Result<Vec<OwnedFd>> {
    let mut out = vec![];
    for m in mounts {
        if m.host_overlay() {
            out.push(super::overlay::make(m, range)?);
            continue;
        }
        let MountKind::Bind {
            source: Source::Host(src),
            recursive,
            idmap,
            ..
        } = &m.kind
        else {
            continue;
        };
        let ns = match idmap {
            // A plain copy: made here, by the host's root, since root of
            // the container's namespace may not reach a source below a
            // directory closed to others.
            Idmap::Off => {
                out.push(clone(src, *recursive)?);
                continue;
            }
            Idmap::Container => std::fs::File::open(format!("/proc/{pid}/ns/user"))
                .map(OwnedFd::from)
                .ctx(|| "cannot open the container's user namespace".into())?,
            Idmap::Root | Idmap::Owner => {
                let st = std::fs::metadata(src).ctx(|| format!("cannot stat {}", src.display()))?;
                let (uid, gid) = match idmap {
                    Idmap::Root => (0, 0),
                    _ => target_owner(directory, &m.dest, range)?,
                };
                one_id_namespace((st.uid(), range.base + uid), (st.gid(), range.base + gid))?
            }
        };
        out.push(idmapped(src, *recursive, ns.as_fd())?);
    }
    Ok(out)
}

/// The owner, inside, of the bind's target in the tree (root if it does
/// not exist yet: the child creates it). The tree is either shifted into
/// the range or, idmapped, owned by the ids it has inside.
fn target_owner(directory: &Path, dest: &str, r: &Range) -> Result<(u32, u32)> {
    let tree = nix::fcntl::open(
        directory,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", directory.display()))?;
    let Ok(t) = inroot::open(tree.as_fd(), dest, nix::fcntl::OFlag::O_PATH) else {
        return Ok((0, 0));
    };
    let st = nix::sys::stat::fstat(&t).ctx(|| format!("cannot stat {dest}"))?;
    let inside = |id: u32| {
        if r.contains(id) {
            id - r.base
        } else if id < r.size {
            id
        } else {
            0
        }
    };
    Ok((inside(st.st_uid), inside(st.st_gid)))
}

/// A user namespace mapping exactly one uid and one gid: `(id inside, host
/// id)`, held by descriptor after its only process is gone.
fn one_id_namespace(uid: (u32, u32), gid: (u32, u32)) -> Result<OwnedFd> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "cannot create a pipe".into())?;
    let (pid, pidfd) = sys::spawn(libc::CLONE_NEWUSER as u64, None, || {
        // Our copy of the write end, so the runner's close ends the read.
        // SAFETY: the descriptor is not used in this process again.
        unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(&w)) };
        // Wait until the runner has what it needs, then go.
        let _ = nix::unistd::read(&r, &mut [0u8; 1]);
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(0) }
    })
    .ctx(|| "cannot create a user namespace for an idmapped bind".into())?;
    drop(r);
    let done = (|| {
        for (f, (inside, host)) in [("uid_map", uid), ("gid_map", gid)] {
            let path = format!("/proc/{pid}/{f}");
            std::fs::write(&path, format!("{inside} {host} 1\n"))
                .ctx(|| format!("cannot write {path}"))?;
        }
        std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .map(OwnedFd::from)
            .ctx(|| "cannot open a user namespace for an idmapped bind".into())
    })();
    drop(w);
    let _ = sys::wait_pidfd(pidfd.as_fd());
    done
}

/// A detached copy of the mount at `src` (with its submounts for rbind).
fn clone(src: &Path, recursive: bool) -> Result<OwnedFd> {
    if recursive {
        sys::open_tree_clone(src)
    } else {
        sys::open_tree_clone_flat(src)
    }
    .ctx(|| format!("cannot clone the mount of {}", src.display()))
}

fn idmapped(src: &Path, recursive: bool, ns: BorrowedFd) -> Result<OwnedFd> {
    let s = src.display();
    let tree = clone(src, recursive)?;
    sys::mount_setattr_idmap(tree.as_fd(), ns).map_err(|e| match e {
        nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP => Error::invalid(format!(
            "cannot idmap the bind mount of {s}: its file system does not support idmapped mounts"
        )),
        e => Error::Os {
            what: format!("cannot make an idmapped mount of {s}"),
            errno: e,
        },
    })?;
    Ok(tree)
}
