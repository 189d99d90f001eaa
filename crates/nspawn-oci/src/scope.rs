//! `--systemd-cgroup` on a host whose init is systemd (sd_booted(3)):
//! as runc and crun, the container's cgroup is a transient scope unit
//! that systemd makes around the container process (`StartTransientUnit`,
//! `Delegate=yes`), and `delete` stops it. The limits and the device
//! program are still ours, written into the scope's cgroup. Without
//! systemd as init the path is made directly (`cgroups.rs`). The D-Bus
//! calls are libnspawn's (`systemd::bus`): a forked helper makes them,
//! so `create` stays single-threaded around its `clone3`.

use anyhow::{anyhow, Result};
use std::cell::Cell;

/// The scope a container of this `cgroupsPath` is placed in.
pub struct Scope {
    unit: String,
    slice: String,
    /// Whether systemd made it for us: only then is it ours to stop.
    started: Cell<bool>,
}

impl Scope {
    /// With `--systemd-cgroup`, where systemd runs: the unit of runc's
    /// `slice:prefix:name`. Without either, none (no D-Bus at all).
    pub fn plan(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Option<Scope>> {
        if !systemd || !libnspawn::systemd::running() {
            return Ok(None);
        }
        let (slice, unit) = crate::cgroups::systemd_unit(cgroups_path, id)?;
        if !unit.ends_with(".scope") {
            anyhow::bail!("cgroupsPath: {unit} as the container's own unit is not supported");
        }
        Ok(Some(Scope {
            unit,
            slice,
            started: Cell::new(false),
        }))
    }

    /// Make the scope around `pid` (the container process, waiting to
    /// be placed) and wait until systemd has moved it there.
    pub fn start(&self, pid: i32, id: &str) -> Result<()> {
        libnspawn::systemd::bus::start_delegated_scope(
            &self.unit,
            &self.slice,
            pid as u32,
            &format!("nspawn-oci container {id}"),
        )
        .map_err(|e| anyhow!("{e}"))?;
        self.started.set(true);
        Ok(())
    }

    /// The unit, once started by `start`.
    pub fn started(&self) -> Option<String> {
        self.started.get().then(|| self.unit.clone())
    }
}

/// Stop the unit, if it is still there, and wait until it is gone.
pub fn stop(unit: &str) -> Result<()> {
    libnspawn::systemd::bus::stop_unit(unit).map_err(|e| anyhow!("cannot stop {unit}: {e}"))
}
