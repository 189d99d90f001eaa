//! The container's own cgroup on the unified (v2) hierarchy.
//!
//! Pure cgroup v2 hosts have it at `/sys/fs/cgroup`; hybrid hosts (this one,
//! and systemd's "hybrid" mode) at `/sys/fs/cgroup/unified`. The container is
//! cloned straight into `machine.slice/machine-NAME.scope` below it and gets
//! a cgroup namespace rooted there, so a systemd guest sees a pure v2 tree it
//! may manage.
//!
//! The runner holds `flock(2)` on the cgroup directory while it lives; the
//! same lock makes machine names unique among running containers. A runner
//! killed with SIGKILL cannot remove its cgroup, so a small reaper process,
//! forked at start and sharing the lock, waits for the runner to go away
//! and then for the cgroup to empty, and removes it. Should the reaper be
//! killed too, any later start finds the directory unlocked and removes it.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const SLICE: &str = "machine.slice";

/// How long a start waits for a dying machine of its name (a killed
/// runner's container still ending, its reaper still cleaning up): more
/// than the reaper waits for the container to empty.
pub const DYING_WAIT: std::time::Duration = std::time::Duration::from_secs(12);

/// The cgroup directory of a slice: systemd nests `a-b.slice` in
/// `a.slice` (systemd.slice(5)).
fn slice_path(slice: &str) -> PathBuf {
    let stem = slice.trim_end_matches(".slice");
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    path
}

pub struct Cgroup {
    path: PathBuf,
    dir: Flock<OwnedFd>,
    /// Made by us below our own slice (removed with the slices it
    /// emptied), not inside a unit of the service manager.
    owned: bool,
}

/// The cgroup of systemd's scope for `machine` in `slice` (the default
/// `machine.slice` without one).
pub fn scope_dir(machine: &str, slice: Option<&str>) -> Option<PathBuf> {
    Some(
        unified_root()?
            .join(slice_path(slice.unwrap_or(SLICE)))
            .join(crate::systemd::bus::scope_name(machine)),
    )
}

/// The mount point of the unified hierarchy, if the host has one.
pub fn unified_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            nix::sys::statfs::statfs(p)
                .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
                .unwrap_or(false)
        })
}

/// systemd's unit name escaping for the machine name in the scope name.
pub fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn try_lock(fd: OwnedFd) -> Option<Flock<OwnedFd>> {
    Flock::lock(fd, FlockArg::LockExclusiveNonblock).ok()
}

/// Remove a cgroup and everything the guest made below it, deepest first.
fn remove_tree(path: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    // The last processes of a dying container may still be leaving.
    for _ in 0..100 {
        match std::fs::remove_dir(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        {
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(2)),
            _ => return,
        }
    }
}

/// Remove the slices above a machine's cgroup that nothing uses any more
/// (rmdir fails on a slice with other machines in it, which is fine).
fn remove_empty_slices(scope: &Path) {
    let mut dir = scope.parent();
    while let Some(d) = dir.filter(|d| d.extension().is_some_and(|e| e == "slice")) {
        if fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

/// Remove the cgroups of runners that died without cleaning up.
fn sweep(slice: &Path) {
    let Ok(entries) = fs::read_dir(slice) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("machine-") && name.ends_with(".scope")) {
            continue;
        }
        let Ok(fd) = open_dir(&e.path()) else {
            continue;
        };
        if let Some(_lock) = try_lock(fd) {
            remove_tree(&e.path());
        }
    }
}

trait FlockFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl FlockFd for Flock<OwnedFd> {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        // Flock derefs to the descriptor it locks.
        std::ops::Deref::deref(self).as_fd()
    }
}

impl Cgroup {
    /// Create and lock the machine's cgroup. `Ok(None)` on hosts without a
    /// unified hierarchy (pure v1), where the container shares ours.
    pub fn create(machine: &str, slice: Option<&str>) -> Result<Option<Cgroup>> {
        let Some(root) = unified_root() else {
            return Ok(None);
        };
        let slice = root.join(slice_path(slice.unwrap_or(SLICE)));
        fs::create_dir_all(&slice).ctx(|| format!("cannot create cgroup {}", slice.display()))?;
        sweep(&slice);
        let path = slice.join(format!("machine-{}.scope", escape(machine)));
        // A concurrent sweep may remove the directory between our mkdir and
        // our lock; the lock is only good if the directory still exists.
        // A locked cgroup whose runner is not (yet, or any more) on record
        // belongs to a runner that is starting or to the reaper of one that
        // just died, whose container may still be dying: give it the time
        // the reaper gives the container to end.
        let deadline = std::time::Instant::now() + DYING_WAIT;
        while std::time::Instant::now() < deadline {
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                // Another runner's cleanup removed the emptied slice meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir_all(&slice)
                        .ctx(|| format!("cannot create cgroup {}", slice.display()))?;
                    continue;
                }
                Err(e) => return Err(e).ctx(|| format!("cannot create cgroup {}", path.display())),
            }
            let fd = match open_dir(&path) {
                Ok(fd) => fd,
                // Swept away between our mkdir and this open: make it again.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e).ctx(|| format!("cannot open cgroup {}", path.display())),
            };
            let Some(dir) = try_lock(fd) else {
                let events = fs::read_to_string(path.join("cgroup.events")).unwrap_or_default();
                if events.contains("populated 1") && crate::registry::runner_lives(machine) {
                    return Err(Error::invalid(format!(
                        "machine '{machine}' is already running"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            if nix::fcntl::openat(
                dir.as_fd_ref(),
                "cgroup.procs",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .is_ok()
            {
                return Ok(Some(Cgroup {
                    path,
                    dir,
                    owned: true,
                }));
            }
        }
        Err(Error::invalid(format!(
            "machine '{machine}' is already running"
        )))
    }

    /// The `payload` cgroup of a unit the service manager made and
    /// delegated (the machine's scope, or with `--keep-unit` the caller's
    /// own unit), as the reference nests it: on the unified hierarchy
    /// inner cgroups hold no processes, and the guest's manager and the
    /// host's would otherwise fight over the unit's own attributes.
    pub fn payload(unit: &Path, machine: &str) -> Result<Cgroup> {
        let path = unit.join("payload");
        // Held by a dead runner's reaper for a moment longer: wait for it
        // as `create` does.
        let deadline = std::time::Instant::now() + DYING_WAIT;
        loop {
            make_dir(&path)?;
            let fd = match open_dir(&path) {
                Ok(fd) => fd,
                // Removed by that reaper meanwhile: make it again.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e).ctx(|| format!("cannot open cgroup {}", path.display())),
            };
            if let Some(dir) = try_lock(fd) {
                return Ok(Cgroup {
                    path,
                    dir,
                    owned: false,
                });
            }
            if crate::registry::runner_lives(machine) || std::time::Instant::now() > deadline {
                return Err(Error::invalid(format!(
                    "machine '{machine}' is already running"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Move process `pid` into this cgroup.
    pub fn attach(&self, pid: i32) -> Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .ctx(|| format!("cannot move process {pid} into {}", self.path.display()))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the cgroup (the container must be dead).
    pub fn remove(self) {
        remove_tree(&self.path);
        if self.owned {
            remove_empty_slices(&self.path);
        }
    }

    /// Delegate the cgroup to the container's root, `uid`:`gid` on the
    /// host, as systemd does for `Delegate=yes`: the directory and the
    /// files a manager inside writes to create and fill its own cgroups
    /// (cgroups(7), "Cgroups v2 delegation"). Without it a systemd guest in
    /// a user namespace cannot make its control groups.
    pub fn delegate(&self, uid: u32, gid: u32) -> Result<()> {
        let own = |name: &str| {
            nix::unistd::fchownat(
                self.dir.as_fd_ref(),
                name,
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        };
        nix::unistd::fchownat(
            self.dir.as_fd_ref(),
            "",
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .ctx(|| format!("cannot delegate {}", self.path.display()))?;
        for name in ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
            own(name).ctx(|| format!("cannot delegate {}/{name}", self.path.display()))?;
        }
        Ok(())
    }
}

/// Fork the reaper. It lives until the returned descriptor (held only by
/// the runner) closes, which happens however the runner ends; then it
/// removes `cgroup` (if the runner made one before the container) once
/// nothing runs in it, and runs `after` (the network's and user
/// namespace's cleanup), keeping the descriptors `keep` (their locks) open.
pub fn spawn_reaper(
    cgroup: Option<&Cgroup>,
    keep: &[BorrowedFd],
    after: impl FnOnce(),
) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "cannot create a pipe".into())?;
    // SAFETY: the runner is single-threaded; the child only makes system
    // calls and exits.
    match unsafe { nix::unistd::fork() }.ctx(|| "cannot fork the cgroup reaper".into())? {
        nix::unistd::ForkResult::Parent { .. } => Ok(w),
        nix::unistd::ForkResult::Child => {
            drop(w);
            reaper(r, cgroup, keep, after)
        }
    }
}

/// A cgroup below a unit, made unless it is there.
fn make_dir(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).ctx(|| format!("cannot create cgroup {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Wait (up to ten seconds) until nothing runs in the cgroup at `path`
/// any more, or it is gone.
pub fn wait_empty_at(path: &Path) {
    if let Ok(fd) = open_dir(path) {
        wait_empty(fd.as_fd());
    }
}

/// The unified-hierarchy cgroup of process `pid` ("self" for ours).
pub fn of_process(pid: &str) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(unified_root()?.join(rel.trim_start_matches('/')))
}

/// With `--keep-unit`: leave the caller's unit cgroup to its `payload`
/// and move ourselves to `supervisor` beside it, as the reference does.
/// `None` if we are not in a unit (the hierarchy's root).
pub fn split_own_unit() -> Result<Option<PathBuf>> {
    let Some(unit) = of_process("self") else {
        return Ok(None);
    };
    if unified_root().as_deref() == Some(unit.as_path()) {
        return Ok(None);
    }
    let supervisor = unit.join("supervisor");
    make_dir(&supervisor)?;
    fs::write(supervisor.join("cgroup.procs"), "0")
        .ctx(|| format!("cannot move into {}", supervisor.display()))?;
    Ok(Some(unit))
}

/// Hand the controllers `unit` has on to its children (what is not
/// allowed there is left out; a unit with processes of its own takes
/// none, which is fine).
pub fn enable_controllers(unit: &Path) {
    let have = fs::read_to_string(unit.join("cgroup.controllers")).unwrap_or_default();
    for c in have.split_whitespace() {
        let _ = fs::write(unit.join("cgroup.subtree_control"), format!("+{c}"));
    }
}

/// Wait (up to ten seconds) until nothing runs in the cgroup `dir` any
/// more, or it is gone.
fn wait_empty(dir: BorrowedFd) {
    for _ in 0..1000 {
        match read_at(dir, "cgroup.events") {
            Some(e) if e.contains("populated 1") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => break,
        }
    }
}

fn read_at(dir: BorrowedFd, name: &str) -> Option<String> {
    let fd =
        nix::fcntl::openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    std::io::read_to_string(fs::File::from(fd)).ok()
}

/// Whether `path` is still the directory `dir` was opened on (cgroupfs
/// inode numbers are not reused while we hold one).
fn is_at(dir: BorrowedFd, path: &Path) -> bool {
    match (nix::sys::stat::fstat(dir), nix::sys::stat::stat(path)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

fn reaper(pipe: OwnedFd, cgroup: Option<&Cgroup>, extra: &[BorrowedFd], after: impl FnOnce()) -> ! {
    use std::os::fd::AsRawFd;
    // Keep only the pipe, the (locked) cgroup directory and `extra`: the
    // tree lock and the terminal must not stay open in here. Own session,
    // so signals for the runner's terminal or process group pass us by.
    let mut keep = vec![pipe.as_raw_fd() as u32];
    keep.extend(cgroup.map(|c| c.fd().as_raw_fd() as u32));
    keep.extend(extra.iter().map(|f| f.as_raw_fd() as u32));
    keep.sort();
    // SAFETY: closing descriptors we do not use; setsid and prctl with
    // constant arguments.
    unsafe {
        let mut from = 0u32;
        for k in keep {
            if k > from {
                libc::syscall(libc::SYS_close_range, from, k - 1, 0);
            }
            from = k + 1;
        }
        libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"nspawn-reaper".as_ptr());
    }
    // Only the runner's end (or SIGKILL) ends us: a SIGTERM sent to every
    // process of the runner's unit or name (systemd's KillMode=
    // control-group, `pkill nspawn`) must not stop the cleanup the runner
    // may still need. Blocked rather than ignored: programs we run (nft)
    // start with an empty mask, but would inherit ignored dispositions.
    let mut mask = nix::sys::signal::SigSet::empty();
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        mask.add(sig);
    }
    let _ =
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&mask), None);
    let mut b = [0u8; 1];
    while let Err(Errno::EINTR) = nix::unistd::read(&pipe, &mut b) {}
    // The runner is gone. PID 1 of the container dies with it
    // (PR_SET_PDEATHSIG); wait for the cgroup to empty, then remove it.
    // Through our descriptor, not the path: a runner that ended normally
    // has removed the directory already, and a new container of the same
    // name may have made its own at that path by now. The cgroup (the
    // name's lock) goes last, so a new start of the name finds the
    // network's and user namespace's records released.
    if let Some(cg) = cgroup {
        wait_empty(cg.fd());
    }
    after();
    if let Some(cg) = cgroup {
        if is_at(cg.fd(), &cg.path) {
            remove_tree(&cg.path);
            if cg.owned {
                remove_empty_slices(&cg.path);
            }
        }
    }
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slices_nest() {
        assert_eq!(
            super::slice_path("machine.slice"),
            std::path::Path::new("machine.slice")
        );
        assert_eq!(
            super::slice_path("a-b-c.slice"),
            std::path::Path::new("a.slice/a-b.slice/a-b-c.slice")
        );
    }

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(super::escape("foo-bar.baz"), "foo\\x2dbar.baz");
    }
}
