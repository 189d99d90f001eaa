//! Where the container's processes live, and who is told of the machine.
//!
//! - No systemd on the host: our own cgroup, `machine.slice/machine-NAME.
//!   scope` (or `-S`'s slice), made by us; the registry alone knows it.
//! - systemd: the machine gets the reference's scope unit, made by
//!   systemd-machined (`CreateMachine`, registering it) or, with
//!   `--register=no` or without machined, by systemd (`StartTransientUnit`);
//!   `-S` and `--property=` go into it. The container runs in the scope's
//!   `payload` cgroup. The scope can only be made for a running process,
//!   so the container waits, before its cgroup namespace, until it is
//!   placed.
//! - systemd and `--keep-unit`: the caller's unit stays the container's,
//!   split into `payload` and `supervisor` (us); with registration the
//!   machine is registered in it (`RegisterMachine`).

use crate::cgroup::{self, Cgroup};
use crate::error::{Error, Result};
use crate::name::{Mark, NameLock};
use crate::settings::{RegisterMode, Settings};
use crate::systemd::{self, bus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Own,
    Scope,
    KeepUnit,
}

impl Mode {
    pub fn of(s: &Settings) -> Mode {
        let mode = match (systemd::running(), s.keep_unit) {
            (false, _) => Mode::Own,
            (true, false) => Mode::Scope,
            (true, true) => Mode::KeepUnit,
        };
        if !s.quiet {
            if mode == Mode::Own && !s.properties.is_empty() {
                eprintln!("nspawn: --property= has no effect without a service manager; ignoring.");
            }
            if mode == Mode::KeepUnit && (s.slice.is_some() || !s.properties.is_empty()) {
                eprintln!("nspawn: with --keep-unit the machine stays in the caller's unit; --slice= and --property= have no effect.");
            }
        }
        mode
    }

    /// Whether the reaper sweeps our slice of dead machines' cgroups:
    /// only without systemd, whose scopes the slice holds otherwise.
    pub fn sweeps(self) -> bool {
        self == Mode::Own
    }

    /// Before the container exists, with the name held: the cgroup it is
    /// cloned into, when it is known now (not for a scope, made around
    /// the running container). It is written down in the name's file
    /// before it is made, for the reaper (`reaper`, which leaves the
    /// caller's unit with us under `--keep-unit`).
    pub fn prepare(
        self,
        s: &Settings,
        name: &NameLock,
        reaper: libc::pid_t,
    ) -> Result<Option<Cgroup>> {
        if !name.inherited.is_empty() {
            // A start of this name whose runner and reaper were both
            // killed left a scope or a registration: ours to end.
            let scope = name.inherited.contains(&Mark::Scope);
            let registered = name.inherited.contains(&Mark::Registered);
            if let Some(d) = cgroup::scope_dir(&s.machine, s.slice.as_deref()) {
                cgroup::wait_empty_at(&d);
            }
            let _ = bus::end_machine(&s.machine, registered, scope);
        }
        match self {
            Mode::Scope => Ok(None),
            Mode::KeepUnit => match cgroup::split_own_unit(reaper)? {
                Some(unit) => {
                    name.note_cgroup(&unit.join("payload"), false)?;
                    let cg = Cgroup::payload(&unit)?;
                    cgroup::enable_controllers(&unit);
                    Ok(Some(cg))
                }
                None => own(s, name, true),
            },
            // The reaper sweeps the slice (`Mode::sweeps`).
            Mode::Own => own(s, name, false),
        }
    }

    /// Whether the container waits to be placed before its cgroup
    /// namespace is made.
    pub fn waits(self) -> bool {
        self == Mode::Scope
    }
}

/// The machine's own cgroup below its slice, written down first.
fn own(s: &Settings, name: &NameLock, sweep: bool) -> Result<Option<Cgroup>> {
    if let Some(path) = cgroup::own_path(&s.machine, s.slice.as_deref()) {
        name.note_cgroup(&path, true)?;
    }
    Cgroup::create(&s.machine, s.slice.as_deref(), sweep)
}

/// One run of the container placed with the service manager: its scope's
/// payload cgroup, and what machined and systemd were asked for. Undone
/// on drop, once the container is dead: the payload goes, machined
/// forgets the machine, and systemd collects the emptied scope before we
/// go on, so the name is free for the next start.
pub struct Placed<'a> {
    /// The scope's payload cgroup (scope mode only).
    pub cgroup: Option<Cgroup>,
    registered: bool,
    /// In a scope unit of systemd's.
    scope: bool,
    name: &'a NameLock,
    quiet: bool,
}

impl<'a> Placed<'a> {
    fn none(name: &'a NameLock, quiet: bool) -> Placed<'a> {
        Placed {
            cgroup: None,
            registered: false,
            scope: false,
            name,
            quiet,
        }
    }

    /// Write down in the name's file what is about to be made, so the
    /// reaper of a killed runner undoes it.
    fn mark(&self, mark: Mark) -> Result<()> {
        self.name.mark(mark, true)
    }
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.release() {
                eprintln!("nspawn: {e}");
            }
        }
        if self.registered || self.scope {
            let machine = self.name.machine();
            if let Err(e) = bus::end_machine(machine, self.registered, self.scope) {
                if !self.quiet {
                    eprintln!("nspawn: {e}");
                }
            }
        }
        let _ = self.name.mark(Mark::Scope, false);
        let _ = self.name.mark(Mark::Registered, false);
    }
}

/// Host paths bound into the machine that are device nodes, for the
/// scope's device policy (as the reference lists them).
fn bound_devices(s: &Settings) -> Vec<(String, String)> {
    use crate::mount::spec::{MountKind, Source};
    use std::os::unix::fs::FileTypeExt;
    s.fs.mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Bind {
                source: Source::Host(p),
                read_only,
                ..
            } => {
                let t = std::fs::metadata(p).ok()?.file_type();
                (t.is_char_device() || t.is_block_device()).then(|| {
                    let mode = if *read_only { "r" } else { "rw" };
                    (p.display().to_string(), mode.to_string())
                })
            }
            _ => None,
        })
        .collect()
}

/// Whether machined took the machine: without machined (not installed),
/// no (said in a line with `--register=yes`); an error from it stops the
/// start.
fn registered(s: &Settings, outcome: Result<(), bus::Failure>) -> Result<bool> {
    match outcome {
        Ok(()) => Ok(true),
        Err(bus::Failure::Unavailable(why)) => {
            if s.register == RegisterMode::Yes && !s.quiet {
                eprintln!("nspawn: not registered with systemd-machined ({why}); nspawnctl knows the machine.");
            }
            Ok(false)
        }
        Err(bus::Failure::Failed(why)) => {
            Err(Error::invalid(format!("Failed to register machine: {why}")))
        }
    }
}

/// Once the container runs and its machine id is known: make its scope
/// and register it, as the mode wants. `ifindex`: the host end of its
/// veth link, for machined.
pub fn place<'a>(
    mode: Mode,
    s: &Settings,
    name: &'a NameLock,
    leader: i32,
    id: crate::id128::Id128,
    ifindex: Option<i32>,
) -> Result<Placed<'a>> {
    let mut placed = Placed::none(name, s.quiet);
    if mode == Mode::Own {
        return Ok(placed);
    }
    let root = s.origin().display().to_string();
    let reg = bus::Registration {
        machine: &s.machine,
        id: id.0,
        service: &s.knobs.container_service,
        leader: leader as u32,
        root: &root,
        ifindices: ifindex.into_iter().collect(),
    };
    let wanted = s.register != RegisterMode::No;
    if mode == Mode::KeepUnit {
        if wanted {
            placed.mark(Mark::Registered)?;
            placed.registered = registered(s, bus::register_machine(&reg))?;
        }
        return Ok(placed);
    }
    let scope = bus::Scope {
        machine: &s.machine,
        leader: leader as u32,
        slice: s.slice.as_deref(),
        kill_signal: s.kill_signal(),
        devices: bound_devices(s),
        properties: &s.properties,
    };
    placed.mark(Mark::Scope)?;
    if wanted {
        placed.mark(Mark::Registered)?;
    }
    placed.registered = wanted && registered(s, bus::create_machine(&reg, &scope))?;
    if !placed.registered {
        match bus::start_scope(&scope) {
            Ok(()) => {}
            // systemd runs but cannot be reached (no system bus yet, or
            // none at all): a cgroup of our own, as without systemd.
            Err(bus::Failure::Unavailable(why)) => {
                if !s.quiet {
                    eprintln!(
                        "nspawn: no scope unit ({why}); the machine gets a cgroup of its own."
                    );
                }
                placed.cgroup = Cgroup::create(&s.machine, s.slice.as_deref(), true)?;
                if let Some(cg) = &placed.cgroup {
                    cg.attach(leader)?;
                }
                return Ok(placed);
            }
            Err(e) => return Err(Error::invalid(format!("Failed to allocate scope: {e}"))),
        }
    }
    placed.scope = true;
    // Pure cgroup v1 hosts: the scope is all there is.
    let Some(unit) = cgroup::of_process(&leader.to_string()) else {
        return Ok(placed);
    };
    let cg = Cgroup::payload(&unit)?;
    cgroup::enable_controllers(&unit);
    placed.cgroup = Some(cg);
    if let Some(cg) = &placed.cgroup {
        cg.attach(leader)?;
    }
    Ok(placed)
}
