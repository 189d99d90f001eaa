//! The container's cgroup, as runc makes it: the same relative path in
//! every mounted hierarchy — on this hybrid host each v1 controller's and
//! `unified/`, on a pure v2 host the one tree. Limits go where their
//! controller is (`memory` and `pids` are v1 controllers here). The
//! hierarchies are read from /proc/self/mountinfo; the ones used are kept
//! in the state, so that `delete` removes exactly those.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Hier {
    /// The container's cgroup in this hierarchy.
    pub dir: PathBuf,
    pub v2: bool,
    /// v1: the mount's controllers; v2: the root's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

#[derive(Default)]
pub struct Cgroups {
    pub hiers: Vec<Hier>,
}

/// Mount points of the cgroup hierarchies mounted at their root, with
/// (v1) their controllers.
fn mounted() -> Vec<(PathBuf, bool, Vec<String>)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = vec![];
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || pre[3] != "/" {
            continue;
        }
        let point = PathBuf::from(pre[4].replace("\\040", " "));
        match post[0] {
            "cgroup2" => {
                let c =
                    std::fs::read_to_string(point.join("cgroup.controllers")).unwrap_or_default();
                out.push((
                    point,
                    true,
                    c.split_whitespace().map(String::from).collect(),
                ));
            }
            "cgroup" => {
                let c = post[2]
                    .split(',')
                    .filter(|o| !["rw", "ro"].contains(o) && !o.contains('='))
                    .map(String::from)
                    .chain(
                        post[2]
                            .split(',')
                            .filter(|o| o.starts_with("name="))
                            .map(String::from),
                    )
                    .collect();
                out.push((point, false, c));
            }
            _ => {}
        }
    }
    out
}

/// runc's reading of `slice:prefix:name` (`--systemd-cgroup`): the
/// slice (`system.slice` when empty) and the unit, `prefix-name.scope`
/// (or `name` itself when it is a slice).
pub fn systemd_unit(cgroups_path: Option<&str>, id: &str) -> Result<(String, String)> {
    let spec = cgroups_path.unwrap_or("");
    let parts: Vec<&str> = spec.split(':').collect();
    let (slice, prefix, name) = match parts.as_slice() {
        [s, p, n] => (*s, *p, *n),
        [""] => ("", "nspawn-oci", id),
        _ => bail!("cgroupsPath {spec:?}: expected slice:prefix:name with --systemd-cgroup"),
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if !slice.ends_with(".slice") {
        bail!("cgroupsPath {spec:?}: {slice} is not a slice");
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok((slice.to_string(), unit))
}

/// The path relative to every hierarchy's root: `linux.cgroupsPath`
/// (absolute, or relative as runc reads one: below the root), or with
/// `--systemd-cgroup` the unit's (`systemd_unit`) below its slice's,
/// `a-b.slice` being `/a.slice/a-b.slice`; the default `/ID`.
pub fn relative(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<String> {
    if systemd {
        let (slice, unit) = systemd_unit(cgroups_path, id)?;
        let stem = slice.strip_suffix(".slice").unwrap_or(&slice);
        let mut path = String::new();
        let mut acc = String::new();
        for part in stem.split('-').filter(|p| !p.is_empty()) {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            path.push_str(&format!("/{acc}.slice"));
        }
        return Ok(format!("{path}/{unit}"));
    }
    let p = cgroups_path.unwrap_or("").trim_start_matches('/');
    let p = if p.is_empty() { id } else { p };
    if p.split('/').any(|c| c == ".." || c == ".") {
        bail!("cgroupsPath {p:?}: must not hold . or ..");
    }
    Ok(format!("/{p}"))
}

pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::write(dir.join(file), value)
        .with_context(|| format!("cannot write {value} to {}", dir.join(file).display()))
}

/// A new v1 cpuset cgroup has no CPUs and memory nodes, and takes no
/// task until given some (cpuset(7)): its parent's, level by level.
fn fill_cpuset(root: &Path, rel: &str) -> Result<()> {
    let mut dir = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let parent = dir.clone();
        dir.push(part);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let up = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                write(&dir, f, up.trim())?;
            }
        }
    }
    Ok(())
}

impl Cgroups {
    /// The cgroup `create` will make, in every hierarchy: recorded first,
    /// so that a `create` killed while it makes them leaves what
    /// `delete --force` removes.
    pub fn planned(rel: &str) -> Cgroups {
        Cgroups {
            hiers: mounted()
                .into_iter()
                .map(|(point, v2, controllers)| Hier {
                    dir: point.join(rel.trim_start_matches('/')),
                    v2,
                    controllers,
                })
                .collect(),
        }
    }

    /// Make the cgroup in every hierarchy; on failure remove what was made.
    pub fn create(rel: &str) -> Result<Cgroups> {
        let mut made = Cgroups::default();
        for (point, v2, controllers) in mounted() {
            let dir = point.join(rel.trim_start_matches('/'));
            let existed = dir.exists();
            if let Err(e) = std::fs::create_dir_all(&dir) {
                let _ = made.remove();
                return Err(e).with_context(|| format!("cannot create cgroup {}", dir.display()));
            }
            let hier = Hier {
                dir,
                v2,
                controllers,
            };
            if !existed {
                made.hiers.push(hier.clone());
            } else {
                // Shared with someone else (runc refuses a populated one).
                let _ = made.remove();
                bail!("cgroup {} exists already", hier.dir.display());
            }
            let step = if v2 {
                enable_v2(&point, rel)
            } else if hier.controllers.iter().any(|c| c == "cpuset") {
                fill_cpuset(&point, rel)
            } else {
                Ok(())
            };
            if let Err(e) = step {
                let _ = made.remove();
                return Err(e);
            }
        }
        Ok(made)
    }

    /// Under a systemd scope (`scope.rs`): the hierarchies systemd
    /// made the scope's cgroup in are its; the others (v1 controllers it
    /// does not manage, as runc's "joined" ones) get the same path made
    /// here. Removed by `remove` after the unit is stopped.
    pub fn make_missing(&self, rel: &str) -> Result<()> {
        for h in &self.hiers {
            if h.dir.is_dir() {
                continue;
            }
            std::fs::create_dir_all(&h.dir)
                .with_context(|| format!("cannot create cgroup {}", h.dir.display()))?;
            if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") {
                let root = h.dir.ancestors().nth(rel.matches('/').count());
                fill_cpuset(root.unwrap_or(&h.dir), rel)?;
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.hiers
                .iter()
                .map(|h| json!({"dir": h.dir, "v2": h.v2, "controllers": h.controllers}))
                .collect(),
        )
    }

    pub fn from_state(st: &Value) -> Cgroups {
        let hiers = st["cgroups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| {
                        Some(Hier {
                            dir: PathBuf::from(h["dir"].as_str()?),
                            v2: h["v2"].as_bool()?,
                            controllers: h["controllers"]
                                .as_array()?
                                .iter()
                                .filter_map(|c| c.as_str().map(String::from))
                                .collect(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Cgroups { hiers }
    }

    /// The v2 cgroup, to start the container in (`CLONE_INTO_CGROUP`).
    pub fn unified(&self) -> Option<&Path> {
        self.hiers.iter().find(|h| h.v2).map(|h| h.dir.as_path())
    }

    /// Move `pid` into the v1 hierarchies (v2: it started there).
    pub fn attach_v1(&self, pid: i32) -> Result<()> {
        for h in self.hiers.iter().filter(|h| !h.v2) {
            write(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    pub fn with(&self, controller: &str) -> Option<&Hier> {
        self.hiers
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
            .or_else(|| {
                self.hiers
                    .iter()
                    .find(|h| h.v2 && h.controllers.iter().any(|c| c == controller))
            })
    }

    /// `linux.resources` (or `update`'s LinuxResources): memory, pids,
    /// cpu and cpuset, in the hierarchy of each controller; block I/O and
    /// huge pages (`blockio`).
    pub fn apply(&self, r: &Value) -> Result<()> {
        let num = |v: &Value| v.as_i64();
        let mem = &r["memory"];
        if let Some(h) = self.with("memory") {
            if let Some(limit) = num(&mem["limit"]) {
                let unlimited = limit < 0;
                if h.v2 {
                    write(&h.dir, "memory.max", &v2_limit(limit))?;
                } else {
                    write(&h.dir, "memory.limit_in_bytes", &limit.to_string())?;
                }
                if let Some(swap) = num(&mem["swap"]) {
                    if h.v2 {
                        let s = if swap < 0 || unlimited {
                            "max".into()
                        } else {
                            (swap - limit).max(0).to_string()
                        };
                        write(&h.dir, "memory.swap.max", &s)?;
                    } else if h.dir.join("memory.memsw.limit_in_bytes").exists() {
                        write(&h.dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
                    }
                }
            }
            if let Some(low) = num(&mem["reservation"]) {
                let f = if h.v2 {
                    "memory.low"
                } else {
                    "memory.soft_limit_in_bytes"
                };
                write(
                    &h.dir,
                    f,
                    &if h.v2 { v2_limit(low) } else { low.to_string() },
                )?;
            }
        } else if !mem["limit"].is_null() {
            bail!("no memory controller for linux.resources.memory");
        }
        if let Some(limit) = num(&r["pids"]["limit"]) {
            let Some(h) = self.with("pids") else {
                bail!("no pids controller for linux.resources.pids");
            };
            let v = if limit <= 0 {
                "max".into()
            } else {
                limit.to_string()
            };
            write(&h.dir, "pids.max", &v)?;
        }
        let cpu = &r["cpu"];
        if let Some(h) = self.with("cpu") {
            if let Some(shares) = num(&cpu["shares"]).filter(|&s| s > 0) {
                if h.v2 {
                    // runc's conversion of shares (2..262144) to a weight.
                    let w = 1 + ((shares - 2) * 9999) / 262142;
                    write(&h.dir, "cpu.weight", &w.to_string())?;
                } else {
                    write(&h.dir, "cpu.shares", &shares.to_string())?;
                }
            }
            let quota = num(&cpu["quota"]);
            let period = num(&cpu["period"]);
            if h.v2 && (quota.is_some() || period.is_some()) {
                let q = quota
                    .filter(|&q| q > 0)
                    .map_or("max".into(), |q| q.to_string());
                write(
                    &h.dir,
                    "cpu.max",
                    &format!("{q} {}", period.unwrap_or(100_000)),
                )?;
            } else if !h.v2 {
                if let Some(p) = period.filter(|&p| p > 0) {
                    write(&h.dir, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = quota {
                    write(&h.dir, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
        if let Some(h) = self.with("cpuset") {
            for (key, file) in [("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")] {
                if let Some(v) = cpu[key].as_str().filter(|v| !v.is_empty()) {
                    write(&h.dir, file, v)?;
                }
            }
        }
        crate::blockio::apply(self, r)
    }

    /// The processes in the container's cgroup.
    pub fn procs(&self) -> Vec<i32> {
        let h = self
            .hiers
            .iter()
            .find(|h| h.v2)
            .or_else(|| self.hiers.first());
        h.and_then(|h| std::fs::read_to_string(h.dir.join("cgroup.procs")).ok())
            .map(|t| t.lines().filter_map(|l| l.parse().ok()).collect())
            .unwrap_or_default()
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(h) = self.with("freezer") {
            let s = std::fs::read_to_string(h.dir.join("freezer.state")).unwrap_or_default();
            return s.trim() == "FROZEN";
        }
        self.hiers.iter().find(|h| h.v2).is_some_and(|h| {
            std::fs::read_to_string(h.dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        })
    }

    /// Freeze or thaw, and wait until it is so (a v1 freeze may pass
    /// through FREEZING).
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self.with("freezer") {
            Some(h) => write(
                &h.dir,
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
            )?,
            None => match self.hiers.iter().find(|h| h.v2) {
                Some(h) => write(&h.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?,
                None => bail!("no freezer for this container"),
            },
        }
        for _ in 0..1000 {
            if self.is_frozen() == frozen {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        bail!(
            "the container's cgroup did not {}",
            if frozen { "freeze" } else { "thaw" }
        )
    }

    /// Signal every process in the cgroup; SIGKILL thaws it first, so
    /// the frozen die too.
    pub fn kill_all(&self, sig: i32) {
        for pid in self.procs() {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, sig) };
        }
        if sig == libc::SIGKILL && self.is_frozen() {
            let _ = self.freeze(false);
        }
    }

    /// Remove the cgroup from every hierarchy, once its processes are
    /// gone (a dying process keeps it busy a moment).
    pub fn remove(&self) -> Result<()> {
        let mut last = Ok(());
        // A busy cgroup is tried again in growing steps from 0.1 ms, for
        // about five seconds in all.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for h in self.hiers.iter().rev() {
            let mut step = std::time::Duration::from_micros(100);
            loop {
                match std::fs::remove_dir(&h.dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY)
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(step);
                        step = (step * 2).min(std::time::Duration::from_millis(10));
                    }
                    Err(e) => {
                        last = Err(e)
                            .with_context(|| format!("cannot remove cgroup {}", h.dir.display()));
                        break;
                    }
                }
            }
        }
        last
    }
}

fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// On a v2 hierarchy with controllers, each ancestor hands them down
/// (cgroup v2's "no internal processes" rule allows it above a leaf).
fn enable_v2(root: &Path, rel: &str) -> Result<()> {
    let wanted = ["cpu", "cpuset", "io", "memory", "pids"];
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        for c in have.split_whitespace().filter(|c| wanted.contains(c)) {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
        dir.push(part);
    }
    let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for c in have.split_whitespace().filter(|c| wanted.contains(c)) {
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn paths() {
        assert_eq!(relative(None, "c1", false).unwrap(), "/c1");
        assert_eq!(
            relative(Some("/libpod_parent/libpod-x"), "x", false).unwrap(),
            "/libpod_parent/libpod-x"
        );
        assert!(relative(Some("/a/../b"), "x", false).is_err());
        assert_eq!(
            relative(Some("machine.slice:libpod:abc"), "abc", true).unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            relative(Some("a-b.slice:p:n"), "n", true).unwrap(),
            "/a.slice/a-b.slice/p-n.scope"
        );
        assert!(relative(Some("nonsense"), "n", true).is_err());
    }
}
