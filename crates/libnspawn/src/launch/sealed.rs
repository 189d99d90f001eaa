//! Run the runner from a sealed copy of its own binary when a process of
//! ours stays inside the container (`--as-pid2`: the stub init).
//!
//! Root in the container may open `/proc/1/exe` of the stub. Were that our
//! binary on the host, it could be opened for writing once nothing executes
//! it any more (the runc CVE-2019-5736 class; today the kernel answers
//! ETXTBSY while the file is being executed, but an `O_PATH` descriptor
//! smuggled out outlives that). So, like runc, we re-execute once from a
//! memfd copy (memfd_create(2)) sealed against any change (F_SEAL_WRITE and
//! friends, fcntl(2)): the stub's `/proc/1/exe` is then that copy, which
//! nobody can write and which is no file on the host.
//!
//! Re-executing cannot be left to the stub itself: after `pivot_root` the
//! ELF interpreter would be looked up in the container's tree.
//! Without `--as-pid2` no process of ours is left inside after `execve`,
//! and the copy (a few milliseconds) is not made.

use crate::error::{Context, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const NAME: &str = "nspawn-sealed";

/// Whether this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.as_os_str()
                .as_bytes()
                .starts_with(format!("/memfd:{NAME}").as_bytes())
        })
        .unwrap_or(false)
}

fn sealed_copy() -> Result<OwnedFd> {
    let what = || "cannot make a sealed copy of the nspawn binary".to_string();
    let exe = std::fs::File::open("/proc/self/exe").ctx(what)?;
    let name = CString::new(NAME).unwrap_or_default();
    // SAFETY: memfd_create with a valid name and flags.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    let fd = Errno::result(fd).ctx(what)?;
    // SAFETY: a new descriptor we own.
    let memfd = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut &exe, &mut &memfd).ctx(what)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor.
    Errno::result(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).ctx(what)?;
    Ok(memfd.into())
}

/// Re-execute this process from the sealed copy, with the same arguments
/// and environment (and so the same PID, descriptors and `$LISTEN_PID`).
/// Returns only if already sealed, or with the error.
pub fn reexec() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let memfd = sealed_copy()?;
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    // A close-on-exec memfd can be executed: the ELF is mapped before the
    // descriptor closes (execveat(2) notes only scripts cannot).
    let e = nix::unistd::execveat(
        memfd.as_fd(),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(e).ctx(|| "cannot execute the sealed copy of the nspawn binary".into())
}
