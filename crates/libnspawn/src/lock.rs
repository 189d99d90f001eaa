//! Locks as descriptors. `flock(2)` locks belong to an open file
//! description, which the runner shares with the reaper it forks: the
//! lock is released when the last descriptor for it closes, not before.
//! So a lock here is only ever a descriptor that is closed, never an
//! explicit `LOCK_UN` (nix's `Flock` unlocks on drop, which would free the
//! description for the reaper too while it still cleans up).
//!
//! One runner per tree: `flock(2)` on the tree's directory itself, so a
//! runner killed with SIGKILL leaves no lock file behind to clean up.

use crate::error::{Context, Error, Result};
use rustix::fs::FlockOperation;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// A descriptor holding a `flock(2)`; closing it (in every process that
/// has a copy) releases the lock.
#[derive(Debug)]
pub struct Lock(OwnedFd);

impl Lock {
    /// Lock `fd` without waiting: `Ok(None)` if someone else holds it.
    pub fn try_new(fd: OwnedFd, exclusive: bool) -> rustix::io::Result<Option<Lock>> {
        let op = match exclusive {
            true => FlockOperation::NonBlockingLockExclusive,
            false => FlockOperation::NonBlockingLockShared,
        };
        match rustix::fs::flock(&fd, op) {
            Ok(()) => Ok(Some(Lock(fd))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lock `fd`, waiting for the holder to let go.
    pub fn wait(fd: OwnedFd) -> rustix::io::Result<Lock> {
        loop {
            match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
                Err(rustix::io::Errno::INTR) => continue,
                r => return r.map(|()| Lock(fd)),
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Another descriptor of the same lock (it is released when the last
    /// one closes).
    pub fn try_clone(&self) -> std::io::Result<Lock> {
        self.0.try_clone().map(Lock)
    }

    /// Replace the locked file's contents with `data`.
    pub fn write(&self, data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::from(self.0.try_clone()?);
        f.set_len(0)?;
        f.write_all_at(data, 0)
    }

    /// The locked file's contents.
    pub fn read(&self) -> std::io::Result<String> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::from(self.0.try_clone()?);
        let mut buf = vec![0u8; f.metadata()?.len() as usize];
        f.read_exact_at(&mut buf, 0)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Whether `path` still names the file this lock is on (a released
    /// lock file is unlinked, and whoever opened it before must not take
    /// the unlinked one for the name's).
    pub fn is_at(&self, path: &Path) -> bool {
        match (rustix::fs::fstat(&self.0), rustix::fs::lstat(path)) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    }
}

/// Open (and with `create`, make) the file `path` and lock it; `Ok(None)`
/// if it is locked by somebody else. With `wait`, wait for it instead.
pub fn open_locked(path: &Path, create: bool, wait: bool) -> Result<Option<Lock>> {
    use rustix::fs::OFlags;
    let mut flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if create {
        flags |= OFlags::CREATE;
    }
    let fd = rustix::fs::open(path, flags, rustix::fs::Mode::from_bits_truncate(0o644))
        .ctx(|| format!("cannot open {}", path.display()))?;
    match wait {
        true => Lock::wait(fd).map(Some),
        false => Lock::try_new(fd, true),
    }
    .ctx(|| format!("cannot lock {}", path.display()))
}

/// Lock the existing file `path` that a killed process held, once the
/// processes that share its lock (a killed runner's container, dying with
/// it) are gone, waiting up to `limit`; `None` if it is not there, or
/// still held then.
pub fn take_over(path: &Path, limit: std::time::Duration) -> Option<Lock> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(l) = open_locked(path, false, false).ok()? {
            return l.is_at(path).then_some(l);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub struct TreeLock(#[allow(dead_code)] Lock);

/// `shared`: runs that never write the tree (`--ephemeral`, `--read-only`,
/// `--volatile`) may share it with each other, not with a writer. A tree
/// held only for a runner that is dead (its container, which shares the
/// lock until it dies with it, still ending) is waited for, as the name
/// is (`name::DYING_WAIT`), asking `interrupted` meanwhile; one held by a
/// live process is busy at once.
pub fn lock_tree(
    directory: &Path,
    shared: bool,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<TreeLock> {
    let open = || {
        rustix::fs::open(
            directory,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| format!("cannot open {}", directory.display()))
    };
    let busy = format!("Directory tree {} is currently busy.", directory.display());
    lock_waiting(directory, &open, !shared, &busy, interrupted).map(TreeLock)
}

/// Lock what `open` opens of `path` (`exclusive` or shared) without
/// blocking; if it is held only for a dead process (a killed runner's
/// container still ending), wait for it up to `name::DYING_WAIT`, asking
/// `interrupted` meanwhile; if held by a live one, or still after the
/// wait, the `busy` message.
pub fn lock_waiting(
    path: &Path,
    open: &dyn Fn() -> Result<OwnedFd>,
    exclusive: bool,
    busy: &str,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<Lock> {
    let deadline = std::time::Instant::now() + crate::name::DYING_WAIT;
    loop {
        let fd = open()?;
        let st = rustix::fs::fstat(&fd).ctx(|| format!("cannot stat {}", path.display()))?;
        match Lock::try_new(fd, exclusive).ctx(|| format!("cannot lock {}", path.display()))? {
            Some(l) => return Ok(l),
            None if !holder_lives(st.st_dev, st.st_ino) && std::time::Instant::now() < deadline => {
                interrupted()?;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            None => return Err(Error::invalid(busy.to_string())),
        }
    }
}

/// Whether a `flock(2)` on the file `(dev, ino)` was taken by a process
/// that still runs: `/proc/locks` names the process that took a lock,
/// which outlives it in the processes it forked (a killed runner's
/// container, until that dies too). No lock listed (just released): no.
fn holder_lives(dev: u64, ino: u64) -> bool {
    let file = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let live = flock_holders(&locks, &file).any(process_lives);
    live
}

/// The processes (as PIDs) that took the granted `flock(2)` locks on
/// `file` (`MAJ:MIN:INODE`) in a `/proc/locks` text; waiters (`->`) are
/// not holders.
fn flock_holders<'a>(locks: &'a str, file: &'a str) -> impl Iterator<Item = &'a str> {
    locks
        .lines()
        .filter(|l| !l.contains("->"))
        .filter_map(move |l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&file)).then(|| f[4])
        })
}

/// Whether process `pid` (as /proc/locks prints it) runs: not gone, not
/// a zombie.
fn process_lives(pid: &str) -> bool {
    let Ok(stat) = crate::sys::read_proc(&format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name's closing parenthesis.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn flock_holders_of_a_file() {
        let locks = "1: FLOCK  ADVISORY  WRITE 2817 fe:00:10010667 0 EOF
2: FLOCK  ADVISORY  READ 12 fe:00:5 0 EOF
2: -> FLOCK  ADVISORY  WRITE 13 fe:00:5 0 EOF
2: FLOCK  ADVISORY  READ 14 fe:00:5 0 EOF
3: POSIX  ADVISORY  WRITE 15 fe:00:5 0 EOF
";
        let of = |f| super::flock_holders(locks, f).collect::<Vec<_>>();
        assert_eq!(of("fe:00:10010667"), ["2817"]);
        assert_eq!(of("fe:00:5"), ["12", "14"]);
        assert!(of("fe:00:6").is_empty());
    }
}
