//! `list`, `status`, `show`.

use crate::table::{printable, Json, JsonArg};
use crate::{cgtree, machine};
use clap::Args;
use libnspawn::registry::{self, Record};
use std::path::Path;

#[derive(Args)]
pub struct ListArgs {
    /// Show all: hidden images too (for machines accepted, as machinectl)
    #[arg(short, long)]
    pub all: bool,
    /// Do not print the header and footer
    #[arg(long = "no-legend")]
    pub no_legend: bool,
    /// Output format: text, json or json-pretty (as --json=short|pretty)
    #[arg(short, long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json", "json-pretty"])]
    pub output: String,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn list(a: ListArgs) -> Result<i32, String> {
    let _ = a.all;
    let machines = registry::list();
    let mode = a.json.mode(&a.output);
    if mode != Json::Off {
        let v: Vec<serde_json::Value> = machines
            .iter()
            .map(|r| {
                let os = machine::os_release(r);
                serde_json::json!({
                    "machine": r.name,
                    "class": r.class,
                    "service": r.service,
                    "os": machine::os_value(&os, "ID"),
                    "version": machine::os_value(&os, "VERSION_ID"),
                    // null, not [], when there are none, as machinectl's.
                    "addresses": (!r.addresses.is_empty()).then_some(&r.addresses),
                })
            })
            .collect();
        crate::table::print_json_mode(&serde_json::Value::Array(v), mode)?;
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = machines
        .iter()
        .map(|r| {
            let os = machine::os_release(r);
            [
                r.name.clone(),
                r.class.clone(),
                r.service.clone(),
                printable(&machine::os_value(&os, "ID")),
                printable(&machine::os_value(&os, "VERSION_ID")),
                if r.addresses.is_empty() {
                    "-".into()
                } else {
                    r.addresses.join(" ")
                },
            ]
        })
        .collect();
    crate::table::print(
        ["MACHINE", "CLASS", "SERVICE", "OS", "VERSION", "ADDRESSES"],
        &rows,
        a.no_legend,
        "machines",
    );
    Ok(0)
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Journal lines to show
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
    /// All the machines as one JSON array, an object each. Not `-o json`:
    /// machinectl's `-o` names the journal's output mode here.
    #[command(flatten)]
    json: JsonArg,
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The machine's unit: its cgroup, or the one above its `payload`.
pub(crate) fn unit_dir(cgroup: &Path) -> &Path {
    match cgroup.file_name() {
        Some(n) if n == "payload" => cgroup.parent().unwrap_or(cgroup),
        _ => cgroup,
    }
}

/// How long ago `usec` was, roughly as systemd words it.
pub(crate) fn since(usec: u64) -> String {
    let secs = registry::now_usec().saturating_sub(usec) / 1_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}min ago")
    } else if m > 0 {
        format!("{m}min {s}s ago")
    } else {
        format!("{s}s ago")
    }
}

/// The last `n` lines of the machine's journal, where it is linked to the
/// host's /var/log/journal.
fn journal(r: &Record, n: usize) -> Vec<String> {
    let journal = Path::new("/var/log/journal").join(&r.id);
    if !journal.exists() {
        return vec![];
    }
    std::process::Command::new("journalctl")
        .args(["--no-pager", "-q", "-n", &n.to_string(), "-D"])
        .arg(&journal)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The machine's state as its runner answers, else as its record says.
fn state(r: &Record) -> String {
    r.control
        .as_ref()
        .and_then(|c| libnspawn::control::state(c, r.runner).ok())
        .unwrap_or_else(|| r.state.clone())
}

pub fn status(a: StatusArgs) -> Result<i32, String> {
    let mode = a.json.mode("text");
    if mode != Json::Off {
        let mut all = vec![];
        for name in &a.names {
            let r = machine::get(name)?;
            let tree = r.cgroup.as_deref().map(|c| cgtree::read(unit_dir(c)));
            all.push(crate::status_json::machine(
                &r,
                &machine::os_release(&r),
                &state(&r),
                &comm(r.leader),
                tree.as_ref(),
                &journal(&r, a.lines),
            ));
        }
        crate::table::print_json_mode(&serde_json::Value::Array(all), mode)?;
        return Ok(0);
    }
    for (i, name) in a.names.iter().enumerate() {
        let r = machine::get(name)?;
        if i > 0 {
            println!();
        }
        let os = machine::os_release(&r);
        // machinectl's layout: a tab, then each label right-aligned.
        println!("{}({})", r.name, r.id);
        println!(
            "\t   Since: {}; {}",
            crate::images::timestamp(r.started_usec),
            since(r.started_usec)
        );
        println!("\t  Leader: {} ({})", r.leader, printable(&comm(r.leader)));
        println!("\t Service: {}; class {}", r.service, r.class);
        println!("\t    Root: {}", r.root.display());
        if !r.interfaces.is_empty() {
            println!("\t   Iface: {}", r.interfaces.join(" "));
        }
        if !r.addresses.is_empty() {
            println!("\t Address: {}", r.addresses.join("\n\t          "));
        }
        println!(
            "\t      OS: {}",
            printable(&machine::os_value(&os, "PRETTY_NAME"))
        );
        if let Some(unit) = r.cgroup.as_deref().map(unit_dir) {
            println!(
                "\t    Unit: {}",
                unit.file_name().unwrap_or_default().to_string_lossy()
            );
            let mut tree = vec![];
            cgtree::read(unit).draw("\t\t  ", &mut tree);
            for l in tree {
                println!("{l}");
            }
        }
        let lines = journal(&r, a.lines);
        if !lines.is_empty() {
            println!();
            for l in lines {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct ShowArgs {
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Show only these properties
    #[arg(short = 'p', long = "property", value_name = "NAME", action = clap::ArgAction::Append)]
    pub property: Vec<String>,
    /// Print only the values
    #[arg(long)]
    pub value: bool,
}

/// The leader's start in CLOCK_MONOTONIC microseconds, near enough: its
/// start time counts clock ticks from boot (proc(5), field 22).
fn monotonic_usec(r: &Record) -> Option<u64> {
    let ticks = r.starts.leader.as_ref()?.ticks;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks * 1_000_000 / hz as u64)
}

/// As machinectl's `show`: timestamps as text and in microseconds, empty
/// lists left out.
fn properties(r: &Record) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("Name", r.name.clone()),
        ("Id", r.id.clone()),
        ("Timestamp", crate::images::timestamp(r.started_usec)),
        (
            "TimestampMonotonic",
            monotonic_usec(r).unwrap_or(0).to_string(),
        ),
        ("Service", r.service.clone()),
        (
            "Unit",
            r.cgroup
                .as_deref()
                .map(unit_dir)
                .and_then(|c| c.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        ("Leader", r.leader.to_string()),
        ("Class", r.class.clone()),
        ("RootDirectory", r.root.display().to_string()),
        ("NetworkInterfaces", r.interfaces.join(" ")),
        // Asked of the runner, where it offers an endpoint.
        ("State", state(r)),
    ];
    props.retain(|(k, v)| *k != "NetworkInterfaces" || !v.is_empty());
    props
}

pub fn show(a: ShowArgs) -> Result<i32, String> {
    for (i, name) in a.names.iter().enumerate() {
        let r = machine::get(name)?;
        if i > 0 {
            println!();
        }
        crate::table::print_properties(&properties(&r), &a.property, a.value);
    }
    Ok(0)
}
