//! The device policy: a BPF_PROG_TYPE_CGROUP_DEVICE program on the
//! container's cgroup (unified hierarchy), so root inside cannot use a host
//! device even after mknod(2): the kernel asks the program on every mknod
//! and every open of a device node (Documentation/admin-guide/cgroup-v2.rst,
//! "Device controller"). This holds on hybrid hosts as on pure v2 ones: the
//! v2 program is consulted in addition to any v1 devices cgroup.
//!
//! Allowed (read, write, mknod): the nodes `mount::dev` makes, the console
//! and its pty peers, `/dev/ptmx` and `/dev/net/tun`. Everything else,
//! block devices included, is refused with EPERM.
//!
//! The program is a dozen instructions, written here by hand: the crates
//! that load BPF (aya, libbpf-rs) bring a compiler tool chain or an ELF
//! loader for what is a fixed, tiny program.
//!
//! An OCI bundle's rules (`linux.resources.devices`, `nspawn-oci`) make
//! another program (`attach_rules`): the rules as a chain, the last that
//! matches a request deciding (runtime-spec's order), with the access
//! (read, write, mknod) checked; our own nodes stay allowed above them.

use crate::error::{Context, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// (type, major, minor): minor `None` is any minor.
const ALLOWED: &[(u32, u32, Option<u32>)] = &[
    // 0:0 is no device (opening it fails with ENXIO): the inaccessible
    // nodes `mount` masks files with.
    (BLOCK, 0, Some(0)),
    (CHAR, 0, Some(0)),
    (CHAR, 1, Some(3)),    // null
    (CHAR, 1, Some(5)),    // zero
    (CHAR, 1, Some(7)),    // full
    (CHAR, 1, Some(8)),    // random
    (CHAR, 1, Some(9)),    // urandom
    (CHAR, 5, Some(0)),    // tty
    (CHAR, 5, Some(1)),    // console
    (CHAR, 5, Some(2)),    // ptmx
    (CHAR, 136, None),     // pty peers (/dev/pts/N, the console)
    (CHAR, 10, Some(200)), // net/tun
];

// <linux/bpf.h>
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of parent cgroups keep running for descendants, and a guest
/// that attaches its own (systemd does) adds to ours instead of replacing it.
const BPF_F_ALLOW_MULTI: u32 = 2;
/// `bpf_cgroup_dev_ctx.access_type & 0xffff`: BPF_DEVCG_DEV_BLOCK, _CHAR.
const BLOCK: u32 = 1;
const CHAR: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | src << 4,
        off,
        imm,
    }
}

/// `bpf_cgroup_dev_ctx.access_type >> 16`: BPF_DEVCG_ACC_MKNOD, _READ,
/// _WRITE.
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;

/// One rule of an OCI bundle's device list (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `BLOCK` or `CHAR` (`DeviceType`); `None`: both ("a").
    pub block: Option<bool>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u32,
}

/// The nodes our `/dev` has, as allow rules (read, write, mknod).
pub fn standard_rules() -> Vec<Rule> {
    ALLOWED
        .iter()
        .map(|&(ty, major, minor)| Rule {
            allow: true,
            block: Some(ty == BLOCK),
            major: Some(major),
            minor,
            access: ACC_MKNOD | ACC_READ | ACC_WRITE,
        })
        .collect()
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JA: u8 = 0x05; // BPF_JMP | BPF_JA
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// Where a jump goes: the verdicts at the end, or the instruction after
/// the group a test opens (patched once the group is emitted).
#[derive(Clone, Copy)]
enum To {
    Allow,
    Deny,
    At(usize),
}

/// r2 = device type, r3 = major, r4 = minor; a decision tree: the type,
/// then its majors, then their minors; return 1 (allow) or 0 (deny).
///
/// A tree, not one test chain per rule: the verifier walks every path of
/// the program, and a chain of a dozen three-test rules gave it hundreds
/// of states to explore (a quarter of a millisecond a start, most of the
/// cost of loading); here a path has at most three tests.
fn program() -> Vec<Insn> {
    let mut p: Vec<(Insn, Option<To>)> = [
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 4, 0),
        insn(LDX_W, 4, 1, 8, 0),
    ]
    .into_iter()
    .map(|i| (i, None))
    .collect();
    let jump = |code, reg, imm: u32, to| (insn(code, reg, 0, 0, imm as i32), Some(to));
    let mut types: Vec<u32> = ALLOWED.iter().map(|r| r.0).collect();
    types.sort_unstable();
    types.dedup();
    for ty in types {
        let type_test = p.len();
        p.push(jump(JNE_K, 2, ty, To::Deny));
        let mut majors: Vec<u32> = ALLOWED.iter().filter(|r| r.0 == ty).map(|r| r.1).collect();
        majors.sort_unstable();
        majors.dedup();
        for major in majors {
            let major_test = p.len();
            p.push(jump(JNE_K, 3, major, To::Deny));
            let rules = ALLOWED.iter().filter(|r| r.0 == ty && r.1 == major);
            if rules.clone().any(|r| r.2.is_none()) {
                p.push(jump(JA, 0, 0, To::Allow));
            } else {
                for minor in rules.filter_map(|r| r.2) {
                    p.push(jump(JEQ_K, 4, minor, To::Allow));
                }
                p.push(jump(JA, 0, 0, To::Deny));
            }
            p[major_test].1 = Some(To::At(p.len()));
        }
        p.push(jump(JA, 0, 0, To::Deny));
        p[type_test].1 = Some(To::At(p.len()));
    }
    finish(p)
}

/// `rules` as a chain, tried from the last: the first (so the last in
/// the list) whose type, major and minor match decides — an allow rule
/// if it grants every access asked for (else the earlier rules are
/// asked), a deny rule if it names any of them. Nothing matched: deny.
/// r2 = type, r5 = access, r3 = major, r4 = minor, r6 scratch.
fn chain(rules: &[Rule]) -> Vec<Insn> {
    let mut p: Vec<(Insn, Option<To>)> = [
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 5, 2, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(RSH_K, 5, 0, 0, 16),
        insn(LDX_W, 3, 1, 4, 0),
        insn(LDX_W, 4, 1, 8, 0),
    ]
    .into_iter()
    .map(|i| (i, None))
    .collect();
    let jump = |code, reg, imm: u32| (insn(code, reg, 0, 0, imm as i32), None);
    for r in rules.iter().rev() {
        let start = p.len();
        let ty = r.block.map(|b| if b { BLOCK } else { CHAR });
        for (reg, want) in [(2, ty), (3, r.major), (4, r.minor)] {
            if let Some(v) = want {
                p.push(jump(JNE_K, reg, v));
            }
        }
        p.push((insn(MOV_X, 6, 5, 0, 0), None));
        let access = r.access & 7;
        if r.allow {
            // Any access asked for that the rule does not grant: go on.
            p.push((insn(AND_K, 6, 0, 0, (!access & 7) as i32), None));
            p.push(jump(JNE_K, 6, 0));
            p.push((insn(JA, 0, 0, 0, 0), Some(To::Allow)));
        } else {
            p.push((insn(AND_K, 6, 0, 0, access as i32), None));
            p.push(jump(JEQ_K, 6, 0));
            p.push((insn(JA, 0, 0, 0, 0), Some(To::Deny)));
        }
        // The rule's tests that fail go to the next rule.
        let next = p.len();
        for i in &mut p[start..next] {
            if i.1.is_none() && matches!(i.0.code, JNE_K | JEQ_K) {
                i.1 = Some(To::At(next));
            }
        }
    }
    finish(p)
}

/// The verdicts after `p`, and its jumps resolved.
fn finish(mut p: Vec<(Insn, Option<To>)>) -> Vec<Insn> {
    let deny = p.len();
    p.push((insn(MOV_K, 0, 0, 0, 0), None));
    p.push((insn(EXIT, 0, 0, 0, 0), None));
    let allow = p.len();
    p.push((insn(MOV_K, 0, 0, 0, 1), None));
    p.push((insn(EXIT, 0, 0, 0, 0), None));
    p.iter()
        .enumerate()
        .map(|(at, &(mut i, to))| {
            if let Some(to) = to {
                let target = match to {
                    To::Allow => allow,
                    To::Deny => deny,
                    To::At(n) => n,
                };
                i.off = (target - at - 1) as i16;
            }
            i
        })
        .collect()
}

/// `bpf(2)`, raw: neither rustix nor nix wraps it.
fn bpf(cmd: libc::c_int, attr: &mut [u64; 16]) -> nix::Result<libc::c_long> {
    // SAFETY: attr is a zero-filled bpf_attr large enough for the command.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) };
    Errno::result(r)
}

/// Load the program. Without a verifier log: asking for one makes the
/// verifier print every instruction's state, which was most of the
/// load's cost (about a millisecond a start). Only a refused program is
/// loaded again with the log, for the reason.
fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"LGPL-2.1-or-later";
    let attempt = |log: Option<&mut [u8]>| {
        let mut attr = [0u64; 16];
        // prog_type, insn_cnt | insns | license | log_level, log_size | log_buf
        attr[0] = BPF_PROG_TYPE_CGROUP_DEVICE as u64 | (prog.len() as u64) << 32;
        attr[1] = prog.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        if let Some(log) = log {
            attr[3] = 1 | (log.len() as u64) << 32;
            attr[4] = log.as_mut_ptr() as u64;
        }
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    let fd = match attempt(None) {
        Ok(fd) => fd,
        Err(_) => {
            let mut log = vec![0u8; 4096];
            attempt(Some(&mut log)).ctx(|| {
                let end = log.iter().position(|&b| b == 0).unwrap_or(0);
                let why = String::from_utf8_lossy(&log[..end]).replace('\n', "; ");
                format!("cannot load the device policy program ({why})")
            })?
        }
    };
    // SAFETY: a new descriptor from the kernel (BPF fds are close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Attach the policy to a cgroup (given by its directory); it stays there
/// until the cgroup is removed, whatever happens to us.
pub fn attach(cgroup: BorrowedFd) -> Result<()> {
    attach_program(cgroup, &program())
}

/// Attach the program of an OCI bundle's `rules` (`chain`) instead.
pub fn attach_rules(cgroup: BorrowedFd, rules: &[Rule]) -> Result<()> {
    attach_program(cgroup, &chain(rules))
}

fn attach_program(cgroup: BorrowedFd, prog: &[Insn]) -> Result<()> {
    let prog = load(prog)?;
    let mut attr = [0u64; 16];
    // target_fd, attach_bpf_fd | attach_type, attach_flags
    attr[0] = cgroup.as_raw_fd() as u32 as u64 | (prog.as_raw_fd() as u32 as u64) << 32;
    attr[1] = BPF_CGROUP_DEVICE as u64 | (BPF_F_ALLOW_MULTI as u64) << 32;
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .ctx(|| "cannot attach the device policy to the container's cgroup".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program run on (access, major, minor) by the few instructions
    /// it uses, with the kernel's jump semantics (off counts from the
    /// next instruction).
    fn run(p: &[Insn], ctx: [u32; 3]) -> u64 {
        let mut r = [0u64; 7];
        let mut pc = 0;
        for _ in 0..p.len() {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let next = pc + 1;
            let jump = next.wrapping_add_signed(i.off as isize);
            pc = match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads from the context only");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                    next
                }
                AND_K => {
                    r[dst] &= i.imm as u32 as u64;
                    next
                }
                MOV_X => {
                    r[dst] = r[src];
                    next
                }
                RSH_K => {
                    r[dst] >>= i.imm;
                    next
                }
                MOV_K => {
                    r[dst] = i.imm as u32 as u64;
                    next
                }
                JEQ_K if r[dst] == i.imm as u32 as u64 => jump,
                JNE_K if r[dst] != i.imm as u32 as u64 => jump,
                JEQ_K | JNE_K => next,
                JA => jump,
                EXIT => return r[0],
                c => panic!("unexpected instruction {c:#x}"),
            };
            assert!(pc < p.len(), "jump past the end");
        }
        panic!("no exit")
    }

    #[test]
    fn allows_exactly_the_listed_devices() {
        let p = program();
        // The access bits above the type are masked off.
        let ctx = |ty: u32, major, minor| [ty | 0x7 << 16, major, minor];
        for &(ty, major, minor) in ALLOWED {
            for m in minor.map_or(vec![0, 1, 77], |m| vec![m]) {
                assert_eq!(run(&p, ctx(ty, major, m)), 1, "{ty} {major}:{m}");
            }
        }
        for (ty, major, minor) in [
            (BLOCK, 8, 0), // sda
            (BLOCK, 7, 0), // loop0
            (BLOCK, 0, 1),
            (BLOCK, 1, 3), // null's numbers, as a block device
            (CHAR, 1, 1),  // mem
            (CHAR, 1, 2),  // kmem
            (CHAR, 1, 11), // kmsg
            (CHAR, 4, 1),  // tty1
            (CHAR, 5, 3),
            (CHAR, 10, 232), // kvm
            (CHAR, 10, 237), // loop-control
            (CHAR, 0, 1),
            (3, 1, 3), // no such type
        ] {
            assert_eq!(run(&p, ctx(ty, major, minor)), 0, "{ty} {major}:{minor}");
        }
    }

    /// The kernel takes it (and the verifier's walk stays short: a path
    /// has at most three tests).
    #[test]
    fn the_kernel_loads_it() {
        load(&program()).unwrap();
    }

    /// podman's rules for `--device /dev/fuse`: everything denied, mknod
    /// of any node allowed, the usual nodes and fuse allowed; then ours.
    fn podman_rules() -> Vec<Rule> {
        let r = |allow, block, major, minor, access| Rule {
            allow,
            block,
            major,
            minor,
            access,
        };
        let rwm = ACC_READ | ACC_WRITE | ACC_MKNOD;
        let mut v = vec![
            r(false, None, None, None, rwm),
            r(true, Some(false), None, None, ACC_MKNOD),
            r(true, Some(true), None, None, ACC_MKNOD),
            r(true, Some(false), Some(10), Some(229), rwm),
            r(true, Some(false), Some(10), Some(237), ACC_READ),
            // A later deny wins over the earlier allow.
            r(true, Some(false), Some(4), None, rwm),
            r(false, Some(false), Some(4), Some(1), ACC_WRITE),
        ];
        v.extend(standard_rules());
        v
    }

    #[test]
    fn chain_decides_by_the_last_matching_rule_and_access() {
        let p = chain(&podman_rules());
        let ctx = |ty: u32, acc: u32, major, minor| [ty | acc << 16, major, minor];
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        for (ty, acc, major, minor, want) in [
            (CHAR, r | w, 10, 229, 1), // fuse
            (CHAR, m, 10, 229, 1),
            (CHAR, r, 10, 237, 1), // loop-control, read only
            (CHAR, r | w, 10, 237, 0),
            (CHAR, m, 10, 237, 1), // mknod of anything
            (BLOCK, m, 8, 0, 1),
            (BLOCK, r, 8, 0, 0), // but not its use
            (CHAR, r, 10, 232, 0),
            (CHAR, r | w, 1, 3, 1), // ours: null
            (CHAR, r | w, 136, 5, 1),
            (CHAR, r, 4, 2, 1),
            (CHAR, r, 4, 1, 1), // the deny names write only
            (CHAR, w, 4, 1, 0),
            (3, r, 1, 3, 0),
        ] {
            assert_eq!(
                run(&p, ctx(ty, acc, major, minor)),
                want,
                "{ty} {acc} {major}:{minor}"
            );
        }
        // No rules at all: nothing.
        assert_eq!(run(&chain(&[]), ctx(CHAR, r, 1, 3)), 0);
    }

    #[test]
    fn the_kernel_loads_a_chain() {
        load(&chain(&podman_rules())).unwrap();
    }
}
