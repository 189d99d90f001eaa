//! `list-images`, `image-status`, `show-image`: what the image store
//! (libnspawn::image) finds, printed as machinectl prints it.

use clap::Args;
use libnspawn::image::{quota, store, Image, Kind};
use std::os::fd::AsFd;

/// `list-images` takes `list`'s arguments (`--all`: hidden images too).
pub use crate::status::ListArgs;

/// Bytes as systemd's `format_bytes()`: powers of 1024, one decimal,
/// truncated the way it truncates (the decimal from whole KiB).
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("E", 1 << 60),
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (i, (s, f)) in UNITS.iter().enumerate() {
        if n >= *f {
            let tenth = match UNITS.get(i + 1) {
                Some((_, next)) => n / next * 10 / 1024 % 10,
                None => n * 10 / f % 10,
            };
            return format!("{}.{tenth}{s}", n / f);
        }
    }
    format!("{n}B")
}

/// A time as systemd's `format_timestamp()`: `Tue 2026-12-01 14:00:00 UTC`
/// in the local time zone.
pub fn timestamp(usec: u64) -> String {
    let t = (usec / 1_000_000) as libc::time_t;
    // SAFETY: localtime_r and strftime write only into the buffers given.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "-".into();
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %Y-%m-%d %H:%M:%S %Z".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn opt_bytes(n: Option<u64>) -> String {
    n.map(bytes).unwrap_or_else(|| "-".into())
}

fn opt_time(t: Option<u64>) -> String {
    t.map(timestamp).unwrap_or_else(|| "-".into())
}

pub fn list(a: ListArgs) -> Result<i32, String> {
    let images = store::list(a.all);
    let usages: Vec<Option<u64>> = images.iter().map(Image::usage).collect();
    let mode = a.json.mode(&a.output);
    if mode != crate::table::Json::Off {
        let v: Vec<serde_json::Value> = images
            .iter()
            .zip(&usages)
            .map(|(i, u)| {
                let mut v = serde_json::json!({
                    "name": i.name,
                    "type": i.kind.as_str(),
                    "ro": i.read_only,
                    "usage": u,
                    "created": i.created_usec,
                    "modified": i.modified_usec,
                    // Beyond machinectl: whether `enable` linked it to start at boot.
                    "enabled": crate::units::is_enabled(&i.name),
                });
                // Beyond machinectl: where an OCI image came from.
                if let Some(m) = libnspawn::image::oci::metadata(i) {
                    v["source"] = m["source"].clone();
                    v["digest"] = m["digest"].clone();
                }
                v
            })
            .collect();
        crate::table::print_json_mode(&serde_json::Value::Array(v), mode)?;
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = images
        .iter()
        .zip(&usages)
        .map(|(i, u)| {
            [
                i.name.clone(),
                i.kind.as_str().into(),
                if i.read_only { "yes" } else { "no" }.into(),
                opt_bytes(*u),
                opt_time(i.created_usec),
                opt_time(i.modified_usec),
            ]
        })
        .collect();
    if rows.is_empty() {
        if !a.no_legend {
            println!("No images.");
        }
        return Ok(0);
    }
    crate::table::print(
        ["NAME", "TYPE", "RO", "USAGE", "CREATED", "MODIFIED"],
        &rows,
        a.no_legend,
        "images",
    );
    Ok(0)
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

/// What the image says about itself: os-release, host name, machine id,
/// each read inside the tree (libnspawn::inroot), never through a path
/// that a symlink in the image could lead out of it.
struct Inside {
    os: Vec<(String, String)>,
    hostname: Option<String>,
    machine_id: Option<String>,
}

fn inside(i: &Image) -> Inside {
    let mut out = Inside {
        os: vec![],
        hostname: None,
        machine_id: None,
    };
    if !i.kind.is_tree() {
        return out;
    }
    let Ok(root) = nix::fcntl::open(
        &i.path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return out;
    };
    let read = |p: &str| {
        libnspawn::inroot::read_file(root.as_fd(), p)
            .ok()
            .flatten()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    };
    if let Some(d) = read("/etc/os-release").or_else(|| read("/usr/lib/os-release")) {
        out.os = libnspawn::env::parse_os_release(&d);
    }
    let first_line = |s: String| {
        let l = s.lines().next().unwrap_or("").trim().to_string();
        (!l.is_empty()).then_some(l)
    };
    out.hostname = read("/etc/hostname").and_then(first_line);
    out.machine_id = read("/etc/machine-id").and_then(first_line);
    out
}

/// The images of `names`, all found before anything is shown.
fn find_all(names: &[String]) -> Result<Vec<store::Image>, String> {
    names
        .iter()
        .map(|n| store::find(n).map_err(|e| e.to_string()))
        .collect()
}

pub fn status(a: StatusArgs) -> Result<i32, String> {
    let images = find_all(&a.names)?;
    for (n, i) in images.iter().enumerate() {
        if n > 0 {
            println!();
        }
        let inside = inside(i);
        println!("{}", i.name);
        println!("\t    Type: {}", i.kind.as_str());
        println!("\t    Path: {}", i.path.display());
        if let Some(h) = &inside.hostname {
            println!("\tHostname: {}", crate::table::printable(h));
        }
        if let Some(m) = &inside.machine_id {
            println!("\tMachine ID: {}", crate::table::printable(m));
        }
        if let Some((_, os)) = inside.os.iter().find(|(k, _)| k == "PRETTY_NAME") {
            println!("\t      OS: {}", crate::table::printable(os));
        }
        println!(
            "\t      RO: {}",
            if i.read_only { "read-only" } else { "writable" }
        );
        // "DATE; N ago", as machinectl's.
        let when = |t| format!("{}; {}", timestamp(t), crate::status::since(t));
        if let Some(t) = i.created_usec {
            println!("\t Created: {}", when(t));
        }
        if let Some(t) = i.modified_usec {
            println!("\tModified: {}", when(t));
        }
        // As machinectl: the exclusive part only where it differs.
        let [usage, limit, usage_excl, limit_excl] = sizes(i);
        for (label, n, excl) in [("Usage", usage, usage_excl), ("Limit", limit, limit_excl)] {
            match (n, excl) {
                (Some(n), Some(e)) if e != n => {
                    println!("\t   {label}: {} (exclusive: {})", bytes(n), bytes(e))
                }
                (Some(n), _) => println!("\t   {label}: {}", bytes(n)),
                (None, _) => {}
            }
        }
        if let Some(f) = libnspawn::nspawnfile::find(&i.name, &i.path) {
            println!(
                "\tSettings: {}{}",
                f.path.display(),
                if f.trusted { "" } else { " (untrusted)" }
            );
        }
        if let Some(m) = libnspawn::image::oci::metadata(i) {
            let field = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
            println!("\t  Source: {}", crate::table::printable(&field("source")));
            println!("\t  Digest: {}", crate::table::printable(&field("digest")));
        }
        if matches!(i.kind, Kind::Raw | Kind::Block) {
            partitions(i);
        }
    }
    Ok(0)
}

/// A disk image's file systems as `nspawn -i` would mount them, one line
/// each: number, designator, type, size, flags, label.
fn partitions(i: &Image) {
    let layout = match libnspawn::disk::dissect::inspect(&i.path) {
        Ok(l) => l,
        Err(e) => return println!("\tPartitions: {e}"),
    };
    for (n, p) in layout.parts.iter().enumerate() {
        let number = p.number.map_or("-".into(), |n| n.to_string());
        println!(
            "\t{}{number} {} {} {}{}{}",
            if n == 0 {
                "Partitions: "
            } else {
                "            "
            },
            p.designator.name(),
            p.fstype.name(),
            bytes(p.size),
            if p.read_only { " read-only" } else { "" },
            if p.label.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", crate::table::printable(&p.label))
            },
        );
    }
    for v in &layout.verity {
        println!(
            "\t            {} (partition {}, {}; dm-verity)",
            v.designator.name(),
            v.number,
            bytes(v.size)
        );
    }
}

/// `show-image` takes `show`'s arguments.
pub use crate::status::ShowArgs;

/// `Usage`, `Limit`, `UsageExclusive`, `LimitExclusive` as the reference
/// has them: from the quota groups of a subvolume when quotas are on, the
/// blocks and length of a raw file, else the usage `du` counts (all of it
/// the image's own) and no limit.
fn sizes(i: &Image) -> [Option<u64>; 4] {
    if i.kind == Kind::Subvolume {
        if let Some(q) = quota::usage(&i.path) {
            return [
                Some(q.referenced),
                q.referenced_max,
                Some(q.exclusive),
                q.exclusive_max,
            ];
        }
    }
    let usage = i.usage();
    let limit = match i.kind {
        Kind::Raw => std::fs::metadata(&i.path).ok().map(|m| m.len()),
        _ => None,
    };
    [usage, limit, usage, limit]
}

fn properties(i: &Image) -> Vec<(&'static str, String)> {
    // Unknown usage is UINT64_MAX, an unknown limit "infinity", as
    // machinectl prints them.
    let [usage, limit, usage_excl, limit_excl] = sizes(i);
    let usage_of = |n: Option<u64>| n.unwrap_or(u64::MAX).to_string();
    let limit_of = |n: Option<u64>| n.map_or_else(|| "infinity".to_string(), |n| n.to_string());
    vec![
        ("Name", i.name.clone()),
        ("Path", i.path.display().to_string()),
        ("Type", i.kind.as_str().into()),
        ("ReadOnly", if i.read_only { "yes" } else { "no" }.into()),
        ("CreationTimestamp", opt_time(i.created_usec)),
        ("ModificationTimestamp", opt_time(i.modified_usec)),
        ("Usage", usage_of(usage)),
        ("Limit", limit_of(limit)),
        ("UsageExclusive", usage_of(usage_excl)),
        ("LimitExclusive", limit_of(limit_excl)),
    ]
}

pub fn show(a: ShowArgs) -> Result<i32, String> {
    let images = find_all(&a.names)?;
    for (n, i) in images.iter().enumerate() {
        if n > 0 {
            println!();
        }
        crate::table::print_properties(&properties(i), &a.property, a.value);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(4096), "4.0K");
        assert_eq!(bytes(1_258_291), "1.1M");
        assert_eq!(bytes(1_300_000), "1.2M");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(3 << 30), "3.0G");
    }
}
