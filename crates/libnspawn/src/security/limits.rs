//! Process limits of the payload: `--rlimit=`, `--oom-score-adjust=`,
//! `--cpu-affinity=`, `--personality=`, each parsed as the reference does
//! and applied by the container process before it executes the payload
//! (all of them are inherited across execve(2)).

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// (resource, soft, hard), in the order given; a later one wins.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub oom_score_adjust: Option<i32>,
    /// CPU numbers.
    pub cpu_affinity: Option<Vec<usize>>,
    pub personality: Option<libc::c_ulong>,
}

/// (name, resource, unit): the names systemd's rlimit_from_string() knows.
const RLIMITS: &[(&str, libc::__rlimit_resource_t, Unit)] = &[
    ("CPU", libc::RLIMIT_CPU, Unit::Seconds),
    ("FSIZE", libc::RLIMIT_FSIZE, Unit::Bytes),
    ("DATA", libc::RLIMIT_DATA, Unit::Bytes),
    ("STACK", libc::RLIMIT_STACK, Unit::Bytes),
    ("CORE", libc::RLIMIT_CORE, Unit::Bytes),
    ("RSS", libc::RLIMIT_RSS, Unit::Bytes),
    ("NPROC", libc::RLIMIT_NPROC, Unit::Count),
    ("NOFILE", libc::RLIMIT_NOFILE, Unit::Count),
    ("MEMLOCK", libc::RLIMIT_MEMLOCK, Unit::Bytes),
    ("AS", libc::RLIMIT_AS, Unit::Bytes),
    ("LOCKS", libc::RLIMIT_LOCKS, Unit::Count),
    ("SIGPENDING", libc::RLIMIT_SIGPENDING, Unit::Count),
    ("MSGQUEUE", libc::RLIMIT_MSGQUEUE, Unit::Bytes),
    ("NICE", libc::RLIMIT_NICE, Unit::Nice),
    ("RTPRIO", libc::RLIMIT_RTPRIO, Unit::Count),
    ("RTTIME", libc::RLIMIT_RTTIME, Unit::Usec),
];

#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Bytes,
    Seconds,
    Usec,
    Nice,
}

/// One value: `infinity`, or a number with the suffixes systemd accepts
/// for the resource's unit (bytes: K M G T P E, base 1024; times: us ms s
/// min h d; nice: a `+N`/`-N` nice level, else the raw 0..40 limit).
fn parse_value(s: &str, unit: Unit) -> Option<u64> {
    if s == "infinity" {
        return Some(libc::RLIM_INFINITY);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if let Unit::Nice = unit {
        if !suffix.is_empty() {
            return None;
        }
        let n: i64 = num.parse().ok()?;
        return if num.starts_with(['+', '-']) {
            (-20..=19).contains(&n).then(|| (20 - n) as u64)
        } else {
            (0..=40).contains(&n).then_some(n as u64)
        };
    }
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let factor: u64 = match (unit, suffix) {
        (_, "") => 1,
        (Unit::Bytes, s) => {
            1024u64.checked_pow(" KMGTPE".find(s).filter(|&i| i > 0 && s.len() == 1)? as u32)?
        }
        (Unit::Seconds, "s") => 1,
        (Unit::Seconds, "min") => 60,
        (Unit::Seconds, "h") => 3600,
        (Unit::Seconds, "d") => 86400,
        (Unit::Usec, "us") => 1,
        (Unit::Usec, "ms") => 1000,
        (Unit::Usec, "s") => 1_000_000,
        (Unit::Usec, "min") => 60_000_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The resource of a limit's name (`NOFILE`, as systemd spells them).
pub fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    RLIMITS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, r, _)| r)
}

/// `--rlimit=NAME=SOFT[:HARD]`; NAME with or without `RLIMIT_`, upper case.
pub fn parse_rlimit(s: &str) -> Result<(libc::__rlimit_resource_t, u64, u64)> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("Resource limit lacks value: {s}")))?;
    let short = name.strip_prefix("RLIMIT_").unwrap_or(name);
    let &(_, res, unit) = RLIMITS
        .iter()
        .find(|(n, _, _)| *n == short)
        .ok_or_else(|| Error::invalid(format!("Unknown resource limit: {name}")))?;
    let bad = || Error::invalid(format!("Failed to parse resource limit: {value}"));
    let (soft, hard) = match value.split_once(':') {
        Some((a, b)) => (parse_value(a, unit), parse_value(b, unit)),
        None => (parse_value(value, unit), parse_value(value, unit)),
    };
    match (soft, hard) {
        (Some(s), Some(h)) if s <= h => Ok((res, s, h)),
        _ => Err(bad()),
    }
}

pub fn parse_oom_score_adjust(s: &str) -> Result<i32> {
    s.parse::<i32>()
        .ok()
        .filter(|n| (-1000..=1000).contains(n))
        .ok_or_else(|| {
            Error::invalid(format!(
                "Failed to parse --oom-score-adjust= parameter: {s}"
            ))
        })
}

/// A CPU list: `0`, `0-3`, `0,2-3` (commas or spaces).
pub fn parse_cpu_affinity(s: &str) -> Result<Vec<usize>> {
    let bad = |why: &str| Error::invalid(format!("Failed to parse CPU affinity mask {s}: {why}"));
    let mut cpus = vec![];
    for part in s.split([',', ' ']).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => return Err(bad("Invalid argument")),
        };
        if b >= libc::CPU_SETSIZE as usize {
            return Err(bad("Numerical result out of range"));
        }
        cpus.extend(a..=b);
    }
    if cpus.is_empty() {
        return Err(bad("Invalid argument"));
    }
    Ok(cpus)
}

/// The architectures this host can run, as systemd names them
/// (`uname -m` of the payload changes accordingly, personality(2)).
pub fn parse_personality(s: &str) -> Result<libc::c_ulong> {
    let native = if cfg!(target_arch = "x86_64") {
        "x86-64"
    } else {
        ""
    };
    match s {
        "x86" if cfg!(target_arch = "x86_64") => Ok(0x0008), // PER_LINUX32
        _ if s == native => Ok(0),                           // PER_LINUX
        _ => Err(Error::invalid(format!(
            "Unknown or unsupported personality '{s}'."
        ))),
    }
}

fn get(res: libc::__rlimit_resource_t) -> libc::rlimit {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid rlimit.
    unsafe { libc::getrlimit(res, &mut cur) };
    cur
}

/// setrlimit(2), or as close as we may: raising a hard limit needs
/// CAP_SYS_RESOURCE (which the runner may lack), so on EPERM both values
/// are capped at the current hard limit, as the reference's
/// setrlimit_closest() does.
fn set_closest(res: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<()> {
    let want = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads a valid rlimit.
    if unsafe { libc::setrlimit(res, &want) } == 0 {
        return Ok(());
    }
    let max = get(res).rlim_max;
    let closest = libc::rlimit {
        rlim_cur: soft.min(max),
        rlim_max: hard.min(max),
    };
    // SAFETY: as above.
    nix::errno::Errno::result(unsafe { libc::setrlimit(res, &closest) })
        .map(drop)
        .ctx(|| format!("cannot set resource limit {res}"))
}

/// Apply everything to this process, before execve.
pub fn apply(l: &Limits) -> Result<()> {
    // As the reference: the payload starts with at most 1024 descriptors
    // (soft limit; the hard one is kept), which select(2) can handle.
    let nofile = get(libc::RLIMIT_NOFILE);
    if nofile.rlim_cur > 1024 {
        set_closest(libc::RLIMIT_NOFILE, 1024, nofile.rlim_max)?;
    }
    for &(res, soft, hard) in &l.rlimits {
        set_closest(res, soft, hard)?;
    }
    if let Some(adj) = l.oom_score_adjust {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("cannot set the OOM score adjustment to {adj}"))?;
    }
    if let Some(cpus) = &l.cpu_affinity {
        let mut set = nix::sched::CpuSet::new();
        for &c in cpus {
            set.set(c)
                .ctx(|| format!("cannot set the CPU affinity: CPU {c}"))?;
        }
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .ctx(|| "cannot set the CPU affinity".into())?;
    }
    if let Some(p) = l.personality {
        // SAFETY: personality(2) with a plain value.
        if unsafe { libc::personality(p) } < 0 {
            return Err(nix::errno::Errno::last())
                .ctx(|| format!("cannot set the personality {p:#x}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits() {
        assert_eq!(
            parse_rlimit("RLIMIT_NOFILE=100:200").unwrap(),
            (libc::RLIMIT_NOFILE, 100, 200)
        );
        assert_eq!(
            parse_rlimit("NOFILE=50").unwrap(),
            (libc::RLIMIT_NOFILE, 50, 50)
        );
        assert_eq!(parse_rlimit("CPU=2min").unwrap().1, 120);
        assert_eq!(
            parse_rlimit("AS=1K:infinity").unwrap(),
            (libc::RLIMIT_AS, 1024, libc::RLIM_INFINITY)
        );
        assert_eq!(parse_rlimit("NICE=-5").unwrap().1, 25);
        for (bad, msg) in [
            ("nofile=50", "Unknown resource limit: nofile"),
            ("RLIMIT_BOGUS=5", "Unknown resource limit: RLIMIT_BOGUS"),
            ("RLIMIT_NOFILE=abc", "Failed to parse resource limit: abc"),
            ("NOFILE=10:5", "Failed to parse resource limit: 10:5"),
            ("NOFILE=1K", "Failed to parse resource limit: 1K"),
            ("NOFILE", "Resource limit lacks value: NOFILE"),
        ] {
            assert_eq!(parse_rlimit(bad).unwrap_err().to_string(), msg);
        }
    }

    #[test]
    fn others() {
        assert_eq!(parse_oom_score_adjust("-1000").unwrap(), -1000);
        assert!(parse_oom_score_adjust("2000").is_err());
        assert_eq!(parse_cpu_affinity("0,2-3").unwrap(), [0, 2, 3]);
        assert!(parse_cpu_affinity("x").is_err());
        assert!(parse_cpu_affinity("99999")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert_eq!(parse_personality("x86").unwrap(), 8);
        assert!(parse_personality("arm").is_err());
    }
}
