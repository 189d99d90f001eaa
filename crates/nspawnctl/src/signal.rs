//! `poweroff`, `reboot`, `terminate`, `kill`: signals to a machine, as
//! machinectl sends them (systemd's init answers SIGRTMIN+4 by powering
//! off and SIGINT by rebooting).

use crate::machine;
use clap::Args;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

fn to_leaders(names: &[String], sig: i32) -> Result<i32, String> {
    for n in names {
        let r = machine::get(n)?;
        machine::send(&machine::leader(&r)?, sig)?;
    }
    Ok(0)
}

pub fn poweroff(a: NamesArgs) -> Result<i32, String> {
    to_leaders(&a.names, libc::SIGRTMIN() + 4)
}

pub fn reboot(a: NamesArgs) -> Result<i32, String> {
    to_leaders(&a.names, libc::SIGINT)
}

/// Kill the leader: the kernel ends the whole PID namespace, the runner
/// sees its container end and cleans up; wait until it has.
pub fn terminate(a: NamesArgs) -> Result<i32, String> {
    for n in &a.names {
        let r = machine::get(n)?;
        // Through the runner's endpoint: it kills the machine, cleans up
        // and exits, and we return once it has.
        if let Some(c) = &r.control {
            if libnspawn::control::terminate(c, r.runner, Duration::from_secs(10)).is_ok() {
                continue;
            }
        }
        machine::send(&machine::leader(&r)?, libc::SIGKILL)?;
        let end = Instant::now() + Duration::from_secs(10);
        while libnspawn::registry::get(n).is_ok() {
            if Instant::now() > end {
                return Err(format!("Machine {n} did not end in time."));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct KillArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Signal to send (name or number)
    #[arg(short = 's', long, default_value = "SIGTERM", value_parser = parse_signal)]
    signal: i32,
    /// Whom to signal: leader or all
    #[arg(long = "kill-whom", default_value = "all", value_parser = ["leader", "all"])]
    kill_whom: String,
}

fn parse_signal(s: &str) -> Result<i32, String> {
    libnspawn::settings::parse_signal(s).map_err(|e| e.to_string())
}

pub fn kill(a: KillArgs) -> Result<i32, String> {
    for n in &a.names {
        let r = machine::get(n)?;
        let leader = machine::leader(&r)?;
        match &r.cgroup {
            Some(cg) if a.kill_whom == "all" => {
                for pid in machine::processes(cg) {
                    // Each process by a pidfd taken while it is in the
                    // machine's cgroup: one that ended or left meanwhile
                    // is skipped, and a recycled PID is never signalled.
                    if let Some(fd) = machine::member(pid, cg) {
                        let _ = machine::send(&fd, a.signal);
                    }
                }
            }
            // Without a cgroup to find them by, the leader is all we know.
            _ => machine::send(&leader, a.signal)?,
        }
    }
    Ok(0)
}
