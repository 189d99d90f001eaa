//! `nspawn-inner` (crates/libnspawn/inner), the static program of ours
//! that runs inside machines: embedded here, and executed from a memfd
//! sealed against any change (F_SEAL_WRITE and friends, fcntl(2)). A
//! process of ours that a machine can see must map nothing of the host's:
//! root of a machine without `-U` holds CAP_SYS_ADMIN and CAP_SYS_PTRACE
//! of the host's user namespace, so it may open the `/proc/PID/exe` and
//! `/proc/PID/map_files` of any process in the machine (CVE-2019-5736
//! class), which for our dynamically linked binaries include the host's
//! libc, writable by root. For this program both are the sealed memfd.

use crate::error::{Context, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

static PROGRAM: &[u8] = include_bytes!(env!("NSPAWN_INNER"));

/// A close-on-exec sealed memfd holding the program.
pub fn sealed() -> Result<OwnedFd> {
    let what = || "cannot make a sealed copy of nspawn-inner".to_string();
    let name = c"nspawn-inner";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC says it is to be executed (kernels from 6.3 may be set to
    // refuse that otherwise, vm.memfd_noexec); older ones know no such flag.
    // SAFETY: memfd_create with a valid name and flags.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | libc::MFD_EXEC) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    let fd = Errno::result(fd).ctx(what)?;
    // SAFETY: a new descriptor we own.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(PROGRAM).ctx(what)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own descriptor.
    Errno::result(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) }).ctx(what)?;
    Ok(file.into())
}

/// Execute the program from `memfd` with `args` (after its own name) and
/// `env`. Returns only with the error. A close-on-exec memfd can be
/// executed: the ELF is mapped before the descriptor closes (only scripts
/// cannot, execveat(2)).
pub fn exec(memfd: BorrowedFd, args: &[CString], env: &[CString]) -> Errno {
    let mut argv = vec![c"nspawn-inner".to_owned()];
    argv.extend_from_slice(args);
    nix::unistd::execveat(
        memfd.as_fd(),
        c"",
        &argv,
        env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err()
}
