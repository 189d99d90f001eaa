//! Which process a PID names. A PID is free for reuse as soon as its
//! process is reaped, so a record that names a process by PID alone takes
//! any later process of that PID for it. Its start time (proc_pid_stat(5)
//! field 22, clock ticks since boot) with the boot it counts from
//! (`/proc/sys/kernel/random/boot_id`) tells them apart.

use serde::{Deserialize, Serialize};

/// When a process started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcStart {
    /// The boot id: start times count from boot, so one recorded in an
    /// earlier boot must never match a process of this one.
    pub boot: String,
    /// Clock ticks from boot to the process's start.
    pub ticks: u64,
}

/// When the runner and the container's leader started; nothing (records
/// written before start times were) names them by PID alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Starts {
    pub runner: Option<ProcStart>,
    pub leader: Option<ProcStart>,
}

impl Starts {
    /// Ours, for the runner that publishes a record, and its child
    /// `leader`'s: a child's PID is not reused before its parent reaps it
    /// (wait(2)), so what /proc shows now under that PID is the child.
    pub fn now(leader: i32) -> Starts {
        Starts {
            runner: ProcStart::of(std::process::id() as i32),
            leader: ProcStart::of(leader),
        }
    }
}

impl ProcStart {
    /// The start of process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<ProcStart> {
        Some(ProcStart {
            boot: boot_id()?,
            ticks: stat(pid)?.ticks,
        })
    }
}

/// Whether `pid` is still the process that started at `start`, ended or
/// not (a zombie keeps its PID until its parent reaps it). Without a start
/// time, any process of that PID is.
pub fn is_same(pid: i32, start: Option<&ProcStart>) -> bool {
    stat(pid).is_some_and(|st| same_start(&st, start))
}

/// Whether `pid` is still the process that started at `start`, and has
/// not ended (a zombie has).
pub fn is_running(pid: i32, start: Option<&ProcStart>) -> bool {
    stat(pid).is_some_and(|st| !st.dead && same_start(&st, start))
}

fn same_start(st: &Stat, start: Option<&ProcStart>) -> bool {
    match start {
        None => true,
        Some(s) => s.ticks == st.ticks && boot_id().is_some_and(|b| b == s.boot),
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string())
}

/// What /proc/PID/stat says of a process now.
struct Stat {
    dead: bool,
    ticks: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&read_proc(&format!("/proc/{pid}/stat")).ok()?)
}

/// A small file of /proc, in one read: procfs gives its size as 0, and
/// `read_to_string` then reads it in growing pieces (32, 32, 64, 128...
/// bytes: six calls for a `stat` line, on the start path). Here because
/// the process starts are read here; libnspawn uses it too.
pub fn read_proc(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    // Plain reads: `read_to_end` on a `File` asks for its size first
    // (statx, lseek), which procfs cannot tell.
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// The command name (field 2) may hold spaces and parentheses of its own:
/// the fields after it start after its last ") " (proc_pid_stat(5)).
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    let ticks = fields.nth(18)?.parse().ok()?; // field 22
    Some(Stat {
        dead: matches!(state, "Z" | "X"),
        ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> (i32, ProcStart) {
        let pid = std::process::id() as i32;
        (pid, ProcStart::of(pid).unwrap())
    }

    #[test]
    fn a_command_name_with_parentheses_does_not_shift_the_fields() {
        let rest: Vec<String> = (3..=52).map(|f| f.to_string()).collect();
        let st = parse_stat(&format!("42 (a) b) c) Z {}", rest[1..].join(" "))).unwrap();
        assert!(st.dead);
        assert_eq!(st.ticks, 22);
    }

    #[test]
    fn our_start_is_ours() {
        let (pid, start) = ours();
        assert!(is_running(pid, Some(&start)) && is_same(pid, Some(&start)));
        assert!(is_running(pid, None) && is_same(pid, None));
    }

    #[test]
    fn another_start_is_another_process() {
        let (pid, start) = ours();
        let later = ProcStart {
            ticks: start.ticks + 1,
            ..start.clone()
        };
        assert!(!is_running(pid, Some(&later)) && !is_same(pid, Some(&later)));
        let other_boot = ProcStart {
            boot: "00000000-0000-0000-0000-000000000000".into(),
            ..start
        };
        assert!(!is_running(pid, Some(&other_boot)) && !is_same(pid, Some(&other_boot)));
    }

    #[test]
    fn no_process_is_not_running() {
        assert!(!is_running(0, None) && !is_same(0, None));
        assert!(!is_running(-1, None) && !is_same(-1, None));
    }

    #[test]
    fn a_zombie_is_the_same_process_but_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let start = ProcStart::of(pid).unwrap();
        // Not reaped: a zombie once it has exited.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat(pid).is_some_and(|st| !st.dead) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(is_same(pid, Some(&start)));
        assert!(!is_running(pid, Some(&start)));
        child.wait().unwrap();
    }
}
