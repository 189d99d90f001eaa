//! `linux.resources.blockIO` and `hugepageLimits`, written where the
//! controller is: v1 `blkio` (throttling per device; a weight where the
//! kernel's scheduler has the file) or v2 `io` (`io.max`, `io.weight`),
//! and `hugetlb` (v1 `hugetlb.SIZE.limit_in_bytes`, v2 `hugetlb.SIZE.max`).
//! A limit asked for that no controller or file here can hold is an
//! error naming it: a container must not run believing it is limited.

use crate::cgroups::{write, Cgroups};
use anyhow::{bail, Result};
use serde_json::Value;

/// (runtime-spec key, v1 file, v2 `io.max` key)
const THROTTLES: &[(&str, &str, &str)] = &[
    (
        "throttleReadBpsDevice",
        "blkio.throttle.read_bps_device",
        "rbps",
    ),
    (
        "throttleWriteBpsDevice",
        "blkio.throttle.write_bps_device",
        "wbps",
    ),
    (
        "throttleReadIOPSDevice",
        "blkio.throttle.read_iops_device",
        "riops",
    ),
    (
        "throttleWriteIOPSDevice",
        "blkio.throttle.write_iops_device",
        "wiops",
    ),
];

/// `major:minor` of a device entry, with its JSON path in errors.
fn device(d: &Value, at: &str) -> Result<String> {
    match (d["major"].as_u64(), d["minor"].as_u64()) {
        (Some(ma), Some(mi)) => Ok(format!("{ma}:{mi}")),
        _ => bail!("{at}: major and minor are required"),
    }
}

pub fn apply(c: &Cgroups, r: &Value) -> Result<()> {
    block_io(c, &r["blockIO"])?;
    hugetlb(c, &r["hugepageLimits"])
}

fn block_io(c: &Cgroups, b: &Value) -> Result<()> {
    let given = b.as_object().is_some_and(|o| !o.is_empty());
    if !given {
        return Ok(());
    }
    let Some(h) = c.with("blkio").or_else(|| c.with("io")) else {
        bail!("linux.resources.blockIO: no blkio or io controller here");
    };
    for &(key, v1_file, v2_key) in THROTTLES {
        for (i, d) in b[key].as_array().into_iter().flatten().enumerate() {
            let at = format!("linux.resources.blockIO.{key}[{i}]");
            let dev = device(d, &at)?;
            let Some(rate) = d["rate"].as_u64() else {
                bail!("{at}.rate: not a number");
            };
            if h.v2 {
                // 0 lifts the limit, as v1's 0 does.
                let rate = if rate == 0 {
                    "max".into()
                } else {
                    rate.to_string()
                };
                write(&h.dir, "io.max", &format!("{dev} {v2_key}={rate}"))?;
            } else {
                write(&h.dir, v1_file, &format!("{dev} {rate}"))?;
            }
        }
    }
    let weight_file = |v1: &str, v2: &str| {
        let f = if h.v2 { v2 } else { v1 };
        h.dir.join(f).exists().then(|| f.to_string())
    };
    if let Some(w) = b["weight"].as_u64() {
        let Some(f) = weight_file("blkio.weight", "io.weight")
            .or_else(|| weight_file("blkio.bfq.weight", "io.bfq.weight"))
        else {
            bail!("linux.resources.blockIO.weight: no I/O weight on this host (scheduler without weights)");
        };
        // v2's weight is 1..10000 (default 100), v1's 10..1000 (500):
        // runc's conversion.
        let w = if h.v2 && f == "io.weight" {
            1 + (w.saturating_sub(10)) * 9999 / 990
        } else {
            w
        };
        let value = if f == "io.weight" {
            format!("default {w}")
        } else {
            w.to_string()
        };
        write(&h.dir, &f, &value)?;
    }
    for (i, d) in b["weightDevice"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("linux.resources.blockIO.weightDevice[{i}]");
        let dev = device(d, &at)?;
        if let Some(w) = d["weight"].as_u64() {
            let Some(f) = weight_file("blkio.weight_device", "io.weight")
                .or_else(|| weight_file("blkio.bfq.weight_device", "io.bfq.weight"))
            else {
                bail!("{at}: no per-device I/O weight on this host");
            };
            write(&h.dir, &f, &format!("{dev} {w}"))?;
        }
    }
    Ok(())
}

fn hugetlb(c: &Cgroups, l: &Value) -> Result<()> {
    let Some(list) = l.as_array().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let Some(h) = c.with("hugetlb") else {
        bail!("linux.resources.hugepageLimits: no hugetlb controller here");
    };
    for (i, e) in list.iter().enumerate() {
        let at = format!("linux.resources.hugepageLimits[{i}]");
        let (Some(size), Some(limit)) = (e["pageSize"].as_str(), e["limit"].as_u64()) else {
            bail!("{at}: pageSize and limit are required");
        };
        let file = if h.v2 {
            format!("hugetlb.{size}.max")
        } else {
            format!("hugetlb.{size}.limit_in_bytes")
        };
        if !h.dir.join(&file).exists() {
            bail!("{at}.pageSize: no huge pages of {size} here");
        }
        write(&h.dir, &file, &limit.to_string())?;
    }
    Ok(())
}
