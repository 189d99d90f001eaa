//! Host-wide kernel limits that booted guests share.
//!
//! Every guest whose root is the host's root (no `-U`) counts against the
//! host root's per-user limits. The one a booted systemd exhausts first
//! is `fs.inotify.max_user_instances`: a Debian 12 guest holds 8 inotify
//! instances (PID 1 five, logind, dbus, getty), so the kernel's default
//! of 128 lets about 15 guests boot; later ones fail `.path` units and
//! stall jobs. A boot raises it to `INOTIFY_INSTANCES` if it is lower —
//! never lowers it, and touches nothing else (the watch limit, keys and
//! PIDs have room for hundreds of such guests by default). With `-U`
//! each guest's root is a user of its own and has its own count.
//!
//! Every start writes the same fixed value (only when lower), so
//! concurrent starts cannot undo each other's raise, and no lock is taken.

use crate::settings::{Settings, StartMode};

/// Room for about a thousand booted guests (8 each), as LXD recommends
/// raising it; an instance costs kernel memory only when it is made.
pub const INOTIFY_INSTANCES: u64 = 8192;

const INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Raise what a boot of `s` needs; a failure (a read-only `/proc/sys` in
/// a container we run in) is not fatal: the guest starts as it would
/// have, and the reason is printed unless `--quiet`.
pub fn raise_for(s: &Settings) {
    if s.start_mode != StartMode::Boot || s.userns.enabled() {
        return;
    }
    if let Err(e) = raise(INSTANCES, INOTIFY_INSTANCES) {
        if !s.quiet {
            eprintln!("Failed to raise {INSTANCES} to {INOTIFY_INSTANCES}, ignoring: {e}");
        }
    }
}

/// Write `floor` to the sysctl file `path` if it holds less.
fn raise(path: &str, floor: u64) -> std::io::Result<()> {
    let now: u64 = std::fs::read_to_string(path)?
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other("not a number"))?;
    if now < floor {
        std::fs::write(path, floor.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_only() {
        let dir = std::env::temp_dir().join(format!("host-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("limit");
        let p = f.to_str().unwrap();
        std::fs::write(&f, "128\n").unwrap();
        raise(p, 8192).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "8192");
        std::fs::write(&f, "100000\n").unwrap();
        raise(p, 8192).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "100000\n");
        std::fs::write(&f, "x\n").unwrap();
        assert!(raise(p, 8192).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
