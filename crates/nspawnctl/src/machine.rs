//! A running machine as the verbs need it: its record, pidfds for its
//! leader and its other processes that are checked to belong to the
//! machine (so a recycled PID is never signalled or entered), and its
//! processes by cgroup.

use libnspawn::registry::{self, Record};
use std::os::fd::OwnedFd;
use std::path::Path;

pub fn get(name: &str) -> Result<Record, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("Need to be root.".into());
    }
    registry::get(name).map_err(|e| e.to_string())
}

/// A pidfd for the leader, after checking (with the pidfd held) that the
/// PID is still the process the record names, and in the machine's cgroup.
/// Checked after `pidfd_open`: a PID reused before it was opened shows
/// another start time, and one reused after it does not matter (the pidfd
/// stays with the process it was opened on).
pub fn leader(r: &Record) -> Result<OwnedFd, String> {
    let not_running = || format!("Machine {} is not running.", r.name);
    let fd = libnspawn::sys::pidfd_open(r.leader).map_err(|_| not_running())?;
    if !registry::is_same(r.leader, r.starts.leader.as_ref())
        || r.cgroup.as_ref().is_some_and(|cg| !in_cgroup(r.leader, cg))
    {
        return Err(not_running());
    }
    Ok(fd)
}

/// A pidfd for `pid` if, with the pidfd held, the process is in the
/// cgroup `cg` or below it: none for one that has left it, nor for a PID
/// reused by a process elsewhere since `cg`'s `cgroup.procs` was read.
pub fn member(pid: i32, cg: &Path) -> Option<OwnedFd> {
    let fd = libnspawn::sys::pidfd_open(pid).ok()?;
    in_cgroup(pid, cg).then_some(fd)
}

fn in_cgroup(pid: i32, cg: &Path) -> bool {
    libnspawn::cgroup::of_process(&pid.to_string()).is_some_and(|p| p.starts_with(cg))
}

pub fn send(pidfd: &OwnedFd, sig: i32) -> Result<(), String> {
    libnspawn::sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(pidfd), sig)
        .map_err(|e| format!("cannot send signal: {}", e.desc()))
}

/// Every PID in a cgroup and below it.
pub fn processes(cg: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(cg) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(processes(&e.path()));
            }
        }
    }
    out
}

/// `KEY=value` pairs of the machine's os-release (read inside its tree).
pub fn os_release(r: &Record) -> Vec<(String, String)> {
    let root = match nix::fcntl::open(
        &r.root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(_) => return vec![],
    };
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(Some(data)) = libnspawn::inroot::read_file(std::os::fd::AsFd::as_fd(&root), p) {
            return libnspawn::env::parse_os_release(&String::from_utf8_lossy(&data));
        }
    }
    vec![]
}

pub fn os_value(os: &[(String, String)], key: &str) -> String {
    os.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "-".into())
}
