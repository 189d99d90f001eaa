//! dm-verity's on-disk format, read and checked in user space: the
//! superblock `veritysetup format` writes at the start of the hash area,
//! and the hash tree below it (the kernel's
//! Documentation/admin-guide/device-mapper/verity.rst; cryptsetup's
//! "verity" format, version 1).
//!
//! The kernel checks data blocks as they are read, against the tree, whose
//! top block it checks against the root hash. Where the device mapper is
//! missing we cannot run an image verified, but we can tell a root hash
//! that does not match the hash area (`check_root`: the superblock and the
//! top block, a few KiB whatever the image's size) from an image that is
//! refused only for want of dm-verity. `build` computes a whole tree, for
//! the tests and for checking data against a tree (`verify`).
//!
//! No crate reads this format (the dm-verity crates create targets through
//! libdevmapper/libcryptsetup); the superblock is 512 bytes of fixed
//! fields, written by hand here.

use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};

const SIGNATURE: &[u8; 8] = b"verity\0\0";
const SUPERBLOCK_SIZE: u64 = 512;

/// The hash area's parameters, from its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// 0: Chrome OS (the salt after the block), 1: the salt before it.
    pub hash_type: u32,
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

/// Read the superblock at `offset` of the hash area.
pub fn read_superblock(r: &mut (impl Read + Seek), offset: u64) -> Result<Params, String> {
    let mut sb = [0u8; SUPERBLOCK_SIZE as usize];
    r.seek(SeekFrom::Start(offset))
        .and_then(|_| r.read_exact(&mut sb))
        .map_err(|e| format!("cannot read the verity superblock: {e}"))?;
    parse_superblock(&sb)
}

fn parse_superblock(sb: &[u8; SUPERBLOCK_SIZE as usize]) -> Result<Params, String> {
    let u32_at = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().expect("4 bytes"));
    if &sb[..8] != SIGNATURE {
        return Err("no verity superblock (its signature is missing)".into());
    }
    let version = u32_at(8);
    if version != 1 {
        return Err(format!("unsupported verity superblock version {version}"));
    }
    let hash_type = u32_at(12);
    if hash_type > 1 {
        return Err(format!("unsupported verity hash type {hash_type}"));
    }
    // uuid at 16..32
    let alg = &sb[32..64];
    let algorithm = String::from_utf8_lossy(&alg[..alg.iter().position(|&b| b == 0).unwrap_or(32)])
        .into_owned();
    let data_block_size = u32_at(64);
    let hash_block_size = u32_at(68);
    let data_blocks = u64::from_le_bytes(sb[72..80].try_into().expect("8 bytes"));
    let salt_size = u16::from_le_bytes([sb[80], sb[81]]) as usize;
    let sizes_ok = |s: u32| s.is_power_of_two() && (512..=1 << 20).contains(&s);
    if !sizes_ok(data_block_size) || !sizes_ok(hash_block_size) {
        return Err(format!(
            "bad verity block sizes {data_block_size}/{hash_block_size}"
        ));
    }
    if salt_size > 256 {
        return Err(format!("bad verity salt size {salt_size}"));
    }
    if data_blocks == 0 {
        return Err("the verity superblock covers no data".into());
    }
    Ok(Params {
        hash_type,
        algorithm,
        data_block_size,
        hash_block_size,
        data_blocks,
        salt: sb[88..88 + salt_size].to_vec(),
    })
}

impl Params {
    fn check_algorithm(&self) -> Result<(), String> {
        match self.algorithm.as_str() {
            "sha256" => Ok(()),
            a => Err(format!("unsupported verity hash algorithm {a}")),
        }
    }

    fn digest(&self, block: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        if self.hash_type == 1 {
            h.update(&self.salt);
        }
        h.update(block);
        if self.hash_type == 0 {
            h.update(&self.salt);
        }
        h.finalize().into()
    }

    /// Digests per hash block (each padded to a power of two: 32 bytes).
    fn per_block(&self) -> u64 {
        self.hash_block_size as u64 / 32
    }

    /// The number of hash blocks of each level, the lowest first, up to
    /// the one block whose digest is the root hash. None for one data
    /// block: its own digest is the root hash (the kernel's `levels` is 0).
    fn levels(&self) -> Vec<u64> {
        let mut out = vec![];
        let mut n = self.data_blocks;
        while n > 1 {
            n = n.div_ceil(self.per_block());
            out.push(n);
        }
        out
    }

    /// Where the tree starts: the first hash block after the superblock.
    fn tree_start(&self, offset: u64) -> u64 {
        (offset + SUPERBLOCK_SIZE).next_multiple_of(self.hash_block_size as u64)
    }
}

/// The levels of the tree over `data`, the lowest first, each as the
/// hash blocks stored for it, and the root hash.
pub fn build(p: &Params, data: &mut impl Read) -> Result<(Vec<Vec<u8>>, [u8; 32]), String> {
    p.check_algorithm()?;
    let mut block = vec![0u8; p.data_block_size as usize];
    let mut digests = Vec::with_capacity(p.data_blocks as usize * 32);
    for _ in 0..p.data_blocks {
        data.read_exact(&mut block)
            .map_err(|e| format!("cannot read the data the verity tree covers: {e}"))?;
        digests.extend_from_slice(&p.digest(&block));
    }
    let hash_block = p.hash_block_size as usize;
    let mut levels = vec![];
    if p.data_blocks == 1 {
        return Ok((levels, digests.try_into().expect("one digest")));
    }
    loop {
        // Digests packed into hash blocks, the last one zero-filled.
        let mut stored = digests;
        stored.resize(stored.len().next_multiple_of(hash_block), 0);
        if stored.len() == hash_block {
            let root = p.digest(&stored);
            levels.push(stored);
            return Ok((levels, root));
        }
        digests = stored
            .chunks(hash_block)
            .flat_map(|b| p.digest(b))
            .collect();
        levels.push(stored);
    }
}

/// The root hash the hash area at `offset` of `hash` stands for: its top
/// block's digest. Only the superblock and that block are read. `None`
/// for a single data block, which has no tree (the root hash is its own).
pub fn stored_root(hash: &mut (impl Read + Seek), offset: u64) -> Result<Option<[u8; 32]>, String> {
    let p = read_superblock(hash, offset)?;
    p.check_algorithm()?;
    if p.levels().is_empty() {
        return Ok(None);
    }
    let mut top = vec![0u8; p.hash_block_size as usize];
    hash.seek(SeekFrom::Start(p.tree_start(offset)))
        .and_then(|_| hash.read_exact(&mut top))
        .map_err(|e| format!("cannot read the verity hash tree: {e}"))?;
    Ok(Some(p.digest(&top)))
}

/// Whether `root_hash` is the root of the hash area at `offset` of `hash`
/// (as far as the area tells without the data).
pub fn check_root(
    hash: &mut (impl Read + Seek),
    offset: u64,
    root_hash: &[u8],
) -> Result<(), String> {
    match stored_root(hash, offset)? {
        Some(root) if root != root_hash => {
            Err("the root hash does not match the image's verity data".into())
        }
        _ => Ok(()),
    }
}

/// Check all of `data` against the tree stored at `offset` of `hash` and
/// the tree against `root_hash`: what dm-verity checks block by block as
/// they are read, here at once.
pub fn verify(
    data: &mut impl Read,
    hash: &mut (impl Read + Seek),
    offset: u64,
    root_hash: &[u8],
) -> Result<(), String> {
    let p = read_superblock(hash, offset)?;
    let (levels, root) = build(&p, data)?;
    if root != root_hash {
        return Err("the root hash does not match the data".into());
    }
    // Stored top level first, as the kernel finds them.
    hash.seek(SeekFrom::Start(p.tree_start(offset)))
        .map_err(|e| format!("cannot read the verity hash tree: {e}"))?;
    for (i, level) in levels.iter().enumerate().rev() {
        let mut stored = vec![0u8; level.len()];
        hash.read_exact(&mut stored)
            .map_err(|e| format!("cannot read the verity hash tree: {e}"))?;
        if &stored != level {
            return Err(format!(
                "the verity hash tree's level {i} does not match the data"
            ));
        }
    }
    debug_assert_eq!(
        levels
            .iter()
            .map(|l| l.len() as u64 / p.hash_block_size as u64)
            .collect::<Vec<_>>(),
        p.levels()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// `veritysetup format` of `data` into a new hash file (it needs no
    /// device mapper); its root hash. `None` without veritysetup.
    fn veritysetup(data: &Path, hash: &Path, extra: &[&str]) -> Option<Vec<u8>> {
        if !Path::new("/usr/sbin/veritysetup").exists() {
            eprintln!("veritysetup missing (apt-get install cryptsetup-bin); skipped");
            return None;
        }
        let o = Command::new("/usr/sbin/veritysetup")
            .arg("format")
            .args(extra)
            .arg(data)
            .arg(hash)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        let hex = out
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .unwrap()
            .trim();
        Some(super::super::verity::parse_root_hash(hex).unwrap())
    }

    fn scratch(name: &str, blocks: usize) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hashtree-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..blocks * 4096).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.join("data"), data).unwrap();
        (dir.join("data"), dir.join("hash"))
    }

    #[test]
    fn matches_what_veritysetup_wrote() {
        // One level, two levels, three (128 digests a 4 KiB block).
        for (blocks, extra) in [
            (1, &[][..]),
            (300, &[][..]),
            (20000, &[][..]),
            (300, &["--format=0"][..]),
            (300, &["--salt=-"][..]),
            (
                300,
                &["--hash-block-size=1024", "--data-block-size=1024"][..],
            ),
        ] {
            let (data, hash) = scratch("ok", blocks);
            let Some(root) = veritysetup(&data, &hash, extra) else {
                return;
            };
            let mut h = std::fs::File::open(&hash).unwrap();
            match stored_root(&mut h, 0).unwrap() {
                Some(r) => assert_eq!(r.to_vec(), root, "{extra:?}"),
                None => assert_eq!(blocks, 1),
            }
            check_root(&mut h, 0, &root).unwrap();
            let mut d = std::fs::File::open(&data).unwrap();
            verify(&mut d, &mut h, 0, &root).unwrap();
            let p = read_superblock(&mut h, 0).unwrap();
            let blocks_of_1k = if extra.len() == 2 { 4 } else { 1 };
            assert_eq!(p.data_blocks, blocks as u64 * blocks_of_1k);
            let _ = std::fs::remove_dir_all(data.parent().unwrap());
        }
    }

    #[test]
    fn tampering_is_found() {
        let (data, hash) = scratch("bad", 300);
        let Some(root) = veritysetup(&data, &hash, &[]) else {
            return;
        };
        let mut wrong = root.clone();
        wrong[0] ^= 1;
        let mut h = std::fs::File::open(&hash).unwrap();
        assert!(check_root(&mut h, 0, &wrong)
            .unwrap_err()
            .contains("does not match"));
        // One changed byte of data: the tree no longer fits it.
        let mut bytes = std::fs::read(&data).unwrap();
        bytes[4096 * 200 + 17] ^= 0x80;
        std::fs::write(&data, &bytes).unwrap();
        let mut d = std::fs::File::open(&data).unwrap();
        assert!(verify(&mut d, &mut h, 0, &root)
            .unwrap_err()
            .contains("does not match"));
        // A superblock that is not one.
        let mut sb = std::fs::read(&hash).unwrap();
        sb[0] = b'X';
        assert!(parse_superblock(sb[..512].try_into().unwrap())
            .unwrap_err()
            .contains("signature"));
        let _ = std::fs::remove_dir_all(data.parent().unwrap());
    }
}
