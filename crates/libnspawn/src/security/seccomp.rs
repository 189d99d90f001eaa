//! The system call filter: the reference's allow list (REFERENCE §2,
//! systemd-nspawn(1) `--system-call-filter=`).
//!
//! Three filters are stacked; the kernel runs each and the most restrictive
//! verdict wins (seccomp(2), "multiple filters"):
//! 1. the allow list: system calls of the groups below and the user's
//!    `--system-call-filter=` allowed; every other system call systemd 252
//!    knows (`@known`) fails with EPERM, anything newer or unknown with
//!    ENOSYS, so programs fall back as they would on an older kernel;
//! 2. audit: `socket(AF_NETLINK, *, NETLINK_AUDIT)` fails with EAFNOSUPPORT,
//!    which audit userspace takes as "no audit in this kernel";
//! 3. with `--suppress-sync`: the sync calls succeed without doing anything
//!    and O_SYNC/O_DSYNC opens fail with EINVAL.
//!
//! The programs are assembled by `bpf`; libseccomp only resolves names to
//! numbers per ABI (x86-64, x32 and i386 on x86-64: a 32-bit `int 0x80`
//! must not bypass the filter).
//!
//! Cost: rules without argument checks have a constant verdict per system
//! call, which the kernel caches in a bitmap since 5.11 (the filter is not
//! run at all for them); only socket(2) (and open with `--suppress-sync`)
//! runs a filter. BENCHMARKS.md has the measurement.

use super::bpf::{self, Abi, Cond, Rule};
use super::syscall_sets::{Group, GROUPS};
use crate::error::{Error, Result};
use libseccomp::ScmpSyscall;
use std::collections::BTreeSet;

/// What every container may do (systemd 252, src/nspawn/nspawn-seccomp.c).
const ALLOW: &[&str] = &[
    "@aio",
    "@basic-io",
    "@chown",
    "@default",
    "@file-system",
    "@io-event",
    "@ipc",
    "@mount",
    "@network-io",
    "@process",
    "@resources",
    "@setuid",
    "@signal",
    "@sync",
    "@timer",
    // Not in any of the groups above.
    "brk",
    "capget",
    "capset",
    "copy_file_range",
    "fadvise64",
    "fadvise64_64",
    "flock",
    "get_mempolicy",
    "getcpu",
    "getpriority",
    "ioctl",
    "ioprio_get",
    "kcmp",
    "madvise",
    "mremap",
    "name_to_handle_at",
    "oldolduname",
    "olduname",
    "personality",
    "readahead",
    "readdir",
    "remap_file_pages",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_yield",
    "seccomp",
    "sendfile",
    "sendfile64",
    "setdomainname",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "sethostname",
    "setpgid",
    "setsid",
    "splice",
    "sysinfo",
    "tee",
    "umask",
    "uname",
    "userfaultfd",
    "vmsplice",
];

/// Allowed only when the container keeps the capability that makes them
/// useful; without it they fail with EPERM before reaching the kernel.
/// Never allowed (not listed anywhere): @cpu-emulation, @keyring (keys are
/// not namespaced), @obsolete, @pkey, @swap, bpf (bpffs is not namespaced),
/// fanotify_*, kexec_*, lookup_dcookie, nfsservctl, open_by_handle_at,
/// perf_event_open, quotactl.
const ALLOW_WITH_CAP: &[(caps::Capability, &str)] = {
    use caps::Capability as C;
    &[
        (C::CAP_SYS_TIME, "@clock"),
        (C::CAP_SYS_MODULE, "@module"),
        (C::CAP_SYS_RAWIO, "@raw-io"),
        (C::CAP_IPC_LOCK, "@memlock"),
        (C::CAP_SYS_PACCT, "acct"),
        (C::CAP_SYS_PTRACE, "process_vm_readv"),
        (C::CAP_SYS_PTRACE, "process_vm_writev"),
        (C::CAP_SYS_PTRACE, "ptrace"),
        (C::CAP_SYS_BOOT, "reboot"),
        (C::CAP_SYSLOG, "syslog"),
        (C::CAP_SYS_TTY_CONFIG, "vhangup"),
    ]
};

const NETLINK_AUDIT: u32 = 9;

fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

/// Whether libseccomp knows the name on any architecture we filter.
fn resolves(name: &str) -> bool {
    ScmpSyscall::from_name(name).is_ok()
}

/// Check a `--system-call-filter=` list (space separated, as the
/// reference): group names must be ours, system call names known to
/// libseccomp. The reference only warns and goes on; we refuse.
pub fn parse_list(s: &str) -> Result<(bool, Vec<String>)> {
    let (deny, items) = match s.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let words: Vec<String> = items.split_whitespace().map(String::from).collect();
    for w in &words {
        let known = if w.starts_with('@') {
            group(w).is_some()
        } else {
            resolves(w) || group("@known").is_some_and(|g| g.members.contains(&w.as_str()))
        };
        if !known {
            return Err(Error::invalid(format!(
                "--system-call-filter: unknown system call or group: {w}"
            )));
        }
    }
    Ok((deny, words))
}

/// `--system-call-filter=help`: the groups and what they contain.
pub fn help() -> String {
    let mut out = String::new();
    for g in GROUPS {
        out += &format!("{}\n    # {}\n", g.name, g.help);
        for m in g.members {
            out += &format!("    {m}\n");
        }
    }
    out
}

/// Expand groups (recursively) into system call names, leaving out
/// `deny`. Every name here is one of our tables' own strings.
fn expand(item: &'static str, out: &mut BTreeSet<&'static str>, deny: &BTreeSet<&'static str>) {
    match group(item) {
        Some(g) => g.members.iter().for_each(|m| expand(m, out, deny)),
        None if !deny.contains(item) => {
            out.insert(item);
        }
        None => {}
    }
}

/// A user's name as one of our tables' strings (parse_list checked it is).
fn known_name(name: &str) -> Option<&'static str> {
    if let Some(g) = group(name) {
        return Some(g.name);
    }
    group("@known")?
        .members
        .iter()
        .copied()
        .find(|m| *m == name)
}

/// The names the allow-list filter lets through for the kept capabilities
/// `retain` and the user's lists.
pub fn allowed(retain: u64, allow: &[String], deny: &[String]) -> BTreeSet<String> {
    let mut denied = BTreeSet::new();
    for d in deny.iter().filter_map(|d| known_name(d)) {
        expand(d, &mut denied, &BTreeSet::new());
    }
    let mut out = BTreeSet::new();
    let with_caps = ALLOW_WITH_CAP
        .iter()
        .filter(|(cap, _)| retain & cap.bitmask() != 0)
        .map(|(_, n)| *n);
    for item in ALLOW.iter().copied().chain(with_caps) {
        expand(item, &mut out, &denied);
    }
    for a in allow.iter().filter_map(|a| known_name(a)) {
        expand(a, &mut out, &denied);
    }
    let mut names: BTreeSet<String> = out.into_iter().map(String::from).collect();
    // Names libseccomp knows but systemd 252 did not.
    for a in allow {
        if known_name(a).is_none() && !deny.contains(a) {
            names.insert(a.clone());
        }
    }
    names
}

/// Rules for one ABI: each name's number there, with its action; names the
/// ABI lacks are skipped. The first action given for a number wins (names
/// may alias one number).
fn rules_for(abi: Abi, entries: &[(&str, u32)]) -> Vec<Rule> {
    let mut by_nr = std::collections::BTreeMap::new();
    for &(name, action) in entries {
        if let Ok(nr) = ScmpSyscall::from_name_by_arch(name, abi.scmp()) {
            if let Ok(nr) = u32::try_from(i32::from(nr)) {
                by_nr.entry(nr).or_insert(action);
            }
        }
    }
    by_nr
        .into_iter()
        .map(|(nr, action)| Rule {
            nr,
            conds: vec![],
            action,
        })
        .collect()
}

fn number(abi: Abi, name: &str) -> Option<u32> {
    let nr = ScmpSyscall::from_name_by_arch(name, abi.scmp()).ok()?;
    u32::try_from(i32::from(nr)).ok()
}

/// Load the filters into this process; they are inherited by everything it
/// starts and cannot be removed.
pub fn load(retain: u64, allow: &[String], deny: &[String], suppress_sync: bool) -> Result<()> {
    let allowed = allowed(retain, allow, deny);
    let mut entries: Vec<(&str, u32)> = allowed
        .iter()
        .map(|n| (n.as_str(), bpf::RET_ALLOW))
        .collect();
    let known = group("@known").map(|g| g.members).unwrap_or_default();
    entries.extend(known.iter().map(|n| (*n, bpf::ret_errno(libc::EPERM))));
    let rules: Vec<(Abi, Vec<Rule>)> = Abi::ALL
        .iter()
        .map(|&abi| (abi, rules_for(abi, &entries)))
        .collect();
    let prog = bpf::assemble(&rules, bpf::ret_errno(libc::ENOSYS))?;
    bpf::load(&prog, "seccomp filter")?;

    // i386 reaches socket(2) through socketcall(2) as well, whose
    // arguments a filter cannot see; as the reference, only the direct
    // calls are covered.
    let audit: Vec<(Abi, Vec<Rule>)> = [Abi::X86_64, Abi::X32]
        .iter()
        .filter_map(|&abi| {
            let nr = number(abi, "socket")?;
            let cond = |arg, value| Cond {
                arg,
                mask: u32::MAX,
                value,
            };
            let rule = Rule {
                nr,
                conds: vec![cond(0, libc::AF_NETLINK as u32), cond(2, NETLINK_AUDIT)],
                action: bpf::ret_errno(libc::EAFNOSUPPORT),
            };
            Some((abi, vec![rule]))
        })
        .collect();
    bpf::load(
        &bpf::assemble(&audit, bpf::RET_ALLOW)?,
        "audit seccomp filter",
    )?;

    if suppress_sync {
        load_suppress_sync()?;
    }
    Ok(())
}

fn load_suppress_sync() -> Result<()> {
    let sync = group("@sync").map(|g| g.members).unwrap_or_default();
    let dsync = libc::O_DSYNC as u32; // O_SYNC includes this bit
    let rules: Vec<(Abi, Vec<Rule>)> = Abi::ALL
        .iter()
        .map(|&abi| {
            let entries: Vec<(&str, u32)> = sync.iter().map(|n| (*n, bpf::ret_errno(0))).collect();
            let mut rules = rules_for(abi, &entries);
            for (name, arg) in [("open", 1), ("openat", 2)] {
                if let Some(nr) = number(abi, name) {
                    rules.push(Rule {
                        nr,
                        conds: vec![Cond {
                            arg,
                            mask: dsync,
                            value: dsync,
                        }],
                        action: bpf::ret_errno(libc::EINVAL),
                    });
                }
            }
            (abi, rules)
        })
        .collect();
    bpf::load(
        &bpf::assemble(&rules, bpf::RET_ALLOW)?,
        "--suppress-sync seccomp filter",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[caps::Capability]) -> u64 {
        list.iter().fold(0, |m, c| m | c.bitmask())
    }

    #[test]
    fn default_policy() {
        let a = allowed(super::super::caps::default_mask(false), &[], &[]);
        for yes in [
            "read",
            "openat",
            "mount",
            "socket",
            "setresuid",
            "reboot",
            "ioctl",
            "ptrace",
        ] {
            assert!(a.contains(yes), "{yes}");
        }
        for no in [
            "settimeofday",
            "clock_settime",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "open_by_handle_at",
            "keyctl",
            "add_key",
            "bpf",
            "swapon",
            "perf_event_open",
            "iopl",
            "acct",
            "syslog",
            "mlock",
        ] {
            assert!(!a.contains(no), "{no}");
        }
        let with_time = allowed(caps(&[caps::Capability::CAP_SYS_TIME]), &[], &[]);
        assert!(with_time.contains("clock_settime") && !with_time.contains("reboot"));
    }

    #[test]
    fn user_lists() {
        let deny = vec!["@sync".to_string(), "uname".to_string()];
        let a = allowed(0, &["kexec_load".into(), "@keyring".into()], &deny);
        assert!(a.contains("kexec_load") && a.contains("keyctl"));
        assert!(!a.contains("fsync") && !a.contains("uname"));
        assert!(parse_list("~@sync uname").unwrap() == (true, deny));
        assert!(parse_list("@bogus").is_err());
        assert!(parse_list("bogus_call").is_err());
        assert!(parse_list("kexec_load @clock").is_ok());
    }
}
