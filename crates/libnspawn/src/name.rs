//! A machine's name, taken first and given back last by every start:
//! `flock(2)` on `/run/nspawn/names/NAME`, in every placement mode. While
//! it is held, nothing else of ours acts on the name's paths (the control
//! socket, the registry record, the network and user-namespace records,
//! the cgroup), so a concurrent start of the same name can never unlink
//! or remove what another start made.
//!
//! The file says who holds it (`runner PID START BOOT`), and what the start
//! made with the service manager (`scope`, `registered`), so the reaper of
//! a killed runner knows what to undo. The reaper inherits the lock and
//! gives it back only after its cleanup: a new start that finds the name
//! held by a dead runner waits for that, and one held by a live runner is
//! refused at once.
//!
//! Released by unlinking the file while still holding the lock; whoever
//! locked the file before the unlink sees the path gone or pointing to a
//! new file, and tries again.

use crate::error::{Context, Error, Result};
use crate::lock::{open_locked, Lock};
use crate::sys::ProcId;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DIR: &str = "/run/nspawn/names";

/// How long a start waits for a dying machine of its name (a killed
/// runner's container still ending, its reaper still cleaning up): more
/// than the reaper waits for the container to empty.
pub const DYING_WAIT: Duration = Duration::from_secs(12);

/// What a start made with the service manager, written into the name's
/// file for its reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A scope unit of systemd's (made by machined or by us).
    Scope,
    /// A registration with systemd-machined.
    Registered,
}

impl Mark {
    fn word(self) -> &'static str {
        match self {
            Mark::Scope => "scope",
            Mark::Registered => "registered",
        }
    }
}

pub struct NameLock {
    machine: String,
    path: PathBuf,
    lock: Lock,
    holder: ProcId,
    /// What a start of the name whose runner and reaper were both killed
    /// had made with the service manager (marks found in the file).
    pub inherited: Vec<Mark>,
    /// Taken from such a start (its holder line was there): what it left
    /// under the name is ours to undo.
    pub taken_over: bool,
    /// The holder's line (and the cgroup a dead start wrote down), written
    /// by `claim`.
    claim: String,
}

fn path(machine: &str) -> PathBuf {
    Path::new(DIR).join(machine)
}

/// The runner named in a name's file, if it still lives.
fn holder_lives(text: &str) -> bool {
    text.lines()
        .find_map(|l| l.strip_prefix("runner "))
        .and_then(ProcId::parse)
        .is_some_and(|p| p.alive())
}

/// Take the name of `machine`. A name held by a live runner is refused;
/// one held for a dead runner (its reaper still cleaning up) is waited for
/// up to `DYING_WAIT`, checking `interrupted` meanwhile. The name is held
/// (locked) on return; the caller then `claim`s it.
pub fn acquire(machine: &str, interrupted: &dyn Fn() -> Result<()>) -> Result<NameLock> {
    std::fs::create_dir_all(DIR).ctx(|| format!("cannot create {DIR}"))?;
    let path = path(machine);
    let holder = ProcId::current().ctx(|| "cannot read our own process start time".into())?;
    let deadline = Instant::now() + DYING_WAIT;
    let mut unknown_since: Option<Instant> = None;
    loop {
        if let Some(lock) = open_locked(&path, true, false)? {
            // Released (unlinked) by its last holder after we opened it.
            if !lock.is_at(&path) {
                continue;
            }
            let old = lock.read().unwrap_or_default();
            let inherited = [Mark::Scope, Mark::Registered]
                .into_iter()
                .filter(|m| old.lines().any(|l| l == m.word()))
                .collect();
            let taken_over = old.lines().any(|l| l.starts_with("runner "));
            // The cgroup it wrote down stays, for whoever undoes it.
            let mut claim = format!("runner {holder}\n");
            for l in old.lines().filter(|l| l.starts_with("cgroup ")) {
                claim.push_str(l);
                claim.push('\n');
            }
            return Ok(NameLock {
                machine: machine.to_string(),
                path,
                lock,
                holder,
                inherited,
                taken_over,
                claim,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if holder_lives(&text) {
            return Err(Error::invalid(format!(
                "machine '{machine}' is already running"
            )));
        }
        // Just locked by a start that has not written its line yet: give
        // it a moment before taking the holder for dead.
        let since = *unknown_since.get_or_insert_with(Instant::now);
        if text.is_empty() && since.elapsed() < Duration::from_millis(200) {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        if Instant::now() > deadline {
            return Err(Error::invalid(format!(
                "machine '{machine}' is still shutting down; try again later"
            )));
        }
        interrupted()?;
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Remove the files of names nobody holds (runner and reaper both killed),
/// with the registry record and control socket they left, but `except`'s,
/// which the caller holds.
pub fn sweep(except: &str) {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_str() == Some(except) {
            continue;
        }
        if let Ok(Some(stale)) = open_locked(&e.path(), false, false) {
            if stale.is_at(&e.path()) {
                // Nobody holds the name: its runner and reaper are both
                // gone, and so is anything they left under the name.
                if let Some(name) = e.file_name().to_str() {
                    crate::registry::remove(name);
                    crate::registry::remove_partial(name);
                    crate::control::remove_stale(
                        &std::path::Path::new(crate::control::DIR).join(name),
                    );
                }
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

impl NameLock {
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// Another handle on the same name, sharing its lock.
    pub fn try_clone(&self) -> std::io::Result<NameLock> {
        Ok(NameLock {
            machine: self.machine.clone(),
            path: self.path.clone(),
            lock: self.lock.try_clone()?,
            holder: self.holder.clone(),
            inherited: self.inherited.clone(),
            taken_over: self.taken_over,
            claim: self.claim.clone(),
        })
    }

    /// Write our line into the name's file. `acquire` leaves it to the
    /// caller, so that the reaper (which shares the lock, and so owns
    /// what is under the name whatever the file says) can be forked
    /// first: a runner killed at any instant after `acquire` leaves no
    /// name file without a process of ours to remove it.
    pub fn claim(&self) -> Result<()> {
        self.lock
            .write(self.claim.as_bytes())
            .ctx(|| format!("cannot write {}", self.path.display()))
    }

    /// The runner holding the name (us, in the runner; the dead runner,
    /// in its reaper).
    pub fn holder(&self) -> &ProcId {
        &self.holder
    }

    /// The locked descriptor, for the reaper to keep.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock.fd()
    }

    /// Write down (or, with `on` false, take back) what this start made
    /// with the service manager.
    pub fn mark(&self, mark: Mark, on: bool) -> Result<()> {
        let text = self.lock.read().unwrap_or_default();
        let mut lines: Vec<&str> = text.lines().filter(|l| *l != mark.word()).collect();
        if on {
            lines.push(mark.word());
        }
        let mut out = lines.join("\n");
        out.push('\n');
        if out == text {
            // Taking back a mark never made (every orderly end does).
            return Ok(());
        }
        self.lock
            .write(out.as_bytes())
            .ctx(|| format!("cannot write {}", self.path.display()))
    }

    /// Write down the cgroup this start is about to make (`owned`: ours,
    /// below a slice; else a unit's `payload`), before it is made, so that
    /// the reaper of a runner killed at any instant finds it.
    pub fn note_cgroup(&self, path: &Path, owned: bool) -> Result<()> {
        let text = self.lock.read().unwrap_or_default();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("cgroup "))
            .map(str::to_string)
            .collect();
        let kind = if owned { "own" } else { "payload" };
        lines.push(format!("cgroup {kind} {}", path.display()));
        let mut out = lines.join("\n");
        out.push('\n');
        self.lock
            .write(out.as_bytes())
            .ctx(|| format!("cannot write {}", self.path.display()))
    }

    /// The cgroup written down by `note_cgroup`, and whether it is ours.
    pub fn noted_cgroup(&self) -> Option<(PathBuf, bool)> {
        let text = self.lock.read().ok()?;
        text.lines().find_map(|l| {
            let (kind, path) = l.strip_prefix("cgroup ")?.split_once(' ')?;
            Some((PathBuf::from(path), kind == "own"))
        })
    }

    /// Whether `mark` is written down.
    pub fn marked(&self, mark: Mark) -> bool {
        self.lock
            .read()
            .is_ok_and(|t| t.lines().any(|l| l == mark.word()))
    }

    /// Whether the name is still this holder's (not given back).
    pub fn is_ours(&self) -> bool {
        self.lock.is_at(&self.path)
    }

    /// Give the name back (the lock itself goes when the last copy of the
    /// descriptor closes): only a file that is still ours is removed.
    pub fn release(&self) {
        if self.is_ours() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
