//! System calls that neither libc nor nix wraps, shared by the runner and
//! nspawnctl: `clone3(2)` — the only way to start a child directly inside a
//! cgroup (`CLONE_INTO_CGROUP`, so it never runs a single instruction in
//! ours) and to get a pidfd for it atomically (`CLONE_PIDFD`, so signals
//! never hit a recycled PID) —, the pidfd calls, and `mount_setattr(2)`.

use crate::error::{Context, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Parent { pid: libc::pid_t, pidfd: OwnedFd },
    Child,
}

/// Fork-like `clone3`: no new stack, so the child continues from here with a
/// copy of the address space. Callers are single-threaded when they call
/// this, so the child may allocate and use Rust freely.
pub fn clone3_raw(flags: u64, cgroup: Option<BorrowedFd>) -> nix::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; without a stack
    // the call returns twice like fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as libc::pid_t,
            // SAFETY: the kernel handed us this new descriptor.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// The container process: `clone3` with its namespaces, into its cgroup.
pub fn clone3(namespaces: libc::c_int, cgroup: Option<BorrowedFd>) -> Result<Forked> {
    clone3_raw(namespaces as u64, cgroup)
        .ctx(|| "cannot create the container process (clone3)".into())
}

/// `pidfd_open(2)`: a descriptor for `pid` that stays with that process.
pub fn pidfd_open(pid: libc::pid_t) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(fd)?;
    // SAFETY: new descriptor from the kernel; pidfds are always close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Make the mount behind `fd` read-only (with `recursive`, its submounts
/// too), as `mount_setattr(2)` with `MOUNT_ATTR_RDONLY`.
pub fn mount_setattr_read_only(fd: BorrowedFd, recursive: bool) -> nix::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    mount_setattr_set(fd, MOUNT_ATTR_RDONLY, recursive)
}

/// `MOUNT_ATTR_RDONLY | NOSUID | NODEV | NOEXEC`, for API file systems.
pub const MOUNT_ATTR_API: u64 = 0x1 | 0x2 | 0x4 | 0x8;

/// Set the mount attributes `set` (`MOUNT_ATTR_*`) on the mount behind
/// `fd`, with `recursive` on its submounts too.
pub fn mount_setattr_set(fd: BorrowedFd, set: u64, recursive: bool) -> nix::Result<()> {
    mount_setattr(fd, set, None, recursive)
}

/// `mount_setattr(2)`: set `set`, with the user namespace `userns` for
/// `MOUNT_ATTR_IDMAP`.
fn mount_setattr(
    fd: BorrowedFd,
    set: u64,
    userns: Option<BorrowedFd>,
    recursive: bool,
) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        set,
        clr: 0,
        propagation: 0,
        userns_fd: userns.map(|u| u.as_raw_fd() as u64).unwrap_or(0),
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: valid descriptors, empty path with AT_EMPTY_PATH, attr of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// `pidfd_open(2)` on ourselves: the child polls it to learn whether the
/// runner died before `PR_SET_PDEATHSIG` was armed.
pub fn pidfd_self() -> Result<OwnedFd> {
    // SAFETY: getpid cannot fail.
    pidfd_open(unsafe { libc::getpid() }).ctx(|| "cannot open a pidfd for the runner".into())
}

pub fn pidfd_send_signal(pidfd: BorrowedFd, sig: libc::c_int) -> nix::Result<()> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2) would".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// How a child (the container's PID 1) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Reap the child behind `pidfd` (it must have exited).
pub fn wait_pidfd(pidfd: BorrowedFd) -> Result<Exit> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e).ctx(|| "cannot wait for the child".into()),
            }
        }
        // SAFETY: filled by a successful waitid.
        let status = unsafe { info.si_status() };
        return Ok(match info.si_code {
            libc::CLD_EXITED => Exit::Code(status),
            _ => Exit::Signal(status),
        });
    }
}

/// A detached copy of the mount tree at `path` (`open_tree(2)` with
/// `OPEN_TREE_CLONE | AT_RECURSIVE`): the source of an idmapped mount.
pub fn open_tree_clone(path: &std::path::Path) -> nix::Result<OwnedFd> {
    open_tree(path, libc::AT_RECURSIVE as libc::c_uint)
}

/// As `open_tree_clone`, without the submounts (a `norbind` bind).
pub fn open_tree_clone_flat(path: &std::path::Path) -> nix::Result<OwnedFd> {
    open_tree(path, 0)
}

fn open_tree(path: &std::path::Path, extra: libc::c_uint) -> nix::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid path string; the kernel returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | extra,
        )
    };
    Errno::result(fd)?;
    // SAFETY: new descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Make the detached mount behind `fd` (and its submounts) show files
/// through the id mapping of the user namespace `userns`
/// (`mount_setattr(2)`, `MOUNT_ATTR_IDMAP`). Needs CAP_SYS_ADMIN where the
/// file system was mounted, so only the runner can do it; the file system
/// must support it (`EINVAL` otherwise).
pub fn mount_setattr_idmap(fd: BorrowedFd, userns: BorrowedFd) -> nix::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    mount_setattr(fd, MOUNT_ATTR_IDMAP, Some(userns), true)
}

/// Attach the detached mount `fd` on `target` (`move_mount(2)`).
pub fn move_mount_to(fd: BorrowedFd, target: &std::path::Path) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let c = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid descriptor and path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// Attach the detached mount `fd` on the file or directory behind the
/// descriptor `target` (`move_mount(2)` with both paths empty).
pub fn move_mount_onto_fd(fd: BorrowedFd, target: BorrowedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: valid descriptors, empty paths with the matching flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}
