//! Kernel parameters of the container's own namespaces (a bundle's
//! `linux.sysctl`), set from inside them before the file system is built.
//! Only parameters the kernel keeps per namespace are accepted, as runc
//! validates them: those of the IPC namespace (kernel.shm*, kernel.msg*,
//! kernel.sem*, fs.mqueue.*), which every container has, and net.*, when
//! the container has a network namespace that is not the host's. Any
//! other would change the host.
//!
//! Written through the host's /proc/sys, opened before our own /proc
//! (whose sys is read-only) is mounted, and written last, once the runner
//! has moved its links in (so `net.ipv4.conf.host0.*` exists): a sysctl
//! file reaches the namespace of the process that opens it (the IPC
//! table's `set_lookup`, the network's `net_ctl_header_lookup`), and root
//! of the owning user namespace may write it (ipc_permissions,
//! net_ctl_permissions).

use crate::error::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};

/// The namespace a parameter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ipc,
    Net,
}

/// A key as `/proc/sys` has it with dots for slashes: printable, no
/// slash, no empty component (the reference's sysctl_key_valid()).
pub fn key_valid(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|b| b > b' ' && b < 127 && b != b'/')
        && key.split('.').all(|c| !c.is_empty())
}

/// `None`: not a parameter of a namespace the container has.
pub fn scope(key: &str) -> Option<Scope> {
    let ipc = ["kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."];
    match key {
        k if ipc.iter().any(|p| k.starts_with(p)) => Some(Scope::Ipc),
        k if k.starts_with("net.") => Some(Scope::Net),
        _ => None,
    }
}

/// The host's /proc/sys, when there is anything to set.
pub fn open(list: &[(String, String)]) -> Result<Option<OwnedFd>> {
    if list.is_empty() {
        return Ok(None);
    }
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open("/proc/sys", flags, Mode::empty())
        .map(Some)
        .ctx(|| "cannot open /proc/sys".into())
}

/// Set each, in order, below `dir` (`open`'s); the keys were checked.
pub fn apply(dir: Option<OwnedFd>, list: &[(String, String)]) -> Result<()> {
    let Some(dir) = dir else {
        return Ok(());
    };
    for (key, value) in list {
        let what = || format!("cannot set sysctl {key} to {value}");
        let path = key.replace('.', "/");
        let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = nix::fcntl::openat(dir.as_fd(), path.as_str(), flags, Mode::empty()).ctx(what)?;
        // One write: a sysctl takes its value from the first (proc(5)).
        let n = nix::unistd::write(&fd, value.as_bytes()).ctx(what)?;
        if n != value.len() {
            return Err(crate::Error::invalid(format!("{}: short write", what())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for k in ["kernel.shmmax", "net.ipv4.ip_forward", "a"] {
            assert!(key_valid(k), "{k}");
        }
        for k in ["", ".a", "a.", "a..b", "a/b", "a b", "ä"] {
            assert!(!key_valid(k), "{k}");
        }
        assert_eq!(scope("kernel.shmmax"), Some(Scope::Ipc));
        assert_eq!(scope("kernel.shm_rmid_forced"), Some(Scope::Ipc));
        assert_eq!(scope("kernel.msgmnb"), Some(Scope::Ipc));
        assert_eq!(scope("kernel.sem"), Some(Scope::Ipc));
        assert_eq!(scope("fs.mqueue.msg_max"), Some(Scope::Ipc));
        assert_eq!(scope("net.ipv4.ping_group_range"), Some(Scope::Net));
        for k in [
            "kernel.pid_max",
            "vm.swappiness",
            "fs.mqueue",
            "kernel.shell",
            "netx.a",
        ] {
            assert_eq!(scope(k), None, "{k}");
        }
    }
}
