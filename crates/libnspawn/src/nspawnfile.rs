//! Where a machine's `.nspawn` file is, and whether it is trusted
//! (systemd.nspawn(5)): `/etc/systemd/nspawn/NAME.nspawn`, then
//! `/run/systemd/nspawn/NAME.nspawn` are trusted; otherwise a file next to
//! the tree (`<parent>/NAME.nspawn`) is used, untrusted.

use std::path::{Path, PathBuf};

pub const TRUSTED_DIRS: &[&str] = &["/etc/systemd/nspawn", "/run/systemd/nspawn"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub trusted: bool,
}

/// Find the settings file for `machine` (the name before any ephemeral
/// suffix) and the tree at `directory`.
pub fn find(machine: &str, directory: &Path) -> Option<Found> {
    let name = format!("{machine}.nspawn");
    for dir in TRUSTED_DIRS {
        let p = Path::new(dir).join(&name);
        if p.is_file() {
            return Some(Found {
                path: p,
                trusted: true,
            });
        }
    }
    let p = directory.parent()?.join(&name);
    p.is_file().then_some(Found {
        path: p,
        trusted: false,
    })
}
