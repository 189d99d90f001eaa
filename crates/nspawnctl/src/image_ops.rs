//! `clone`, `rename`, `remove`, `read-only`, `set-limit`, `clean`: the
//! verbs that change images. The work, and the lock that keeps them off an image a machine
//! runs from, is libnspawn::image::ops; this is arguments and messages.

use clap::Args;
use libnspawn::image::{ops, quota, store};

fn find(name: &str) -> Result<store::Image, String> {
    store::find(name).map_err(|e| e.to_string())
}

#[derive(Args)]
pub struct CloneArgs {
    #[arg(value_name = "NAME")]
    source: String,
    #[arg(value_name = "NEW")]
    new: String,
    /// Make the copy read-only
    #[arg(long = "read-only")]
    read_only: bool,
}

pub fn clone(a: CloneArgs) -> Result<i32, String> {
    let i = find(&a.source)?;
    ops::clone(&i, &a.new, a.read_only).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct RenameArgs {
    #[arg(value_name = "NAME")]
    name: String,
    #[arg(value_name = "NEW")]
    new: String,
}

pub fn rename(a: RenameArgs) -> Result<i32, String> {
    let i = find(&a.name)?;
    ops::rename(&i, &a.new).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct RemoveArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

pub fn remove(a: RemoveArgs) -> Result<i32, String> {
    // Every name is looked up before anything is removed.
    let images = a
        .names
        .iter()
        .map(|n| find(n))
        .collect::<Result<Vec<_>, _>>()?;
    for i in &images {
        ops::remove(i).map_err(|e| e.to_string())?;
    }
    Ok(0)
}

#[derive(Args)]
pub struct ReadOnlyArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// yes (the default) or no
    #[arg(value_name = "BOOL", value_parser = parse_bool)]
    read_only: Option<bool>,
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(format!("invalid boolean '{s}'")),
    }
}

pub fn read_only(a: ReadOnlyArgs) -> Result<i32, String> {
    let i = find(&a.name)?;
    ops::set_read_only(&i, a.read_only.unwrap_or(true)).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct SetLimitArgs {
    /// [NAME] BYTES: the image (without it, the pool) and its new limit,
    /// with a K, M, G, T, P or E suffix (powers of 1024), or - (none)
    #[arg(required = true, num_args = 1..=2, value_name = "[NAME] BYTES", allow_hyphen_values = true)]
    args: Vec<String>,
}

/// A size as systemd's `parse_size()` with base 1024: one or more numbers
/// (a fraction allowed) each with an optional unit, summed: `10G`,
/// `1.5M`, `1G 512M`, `4096`.
fn parse_size(s: &str) -> Option<u64> {
    const UNITS: [(char, u32); 7] = [
        ('E', 60),
        ('P', 50),
        ('T', 40),
        ('G', 30),
        ('M', 20),
        ('K', 10),
        ('B', 0),
    ];
    let mut rest = s.trim_start();
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, tail) = rest.split_at(int_end);
        let (frac, tail) = match tail.strip_prefix('.') {
            Some(t) => t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())),
            None => ("", tail),
        };
        if int.is_empty() {
            return None;
        }
        let tail = tail.trim_start();
        let (shift, tail) = match tail
            .chars()
            .next()
            .and_then(|c| UNITS.iter().find(|u| u.0 == c))
        {
            Some(&(c, shift)) => (shift, &tail[c.len_utf8()..]),
            None => (0, tail),
        };
        let unit = 1u64 << shift;
        let whole = int.parse::<u64>().ok()?.checked_mul(unit)?;
        let part = match frac.is_empty() {
            true => 0,
            false => {
                let digits = frac.len().min(18) as u32;
                let f: u64 = frac[..digits as usize].parse().ok()?;
                (u128::from(f) * u128::from(unit) / 10u128.pow(digits)) as u64
            }
        };
        total = total.checked_add(whole)?.checked_add(part)?;
        rest = tail.trim_start();
    }
    Some(total)
}

/// `set-limit [NAME] BYTES`: a btrfs quota limit on an image's subvolume,
/// or on the pool.
pub fn set_limit(a: SetLimitArgs) -> Result<i32, String> {
    let (name, size) = match a.args.as_slice() {
        [size] => (None, size),
        [name, size] => (Some(name), size),
        _ => unreachable!("clap takes one or two"),
    };
    let limit = match size.as_str() {
        "-" | "none" | "infinity" => None,
        s => Some(parse_size(s).ok_or_else(|| format!("Failed to parse size: {s}"))?),
    };
    match name {
        Some(n) => quota::set_image_limit(&find(n)?, limit),
        None => quota::set_pool_limit(limit).map(drop),
    }
    .map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct CleanArgs {
    /// Remove every image not in use, not only hidden ones
    #[arg(short, long)]
    all: bool,
}

/// Remove hidden images (with `--all`, all images) that no machine runs
/// from; vendor images and busy ones are left, as the reference does.
pub fn clean(a: CleanArgs) -> Result<i32, String> {
    let mut removed = 0;
    for i in store::list(true) {
        if i.vendor || !(a.all || store::is_hidden(&i.name)) {
            continue;
        }
        match i.lock().map_err(|e| e.to_string())? {
            None => {
                eprintln!("Skipping image '{}': in use.", i.name);
                continue;
            }
            // ops::remove takes the lock itself.
            Some(lock) => drop(lock),
        }
        match ops::remove(&i) {
            Ok(()) => {
                println!("Removed image '{}'.", i.name);
                removed += 1;
            }
            Err(e) => eprintln!("nspawnctl: {e}"),
        }
    }
    println!("Removed {removed} images in total.");
    let (n, bytes) = libnspawn::image::oci::collect_unused().map_err(|e| e.to_string())?;
    if n > 0 {
        println!(
            "Removed {n} OCI blobs (layers, configs) no image uses ({}).",
            crate::images::bytes(bytes)
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("10K"), Some(10 << 10));
        assert_eq!(parse_size("1.5M"), Some(3 << 19));
        assert_eq!(parse_size("1G 512M"), Some((1 << 30) + (512 << 20)));
        assert_eq!(parse_size("2 G"), Some(2 << 30));
        assert_eq!(parse_size("7B"), Some(7));
        for bad in ["", "-1", "G", "1X", "1.5.5M", "99999999999E"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
