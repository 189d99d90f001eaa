//! Disk images (`nspawn -i`): a bare file system, or a GPT per the
//! Discoverable Partitions Specification. The runner reads the image
//! (`dissect`: `table` for the partitions, `probe` for file system types),
//! plans the root's verification where it is asked for (`verity`; `dm`
//! makes the kernel's dm-verity device, and an image that cannot be
//! verified is refused), attaches one loop device per file system and
//! mounts them detached (`attach`); the container process
//! attaches those mounts in its own mount namespace (`mount::image`).

pub mod attach;
pub mod dissect;
pub mod dm;
pub mod growfs;
pub mod hashtree;
mod loopdev;
pub mod mbr;
pub mod probe;
pub mod table;
pub mod verity;

use std::path::PathBuf;

/// Where the container process attaches the image's root, in its own mount
/// namespace only: an empty directory on the host that nothing is ever
/// mounted on there, shared by every image container (each sees its own
/// root on it). Made once, never removed.
pub const MOUNT_POINT: &str = "/run/nspawn/image-root";

/// `-i PATH` and its integrity options.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// The image file or block device, absolute.
    pub path: PathBuf,
    /// `--root-hash=`, hex.
    pub root_hash: Option<String>,
    /// `--root-hash-sig=`, as given.
    pub root_hash_sig: Option<String>,
    /// `--verity-data=`.
    pub verity_data: Option<PathBuf>,
}

/// Make the mount point (the host's side: an empty directory).
pub fn ensure_mount_point() -> crate::error::Result<()> {
    use crate::error::Context;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(MOUNT_POINT)
        .ctx(|| format!("cannot create {MOUNT_POINT}"))
}
