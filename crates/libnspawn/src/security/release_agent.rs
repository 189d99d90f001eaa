//! Keep the cgroup v1 `release_agent` out of reach (CVE-2022-0492 class).
//!
//! Root inside has CAP_SYS_ADMIN in the host's user namespace and may
//! mount cgroup v1 hierarchies. A hierarchy mounted from inside a cgroup
//! namespace shows the namespace's root cgroup; if that is the hierarchy's
//! real root, it carries `release_agent`, a program the kernel runs as root
//! in the host's namespaces when a cgroup empties (cgroups(7), "Release
//! notification"; since 5.17 writing it needs only CAP_SYS_ADMIN in the
//! initial user namespace, which root here has). The battery shows it
//! writable under the reference and a plain chroot.
//!
//! So the process that clones the container process (the runner,
//! `nspawn-oci create`) first leaves the root cgroup of every v1 hierarchy
//! it is in, for a `machine.slice` below it (kept, as systemd keeps its
//! own), and the container process is born there, long before it makes
//! its cgroup namespace. New hierarchies cannot be
//! made from a non-initial cgroup namespace (EPERM), so none can have
//! the container at its root.

use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};

/// The v1 hierarchies (by their option list, as `/proc/self/cgroup`
/// names them: `memory`, `cpu,cpuacct`, `name=systemd`) in whose root
/// cgroup we are.
fn at_root(proc_cgroup: &str) -> Vec<String> {
    proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (id, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            (id != "0" && !ctrl.is_empty() && path == "/").then(|| ctrl.to_string())
        })
        .collect()
}

/// Where a hierarchy's root is mounted: a `cgroup` mount of root `/`
/// whose super options contain exactly the hierarchy's controllers.
fn mount_of(mountinfo: &str, ctrl: &str) -> Option<PathBuf> {
    let mut want: Vec<&str> = ctrl.split(',').collect();
    want.sort();
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fstype, _src, opts) = (post.next()?, post.next()?, post.next()?);
        let mut pre = pre.split(' ');
        let root = pre.nth(3)?;
        let point = pre.next()?;
        if fstype != "cgroup" || root != "/" {
            return None;
        }
        let mut have: Vec<&str> = opts
            .split(',')
            .filter(|o| {
                *o != "rw"
                    && *o != "ro"
                    && !o.starts_with("release_agent")
                    && *o != "xattr"
                    && *o != "clone_children"
                    && *o != "noprefix"
                    && *o != "cpuset_v2_mode"
            })
            .collect();
        have.sort();
        (have == want).then(|| PathBuf::from(point.replace("\\040", " ")))
    })
}

/// A new cpuset cgroup starts with no CPUs and no memory nodes, and no
/// process can join it until it has some: copy the parent's.
fn fill_cpuset(dir: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(f);
        let Ok(cur) = std::fs::read_to_string(&path) else {
            continue;
        };
        if cur.trim().is_empty() {
            let parent = std::fs::read_to_string(dir.parent().unwrap_or(dir).join(f))
                .ctx(|| format!("cannot read the parent's {f}"))?;
            std::fs::write(&path, parent.trim())
                .ctx(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// Move this thread into `dir`: "0" into `tasks`. Only a thread moving
/// itself skips the global threadgroup lock, whose writer waits an RCU
/// grace period (several ms on every start) (cgroup_procs_write_start(),
/// Linux 5.18+: `cgroup.procs`, or another thread's id, takes it). The
/// cgroup is made (only in a cgroup v1 file system), and a cpuset one
/// given CPUs and memory nodes, only when the move says it needs it: on
/// every start but the first, the move is one open and one write (no
/// `O_CREAT`: nothing is ever made but the cgroup).
fn join(dir: &Path, cpuset: bool) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let tasks = dir.join("tasks");
    let write = || -> std::io::Result<()> {
        let fd = rustix::fs::open(
            &tasks,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        rustix::io::write(&fd, b"0").map(drop).map_err(Into::into)
    };
    match write() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let parent = dir.parent().unwrap_or(dir);
            let v1 = nix::sys::statfs::statfs(parent)
                .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::CGROUP_SUPER_MAGIC);
            if !v1 {
                return Err(e);
            }
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        // An empty cpuset refuses members.
        Err(e) if cpuset && e.raw_os_error() == Some(libc::ENOSPC) => {}
        r => return r,
    }
    if cpuset {
        fill_cpuset(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    write()
}

/// Where hosts mount a hierarchy: `/sys/fs/cgroup/` and its name
/// (`cpu,cpuacct`, `systemd` for `name=systemd`).
fn usual_mount(ctrl: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(ctrl.strip_prefix("name=").unwrap_or(ctrl))
}

fn our_cgroups() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
}

/// Move this process (single-threaded: the caller is about to clone)
/// out of the root cgroup of each v1 hierarchy it is in. Tried first
/// where hosts mount them, with no mount table to read; whatever that did
/// not move, as `/proc/self/cgroup` then tells (which checks the moves
/// too), is looked up in the mount table and moved there.
pub fn leave_v1_roots() -> Result<()> {
    let roots = at_root(&our_cgroups());
    if roots.is_empty() {
        return Ok(());
    }
    let cpuset = |ctrl: &str| ctrl.split(',').any(|c| c == "cpuset");
    for ctrl in &roots {
        let _ = join(&usual_mount(ctrl).join("machine.slice"), cpuset(ctrl));
    }
    let left = at_root(&our_cgroups());
    if left.is_empty() {
        return Ok(());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for ctrl in left {
        // A hierarchy the host has not mounted cannot be reached from
        // here; mounting it ourselves is left for when a host needs it.
        let Some(mnt) = mount_of(&mountinfo, &ctrl) else {
            continue;
        };
        join(&mnt.join("machine.slice"), cpuset(&ctrl)).map_err(|e| {
            Error::invalid(format!(
                "cannot leave the root of cgroup hierarchy {ctrl} (its release_agent would be exposed): {e}"
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_roots_and_mounts() {
        let cg = "9:name=systemd:/\n4:memory:/job/x\n2:cpu,cpuacct:/\n0::/\n";
        assert_eq!(at_root(cg), ["name=systemd", "cpu,cpuacct"]);
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpuacct,cpu\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                  41 31 0:38 /sub /mnt/pids rw,relatime - cgroup cgroup rw,pids\n";
        assert_eq!(
            mount_of(mi, "cpu,cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            mount_of(mi, "name=systemd").unwrap(),
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert_eq!(mount_of(mi, "pids"), None);
        assert_eq!(mount_of(mi, "memory"), None);
    }
}
