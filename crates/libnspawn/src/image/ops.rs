//! The verbs that change images: remove, rename, clone, read-only. Each
//! holds the image's lock (`Image::lock_for`, the runner's tree lock) for
//! the whole change, so none of them touches an image a machine runs from.
//! Images under `/usr` are the vendor's and never changed.

use super::store::{self, Image, Kind};
use super::{block, btrfs, quota};
use crate::error::{Context, Error, Result};
use crate::lock::Lock;
use crate::nspawnfile::TRUSTED_DIRS;
use rustix::fs::{IFlags, RenameFlags, CWD};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prefix of the hidden names work is done under (as the reference's
/// `.#` temporaries): renamed into place only when complete.
const TEMP_PREFIX: &str = ".#";

fn refuse_vendor(i: &Image, verb: &str) -> Result<()> {
    match i.vendor {
        true => Err(Error::invalid(format!(
            "cannot {verb} image '{}': {} is read-only (a vendor image)",
            i.name,
            i.pool.display()
        ))),
        false => Ok(()),
    }
}

pub(crate) fn check_new_name(name: &str) -> Result<()> {
    if !store::name_is_valid(name) {
        return Err(Error::invalid(format!("invalid image name '{name}'")));
    }
    if store::exists(name) {
        return Err(Error::invalid(format!("Image '{name}' already exists.")));
    }
    Ok(())
}

/// The entry a `kind` image named `name` has in `pool`.
pub(crate) fn entry(pool: &Path, name: &str, kind: Kind) -> PathBuf {
    match kind {
        Kind::Raw => pool.join(format!("{name}.raw")),
        _ => pool.join(name),
    }
}

/// The files that belong to an image by name: its settings beside it and
/// in the trusted directories, a raw image's root hash, an OCI image's
/// metadata.
pub(crate) fn side_files(pool: &Path, name: &str) -> Vec<PathBuf> {
    let file = format!("{name}.nspawn");
    let mut out = vec![
        pool.join(&file),
        pool.join(format!("{name}.roothash")),
        pool.join(format!("{name}{}", super::oci::META_SUFFIX)),
    ];
    out.extend(TRUSTED_DIRS.iter().map(|d| Path::new(d).join(&file)));
    out
}

/// Set or clear the immutable attribute of a directory image's top
/// directory (`chattr +i`, FS_IOC_SETFLAGS): the reference's read-only for
/// a plain directory. Needs CAP_LINUX_IMMUTABLE.
fn set_immutable(dir: &Path, on: bool) -> Result<()> {
    let what = || format!("cannot change the immutable attribute of {}", dir.display());
    let fd = store::open_image(dir, true).ctx(what)?;
    let flags = rustix::fs::ioctl_getflags(&fd).ctx(what)?;
    let new = match on {
        true => flags | IFlags::IMMUTABLE,
        false => flags - IFlags::IMMUTABLE,
    };
    if new != flags {
        rustix::fs::ioctl_setflags(&fd, new).ctx(what)?;
    }
    Ok(())
}

pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE)
        .ctx(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// Make an image read-only or writable, as the reference: a subvolume
/// gets its btrfs read-only flag, a directory the immutable attribute, a
/// raw file loses its write bits (and gets back only the owner's), a block
/// device gets the kernel's read-only flag (BLKROSET).
pub fn set_read_only(i: &Image, read_only: bool) -> Result<()> {
    refuse_vendor(i, "change")?;
    let _lock = i.lock_for("change")?;
    apply_read_only(i, read_only)
}

pub(crate) fn apply_read_only(i: &Image, read_only: bool) -> Result<()> {
    let what = || format!("cannot change the read-only state of {}", i.path.display());
    match i.kind {
        Kind::Directory => set_immutable(&i.path, read_only),
        Kind::Subvolume => {
            let fd = store::open_image(&i.path, true).ctx(what)?;
            btrfs::set_read_only(fd.as_fd(), read_only).ctx(what)
        }
        Kind::Raw => {
            use std::os::unix::fs::PermissionsExt;
            let m =
                std::fs::metadata(&i.path).ctx(|| format!("cannot stat {}", i.path.display()))?;
            let mode = (m.permissions().mode() & 0o7555) | if read_only { 0 } else { 0o200 };
            std::fs::set_permissions(&i.path, std::fs::Permissions::from_mode(mode))
                .ctx(|| format!("cannot change the mode of {}", i.path.display()))
        }
        Kind::Block => {
            let fd = store::open_image(&i.path, false).ctx(what)?;
            block::set_read_only(fd.as_fd(), read_only).ctx(what)
        }
    }
}

/// Remove an image and its side files. A symlinked entry is removed, not
/// what it points to; a tree is removed without following symlinks in it.
pub fn remove(i: &Image) -> Result<()> {
    refuse_vendor(i, "remove")?;
    let _lock = i.lock_for("remove")?;
    let what = || format!("cannot remove {}", i.path.display());
    if i.is_link() {
        std::fs::remove_file(&i.path).ctx(what)?;
    } else if i.kind == Kind::Subvolume {
        remove_subvolume(&i.path).ctx(what)?;
    } else if i.kind.is_tree() {
        if i.read_only {
            set_immutable(&i.path, false)?;
        }
        std::fs::remove_dir_all(&i.path).ctx(what)?;
    } else {
        std::fs::remove_file(&i.path).ctx(what)?;
    }
    for f in side_files(&i.pool, &i.name) {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).ctx(|| format!("cannot remove {}", f.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Rename an image in its own directory, never over another image, with
/// its side files.
pub fn rename(i: &Image, new: &str) -> Result<()> {
    refuse_vendor(i, "rename")?;
    check_new_name(new)?;
    let _lock = i.lock_for("rename")?;
    let to = entry(&i.pool, new, i.kind);
    // The kernel refuses to rename an immutable directory (EPERM).
    let immutable = i.kind == Kind::Directory && i.read_only && !i.is_link();
    if immutable {
        set_immutable(&i.path, false)?;
    }
    let r = rename_noreplace(&i.path, &to);
    if immutable {
        set_immutable(if r.is_ok() { &to } else { &i.path }, true)?;
    }
    r?;
    for (from, to) in side_files(&i.pool, &i.name)
        .into_iter()
        .zip(side_files(&i.pool, new))
    {
        if from.exists() {
            rename_noreplace(&from, &to)?;
        }
    }
    Ok(())
}

/// A copy under way: the hidden temporary, locked for as long as the copy
/// runs (the copying `cp` holds the lock too), removed on drop unless it
/// was renamed into place. A copy killed outright leaves it unlocked, and
/// the next clone into the pool removes it (`sweep`). On a btrfs pool a
/// directory temporary is a subvolume, as the reference makes them.
pub(crate) struct Temp {
    pub(crate) path: PathBuf,
    pub(crate) lock: Lock,
    pub(crate) done: bool,
    /// What it becomes in place: a directory, a subvolume or a raw file.
    pub(crate) kind: Kind,
}

impl Temp {
    fn name(pool: &Path, name: &str) -> Result<PathBuf> {
        // From the first temporary on, Ctrl-C and SIGTERM end the
        // operation through its guards rather than the process.
        super::cancel::catch();
        let id = crate::Id128::random()?;
        Ok(pool.join(format!("{TEMP_PREFIX}{name}.{}", &id.plain()[..16])))
    }

    /// A new locked hidden temporary for image `name` in `pool`: an empty
    /// directory (a subvolume on btrfs), or an empty file when `!dir`.
    pub(crate) fn new(pool: &Path, name: &str, dir: bool) -> Result<Temp> {
        let tmp = Temp::name(pool, name)?;
        let what = || format!("cannot create {}", tmp.display());
        let pool_fd = store::open_image(pool, true).ctx(what)?;
        creating(&pool_fd).ctx(what)?;
        let kind = match dir {
            false => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map(drop)
                    .ctx(what)?;
                Kind::Raw
            }
            true if btrfs::is_btrfs(&pool_fd) => {
                btrfs::create(pool_fd.as_fd(), &file_name(&tmp)).ctx(what)?;
                Kind::Subvolume
            }
            true => {
                std::fs::create_dir(&tmp).ctx(what)?;
                Kind::Directory
            }
        };
        Temp::lock(tmp, kind, &pool_fd)
    }

    /// A locked hidden temporary for image `name` in `pool` that is a
    /// snapshot of the subvolume `src` (with the subvolumes nested in it):
    /// `Ok(None)` if `src` cannot be snapshotted there (not the same btrfs
    /// file system), for the caller to copy instead.
    pub(crate) fn snapshot(pool: &Path, name: &str, src: &Path) -> Result<Option<Temp>> {
        let tmp = Temp::name(pool, name)?;
        let what = || format!("cannot snapshot {} to {}", src.display(), tmp.display());
        let pool_fd = store::open_image(pool, true).ctx(what)?;
        let src_fd = store::open_image(src, true).ctx(what)?;
        creating(&pool_fd).ctx(what)?;
        if !btrfs::is_btrfs(&pool_fd) || !btrfs::is_subvolume(&src_fd) {
            return Ok(None);
        }
        let made = btrfs::snapshot(src_fd.as_fd(), pool_fd.as_fd(), &file_name(&tmp));
        match made {
            Err(rustix::io::Errno::XDEV) => return Ok(None),
            Err(e) => {
                // A nested subvolume that failed leaves a partial snapshot.
                let _ = remove_path(&tmp);
                return Err(e).ctx(what);
            }
            Ok(()) => {}
        }
        Temp::lock(tmp, Kind::Subvolume, &pool_fd).map(Some)
    }

    /// Lock what was just made at `tmp`; one we cannot lock is removed at
    /// once, after that the guard does. A new subvolume then gets its
    /// quota groups if quotas are on.
    fn lock(tmp: PathBuf, kind: Kind, pool_fd: &OwnedFd) -> Result<Temp> {
        let what = || format!("cannot lock {}", tmp.display());
        let fd = store::open_image(&tmp, kind.is_tree());
        let lock = fd
            .ctx(what)
            .and_then(|fd| Lock::try_new(fd, true).ctx(what));
        let lock = match lock {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => {
                let _ = remove_path(&tmp);
                return Err(lock
                    .err()
                    .unwrap_or_else(|| Error::invalid(format!("{}: busy", what()))));
            }
        };
        if kind == Kind::Subvolume {
            quota::adopt(pool_fd.as_fd(), lock.fd());
        }
        Ok(Temp {
            path: tmp,
            lock,
            done: false,
            kind,
        })
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_path(&self.path);
        }
    }
}

/// Hold `pool` shared (until `pool_fd` is closed) while a temporary is
/// made and locked, so that no sweep takes it for a dead one in between.
fn creating(pool_fd: &OwnedFd) -> rustix::io::Result<()> {
    rustix::fs::flock(pool_fd, rustix::fs::FlockOperation::LockShared)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Delete the subvolume at `p` with those nested in it.
fn remove_subvolume(p: &Path) -> rustix::io::Result<()> {
    let parent = p.parent().unwrap_or(Path::new("/"));
    let dir = store::open_image(parent, true)?;
    btrfs::remove(dir.as_fd(), &file_name(p))
}

/// Remove what is at `p`, not following a symlink: a subvolume is
/// deleted as one, a directory tree (immutable or not) file by file.
pub(crate) fn remove_path(p: &Path) -> std::io::Result<()> {
    match p.symlink_metadata()?.is_dir() {
        true => {
            let subvolume = store::open_image(p, true).is_ok_and(btrfs::is_subvolume);
            if subvolume && remove_subvolume(p).is_ok() {
                return Ok(());
            }
            let _ = set_immutable(p, false);
            std::fs::remove_dir_all(p)
        }
        false => std::fs::remove_file(p),
    }
}

/// The writable pool, made if it does not exist: on btrfs as a subvolume,
/// as the reference makes `/var/lib/machines`.
pub fn create_pool() -> Result<PathBuf> {
    let pool = store::writable_pool()?;
    if pool.is_dir() {
        return Ok(pool);
    }
    let what = || format!("cannot create {}", pool.display());
    let parent = pool.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).ctx(what)?;
    let dir = store::open_image(parent, true).ctx(what)?;
    let made = match btrfs::is_btrfs(&dir) {
        true => btrfs::create(dir.as_fd(), &file_name(&pool)),
        false => rustix::fs::mkdirat(&dir, file_name(&pool).as_str(), 0o755.into()),
    };
    match made {
        Err(rustix::io::Errno::EXIST) | Ok(()) => Ok(pool),
        Err(e) => Err(e).ctx(what),
    }
}

/// Remove the temporaries of copies that died: those whose lock nobody
/// holds any more.
pub(crate) fn sweep(pool: &Path) {
    // Not while another process is between making its temporary and
    // locking it (it holds the pool shared meanwhile, see `creating`):
    // that one would look dead. The next sweep gets what this one skips.
    let Ok(pool_fd) = store::open_image(pool, true) else {
        return;
    };
    if rustix::fs::flock(
        &pool_fd,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        return;
    }
    let Ok(entries) = std::fs::read_dir(pool) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        let Ok(fd) = store::open_image(&path, ft.is_dir()) else {
            continue;
        };
        if let Ok(Some(_held)) = Lock::try_new(fd, true) {
            let _ = remove_path(&path);
        }
    }
}

/// Copy image `i` to a new image `new` in the first writable directory of
/// the search path, through a hidden temporary renamed into place only
/// when complete; copies its settings files too.
pub fn clone(i: &Image, new: &str, read_only: bool) -> Result<PathBuf> {
    check_new_name(new)?;
    if i.kind == Kind::Block {
        return Err(Error::invalid(format!(
            "cannot clone image '{}': block device images cannot be cloned",
            i.name
        )));
    }
    let pool = create_pool()?;
    sweep(&pool);
    // A subvolume is snapshotted where it can be; everything else is
    // copied (with reflinks where the file system has them).
    let snapshot = match i.kind {
        Kind::Subvolume => Temp::snapshot(&pool, new, &i.path)?,
        _ => None,
    };
    let mut temp = match snapshot {
        Some(t) => t,
        None => {
            let t = Temp::new(&pool, new, i.kind != Kind::Raw)?;
            copy(&i.path, &t, t.kind)?;
            t
        }
    };
    let kind = temp.kind;
    let to = entry(&pool, new, kind);
    rename_noreplace(&temp.path, &to)?;
    temp.done = true;
    let made = Image {
        name: new.to_string(),
        path: to.clone(),
        pool: pool.clone(),
        kind,
        read_only: false,
        vendor: false,
        created_usec: None,
        modified_usec: None,
    };
    let copy_side = |from: PathBuf, to: PathBuf| -> Result<()> {
        if from.is_file() && !to.exists() {
            std::fs::copy(&from, &to)
                .map(drop)
                .ctx(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    };
    for (from, to) in side_files(&i.pool, &i.name)
        .into_iter()
        .zip(side_files(&pool, new))
    {
        // Beside the image to beside the copy; in a trusted directory to
        // the same directory.
        copy_side(from, to)?;
    }
    if read_only {
        apply_read_only(&made, true)?;
    }
    Ok(to)
}

/// `cp -a --reflink=auto` (sparse for raw files) from the image into the
/// locked temporary. The child dies with us (PDEATHSIG) and keeps the
/// lock while it runs, so a temporary is never swept while written.
pub(crate) fn copy(src: &Path, temp: &Temp, kind: Kind) -> Result<()> {
    let src = src
        .canonicalize()
        .ctx(|| format!("cannot resolve {}", src.display()))?;
    let mut c = Command::new("cp");
    c.args(["-a", "--reflink=auto"]);
    if kind == Kind::Raw {
        c.arg("--sparse=always");
    }
    c.arg("-T").arg(&src).arg(&temp.path);
    c.stdin(std::process::Stdio::null());
    let lock_fd = temp.lock.fd().as_raw_fd();
    crate::sys::dies_with_us(&mut c);
    // SAFETY: only fcntl(2) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(lock_fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    let status = run_cancellable(c).ctx(|| format!("cannot run cp for {}", src.display()))?;
    let Some((status, stderr)) = status else {
        return Err(super::cancel::error("copy"));
    };
    if !status.success() {
        let err = String::from_utf8_lossy(&stderr);
        let line = err.lines().next().unwrap_or("").trim_start_matches("cp: ");
        return Err(Error::invalid(format!(
            "cannot copy {} to {}: {}",
            src.display(),
            temp.path.display(),
            if line.is_empty() { "cp failed" } else { line }
        )));
    }
    Ok(())
}

/// Run `c` to its end, or until Ctrl-C or SIGTERM (then kill it and give
/// `None`): its status and what it wrote to stderr (read all along, so a
/// chatty child cannot fill the pipe and stall).
fn run_cancellable(mut c: Command) -> std::io::Result<Option<(std::process::ExitStatus, Vec<u8>)>> {
    super::cancel::catch();
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn()?;
    let mut pipe = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut b = vec![];
        let _ = std::io::Read::read_to_end(&mut pipe, &mut b);
        b
    });
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some((st, reader.join().unwrap_or_default())));
        }
        if super::cancel::requested() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
