//! `process`: what runs, as whom, with which limits (runtime-spec
//! config.md "Process", mapped as systemd's nspawn-oci.c maps it).

use super::json::{err, At, Result};
use super::{CapSets, Oci};
use crate::security::{caps, limits};
use crate::user::Identity;

pub fn read(at: At, oci: &mut Oci) -> Result<()> {
    let mut o = at.object()?;
    // Not a terminal: the reference's pipe mode; a terminal: its default.
    if let Some(t) = o.take("terminal") {
        oci.terminal = Some(t.bool()?);
    }
    if let Some(c) = o.take("consoleSize") {
        return err(&c.path, "not supported");
    }
    if let Some(u) = o.take("user") {
        oci.identity = Some(user(u)?);
    }
    if let Some(a) = o.take("args") {
        let path = a.path.clone();
        let args = a.strings()?;
        match args.first() {
            None => return err(&path, "empty argument list"),
            Some(a0) if a0.is_empty() => return err(&path, "empty executable name"),
            _ => oci.args = Some(args),
        }
    }
    if let Some(e) = o.take("env") {
        let mut env = vec![];
        for item in e.array()? {
            let path = item.path.clone();
            let s = item.string()?;
            if !s.contains('=') {
                return err(&path, format!("not a NAME=VALUE assignment: {s}"));
            }
            env.push(crate::env::parse_setenv(&s, |_| None).or_else(|e| err(&path, e))?);
        }
        oci.env = Some(env);
    }
    if let Some(c) = o.take("cwd") {
        let path = c.path.clone();
        let cwd = c.string()?;
        if !cwd.starts_with('/') {
            return err(&path, format!("not an absolute path: {cwd}"));
        }
        oci.cwd = Some(cwd);
    }
    if let Some(r) = o.take("rlimits") {
        for item in r.array()? {
            let path = item.path.clone();
            let l = rlimit(item)?;
            if oci.rlimits.iter().any(|(res, ..)| *res == l.0) {
                return err(&path, "duplicate resource limit");
            }
            oci.rlimits.push(l);
        }
    }
    if let Some(c) = o.take("capabilities") {
        oci.caps = Some(capabilities(c)?);
    }
    if let Some(n) = o.take("noNewPrivileges") {
        oci.no_new_privileges = Some(n.bool()?);
    }
    if let Some(a) = o.take("oomScoreAdj") {
        let path = a.path.clone();
        match a.i64()? {
            n @ -1000..=1000 => oci.oom_score_adjust = Some(n as i32),
            n => return err(&path, format!("{n} is out of range -1000..1000")),
        }
    }
    // An empty label is no label: what podman writes on hosts without
    // AppArmor or SELinux.
    for key in ["apparmorProfile", "selinuxLabel"] {
        if let Some(v) = o.take(key) {
            let path = v.path.clone();
            if !v.string()?.is_empty() {
                return err(&path, "not supported");
            }
        }
    }
    o.unsupported(&["commandLine", "ioPriority", "scheduler", "execCPUAffinity"])?;
    o.done()
}

fn user(at: At) -> Result<Identity> {
    let mut o = at.object()?;
    let uid = o.need("uid")?.id()?;
    let gid = o.need("gid")?.id()?;
    let mut groups = vec![];
    if let Some(g) = o.take("additionalGids") {
        for item in g.array()? {
            groups.push(item.id()?);
        }
    }
    o.unsupported(&["umask", "username"])?;
    o.done()?;
    Ok(Identity { uid, gid, groups })
}

fn rlimit(at: At) -> Result<(libc::__rlimit_resource_t, u64, u64)> {
    let mut o = at.object()?;
    let t = o.need("type")?;
    let path = t.path.clone();
    let name = t.string()?;
    let res = name
        .strip_prefix("RLIMIT_")
        .and_then(limits::resource)
        .map_or_else(|| err(&path, format!("unknown resource limit {name}")), Ok)?;
    // A negative value is "unlimited", as the reference reads it (Go's
    // encoder writes RLIM_INFINITY as -1 from a signed field).
    let value = |a: At| -> Result<u64> {
        match a.value.as_i64() {
            Some(n) if n < 0 => Ok(libc::RLIM_INFINITY),
            _ => a.u64(),
        }
    };
    let soft = value(o.need("soft")?)?;
    let hard = value(o.need("hard")?)?;
    let at = o.path.clone();
    o.done()?;
    if soft > hard {
        return err(&at, "soft limit above hard limit");
    }
    Ok((res, soft, hard))
}

fn capabilities(at: At) -> Result<CapSets> {
    let mut o = at.object()?;
    let mut set = |key: &str| -> Result<Option<u64>> {
        let Some(a) = o.take(key) else {
            return Ok(None);
        };
        let mut mask = 0;
        for item in a.array()? {
            let path = item.path.clone();
            let name = item.string()?;
            // Only the CAP_ spelling: caps::parse_list takes numbers and
            // `all` too, which the runtime-spec does not.
            if !name.starts_with("CAP_") {
                return err(&path, format!("unknown capability {name}"));
            }
            mask |= caps::parse_list(&name)
                .or_else(|_| err(&path, format!("unknown capability {name}")))?;
        }
        Ok(Some(mask))
    };
    let sets = CapSets {
        bounding: set("bounding")?,
        effective: set("effective")?,
        permitted: set("permitted")?,
        inheritable: set("inheritable")?,
        ambient: set("ambient")?,
    };
    o.done()?;
    Ok(sets)
}
