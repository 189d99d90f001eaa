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
use serde::{Deserialize, Serialize};

// linux/seccomp.h: the actions a filter returns.
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
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
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// How an argument is compared with a value, as libseccomp's
/// `scmp_compare`: unsigned, on all 64 bits (on a 32-bit ABI, the low 32:
/// all such a process passes, and what libseccomp compares there).
/// `MaskedEq(mask)`: `arg & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq(u64),
}

/// A test of argument `arg` (0 to 5); a rule's tests must all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cond {
    pub arg: u32,
    pub op: Op,
    pub value: u64,
}

impl Cond {
    /// An `int` argument equal to `value`: only its low 32 bits count,
    /// as the kernel reads them (the upper ones may hold anything).
    pub fn int(arg: u32, value: u32) -> Cond {
        Cond {
            arg,
            op: Op::MaskedEq(u32::MAX as u64),
            value: value as u64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub nr: u32,
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// An ABI a process can make system calls in: a value of
/// `seccomp_data.arch` and, for x32, a range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The ABI of the build's own programs (libseccomp's "native").
    pub fn native(self) -> Abi {
        match self {
            Arch::X86_64 => Abi::X86_64,
            Arch::Aarch64 => Abi::Aarch64,
        }
    }

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
    shared_exits(&runs).unwrap_or_else(|| bisect(&runs))
}

/// Where a test of the search tree goes: a subtree, or a verdict.
#[derive(Clone, Copy)]
enum Goto {
    At(usize),
    Verdict(u32),
}

/// The search tree with one return per verdict, after the tree, which
/// every test jumps to directly: half the instructions of `bisect` (no
/// return per run), which is what the kernel converts and compiles on
/// every start. Classic BPF's conditional jumps reach 255 instructions
/// ahead: `None` for a tree too big for that.
fn shared_exits(runs: &[(u32, u32)]) -> Option<Vec<Insn>> {
    // (position of the test, pivot, where it goes at or above, below)
    fn emit(runs: &[(u32, u32)], tests: &mut Vec<(usize, u32, Goto, Goto)>) -> Goto {
        if let [(_, verdict)] = runs {
            return Goto::Verdict(*verdict);
        }
        let mid = runs.len() / 2;
        let at = tests.len();
        tests.push((at, runs[mid].0, Goto::At(0), Goto::At(0)));
        let below = emit(&runs[..mid], tests);
        let above = emit(&runs[mid..], tests);
        tests[at] = (at, runs[mid].0, above, below);
        Goto::At(at)
    }
    let mut tests = vec![];
    if let Goto::Verdict(v) = emit(runs, &mut tests) {
        return Some(vec![stmt(RET_K, v)]);
    }
    let mut verdicts: Vec<u32> = runs.iter().map(|r| r.1).collect();
    verdicts.sort_unstable();
    verdicts.dedup();
    let exit = |v: u32| tests.len() + verdicts.binary_search(&v).unwrap_or(0);
    let mut p = Vec::with_capacity(tests.len() + verdicts.len());
    for &(at, pivot, above, below) in &tests {
        let off = |to: Goto| {
            let target = match to {
                Goto::At(n) => n,
                Goto::Verdict(v) => exit(v),
            };
            u8::try_from(target - at - 1).ok()
        };
        p.push(jump(JGE_K, pivot, off(above)?, off(below)?));
    }
    p.extend(verdicts.iter().map(|&v| stmt(RET_K, v)));
    Some(p)
}

/// Within `runs`, the number is known to be at least runs[0].0 and below
/// the start of whatever follows.
fn bisect(runs: &[(u32, u32)]) -> Vec<Insn> {
    if runs.len() == 1 {
        return vec![stmt(RET_K, runs[0].1)];
    }
    let mid = runs.len() / 2;
    let (lo, hi) = (bisect(&runs[..mid]), bisect(&runs[mid..]));
    // nr >= pivot: over the lower half, by the test itself where its 8-bit
    // offset reaches (every node but those near the root: a third fewer
    // instructions for the kernel to convert and compile); else through a
    // jump.
    let mut p = match u8::try_from(lo.len()) {
        Ok(over) => vec![jump(JGE_K, runs[mid].0, over, 0)],
        Err(_) => vec![jump(JGE_K, runs[mid].0, 0, 1), stmt(JA, lo.len() as u32)],
    };
    p.extend(lo);
    p.extend(hi);
    p
}

/// Where a jump in a comparison goes: on to the next instruction, past
/// the comparison (it holds), or to the rule's failure (it does not).
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    Pass,
    Fail,
}

enum Step {
    Insn(Insn),
    Jump { code: u16, k: u32, t: To, f: To },
}

/// `c` as instructions that fall through (or jump `Pass`) when it holds
/// and jump `Fail` when it does not. `wide`: the ABI's arguments are 64
/// bits. Classic BPF's A is 32 bits: the upper word decides unless equal.
fn compare(c: &Cond, wide: bool) -> Vec<Step> {
    use To::*;
    let ld = |high: bool| Step::Insn(stmt(LD_W_ABS, off_arg(c.arg) + if high { 4 } else { 0 }));
    let j = |code, k, t, f| Step::Jump { code, k, t, f };
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let mut p = vec![];
    match c.op {
        Op::Eq | Op::Ne => {
            let (hit, miss) = if c.op == Op::Eq {
                (Pass, Fail)
            } else {
                (Fail, Pass)
            };
            if wide {
                p.extend([ld(true), j(JEQ_K, vh, Next, miss)]);
            }
            p.extend([ld(false), j(JEQ_K, vl, hit, miss)]);
        }
        Op::MaskedEq(mask) => {
            let (mh, ml) = ((mask >> 32) as u32, mask as u32);
            let halves = [(true, mh, vh), (false, ml, vl)];
            for (high, m, v) in halves.into_iter().filter(|h| wide || !h.0) {
                if m == 0 && v == 0 {
                    continue; // holds whatever the argument
                }
                p.push(ld(high));
                if m != u32::MAX {
                    p.push(Step::Insn(stmt(AND_K, m)));
                }
                p.push(j(JEQ_K, v, Next, Fail));
            }
        }
        // x < v is !(x >= v), x <= v is !(x > v).
        op => {
            let (hit, miss) = match op {
                Op::Gt | Op::Ge => (Pass, Fail),
                _ => (Fail, Pass),
            };
            let low = match op {
                Op::Ge | Op::Lt => JGE_K,
                _ => JGT_K,
            };
            if wide {
                p.extend([ld(true), j(JGT_K, vh, hit, Next), j(JEQ_K, vh, Next, miss)]);
            }
            p.extend([ld(false), j(low, vl, hit, miss)]);
        }
    }
    p
}

fn offset(from: usize, to: usize) -> Result<u8> {
    u8::try_from(to - from - 1).map_err(|_| Error::invalid("seccomp rule too long"))
}

/// One rule with argument tests, entered with the number in A: its
/// tests, its action, and on failure the number loaded again (the tests
/// clobber A).
fn checked_rule(r: &Rule, wide: bool) -> Result<Vec<Insn>> {
    let mut steps = vec![];
    let mut ends = vec![];
    for c in &r.conds {
        steps.extend(compare(c, wide));
        ends.push(steps.len());
    }
    let fail = steps.len() + 1;
    let mut block = Vec::with_capacity(fail + 1);
    let mut cond = 0;
    for (i, step) in steps.into_iter().enumerate() {
        while ends[cond] <= i {
            cond += 1;
        }
        block.push(match step {
            Step::Insn(insn) => insn,
            Step::Jump { code, k, t, f } => {
                let to = |t| match t {
                    To::Next => Ok(0),
                    To::Pass => offset(i, ends[cond]),
                    To::Fail => offset(i, fail),
                };
                jump(code, k, to(t)?, to(f)?)
            }
        });
    }
    block.push(stmt(RET_K, r.action));
    block.push(stmt(LD_W_ABS, OFF_NR));
    Ok(block)
}

/// One ABI's rules, entered with the number in A: those with argument
/// checks first, in order, then the others as a search tree.
fn section(rules: &[Rule], default: u32, wide: bool) -> Result<Vec<Insn>> {
    let mut p = vec![];
    let mut plain: Vec<Rule> = rules
        .iter()
        .filter(|r| r.conds.is_empty())
        .cloned()
        .collect();
    plain.sort_by_key(|r| r.nr);
    plain.dedup_by_key(|r| r.nr);
    for r in rules.iter().filter(|r| !r.conds.is_empty()) {
        let block = checked_rule(r, wide)?;
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
    assemble_listed(arch, rules, default, default)
}

/// As `assemble`, but a call of an ABI of `arch` that `rules` does not
/// list gets `unlisted` (libseccomp's "bad architecture" action, for a
/// policy that names its architectures).
pub fn assemble_listed(
    arch: Arch,
    rules: &[(Abi, Vec<Rule>)],
    default: u32,
    unlisted: u32,
) -> Result<Vec<Insn>> {
    let sec = |abi| match rules.iter().find(|(a, _)| *a == abi) {
        Some((_, r)) => section(r, default, abi != Abi::I386),
        None => Ok(vec![stmt(RET_K, unlisted)]),
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
    load_with(prog, 0, what)
}

/// As `load`, with `SECCOMP_FILTER_FLAG_*` flags.
pub fn load_with(prog: &[Insn], flags: u32, what: &str) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut Insn,
    };
    // SAFETY: fprog points to a valid program that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
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
            JGT_K => pc += if a > i.k { i.jt } else { i.jf } as usize,
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

    /// A search tree small enough for one return per verdict, and the
    /// same rules spread so wide that it falls back to one per run.
    #[test]
    fn shared_returns_where_the_jumps_reach() {
        let rules = |n: u32| -> Vec<Rule> {
            (0..n)
                .filter(|nr| nr % 4 != 0)
                .map(|nr| Rule {
                    nr,
                    conds: vec![],
                    action: ret_errno(nr as i32 % 3 + 1),
                })
                .collect()
        };
        for n in [1, 2, 5, 200, 2000] {
            let p = assemble(Arch::X86_64, &[(Abi::X86_64, rules(n))], RET_ALLOW).unwrap();
            if n == 200 {
                // About 200 runs: a test each, four returns, the header
                // (a return per run would make it about 600).
                assert!(p.len() < 10 + 205 + 4, "{}", p.len());
            }
            for nr in 0..n + 10 {
                let want = if nr < n && nr % 4 != 0 {
                    ret_errno(nr as i32 % 3 + 1)
                } else {
                    RET_ALLOW
                };
                assert_eq!(run(&p, AUDIT_ARCH_X86_64, nr, [0; 6]), want, "{n}: {nr}");
            }
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
            conds: vec![Cond::int(0, 16), Cond::int(2, 9)],
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
            conds: vec![Cond::int(2, 9)],
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

    fn holds(op: Op, x: u64, v: u64) -> bool {
        match op {
            Op::Eq => x == v,
            Op::Ne => x != v,
            Op::Lt => x < v,
            Op::Le => x <= v,
            Op::Gt => x > v,
            Op::Ge => x >= v,
            Op::MaskedEq(m) => x & m == v,
        }
    }

    /// Every operator against values around the word boundary, alone and
    /// followed by a second test (an early "holds" jump must land on it),
    /// on x86-64 (64-bit arguments) and i386 (the low 32 bits).
    #[test]
    fn argument_comparisons() {
        const EDGES: [u64; 12] = [
            0,
            1,
            2,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            1 << 32,
            (1 << 32) + 1,
            (1 << 32) + 2,
            0x1_0000_00ff,
            u64::MAX - 1,
            u64::MAX,
        ];
        let ops = [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::MaskedEq(0),
            Op::MaskedEq(u64::MAX),
            Op::MaskedEq(0xffff_0000_0000_00ff),
        ];
        let hit = ret_errno(1);
        for op in ops {
            for v in EDGES {
                let conds = vec![
                    Cond {
                        arg: 1,
                        op,
                        value: v,
                    },
                    Cond {
                        arg: 2,
                        op: Op::Eq,
                        value: 7,
                    },
                ];
                let rule = Rule {
                    nr: 5,
                    conds,
                    action: hit,
                };
                let rules = [(Abi::X86_64, vec![rule.clone()]), (Abi::I386, vec![rule])];
                let p = assemble(Arch::X86_64, &rules, RET_ALLOW).unwrap();
                for x in EDGES {
                    for third in [7, 8, 7 | 1 << 32] {
                        let args = [0, x, third, 0, 0, 0];
                        let want = holds(op, x, v) && third == 7;
                        let got = run64(&p, AUDIT_ARCH_X86_64, 5, args);
                        assert_eq!(got == hit, want, "{op:?} {x:#x} vs {v:#x}, {third:#x}");
                        // An i386 process passes 32-bit values, zero-extended.
                        let narrow = args.map(|a| a as u32 as u64);
                        let want = holds(op, x as u32 as u64, v as u32 as u64) && narrow[2] == 7;
                        let got = run64(&p, AUDIT_ARCH_I386, 5, narrow);
                        assert_eq!(got == hit, want, "i386 {op:?} {x:#x} vs {v:#x}");
                    }
                    assert_eq!(
                        run64(&p, AUDIT_ARCH_X86_64, 6, [0, x, 7, 0, 0, 0]),
                        RET_ALLOW
                    );
                }
            }
        }
    }

    #[test]
    fn unlisted_abis() {
        let allow = |nr| Rule {
            nr,
            conds: vec![],
            action: RET_ALLOW,
        };
        let rules = [(Abi::X86_64, vec![allow(0)])];
        let p = assemble_listed(Arch::X86_64, &rules, ret_errno(1), RET_KILL_THREAD).unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1, [0; 6]), ret_errno(1));
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]),
            RET_KILL_THREAD
        );
        assert_eq!(run(&p, AUDIT_ARCH_I386, 3, [0; 6]), RET_KILL_THREAD);
        let p = assemble(Arch::X86_64, &rules, ret_errno(1)).unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_I386, 3, [0; 6]), ret_errno(1));
    }
}
