//! The system call filter: the reference's allow list (REFERENCE §2,
//! systemd-nspawn(1) `--system-call-filter=`).
//!
//! One filter, or two stacked (the kernel runs each and the most
//! restrictive verdict wins, seccomp(2), "multiple filters"):
//! 1. the allow list: system calls of the groups below and the user's
//!    `--system-call-filter=` allowed; every other system call systemd 252
//!    knows (`@known`) fails with EPERM, anything newer or unknown with
//!    ENOSYS, so programs fall back as they would on an older kernel. Its
//!    first check: `socket(AF_NETLINK, *, NETLINK_AUDIT)` fails with
//!    EAFNOSUPPORT, which audit userspace takes as "no audit in this
//!    kernel" (whatever the lists say of socket(2), as a filter of its own
//!    stacked on top would; one filter less to load saves about 0.1 ms of
//!    every start, the kernel's fixed cost of one);
//! 2. with `--suppress-sync`: the sync calls succeed without doing anything
//!    and O_SYNC/O_DSYNC opens fail with EINVAL.
//!
//! The programs are assembled by `bpf` for the build's architecture, with
//! one section per ABI its kernel serves (x86-64, x32 and i386 on x86-64:
//! a 32-bit `int 0x80` must not bypass the filter; aarch64 alone, see
//! `bpf::Arch`); `syscall_numbers` has the numbers.
//!
//! Cost: rules without argument checks have a constant verdict per system
//! call, which the kernel caches in a bitmap since 5.11 (the filter is not
//! run at all for them); only socket(2) (and open with `--suppress-sync`)
//! runs a filter. BENCHMARKS.md has the measurement.

use super::bpf::{self, Abi, Arch, Cond, Op, Rule};
use super::syscall_numbers::{self, number};
use super::syscall_sets::{Group, GROUPS};
use crate::error::{Error, Result};
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
    // Every member of every group is looked up on each start; only names
    // starting with @ can be groups.
    if !name.starts_with('@') {
        return None;
    }
    GROUPS.iter().find(|g| g.name == name)
}

/// Check a `--system-call-filter=` list (space separated, as the
/// reference): group names must be ours, system call names known on some
/// architecture (`syscall_numbers::known`, which takes what libseccomp
/// took) or to systemd. The reference only warns and goes on; we refuse.
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
            syscall_numbers::known(w)
                || group("@known").is_some_and(|g| g.members.contains(&w.as_str()))
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
pub fn allowed<'a>(retain: u64, allow: &'a [String], deny: &[String]) -> BTreeSet<&'a str> {
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
    let mut names: BTreeSet<&'a str> = out;
    // System calls the tables know but systemd 252 did not.
    for a in allow {
        if known_name(a).is_none() && !deny.contains(a) {
            names.insert(a);
        }
    }
    names
}

/// Rules for one ABI: each name's number there, with its action; names the
/// ABI lacks are skipped. The first action given for a number wins (names
/// may alias one number).
fn rules_for(abi: Abi, entries: &[(&str, u32)]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = entries
        .iter()
        .filter_map(|&(name, action)| {
            Some(Rule {
                nr: number(abi, name)?,
                conds: vec![],
                action,
            })
        })
        .collect();
    // Stable: of equal numbers, the first stays.
    rules.sort_by_key(|r| r.nr);
    rules.dedup_by_key(|r| r.nr);
    rules
}

/// What a filter is, for its error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    AllowList,
    SuppressSync,
    Bundle,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::AllowList, Kind::SuppressSync, Kind::Bundle];

    fn what(self) -> &'static str {
        match self {
            Kind::AllowList => "seccomp filter",
            Kind::SuppressSync => "--suppress-sync seccomp filter",
            Kind::Bundle => "seccomp filter of the bundle",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Filter {
    kind: Kind,
    flags: u32,
    prog: Vec<libc::sock_filter>,
}

/// The filters a process loads, in order, all assembled before the first
/// is loaded (a failure leaves none). The runner assembles a container's
/// while the container process sets up its root, and sends them to it
/// (`encode`/`decode`): assembling costs a fifth of a millisecond, which
/// is then off the start's path.
#[derive(Debug, PartialEq, Eq)]
pub struct Filters(Vec<Filter>);

/// An encoded filter's header: its kind, flags and length.
const HEADER: usize = 1 + 4 + 4;

impl Filters {
    /// A bundle's whole policy instead of ours (the allow list with its
    /// audit rule, as the reference), or ours for the kept capabilities
    /// `retain` and the user's lists; `--suppress-sync`'s filter on top.
    /// For `arch` (`Arch::HOST` but in tests).
    pub fn assemble(
        arch: Arch,
        policy: Option<&super::syscall_policy::SyscallPolicy>,
        retain: u64,
        allow: &[String],
        deny: &[String],
        suppress_sync: bool,
    ) -> Result<Filters> {
        let plain = |kind, prog| Filter {
            kind,
            flags: 0,
            prog,
        };
        let mut out = match policy {
            Some(p) => vec![Filter {
                kind: Kind::Bundle,
                flags: p.flags,
                prog: p.program(arch)?,
            }],
            None => vec![plain(
                Kind::AllowList,
                allow_list_program(arch, retain, allow, deny)?,
            )],
        };
        if suppress_sync {
            out.push(plain(Kind::SuppressSync, suppress_sync_program(arch)?));
        }
        Ok(Filters(out))
    }

    /// Load them into this process; they are inherited by everything it
    /// starts and cannot be removed.
    pub fn load(&self) -> Result<()> {
        for f in &self.0 {
            bpf::load_with(&f.prog, f.flags, f.kind.what())?;
        }
        Ok(())
    }

    /// As bytes for the setup channel: per filter its kind, flags,
    /// length and instructions, in native byte order (both ends are us).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![];
        for f in &self.0 {
            out.push(f.kind as u8);
            out.extend_from_slice(&f.flags.to_ne_bytes());
            out.extend_from_slice(&(f.prog.len() as u32).to_ne_bytes());
            for i in &f.prog {
                out.extend_from_slice(&i.code.to_ne_bytes());
                out.extend_from_slice(&[i.jt, i.jf]);
                out.extend_from_slice(&i.k.to_ne_bytes());
            }
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<Filters> {
        let mut out = vec![];
        while !b.is_empty() {
            let head = b.get(..HEADER)?;
            let kind = *Kind::ALL.get(head[0] as usize)?;
            let flags = u32::from_ne_bytes(head[1..5].try_into().ok()?);
            let len = u32::from_ne_bytes(head[5..9].try_into().ok()?) as usize;
            let body = b.get(HEADER..HEADER + len.checked_mul(8)?)?;
            let prog = body
                .chunks_exact(8)
                .map(|c| libc::sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect();
            out.push(Filter { kind, flags, prog });
            b = &b[HEADER + body.len()..];
        }
        Some(Filters(out))
    }

    /// The most an encoding takes: three filters of the kernel's largest
    /// size (BPF_MAXINSNS).
    pub const MAX_ENCODED: usize = 3 * (HEADER + 4096 * 8);
}

/// The allow list for `arch`: what `allowed` lets through, every other
/// system call systemd 252 knows failing with EPERM, the rest with ENOSYS.
fn allow_list_program(
    arch: Arch,
    retain: u64,
    allow: &[String],
    deny: &[String],
) -> Result<Vec<libc::sock_filter>> {
    let allowed = allowed(retain, allow, deny);
    let mut entries: Vec<(&str, u32)> = allowed.iter().map(|n| (*n, bpf::RET_ALLOW)).collect();
    // Each name once (a third of the lookups of listing @known whole).
    let known = group("@known").map(|g| g.members).unwrap_or_default();
    entries.extend(
        known
            .iter()
            .filter(|n| !allowed.contains(**n))
            .map(|n| (*n, bpf::ret_errno(libc::EPERM))),
    );
    let rules: Vec<(Abi, Vec<Rule>)> = arch
        .abis()
        .iter()
        .map(|&abi| {
            // Rules with argument checks come first (`bpf::section`).
            let audit = audit_rule(abi);
            (
                abi,
                audit.into_iter().chain(rules_for(abi, &entries)).collect(),
            )
        })
        .collect();
    bpf::assemble(arch, &rules, bpf::ret_errno(libc::ENOSYS))
}

/// `socket(AF_NETLINK, *, NETLINK_AUDIT)` fails with EAFNOSUPPORT. i386
/// reaches socket(2) through socketcall(2) as well, whose arguments a
/// filter cannot see; as the reference, only the direct calls are covered.
fn audit_rule(abi: Abi) -> Option<Rule> {
    let cond = Cond::int;
    Some(Rule {
        nr: number(abi, "socket")?,
        conds: vec![cond(0, libc::AF_NETLINK as u32), cond(2, NETLINK_AUDIT)],
        action: bpf::ret_errno(libc::EAFNOSUPPORT),
    })
}

/// The sync calls that take a descriptor: suppressed only for one that can
/// be valid (0..=INT_MAX), so that a bad one still fails with EBADF, as
/// under the reference.
const SYNC_ON_FD: &[&str] = &[
    "fdatasync",
    "fsync",
    "sync_file_range",
    "sync_file_range2",
    "arm_sync_file_range",
    "syncfs",
];

fn suppress_sync_program(arch: Arch) -> Result<Vec<libc::sock_filter>> {
    let sync = group("@sync").map(|g| g.members).unwrap_or_default();
    // arg0 <= INT_MAX: the upper half zero and the sign bit of the lower clear.
    let fd_ok = vec![Cond {
        arg: 0,
        op: Op::MaskedEq(0xffff_ffff_8000_0000),
        value: 0,
    }];
    // O_SYNC includes this bit; the same value in x86's and the generic
    // fcntl.h, so a program assembled for another architecture is right.
    let dsync = libc::O_DSYNC as u32;
    let rules: Vec<(Abi, Vec<Rule>)> = arch
        .abis()
        .iter()
        .map(|&abi| {
            let entries: Vec<(&str, u32)> = sync
                .iter()
                .filter(|n| !SYNC_ON_FD.contains(n))
                .map(|n| (*n, bpf::ret_errno(0)))
                .collect();
            let mut rules = rules_for(abi, &entries);
            for name in SYNC_ON_FD {
                if let Some(nr) = number(abi, name) {
                    rules.push(Rule {
                        nr,
                        conds: fd_ok.clone(),
                        action: bpf::ret_errno(0),
                    });
                }
            }
            for (name, arg) in [("open", 1), ("openat", 2)] {
                if let Some(nr) = number(abi, name) {
                    rules.push(Rule {
                        nr,
                        conds: vec![Cond {
                            arg,
                            op: Op::MaskedEq(dsync as u64),
                            value: dsync as u64,
                        }],
                        action: bpf::ret_errno(libc::EINVAL),
                    });
                }
            }
            (abi, rules)
        })
        .collect();
    bpf::assemble(arch, &rules, bpf::RET_ALLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our filters for `arch`, in their order.
    fn programs(
        arch: Arch,
        retain: u64,
        allow: &[String],
        deny: &[String],
        suppress_sync: bool,
    ) -> Result<Vec<Vec<libc::sock_filter>>> {
        let f = Filters::assemble(arch, None, retain, allow, deny, suppress_sync)?;
        Ok(f.0.into_iter().map(|f| f.prog).collect())
    }

    #[test]
    fn filters_cross_the_channel_unchanged() {
        let retain = super::super::caps::default_mask(false);
        for ss in [false, true] {
            let f = Filters::assemble(Arch::HOST, None, retain, &[], &[], ss).unwrap();
            let bytes = f.encode();
            assert!(bytes.len() <= Filters::MAX_ENCODED);
            assert_eq!(Filters::decode(&bytes), Some(f));
            // Cut anywhere inside, it is refused, never misread.
            for cut in [1, HEADER, HEADER + 3, bytes.len() - 1] {
                assert_eq!(Filters::decode(&bytes[..cut]), None, "{cut}");
            }
        }
        assert_eq!(Filters::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Filters::decode(&[]), Some(Filters(vec![])));
    }

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
        let allow = ["kexec_load".into(), "@keyring".into()];
        let a = allowed(0, &allow, &deny);
        assert!(a.contains("kexec_load") && a.contains("keyctl"));
        assert!(!a.contains("fsync") && !a.contains("uname"));
        assert!(parse_list("~@sync uname").unwrap() == (true, deny));
        assert!(parse_list("@bogus").is_err());
        assert!(parse_list("bogus_call").is_err());
        assert!(parse_list("kexec_load @clock").is_ok());
    }

    /// A name known on one architecture only is accepted everywhere and
    /// has rules only where it has a number.
    #[test]
    fn names_of_other_architectures() {
        use bpf::X32_SYSCALL_BIT;
        // i386 only; mips only (systemd's @known); 32-bit arm's private
        // call (libseccomp's list); newer than systemd 252 and libseccomp.
        for name in ["socketcall", "sysmips", "breakpoint", "mseal"] {
            assert!(parse_list(name).is_ok(), "{name}");
        }
        assert!(parse_list("fstatat").is_err());
        let allow = ["breakpoint".into(), "mseal".into()];
        let a = allowed(0, &allow, &[]);
        assert!(a.contains("socketcall") && a.contains("breakpoint") && a.contains("mseal"));
        let rules = |abi| rules_for(abi, &[("socketcall", 1), ("mseal", 2), ("breakpoint", 3)]);
        let nrs = |abi| rules(abi).iter().map(|r| r.nr).collect::<Vec<_>>();
        assert_eq!(nrs(Abi::I386), [102, 462]);
        assert_eq!(nrs(Abi::X86_64), [462]);
        assert_eq!(nrs(Abi::X32), [X32_SYSCALL_BIT | 462]);
        assert_eq!(nrs(Abi::Aarch64), [462]);
    }

    /// The verdict of the filters built for `arch`, as the kernel takes it
    /// (seccomp(2)): the newest filter runs first and the action of highest
    /// precedence, the lowest as a signed number, wins; a tie keeps the first.
    fn verdicts(arch: Arch, suppress_sync: bool) -> impl Fn(u32, u32, [u32; 6]) -> u32 {
        let retain = super::super::caps::default_mask(false);
        let progs = programs(arch, retain, &[], &[], suppress_sync).unwrap();
        assert_eq!(progs.len(), 1 + suppress_sync as usize);
        let action = |r: u32| (r & 0xffff_0000) as i32;
        move |audit_arch, nr, args| {
            progs
                .iter()
                .rev()
                .map(|p| bpf::run(p, audit_arch, nr, args))
                .reduce(|best, r| if action(r) < action(best) { r } else { best })
                .unwrap()
        }
    }

    #[test]
    fn suppress_sync_leaves_bad_descriptors_to_the_kernel() {
        let progs = programs(Arch::X86_64, 0, &[], &[], true).unwrap();
        let sync = progs.last().unwrap();
        let fsync = |fd: u64| bpf::run64(sync, bpf::AUDIT_ARCH_X86_64, 74, [fd, 0, 0, 0, 0, 0]);
        assert_eq!(fsync(3), errno(0));
        assert_eq!(fsync(i32::MAX as u64), errno(0));
        assert_eq!(fsync(u64::MAX), ALLOW);
        assert_eq!(fsync(0xffff_ffff), ALLOW);
        assert_eq!(fsync(1 << 32), ALLOW);
        // sync(2) takes none: always suppressed.
        assert_eq!(
            bpf::run64(sync, bpf::AUDIT_ARCH_X86_64, 162, [u64::MAX; 6]),
            errno(0)
        );
    }

    const ALLOW: u32 = bpf::RET_ALLOW;
    const KILL: u32 = bpf::RET_KILL_PROCESS;
    fn errno(e: i32) -> u32 {
        bpf::ret_errno(e)
    }

    #[test]
    fn x86_64_filters() {
        use bpf::{AUDIT_ARCH_I386 as I386, AUDIT_ARCH_X86_64 as X86_64, X32_SYSCALL_BIT as X32};
        let v = verdicts(Arch::X86_64, true);
        let audit = [libc::AF_NETLINK as u32, 3, NETLINK_AUDIT, 0, 0, 0];
        let dsync = [0, 0, libc::O_DSYNC as u32, 0, 0, 0];
        for (arch, bit, read, openat, socket, kexec_load, fsync) in [
            (X86_64, 0, 0, 257, 41, 246, 74),
            (X86_64, X32, 0, 257, 41, 528, 74),
            (I386, 0, 3, 295, 359, 283, 118),
        ] {
            let v = |nr, args| v(arch, bit | nr, args);
            assert_eq!(v(read, [0; 6]), ALLOW);
            assert_eq!(v(openat, [0; 6]), ALLOW);
            assert_eq!(v(openat, dsync), errno(libc::EINVAL));
            assert_eq!(v(socket, [libc::AF_INET as u32, 1, 0, 0, 0, 0]), ALLOW);
            assert_eq!(v(socket, audit), errno(libc::EAFNOSUPPORT));
            assert_eq!(v(kexec_load, [0; 6]), errno(libc::EPERM));
            assert_eq!(v(fsync, [0; 6]), errno(0));
            assert_eq!(v(1000, [0; 6]), errno(libc::ENOSYS));
        }
        // socketcall(2), i386's only way to sockets before Linux 4.3.
        assert_eq!(v(I386, 102, [0; 6]), ALLOW);
        assert_eq!(v(X86_64, 102, [0; 6]), ALLOW); // x86-64's getuid
        assert_eq!(v(bpf::AUDIT_ARCH_AARCH64, 63, [0; 6]), KILL);
    }

    /// One filter, whose audit rule comes before the lists: an audit
    /// socket fails with EAFNOSUPPORT even with socket(2) denied, as when
    /// it was a filter of its own stacked on the allow list.
    #[test]
    fn the_audit_rule_comes_first() {
        let retain = super::super::caps::default_mask(false);
        let progs = programs(Arch::X86_64, retain, &[], &["socket".into()], false).unwrap();
        assert_eq!(progs.len(), 1);
        let v = |args| bpf::run(&progs[0], bpf::AUDIT_ARCH_X86_64, 41, args);
        let audit = [libc::AF_NETLINK as u32, 3, NETLINK_AUDIT, 0, 0, 0];
        assert_eq!(v(audit), errno(libc::EAFNOSUPPORT));
        assert_eq!(v([libc::AF_INET as u32, 1, 0, 0, 0, 0]), errno(libc::EPERM));
        assert_eq!(
            v([libc::AF_NETLINK as u32, 3, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
    }

    #[test]
    fn aarch64_filters() {
        use bpf::AUDIT_ARCH_AARCH64 as AARCH64;
        let v = verdicts(Arch::Aarch64, true);
        let a = |nr, args| v(AARCH64, nr, args);
        assert_eq!(a(63, [0; 6]), ALLOW); // read
        assert_eq!(a(56, [0; 6]), ALLOW); // openat
        assert_eq!(a(79, [0; 6]), ALLOW); // newfstatat
        assert_eq!(a(435, [0; 6]), ALLOW); // clone3
        assert_eq!(
            a(56, [0, 0, libc::O_DSYNC as u32, 0, 0, 0]),
            errno(libc::EINVAL)
        );
        assert_eq!(a(82, [0; 6]), errno(0)); // fsync
        let audit = [libc::AF_NETLINK as u32, 3, NETLINK_AUDIT, 0, 0, 0];
        assert_eq!(a(198, audit), errno(libc::EAFNOSUPPORT)); // socket
        assert_eq!(a(104, [0; 6]), errno(libc::EPERM)); // kexec_load
        assert_eq!(a(105, [0; 6]), errno(libc::EPERM)); // init_module
                                                        // clock_gettime64: 32-bit ABIs only, unknown here.
        assert_eq!(a(403, [0; 6]), errno(libc::ENOSYS));
        assert_eq!(a(1000, [0; 6]), errno(libc::ENOSYS));
        for arch in [
            bpf::AUDIT_ARCH_ARM,
            bpf::AUDIT_ARCH_X86_64,
            bpf::AUDIT_ARCH_I386,
        ] {
            assert_eq!(v(arch, 63, [0; 6]), KILL, "{arch:#x}");
        }
    }

    /// The filters' build cost per container start (BENCHMARKS.md):
    /// `cargo test -p libnspawn --release --lib build_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn build_cost() {
        let retain = super::super::caps::default_mask(false);
        let build = || programs(Arch::HOST, retain, &[], &[], false).unwrap();
        let n = 500;
        build();
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(build());
        }
        eprintln!("seccomp filters built in {:?}", t.elapsed() / n);
    }
}
