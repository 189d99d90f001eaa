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

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// r2 = device type, r3 = major, r4 = minor; for each rule, return 1
/// (allow) if all match; else return 0 (deny).
fn program() -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 4, 0),
        insn(LDX_W, 4, 1, 8, 0),
    ];
    for &(ty, major, minor) in ALLOWED {
        let len: i16 = if minor.is_some() { 5 } else { 4 };
        p.push(insn(JNE_K, 2, 0, len - 1, ty as i32));
        p.push(insn(JNE_K, 3, 0, len - 2, major as i32));
        if let Some(minor) = minor {
            p.push(insn(JNE_K, 4, 0, len - 3, minor as i32));
        }
        p.push(insn(MOV_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
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
fn load() -> Result<OwnedFd> {
    let prog = program();
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
    let prog = load()?;
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
    #[test]
    fn jumps_land_on_the_next_rule() {
        let p = super::program();
        // Header, 11 rules of 5 and one of 4, the final deny.
        assert_eq!(p.len(), 4 + 11 * 5 + 4 + 2);
        let mut i = 4;
        while i < p.len() - 2 {
            let first = p[i];
            let next = i + 1 + first.off as usize;
            assert_eq!(p[next - 1].code, super::EXIT);
            i = next;
        }
    }
}
