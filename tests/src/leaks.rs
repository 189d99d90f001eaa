//! The leak checker: everything a machine of ours may leave on the host,
//! looked for by the machine's name and tree, so that other machines on
//! the host (other tests, other people's) never count.
//!
//! `leftovers` looks on the host; `Leaks` can also look in a `Sandbox`
//! (its own `/run/nspawn` and network namespace) and for a zone's bridge.

use crate::sandbox::Sandbox;
use crate::{mounts_under, text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What to look for, and where.
pub struct Leaks<'a> {
    pub machine: &'a str,
    pub tree: &'a Path,
    /// The zone the machine joined (`--network-zone`): its bridge must go
    /// with its last member.
    pub zone: Option<&'a str>,
    /// Look in this sandbox's namespaces instead of the host's.
    pub sandbox: Option<&'a Sandbox>,
}

/// What a machine named `machine` running `tree` left on the host, as
/// lines naming each leftover; empty when nothing is left.
pub fn leftovers(machine: &str, tree: &Path) -> Vec<String> {
    Leaks::new(machine, tree).find()
}

/// Wait (up to 15 s: a killed runner's reaper waits for the container to
/// die) until `machine` has left nothing behind; the leftovers if not.
pub fn wait_clean(machine: &str, tree: &Path) -> Vec<String> {
    Leaks::new(machine, tree).wait(Duration::from_secs(15))
}

impl<'a> Leaks<'a> {
    pub fn new(machine: &'a str, tree: &'a Path) -> Leaks<'a> {
        Leaks {
            machine,
            tree,
            zone: None,
            sandbox: None,
        }
    }

    /// Wait up to `limit` for nothing to be left; what is left then.
    pub fn wait(&self, limit: Duration) -> Vec<String> {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = self.find();
            if left.is_empty() || std::time::Instant::now() > end {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything of the machine that is still there.
    pub fn find(&self) -> Vec<String> {
        let mut out = self.records();
        out.extend(self.cgroups());
        out.extend(self.links());
        out.extend(self.nft_tables());
        out.extend(self.forwarding());
        out.extend(self.mounts());
        out.extend(self.temporaries());
        out.extend(self.loop_devices());
        out.extend(self.processes());
        out
    }

    /// `/run` as the runner saw it.
    fn run_dir(&self) -> PathBuf {
        match self.sandbox {
            Some(s) => s.root().join("run"),
            None => PathBuf::from("/run"),
        }
    }

    /// Whether a file name is one of the machine's: the name itself, or
    /// the name between dots (`.NAME.tmp`, `.#NAME.template-PID`).
    fn names_machine(&self, file: &str) -> bool {
        file.split(['.', '#']).any(|part| part == self.machine)
    }

    /// Anything below `/run/nspawn` named for the machine: its name lock,
    /// registry record (and a half-written one), network and
    /// user-namespace records, control socket.
    fn records(&self) -> Vec<String> {
        let mut out = vec![];
        walk(&self.run_dir().join("nspawn"), 3, &mut |p| {
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| self.names_machine(n))
            {
                out.push(format!("record {}", p.display()));
            }
            true
        });
        out
    }

    /// The machine's cgroup in every hierarchy (v1 and the unified one).
    fn cgroups(&self) -> Vec<String> {
        let scope = crate::scope_name(self.machine);
        let mut out = vec![];
        walk(Path::new("/sys/fs/cgroup"), 6, &mut |p| {
            if !p.is_dir() {
                return false;
            }
            if p.file_name().and_then(|n| n.to_str()) == Some(scope.as_str()) {
                out.push(format!("cgroup {}", p.display()));
                return false;
            }
            true
        });
        out
    }

    fn command(&self, args: &[&str]) -> String {
        let mut c = match self.sandbox {
            Some(s) => s.command(args),
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        c.stdin(Stdio::null()).stderr(Stdio::null());
        c.output().map(|o| text(&o.stdout)).unwrap_or_default()
    }

    /// The host ends of its veth links (`ve-NAME`, or `vb-NAME` in a
    /// bridge or zone, shortened with a hash as the reference does past 15
    /// characters) and its zone's bridge.
    fn links(&self) -> Vec<String> {
        let names: Vec<String> = self
            .command(&["ip", "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        let ours = |link: &str| {
            ["ve-", "vb-"].iter().any(|p| {
                let full = format!("{p}{}", self.machine);
                match full.len() <= 15 {
                    true => link == full,
                    false => link.len() == 15 && link.starts_with(&full[..11]),
                }
            }) || self.zone.is_some_and(|z| link == format!("vz-{z}"))
        };
        names
            .into_iter()
            .filter(|n| ours(n))
            .map(|n| format!("link {n}"))
            .collect()
    }

    fn nft_tables(&self) -> Vec<String> {
        let table = format!("nspawn-{}", self.machine);
        self.command(&["nft", "list", "tables"])
            .lines()
            .filter(|l| l.split_whitespace().last() == Some(table.as_str()))
            .map(|l| format!("nftables {l}"))
            .collect()
    }

    /// IPv4 forwarding that we turned on (the marker) while no machine
    /// with an address of ours runs; looked at under the network lock, so
    /// a start or an end half-way through is never seen.
    fn forwarding(&self) -> Vec<String> {
        let dir = self.run_dir().join("nspawn");
        let Ok(lock) = std::fs::File::open(dir.join("net.lock")) else {
            return vec![];
        };
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file we opened; released when it closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return vec![];
        }
        if !dir.join("ip_forward").exists() {
            return vec![];
        }
        let needed = std::fs::read_dir(dir.join("net"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("container_address="))
            });
        match needed {
            true => vec![],
            false => vec!["ip_forward left on by nspawn with no machine needing it".into()],
        }
    }

    /// Mounts below the tree in any mount namespace on the host (a
    /// namespace kept alive by a leaked process or descriptor), or
    /// anything mounted from a source named after the machine. The tree
    /// itself may be a mount point of the test's (`DebianTree`).
    fn mounts(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = mounts_under(self.tree)
            .into_iter()
            .filter(|m| Path::new(m) != self.tree)
            .map(|m| format!("mount {m}"))
            .collect();
        let tree = self.tree.to_string_lossy();
        let below = format!("{tree}/");
        for info in crate::mount_namespaces() {
            for l in info.lines() {
                let f: Vec<&str> = l.split(' ').collect();
                let (point, source) = (f.get(4).copied().unwrap_or(""), l.split(" - ").nth(1));
                let named = source
                    .and_then(|s| s.split(' ').nth(1))
                    .is_some_and(|s| self.names_machine(s.rsplit('/').next().unwrap_or(s)));
                if point.starts_with(&below) || named {
                    out.insert(format!("mount {point} (another namespace)"));
                }
            }
        }
        out.into_iter().collect()
    }

    /// Half copies of `--template` beside the tree.
    fn temporaries(&self) -> Vec<String> {
        let Some(parent) = self.tree.parent() else {
            return vec![];
        };
        let name = self.tree.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".#{name}.");
        std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| format!("temporary {}", e.path().display()))
            .collect()
    }

    fn loop_devices(&self) -> Vec<String> {
        let tree = self.tree.to_string_lossy();
        std::fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let file = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
                (file.starts_with(tree.as_ref()) || self.names_machine(file.trim()))
                    .then(|| format!("loop device {:?} on {}", e.file_name(), file.trim()))
            })
            .collect()
    }

    /// Processes of the machine: a runner still running it, or anything
    /// (a reaper that hangs) holding one of its records open.
    fn processes(&self) -> Vec<String> {
        let mut out = vec![];
        let records = self.run_dir().join("nspawn");
        let host_records = Path::new("/run/nspawn");
        for (pid, _) in crate::all_processes() {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let t = target.to_string_lossy();
                let file = t.trim_end_matches(" (deleted)");
                let p = Path::new(file);
                let in_records = p.starts_with(&records) || p.starts_with(host_records);
                if in_records
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| self.names_machine(n))
                {
                    out.push(format!("process {pid} holds {t}"));
                    break;
                }
            }
        }
        out
    }
}

/// Visit `dir`'s entries down to `depth` levels; `f` says whether to go
/// into a directory.
fn walk(dir: &Path, depth: u32, f: &mut dyn FnMut(&Path) -> bool) {
    if depth == 0 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if f(&p) && is_dir {
            walk(&p, depth - 1, f);
        }
    }
}
