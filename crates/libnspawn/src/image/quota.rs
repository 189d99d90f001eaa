//! `set-limit` and the `Usage`/`Limit` properties: btrfs quota groups
//! of an image's subvolume, or of the pool. As the reference's
//! `image_set_limit` and machined's `SetPoolLimit`, a limit goes on the
//! leaf group and on the subtree group (`qgroup`), and usage is read from
//! the subtree group while no rescan runs. Other images and file systems
//! have no quota: a clear refusal.
//!
//! Quotas cost btrfs time on every write, so they are turned on only when
//! a limit is first set (machined turns them on whenever it sets up the
//! pool). From then on, as the reference does on import and clone, each
//! new subvolume image gets its groups (`adopt`).

use super::store::{self, Image, Kind};
use super::{btrfs, qgroup};
use crate::error::{Context, Error, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub use qgroup::Info;

fn open_dir(p: &Path) -> rustix::io::Result<OwnedFd> {
    store::open_image(p, true)
}

/// What the quota groups say about the subvolume at `path`: nothing
/// unless quotas are on and counted (no rescan running).
pub fn usage(path: &Path) -> Option<Info> {
    let fd = open_dir(path).ok()?;
    let fd = fd.as_fd();
    if !btrfs::is_subvolume(fd) || !qgroup::enabled(fd).ok()? || qgroup::rescan_running(fd).ok()? {
        return None;
    }
    let id = btrfs::subvolume_id(fd).ok()?;
    qgroup::info(fd, qgroup::subtree(fd, id).ok()?).ok()?
}

/// Turn quotas on for the file system of `pool` if they are off, and
/// then give the pool and the subvolume images already in it their
/// groups, as if quotas had been on when they were made.
fn switch_on(fd: BorrowedFd, pool: &Path) -> Result<()> {
    let what = || format!("cannot enable quota on {}", pool.display());
    if qgroup::enabled(fd).ctx(what)? {
        return Ok(());
    }
    qgroup::enable(fd).ctx(what)?;
    qgroup::rescan_wait(fd).ctx(what)?;
    adopt_pool(fd);
    for i in store::list(true) {
        if i.kind == Kind::Subvolume && i.pool == pool && !i.is_link() {
            if let Ok(f) = open_dir(&i.path) {
                adopt_subvolume(f.as_fd());
            }
        }
    }
    Ok(())
}

fn adopt_pool(pool: BorrowedFd) {
    if btrfs::is_subvolume(pool) {
        adopt_subvolume(pool);
    }
}

fn adopt_subvolume(fd: BorrowedFd) {
    if let Ok(id) = btrfs::subvolume_id(fd) {
        let _ = qgroup::auto(fd, id);
    }
}

/// A new subvolume `new` made in `pool`: its subtree group below the
/// pool's, if quotas are on (the reference's
/// `import_assign_pool_quota_and_warn`); nothing otherwise.
pub(crate) fn adopt(pool: BorrowedFd, new: BorrowedFd) {
    if qgroup::enabled(pool).unwrap_or(false) {
        adopt_pool(pool);
        adopt_subvolume(new);
    }
}

/// Set both groups of the subvolume `fd` to `limit`, through `outside`,
/// a directory of the subvolume that holds it: each request runs in a
/// transaction whose space is reserved against the groups of the
/// subvolume the descriptor is in, so one on the subvolume itself fails
/// (EDQUOT) once its first group is limited below what it holds.
/// The leaf group gets its old limit back if the subtree group's fails.
fn limit_subvolume(
    fd: BorrowedFd,
    outside: BorrowedFd,
    limit: Option<u64>,
) -> rustix::io::Result<()> {
    let id = btrfs::subvolume_id(fd)?;
    let old = qgroup::info(outside, id)?;
    qgroup::set_limit(outside, id, limit)?;
    adopt_subvolume(fd);
    let r = qgroup::subtree(outside, id).and_then(|g| match g == id {
        true => Ok(()),
        false => qgroup::set_limit(outside, g, limit),
    });
    if r.is_err() {
        let _ = qgroup::set_limit(outside, id, old.and_then(|i| i.referenced_max));
    }
    r
}

fn parent_dir(p: &Path) -> rustix::io::Result<OwnedFd> {
    open_dir(p.parent().unwrap_or(Path::new("/")))
}

/// `set-limit NAME BYTES`: limit what the image's subvolume (with the
/// subvolumes below it) may take; `None` lifts the limit.
pub fn set_image_limit(i: &Image, limit: Option<u64>) -> Result<()> {
    let what = || format!("cannot set limit of image '{}'", i.name);
    if i.vendor {
        return Err(Error::invalid(format!(
            "{}: {} is read-only (a vendor image)",
            what(),
            i.pool.display()
        )));
    }
    if i.kind != Kind::Subvolume {
        return Err(Error::invalid(format!(
            "{}: Quota is only supported on btrfs subvolumes, this is a {} image.",
            what(),
            i.kind.as_str()
        )));
    }
    let fd = open_dir(&i.path).ctx(what)?;
    let pool = open_dir(&i.pool).ctx(what)?;
    let outside = parent_dir(&i.path).ctx(what)?;
    switch_on(pool.as_fd(), &i.pool)?;
    limit_subvolume(fd.as_fd(), outside.as_fd(), limit).ctx(what)
}

/// `set-limit BYTES`: limit the whole writable pool (made, as a
/// subvolume, if it does not exist yet); `None` lifts the limit.
pub fn set_pool_limit(limit: Option<u64>) -> Result<PathBuf> {
    let pool = super::ops::create_pool()?;
    let what = || format!("cannot set limit of pool {}", pool.display());
    let fd = open_dir(&pool).ctx(what)?;
    if !btrfs::is_btrfs(&fd) {
        return Err(Error::invalid(format!(
            "{}: Quota is only supported on btrfs.",
            what()
        )));
    }
    // The reference would limit the subvolume the directory is in (often
    // the whole file system): refused instead.
    if !btrfs::is_subvolume(&fd) {
        return Err(Error::invalid(format!(
            "{}: it is a plain directory, not a btrfs subvolume",
            what()
        )));
    }
    let outside = parent_dir(&pool).ctx(what)?;
    switch_on(fd.as_fd(), &pool)?;
    limit_subvolume(fd.as_fd(), outside.as_fd(), limit).ctx(what)?;
    Ok(pool)
}
