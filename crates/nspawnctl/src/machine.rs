//! A running machine as the verbs need it: its record, a pidfd for its
//! leader that is checked to belong to the machine (so a recycled PID is
//! never signalled), and its processes by cgroup.

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
/// PID is still in the machine's cgroup.
pub fn leader(r: &Record) -> Result<OwnedFd, String> {
    let fd = libnspawn::sys::pidfd_open(r.leader)
        .map_err(|_| format!("Machine {} is not running.", r.name))?;
    if let Some(cg) = &r.cgroup {
        if !processes(cg).contains(&r.leader) {
            return Err(format!("Machine {} is not running.", r.name));
        }
    }
    Ok(fd)
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
