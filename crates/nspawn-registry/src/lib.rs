//! What a running machine publishes, read without a daemon: one JSON
//! record per machine in `/run/nspawn/machines/NAME`, and whether the
//! machine behind a record still runs.
//!
//! The readers' half of the registry, on its own so that the NSS module,
//! which runs inside every process that resolves a host name, links only
//! this. Writing, listing and removing records is libnspawn's `registry`,
//! which re-exports this crate.
//!
//! A record alone proves nothing: a machine is running only while its
//! cgroup is locked (the runner and its reaper hold `flock(2)` on it), and
//! its runner and leader are the processes the record names only while
//! they have the start times it recorded (`start.rs`).

mod start;

pub use start::{is_running, is_same, read_proc, ProcStart, Starts};

use serde::{Deserialize, Serialize};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const DIR: &str = "/run/nspawn/machines";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub class: String,
    pub service: String,
    /// The tree on the host.
    pub root: PathBuf,
    /// PID 1 of the container, as the host sees it.
    pub leader: i32,
    /// The runner's PID.
    pub runner: i32,
    /// When the runner and the leader started, so that a PID reused after
    /// either ended is not taken for it.
    #[serde(default)]
    pub starts: Starts,
    /// The machine id, 32 hex digits.
    pub id: String,
    /// The container's cgroup on the unified hierarchy, if any.
    pub cgroup: Option<PathBuf>,
    /// Host-side network interfaces.
    pub interfaces: Vec<String>,
    pub addresses: Vec<String>,
    pub state: String,
    /// Start time, microseconds since the epoch.
    pub started_usec: u64,
    /// The capability bounding set of the container's processes, so that
    /// `nspawnctl shell` confines what it starts the same way.
    pub bounding: u64,
    /// The system call filter's additions and removals, and the other
    /// confinement of the container's processes, for the same reason.
    #[serde(default)]
    pub syscall_allow: Vec<String>,
    #[serde(default)]
    pub syscall_deny: Vec<String>,
    #[serde(default)]
    pub suppress_sync: bool,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// A whole system call policy instead of ours and the lists above
    /// (an OCI bundle's), as libnspawn's `SyscallPolicy` serializes.
    #[serde(default)]
    pub syscall_policy: Option<serde_json::Value>,
    /// The runner's control endpoint.
    #[serde(default)]
    pub control: Option<PathBuf>,
}

pub fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// The largest record read. Ours are a few hundred bytes; the bound keeps
/// a reader (the NSS module, in any process) from reading without end.
pub const RECORD_MAX: usize = 256 * 1024;
/// Host links and addresses a record may list.
const LIST_MAX: usize = 64;

/// The record at `p`, running or not.
pub fn read(p: &Path) -> Option<Record> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(p)
        .ok()?
        .take(RECORD_MAX as u64 + 1)
        .read_to_end(&mut data)
        .ok()?;
    parse(&data)
}

/// A record from its text; None unless it is one a runner could have
/// written: at most `RECORD_MAX` bytes, a valid machine name, PIDs that
/// name one process each (`kill(2)` takes 0 and negative ones for groups),
/// bounded lists. serde_json refuses nesting deeper than 128.
pub fn parse(data: &[u8]) -> Option<Record> {
    if data.len() > RECORD_MAX {
        return None;
    }
    let r: Record = serde_json::from_slice(data).ok()?;
    let sane = machine_name_is_valid(&r.name)
        && r.leader > 0
        && r.runner > 0
        && r.interfaces.len() <= LIST_MAX
        && r.addresses.len() <= LIST_MAX;
    sane.then_some(r)
}

/// A machine name is a valid host name of at most 64 characters, as in
/// systemd's `machine_name_is_valid()`: labels of letters, digits and `-`,
/// separated by single dots, not starting or ending with `-` or `.`.
pub fn machine_name_is_valid(s: &str) -> bool {
    hostname_is_valid(s) && s.len() <= 64
}

pub fn hostname_is_valid(s: &str) -> bool {
    if s.is_empty() || s.len() > 64 {
        return false;
    }
    let (mut dot, mut hyphen) = (true, true);
    for c in s.bytes() {
        match c {
            b'.' => {
                if dot || hyphen {
                    return false;
                }
                dot = true;
                hyphen = false;
            }
            b'-' => {
                if dot {
                    return false;
                }
                hyphen = true;
            }
            c if c.is_ascii_alphanumeric() => {
                dot = false;
                hyphen = false;
            }
            _ => return false,
        }
    }
    !dot && !hyphen
}

/// The record of `name` as written, running or not.
pub fn read_record(name: &str) -> Option<Record> {
    read(&path(name))
}

/// Whether the machine behind a record still runs: its cgroup is locked,
/// or (hosts without a unified hierarchy) its leader is still there, if
/// only as a zombie its runner has yet to reap.
pub fn alive(r: &Record) -> bool {
    match &r.cgroup {
        Some(cg) => locked(cg),
        None => is_same(r.leader, r.starts.leader.as_ref()),
    }
}

/// Whether someone (the runner or its reaper) holds a lock on the
/// directory at `dir`: then we cannot get one.
fn locked(dir: &Path) -> bool {
    let Ok(dir) = std::fs::File::open(dir) else {
        return false;
    };
    // libc rather than a wrapper crate for this one call: the NSS module
    // already links libc, and links nothing it does not need. A lock we do
    // get goes with the descriptor, when `dir` is dropped.
    // SAFETY: flock(2) on a descriptor we own.
    unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

/// Whether the runner that published `r` still lives (a zombie does not,
/// nor a later process that got its PID).
pub fn runner_alive(r: &Record) -> bool {
    is_running(r.runner, r.starts.runner.as_ref())
}

/// Whether the runner that published `name`'s record still lives. False
/// without a record.
pub fn runner_lives(name: &str) -> bool {
    read_record(name).is_some_and(|r| runner_alive(&r))
}

/// The running machine `name`, without touching anything (for the NSS
/// module, which runs inside every process that resolves a host name).
pub fn lookup(name: &str) -> Option<Record> {
    if !machine_name_is_valid(name) {
        return None;
    }
    // The file's name and the record's must agree: the record's is what
    // callers are told the machine is called.
    read(&path(name)).filter(|r| r.name == name && alive(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record naming our own process as runner and leader, with the
    /// given start times and no cgroup.
    fn record(starts: Starts) -> Record {
        let pid = std::process::id() as i32;
        let mut r: Record = serde_json::from_str(&format!(
            r#"{{"name":"m","class":"container","service":"nspawn","root":"/",
                "leader":{pid},"runner":{pid},"id":"","cgroup":null,"interfaces":[],
                "addresses":[],"state":"running","started_usec":0,"bounding":0}}"#
        ))
        .unwrap();
        r.starts = starts;
        r
    }

    fn ours_but_later() -> ProcStart {
        let start = ProcStart::of(std::process::id() as i32).unwrap();
        ProcStart {
            ticks: start.ticks + 1,
            ..start
        }
    }

    #[test]
    fn a_reused_runner_pid_is_not_the_runner() {
        let r = record(Starts {
            runner: Some(ours_but_later()),
            leader: None,
        });
        assert!(!runner_alive(&r));
    }

    #[test]
    fn a_reused_leader_pid_is_not_a_running_machine() {
        let r = record(Starts {
            runner: None,
            leader: Some(ours_but_later()),
        });
        assert!(!alive(&r));
    }

    #[test]
    fn the_recorded_processes_are_alive() {
        let r = record(Starts::now(std::process::id() as i32));
        assert!(r.starts.runner.is_some() && r.starts.leader.is_some());
        assert!(runner_alive(&r) && alive(&r));
    }

    #[test]
    fn a_record_without_start_times_is_believed_by_its_pids() {
        let r = record(Starts::default());
        assert!(runner_alive(&r) && alive(&r));
    }

    #[test]
    fn hostile_records_are_refused() {
        let good = serde_json::to_string(&record(Starts::default())).unwrap();
        assert!(parse(good.as_bytes()).is_some());
        let with = |from: &str, to: &str| {
            assert!(good.contains(from), "{from}");
            good.replacen(from, to, 1)
        };
        let pid = std::process::id();
        for bad in [
            with(r#""name":"m""#, r#""name":"../../etc/passwd""#),
            with(r#""name":"m""#, r#""name":"m\u001b[2J""#),
            with(r#""name":"m""#, &format!(r#""name":"{}""#, "a".repeat(65))),
            with(r#""name":"m""#, r#""name":"""#),
            with(&format!(r#""leader":{pid}"#), r#""leader":-1"#),
            with(&format!(r#""leader":{pid}"#), r#""leader":0"#),
            with(&format!(r#""runner":{pid}"#), r#""runner":-5"#),
            with(&format!(r#""runner":{pid}"#), r#""runner":99999999999"#),
            with(
                r#""addresses":[]"#,
                &format!(r#""addresses":[{}"1.2.3.4"]"#, "\"1.2.3.4\",".repeat(64)),
            ),
            with(r#""bounding":0"#, r#""bounding":-1"#),
            good[..good.len() - 1].to_string(),
            String::new(),
            "[".repeat(100_000),
            format!("{} {}", good, " ".repeat(RECORD_MAX)),
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{:.200}", bad);
        }
        // Unknown fields are ignored, for records of later versions.
        assert!(parse(with(r#""name":"m""#, r#""name":"m","new":[1]"#).as_bytes()).is_some());
    }

    #[test]
    fn lookup_takes_only_machine_names() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "x\n",
            &"a".repeat(65),
        ] {
            assert!(lookup(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_round_trips() {
        let r = record(Starts::now(std::process::id() as i32));
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
