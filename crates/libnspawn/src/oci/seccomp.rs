//! `linux.seccomp` (runtime-spec config-linux.md, "Seccomp"): the
//! bundle's own system call policy, read into a `SyscallPolicy` that
//! replaces nspawn's filter, as the reference replaces it
//! (nspawn-oci.c). Beyond the reference: `errnoRet` and
//! `defaultErrnoRet` are honoured (it always returns EPERM) and `flags`
//! are passed to seccomp(2). Names we have no number for are skipped, as
//! runc and libseccomp skip them.

use super::json::{err, At, Result};
use crate::security::bpf::{self, Abi, Arch, Cond, Op};
use crate::security::syscall_policy::{PolicyRule, SyscallPolicy};

pub fn read(at: At) -> Result<SyscallPolicy> {
    let path = at.path.clone();
    let mut o = at.object()?;
    let default_errno = o.take("defaultErrnoRet").map(errno).transpose()?;
    let default = action(o.need("defaultAction")?, default_errno)?;
    let mut abis = vec![];
    if let Some(a) = o.take("architectures") {
        for item in a.array()? {
            if let Some(abi) = arch(item)? {
                abis.push(abi);
            }
        }
    }
    let mut flags = 0;
    if let Some(f) = o.take("flags") {
        for item in f.array()? {
            flags |= flag(item)?;
        }
    }
    let mut rules = vec![];
    if let Some(s) = o.take("syscalls") {
        for item in s.array()? {
            rules.push(rule(item)?);
        }
    }
    o.unsupported(&["listenerPath", "listenerMetadata"])?;
    o.done()?;
    let policy = SyscallPolicy {
        default,
        abis,
        flags,
        rules,
    };
    // Assembled once now, so that a policy too large for the kernel is
    // refused before anything starts.
    policy.program(Arch::HOST).or_else(|e| err(&path, e))?;
    Ok(policy)
}

/// An errno value, for `errnoRet`: what the kernel can return (at most
/// MAX_ERRNO, 4095).
fn errno(at: At) -> Result<(String, u32)> {
    let path = at.path.clone();
    match at.u64()? {
        n @ 0..=4095 => Ok((path, n as u32)),
        n => err(&path, format!("{n} is not an errno value (0 to 4095)")),
    }
}

/// An action; `errno` (with its path): its `errnoRet`, only for
/// SCMP_ACT_ERRNO, which otherwise returns EPERM (as runc).
fn action(at: At, errno: Option<(String, u32)>) -> Result<u32> {
    let path = at.path.clone();
    let name = at.string()?;
    let ret = match name.as_str() {
        "SCMP_ACT_ALLOW" => bpf::RET_ALLOW,
        "SCMP_ACT_ERRNO" => {
            return Ok(bpf::ret_errno(errno.map_or(libc::EPERM, |(_, e)| e as i32)))
        }
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => bpf::RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => bpf::RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => bpf::RET_TRAP,
        "SCMP_ACT_LOG" => bpf::RET_LOG,
        "SCMP_ACT_NOTIFY" => {
            return err(
                &path,
                "SCMP_ACT_NOTIFY is not supported (no seccomp agent is told)",
            )
        }
        "SCMP_ACT_TRACE" => {
            return err(
                &path,
                "SCMP_ACT_TRACE is not supported (no tracer is attached)",
            )
        }
        _ => return err(&path, format!("unknown action {name}")),
    };
    match errno {
        Some((p, _)) => err(&p, format!("given with {name}, not SCMP_ACT_ERRNO")),
        None => Ok(ret),
    }
}

/// An architecture: one of ours (`None` for one this machine has no
/// filter section for: its calls never reach this kernel's filter).
fn arch(at: At) -> Result<Option<Abi>> {
    let path = at.path.clone();
    let name = at.string()?;
    Ok(Some(match name.as_str() {
        "SCMP_ARCH_NATIVE" => Arch::HOST.native(),
        "SCMP_ARCH_X86_64" => Abi::X86_64,
        "SCMP_ARCH_X86" => Abi::I386,
        "SCMP_ARCH_X32" => Abi::X32,
        "SCMP_ARCH_AARCH64" => Abi::Aarch64,
        // On aarch64, 32-bit arm tasks stay killed (bpf::Arch::Aarch64).
        "SCMP_ARCH_ARM"
        | "SCMP_ARCH_MIPS"
        | "SCMP_ARCH_MIPS64"
        | "SCMP_ARCH_MIPS64N32"
        | "SCMP_ARCH_MIPSEL"
        | "SCMP_ARCH_MIPSEL64"
        | "SCMP_ARCH_MIPSEL64N32"
        | "SCMP_ARCH_PPC"
        | "SCMP_ARCH_PPC64"
        | "SCMP_ARCH_PPC64LE"
        | "SCMP_ARCH_S390"
        | "SCMP_ARCH_S390X"
        | "SCMP_ARCH_PARISC"
        | "SCMP_ARCH_PARISC64"
        | "SCMP_ARCH_RISCV64"
        | "SCMP_ARCH_LOONGARCH64"
        | "SCMP_ARCH_M68K"
        | "SCMP_ARCH_SH"
        | "SCMP_ARCH_SHEB" => return Ok(None),
        _ => return err(&path, format!("unknown architecture {name}")),
    }))
}

/// seccomp(2)'s filter flags. WAIT_KILLABLE_RECV is for a listener,
/// which we do not make (the kernel refuses it without one).
fn flag(at: At) -> Result<u32> {
    let path = at.path.clone();
    let name = at.string()?;
    Ok(match name.as_str() {
        "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC as u32,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG as u32,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {
            return err(&path, format!("{name} is not supported (no listener)"))
        }
        _ => return err(&path, format!("unknown flag {name}")),
    })
}

fn rule(at: At) -> Result<PolicyRule> {
    let mut o = at.object()?;
    let n = o.need("names")?;
    let npath = n.path.clone();
    let names = n.strings()?;
    if names.is_empty() {
        return err(&npath, "empty");
    }
    let errno = o.take("errnoRet").map(errno).transpose()?;
    let action = action(o.need("action")?, errno)?;
    let mut conds = vec![];
    if let Some(a) = o.take("args") {
        for item in a.array()? {
            conds.push(arg(item)?);
        }
    }
    o.done()?;
    Ok(PolicyRule {
        names,
        action,
        conds,
    })
}

/// An argument test. SCMP_CMP_MASKED_EQ's mask is `value` and what the
/// masked argument must equal `valueTwo` (libseccomp's datum_a and
/// datum_b); buildah and podman give it without `valueTwo`, meaning 0.
fn arg(at: At) -> Result<Cond> {
    let mut o = at.object()?;
    let i = o.need("index")?;
    let ipath = i.path.clone();
    let index = i.u64()?;
    if index > 5 {
        return err(&ipath, format!("{index} is not an argument (0 to 5)"));
    }
    let value = o.need("value")?.u64()?;
    let two = o.take("valueTwo").map(At::u64).transpose()?;
    let op = o.need("op")?;
    let opath = op.path.clone();
    let name = op.string()?;
    o.done()?;
    let op = match name.as_str() {
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(Cond {
                arg: index as u32,
                op: Op::MaskedEq(value),
                value: two.unwrap_or(0),
            })
        }
        _ => return err(&opath, format!("unknown operator {name}")),
    };
    Ok(Cond {
        arg: index as u32,
        op,
        value,
    })
}
