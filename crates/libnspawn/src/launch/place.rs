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

use super::Held;
use crate::cgroup::{self, Cgroup};
use crate::error::{Error, Result};
use crate::registry;
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

    /// Before the container exists: the cgroup it is cloned into, when it
    /// is known now (not for a scope, made around the running container).
    pub fn prepare(self, s: &Settings) -> Result<Option<Cgroup>> {
        let scope = match self {
            Mode::Scope => cgroup::scope_dir(&s.machine, s.slice.as_deref()),
            _ => None,
        };
        if self != Mode::Own
            && wait_unless_running(&s.machine, scope.as_deref())?
            && scope.is_some()
        {
            // What the dead runner (and perhaps its reaper) left with
            // systemd: whoever removed its record, make sure machined and
            // systemd have let go of the name before we take it again.
            let _ = bus::end_machine(&s.machine, true, true);
        }
        match self {
            Mode::Scope => Ok(None),
            Mode::KeepUnit => match cgroup::split_own_unit()? {
                Some(unit) => {
                    let cg = Cgroup::payload(&unit, &s.machine)?;
                    cgroup::enable_controllers(&unit);
                    Ok(Some(cg))
                }
                None => Cgroup::create(&s.machine, s.slice.as_deref()),
            },
            Mode::Own => Cgroup::create(&s.machine, s.slice.as_deref()),
        }
    }

    /// Whether the container waits to be placed before its cgroup
    /// namespace is made.
    pub fn waits(self) -> bool {
        self == Mode::Scope
    }
}

/// The outcome of placing one run of the container.
pub struct Placed {
    /// The scope's payload cgroup (scope mode only).
    pub cgroup: Option<Cgroup>,
    registered: bool,
    /// In a scope unit of systemd's.
    scope: bool,
}

impl Placed {
    fn none() -> Placed {
        Placed {
            cgroup: None,
            registered: false,
            scope: false,
        }
    }

    /// After the container ended: the scope's payload goes, machined
    /// forgets the machine, and systemd collects the emptied scope before
    /// we return, so the name is free for the next start.
    pub fn end(self, s: &Settings) {
        if let Some(cg) = self.cgroup {
            cg.remove();
        }
        if self.registered || self.scope {
            if let Err(e) = bus::end_machine(&s.machine, self.registered, self.scope) {
                if !s.quiet {
                    eprintln!("nspawn: {e}");
                }
            }
        }
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
/// and register it, as the mode wants.
pub fn place(
    mode: Mode,
    s: &Settings,
    leader: i32,
    id: crate::id128::Id128,
    held: &Held,
) -> Result<Placed> {
    if mode == Mode::Own {
        return Ok(Placed::none());
    }
    let root = s.directory.display().to_string();
    let reg = bus::Registration {
        machine: &s.machine,
        id: id.0,
        service: &s.knobs.container_service,
        leader: leader as u32,
        root: &root,
        ifindices: held
            .record
            .and_then(|r| r.host_link.as_deref())
            .and_then(|l| nix::net::if_::if_nametoindex(l).ok())
            .map(|i| i as i32)
            .into_iter()
            .collect(),
    };
    let wanted = s.register != RegisterMode::No;
    if mode == Mode::KeepUnit {
        let registered = wanted && registered(s, bus::register_machine(&reg))?;
        return Ok(Placed {
            registered,
            ..Placed::none()
        });
    }
    let scope = bus::Scope {
        machine: &s.machine,
        leader: leader as u32,
        slice: s.slice.as_deref(),
        kill_signal: s.kill_signal(),
        devices: bound_devices(s),
        properties: &s.properties,
    };
    let registered = wanted && registered(s, bus::create_machine(&reg, &scope))?;
    if !registered {
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
                let Some(cg) = Cgroup::create(&s.machine, s.slice.as_deref())? else {
                    return Ok(Placed::none());
                };
                if let Err(e) = cg.attach(leader) {
                    cg.remove();
                    return Err(e);
                }
                return Ok(Placed {
                    cgroup: Some(cg),
                    ..Placed::none()
                });
            }
            Err(e) => return Err(Error::invalid(format!("Failed to allocate scope: {e}"))),
        }
    }
    let placed = Placed {
        cgroup: None,
        registered,
        scope: true,
    };
    // Pure cgroup v1 hosts: the scope is all there is.
    let Some(unit) = cgroup::of_process(&leader.to_string()) else {
        return Ok(placed);
    };
    let done = Cgroup::payload(&unit, &s.machine).and_then(|cg| {
        cg.attach(leader)?;
        cgroup::enable_controllers(&unit);
        Ok(cg)
    });
    // On failure the runner kills the container; machined and systemd
    // drop the emptied scope by themselves.
    Ok(Placed {
        cgroup: Some(done?),
        ..placed
    })
}

/// Refuse a running machine of this name. One whose runner has died is
/// given the time its reaper takes to clean up after it (the reaper
/// removes the record last); a record left by a runner and reaper both
/// killed is stale once that time has passed. Without a record, the
/// machine's `scope` still there is one whose runner died before it
/// published its record (or one still starting): waited for the same way.
/// True if a dying machine was found and is gone now, so that what it may
/// have left with machined and systemd can be cleared.
fn wait_unless_running(machine: &str, scope: Option<&std::path::Path>) -> Result<bool> {
    let deadline = std::time::Instant::now() + cgroup::DYING_WAIT;
    let mut dying = false;
    loop {
        match registry::read_record(machine) {
            None if !scope.is_some_and(|d| d.exists()) => return Ok(dying),
            Some(r) if registry::runner_alive(&r) => {
                return match registry::lookup(machine) {
                    Some(_) => Err(Error::invalid(format!(
                        "machine '{machine}' is already running"
                    ))),
                    None => Ok(false),
                }
            }
            _ => {}
        }
        dying = true;
        // Not ours to end, then (a machine of this name some other tool
        // runs, or one still starting): the start goes on and is told.
        if std::time::Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
