//! The reference's environment knobs (systemd-nspawn(1), ENVIRONMENT),
//! read once by the command line and passed to the stages that use them.

use crate::error::{Error, Result};

/// The knobs, with the reference's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// `$SYSTEMD_NSPAWN_LOCK`: lock the tree (default yes).
    pub lock: bool,
    /// `$SYSTEMD_NSPAWN_TMPFS_TMP`: a tmpfs on /tmp (default yes).
    pub tmpfs_tmp: bool,
    /// `$SYSTEMD_NSPAWN_API_VFS_WRITABLE`: /sys and /proc/sys writable.
    pub api_vfs_writable: ApiVfsWritable,
    /// `$SYSTEMD_NSPAWN_CONTAINER_SERVICE`: `$container` and
    /// /run/host/container-manager (default "systemd-nspawn").
    pub container_service: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVfsWritable {
    No,
    Yes,
    /// Only /proc/sys/net.
    Network,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            lock: true,
            tmpfs_tmp: true,
            api_vfs_writable: ApiVfsWritable::No,
            container_service: "systemd-nspawn".into(),
        }
    }
}

impl Knobs {
    /// Read the knobs with `get` (the environment); a bad value is an error
    /// naming the variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Knobs> {
        let boolean = |name: &str, default: bool| -> Result<bool> {
            match get(name) {
                None => Ok(default),
                Some(v) => crate::unitfile::parse_boolean(&v)
                    .ok_or_else(|| Error::invalid(format!("Failed to parse ${name}: {v}"))),
            }
        };
        let api_vfs_writable = match get("SYSTEMD_NSPAWN_API_VFS_WRITABLE").as_deref() {
            None => ApiVfsWritable::No,
            Some("network") => ApiVfsWritable::Network,
            Some(v) => match crate::unitfile::parse_boolean(v) {
                Some(true) => ApiVfsWritable::Yes,
                Some(false) => ApiVfsWritable::No,
                None => {
                    return Err(Error::invalid(format!(
                        "Failed to parse $SYSTEMD_NSPAWN_API_VFS_WRITABLE: {v}"
                    )))
                }
            },
        };
        let container_service = get("SYSTEMD_NSPAWN_CONTAINER_SERVICE")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "systemd-nspawn".into());
        if !container_service.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(format!(
                "Invalid $SYSTEMD_NSPAWN_CONTAINER_SERVICE: {container_service}"
            )));
        }
        Ok(Knobs {
            lock: boolean("SYSTEMD_NSPAWN_LOCK", true)?,
            tmpfs_tmp: boolean("SYSTEMD_NSPAWN_TMPFS_TMP", true)?,
            api_vfs_writable,
            container_service,
        })
    }
}
