//! What one start holds on the host, as guards in one struct: taken in
//! order after the tree's lock (which the runner holds), the name first;
//! released in the order of the fields (the name last). `Held`'s drop
//! releases them in the runner, however `run` ends; the reaper runs the
//! very same `release` on its copy after a killed runner (`reaper.rs`).
//! Each release undoes only what is still this start's (the file or
//! cgroup at the path is the one it made), so the runner's and then the
//! reaper's pass are both harmless.

use super::place;
use super::signals::Signals;
use super::{failpoint, reaper};
use crate::cgroup::{self, Cgroup};
use crate::error::Result;
use crate::lock::TreeLock;
use crate::name::{self, Mark, NameLock};
use crate::settings::Settings;
use crate::{control, registry, userns};
use std::os::fd::{BorrowedFd, OwnedFd};

/// The guards a reaper inherits, in release order.
pub struct Held {
    /// The unified hierarchy's scope of the machine (scope mode), to find
    /// it after a killed runner; its processes die with the runner.
    scope_dir: Option<std::path::PathBuf>,
    /// The runner's control endpoint.
    pub control: Option<control::Endpoint>,
    /// The network's record (addresses, zone, nftables table).
    pub net: Option<crate::net::record::Held>,
    /// The user namespace's range record.
    pub userns: Option<userns::Prepared>,
    /// The container's cgroup, when made before it (not in a scope).
    pub cgroup: Option<Cgroup>,
    /// The machine's name: first taken, last given back.
    pub name: NameLock,
}

impl Held {
    /// The descriptors the reaper keeps: the guards' locks (not the
    /// control endpoint's socket: nobody would answer on it).
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.name.fd()];
        fds.extend(self.net.as_ref().map(|n| n.fd()));
        fds.extend(self.userns.as_ref().map(|u| u.record.fd()));
        fds.extend(self.cgroup.as_ref().map(|c| c.fd()));
        fds
    }

    /// Undo what is still this start's, in order. `report`: say what could
    /// not be undone (the runner; the reaper has no one to tell).
    pub fn release(&self, report: bool) {
        let machine = self.name.machine();
        let (scope, registered) = (
            self.name.marked(Mark::Scope),
            self.name.marked(Mark::Registered),
        );
        if scope || registered {
            // Left by a killed runner: its container dies with it; then
            // machined and systemd are told, as the runner would have.
            if let Some(d) = &self.scope_dir {
                cgroup::wait_empty_at(d);
            }
            let _ = crate::systemd::bus::end_machine(machine, registered, scope);
        }
        registry::remove_if_runner(machine, self.name.holder());
        if self.name.is_ours() {
            registry::remove_partial(machine);
        }
        if let Some(c) = &self.control {
            c.remove();
        }
        if let Some(n) = &self.net {
            n.release();
        }
        if let Some(u) = &self.userns {
            u.record.release();
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.release() {
                if report {
                    eprintln!("nspawn: {e}");
                }
            }
        }
        self.name.release();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release(true);
    }
}

/// A start's reservation: the guards, the tree's lock (the runner's
/// alone: a reaper holding it would keep the tree busy after the runner's
/// orderly end), and the reaper's pipe, closed last.
pub struct Reservation {
    pub held: Held,
    /// `--network-namespace-path`'s namespace, opened.
    pub netns_path: Option<OwnedFd>,
    /// `-i`: the image's lock and loop devices (the runner's alone, like
    /// the tree's lock: the reaper closes them, so after a killed runner
    /// only the container's mounts hold the devices, and autoclear frees
    /// them when its namespace goes).
    pub image: Option<crate::disk::attach::Attached>,
    _tree: Option<TreeLock>,
    _reaper: Option<OwnedFd>,
}

/// Take everything a start of `s` needs on the host — the tree's lock,
/// then the name before anything per name — checking for a stop request
/// between steps. Whatever fails releases
/// what was taken before it.
pub fn reserve(s: &Settings, mode: place::Mode, signals: &Signals) -> Result<Reservation> {
    let interrupted = || signals.check();
    // The tree first, as the reference: a second start of a busy tree is
    // told so, whatever its name. Nothing here is per name.
    let (image, tree) = match &s.image {
        Some(spec) => {
            crate::disk::ensure_mount_point()?;
            let image = crate::disk::attach::attach(spec, !writes_tree(s))?;
            (Some(image), None)
        }
        None => {
            if let Some(template) = &s.fs.template {
                crate::template::ensure(&s.directory, template, &interrupted)?;
            }
            super::check_tree(s)?;
            (None, lock_tree(s)?)
        }
    };
    failpoint::stage("reserve.tree", signals)?;
    let name = name::acquire(&s.machine, &interrupted)?;
    let mut held = Held {
        scope_dir: None,
        control: None,
        net: None,
        userns: None,
        cgroup: None,
        name,
    };
    failpoint::stage("reserve.name", signals)?;
    held.scope_dir = (mode == place::Mode::Scope)
        .then(|| cgroup::scope_dir(&s.machine, s.slice.as_deref()))
        .flatten();
    held.cgroup = mode.prepare(s, &held.name)?;
    if let Some(cg) = &held.cgroup {
        super::attach_devices(s.quiet, cg)?;
    }
    failpoint::stage("reserve.cgroup", signals)?;
    interrupted()?;
    let netns_path = crate::net::check(&s.net, &s.machine)?;
    if s.net.wants_veth() {
        held.net = Some(crate::net::record::reserve(&s.net, &s.machine)?);
    }
    failpoint::stage("reserve.net", signals)?;
    held.userns = userns::prepare(&s.userns, &s.directory, &s.machine)?;
    failpoint::stage("reserve.userns", signals)?;
    // A runner that cannot offer its endpoint still runs the machine;
    // nspawnctl then signals it directly.
    held.control = match control::Endpoint::bind(&s.machine) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("nspawn: no control endpoint: {e}");
            None
        }
    };
    failpoint::stage("reserve.control", signals)?;
    interrupted()?;
    let reaper = reaper::spawn(&held)?;
    // From here the reservation drops as one: the guards first, the
    // reaper's pipe last, so the reaper never cleans up beside us.
    let res = Reservation {
        held,
        netns_path,
        image,
        _tree: tree,
        _reaper: Some(reaper),
    };
    failpoint::stage("reserve.reaper", signals)?;
    Ok(res)
}

/// Whether a run may write the tree or image: not with `--ephemeral`,
/// `--read-only` or `--volatile`.
pub fn writes_tree(s: &Settings) -> bool {
    let fs = &s.fs;
    !(fs.ephemeral || fs.read_only || fs.volatile != crate::mount::spec::Volatile::No)
}

fn lock_tree(s: &Settings) -> Result<Option<TreeLock>> {
    match s.knobs.lock {
        true => crate::lock::lock_tree(&s.directory, !writes_tree(s)).map(Some),
        false => Ok(None),
    }
}
