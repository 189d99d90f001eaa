//! System call numbers by name, per ABI, for the filters `seccomp` builds.
//!
//! The tables are the `syscalls` crate's (pure Rust, generated from the
//! kernel's syscall tables; Linux 6.18 in 0.8.1), so that the build needs
//! no C library. The tests below pin numbers taken from the kernel's uapi
//! headers; the crate's x86-64, i386 and (but for the two points below)
//! aarch64 tables agree with Linux 6.1's headers for every call 6.1 has.
//! Where the crate falls short, this module makes up for it:
//!
//! - x32 has no table in the crate. It is derived the way the kernel
//!   builds its own (arch/x86/entry/syscalls/syscall_64.tbl): the "common"
//!   entries with `__X32_SYSCALL_BIT` set, the "x32" entries 512-547
//!   instead of their "64" twins, and none of the other "64"-only ones.
//! - aarch64: the crate calls 79 `fstatat` (the generic table's macro
//!   name) where the kernel and libseccomp say `newfstatat`, and it lists
//!   403-423, the 64-bit time calls that asm-generic/unistd.h defines only
//!   when `__BITS_PER_LONG == 32`; a 64-bit kernel has none of them.
//! - the crate spells i386's `break` as the Rust identifier `r#break`.
//!
//! i386's direct socket and SysV IPC calls (socket 359 to shutdown 373,
//! recvmmsg 337, sendmmsg 345, semget 393 to msgctl 402) have their
//! numbers here. libseccomp, which we used before, resolved those names to
//! pseudo numbers of the socketcall(2)/ipc(2) multiplexers, so they were
//! left out and failed with ENOSYS; systemd gets both kinds of rule from
//! libseccomp's rule adding, and so does this filter now.
//!
//! A name a table lacks has no number on that ABI: the filter leaves it
//! out there (and `--system-call-filter=` still accepts it if any ABI or
//! systemd's `@known` has it).

use super::bpf::{Abi, X32_SYSCALL_BIT};

/// How x32 numbers a call, by the x86-64 entry of the same name.
#[derive(Debug, PartialEq, Eq)]
enum X32 {
    /// A "common" entry: x86-64's number with `X32_SYSCALL_BIT`.
    Common,
    /// A "64" entry whose x32 twin has this number (plus the bit).
    Own(u32),
    /// A "64" entry without a twin: x86-64 only.
    None,
}

/// The "64" entries of syscall_64.tbl and their "x32" twins (512-547).
/// A "64" entry added after Linux 6.18 must be added here, or x32 gets a
/// number the kernel does not serve (harmless: it returns ENOSYS).
fn x32_entry(name: &str) -> X32 {
    X32::Own(match name {
        "rt_sigaction" => 512,
        "rt_sigreturn" => 513,
        "ioctl" => 514,
        "readv" => 515,
        "writev" => 516,
        "recvfrom" => 517,
        "sendmsg" => 518,
        "recvmsg" => 519,
        "execve" => 520,
        "ptrace" => 521,
        "rt_sigpending" => 522,
        "rt_sigtimedwait" => 523,
        "rt_sigqueueinfo" => 524,
        "sigaltstack" => 525,
        "timer_create" => 526,
        "mq_notify" => 527,
        "kexec_load" => 528,
        "waitid" => 529,
        "set_robust_list" => 530,
        "get_robust_list" => 531,
        "vmsplice" => 532,
        "move_pages" => 533,
        "preadv" => 534,
        "pwritev" => 535,
        "rt_tgsigqueueinfo" => 536,
        "recvmmsg" => 537,
        "sendmmsg" => 538,
        "process_vm_readv" => 539,
        "process_vm_writev" => 540,
        "setsockopt" => 541,
        "getsockopt" => 542,
        "io_setup" => 543,
        "io_submit" => 544,
        "execveat" => 545,
        "preadv2" => 546,
        "pwritev2" => 547,
        "uselib" | "_sysctl" | "create_module" | "get_kernel_syms" | "query_module"
        | "nfsservctl" | "set_thread_area" | "get_thread_area" | "epoll_ctl_old"
        | "epoll_wait_old" | "vserver" | "map_shadow_stack" => return X32::None,
        _ => return X32::Common,
    })
}

/// Names libseccomp knew (so `--system-call-filter=` accepted them) that
/// only 32-bit arm has, which no table here covers: its private calls
/// (arch/arm/include/uapi/asm/unistd.h) and one alias. They never match.
const ARM_ONLY: [&str; 5] = [
    "arm_sync_file_range",
    "breakpoint",
    "get_tls",
    "usr26",
    "usr32",
];

/// The crate's spelling of a name: `break` is a Rust keyword.
fn spelled(name: &str) -> Option<&str> {
    match name {
        "break" => Some("r#break"),
        "r#break" => None,
        _ => Some(name),
    }
}

fn x86_64(name: &str) -> Option<u32> {
    let nr: syscalls::x86_64::Sysno = spelled(name)?.parse().ok()?;
    u32::try_from(nr.id()).ok()
}

fn x32(name: &str) -> Option<u32> {
    let nr = match x32_entry(name) {
        X32::Common => x86_64(name)?,
        X32::Own(nr) => nr,
        X32::None => return None,
    };
    Some(nr | X32_SYSCALL_BIT)
}

fn i386(name: &str) -> Option<u32> {
    let nr: syscalls::x86::Sysno = spelled(name)?.parse().ok()?;
    u32::try_from(nr.id()).ok()
}

fn aarch64(name: &str) -> Option<u32> {
    let get = |name: &str| {
        let nr: syscalls::aarch64::Sysno = spelled(name)?.parse().ok()?;
        u32::try_from(nr.id()).ok()
    };
    let nr = match name {
        "fstatat" => None,
        "newfstatat" => get(name).or_else(|| get("fstatat")),
        _ => get(name),
    }?;
    (!(403..=423).contains(&nr)).then_some(nr)
}

/// The number of `name` on `abi`, as the filter sees it in
/// `seccomp_data.nr` (x32's with `X32_SYSCALL_BIT`).
pub fn number(abi: Abi, name: &str) -> Option<u32> {
    match abi {
        Abi::X86_64 => x86_64(name),
        Abi::X32 => x32(name),
        Abi::I386 => i386(name),
        Abi::Aarch64 => aarch64(name),
    }
}

/// Whether `name` is a system call on any ABI we build filters for, on any
/// architecture: what `--system-call-filter=` accepts besides systemd's
/// `@known`, the same list whatever the build's target.
pub fn known(name: &str) -> bool {
    Abi::ALL.iter().any(|&abi| number(abi, name).is_some()) || ARM_ONLY.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers from the kernel's uapi headers of Linux 6.1 (asm/unistd_64.h,
    /// unistd_x32.h, unistd_32.h; asm-generic/unistd.h for aarch64), the
    /// later map_shadow_stack and uretprobe from its syscall tables.
    /// `None`: the ABI has no such call.
    #[rustfmt::skip]
    const PINNED: &[(&str, [Option<u32>; 4])] = {
        const B: u32 = X32_SYSCALL_BIT;
        // name                x86-64      x32              i386        aarch64
        &[
            ("read",           [Some(0),   Some(B),         Some(3),    Some(63)]),
            ("write",          [Some(1),   Some(B | 1),     Some(4),    Some(64)]),
            ("open",           [Some(2),   Some(B | 2),     Some(5),    None]),
            ("openat",         [Some(257), Some(B | 257),   Some(295),  Some(56)]),
            ("openat2",        [Some(437), Some(B | 437),   Some(437),  Some(437)]),
            ("clone3",         [Some(435), Some(B | 435),   Some(435),  Some(435)]),
            ("io_uring_setup", [Some(425), Some(B | 425),   Some(425),  Some(425)]),
            ("socket",         [Some(41),  Some(B | 41),    Some(359),  Some(198)]),
            ("socketcall",     [None,      None,            Some(102),  None]),
            ("recvmmsg",       [Some(299), Some(B | 537),   Some(337),  Some(243)]),
            ("shmget",         [Some(29),  Some(B | 29),    Some(395),  Some(194)]),
            ("ipc",            [None,      None,            Some(117),  None]),
            ("ioctl",          [Some(16),  Some(B | 514),   Some(54),   Some(29)]),
            ("rt_sigaction",   [Some(13),  Some(B | 512),   Some(174),  Some(134)]),
            ("execve",         [Some(59),  Some(B | 520),   Some(11),   Some(221)]),
            ("pwritev2",       [Some(328), Some(B | 547),   Some(379),  Some(287)]),
            ("set_thread_area",[Some(205), None,            Some(243),  None]),
            ("uselib",         [Some(134), None,            Some(86),   None]),
            ("arch_prctl",     [Some(158), Some(B | 158),   Some(384),  None]),
            ("newfstatat",     [Some(262), Some(B | 262),   None,       Some(79)]),
            ("fstatat64",      [None,      None,            Some(300),  None]),
            ("fstatat",        [None,      None,            None,       None]),
            ("_llseek",        [None,      None,            Some(140),  None]),
            ("_newselect",     [None,      None,            Some(142),  None]),
            ("break",          [None,      None,            Some(17),   None]),
            ("r#break",        [None,      None,            None,       None]),
            ("clock_gettime64",[None,      None,            Some(403),  None]),
            ("futex_time64",   [None,      None,            Some(422),  None]),
            ("renameat",       [Some(264), Some(B | 264),   Some(302),  Some(38)]),
            ("sync",           [Some(162), Some(B | 162),   Some(36),   Some(81)]),
            ("fsync",          [Some(74),  Some(B | 74),    Some(118),  Some(82)]),
            ("sync_file_range",[Some(277), Some(B | 277),   Some(314),  Some(84)]),
            ("membarrier",     [Some(324), Some(B | 324),   Some(375),  Some(283)]),
            ("pidfd_open",     [Some(434), Some(B | 434),   Some(434),  Some(434)]),
            ("futex_waitv",    [Some(449), Some(B | 449),   Some(449),  Some(449)]),
            ("map_shadow_stack",[Some(453),None,            Some(453),  Some(453)]),
            ("uretprobe",      [Some(335), Some(B | 335),   None,       None]),
            ("cacheflush",     [None,      None,            None,       None]),
            ("no_such_call",   [None,      None,            None,       None]),
        ]
    };

    #[test]
    fn pinned_numbers() {
        for (name, want) in PINNED {
            for (abi, want) in Abi::ALL.iter().zip(want) {
                assert_eq!(number(*abi, name), *want, "{name} on {abi:?}");
            }
        }
    }

    /// x32's table as the kernel's: the common calls with the bit, the x32
    /// entries 512-547 instead of their "64" twins, no other "64" entry.
    #[test]
    fn x32_from_x86_64() {
        use syscalls::x86_64::Sysno;
        let (mut own, mut none) = (vec![], vec![]);
        // Not Sysno::iter(): in 0.8.1 it stops before the last entry.
        for nr in 0..=Sysno::last().id() {
            let Some(s) = Sysno::new(nr as usize) else {
                continue;
            };
            match x32_entry(s.name()) {
                X32::Common => assert_eq!(x32(s.name()), Some(nr as u32 | X32_SYSCALL_BIT)),
                X32::Own(x) => own.push(x),
                X32::None => none.push(s.name()),
            }
        }
        own.sort();
        assert_eq!(own, (512..=547).collect::<Vec<_>>());
        assert_eq!(none.len(), 12, "{none:?}");
    }

    /// How many of systemd's names (groups and `@known`) each ABI has, and
    /// how many none has (other architectures' calls, which systemd lists
    /// for all). A change means a `syscalls` update moved or dropped names:
    /// compare them with the kernel's tables before changing these.
    #[test]
    fn group_members_per_abi() {
        let names: std::collections::BTreeSet<&str> = super::super::syscall_sets::GROUPS
            .iter()
            .flat_map(|g| g.members.iter().copied())
            .filter(|m| !m.starts_with('@'))
            .collect();
        assert_eq!(names.len(), 539);
        let count = |abi| names.iter().filter(|n| number(abi, n).is_some()).count();
        assert_eq!(Abi::ALL.map(count), [368, 356, 445, 311]);
        assert_eq!(names.iter().filter(|n| !known(n)).count(), 84);
    }

    #[test]
    fn known_on_any_architecture() {
        for name in ["read", "socketcall", "arch_prctl", "break", "newfstatat"] {
            assert!(known(name), "{name}");
        }
        for name in ["breakpoint", "usr26", "arm_sync_file_range"] {
            assert!(known(name), "{name}");
        }
        for name in ["fstatat", "r#break", "bogus_call", ""] {
            assert!(!known(name), "{name}");
        }
    }
}
