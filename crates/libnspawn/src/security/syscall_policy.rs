//! A whole system call policy given as data, as a runtime-spec bundle's
//! `linux.seccomp` gives one (`oci::seccomp` reads it): a default action,
//! the ABIs it covers, and rules by name, each with an action and
//! argument tests that must all hold. It replaces nspawn's own filters
//! (`seccomp`: the allow list and the audit rule), as the reference's
//! `arg_seccomp` does.
//!
//! Names are looked up per ABI in `syscall_numbers`; a name an ABI has no
//! number for is skipped there, as runc and libseccomp skip names they do
//! not know (a profile may be newer than our table). Of rules for one
//! number, those with argument tests are tried first, in order, and the
//! first that holds decides; then the first rule without tests.
//! A call of an ABI the policy does not cover kills the process
//! (libseccomp's "bad architecture" action, which kills the thread; the
//! process is clearer).

use super::bpf::{self, Abi, Arch, Cond, Rule};
use super::syscall_numbers::number;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// One rule: its names, its action (a `SECCOMP_RET_*` value), its tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub names: Vec<String>,
    pub action: u32,
    pub conds: Vec<Cond>,
}

/// Serialized into the machine's registry record, so that `nspawnctl
/// shell` confines what it starts the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallPolicy {
    /// For calls no rule covers.
    pub default: u32,
    /// The ABIs covered besides the build's own.
    pub abis: Vec<Abi>,
    /// `SECCOMP_FILTER_FLAG_*`, for seccomp(2).
    pub flags: u32,
    pub rules: Vec<PolicyRule>,
}

impl SyscallPolicy {
    fn rules_for(&self, abi: Abi) -> Vec<Rule> {
        let mut out = vec![];
        for r in &self.rules {
            for name in &r.names {
                if let Some(nr) = number(abi, name) {
                    out.push(Rule {
                        nr,
                        conds: r.conds.clone(),
                        action: r.action,
                    });
                }
            }
        }
        out
    }

    /// The program for `arch`.
    pub fn program(&self, arch: Arch) -> Result<Vec<libc::sock_filter>> {
        let rules: Vec<(Abi, Vec<Rule>)> = arch
            .abis()
            .iter()
            .filter(|&&abi| abi == arch.native() || self.abis.contains(&abi))
            .map(|&abi| (abi, self.rules_for(abi)))
            .collect();
        bpf::assemble_listed(arch, &rules, self.default, bpf::RET_KILL_PROCESS)
    }

    /// Load it into this process (and all it starts).
    pub fn load(&self) -> Result<()> {
        let prog = self.program(Arch::HOST)?;
        bpf::load_with(&prog, self.flags, "seccomp filter of the bundle")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf::{run64, Op, AUDIT_ARCH_I386 as I386, AUDIT_ARCH_X86_64 as X86_64};

    fn rule(names: &[&str], action: u32, conds: Vec<Cond>) -> PolicyRule {
        PolicyRule {
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            conds,
        }
    }

    #[test]
    fn names_actions_and_arguments() {
        let eperm = bpf::ret_errno(libc::EPERM);
        let p = SyscallPolicy {
            default: eperm,
            abis: vec![Abi::I386],
            flags: 0,
            rules: vec![
                // personality(PER_LINUX) or (0xffffffff, the query) only.
                rule(
                    &["personality"],
                    bpf::RET_ALLOW,
                    vec![Cond {
                        arg: 0,
                        op: Op::Eq,
                        value: 0,
                    }],
                ),
                rule(
                    &["personality"],
                    bpf::RET_ALLOW,
                    vec![Cond {
                        arg: 0,
                        op: Op::Eq,
                        value: 0xffff_ffff,
                    }],
                ),
                rule(&["read", "write", "no_such_call"], bpf::RET_ALLOW, vec![]),
                rule(&["mkdir", "mkdirat"], bpf::ret_errno(libc::EROFS), vec![]),
                // Listed again: the first rule for a number wins.
                rule(&["read"], bpf::RET_KILL_PROCESS, vec![]),
            ],
        };
        let prog = p.program(Arch::X86_64).unwrap();
        let x = |nr, a0| run64(&prog, X86_64, nr, [a0, 0, 0, 0, 0, 0]);
        assert_eq!(x(0, 0), bpf::RET_ALLOW); // read
        assert_eq!(x(1, 0), bpf::RET_ALLOW); // write
        assert_eq!(x(83, 0), bpf::ret_errno(libc::EROFS)); // mkdir
        assert_eq!(x(258, 0), bpf::ret_errno(libc::EROFS)); // mkdirat
        assert_eq!(x(2, 0), eperm); // open
        assert_eq!(x(135, 0), bpf::RET_ALLOW); // personality
        assert_eq!(x(135, 0xffff_ffff), bpf::RET_ALLOW);
        assert_eq!(x(135, 8), eperm);
        assert_eq!(run64(&prog, I386, 39, [0; 6]), bpf::ret_errno(libc::EROFS));
        assert_eq!(run64(&prog, I386, 3, [0; 6]), bpf::RET_ALLOW);
        // x32 is not listed.
        assert_eq!(x(bpf::X32_SYSCALL_BIT, 0), bpf::RET_KILL_PROCESS);
    }

    /// The cost per start of a policy the size of podman's (every call
    /// systemd knows allowed, a few argument rules):
    /// `cargo test -p libnspawn --release --lib policy_build_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn policy_build_cost() {
        let known = crate::security::syscall_sets::GROUPS
            .iter()
            .find(|g| g.name == "@known")
            .unwrap();
        let mut rules = vec![rule(known.members, bpf::RET_ALLOW, vec![])];
        for v in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            let c = Cond {
                arg: 0,
                op: Op::Eq,
                value: v,
            };
            rules.insert(0, rule(&["personality"], bpf::RET_ALLOW, vec![c]));
        }
        let p = SyscallPolicy {
            default: bpf::ret_errno(libc::ENOSYS),
            abis: vec![Abi::X86_64, Abi::X32, Abi::I386],
            flags: 0,
            rules,
        };
        let n = 500;
        let len = p.program(Arch::HOST).unwrap().len();
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(p.program(Arch::HOST).unwrap());
        }
        eprintln!(
            "{} names: {len} instructions, built in {:?}",
            known.members.len(),
            t.elapsed() / n
        );
    }
}
