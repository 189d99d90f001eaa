//! The MBR ("dos") partition table of an image without a GPT, as the
//! reference reads one (REFERENCE §6c): a partition marked bootable with
//! Linux's type 0x83 is a generic Linux partition, the root if it is the
//! only one. Extended partitions and every other type are passed over.
//!
//! Four 16-byte entries at byte 446 and the 0x55 0xAA signature at 510:
//! too small a format for a crate (the ones there are are for writing
//! tables); read by hand.

use super::table::Entry;
use std::os::unix::fs::FileExt;

const SECTOR: u64 = 512;
const BOOTABLE: u8 = 0x80;
const LINUX: u8 = 0x83;
const GENERIC: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";

/// The image's MBR partitions that count, as table entries (the type
/// turned into the generic Linux partition's UUID); `Ok(None)` when the
/// first sector holds no MBR.
pub fn read(file: &std::fs::File, size: u64) -> Result<Option<Vec<Entry>>, String> {
    let mut sector = [0u8; SECTOR as usize];
    match file.read_exact_at(&mut sector, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("cannot read the partition table: {e}")),
    }
    Ok(parse(&sector, size))
}

fn parse(sector: &[u8; SECTOR as usize], size: u64) -> Option<Vec<Entry>> {
    if sector[510..512] != [0x55, 0xAA] {
        return None;
    }
    let entries: Vec<&[u8]> = sector[446..510].chunks(16).collect();
    // Status bytes other than 0 and 0x80 mean this is no partition table
    // (a boot sector's code, say).
    if entries.iter().any(|e| e[0] != 0 && e[0] != BOOTABLE) {
        return None;
    }
    let used = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e[0] == BOOTABLE && e[4] == LINUX)
        .map(|(i, e)| {
            let first = u32::from_le_bytes(e[8..12].try_into().expect("4 bytes")) as u64;
            let sectors = u32::from_le_bytes(e[12..16].try_into().expect("4 bytes")) as u64;
            let (start, len) = (first * SECTOR, sectors * SECTOR);
            Entry {
                number: i as u32 + 1,
                type_uuid: GENERIC.into(),
                label: String::new(),
                // As a GPT entry that ends before it starts: refused by
                // the table's checks (so is one past the image's end).
                span: (first > 0 && sectors > 0 && start + len <= size).then_some((start, len)),
                flags: 0,
            }
        })
        .collect();
    Some(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(parts: &[(u8, u8, u32, u32)]) -> [u8; 512] {
        let mut s = [0u8; 512];
        for (i, &(status, ty, first, sectors)) in parts.iter().enumerate() {
            let e = &mut s[446 + 16 * i..462 + 16 * i];
            e[0] = status;
            e[4] = ty;
            e[8..12].copy_from_slice(&first.to_le_bytes());
            e[12..16].copy_from_slice(&sectors.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn bootable_linux_partitions_only() {
        let size = 64 << 20;
        let s = mbr(&[
            (0, LINUX, 2048, 1000),        // not bootable
            (BOOTABLE, 0x0c, 4096, 1000),  // FAT
            (BOOTABLE, LINUX, 8192, 2048), // this one
            (0, 0x05, 16384, 100),         // extended
        ]);
        let e = parse(&s, size).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].number, 3);
        assert_eq!(e[0].span, Some((8192 * 512, 2048 * 512)));
        assert_eq!(e[0].type_uuid, GENERIC);
        // Past the end of the image: no span, which the checks refuse.
        let s = mbr(&[(BOOTABLE, LINUX, 2048, 1 << 20)]);
        assert_eq!(parse(&s, size).unwrap()[0].span, None);
        // No signature, or a boot sector's code where the status bytes are.
        let mut s = mbr(&[(BOOTABLE, LINUX, 2048, 100)]);
        s[446] = 0x31;
        assert!(parse(&s, size).is_none());
        s[446] = BOOTABLE;
        s[511] = 0;
        assert!(parse(&s, size).is_none());
    }
}
