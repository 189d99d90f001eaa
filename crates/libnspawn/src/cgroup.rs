//! The container's own cgroup on the unified (v2) hierarchy.
//!
//! Pure cgroup v2 hosts have it at `/sys/fs/cgroup`; hybrid hosts (this one,
//! and systemd's "hybrid" mode) at `/sys/fs/cgroup/unified`. The container is
//! cloned straight into `machine.slice/machine-NAME.scope` below it and gets
//! a cgroup namespace rooted there, so a systemd guest sees a pure v2 tree it
//! may manage.
//!
//! The runner holds `flock(2)` on the cgroup directory while it lives (the
//! registry's readers take a locked cgroup for a running machine); its
//! reaper shares the lock and removes the cgroup after a killed runner
//! (`launch/reaper.rs`). Should the reaper be killed too, any later start
//! finds the directory unlocked and removes it.

use crate::error::{Context, Error, Result};
use crate::lock::Lock;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const SLICE: &str = "machine.slice";

use crate::name::DYING_WAIT;

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
    dir: Lock,
    /// Made by us below our own slice (removed with the slices it
    /// emptied), not inside a unit of the service manager.
    owned: bool,
}

/// The cgroup of systemd's scope for `machine` in `slice` (the default
/// `machine.slice` without one).
pub fn scope_dir(machine: &str, slice: Option<&str>) -> Option<PathBuf> {
    Some(slice_dir(slice)?.join(scope_name(machine)))
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

/// The unit name of a machine's scope (and so its cgroup's name), escaped
/// as systemd escapes it.
pub fn scope_name(machine: &str) -> String {
    format!("machine-{}.scope", escape(machine))
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

fn try_lock(fd: OwnedFd) -> Option<Lock> {
    Lock::try_new(fd, true).ok().flatten()
}

/// Remove a cgroup and everything the guest made below it, deepest first.
/// A cgroup that stays busy (a process that will not leave) is an error.
fn remove_tree(path: &Path) -> Result<()> {
    // Most cgroups have no children: one rmdir, without listing the
    // dozens of control files to find none. (One with children, like one
    // with processes, refuses with EBUSY.)
    match std::fs::remove_dir(path).map_err(|e| e.raw_os_error()) {
        Ok(()) | Err(Some(libc::ENOENT)) => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    // The last processes of a dying container may still be leaving.
    let mut last = Errno::EBUSY;
    for _ in 0..100 {
        match std::fs::remove_dir(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    Err(last).ctx(|| format!("cannot remove cgroup {}", path.display()))
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

/// Remove the cgroups of the machines of `slice` (ours by default) whose
/// runners died without cleaning up: without systemd, the reaper's job,
/// beside the start (a directory swept between `create`'s mkdir and its
/// lock is made again there, as with a concurrent start's sweep). Never
/// where systemd keeps its own scopes.
pub fn sweep_slice(slice: Option<&str>) {
    if let Some(dir) = slice_dir(slice) {
        sweep(&dir);
    }
}

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
            let _ = remove_tree(&e.path());
        }
    }
}

/// Where `Cgroup::create` makes the machine's cgroup, if the host has a
/// unified hierarchy.
pub fn own_path(machine: &str, slice: Option<&str>) -> Option<PathBuf> {
    scope_dir(machine, slice)
}

/// The slice's cgroup (`machine.slice` by default), where systemd's
/// scopes and `Cgroup::create`'s cgroups of machines go, if the host has
/// a unified hierarchy.
fn slice_dir(slice: Option<&str>) -> Option<PathBuf> {
    Some(unified_root()?.join(slice_path(slice.unwrap_or(SLICE))))
}

impl Cgroup {
    /// The cgroup at `path` that a killed runner made (`owned`: below its
    /// slice), locked once the runner's container, which shares its
    /// lock, has died (up to `DYING_WAIT`); `None` if it is not there.
    pub fn adopt(path: &Path, owned: bool) -> Option<Cgroup> {
        let deadline = std::time::Instant::now() + DYING_WAIT;
        loop {
            let fd = open_dir(path).ok()?;
            if let Some(dir) = try_lock(fd) {
                return Some(Cgroup {
                    path: path.to_path_buf(),
                    dir,
                    owned,
                });
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Create and lock the machine's cgroup. `Ok(None)` on hosts without a
    /// unified hierarchy (pure v1), where the container shares ours.
    /// `sweep_first`: sweep the slice first (where no reaper does it).
    pub fn create(machine: &str, slice: Option<&str>, sweep_first: bool) -> Result<Option<Cgroup>> {
        let Some(slice) = slice_dir(slice) else {
            return Ok(None);
        };
        fs::create_dir_all(&slice).ctx(|| format!("cannot create cgroup {}", slice.display()))?;
        if sweep_first {
            sweep(&slice);
        }
        let path = slice.join(scope_name(machine));
        // A concurrent sweep may remove the directory between our mkdir and
        // our lock; the lock is only good if the directory still exists.
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
            // The name is ours (name.rs), so a lock here is the reaper of
            // an earlier runner of the name that could not remove it yet.
            let Some(dir) = try_lock(fd) else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            if nix::fcntl::openat(
                dir.fd(),
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
            "cgroup {} stays in use by another process",
            path.display()
        )))
    }

    /// The `payload` cgroup of a unit the service manager made and
    /// delegated (the machine's scope, or with `--keep-unit` the caller's
    /// own unit), as the reference nests it: on the unified hierarchy
    /// inner cgroups hold no processes, and the guest's manager and the
    /// host's would otherwise fight over the unit's own attributes.
    pub fn payload(unit: &Path) -> Result<Cgroup> {
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
            if std::time::Instant::now() > deadline {
                return Err(Error::invalid(format!(
                    "cgroup {} stays in use by another process",
                    path.display()
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
        self.dir.fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Once the container is dead: wait for its last processes to leave,
    /// then remove the cgroup (and the slices it emptied) if the path is
    /// still this cgroup — run by the runner, and again by its reaper,
    /// when a new container of the name may have its own there.
    pub fn release(&self) -> Result<()> {
        wait_empty(self.fd());
        if !is_at(self.fd(), &self.path) {
            return Ok(());
        }
        remove_tree(&self.path)?;
        if self.owned {
            remove_empty_slices(&self.path);
        }
        Ok(())
    }

    /// Delegate the cgroup to the container's root, `uid`:`gid` on the
    /// host, as systemd does for `Delegate=yes`: the directory and the
    /// files a manager inside writes to create and fill its own cgroups
    /// (cgroups(7), "Cgroups v2 delegation"). Without it a systemd guest in
    /// a user namespace cannot make its control groups.
    pub fn delegate(&self, uid: u32, gid: u32) -> Result<()> {
        let own = |name: &str| {
            nix::unistd::fchownat(
                self.dir.fd(),
                name,
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        };
        nix::unistd::fchownat(
            self.dir.fd(),
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
/// and move ourselves and our `reaper` to `supervisor` beside it, as the
/// reference does (a unit's cgroup with processes of its own could hand
/// no controllers to `payload`). `None` if we are not in a unit (the
/// hierarchy's root).
pub fn split_own_unit(reaper: libc::pid_t) -> Result<Option<PathBuf>> {
    let Some(unit) = of_process("self") else {
        return Ok(None);
    };
    if unified_root().as_deref() == Some(unit.as_path()) {
        return Ok(None);
    }
    let supervisor = unit.join("supervisor");
    make_dir(&supervisor)?;
    for pid in ["0".to_string(), reaper.to_string()] {
        fs::write(supervisor.join("cgroup.procs"), &pid)
            .ctx(|| format!("cannot move into {}", supervisor.display()))?;
    }
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
