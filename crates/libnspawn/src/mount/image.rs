//! A disk image's partitions other than the root, attached inside the
//! container's root (already attached at the tree's path) in the
//! container's mount namespace, where the reference mounts them.

use crate::disk::table::Designator;
use crate::error::{Context, Result};
use crate::inroot;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Attach each detached mount of `parts` (in mount order: `/var` before
/// `/var/tmp`) inside `root`; with `overlay`, each gets a throw-away
/// layer over it as the root has (`--ephemeral`).
pub fn attach_parts(root: &OwnedFd, parts: &[(Designator, OwnedFd)], overlay: bool) -> Result<()> {
    let root = root.as_fd();
    let xbootldr = parts.iter().any(|(d, _)| *d == Designator::Xbootldr);
    for (d, mount) in parts {
        let dest = match d {
            Designator::Esp => esp_place(root, xbootldr),
            d => d.mount_point().unwrap_or("/"),
        };
        let target = inroot::mkdir_p(root, dest, 0o755)?;
        crate::sys::move_mount_onto_fd(mount.as_fd(), target.as_fd())
            .ctx(|| format!("cannot attach the image's {} partition on {dest}", d.name()))?;
        if overlay {
            super::root::overlay_at(root, dest)?;
        }
    }
    Ok(())
}

/// The ESP goes to `/efi` if the root has one; else to an empty `/boot`
/// that no XBOOTLDR partition takes; else to `/efi`, made (as the
/// reference's dissected_image_mount()).
fn esp_place(root: BorrowedFd, xbootldr: bool) -> &'static str {
    if inroot::open_dir(root, "/efi").is_ok() {
        return "/efi";
    }
    if !xbootldr && dir_is_empty(root, "/boot") {
        return "/boot";
    }
    "/efi"
}

fn dir_is_empty(root: BorrowedFd, path: &str) -> bool {
    let Ok(fd) = inroot::open(
        root,
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
    ) else {
        return false;
    };
    let Ok(mut dir) = nix::dir::Dir::from_fd(fd) else {
        return false;
    };
    let empty = dir
        .iter()
        .flatten()
        .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."));
    empty
}
