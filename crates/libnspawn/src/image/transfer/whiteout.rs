//! The OCI layer rules (image-spec layer.md), applied by the confined
//! unpacker as a layer's entries go by: `.wh.NAME` removes NAME of the
//! layers below, `.wh..wh..opq` removes everything the layers below put
//! in its directory, and an entry replaces a lower entry of another type
//! (a file over a directory, a directory over a symlink). What this layer
//! itself wrote is never removed, whatever the order of its entries. Runs
//! chrooted into the new tree, so every path here, however hostile, ends
//! inside it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

const PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Default)]
pub struct Layer {
    written: HashSet<PathBuf>,
}

/// What an entry of a layer is: a whiteout of `path`, an opaque marker
/// of directory `path`, something to skip, or a file to write.
#[derive(Debug, PartialEq)]
pub enum Entry {
    Whiteout(PathBuf),
    Opaque(PathBuf),
    Skip,
    Write,
}

/// Classify `path` (absolute, without `..`: the unpacker's `clean`).
pub fn classify(path: &Path) -> Entry {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Entry::Write;
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    if name == OPAQUE {
        return Entry::Opaque(parent.to_path_buf());
    }
    match name.strip_prefix(PREFIX) {
        // `.wh..wh.*` are reserved (AUFS's own files); `.wh..` and
        // `.wh...` would name the directory itself or its parent.
        Some(n) if n.starts_with(PREFIX) || n.is_empty() || n == "." || n == ".." => Entry::Skip,
        Some(n) => Entry::Whiteout(parent.join(n)),
        None => Entry::Write,
    }
}

impl Layer {
    /// Before writing `path`: remember it as this layer's, and clear a
    /// lower entry it cannot be written over. A non-directory is always
    /// replaced, not written through: a lower hard link must keep its
    /// content (as overlayfs copies up).
    pub fn before_write(&mut self, path: &Path, is_dir: bool) -> Result<(), String> {
        self.written.insert(path.to_path_buf());
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() && is_dir => Ok(()),
            Ok(_) => remove(path),
            Err(_) => Ok(()),
        }
    }

    pub fn apply(&mut self, e: &Entry) -> Result<(), String> {
        match e {
            Entry::Whiteout(p) if !self.written.contains(p) => remove(p),
            Entry::Opaque(d) => self.opaque(d),
            _ => Ok(()),
        }
    }

    /// Remove what lower layers have below `dir`, keeping this layer's.
    fn opaque(&self, dir: &Path) -> Result<(), String> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(()),
        }
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let p = e.path();
            if !self.written.contains(&p) {
                remove(&p)?;
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.opaque(&p)?;
            }
        }
        Ok(())
    }
}

/// Remove `p` (a tree without following its symlinks); absent is fine.
fn remove(p: &Path) -> Result<(), String> {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    r.map_err(|e| format!("cannot remove {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let p = Path::new;
        assert_eq!(classify(p("/a/.wh.b")), Entry::Whiteout("/a/b".into()));
        assert_eq!(classify(p("/a/.wh..wh..opq")), Entry::Opaque("/a".into()));
        assert_eq!(classify(p("/a/.wh..wh.plnk")), Entry::Skip);
        assert_eq!(classify(p("/a/.wh...")), Entry::Skip);
        assert_eq!(classify(p("/a/.wh.")), Entry::Skip);
        assert_eq!(classify(p("/a/b")), Entry::Write);
    }
}
