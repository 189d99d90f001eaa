//! `top`: CPU, memory, tasks and I/O per machine, from its cgroup, like
//! systemd-cgtop. Where the unified hierarchy has no memory or io
//! controller (hybrid hosts), memory and I/O are summed over the
//! machine's processes instead.

use crate::machine;
use clap::Args;
use libnspawn::registry::{self, Record};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct TopArgs {
    /// Print updates one after another instead of redrawing the screen
    #[arg(short, long)]
    batch: bool,
    /// Number of updates (default: forever, or 1 with JSON)
    #[arg(short = 'n', long = "iterations", value_name = "N")]
    iterations: Option<u64>,
    /// With JSON: a line of JSON per update until stopped (for a reader
    /// that streams, as the Cockpit page does), unless -n says how many
    #[arg(short = 'f', long)]
    follow: bool,
    /// Seconds between updates
    #[arg(short, long, default_value_t = 1.0)]
    delay: f64,
    /// Output format: text or json
    #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
    #[command(flatten)]
    json: crate::table::JsonArg,
}

#[derive(Clone, Copy, Default)]
struct Sample {
    cpu_usec: u64,
    read: u64,
    written: u64,
}

struct Row {
    name: String,
    tasks: usize,
    cpu: Option<f64>,
    memory: u64,
    read_rate: Option<f64>,
    write_rate: Option<f64>,
}

impl Row {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "machine": self.name, "tasks": self.tasks, "cpu_percent": self.cpu,
            "memory_bytes": self.memory, "read_bytes_per_second": self.read_rate,
            "write_bytes_per_second": self.write_rate,
        })
    }
}

fn read_kv(p: &Path, key: &str) -> Option<u64> {
    // The first number after the key ("VmRSS:   1234 kB", "usage_usec 99").
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

fn sample(r: &Record) -> (Sample, usize, u64) {
    let procs = match &r.cgroup {
        Some(cg) => machine::processes(cg),
        None => vec![r.leader],
    };
    let cpu_usec = r
        .cgroup
        .as_ref()
        .and_then(|cg| read_kv(&cg.join("cpu.stat"), "usage_usec "))
        .unwrap_or(0);
    let memory = r
        .cgroup
        .as_ref()
        .and_then(|cg| std::fs::read_to_string(cg.join("memory.current")).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            procs
                .iter()
                .filter_map(|p| {
                    read_kv(Path::new(&format!("/proc/{p}/status")), "VmRSS:").map(|kb| kb * 1024)
                })
                .sum()
        });
    let (mut read, mut written) = (0, 0);
    for p in &procs {
        let io = Path::new("/proc").join(p.to_string()).join("io");
        read += read_kv(&io, "rchar: ").unwrap_or(0);
        written += read_kv(&io, "wchar: ").unwrap_or(0);
    }
    (
        Sample {
            cpu_usec,
            read,
            written,
        },
        procs.len(),
        memory,
    )
}

fn human(bytes: f64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0}{}", units[i])
    } else {
        format!("{v:.1}{}", units[i])
    }
}

pub fn top(a: TopArgs) -> Result<i32, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("Need to be root.".into());
    }
    if a.delay.is_nan() || a.delay <= 0.0 {
        return Err("--delay must be positive".into());
    }
    let mode = a.json.mode(&a.output);
    let json = mode != crate::table::Json::Off;
    let iterations = a
        .iterations
        .unwrap_or(if json && !a.follow { 1 } else { u64::MAX });
    let mut last: HashMap<String, (Sample, Instant)> = HashMap::new();
    // A first sample so the first update can show rates.
    for r in registry::list() {
        last.insert(r.name.clone(), (sample(&r).0, Instant::now()));
    }
    for i in 0..iterations {
        std::thread::sleep(Duration::from_secs_f64(a.delay));
        let mut rows = vec![];
        for r in registry::list() {
            let (s, tasks, memory) = sample(&r);
            let now = Instant::now();
            let (cpu, rr, wr) = match last.get(&r.name) {
                Some((p, t)) => {
                    let dt = now.duration_since(*t).as_secs_f64().max(1e-6);
                    (
                        r.cgroup.as_ref().map(|_| {
                            s.cpu_usec.saturating_sub(p.cpu_usec) as f64 / 1e6 / dt * 100.0
                        }),
                        Some(s.read.saturating_sub(p.read) as f64 / dt),
                        Some(s.written.saturating_sub(p.written) as f64 / dt),
                    )
                }
                None => (None, None, None),
            };
            last.insert(r.name.clone(), (s, now));
            rows.push(Row {
                name: r.name.clone(),
                tasks,
                cpu,
                memory,
                read_rate: rr,
                write_rate: wr,
            });
        }
        if json {
            // One document per update; stdout is line-buffered, so a
            // reader of a pipe gets each update as it is printed.
            let v = serde_json::Value::Array(rows.iter().map(Row::to_json).collect());
            crate::table::print_json_mode(&v, mode)?;
            continue;
        }
        if !a.batch {
            print!("\x1b[H\x1b[2J");
        } else if i > 0 {
            println!();
        }
        println!(
            "{:<32} {:>6} {:>7} {:>9} {:>9} {:>9}",
            "Machine", "Tasks", "%CPU", "Memory", "Input/s", "Output/s"
        );
        let dash =
            |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
        for r in &rows {
            println!(
                "{:<32} {:>6} {:>7} {:>9} {:>9} {:>9}",
                r.name,
                r.tasks,
                dash(r.cpu, &|c| format!("{c:.1}")),
                human(r.memory as f64),
                dash(r.read_rate, &|v| human(v)),
                dash(r.write_rate, &|v| human(v)),
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::Row;

    #[test]
    fn a_row_as_json() {
        let r = Row {
            name: "m".into(),
            tasks: 3,
            cpu: Some(12.5),
            memory: 4096,
            read_rate: None,
            write_rate: Some(1.0),
        };
        let v = r.to_json();
        assert_eq!(v["machine"], "m");
        assert_eq!(v["tasks"], 3);
        assert_eq!(v["cpu_percent"], 12.5);
        assert_eq!(v["memory_bytes"], 4096);
        assert!(v["read_bytes_per_second"].is_null());
        assert_eq!(v["write_bytes_per_second"], 1.0);
    }
}
