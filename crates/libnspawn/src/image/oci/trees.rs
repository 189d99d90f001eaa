//! Composed trees shared between images, on a btrfs pool: after a pull
//! (or import) applies layer k, a read-only snapshot of the tree so far is
//! kept as `POOL/.oci_store/trees/CHAIN`, CHAIN the SHA-256 of the digests
//! of layers 1..k. The next image whose layers start with the same k
//! layers begins as a writable snapshot of that tree and unpacks only the
//! rest: its base shares the extents, unpacked once. On other file
//! systems a snapshot is a full copy, so nothing is kept there. `clean`
//! removes the trees that are no prefix of any image's layers.

use super::manifest::Descriptor;
use crate::image::transfer::verify;
use crate::image::{btrfs, ops, store};
use std::collections::HashSet;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

fn dir(pool: &Path) -> PathBuf {
    pool.join(super::blobs::STORE).join("trees")
}

/// The chain id after each layer: the hash of the digests so far.
pub fn chains<'a>(layers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut acc = String::new();
    layers
        .into_iter()
        .map(|d| {
            acc.push_str(d);
            acc.push('\n');
            verify::hex(acc.as_bytes())
        })
        .collect()
}

pub fn of(layers: &[Descriptor]) -> Vec<String> {
    chains(layers.iter().map(|l| l.digest.as_str()))
}

/// Whether `pool` keeps trees: it is on btrfs.
pub fn enabled(pool: &Path) -> bool {
    store::open_image(pool, true).is_ok_and(btrfs::is_btrfs)
}

/// The kept tree of the longest prefix: how many layers it holds, and
/// where it is.
pub fn longest(pool: &Path, chains: &[String]) -> Option<(usize, PathBuf)> {
    chains.iter().enumerate().rev().find_map(|(i, c)| {
        let p = dir(pool).join(c);
        p.is_dir().then_some((i + 1, p))
    })
}

/// Keep a read-only snapshot of the subvolume `tree` as `chain`'s tree;
/// another pull may have kept it first, which is as good.
pub fn keep(pool: &Path, tree: &Path, chain: &str) -> Result<(), String> {
    let d = dir(pool);
    if d.join(chain).exists() {
        return Ok(());
    }
    let what =
        |e: &dyn std::fmt::Display| format!("cannot keep the tree of {}: {e}", tree.display());
    std::fs::create_dir_all(&d).map_err(|e| what(&e))?;
    let dir_fd = store::open_image(&d, true).map_err(|e| what(&e))?;
    let src = store::open_image(tree, true).map_err(|e| what(&e))?;
    let tmp = format!(".tmp-{chain}-{}", std::process::id());
    btrfs::snapshot(src.as_fd(), dir_fd.as_fd(), &tmp).map_err(|e| what(&e))?;
    let tmp_path = d.join(&tmp);
    let ro = store::open_image(&tmp_path, true)
        .map_err(|e| what(&e))
        .and_then(|fd| btrfs::set_read_only(fd.as_fd(), true).map_err(|e| what(&e)));
    let r = ro.and_then(|()| {
        match ops::rename_noreplace(&tmp_path, &d.join(chain)) {
            Ok(()) => Ok(()),
            // Kept by another pull meanwhile.
            Err(_) if d.join(chain).exists() => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    });
    if tmp_path.exists() {
        let _ = ops::remove_path(&tmp_path);
    }
    r
}

/// Remove the trees not in `keep` (and leftovers of a keep that died);
/// how many went.
pub fn collect(pool: &Path, keep: &HashSet<String>) -> Result<usize, String> {
    let mut n = 0;
    for e in std::fs::read_dir(dir(pool)).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        ops::remove_path(&e.path())
            .map_err(|err| format!("cannot remove {}: {err}", e.path().display()))?;
        n += usize::from(!name.starts_with(".tmp-"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn chains() {
        let c = super::chains(["sha256:a", "sha256:b"]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], super::chains(["sha256:a"])[0]);
        assert_ne!(c[1], super::chains(["sha256:b"])[0]);
    }
}
