//! Paths inside the container tree, resolved inside it.
//!
//! The tree is untrusted: an absolute symlink or `..` in it must never lead
//! us to a host path. Every lookup goes through `openat2(2)` with
//! `RESOLVE_IN_ROOT`, which makes the kernel treat the tree's root as `/`
//! for the whole walk, and the result is a file descriptor that we then mount
//! on or write through (via `/proc/self/fd/N`), so the path is never looked up
//! again by name.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// Open `path` (relative to the tree, leading `/` allowed) inside `root`.
pub fn open(root: BorrowedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(RESOLVE);
    if flags.contains(OFlag::O_CREAT) {
        how = how.mode(Mode::from_bits_truncate(0o644));
    }
    openat2(root, rel, how)
}

/// An `O_PATH` handle to a directory inside the tree.
pub fn open_dir(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    open(root, path, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// Split a tree path into its parent and last component.
fn split(path: &str) -> (&str, &str) {
    let path = path.trim_end_matches('/');
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// `mkdir -p` inside the tree; returns an `O_PATH` handle to the directory.
/// A dangling symlink on the way is followed inside the tree and its target
/// created there, as a chroot would see it.
pub fn mkdir_p(root: BorrowedFd, path: &str, mode: u32) -> Result<OwnedFd> {
    mkdir_p_depth(root, path, mode, 0)
}

fn mkdir_p_depth(root: BorrowedFd, path: &str, mode: u32, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        return Err(Errno::ELOOP)
            .ctx(|| format!("cannot create directory {path} in the container tree"));
    }
    match open_dir(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("cannot open {path} in the container tree")),
    }
    let (parent, name) = split(path);
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::invalid(format!(
            "invalid path in the container tree: {path}"
        )));
    }
    let pfd = mkdir_p_depth(root, parent, 0o755, depth + 1)?;
    match nix::sys::stat::mkdirat(&pfd, name, Mode::from_bits_truncate(mode)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            if let Ok(target) = nix::fcntl::readlinkat(&pfd, name) {
                let target = target.to_string_lossy();
                let next = if target.starts_with('/') {
                    target.to_string()
                } else {
                    format!("{parent}/{target}")
                };
                mkdir_p_depth(root, &next, mode, depth + 1)?;
            }
        }
        Err(e) => {
            return Err(e).ctx(|| format!("cannot create directory {path} in the container tree"))
        }
    }
    // Opening by name again resolves a symlink planted in the meantime inside
    // the tree, never outside it; one planted dangling (swapped with the
    // directory by another writer of the tree) is followed on the next turn.
    match open_dir(root, path) {
        Err(Errno::ENOENT) => mkdir_p_depth(root, path, mode, depth + 1),
        r => r.ctx(|| format!("cannot open {path} in the container tree")),
    }
}

/// Create (if missing) an empty regular file to mount on; returns an
/// `O_PATH` handle to it. A dangling symlink is followed inside the tree.
pub fn touch(root: BorrowedFd, path: &str, mode: u32) -> Result<OwnedFd> {
    touch_depth(root, path, mode, 0)
}

fn touch_depth(root: BorrowedFd, path: &str, mode: u32, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        return Err(Errno::ELOOP).ctx(|| format!("cannot create {path} in the container tree"));
    }
    match open(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("cannot open {path} in the container tree")),
    }
    let (parent, name) = split(path);
    let pfd = mkdir_p(root, parent, 0o755)?;
    let dir = reopen_dir(&pfd).ctx(|| format!("cannot open the directory of {path}"))?;
    match nix::fcntl::openat(
        &dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    ) {
        Ok(_) => {}
        Err(Errno::EEXIST) => {
            if let Ok(target) = nix::fcntl::readlinkat(&dir, name) {
                let target = target.to_string_lossy();
                let next = if target.starts_with('/') {
                    target.to_string()
                } else {
                    format!("{parent}/{target}")
                };
                return touch_depth(root, &next, mode, depth + 1);
            }
        }
        Err(e) => return Err(e).ctx(|| format!("cannot create {path} in the container tree")),
    }
    open(root, path, OFlag::O_PATH).ctx(|| format!("cannot open {path} in the container tree"))
}

/// Write `data` to a new file at `path` in the tree, replacing a regular file
/// but never following a symlink in the last component.
pub fn write_file(root: BorrowedFd, path: &str, data: &[u8], mode: u32) -> Result<()> {
    let (parent, name) = split(path);
    // The directory opened for reading at once where it is there (one
    // system call); else made (`mkdir_p`'s handle is `O_PATH`) and reopened.
    let dir = match open(root, parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(dir) => dir,
        Err(Errno::ENOENT) => {
            let pfd = mkdir_p(root, parent, 0o755)?;
            reopen_dir(&pfd).ctx(|| format!("cannot open the directory of {path}"))?
        }
        Err(e) => return Err(e).ctx(|| format!("cannot open the directory of {path}")),
    };
    let fd = nix::fcntl::openat(
        &dir,
        name,
        OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .ctx(|| format!("cannot create {path} in the container tree"))?;
    write_all(fd.as_fd(), data).ctx(|| format!("cannot write {path} in the container tree"))
}

/// Read a small file inside the tree; `Ok(None)` when it does not exist.
pub fn read_file(root: BorrowedFd, path: &str) -> Result<Option<Vec<u8>>> {
    let fd = match open(
        root,
        path,
        OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("cannot open {path} in the container tree")),
    };
    let st = nix::sys::stat::fstat(&fd).ctx(|| format!("cannot stat {path}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::invalid(format!(
            "{path} in the container tree is not a regular file"
        )));
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = nix::unistd::read(&fd, &mut buf).ctx(|| format!("cannot read {path}"))?;
        if n == 0 || out.len() > 1 << 20 {
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn reopen_dir(fd: &OwnedFd) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        proc_fd(fd.as_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The magic-link path of a descriptor, usable as a mount source or target:
/// the kernel jumps straight to the file, with no lookup by name.
pub fn proc_fd(fd: BorrowedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

pub fn write_all(fd: BorrowedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (std::path::PathBuf, OwnedFd) {
        let dir = std::env::temp_dir().join(format!(
            "inroot-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let fd = nix::fcntl::open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    #[test]
    fn absolute_symlinks_stay_inside() {
        let (dir, root) = tree();
        let outside = std::env::temp_dir().join(format!("inroot-outside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outside);
        symlink(&outside, dir.join("mnt")).unwrap();
        symlink("../../../../../../etc/passwd", dir.join("etc/evil")).unwrap();
        mkdir_p(root.as_fd(), "/mnt/sub", 0o755).unwrap();
        assert!(!outside.exists(), "mkdir_p escaped the tree");
        assert!(dir
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        write_file(root.as_fd(), "/mnt/sub/x", b"hi", 0o644).unwrap();
        assert!(!outside.exists());
        // `..` cannot climb above the tree: etc/evil resolves to <tree>/etc/passwd.
        assert_eq!(read_file(root.as_fd(), "/etc/evil").unwrap(), None);
        std::fs::write(dir.join("etc/passwd"), b"tree").unwrap();
        assert_eq!(
            read_file(root.as_fd(), "/etc/evil").unwrap().unwrap(),
            b"tree"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_does_not_follow_final_symlink() {
        let (dir, root) = tree();
        symlink("/etc/hostname", dir.join("etc/resolv.conf")).unwrap();
        assert!(write_file(root.as_fd(), "/etc/resolv.conf", b"x", 0o644).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
