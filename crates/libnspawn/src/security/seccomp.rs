//! The system call filter: the reference's allow list (REFERENCE §2,
//! systemd-nspawn(1) `--system-call-filter=`), built with libseccomp.
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
//! Cost: rules without argument checks have a constant verdict per system
//! call, which the kernel caches in a bitmap since 5.11 (the filter is not
//! run at all for them); the few calls with argument checks (socket, open
//! with `--suppress-sync`) are reached through libseccomp's binary-tree
//! layout. BENCHMARKS.md has the measurement.

use super::syscall_sets::{Group, GROUPS};
use crate::error::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
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

const NETLINK_AUDIT: u64 = 9;

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

/// Expand groups (recursively) into system call names, leaving out `deny`
/// and whatever `deny`'s groups contain.
fn expand(item: &str, out: &mut BTreeSet<&'static str>, deny: &BTreeSet<&'static str>) {
    if let Some(g) = group(item) {
        for m in g.members {
            expand(m, out, deny);
        }
        return;
    }
    if let Some(name) = GROUPS
        .iter()
        .flat_map(|g| g.members.iter())
        .find(|m| **m == item)
        .filter(|m| !deny.contains(**m))
    {
        out.insert(name);
    }
}

/// The names the allow-list filter lets through for the kept capabilities
/// `retain` and the user's lists.
pub fn allowed(retain: u64, allow: &[String], deny: &[String]) -> BTreeSet<String> {
    let mut denied = BTreeSet::new();
    for d in deny {
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
    let mut names: BTreeSet<String> = out.into_iter().map(String::from).collect();
    // The user's own names need not be in any group.
    for a in allow {
        if a.starts_with('@') {
            let mut extra = BTreeSet::new();
            expand(a, &mut extra, &denied);
            names.extend(extra.into_iter().map(String::from));
        } else if !denied.contains(a.as_str()) && !deny.contains(a) {
            names.insert(a.clone());
        }
    }
    names
}

fn seccomp_err(what: &str) -> impl Fn(libseccomp::error::SeccompError) -> Error + '_ {
    move |e| Error::invalid(format!("cannot {what}: {e}"))
}

/// A filter for the native architecture and the compat ones it can run
/// (x86 and x32 on x86-64): a 32-bit `int 0x80` must not bypass it.
fn new_filter(default: ScmpAction) -> Result<ScmpFilterContext> {
    let mut f = ScmpFilterContext::new(default).map_err(seccomp_err("create a seccomp filter"))?;
    if cfg!(target_arch = "x86_64") {
        for arch in [ScmpArch::X86, ScmpArch::X32] {
            f.add_arch(arch)
                .map_err(seccomp_err("add an architecture to the seccomp filter"))?;
        }
    }
    // We set no_new_privs ourselves when asked (--no-new-privileges); the
    // filter is loaded with CAP_SYS_ADMIN instead.
    f.set_ctl_nnp(false)
        .map_err(seccomp_err("configure the seccomp filter"))?;
    Ok(f)
}

/// Add `action` for `name` where the architecture has it; names of other
/// architectures or of newer kernels than libseccomp knows are skipped.
fn add(f: &mut ScmpFilterContext, action: ScmpAction, name: &str) -> Result<()> {
    let Ok(sys) = ScmpSyscall::from_name(name) else {
        return Ok(());
    };
    match f.add_rule(action, sys) {
        Ok(_) => Ok(()),
        // A name that exists on none of our architectures.
        Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EDOM) => Ok(()),
        Err(e) => Err(Error::invalid(format!(
            "cannot add {name} to the seccomp filter: {e}"
        ))),
    }
}

/// Load the filters into this process; they are inherited by everything it
/// starts and cannot be removed.
pub fn load(retain: u64, allow: &[String], deny: &[String], suppress_sync: bool) -> Result<()> {
    let allowed = allowed(retain, allow, deny);
    let mut f = new_filter(ScmpAction::Errno(libc::ENOSYS))?;
    for name in &allowed {
        add(&mut f, ScmpAction::Allow, name)?;
    }
    for name in group("@known").map(|g| g.members).unwrap_or_default() {
        if !allowed.contains(*name) {
            add(&mut f, ScmpAction::Errno(libc::EPERM), name)?;
        }
    }
    f.set_ctl_optimize(2)
        .map_err(seccomp_err("configure the seccomp filter"))?;
    f.load().map_err(seccomp_err("load the seccomp filter"))?;

    let mut audit = new_filter(ScmpAction::Allow)?;
    audit
        .add_rule_conditional(
            ScmpAction::Errno(libc::EAFNOSUPPORT),
            ScmpSyscall::from_name("socket").map_err(seccomp_err("resolve socket"))?,
            &[
                ScmpArgCompare::new(0, ScmpCompareOp::Equal, libc::AF_NETLINK as u64),
                ScmpArgCompare::new(2, ScmpCompareOp::Equal, NETLINK_AUDIT),
            ],
        )
        .map_err(seccomp_err("add the audit socket rule"))?;
    audit
        .load()
        .map_err(seccomp_err("load the audit seccomp filter"))?;

    if suppress_sync {
        load_suppress_sync()?;
    }
    Ok(())
}

fn load_suppress_sync() -> Result<()> {
    let mut f = new_filter(ScmpAction::Allow)?;
    for name in group("@sync").map(|g| g.members).unwrap_or_default() {
        add(&mut f, ScmpAction::Errno(0), name)?;
    }
    let dsync = libc::O_DSYNC as u64; // O_SYNC includes this bit
    for (name, arg) in [("open", 1), ("openat", 2)] {
        let Ok(sys) = ScmpSyscall::from_name(name) else {
            continue;
        };
        f.add_rule_conditional(
            ScmpAction::Errno(libc::EINVAL),
            sys,
            &[ScmpArgCompare::new(
                arg,
                ScmpCompareOp::MaskedEqual(dsync),
                dsync,
            )],
        )
        .map_err(seccomp_err("add the O_SYNC rule"))?;
    }
    f.load()
        .map_err(seccomp_err("load the --suppress-sync seccomp filter"))
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
