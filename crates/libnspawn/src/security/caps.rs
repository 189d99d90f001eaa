//! The capability sets: the bounding set the reference keeps
//! (systemd-nspawn(1), `--capability=`), plus CAP_NET_ADMIN with a private
//! network; the effective, permitted, inheritable and ambient sets of the
//! payload; capability names as the reference spells them.

use crate::error::{Context, Error, Result};
use caps::{CapSet, Capability as C, CapsHashSet};

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

/// Every capability this library knows, as a mask (`all`).
pub fn all_mask() -> u64 {
    caps::all().iter().fold(0u64, |m, c| m | c.bitmask())
}

/// Parse a comma-separated list as the reference does: `CAP_SYS_ADMIN` in
/// any case, or the number; `all` for every capability. An empty list is
/// no capability. Bare `SYS_ADMIN` is refused, as by the reference.
pub fn parse_list(s: &str) -> Result<u64> {
    let mut mask = 0;
    for word in s.split(',').filter(|w| !w.is_empty()) {
        if word == "all" {
            mask |= all_mask();
            continue;
        }
        let named = word.len() > 4 && word[..4].eq_ignore_ascii_case("cap_");
        let cap = match word.parse::<u8>() {
            Ok(n) => caps::all().into_iter().find(|c| c.index() == n),
            Err(_) if named => word.to_ascii_uppercase().parse::<C>().ok(),
            Err(_) => None,
        };
        match cap {
            Some(c) => mask |= c.bitmask(),
            None => {
                return Err(Error::invalid(format!(
                    "Failed to parse capability {word}."
                )))
            }
        }
    }
    Ok(mask)
}

/// The names in a mask, lower case as `--capability=help` lists them.
pub fn names(mask: u64) -> Vec<String> {
    let mut all: Vec<C> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string().to_ascii_lowercase())
        .collect()
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

fn set_of(mask: u64) -> CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect()
}

fn mask_of(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

fn cap_err(what: &str) -> impl Fn(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::invalid(format!("cannot set the {what} capabilities: {e}"))
}

/// Before switching to a non-root user with ambient capabilities: keep the
/// permitted set across setuid (prctl(2) PR_SET_KEEPCAPS), which would
/// otherwise be cleared (capabilities(7), "Effect of user ID changes").
pub fn keep_across_setuid(ambient: u64) -> Result<()> {
    if ambient == 0 {
        return Ok(());
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "cannot keep capabilities across setuid".into())
}

/// The payload's sets, as the reference leaves them: root keeps `retain` in
/// its inheritable, permitted and effective sets (execve gives root the
/// bounding set anyway); another user keeps nothing but `ambient`, which
/// execve(2) turns into its permitted and effective sets.
pub fn apply_process(retain: u64, ambient: u64, root: bool) -> Result<()> {
    let have = mask_of(&caps::read(None, CapSet::Permitted).map_err(cap_err("permitted"))?);
    let keep = if root { retain & have } else { ambient & have };
    caps::set(None, CapSet::Effective, &set_of(keep)).map_err(cap_err("effective"))?;
    caps::set(None, CapSet::Inheritable, &set_of(keep)).map_err(cap_err("inheritable"))?;
    caps::set(None, CapSet::Permitted, &set_of(keep)).map_err(cap_err("permitted"))?;
    for cap in set_of(ambient & keep) {
        caps::raise(None, CapSet::Ambient, cap).map_err(cap_err("ambient"))?;
    }
    Ok(())
}

/// The payload's sets exactly as given (an OCI bundle's), within the
/// kept set. An ambient capability must be permitted and inheritable or
/// the kernel refuses to raise it (capabilities(7)): the ambient ones are
/// made inheritable, as the reference does; one not permitted is an error.
pub fn apply_exact(p: &super::ProcessCaps, retain: u64, ambient: u64) -> Result<()> {
    let have = mask_of(&caps::read(None, CapSet::Permitted).map_err(cap_err("permitted"))?);
    let within = |m: u64| m & retain & have;
    if ambient & !p.permitted != 0 {
        return Err(Error::invalid(format!(
            "ambient capabilities not in the permitted set: {}",
            names(ambient & !p.permitted).join(",")
        )));
    }
    caps::set(
        None,
        CapSet::Inheritable,
        &set_of(within(p.inheritable | ambient)),
    )
    .map_err(cap_err("inheritable"))?;
    caps::set(
        None,
        CapSet::Effective,
        &set_of(within(p.effective & p.permitted)),
    )
    .map_err(cap_err("effective"))?;
    caps::set(None, CapSet::Permitted, &set_of(within(p.permitted)))
        .map_err(cap_err("permitted"))?;
    for cap in set_of(within(ambient)) {
        caps::raise(None, CapSet::Ambient, cap).map_err(cap_err("ambient"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_reference() {
        // The reference's set. REFERENCE.md quotes fcecafff: this machine's
        // own bounding set lacks CAP_SYS_RESOURCE (bit 24), which no runner
        // can hand on; the integration tests compare what shows inside.
        assert_eq!(default_mask(false), 0x00000000fdecafff);
        assert_eq!(default_mask(true), 0x00000000fdecbfff);
    }

    #[test]
    fn names_parse_as_the_reference() {
        assert_eq!(parse_list("CAP_SYS_TIME").unwrap(), 1 << 25);
        assert_eq!(parse_list("cap_sys_time,CAP_CHOWN").unwrap(), 1 << 25 | 1);
        assert_eq!(parse_list("12").unwrap(), 1 << 12);
        assert_eq!(parse_list("").unwrap(), 0);
        assert_eq!(parse_list("all").unwrap(), all_mask());
        for bad in ["SYS_ADMIN", "sys_time", "bogus", "CAP_", "99", "cap_bogus"] {
            assert_eq!(
                parse_list(bad).unwrap_err().to_string(),
                format!("Failed to parse capability {bad}."),
            );
        }
        assert_eq!(names(1 | 1 << 21), ["cap_chown", "cap_sys_admin"]);
        assert_eq!(names(all_mask()).len(), caps::all().len());
    }
}
