//! What a running machine publishes, so `nspawnctl` (and the NSS module)
//! can find it without a daemon: one JSON record per machine in
//! `/run/nspawn/machines/NAME`, written atomically by the runner once the
//! container runs and removed when it ends — by the runner, or by its
//! reaper if the runner was killed.
//!
//! The record names the runner's control endpoint (`control.rs`).
//!
//! A record alone proves nothing: a machine is running only while its
//! cgroup is locked (the runner and its reaper hold `flock(2)` on it, see
//! `cgroup.rs`). A record whose lock is free is stale; whoever notices
//! removes it.

use crate::error::{Context, Error, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DIR: &str = "/run/nspawn/machines";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub class: String,
    pub service: String,
    /// The tree on the host.
    pub root: PathBuf,
    /// PID 1 of the container, as the host sees it.
    pub leader: i32,
    /// The runner's PID.
    pub runner: i32,
    /// The machine id, 32 hex digits.
    pub id: String,
    /// The container's cgroup on the unified hierarchy, if any.
    pub cgroup: Option<PathBuf>,
    /// Host-side network interfaces.
    pub interfaces: Vec<String>,
    pub addresses: Vec<String>,
    pub state: String,
    /// Start time, microseconds since the epoch.
    pub started_usec: u64,
    /// The capability bounding set of the container's processes, so that
    /// `nspawnctl shell` confines what it starts the same way.
    pub bounding: u64,
    /// The system call filter's additions and removals, and the other
    /// confinement of the container's processes, for the same reason.
    #[serde(default)]
    pub syscall_allow: Vec<String>,
    #[serde(default)]
    pub syscall_deny: Vec<String>,
    #[serde(default)]
    pub suppress_sync: bool,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// The runner's control endpoint (`control.rs`).
    #[serde(default)]
    pub control: Option<PathBuf>,
}

pub fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Write the record atomically (a reader never sees half of it).
pub fn publish(r: &Record) -> Result<()> {
    std::fs::create_dir_all(DIR).ctx(|| format!("cannot create {DIR}"))?;
    let tmp = Path::new(DIR).join(format!(".{}.tmp", r.name));
    let data = serde_json::to_vec_pretty(r)
        .map_err(|e| Error::invalid(format!("cannot encode the machine record: {e}")))?;
    std::fs::write(&tmp, data).ctx(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path(&r.name)).ctx(|| format!("cannot publish machine {}", r.name))
}

pub fn remove(name: &str) {
    let _ = std::fs::remove_file(path(name));
}

/// Remove the record only if `runner` wrote it: a reaper must not remove
/// the record of a newer machine of the same name.
pub fn remove_if_runner(name: &str, runner: i32) {
    if read(&path(name)).is_some_and(|r| r.runner == runner) {
        remove(name);
    }
}

/// Whether the machine behind a record still runs: its cgroup is locked,
/// or (hosts without a unified hierarchy) its leader is alive.
fn alive(r: &Record) -> bool {
    match &r.cgroup {
        Some(cg) => {
            let Ok(fd) = nix::fcntl::open(
                cg,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                return false;
            };
            // Locked by the runner (or its reaper): we cannot get it.
            Flock::lock(fd, FlockArg::LockSharedNonblock).is_err()
        }
        None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.leader), None).is_ok(),
    }
}

/// Whether the runner that published `name`'s record still lives (a
/// zombie does not). False without a record.
pub fn runner_lives(name: &str) -> bool {
    read_record(name).is_some_and(|r| runner_alive(&r))
}

/// Whether the runner that published `r` still lives.
pub fn runner_alive(r: &Record) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", r.runner))
        .ok()
        .and_then(|st| st.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The record of `name` as written, running or not.
pub fn read_record(name: &str) -> Option<Record> {
    read(&path(name))
}

fn read(p: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Remove a stale record and the control socket it names.
fn forget(p: &Path, stale: Option<Record>) {
    if let Some(c) = stale.and_then(|r| r.control) {
        crate::control::remove_stale(&c);
    }
    let _ = std::fs::remove_file(p);
}

/// Every running machine, sorted by name; stale records are removed. A
/// machine whose runner was killed is dying, not running: it is left out,
/// and its reaper removes the record once the container is gone.
pub fn list() -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return vec![];
    };
    let mut out: Vec<Record> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| match read(&e.path()) {
            Some(r) if alive(&r) => runner_alive(&r).then_some(r),
            stale => {
                forget(&e.path(), stale);
                None
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The running machine `name`, without touching anything (for the NSS
/// module, which runs inside every process that resolves a host name).
pub fn lookup(name: &str) -> Option<Record> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    read(&path(name)).filter(alive)
}

/// The running machine `name`.
pub fn get(name: &str) -> Result<Record> {
    match read(&path(name)) {
        Some(r) if alive(&r) => Ok(r),
        stale @ Some(_) => {
            forget(&path(name), stale);
            Err(Error::invalid(format!("Machine {name} is not running.")))
        }
        None => Err(Error::invalid(format!("No machine '{name}' known"))),
    }
}

/// Microseconds since the epoch, now.
pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
