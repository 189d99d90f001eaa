//! Finding images, as systemd's discover-image.c does for machines: the
//! search path in order, first match wins, an entry may be a symlink to
//! the image. `NAME` is a directory, a btrfs subvolume or a block device;
//! `NAME.raw` a regular file. A leading `.` hides an image; `.#` entries
//! are temporary work of a verb and never images.

use super::{block, btrfs};
use crate::error::{Context, Error, Result};
use crate::lock::Lock;
use crate::settings::machine_name_is_valid;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags, CWD};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The reference's search path for machine images (systemd 252).
pub const SEARCH_PATH: &[&str] = &[
    "/etc/machines",
    "/run/machines",
    "/var/lib/machines",
    "/var/lib/container",
    "/usr/local/lib/machines",
    "/usr/lib/machines",
];

/// For tests only: a `:`-separated list replacing `SEARCH_PATH`, so a
/// test suite never touches the host's images.
pub const SEARCH_PATH_ENV: &str = "NSPAWN_IMAGE_PATH";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Subvolume,
    Raw,
    Block,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::Subvolume => "subvolume",
            Kind::Raw => "raw",
            Kind::Block => "block",
        }
    }

    pub fn is_tree(self) -> bool {
        matches!(self, Kind::Directory | Kind::Subvolume)
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    /// The entry in the search directory (maybe a symlink to the image).
    pub path: PathBuf,
    /// The search directory it was found in.
    pub pool: PathBuf,
    pub kind: Kind,
    pub read_only: bool,
    /// Under `/usr`: never changed by a verb.
    pub vendor: bool,
    pub created_usec: Option<u64>,
    pub modified_usec: Option<u64>,
}

/// The directories searched, in order.
pub fn search_path() -> Vec<PathBuf> {
    match std::env::var(SEARCH_PATH_ENV) {
        Ok(v) if !v.is_empty() => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => SEARCH_PATH.iter().map(PathBuf::from).collect(),
    }
}

fn is_vendor(pool: &Path) -> bool {
    pool.starts_with("/usr")
}

/// Where new images go: `/var/lib/machines` as in the reference; with
/// `NSPAWN_IMAGE_PATH`, its first directory not under `/usr`.
pub fn writable_pool() -> Result<PathBuf> {
    match std::env::var(SEARCH_PATH_ENV) {
        Ok(v) if !v.is_empty() => search_path()
            .into_iter()
            .find(|p| !is_vendor(p))
            .ok_or_else(|| Error::invalid("no writable directory in the image search path")),
        // As the reference: /etc/machines and /run/machines are searched,
        // never filled.
        _ => Ok(PathBuf::from(DEFAULT_POOL)),
    }
}

/// Where new images go without `NSPAWN_IMAGE_PATH` (systemd's too).
pub const DEFAULT_POOL: &str = "/var/lib/machines";

/// A valid image name: a machine name, or `.` and one (hidden).
pub fn name_is_valid(name: &str) -> bool {
    machine_name_is_valid(name.strip_prefix('.').unwrap_or(name))
}

pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

fn usec(sec: i64, nsec: u32) -> Option<u64> {
    (sec > 0).then(|| sec as u64 * 1_000_000 + u64::from(nsec) / 1000)
}

/// The image at `entry` (symlinks followed) in `pool` named `name`, if it
/// is one of the types: `raw` says the entry was `NAME.raw`.
fn make(pool: &Path, entry: PathBuf, name: String, raw: bool) -> Option<Image> {
    let st = rustix::fs::statx(
        CWD,
        &entry,
        AtFlags::empty(),
        StatxFlags::BASIC_STATS | StatxFlags::BTIME,
    )
    .ok()?;
    let ft = FileType::from_raw_mode(st.stx_mode.into());
    let vendor = is_vendor(pool);
    let kind = match ft {
        FileType::Directory if !raw => match open_image(&entry, true) {
            Ok(fd) if st.stx_ino == btrfs::FIRST_FREE_OBJECTID && btrfs::is_subvolume(&fd) => {
                Kind::Subvolume
            }
            _ => Kind::Directory,
        },
        FileType::RegularFile if raw => Kind::Raw,
        FileType::BlockDevice if !raw => Kind::Block,
        _ => return None,
    };
    let read_only = vendor
        || match kind {
            Kind::Directory => is_immutable(&entry),
            Kind::Subvolume => open_image(&entry, true)
                .and_then(|fd| btrfs::read_only(fd.as_fd()))
                .unwrap_or(false),
            Kind::Raw => st.stx_mode & 0o222 == 0,
            Kind::Block => {
                st.stx_mode & 0o222 == 0
                    || open_image(&entry, false)
                        .and_then(|fd| block::read_only(fd.as_fd()))
                        .unwrap_or(false)
            }
        };
    // Not every file system records a birth time.
    let has_btime = st.stx_mask & StatxFlags::BTIME.bits() != 0;
    let created_usec = has_btime
        .then(|| usec(st.stx_btime.tv_sec, st.stx_btime.tv_nsec))
        .flatten();
    Some(Image {
        name,
        path: entry,
        pool: pool.to_path_buf(),
        kind,
        read_only,
        vendor,
        created_usec,
        modified_usec: usec(st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
    })
}

/// Whether the directory has the immutable attribute (`chattr +i`), which
/// is how a directory image is made read-only.
fn is_immutable(dir: &Path) -> bool {
    open_image(dir, true)
        .and_then(|fd| rustix::fs::ioctl_getflags(&fd))
        .is_ok_and(|f| f.contains(rustix::fs::IFlags::IMMUTABLE))
}

/// Open the image itself (following the entry's symlink) for a lock or an
/// attribute change.
pub(crate) fn open_image(path: &Path, dir: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::open(path, flags, Mode::empty())
}

/// The image named `name`: the first search directory that has it.
pub fn find(name: &str) -> Result<Image> {
    if !name_is_valid(name) {
        return Err(Error::invalid(format!("invalid image name '{name}'")));
    }
    for pool in search_path() {
        if let Some(i) = make(&pool, pool.join(name), name.to_string(), false).or_else(|| {
            make(
                &pool,
                pool.join(format!("{name}.raw")),
                name.to_string(),
                true,
            )
        }) {
            return Ok(i);
        }
    }
    Err(Error::invalid(format!("no image '{name}' known")))
}

/// Whether any search directory has an entry for `name` (of any type), so
/// a new image of that name would be shadowed or shadow another.
pub fn exists(name: &str) -> bool {
    search_path().iter().any(|pool| {
        [name.to_string(), format!("{name}.raw")]
            .iter()
            .any(|n| pool.join(n).symlink_metadata().is_ok())
    })
}

/// Every image, sorted by name; hidden ones only with `all`.
pub fn list(all: bool) -> Vec<Image> {
    let mut out: Vec<Image> = vec![];
    for pool in search_path() {
        let Ok(entries) = std::fs::read_dir(&pool) else {
            continue;
        };
        for e in entries.flatten() {
            let Some(file) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if file.starts_with(".#") {
                continue;
            }
            let (name, raw) = match file.strip_suffix(".raw") {
                Some(n) => (n.to_string(), true),
                None => (file.clone(), false),
            };
            if !name_is_valid(&name) || (is_hidden(&name) && !all) {
                continue;
            }
            if out.iter().any(|i| i.name == name) {
                continue;
            }
            if let Some(i) = make(&pool, e.path(), name, raw) {
                out.push(i);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

impl Image {
    /// Whether the entry in the pool is a symlink to the image.
    pub fn is_link(&self) -> bool {
        self.path.symlink_metadata().is_ok_and(|m| m.is_symlink())
    }

    /// Take the image's lock without waiting, exclusively: the runner's
    /// tree lock (`lock::lock_tree`, `flock(2)` on the directory) for a
    /// tree, the file itself for a raw image or a block device. `Ok(None)`
    /// while a machine runs from it.
    pub fn lock(&self) -> Result<Option<Lock>> {
        let fd = open_image(&self.path, self.kind.is_tree())
            .ctx(|| format!("cannot open image {}", self.path.display()))?;
        Lock::try_new(fd, true).ctx(|| format!("cannot lock image {}", self.path.display()))
    }

    /// The lock, or the one-line refusal of `verb` while the image is busy.
    pub fn lock_for(&self, verb: &str) -> Result<Lock> {
        self.lock()?.ok_or_else(|| {
            Error::invalid(format!(
                "cannot {verb} image '{}': image is busy, a machine is running from it",
                self.name
            ))
        })
    }

    /// The size it takes on disk, where it can be known.
    pub fn usage(&self) -> Option<u64> {
        match self.kind {
            Kind::Subvolume => super::quota::usage(&self.path)
                .map(|q| q.referenced)
                .or_else(|| super::usage::tree(&self.path).ok()),
            Kind::Directory => super::usage::tree(&self.path).ok(),
            Kind::Raw => std::fs::metadata(&self.path)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512),
            Kind::Block => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "foo-1", ".hidden", "x.y"] {
            assert!(name_is_valid(ok), "{ok}");
        }
        for bad in ["", ".", ".#foo", "..x", "a/b", "-a", "a b"] {
            assert!(!name_is_valid(bad), "{bad}");
        }
    }

    /// New images go to /var/lib/machines, as the reference's, although
    /// /etc/machines is searched first (it was chosen for them before).
    #[test]
    fn new_images_go_to_var_lib_machines() {
        if std::env::var_os(SEARCH_PATH_ENV).is_some() {
            return;
        }
        assert_eq!(search_path()[0], Path::new("/etc/machines"));
        assert_eq!(writable_pool().unwrap(), Path::new("/var/lib/machines"));
    }
}
