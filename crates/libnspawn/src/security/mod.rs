//! Confinement applied to the container's processes: the capability sets,
//! the system call filter, the device policy and the process limits.
//!
//! The order in which `launch::child` applies them matters and follows the
//! reference: bounding set and limits while still fully privileged; the
//! seccomp filter before the user switch (loading one without
//! `no_new_privs` needs CAP_SYS_ADMIN, seccomp(2)); the other capability
//! sets and `no_new_privs` last, right before `execve`.

pub mod bpf;
pub mod caps;
pub mod devices;
pub mod limits;
pub mod release_agent;
pub mod seccomp;
pub mod syscall_numbers;
pub mod syscall_policy;
pub mod syscall_sets;

use crate::error::Result;

/// Confinement settings (`--capability=`, `--system-call-filter=`, ...),
/// filled by the command line and `.nspawn` files.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    /// `--capability=`: added to the default set (`all`: every one).
    pub caps_add: u64,
    /// `--drop-capability=`: removed after adding.
    pub caps_drop: u64,
    /// `--ambient-capability=`: raised in the payload's ambient set.
    pub caps_ambient: u64,
    pub no_new_privileges: bool,
    /// `--system-call-filter=LIST`: allowed on top of the default policy.
    pub syscall_allow: Vec<String>,
    /// `--system-call-filter=~LIST`: never allowed.
    pub syscall_deny: Vec<String>,
    pub suppress_sync: bool,
    pub limits: limits::Limits,
    /// The payload's own sets, exactly (`--oci-bundle`'s
    /// `process.capabilities`); otherwise derived from the kept set.
    pub process_caps: Option<ProcessCaps>,
    /// A whole policy instead of ours and the lists above
    /// (`--oci-bundle`'s `linux.seccomp`).
    pub syscall_policy: Option<syscall_policy::SyscallPolicy>,
}

/// Capability sets of the payload, as masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessCaps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl SecuritySettings {
    /// The capabilities the container keeps, as the reference computes it:
    /// (default | added | NET_ADMIN with a private network) & !dropped,
    /// and without NET_BIND_SERVICE when `shifted_on_host_network`: root of
    /// a user namespace with a shifted range, in the host's network
    /// namespace, cannot bind low ports there (the kernel asks the
    /// namespace's owner), so it does not get to think it can.
    pub fn retain(&self, private_network: bool, shifted_on_host_network: bool) -> u64 {
        let kept = (caps::default_mask(private_network) | self.caps_add) & !self.caps_drop;
        match shifted_on_host_network {
            true => kept & !::caps::Capability::CAP_NET_BIND_SERVICE.bitmask(),
            false => kept,
        }
    }

    /// Check the combination, before anything is started.
    pub fn validate(&self, private_network: bool) -> Result<()> {
        let missing = self.caps_ambient & !self.retain(private_network, false);
        if missing != 0 {
            return Err(crate::Error::invalid(format!(
                "--ambient-capability: not in the kept capabilities: {}",
                caps::names(missing).join(",")
            )));
        }
        Ok(())
    }
}

/// The last step before execve, after the user switch: the payload's
/// capability sets and `no_new_privs` (prctl(2) PR_SET_NO_NEW_PRIVS).
pub fn finish(s: &SecuritySettings, retain: u64, root: bool) -> Result<()> {
    use crate::error::Context;
    match &s.process_caps {
        Some(p) => caps::apply_exact(p, retain, s.caps_ambient)?,
        None => caps::apply_process(retain, s.caps_ambient, root)?,
    }
    if s.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().ctx(|| "cannot set no_new_privs".into())?;
    }
    Ok(())
}
