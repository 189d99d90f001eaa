//! The container process of an OCI runtime's `create` (`nspawn-oci`):
//! the same `child::run` as `nspawn`'s, with no runner left once it is
//! set up. It waits on the exec FIFO, and the caller of `create` (conmon,
//! containerd's shim) inherits it as its child when `create` exits.
//! docs/design/oci-runtime.md.

use super::channel::{self, Msg};
use super::{child, spawn};
use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::settings::Settings;
use crate::sys;
use crate::userns::{IdMaps, Range};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What `create` gives the container process besides the settings.
pub struct Request<'a> {
    pub settings: &'a Settings,
    /// `process.terminal`: a pty, its master handed to `console`.
    pub pty: bool,
    /// The exec FIFO, opened `O_PATH`.
    pub exec_fifo: OwnedFd,
    /// The cgroup (v2: the unified hierarchy's) to start in.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Whether the container gets a cgroup2 mount of its own.
    pub cgroup2: bool,
    /// `linux.namespaces` `network` with a `path`, opened.
    pub netns: Option<BorrowedFd<'a>>,
    /// `--preserve-fds`: descriptors 3.. passed on.
    pub preserve_fds: u32,
    /// The hooks the container process runs, or waits for.
    pub hooks: Option<&'a crate::oci::hooks::ContainerHooks>,
    /// `linux.namespaces` `user`: the id maps of the new user namespace.
    pub id_maps: Option<&'a IdMaps>,
}

/// The container process, set up and waiting on its FIFO. Not reaped
/// here: the caller of `create` reaps it.
pub struct Init {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

/// What `create` does at each step of the container process's setup.
pub struct Steps<S, P, C, M> {
    /// As soon as its PID is known (the state that lets `delete --force`
    /// clear a `create` killed meanwhile).
    pub started: S,
    /// Once it exists and before its cgroup namespace is made (the cgroup
    /// v1 hierarchies, limits).
    pub placed: P,
    /// The pty master.
    pub console: C,
    /// Its mounts made, before it enters its root (with `hooks.runtime`):
    /// the runtime's `prestart` and `createRuntime` hooks.
    pub mounted: M,
}

/// Start the container process and drive its setup through `steps`. On
/// failure the process is killed and reaped, and the error is its own
/// line.
pub fn create<S, P, C, M>(req: Request, steps: Steps<S, P, C, M>) -> Result<Init>
where
    S: FnOnce(libc::pid_t) -> Result<()>,
    P: FnOnce(libc::pid_t) -> Result<()>,
    C: FnMut(OwnedFd) -> Result<()>,
    M: FnOnce(libc::pid_t) -> Result<()>,
{
    let s = req.settings;
    let userns = req.id_maps;
    let (ours, theirs) = channel::pair()?;
    let notify = crate::notify::guest_socket()?;
    let mut ns = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if s.private_network && req.netns.is_none() {
        ns |= libc::CLONE_NEWNET;
    }
    // Made with the others in one clone3, so that it owns them all (as
    // `nspawn -U`, spawn.rs).
    if userns.is_some() {
        ns |= libc::CLONE_NEWUSER;
    }
    let ctx = child::ChildCtx {
        settings: s,
        channel: theirs,
        runner: sys::pidfd_self()?,
        notify: &notify,
        pty: req.pty,
        cgroup2: req.cgroup2,
        container_uuid: s.uuid.map(Ok).unwrap_or_else(Id128::random)?,
        host_os_release: &[],
        term: None,
        netns: req.netns,
        wait_go: false,
        wait_placed: true,
        userns: userns.is_some(),
        retain: spawn::kept_capabilities(s),
        bind_users: &[],
        listen_fds: req.preserve_fds,
        image: None,
        exec_fifo: Some(req.exec_fifo),
        oci_hooks: req.hooks,
    };
    // Born outside the root cgroup of every v1 hierarchy, whose
    // release_agent it could otherwise reach (release_agent.rs): we leave
    // them, and it inherits where we are.
    crate::security::release_agent::leave_v1_roots()?;
    let (pid, pidfd) = sys::spawn(ns as u64, req.cgroup, move || child::run(ctx))
        .ctx(|| "cannot create the container process (clone3)".into())
        .map_err(Error::from_fork)?;
    let init = Init { pid, pidfd };
    let waits_mounted = req.hooks.is_some_and(|h| h.runtime);
    match drive(&ours, s, pid, userns, waits_mounted, steps) {
        Ok(()) => Ok(init),
        Err(e) => {
            let e = match ours.pending_error(init.pidfd.as_fd()) {
                Some(msg) => Error::Invalid(msg),
                None => e,
            };
            let _ = sys::pidfd_send_signal(init.pidfd.as_fd(), libc::SIGKILL);
            let _ = sys::wait_pidfd(init.pidfd.as_fd());
            Err(e)
        }
    }
}

/// What the child waits for first in a user namespace: its id maps, then
/// what it may not make as root of that namespace — a copy of each bind
/// source (made by the host's root, who can reach it) and, without a
/// network namespace of its own, a sysfs (sysfs(5) is mounted only by
/// the owner of the network namespace). The tree is its own: the client
/// gave it the ownership the maps want (podman copies or chowns the
/// image for `--uidmap`), as runc expects; nothing here shifts it.
fn map_ids(ours: &channel::Channel, s: &Settings, pid: libc::pid_t, maps: &IdMaps) -> Result<()> {
    maps.write(pid)?;
    // The range of container root's ids: what an idmapped bind of the
    // bundle's would map to (they are plain copies: `Idmap::Off`).
    let root = maps.uid.iter().find(|m| m.container == 0);
    let range = Range {
        base: root.map_or(0, |m| m.host),
        size: root.map_or(0, |m| m.size),
    };
    let binds = crate::userns::binds::make(&s.fs.mounts, pid, &range, &s.directory)?;
    let sysfs = (!s.private_network)
        .then(|| crate::mount::detached_sysfs(&s.knobs))
        .transpose()?;
    ours.send_go_mounts(&channel::GoMounts {
        tree: None,
        sysfs,
        binds,
    })
}

fn drive<S, P, C, M>(
    ours: &channel::Channel,
    s: &Settings,
    pid: libc::pid_t,
    userns: Option<&IdMaps>,
    waits_mounted: bool,
    steps: Steps<S, P, C, M>,
) -> Result<()>
where
    S: FnOnce(libc::pid_t) -> Result<()>,
    P: FnOnce(libc::pid_t) -> Result<()>,
    C: FnMut(OwnedFd) -> Result<()>,
    M: FnOnce(libc::pid_t) -> Result<()>,
{
    let Steps {
        started,
        placed,
        mut console,
        mounted,
    } = steps;
    started(pid)?;
    if let Some(maps) = userns {
        map_ids(ours, s, pid, maps)?;
    }
    // Assembled while the process sets up its root, as `nspawn`'s runner
    // does; sent after the last "go" it waits for before them ("placed",
    // or "mounted" when it waits for hooks).
    let filters = spawn::filters(s)?;
    let mut placed = Some(placed);
    let mut mounted = Some(mounted);
    loop {
        match ours.recv()? {
            Msg::MachineId(_) => {
                if let Some(p) = placed.take() {
                    p(pid)?;
                }
                ours.send_go()?;
                if !waits_mounted {
                    ours.send_filters(&filters)?;
                }
            }
            // The container's /proc/kmsg reads end-of-file once we exit.
            Msg::Kmsg(_) | Msg::Go(_) | Msg::Filters(_) => {}
            Msg::Console(master) => console(master)?,
            Msg::Mounted => {
                if let Some(m) = mounted.take() {
                    m(pid)?;
                }
                ours.send_go()?;
                ours.send_filters(&filters)?;
            }
            Msg::Ready => return Ok(()),
            Msg::Error(msg) => return Err(Error::Invalid(msg)),
            Msg::Eof => {
                return Err(Error::invalid(
                    "the container process ended during its setup",
                ))
            }
        }
    }
}
