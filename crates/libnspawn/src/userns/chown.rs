//! `--private-users-ownership=chown`: shift the tree's ownership into the
//! container's range on disk, as the reference's `nspawn-patch-uid`: each
//! id keeps its low 16 bits and takes the range's base; POSIX ACL entries
//! are shifted the same way; set-user/group-ID bits that chown(2) clears
//! are put back. The tree's root directory is done last, so a run that was
//! interrupted still shows the old owner at the top and the next start
//! walks again (the shift is idempotent: done files stay as they are).
//! Mount points below the root are not crossed.

use crate::error::{Context, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

const ACL_XATTRS: [&str; 2] = ["system.posix_acl_access", "system.posix_acl_default"];
/// The tags of POSIX ACL entries that carry an id (`acl_ea.h`).
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;

fn shift(id: u32, base: u32) -> u32 {
    (id & 0xFFFF) | base
}

/// Shift `directory` (root last) so that `base` is its owner.
/// `interrupted` is asked once per directory, so a stop request ends a
/// long shift promptly; the next start finishes it.
pub fn shift_tree(directory: &Path, base: u32, interrupted: &dyn Fn() -> Result<()>) -> Result<()> {
    let root = nix::fcntl::open(
        directory,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", directory.display()))?;
    let st = nix::sys::stat::fstat(&root).ctx(|| format!("cannot stat {}", directory.display()))?;
    walk(root.as_fd(), st.st_dev, base, directory, interrupted)?;
    patch(root.as_fd(), None, base, directory)
}

fn walk(
    dir: BorrowedFd,
    dev: u64,
    base: u32,
    path: &Path,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<()> {
    interrupted()?;
    let dup = nix::unistd::dup(dir).ctx(|| format!("cannot read {}", path.display()))?;
    let mut d = nix::dir::Dir::from_fd(dup).ctx(|| format!("cannot read {}", path.display()))?;
    let names: Vec<CString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let child = path.join(name.to_string_lossy().as_ref());
        let st = fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .ctx(|| format!("cannot stat {}", child.display()))?;
        if st.st_dev != dev {
            continue;
        }
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            let sub: OwnedFd = nix::fcntl::openat(
                dir,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("cannot open {}", child.display()))?;
            walk(sub.as_fd(), dev, base, &child, interrupted)?;
        }
        patch(dir, Some(&name), base, &child)?;
    }
    Ok(())
}

/// Shift one inode: `name` in `dir`, or `dir` itself.
fn patch(dir: BorrowedFd, name: Option<&CString>, base: u32, path: &Path) -> Result<()> {
    let empty = CString::default();
    let n = name.unwrap_or(&empty);
    let flags = match name {
        Some(_) => AtFlags::AT_SYMLINK_NOFOLLOW,
        None => AtFlags::AT_EMPTY_PATH,
    };
    let st = fstatat(dir, n.as_c_str(), flags).ctx(|| format!("cannot stat {}", path.display()))?;
    let (uid, gid) = (shift(st.st_uid, base), shift(st.st_gid, base));
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFLNK {
        patch_acls(dir, name, base, path)?;
    }
    if (uid, gid) == (st.st_uid, st.st_gid) {
        return Ok(());
    }
    nix::unistd::fchownat(dir, n.as_c_str(), Some(uid.into()), Some(gid.into()), flags)
        .ctx(|| format!("cannot chown {}", path.display()))?;
    // chown(2) clears the set-user-ID and set-group-ID bits.
    let special = st.st_mode & (libc::S_ISUID | libc::S_ISGID);
    if special != 0 && kind == SFlag::S_IFREG {
        let (_fd, p) = handle(dir, name, path)?;
        // SAFETY: a valid path string.
        let r = unsafe { libc::chmod(p.as_ptr(), st.st_mode & 0o7777) };
        nix::errno::Errno::result(r).ctx(|| format!("cannot chmod {}", path.display()))?;
    }
    Ok(())
}

/// An `O_PATH` handle on the inode and its `/proc/self/fd` path: the
/// path-based xattr and chmod calls reach the inode through it without
/// opening it (a device node in the tree must not be opened).
fn handle(dir: BorrowedFd, name: Option<&CString>, path: &Path) -> Result<(OwnedFd, CString)> {
    let fd = match name {
        Some(n) => nix::fcntl::openat(
            dir,
            n.as_c_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
        None => nix::unistd::dup(dir),
    }
    .ctx(|| format!("cannot open {}", path.display()))?;
    let p = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    Ok((fd, p))
}

fn patch_acls(dir: BorrowedFd, name: Option<&CString>, base: u32, path: &Path) -> Result<()> {
    let (_fd, proc) = handle(dir, name, path)?;
    for attr in ACL_XATTRS {
        let key = CString::new(attr).unwrap();
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid strings and buffer of the given size.
        let n = unsafe {
            libc::getxattr(
                proc.as_ptr(),
                key.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n < 4 {
            continue;
        }
        buf.truncate(n as usize);
        if !shift_acl(&mut buf, base) {
            continue;
        }
        // SAFETY: as above.
        let r = unsafe {
            libc::setxattr(
                proc.as_ptr(),
                key.as_ptr(),
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
                0,
            )
        };
        nix::errno::Errno::result(r)
            .ctx(|| format!("cannot shift the ACL of {}", path.display()))?;
    }
    Ok(())
}

/// Shift the ids of the user and group entries of an ACL in its extended
/// attribute form (a 4-byte version, then 8-byte entries: tag, permissions,
/// id); true if anything changed.
fn shift_acl(buf: &mut [u8], base: u32) -> bool {
    let mut changed = false;
    for e in buf[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        if tag == ACL_USER || tag == ACL_GROUP {
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let new = shift(id, base);
            if new != id {
                e[4..8].copy_from_slice(&new.to_le_bytes());
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    #[test]
    fn shifts() {
        assert_eq!(super::shift(0, 0x10000), 0x10000);
        assert_eq!(super::shift(0x20005, 0x10000), 0x10005);
        assert_eq!(super::shift(65534, 0), 65534);
        let mut acl = vec![2, 0, 0, 0];
        acl.extend_from_slice(&[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]); // USER_OBJ
        acl.extend_from_slice(&[2, 0, 6, 0, 0xe8, 0x03, 0, 0]); // USER 1000
        assert!(super::shift_acl(&mut acl, 0x10000));
        assert_eq!(&acl[16..20], &(0x10000u32 + 1000).to_le_bytes());
        assert_eq!(&acl[4..12], &[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
    }
}
