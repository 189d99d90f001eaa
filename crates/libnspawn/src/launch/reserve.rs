//! What one start holds on the host, as guards in one struct: taken in
//! order after the tree's lock (which the runner holds), the name first;
//! released in the order of the fields (the name last). `Held`'s drop
//! releases them in the runner, however `run` ends. The reaper, forked as
//! soon as the name is held, runs the very same `release` after a killed
//! runner, on the same guards taken over by name (`Held::adopt`), so a
//! kill at any instant of the start is undone (`reaper.rs`). Each release
//! undoes only what is still this start's (the file or cgroup at the path
//! is the one it made), so the runner's and then the reaper's pass are
//! both harmless.

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

/// The guards, in release order.
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
    /// The descriptor the reaper keeps: the name's lock, which it
    /// shares from the start's first step on.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        vec![self.name.fd()]
    }

    /// In the reaper of a killed runner (the name still its): the guards
    /// the runner had taken, found by the name, once the container that
    /// shares their locks has died.
    pub fn adopt(&self) -> std::io::Result<Held> {
        let mut h = Held {
            scope_dir: self.scope_dir.clone(),
            control: None,
            net: None,
            userns: None,
            cgroup: None,
            name: self.name.try_clone()?,
        };
        h.adopt_left();
        Ok(h)
    }

    /// Take over what a start of this name whose runner (and reaper) died
    /// left under it: its records, and the cgroup written down in the
    /// name's file.
    fn adopt_left(&mut self) {
        let machine = self.name.machine();
        self.net = crate::net::record::Held::adopt(machine);
        self.userns = userns::record::Held::adopt(machine).map(userns::Prepared::adopted);
        self.cgroup = self
            .name
            .noted_cgroup()
            .and_then(|(path, owned)| Cgroup::adopt(&path, owned));
    }

    /// With the name just taken from a start whose runner and reaper were
    /// both killed: undo what that start left, with the same release, so
    /// that nothing of it outlives this start, whatever becomes of it.
    fn clear_left(&mut self) {
        self.adopt_left();
        self.release_taken(false);
        (self.net, self.userns, self.cgroup) = (None, None, None);
    }

    /// Undo what is still this start's, in order, the name last. `report`:
    /// say what could not be undone (the runner; the reaper has no one to
    /// tell).
    pub fn release(&self, report: bool) {
        self.release_taken(report);
        self.name.release();
    }

    /// `release` but for the name. While the name is ours, whatever is at
    /// its paths (registry record, control socket) is this start's or one
    /// a killed start of the name left: either way ours to remove.
    fn release_taken(&self, report: bool) {
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
        if let Some(c) = &self.control {
            c.remove();
        }
        if self.name.is_ours() {
            registry::remove(machine);
            registry::remove_partial(machine);
            control::remove_stale(&std::path::Path::new(control::DIR).join(machine));
        } else {
            registry::remove_if_runner(machine, self.name.holder());
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
    _reaper: reaper::Link,
}

/// The guards while they are being taken, and the reaper's pipe, dropped
/// in this order: a failure half-way releases what was taken, and only
/// then lets the reaper go, so it never cleans up beside us.
struct Taking {
    held: Held,
    reaper: reaper::Link,
}

/// Take everything a start of `s` needs on the host — the tree's lock,
/// then the name before anything per name — checking for a stop request
/// between steps. Whatever fails releases what was taken before it.
pub fn reserve(s: &Settings, mode: place::Mode, signals: &Signals) -> Result<Reservation> {
    let interrupted = || signals.check();
    // The tree first, as the reference: a second start of a busy tree is
    // told so, whatever its name. Nothing here is per name.
    let (image, tree) = match &s.image {
        Some(spec) => {
            crate::disk::ensure_mount_point()?;
            let image = crate::disk::attach::attach(spec, !writes_tree(s), &interrupted)?;
            (Some(image), None)
        }
        None => {
            if let Some(template) = &s.fs.template {
                crate::template::ensure(&s.directory, template, &interrupted)?;
            }
            super::check_tree(s)?;
            (None, lock_tree(s, &interrupted)?)
        }
    };
    failpoint::stage("reserve.tree", signals)?;
    let name = name::acquire(&s.machine, &interrupted)?;
    let mut held = Held {
        scope_dir: (mode == place::Mode::Scope)
            .then(|| cgroup::scope_dir(&s.machine, s.slice.as_deref()))
            .flatten(),
        control: None,
        net: None,
        userns: None,
        cgroup: None,
        name,
    };
    // The reaper before anything else is done, even before our line is in
    // the name's file or what a dead start of the name left is cleared
    // (which may wait for its container to die): from here on, a killed
    // runner's start is undone whatever instant it is killed at.
    let sweeps = mode.sweeps().then_some(s.slice.as_deref());
    let (reaper_pid, link) = match reaper::spawn(&held, sweeps) {
        Ok(r) => r,
        Err(e) => {
            if held.name.taken_over {
                held.clear_left();
            }
            drop(held);
            return Err(e);
        }
    };
    let mut t = Taking { held, reaper: link };
    let held = &mut t.held;
    held.name.claim()?;
    if held.name.taken_over {
        held.clear_left();
    }
    failpoint::stage("reserve.name", signals)?;
    // Its device program is attached by `wire`, while the container
    // process sets itself up: before its payload, off the start's path.
    held.cgroup = mode.prepare(s, &held.name, reaper_pid)?;
    failpoint::stage("reserve.cgroup", signals)?;
    interrupted()?;
    // The record first: taking it over from a killed start of our name
    // removes that start's links, which the check would take for a clash.
    if s.net.wants_veth() {
        held.net = Some(crate::net::record::reserve(&s.net, &s.machine)?);
    }
    let netns_path = crate::net::check(&s.net, &s.machine)?;
    failpoint::stage("reserve.net", signals)?;
    held.userns = userns::prepare(&s.userns, &s.directory, &s.machine, s.image.is_some())?;
    failpoint::stage("reserve.userns", signals)?;
    // An endpoint that cannot be made means /run/nspawn cannot take what
    // the start must still write there (its registry record): the start
    // fails here, in one line, rather than warn and fail later.
    held.control = Some(control::Endpoint::bind(&s.machine)?);
    failpoint::stage("reserve.control", signals)?;
    interrupted()?;
    let Taking { held, reaper } = t;
    let res = Reservation {
        held,
        netns_path,
        image,
        _tree: tree,
        _reaper: reaper,
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

fn lock_tree(s: &Settings, interrupted: &dyn Fn() -> Result<()>) -> Result<Option<TreeLock>> {
    match s.knobs.lock {
        true => crate::lock::lock_tree(&s.directory, !writes_tree(s), interrupted).map(Some),
        false => Ok(None),
    }
}
