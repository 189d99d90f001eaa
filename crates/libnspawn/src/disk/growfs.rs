//! The grow-fs flag (GPT attribute bit 59): a writable file system of such
//! a partition is grown to fill it when mounted, as the reference grows it
//! (systemd's `resize_fs()`): ext4 and btrfs online, through their own
//! requests; the others are left as they are. Growing to the size it has
//! already is nothing, so every run asks. The kernel wants
//! CAP_SYS_RESOURCE for it, which a runner in a sandbox may lack: the
//! caller then runs the file system at its size.

use super::probe::FsType;
use crate::error::{Context, Result};
use crate::image::ioctl::{self, Op};
use std::os::fd::{AsFd, BorrowedFd};

/// linux/ext4.h: `EXT4_IOC_RESIZE_FS`, the new size in blocks.
const EXT4_RESIZE_FS: Op<u64> = Op::write(b'f', 16);

/// Grow the file system mounted at `mount` (a detached mount's root) to
/// `size` bytes, its partition's.
pub fn grow(mount: BorrowedFd, fstype: FsType, size: u64, what: &str) -> Result<()> {
    let dir = rustix::fs::openat(
        mount,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| format!("cannot open {what} to grow it"))?;
    match fstype {
        FsType::Ext4 => {
            let st = rustix::fs::fstatvfs(&dir).ctx(|| format!("cannot stat {what}"))?;
            let mut blocks = size / st.f_bsize;
            ioctl::call(&dir, &EXT4_RESIZE_FS, &mut blocks)
                .ctx(|| format!("cannot grow {what} to its partition's size"))?;
        }
        FsType::Btrfs => crate::image::btrfs::resize_to_max(dir.as_fd())
            .ctx(|| format!("cannot grow {what} to its partition's size"))?,
        _ => {}
    }
    Ok(())
}
