//! A seccomp filter as a classic BPF program (seccomp(2),
//! Documentation/userspace-api/seccomp_filter.rst), assembled here from
//! per-ABI rule lists.
//!
//! libseccomp could generate it, but building the reference's allow list
//! for the three x86 ABIs took it 10-14 ms per container start (more than
//! the whole start otherwise); this takes microseconds. The numbers come
//! from `syscall_numbers`.
//!
//! Shape: dispatch on `seccomp_data.arch` (x86-64 and x32 share one audit
//! architecture and differ by bit 30 of the number), then per ABI the
//! rules with argument checks (arguments are loaded only inside a rule's
//! own block), then a binary search over runs of numbers with the same
//! verdict (the default filling the gaps). The kernel evaluates
//! a filter once per system call number at load time and skips it for
//! every number whose verdict does not depend on arguments (the action
//! cache, Linux 5.11), so at run time most calls do not run it at all.

use crate::error::{Error, Result};
use nix::errno::Errno;

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub fn ret_errno(e: i32) -> u32 {
    0x0005_0000 | (e as u32 & 0xffff)
}

/// `seccomp_data`: nr at 0, arch at 4, args at 16 (little endian: the low
/// 32 bits of argument i at 16 + 8 i; the kernel reads int arguments from
/// those bits only).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `arg & mask == value` on the low 32 bits of an argument, or with
/// `high` on its upper 32 bits.
#[derive(Debug, Clone, Copy)]
pub struct Cond {
    pub arg: u32,
    pub high: bool,
    pub mask: u32,
    pub value: u32,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub nr: u32,
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// An ABI a process can make system calls in: a value of
/// `seccomp_data.arch` and, for x32, a range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    X32,
    I386,
    Aarch64,
}

impl Abi {
    pub const ALL: [Abi; 4] = [Abi::X86_64, Abi::X32, Abi::I386, Abi::Aarch64];
}

/// A machine a filter is built for, by the ABIs its kernel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64, x32 and i386 (`int 0x80` and the x32 bit must not get
    /// around the filter).
    X86_64,
    /// aarch64 only: a 32-bit arm task (AArch32, the compat ABI) is killed
    /// at its first system call. systemd adds arm as a secondary
    /// architecture here (seccomp_add_secondary_archs) and lets such
    /// programs run; we carry no arm table (the `syscalls` crate lacks
    /// arm's private calls) and cannot test one, since ARMv8 makes AArch32
    /// optional and many 64-bit cores leave it out. A foreign ABI must
    /// never pass unfiltered, and dying with SIGSYS says why it failed.
    Aarch64,
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "nspawn-rs supports x86_64 and aarch64 only: its seccomp filter has no \
     system call table or architecture check for this target"
);

impl Arch {
    #[cfg(target_arch = "x86_64")]
    pub const HOST: Arch = Arch::X86_64;
    #[cfg(target_arch = "aarch64")]
    pub const HOST: Arch = Arch::Aarch64;

    pub fn abis(self) -> &'static [Abi] {
        match self {
            Arch::X86_64 => &[Abi::X86_64, Abi::X32, Abi::I386],
            Arch::Aarch64 => &[Abi::Aarch64],
        }
    }
}

// linux/audit.h: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(super) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// What a 32-bit arm (AArch32) task reports.
#[cfg(test)]
pub(super) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// asm/unistd.h: set in every x32 system call number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

type Insn = libc::sock_filter;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Unconditional rules (sorted by number, unique) as runs of numbers with
/// one verdict, searched by bisection. The kernel converts (and JITs) the
/// program and runs it once per number when it builds its cache: a chain
/// of a rule per number, hundreds of them, made loading it cost more than
/// the rest of a container's start.
fn ranges(rules: &[Rule], default: u32) -> Vec<Insn> {
    // (first number, verdict) of each run; a run ends where the next starts.
    let mut runs: Vec<(u32, u32)> = vec![(0, default)];
    let mut next = 0u32;
    for r in rules {
        if r.nr != next && runs.last().map(|l| l.1) != Some(default) {
            runs.push((next, default));
        }
        if runs.last().map(|l| l.1) != Some(r.action) {
            runs.push((r.nr, r.action));
        }
        next = r.nr.saturating_add(1);
    }
    if runs.last().map(|l| l.1) != Some(default) {
        runs.push((next, default));
    }
    // The first run may be empty (a rule for number 0); harmless.
    bisect(&runs)
}

/// Within `runs`, the number is known to be at least runs[0].0 and below
/// the start of whatever follows.
fn bisect(runs: &[(u32, u32)]) -> Vec<Insn> {
    if runs.len() == 1 {
        return vec![stmt(RET_K, runs[0].1)];
    }
    let mid = runs.len() / 2;
    let (lo, hi) = (bisect(&runs[..mid]), bisect(&runs[mid..]));
    // nr >= pivot: to the jump over the lower half; else past it.
    let mut p = vec![jump(JGE_K, runs[mid].0, 0, 1), stmt(JA, lo.len() as u32)];
    p.extend(lo);
    p.extend(hi);
    p
}

/// One ABI's rules, entered with the number in A: those with argument
/// checks first, in order, then the others as a search tree.
fn section(rules: &[Rule], default: u32) -> Result<Vec<Insn>> {
    let mut p = vec![];
    let mut plain: Vec<Rule> = rules
        .iter()
        .filter(|r| r.conds.is_empty())
        .cloned()
        .collect();
    plain.sort_by_key(|r| r.nr);
    plain.dedup_by_key(|r| r.nr);
    for r in rules.iter().filter(|r| !r.conds.is_empty()) {
        // ld arg; [and mask]; jeq value else fail ... ; ret action;
        // fail: ld nr (A is clobbered by the argument loads).
        let mut block = vec![];
        let mut fail_jumps = vec![];
        for c in &r.conds {
            // seccomp_data.args are u64 in the host's byte order; both
            // supported architectures are little-endian.
            block.push(stmt(LD_W_ABS, off_arg(c.arg) + if c.high { 4 } else { 0 }));
            if c.mask != u32::MAX {
                block.push(stmt(AND_K, c.mask));
            }
            fail_jumps.push(block.len());
            block.push(jump(JEQ_K, c.value, 0, 0));
        }
        block.push(stmt(RET_K, r.action));
        let fail = block.len();
        block.push(stmt(LD_W_ABS, OFF_NR));
        for j in fail_jumps {
            block[j].jf =
                u8::try_from(fail - j - 1).map_err(|_| Error::invalid("seccomp rule too long"))?;
        }
        // Skip the block (but not the reload, which is harmless) on another number.
        let skip =
            u8::try_from(block.len()).map_err(|_| Error::invalid("seccomp rule too long"))?;
        p.push(jump(JEQ_K, r.nr, 0, skip));
        p.extend(block);
    }
    p.extend(ranges(&plain, default));
    Ok(p)
}

/// The whole program for `arch`: `rules` per ABI, `default` for numbers
/// without a rule; a call from any other ABI kills the process.
pub fn assemble(arch: Arch, rules: &[(Abi, Vec<Rule>)], default: u32) -> Result<Vec<Insn>> {
    let sec = |abi| {
        let r = rules
            .iter()
            .find(|(a, _)| *a == abi)
            .map(|(_, r)| r.as_slice())
            .unwrap_or_default();
        section(r, default)
    };
    let p = match arch {
        Arch::X86_64 => x86_64_program(sec(Abi::X86_64)?, sec(Abi::X32)?, sec(Abi::I386)?),
        Arch::Aarch64 => {
            let mut p = vec![
                stmt(LD_W_ABS, OFF_ARCH),
                jump(JEQ_K, AUDIT_ARCH_AARCH64, 1, 0),
                stmt(RET_K, RET_KILL_PROCESS),
                stmt(LD_W_ABS, OFF_NR),
            ];
            p.extend(sec(Abi::Aarch64)?);
            p
        }
    };
    // BPF_MAXINSNS
    if p.len() > 4096 {
        return Err(Error::invalid(format!(
            "seccomp filter too large: {} instructions",
            p.len()
        )));
    }
    Ok(p)
}

/// The x86-64 header and its three sections, in this order.
fn x86_64_program(s64: Vec<Insn>, sx32: Vec<Insn>, s32: Vec<Insn>) -> Vec<Insn> {
    const HEADER: usize = 10;
    let at64 = HEADER;
    let atx32 = at64 + s64.len();
    let at32 = atx32 + sx32.len();
    let ja = |from: usize, to: usize| stmt(JA, (to - from - 1) as u32);
    let mut p = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 0, 4),
        stmt(LD_W_ABS, OFF_NR),
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        ja(4, atx32),
        ja(5, at64),
        jump(JEQ_K, AUDIT_ARCH_I386, 0, 2),
        stmt(LD_W_ABS, OFF_NR),
        ja(8, at32),
        stmt(RET_K, RET_KILL_PROCESS),
    ];
    debug_assert_eq!(p.len(), HEADER);
    p.extend(s64);
    p.extend(sx32);
    p.extend(s32);
    p
}

/// Install a program in this process (and all it starts). Without
/// no_new_privs this needs CAP_SYS_ADMIN, which the container process
/// still has.
pub fn load(prog: &[Insn], what: &str) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut Insn,
    };
    // SAFETY: fprog points to a valid program that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(|e| Error::invalid(format!("cannot load the {what}: {}", e.desc())))
}

/// A tiny interpreter of the subset we emit, for checking verdicts (the
/// kernel's classic BPF, net/core/filter.c, on a `seccomp_data`).
#[cfg(test)]
pub(super) fn run(p: &[Insn], arch: u32, nr: u32, args: [u32; 6]) -> u32 {
    run64(p, arch, nr, args.map(u64::from))
}

/// As `run`, with whole 64-bit arguments (the upper word at +4).
#[cfg(test)]
pub(super) fn run64(p: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = p[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                a = match i.k {
                    OFF_NR => nr,
                    OFF_ARCH => arch,
                    k => {
                        let arg = args[((k - 16) / 8) as usize];
                        match (k - 16) % 8 {
                            0 => arg as u32,
                            _ => (arg >> 32) as u32,
                        }
                    }
                }
            }
            AND_K => a &= i.k,
            JA => pc += i.k as usize,
            JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            JGE_K => pc += if a >= i.k { i.jt } else { i.jf } as usize,
            RET_K => return i.k,
            c => panic!("unexpected code {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_tree_finds_every_number() {
        let rules: Vec<Rule> = (0..500u32)
            .filter(|n| n % 3 != 0)
            .map(|nr| Rule {
                nr,
                conds: vec![],
                action: ret_errno(nr as i32 % 7 + 1),
            })
            .collect();
        let p = assemble(Arch::X86_64, &[(Abi::X86_64, rules)], RET_ALLOW).unwrap();
        assert!(p.len() < 2000, "{}", p.len());
        for nr in 0..600u32 {
            let want = if nr < 500 && nr % 3 != 0 {
                ret_errno(nr as i32 % 7 + 1)
            } else {
                RET_ALLOW
            };
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, nr, [0; 6]), want, "{nr}");
        }
    }

    #[test]
    fn verdicts_per_abi() {
        let r = |nr, action| Rule {
            nr,
            conds: vec![],
            action,
        };
        let audit = Rule {
            nr: 41,
            conds: vec![
                Cond {
                    arg: 0,
                    high: false,
                    mask: u32::MAX,
                    value: 16,
                },
                Cond {
                    arg: 2,
                    high: false,
                    mask: u32::MAX,
                    value: 9,
                },
            ],
            action: ret_errno(97),
        };
        let rules = vec![
            (
                Abi::X86_64,
                vec![
                    r(0, RET_ALLOW),
                    audit,
                    r(41, RET_ALLOW),
                    r(246, ret_errno(1)),
                ],
            ),
            (Abi::X32, vec![r(X32_SYSCALL_BIT, RET_ALLOW)]),
            (Abi::I386, vec![r(3, RET_ALLOW)]),
        ];
        let p = assemble(Arch::X86_64, &rules, ret_errno(38)).unwrap();
        let x = |nr, args| run(&p, AUDIT_ARCH_X86_64, nr, args);
        assert_eq!(x(0, [0; 6]), RET_ALLOW);
        assert_eq!(x(246, [0; 6]), ret_errno(1));
        assert_eq!(x(999, [0; 6]), ret_errno(38));
        assert_eq!(x(41, [16, 3, 9, 0, 0, 0]), ret_errno(97));
        assert_eq!(x(41, [16, 3, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(41, [2, 1, 9, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(X32_SYSCALL_BIT, [0; 6]), RET_ALLOW);
        assert_eq!(x(X32_SYSCALL_BIT | 1, [0; 6]), ret_errno(38));
        assert_eq!(run(&p, AUDIT_ARCH_I386, 3, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_I386, 0, [0; 6]), ret_errno(38));
        assert_eq!(run(&p, 0xdead, 0, [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn aarch64_checks_its_arch_only() {
        let r = |nr, action| Rule {
            nr,
            conds: vec![],
            action,
        };
        let audit = Rule {
            nr: 198,
            conds: vec![Cond {
                arg: 2,
                high: false,
                mask: u32::MAX,
                value: 9,
            }],
            action: ret_errno(97),
        };
        let rules = vec![
            (
                Abi::Aarch64,
                vec![
                    r(63, RET_ALLOW),
                    audit,
                    r(198, RET_ALLOW),
                    r(294, ret_errno(1)),
                ],
            ),
            // Rules for ABIs this machine lacks are not in its program.
            (Abi::X86_64, vec![r(0, RET_ALLOW)]),
        ];
        let p = assemble(Arch::Aarch64, &rules, ret_errno(38)).unwrap();
        assert_eq!((p[0].code, p[0].k), (LD_W_ABS, OFF_ARCH));
        assert_eq!((p[1].code, p[1].k), (JEQ_K, AUDIT_ARCH_AARCH64));
        assert!(p
            .iter()
            .all(|i| i.k != AUDIT_ARCH_X86_64 && i.k != AUDIT_ARCH_I386));
        let a = |nr, args| run(&p, AUDIT_ARCH_AARCH64, nr, args);
        assert_eq!(a(63, [0; 6]), RET_ALLOW);
        assert_eq!(a(294, [0; 6]), ret_errno(1));
        assert_eq!(a(0, [0; 6]), ret_errno(38));
        assert_eq!(a(198, [16, 3, 9, 0, 0, 0]), ret_errno(97));
        assert_eq!(a(198, [16, 3, 0, 0, 0, 0]), RET_ALLOW);
        for arch in [AUDIT_ARCH_ARM, AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0] {
            assert_eq!(run(&p, arch, 63, [0; 6]), RET_KILL_PROCESS, "{arch:#x}");
        }
    }
}
