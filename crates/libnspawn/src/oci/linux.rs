//! `linux`: namespaces, id mappings, devices, cgroup resources, masked
//! and read-only paths (runtime-spec config-linux.md), mapped as the
//! reference maps them (nspawn-oci.c), refused by name where we have no
//! equivalent.

use super::json::{err, At, Result};
use super::{mounts, Oci};
use crate::systemd::property::{Property, Value};

pub fn read(at: At, oci: &mut Oci) -> Result<()> {
    let mut o = at.object()?;
    if let Some(n) = o.take("namespaces") {
        namespaces(n, oci)?;
    }
    let uid = o.take("uidMappings").map(mapping).transpose()?.flatten();
    let gid = o.take("gidMappings").map(mapping).transpose()?.flatten();
    oci.mapping = match (uid, gid) {
        (Some(u), Some(g)) if u != g => {
            return err(
                &o.path,
                "uidMappings and gidMappings that differ are not supported",
            )
        }
        (u, g) => u.or(g),
    };
    if let Some(d) = o.take("devices") {
        for item in d.array()? {
            device(item)?;
        }
    }
    if let Some(c) = o.take("cgroupsPath") {
        oci.slice = Some(slice(c)?);
    }
    if let Some(r) = o.take("resources") {
        resources(r, oci)?;
    }
    if let Some(s) = o.take("sysctl") {
        oci.sysctl = sysctl(s)?;
    }
    // Only the propagation of the root: ours is private below a slave
    // root, which the reference does not change either.
    if let Some(p) = o.take("rootfsPropagation") {
        p.string()?;
    }
    if let Some(m) = o.take("maskedPaths") {
        oci.masked = mounts::masked(m)?;
    }
    if let Some(r) = o.take("readonlyPaths") {
        oci.read_only_paths = mounts::read_only(r)?;
    }
    if let Some(l) = o.take("mountLabel") {
        let path = l.path.clone();
        if !l.string()?.is_empty() {
            return err(&path, "not supported");
        }
    }
    if let Some(s) = o.take("seccomp") {
        oci.seccomp = Some(super::seccomp::read(s)?);
    }
    o.unsupported(&[
        "intelRdt",
        "personality",
        "timeOffsets",
        "memoryPolicy",
        "netDevices",
    ])?;
    o.done()
}

fn namespaces(at: At, oci: &mut Oci) -> Result<()> {
    let list_path = at.path.clone();
    let mut seen: Vec<String> = vec![];
    for item in at.array()? {
        let mut o = item.object()?;
        let t = o.need("type")?;
        let tpath = t.path.clone();
        let kind = t.string()?;
        if ![
            "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
        ]
        .contains(&kind.as_str())
        {
            return err(&tpath, format!("unknown namespace type {kind}"));
        }
        if kind == "time" {
            return err(&tpath, "time namespaces are not supported");
        }
        if seen.contains(&kind) {
            return err(&tpath, format!("{kind} listed twice"));
        }
        if let Some(p) = o.take("path") {
            let ppath = p.path.clone();
            let path = p.string()?;
            if kind != "network" {
                return err(
                    &ppath,
                    format!("joining a {kind} namespace is not supported"),
                );
            }
            if !path.starts_with('/') {
                return err(&ppath, format!("not an absolute path: {path}"));
            }
            oci.netns_path = Some(path.into());
        }
        o.done()?;
        seen.push(kind);
    }
    // Every container of ours has these; one without them would share
    // the host's, which we do not offer.
    for needed in ["mount", "pid", "ipc", "uts"] {
        if !seen.iter().any(|k| k == needed) {
            return err(
                &list_path,
                format!("a container without a {needed} namespace is not supported"),
            );
        }
    }
    let has = |k: &str| seen.iter().any(|s| s == k);
    oci.private_network = Some(has("network") && oci.netns_path.is_none());
    oci.user_namespace = Some(has("user"));
    Ok(())
}

/// `linux.sysctl`: parameters of the IPC namespace, or of the network's
/// (checked once the network is known, `merge`); any other would reach
/// the host's kernel (`crate::sysctl`).
fn sysctl(at: At) -> Result<Vec<(String, String)>> {
    let mut out = vec![];
    for (key, v) in at.object()?.entries() {
        let path = v.path.clone();
        let value = v.string()?;
        if !crate::sysctl::key_valid(&key) {
            return err(&path, "not a valid sysctl key");
        }
        if crate::sysctl::scope(&key).is_none() {
            return err(
                &path,
                "not a sysctl of the container's namespaces (IPC, network), refusing to change the host's",
            );
        }
        out.push((key, value));
    }
    Ok(out)
}

/// One mapping (the reference takes no more): container id 0 onward.
fn mapping(at: At) -> Result<Option<(u32, u32)>> {
    let path = at.path.clone();
    let items = at.array()?;
    if items.len() > 1 {
        return err(&path, "more than one mapping is not supported");
    }
    let Some(item) = items.into_iter().next() else {
        return Ok(None);
    };
    let mut o = item.object()?;
    let container = o.need("containerID")?.id()?;
    let host = o.need("hostID")?.id()?;
    let s = o.need("size")?;
    let spath = s.path.clone();
    let size = s.u64()?;
    o.done()?;
    if container != 0 {
        return err(
            &path,
            "a mapping with a non-zero containerID is not supported",
        );
    }
    if size < crate::userns::RANGE as u64 || host as u64 + size > u32::MAX as u64 {
        return err(
            &spath,
            format!("{size} ids from {host}: at least 65536, within 32 bits"),
        );
    }
    Ok(Some((host, size as u32)))
}

/// Device nodes: every container of ours has the standard ones, which
/// bundles list; others are refused.
fn device(at: At) -> Result<()> {
    let path = at.path.clone();
    let mut o = at.object()?;
    let t = o.need("type")?.string()?;
    let p = o.need("path")?.string()?;
    let major = o.take("major").map(At::u64).transpose()?;
    let minor = o.take("minor").map(At::u64).transpose()?;
    o.ignore(&["fileMode", "uid", "gid"]);
    o.done()?;
    let standard = (t == "c" || t == "u")
        && crate::mount::standard_node(&p)
            .is_some_and(|(ma, mi)| major == Some(ma) && minor == Some(mi));
    match standard {
        true => Ok(()),
        false => err(&path, format!("device {p} is not supported")),
    }
}

/// `linux.cgroupsPath` names a slice as its path (`/a.slice/a-b.slice`):
/// the slice the machine's cgroup goes in, as the reference reads it.
fn slice(at: At) -> Result<String> {
    let path = at.path.clone();
    let p = at.string()?;
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    let last = parts.last().copied().unwrap_or("");
    let mut prefix = String::new();
    for (i, part) in parts.iter().enumerate() {
        let stem = part.strip_suffix(".slice").unwrap_or("");
        let expect = match i {
            0 => stem.to_string(),
            _ => format!("{prefix}-{}", stem.rsplit('-').next().unwrap_or("")),
        };
        if stem.is_empty() || stem != expect || stem.contains("--") {
            return err(&path, format!("{p} is no slice's path"));
        }
        prefix = stem.to_string();
    }
    Ok(last.to_string())
}

fn resources(at: At, oci: &mut Oci) -> Result<()> {
    let mut o = at.object()?;
    let mut props = vec![];
    let mut put = |name: &str, value: Value| {
        props.push(Property {
            name: name.into(),
            value,
        })
    };
    // A negative limit is "no limit", as the reference reads it.
    let limit = |a: At| -> Result<u64> {
        match a.value.as_i64() {
            Some(n) if n < 0 => Ok(u64::MAX),
            _ => a.u64(),
        }
    };
    if let Some(d) = o.take("devices") {
        let allow = device_allow(d)?;
        if let Some(pairs) = allow {
            put("DeviceAllow", Value::Pairs(pairs));
        }
    }
    if let Some(m) = o.take("memory") {
        let mut m = m.object()?;
        let max = m.take("limit").map(limit).transpose()?;
        let low = m.take("reservation").map(limit).transpose()?;
        let swap = m.take("swap").map(limit).transpose()?;
        m.unsupported(&[
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ])?;
        m.done()?;
        if let Some(max) = max.filter(|&v| v != u64::MAX) {
            put("MemoryMax", Value::U64(max));
            // runtime-spec's swap is memory plus swap; systemd's swap alone.
            if let Some(swap) = swap.filter(|&s| s != u64::MAX && s >= max) {
                put("MemorySwapMax", Value::U64(swap - max));
            }
        }
        if let Some(low) = low.filter(|&v| v != u64::MAX) {
            put("MemoryLow", Value::U64(low));
        }
    }
    if let Some(c) = o.take("cpu") {
        let mut c = c.object()?;
        if let Some(s) = c.take("shares") {
            let path = s.path.clone();
            match s.u64()? {
                // cpu.shares to cpu.weight, as systemd converts them.
                n @ 2..=262144 => put("CPUWeight", Value::U64((n * 100 / 1024).clamp(1, 10000))),
                n => return err(&path, format!("{n} is out of range 2..262144")),
            }
        }
        let quota = c.take("quota").map(At::i64).transpose()?;
        let period = c.take("period").map(At::u64).transpose()?;
        match (quota, period) {
            (Some(q), Some(p)) if q > 0 && p > 0 => {
                put("CPUQuotaPerSecUSec", Value::U64(q as u64 * 1_000_000 / p));
                put("CPUQuotaPeriodUSec", Value::U64(p));
            }
            (Some(q), _) if q < 0 => {}
            (None, None) => {}
            _ => return err(&c.path, "quota and period must be given together, above 0"),
        }
        if let Some(cpus) = c.take("cpus") {
            let path = cpus.path.clone();
            let list = cpus.string()?;
            if !list.is_empty() {
                oci.cpu_affinity = Some(
                    crate::security::limits::parse_cpu_affinity(&list)
                        .or_else(|e| err(&path, e))?,
                );
            }
        }
        if let Some(m) = c.take("mems") {
            let path = m.path.clone();
            if !m.string()?.is_empty() {
                return err(&path, "not supported");
            }
        }
        c.unsupported(&["realtimeRuntime", "realtimePeriod", "burst", "idle"])?;
        c.done()?;
    }
    if let Some(p) = o.take("pids") {
        let mut p = p.object()?;
        let n = p.take("limit").map(limit).transpose()?;
        p.done()?;
        if let Some(n) = n.filter(|&n| n > 0) {
            put("TasksMax", Value::U64(n));
        }
    }
    if let Some(b) = o.take("blockIO") {
        let mut b = b.object()?;
        if let Some(w) = b.take("weight") {
            let path = w.path.clone();
            match w.u64()? {
                // blkio.weight to io.weight, as systemd converts them.
                n @ 10..=1000 => put("IOWeight", Value::U64((n * 100 / 500).clamp(1, 10000))),
                n => return err(&path, format!("{n} is out of range 10..1000")),
            }
        }
        b.unsupported(&[
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ])?;
        b.done()?;
    }
    o.unsupported(&["hugepageLimits", "network", "rdma", "unified"])?;
    o.done()?;
    oci.properties = props;
    Ok(())
}

/// `resources.devices`: the reference's reading. Deny entries are what
/// a unit's device list starts from anyway; allow entries become
/// `DeviceAllow=`; an allow-all entry means no list at all (`None`).
fn device_allow(at: At) -> Result<Option<Vec<(String, String)>>> {
    let mut out = vec![];
    let mut everything = false;
    for item in at.array()? {
        let path = item.path.clone();
        let mut o = item.object()?;
        let allow = o.need("allow")?.bool()?;
        let t = o.take("type").map(At::string).transpose()?;
        let major = o
            .take("major")
            .map(At::i64)
            .transpose()?
            .filter(|&n| n >= 0);
        let minor = o
            .take("minor")
            .map(At::i64)
            .transpose()?
            .filter(|&n| n >= 0);
        let access = o
            .take("access")
            .map(At::string)
            .transpose()?
            .unwrap_or_default();
        o.done()?;
        if !access.chars().all(|c| "rwm".contains(c)) {
            return err(&path, format!("unknown access {access}"));
        }
        if !allow || access.is_empty() {
            continue;
        }
        let class = match t.as_deref() {
            None | Some("a") if major.is_none() && minor.is_none() => {
                everything = true;
                continue;
            }
            Some("c") => "char",
            Some("b") => "block",
            _ => return err(&path, "an allow entry needs type c or b"),
        };
        let pattern = match (major, minor) {
            (None, None) => format!("{class}-*"),
            (Some(ma), None) => format!("{class}-{ma}"),
            (Some(ma), Some(mi)) => format!("/dev/{class}/{ma}:{mi}"),
            (None, Some(_)) => return err(&path, "a minor without a major is not supported"),
        };
        out.push((pattern, access));
    }
    Ok((!everything).then_some(out).filter(|o| !o.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str) -> At {
        At::new("linux.cgroupsPath".into(), serde_json::from_str(v).unwrap())
    }

    #[test]
    fn slices() {
        assert_eq!(slice(at(r#""/machine.slice""#)).unwrap(), "machine.slice");
        assert_eq!(slice(at(r#""/a.slice/a-b.slice""#)).unwrap(), "a-b.slice");
        for bad in [r#""/a.slice/b.slice""#, r#""/foo""#, r#""/a.slice/a-b""#] {
            assert!(slice(at(bad)).is_err(), "{bad}");
        }
    }
}
