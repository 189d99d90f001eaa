//! Unpacking an archive into a new image, confined by the kernel: a forked
//! child enters a private mount namespace, `chroot(2)`s into the target
//! directory and unpacks to `/` there. Every path in the archive, every
//! absolute or relative symlink an entry is written through and every hard
//! link target then resolves inside the target (path resolution stops at
//! the process's root, path_resolution(7)), whatever the tar code does, so
//! a hostile archive can at worst make a mess of its own image. The child
//! reads the (compressed) archive from a pipe; the parent does the network
//! and hashing and never touches the tree while it is written. Owners,
//! modes, mtimes, device nodes and set-uid bits are kept, as the
//! reference's (root's) import does, since they can only land inside.

use super::compress;
use super::whiteout;
use crate::error::{Context, Error, Result};
use rustix::fs::Mode;
use rustix::process::Signal;
use std::io::{BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The unpacking child: its pid, the pipe the archive goes into, and the
/// pipe its error line comes back on.
pub struct Child {
    pid: rustix::process::Pid,
    pub input: Option<std::fs::File>,
    errors: std::fs::File,
    reaped: bool,
}

/// What the stream is: an archive of a whole tree, or an OCI layer
/// applied over what the layers before it wrote (`whiteout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Archive,
    Layer,
}

/// Fork the child that unpacks into `target`. `lock` is the temporary's
/// lock; the child keeps a copy so the temporary is never swept while it
/// writes, and dies with us (PDEATHSIG) so a killed transfer leaves only
/// an unlocked temporary that the next one removes.
pub fn spawn(target: &Path, lock: std::os::fd::BorrowedFd, mode: Stream) -> Result<Child> {
    let (in_r, in_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "cannot create a pipe".into())?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "cannot create a pipe".into())?;
    let target = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid("cannot unpack: path has a NUL byte"))?;
    let parent = rustix::process::getpid();
    // SAFETY: nspawnctl is single-threaded here (no runtime, ureq is
    // blocking), so the child may run ordinary Rust code after fork.
    match unsafe { nix::unistd::fork() }.ctx(|| "cannot fork the unpacker".into())? {
        nix::unistd::ForkResult::Child => {
            drop(in_w);
            drop(err_r);
            child(&target, parent, in_r, err_w, lock.as_raw_fd(), mode)
        }
        nix::unistd::ForkResult::Parent { child } => Ok(Child {
            pid: rustix::process::Pid::from_raw(child.as_raw()).expect("pid"),
            input: Some(std::fs::File::from(in_w)),
            errors: std::fs::File::from(err_r),
            reaped: false,
        }),
    }
}

impl Child {
    /// Close the input and wait: `Ok` if everything was unpacked, else the
    /// child's error line.
    pub fn finish(&mut self) -> Result<()> {
        self.input = None;
        let st = loop {
            match rustix::process::waitpid(Some(self.pid), rustix::process::WaitOptions::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break r.ctx(|| "cannot wait for the unpacker".into())?,
            }
        };
        self.reaped = true;
        let mut msg = String::new();
        let _ = self.errors.read_to_string(&mut msg);
        let ok = st.is_some_and(|(_, s)| s.exit_status() == Some(0));
        match (ok, msg.trim()) {
            (true, _) => Ok(()),
            (false, "") => Err(Error::invalid(
                "cannot unpack the archive: the unpacker died",
            )),
            (false, m) => Err(Error::invalid(m)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = rustix::process::kill_process(self.pid, Signal::KILL);
            let _ = rustix::process::waitpid(Some(self.pid), rustix::process::WaitOptions::empty());
        }
    }
}

fn child(
    target: &std::ffi::CStr,
    parent: rustix::process::Pid,
    input: OwnedFd,
    err: OwnedFd,
    lock: i32,
    mode: Stream,
) -> ! {
    close_others(&[input.as_raw_fd(), err.as_raw_fd(), lock]);
    let mut err = std::fs::File::from(err);
    let r = confine(target, parent, lock).and_then(|()| unpack(std::fs::File::from(input), mode));
    let code = match r {
        Ok(()) => 0,
        Err(e) => {
            use std::io::Write;
            let _ = write!(err, "{e}");
            1
        }
    };
    // No destructors, no atexit handlers of the parent's: just leave.
    unsafe { libc::_exit(code) }
}

/// Close every descriptor above stderr but `keep`.
fn close_others(keep: &[i32]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3u32;
    for k in keep {
        if k as u32 > from {
            // SAFETY: closes fds this child does not use.
            unsafe { libc::close_range(from, k as u32 - 1, 0) };
        }
        from = from.max(k as u32 + 1);
    }
    unsafe { libc::close_range(from, u32::MAX, 0) };
}

fn confine(target: &std::ffi::CStr, parent: rustix::process::Pid, lock: i32) -> Result<(), String> {
    let fail = |what: &str, e: rustix::io::Errno| format!("cannot unpack: cannot {what}: {e}");
    crate::sys::die_with_parent(parent).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => "cannot unpack: the transfer died".to_string(),
        _ => format!("cannot unpack: cannot set PDEATHSIG: {e}"),
    })?;
    // The lock's copy must survive the fd cleanup below; every other fd of
    // the parent (the HTTP socket above all: the reference's tar child kept
    // it and hung pulls) is closed.
    unsafe { libc::fcntl(lock, libc::F_SETFD, 0) };
    for sig in [Signal::INT, Signal::TERM] {
        unsafe { libc::signal(sig.as_raw(), libc::SIG_DFL) };
    }
    // Our mounts never propagate to the host's, and the chroot below is the
    // only root this process and its descendants see.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("cannot unpack: cannot unshare the mount namespace: {e}"))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| fail("make mounts private", e))?;
    rustix::process::chroot(target)
        .map_err(|e| fail(&format!("chroot into {}", target.to_string_lossy()), e))?;
    rustix::process::chdir("/").map_err(|e| fail("chdir into the new root", e))?;
    rustix::process::umask(Mode::empty());
    Ok(())
}

/// Unpack the archive read from `input` to `/` (the target, once confined).
fn unpack(input: impl Read + Send + 'static, mode: Stream) -> Result<(), String> {
    let r = BufReader::with_capacity(1 << 16, input);
    let mut ar = tar::Archive::new(compress::decoder(r)?);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(true);
    ar.set_overwrite(true);
    let bad = |e: std::io::Error| format!("cannot unpack the archive: {e}");
    let mut dirs = vec![];
    let mut layer = whiteout::Layer::default();
    for entry in ar.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        let kind = e.header().entry_type();
        if mode == Stream::Layer {
            let Some(path) = e.path().ok().and_then(|p| clean(&p)) else {
                continue;
            };
            let what = whiteout::classify(&path);
            if what != whiteout::Entry::Write {
                layer.apply(&what)?;
                continue;
            }
            layer.before_write(&path, kind.is_dir())?;
        }
        if kind.is_dir() {
            // Directories last, as tar::Archive::unpack does, so a
            // read-only one or its mtime is set after its contents.
            dirs.push(e);
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            // The tar crate writes these as empty regular files.
            special(&e).map_err(|m| format!("cannot unpack the archive: {m}"))?;
        } else {
            e.unpack_in("/").map_err(|err| entry_error(&e, err))?;
        }
    }
    for mut e in dirs {
        if e.unpack_in("/").map_err(|err| entry_error(&e, err))? {
            dir_xattrs(&mut e)?;
        }
    }
    // The archive ends at its first zero blocks, but the stream goes on
    // to the end of its record (GNU tar pads to 10 KiB) or further: read
    // it out, as tar(1) does, so a sender still writing the padding (a
    // slow download) does not find the pipe closed and call the archive
    // cut short.
    let _ = std::io::copy(&mut ar.into_inner(), &mut std::io::sink());
    Ok(())
}

/// The tar crate sets xattrs on regular files only; a directory's (a
/// default ACL, a label) are set here. `xattr::set` is lsetxattr(2): it
/// never follows a symlink, and we are confined anyway.
fn dir_xattrs<R: Read>(e: &mut tar::Entry<R>) -> Result<(), String> {
    let Some(path) = e.path().ok().and_then(|p| clean(&p)) else {
        return Ok(());
    };
    let Ok(Some(exts)) = e.pax_extensions() else {
        return Ok(());
    };
    for x in exts.flatten() {
        let Some(key) = x.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        let key = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(key);
        xattr::set(&path, key, x.value_bytes()).map_err(|err| {
            format!(
                "cannot set xattr {} on {}: {err}",
                key.to_string_lossy(),
                short(&path.display().to_string())
            )
        })?;
    }
    Ok(())
}

fn entry_error<R: Read>(e: &tar::Entry<R>, err: std::io::Error) -> String {
    let name = e
        .path()
        .map(|p| short(&p.display().to_string()))
        .unwrap_or_default();
    let why = err.to_string();
    // The tar crate repeats the path in its message; a hostile name may
    // be kilobytes long, and the line must stay one readable line.
    format!(
        "cannot unpack {name}: {}",
        short(why.lines().next().unwrap_or(""))
    )
}

fn short(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The entry's path below `/`, as tar's `unpack_in`: root and `.` dropped;
/// `None` (skip it) for one with `..`.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    (out != Path::new("/")).then_some(out)
}

/// A device node or fifo: mknod with the archive's mode, owner and mtime.
fn special<R: Read>(e: &tar::Entry<R>) -> Result<(), String> {
    let h = e.header();
    let raw = e.path().map_err(|err| err.to_string())?;
    let Some(path) = clean(&raw) else {
        return Ok(());
    };
    let io = |what: &str, err: std::io::Error| format!("cannot {what} {}: {err}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| io("create the parent of", err))?;
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {
            return Err(format!(
                "cannot create {}: a directory is there",
                path.display()
            ))
        }
        Ok(_) => std::fs::remove_file(&path).map_err(|err| io("replace", err))?,
        Err(_) => {}
    }
    let kind = h.entry_type();
    let ft = if kind.is_character_special() {
        rustix::fs::FileType::CharacterDevice
    } else if kind.is_block_special() {
        rustix::fs::FileType::BlockDevice
    } else {
        rustix::fs::FileType::Fifo
    };
    let mode = h.mode().map_err(|err| err.to_string())? & 0o7777;
    let dev = rustix::fs::makedev(
        h.device_major().ok().flatten().unwrap_or(0),
        h.device_minor().ok().flatten().unwrap_or(0),
    );
    let errno =
        |what: &str, err: rustix::io::Errno| format!("cannot {what} {}: {err}", path.display());
    rustix::fs::mknodat(rustix::fs::CWD, &path, ft, Mode::from_raw_mode(mode), dev)
        .map_err(|err| errno("create", err))?;
    let uid = h.uid().unwrap_or(0) as u32;
    let gid = h.gid().unwrap_or(0) as u32;
    // Ids from the archive as they are, as root's tar --numeric-owner.
    let (u, g) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    rustix::fs::chownat(
        rustix::fs::CWD,
        &path,
        Some(u),
        Some(g),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|err| errno("chown", err))?;
    // After chown, which clears set-uid bits.
    rustix::fs::chmodat(
        rustix::fs::CWD,
        &path,
        Mode::from_raw_mode(mode),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|err| errno("chmod", err))?;
    if let Ok(t) = h.mtime() {
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: t as i64,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: t as i64,
                tv_nsec: 0,
            },
        };
        let _ = rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &ts,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}
