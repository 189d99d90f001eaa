//! The capability bounding set the reference keeps (systemd-nspawn(1),
//! `--capability=`), plus CAP_NET_ADMIN with a private network.

use crate::error::{Error, Result};
use caps::{CapSet, Capability as C};

pub const DEFAULT_KEEP: &[C] = &[
    C::CAP_AUDIT_CONTROL,
    C::CAP_AUDIT_WRITE,
    C::CAP_CHOWN,
    C::CAP_DAC_OVERRIDE,
    C::CAP_DAC_READ_SEARCH,
    C::CAP_FOWNER,
    C::CAP_FSETID,
    C::CAP_IPC_OWNER,
    C::CAP_KILL,
    C::CAP_LEASE,
    C::CAP_LINUX_IMMUTABLE,
    C::CAP_MKNOD,
    C::CAP_NET_BIND_SERVICE,
    C::CAP_NET_BROADCAST,
    C::CAP_NET_RAW,
    C::CAP_SETFCAP,
    C::CAP_SETGID,
    C::CAP_SETPCAP,
    C::CAP_SETUID,
    C::CAP_SYS_ADMIN,
    C::CAP_SYS_BOOT,
    C::CAP_SYS_CHROOT,
    C::CAP_SYS_NICE,
    C::CAP_SYS_PTRACE,
    C::CAP_SYS_RESOURCE,
    C::CAP_SYS_TTY_CONFIG,
];

/// The default set as a mask, as `/proc/PID/status` prints `CapBnd`.
pub fn default_mask(private_network: bool) -> u64 {
    let mut m = DEFAULT_KEEP.iter().fold(0u64, |m, c| m | c.bitmask());
    if private_network {
        m |= C::CAP_NET_ADMIN.bitmask();
    }
    m
}

/// Drop every capability the kernel knows that is not in `keep` from the
/// bounding set.
pub fn drop_bounding(keep: u64) -> Result<()> {
    for cap in caps::runtime::thread_all_supported() {
        if keep & cap.bitmask() == 0 {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                Error::invalid(format!("cannot drop {cap} from the bounding set: {e}"))
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mask_matches_reference() {
        // The reference's set. REFERENCE.md quotes fcecafff: this machine's
        // own bounding set lacks CAP_SYS_RESOURCE (bit 24), which no runner
        // can hand on; the integration tests compare what shows inside.
        assert_eq!(super::default_mask(false), 0x00000000fdecafff);
        assert_eq!(super::default_mask(true), 0x00000000fdecbfff);
    }
}
