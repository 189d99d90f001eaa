//! The container process: everything it needs is decided before `clone3`
//! (the child must not fail, allocate from a lock or return into the
//! runner's code), then `sys::spawn` starts `child::run`, which never
//! returns. The runner keeps it as a `Container`, a guard that kills and
//! reaps it on drop unless it was reaped already.

use super::channel::Channel;
use super::child;
use super::place;
use super::reserve::Held;
use crate::error::{Context, Result};
use crate::id128::Id128;
use crate::settings::Settings;
use crate::sys::{self, Exit};
use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

pub struct Container {
    pub pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: Cell<bool>,
}

impl Container {
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Reap it (it must have exited, or be about to).
    pub fn wait(&self) -> Result<Exit> {
        let exit = sys::wait_pidfd(self.pidfd.as_fd())?;
        self.reaped.set(true);
        Ok(exit)
    }

    /// Send `sig` to its PID 1 (never to a recycled PID: by pidfd).
    pub fn signal(&self, sig: libc::c_int) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), sig);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped.get() {
            // PID 1's death ends its PID namespace: the kernel kills the rest.
            self.signal(libc::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// What one run's container process gets besides the settings.
pub struct Inputs<'a> {
    pub mode: place::Mode,
    pub held: &'a Held,
    /// `--network-namespace-path`: the namespace to join.
    pub netns: Option<BorrowedFd<'a>>,
    pub channel: Channel,
    pub notify: &'a OwnedFd,
    pub pty: bool,
    pub host_os_release: &'a [u8],
    /// `-i`: this run's mounts of the image.
    pub image: Option<child::ImageRoot<'a>>,
}

/// Root of a user namespace may not write the host's /var/log/journal:
/// the runner makes that side once the machine id is known.
pub fn journal_host(s: &Settings, held: &Held) -> bool {
    held.userns.is_some() && crate::journal::has_host_side(s.fs.link_journal)
}

/// Whether the child waits, once its machine id is sent, for the runner
/// to place it (in a scope) or make the host's side of the journal.
pub fn waits_placed(s: &Settings, mode: place::Mode, held: &Held) -> bool {
    mode.waits() || journal_host(s, held)
}

/// Start the container process of one run.
pub fn container(s: &Settings, inp: Inputs) -> Result<Container> {
    let Inputs {
        mode,
        held,
        netns,
        channel,
        notify,
        pty,
        host_os_release,
        image,
    } = inp;
    let mut ns = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if s.private_network {
        ns |= libc::CLONE_NEWNET;
    }
    // One clone3 makes the user namespace and the others together, so the
    // new user namespace owns them all: root inside may then mount, set
    // the host name and configure its network (user_namespaces(7)).
    if held.userns.is_some() {
        ns |= libc::CLONE_NEWUSER;
    }
    let ctx = child::ChildCtx {
        settings: s,
        channel,
        runner: sys::pidfd_self()?,
        notify,
        pty,
        cgroup2: held.cgroup.is_some() || (mode.waits() && crate::cgroup::unified_root().is_some()),
        wait_placed: waits_placed(s, mode, held),
        container_uuid: s.uuid.map(Ok).unwrap_or_else(Id128::random)?,
        host_os_release,
        term: std::env::var("TERM").ok(),
        netns,
        wait_go: s.net.wants_links(),
        userns: held.userns.is_some(),
        retain: kept_capabilities(s),
        bind_users: held
            .userns
            .as_ref()
            .map(|u| u.users.as_slice())
            .unwrap_or_default(),
        listen_fds: listen_fds(),
        image,
        exec_fifo: None,
        oci_hooks: None,
    };
    let cgroup = held.cgroup.as_ref().map(|c| c.fd());
    // Born outside the root cgroup of every v1 hierarchy, whose
    // release_agent it could otherwise reach (release_agent.rs): we leave
    // them, and it inherits where we are.
    crate::security::release_agent::leave_v1_roots()?;
    let (pid, pidfd) = sys::spawn(ns as u64, cgroup, move || child::run(ctx))
        .ctx(|| "cannot create the container process (clone3)".into())
        .map_err(crate::error::Error::from_fork)?;
    Ok(Container {
        pid,
        pidfd,
        reaped: Cell::new(false),
    })
}

/// Descriptors the caller passed for the payload (sd_listen_fds(3)): only
/// if `$LISTEN_PID` names us, as the protocol wants.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        Some(n) if ours => n,
        _ => 0,
    }
}

/// The system call filters of a container of `s`: the bundle's policy, or
/// our allow list for the capabilities it keeps, with the user's lists.
pub fn filters(s: &Settings) -> Result<crate::security::seccomp::Filters> {
    let sec = &s.security;
    crate::security::seccomp::Filters::assemble(
        crate::security::bpf::Arch::HOST,
        sec.syscall_policy.as_ref(),
        kept_capabilities(s),
        &sec.syscall_allow,
        &sec.syscall_deny,
        sec.suppress_sync,
    )
}

/// The capability set the container keeps (its bounding set), for the
/// container process and the machine's record alike. A user namespace's
/// range counts as shifted unless its base was given as 0 (`identity`,
/// `0:RANGE`): the reference decides before it picks a range, so `pick`
/// and `yes` count as shifted whatever they pick.
pub fn kept_capabilities(s: &Settings) -> u64 {
    use crate::userns::Mode;
    let shifted = !matches!(
        s.userns.mode,
        Mode::No | Mode::Identity | Mode::Fixed { base: 0, .. }
    );
    s.security
        .retain(s.private_network, shifted && !s.private_network)
}
