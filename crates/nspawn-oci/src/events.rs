//! `events`: the container's resource usage read from its cgroups, as
//! runc prints it — one JSON object a line, `{"type":"stats","id":ID,
//! "data":{...}}` — once with `--stats`, else every `--interval` until
//! the container stops. The fields are runc's (`cpu.usage` in
//! nanoseconds, `memory.usage`, `pids`), read from v1 or v2 files.
//! runc's `oom` events are not reported.

use crate::cgroups::{Cgroups, Hier};
use crate::state;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// `5s`, `100ms`, `1m`, `1h`, or plain seconds (Go's durations runc takes).
pub fn parse_interval(s: &str) -> Result<Duration> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let Ok(n) = n.parse::<f64>() else {
        bail!("--interval {s:?}: not a duration");
    };
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("--interval {s:?}: unknown unit {unit:?}"),
    };
    if secs <= 0.0 {
        bail!("--interval {s:?}: must be above 0");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn read(h: &Hier, file: &str) -> Option<String> {
    std::fs::read_to_string(h.dir.join(file)).ok()
}

fn num(h: &Hier, file: &str) -> Option<u64> {
    read(h, file)?.trim().parse().ok()
}

/// `KEY VALUE` lines (`memory.stat`, `cpu.stat`) as an object.
fn flat_keyed(h: &Hier, file: &str) -> serde_json::Map<String, Value> {
    read(h, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse::<u64>().ok()?.into()))
        })
        .collect()
}

fn cpu(c: &Cgroups) -> Value {
    if let Some(h) = c.with("cpuacct").filter(|h| !h.v2) {
        let percpu: Vec<u64> = read(h, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
        let stat = flat_keyed(h, "cpuacct.stat");
        let ticks = |k: &str| stat.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
        return json!({"usage": {
            "total": num(h, "cpuacct.usage").unwrap_or(0),
            "percpu": percpu,
            "kernel": ticks("system"),
            "user": ticks("user"),
        }});
    }
    match c.hiers.iter().find(|h| h.v2) {
        Some(h) => {
            let stat = flat_keyed(h, "cpu.stat");
            let usec = |k: &str| stat.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
            json!({"usage": {
                "total": usec("usage_usec"),
                "kernel": usec("system_usec"),
                "user": usec("user_usec"),
            }})
        }
        None => json!({}),
    }
}

fn memory(c: &Cgroups) -> Value {
    let Some(h) = c.with("memory") else {
        return json!({});
    };
    if h.v2 {
        let limit = read(h, "memory.max")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        return json!({
            "usage": {"usage": num(h, "memory.current").unwrap_or(0), "limit": limit,
                      "max": num(h, "memory.peak").unwrap_or(0)},
            "raw": flat_keyed(h, "memory.stat"),
        });
    }
    let stats = flat_keyed(h, "memory.stat");
    json!({
        "cache": stats.get("cache").cloned().unwrap_or(0.into()),
        "usage": {
            "usage": num(h, "memory.usage_in_bytes").unwrap_or(0),
            "max": num(h, "memory.max_usage_in_bytes").unwrap_or(0),
            "limit": num(h, "memory.limit_in_bytes").unwrap_or(u64::MAX),
            "failcnt": num(h, "memory.failcnt").unwrap_or(0),
        },
        "raw": stats,
    })
}

fn pids(c: &Cgroups) -> Value {
    let Some(h) = c.with("pids") else {
        return json!({});
    };
    let limit = read(h, "pids.max")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    json!({"current": num(h, "pids.current").unwrap_or(0), "limit": limit})
}

fn stats(id: &str, c: &Cgroups) -> Value {
    json!({"type": "stats", "id": id, "data": {
        "cpu": cpu(c), "memory": memory(c), "pids": pids(c),
    }})
}

pub fn events(root: &Path, id: &str, once: bool, interval: Duration) -> Result<()> {
    // The record read once, its lock let go: `events` may run for long.
    let (st, running) = {
        let dir = state::open(root, id)?;
        let st = dir.read()?;
        let status = state::status(&dir, &st);
        (st, status)
    };
    if running == "stopped" {
        bail!("container {id} is not running");
    }
    let cgroups = Cgroups::from_state(&st);
    loop {
        println!("{}", stats(id, &cgroups));
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
        let dir = match state::open(root, id) {
            Ok(d) => d,
            // Deleted meanwhile: nothing more to report.
            Err(_) => return Ok(()),
        };
        if state::status(&dir, &dir.read()?) == "stopped" {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("1m").unwrap(), Duration::from_secs(60));
        for bad in ["", "s", "0s", "5x", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
