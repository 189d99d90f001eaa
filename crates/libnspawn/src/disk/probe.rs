//! Which file system a partition (or a whole image) holds, from the magic
//! numbers in its superblock. The kernel does not guess a type for
//! `fsopen(2)`, and blkid would be a C library or a program to run for
//! the few signatures a disk image of a container may carry.

use std::os::unix::fs::FileExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Ext4,
    Btrfs,
    Xfs,
    Squashfs,
    Erofs,
    Vfat,
    Swap,
}

impl FsType {
    /// The kernel's name for `fsopen(2)` (ext2 and ext3 too are mounted by
    /// the ext4 driver).
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Btrfs => "btrfs",
            FsType::Xfs => "xfs",
            FsType::Squashfs => "squashfs",
            FsType::Erofs => "erofs",
            FsType::Vfat => "vfat",
            FsType::Swap => "swap",
        }
    }

    /// File systems that cannot be written at all: the container's root
    /// on one is read-only, as `--read-only` makes it.
    pub fn always_read_only(self) -> bool {
        matches!(self, FsType::Squashfs | FsType::Erofs)
    }
}

/// Bytes read from the start of a partition: enough for btrfs's
/// superblock at 64 KiB and a swap signature on 64 KiB pages.
pub const PROBE_LEN: u64 = 0x11000;

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.get(off..off + magic.len()) == Some(magic)
}

/// The file system whose signature starts `buf` (the first `PROBE_LEN`
/// bytes of the partition, or fewer if it is smaller).
pub fn identify(buf: &[u8]) -> Option<FsType> {
    if at(buf, 0x10040, b"_BHRfS_M") {
        return Some(FsType::Btrfs);
    }
    if at(buf, 0, b"XFSB") {
        return Some(FsType::Xfs);
    }
    if at(buf, 0, b"hsqs") {
        return Some(FsType::Squashfs);
    }
    if at(buf, 1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        return Some(FsType::Erofs);
    }
    if at(buf, 1024 + 0x38, &0xEF53u16.to_le_bytes()) {
        return Some(FsType::Ext4);
    }
    if at(buf, 510, &[0x55, 0xAA]) && (at(buf, 0x36, b"FAT") || at(buf, 0x52, b"FAT32")) {
        return Some(FsType::Vfat);
    }
    for page in [4096usize, 8192, 16384, 65536] {
        if at(buf, page - 10, b"SWAPSPACE2") || at(buf, page - 10, b"SWAP-SPACE") {
            return Some(FsType::Swap);
        }
    }
    None
}

/// Read the start of the `size` bytes at `offset` of `file` and identify
/// them.
pub fn probe(file: &std::fs::File, offset: u64, size: u64) -> std::io::Result<Option<FsType>> {
    let mut buf = vec![0u8; PROBE_LEN.min(size) as usize];
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(identify(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(off: usize, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN as usize];
        b[off..off + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn signatures() {
        assert_eq!(identify(&with(1080, &[0x53, 0xEF])), Some(FsType::Ext4));
        assert_eq!(identify(&with(0, b"hsqs")), Some(FsType::Squashfs));
        assert_eq!(
            identify(&with(1024, &[0xE2, 0xE1, 0xF5, 0xE0])),
            Some(FsType::Erofs)
        );
        assert_eq!(identify(&with(0x10040, b"_BHRfS_M")), Some(FsType::Btrfs));
        assert_eq!(identify(&with(0, b"XFSB")), Some(FsType::Xfs));
        assert_eq!(identify(&with(4086, b"SWAPSPACE2")), Some(FsType::Swap));
        let mut fat = with(0x52, b"FAT32   ");
        fat[510] = 0x55;
        fat[511] = 0xAA;
        assert_eq!(identify(&fat), Some(FsType::Vfat));
        assert_eq!(identify(&vec![0u8; PROBE_LEN as usize]), None);
        // Too short to hold the signature's place: nothing, no panic.
        assert_eq!(identify(&[0u8; 100]), None);
    }
}
