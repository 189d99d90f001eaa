//! What a directory image takes on disk: the blocks allocated to its
//! files, as `du` counts them — symlinks are not followed, other file
//! systems mounted inside are not entered, a hard-linked file counts once.

use crate::error::{Context, Result};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated below `top` (itself followed if a symlink).
pub fn tree(top: &Path) -> Result<u64> {
    let m = std::fs::metadata(top).ctx(|| format!("cannot stat {}", top.display()))?;
    let mut seen = HashSet::new();
    let mut total = m.blocks() * 512;
    walk(top, m.dev(), &mut seen, &mut total);
    Ok(total)
}

fn walk(dir: &Path, dev: u64, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // DirEntry::metadata is lstat(2): a symlink is counted, not followed.
        let Ok(m) = e.metadata() else {
            continue;
        };
        if m.dev() != dev {
            continue;
        }
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        *total += m.blocks() * 512;
        if m.is_dir() {
            walk(&e.path(), dev, seen, total);
        }
    }
}
