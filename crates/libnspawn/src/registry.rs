//! What a running machine publishes, so `nspawnctl` (and the NSS module)
//! can find it without a daemon: one JSON record per machine in
//! `/run/nspawn/machines/NAME`, written atomically by the runner once the
//! container runs and removed when it ends — by the runner, or by its
//! reaper if the runner was killed.
//!
//! The record, reading it and whether its machine runs are the crate
//! `nspawn-registry` (the NSS module links only that), re-exported here;
//! this module writes, lists and removes records. The record names the
//! runner's control endpoint (`control.rs`).
//!
//! A record alone proves nothing: a machine is running only while its
//! cgroup is locked (the runner and its reaper hold `flock(2)` on it, see
//! `cgroup.rs`). A record whose lock is free is stale; whoever notices
//! removes it.

use crate::error::{Context, Error, Result};
use std::path::Path;

pub use nspawn_registry::{
    alive, is_running, is_same, lookup, path, read, read_record, runner_alive, runner_lives,
    ProcStart, Record, Starts, DIR,
};

/// Write the record atomically (a reader never sees half of it).
pub fn publish(r: &Record) -> Result<()> {
    std::fs::create_dir_all(DIR).ctx(|| format!("cannot create {DIR}"))?;
    let tmp = tmp_path(&r.name);
    let data = serde_json::to_vec_pretty(r)
        .map_err(|e| Error::invalid(format!("cannot encode the machine record: {e}")))?;
    std::fs::write(&tmp, data).ctx(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path(&r.name)).ctx(|| format!("cannot publish machine {}", r.name))
}

/// Where a record is written before it is renamed into place.
fn tmp_path(name: &str) -> std::path::PathBuf {
    Path::new(DIR).join(format!(".{name}.tmp"))
}

pub fn remove(name: &str) {
    let _ = std::fs::remove_file(path(name));
}

/// Remove the half-written record a runner killed while publishing left.
/// Only for a caller that holds the name: a start holding it may be
/// writing one.
pub fn remove_partial(name: &str) {
    let _ = std::fs::remove_file(tmp_path(name));
}

/// Remove the record only if `runner` wrote it: a reaper must not remove
/// the record of a newer machine of the same name.
pub fn remove_if_runner(name: &str, runner: &crate::sys::ProcId) {
    let ours = |r: &Record| {
        r.runner == runner.pid && r.starts.runner.as_ref().is_none_or(|s| *s == runner.start)
    };
    if read(&path(name)).is_some_and(|r| ours(&r)) {
        remove(name);
    }
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
