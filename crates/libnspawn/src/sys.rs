//! System calls the project makes through no other layer, shared by the
//! runner and nspawnctl. rustix is the layer for what it wraps (pidfds,
//! `open_tree`, `move_mount`, `flock`); these it does not, so they are
//! made raw here, each with its reason:
//!
//! - `clone3(2)`: the only way to start a child directly inside a cgroup
//!   (`CLONE_INTO_CGROUP`, so it never runs a single instruction in ours)
//!   and to get a pidfd for it atomically (`CLONE_PIDFD`, so signals never
//!   hit a recycled PID); rustix has no fork-like calls at all.
//! - `mount_setattr(2)` and `close_range(2)`: not in rustix 1.x.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The namespaces a process joins to run inside a container (ours or an
/// OCI runtime's): all but the user and time namespaces.
pub const CONTAINER_NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

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
/// copy of the address space.
///
/// # Safety
///
/// The caller must be single-threaded. The child has only the calling
/// thread; a lock another thread held at the moment of the call (the
/// allocator's, stdio's) stays held in the child forever, and the child
/// allocates. `spawn` checks this before calling.
pub unsafe fn clone3_raw(flags: u64, cgroup: Option<BorrowedFd>) -> nix::Result<Forked> {
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

pub use nspawn_registry::read_proc;

/// The number of threads of this process (`/proc/self/stat`, field 20).
fn thread_count() -> std::io::Result<u64> {
    let st = read_proc("/proc/self/stat")?;
    st.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(17)?.parse().ok())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Refuse to fork-clone from a process with more than one thread (see
/// `clone3_raw`): a library that started a thread behind our back (an NSS
/// module, a D-Bus client) must be found here, not as a hung container.
pub fn ensure_single_threaded() -> Result<()> {
    match thread_count() {
        Ok(1) => Ok(()),
        Ok(n) => Err(Error::invalid(format!(
            "cannot start a process from a process with {n} threads (internal error)"
        ))),
        Err(e) => Err(e).ctx(|| "cannot read /proc/self/stat".into()),
    }
}

/// Start `child` in a new process made by `clone3` with the namespaces
/// `flags` (`CLONE_NEW*`), in `cgroup` if given. `child` never returns
/// into the caller's code: its type (`Infallible`, no value of which
/// exists; `!` itself is not stable in closure types) makes it execute
/// something or exit on every path.
pub fn spawn(
    flags: u64,
    cgroup: Option<BorrowedFd>,
    child: impl FnOnce() -> std::convert::Infallible,
) -> nix::Result<(libc::pid_t, OwnedFd)> {
    // More threads: EDEADLK; the count unreadable (no descriptor left):
    // why it could not be read.
    match thread_count() {
        Ok(1) => {}
        Ok(_) => return Err(Errno::EDEADLK),
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    }
    // SAFETY: checked just now that we are the only thread.
    match unsafe { clone3_raw(flags, cgroup) }? {
        // The child's value is uninhabited: this arm never ends.
        #[allow(unreachable_code)]
        Forked::Child => match child() {},
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}

/// `pidfd_open(2)`: a descriptor for `pid` that stays with that process.
pub fn pidfd_open(pid: libc::pid_t) -> nix::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(Errno::ESRCH)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(errno)
}

/// A rustix error as nix's, for the callers' one error type.
pub fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// `close_range(2)` from `first` on, closing or (with `cloexec`) marking
/// close-on-exec. Refuses rather than leaving descriptors open: a kernel
/// without `CLOSE_RANGE_CLOEXEC` (before 5.11) would leak every runner
/// descriptor into the payload.
pub fn close_range(first: u32, last: u32, cloexec: bool) -> Result<()> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: closes or marks descriptors only; callers keep none of those
    // they close.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(r)
        .map(drop)
        .ctx(|| "cannot close the descriptors the payload must not inherit (close_range; Linux 5.11 or newer is needed)".into())
}

/// Close every descriptor from 3 up but those in `keep`.
pub fn close_all_but(keep: &[std::os::fd::RawFd]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|&&k| k > 2).map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut first = 3;
    for k in keep {
        if k > first {
            close_range(first, k - 1, false)?;
        }
        first = first.max(k + 1);
    }
    close_range(first, u32::MAX, false)
}

/// Open /dev/null on each of the standard descriptors 0-2 that is closed
/// and not in `keep`, so that no file opened later becomes one of them.
pub fn null_stdio(keep: &[u32]) {
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        if open || keep.contains(&(fd as u32)) {
            continue;
        }
        // SAFETY: open returns the lowest free descriptor; moved onto `fd`
        // if it is not that one already, and never closed.
        unsafe {
            let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if n >= 0 && n != fd {
                libc::dup2(n, fd);
                libc::close(n);
            }
        }
    }
}

/// A process as its PID and start time (with the boot it counts from): a
/// recycled PID has another start time, so a `ProcId` never names a
/// process that merely got the same number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start: nspawn_registry::ProcStart,
}

impl ProcId {
    /// The process `pid` now, if there is one.
    pub fn of(pid: i32) -> Option<ProcId> {
        nspawn_registry::ProcStart::of(pid).map(|start| ProcId { pid, start })
    }

    pub fn current() -> nix::Result<ProcId> {
        ProcId::of(std::process::id() as i32).ok_or(Errno::ESRCH)
    }

    /// As written by `Display`: `PID TICKS BOOT`.
    pub fn parse(s: &str) -> Option<ProcId> {
        let mut f = s.split_whitespace();
        let pid = f.next()?.parse().ok()?;
        let ticks = f.next()?.parse().ok()?;
        let boot = f.next()?.to_string();
        Some(ProcId {
            pid,
            start: nspawn_registry::ProcStart { boot, ticks },
        })
    }

    /// Whether this very process still runs (and is not a zombie).
    pub fn alive(&self) -> bool {
        nspawn_registry::is_running(self.pid, Some(&self.start))
    }
}

impl std::fmt::Display for ProcId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.pid, self.start.ticks, self.start.boot)
    }
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

/// In a child just forked from `parent`: die with it (SIGKILL on its
/// death, prctl(2) `PR_SET_PDEATHSIG`), and fail with ESRCH if it died
/// before that was armed (we are someone else's child then). Only system
/// calls, no allocation: safe between fork and exec.
pub fn die_with_parent(parent: rustix::process::Pid) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    if rustix::process::getppid() != Some(parent) {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// `c`, once spawned, dies with us: `die_with_parent` between its fork
/// and its exec.
pub fn dies_with_us(c: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: only prctl(2) and getppid(2) between fork and exec.
    unsafe { c.pre_exec(move || die_with_parent(parent)) }
}

/// `pidfd_open(2)` on ourselves: the child polls it to learn whether the
/// runner died before `PR_SET_PDEATHSIG` was armed.
pub fn pidfd_self() -> Result<OwnedFd> {
    // SAFETY: getpid cannot fail.
    pidfd_open(unsafe { libc::getpid() }).ctx(|| "cannot open a pidfd for the runner".into())
}

/// Send `sig` to the process behind `pidfd` (never to a recycled PID).
pub fn pidfd_send_signal(pidfd: BorrowedFd, sig: libc::c_int) -> nix::Result<()> {
    // rustix's `Signal` covers the real-time signals only through an
    // unchecked constructor; every number here comes from our own parsing.
    // SAFETY: `sig` is a signal number the kernel accepts or refuses.
    let sig = unsafe { rustix::process::Signal::from_raw_unchecked(sig) };
    rustix::process::pidfd_send_signal(pidfd, sig).map_err(errno)
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
    open_tree(path, true)
}

/// As `open_tree_clone`, without the submounts (a `norbind` bind).
pub fn open_tree_clone_flat(path: &std::path::Path) -> nix::Result<OwnedFd> {
    open_tree(path, false)
}

fn open_tree(path: &std::path::Path, recursive: bool) -> nix::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(rustix::fs::CWD, path, flags).map_err(errno)
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
    use rustix::mount::MoveMountFlags;
    rustix::mount::move_mount(
        fd,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(errno)
}

/// Attach the detached mount `fd` on the file or directory behind the
/// descriptor `target` (`move_mount(2)` with both paths empty).
pub fn move_mount_onto_fd(fd: BorrowedFd, target: BorrowedFd) -> nix::Result<()> {
    use rustix::mount::MoveMountFlags;
    rustix::mount::move_mount(
        fd,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(errno)
}
