//! QCOW2 to raw, as the reference converts a downloaded or imported QCOW2
//! image: the active L1/L2 tables are walked and each allocated cluster is
//! copied (or, when compressed, inflated) to its guest offset of a sparse
//! raw file. Versions 2 and 3, plain and deflate-compressed clusters;
//! refused with a reason: encryption, a backing file, and every v3
//! "incompatible" feature (dirty or corrupt images, external data files,
//! zstd clusters, extended L2 entries). The layout is QEMU's
//! docs/interop/qcow2.txt; the input is hostile, so every offset and size
//! is checked before use and reads past the end fail.

use super::sparse;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Bits of an L1 or L2 entry (qcow2.txt, "Cluster mapping").
const COMPRESSED: u64 = 1 << 62;
const ZERO: u64 = 1;
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;

/// The reference's bound on the L1 table (entries).
const MAX_L1: u64 = 32 << 20;

/// Whether the image file starts with the QCOW2 magic.
pub fn detect(f: &File) -> io::Result<bool> {
    let mut m = [0u8; 4];
    match f.read_exact_at(&mut m, 0) {
        Ok(()) => Ok(m == MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Debug)]
struct Header {
    cluster_bits: u32,
    size: u64,
    l1_size: u64,
    l1_offset: u64,
}

fn be32(h: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(h[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(h: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(h[at..at + 8].try_into().expect("8 bytes"))
}

/// The header's fields we use, or why the image cannot be converted. `h`
/// is the file's first bytes, up to 104 (a version 3 header's length).
fn header(h: &[u8]) -> Result<Header, String> {
    let bad = |why: &str| Err(format!("not a valid QCOW2 image: {why}"));
    let unsupported = |why: String| Err(format!("cannot convert the QCOW2 image: {why}"));
    if h.len() < 72 {
        return bad("header too short");
    }
    if h[..4] != MAGIC {
        return bad("no QCOW2 magic");
    }
    let version = be32(h, 4);
    if !(2..=3).contains(&version) {
        return unsupported(format!("version {version} is not supported (only 2 and 3)"));
    }
    if be64(h, 8) != 0 {
        return unsupported("it has a backing file".into());
    }
    let cluster_bits = be32(h, 20);
    if !(9..=21).contains(&cluster_bits) {
        return bad("cluster size out of range");
    }
    if be32(h, 32) != 0 {
        return unsupported("it is encrypted".into());
    }
    if version == 3 {
        if h.len() < 104 || be32(h, 100) < 104 {
            return bad("header too short");
        }
        let incompatible = be64(h, 72);
        if incompatible != 0 {
            return unsupported(format!(
                "it uses incompatible features 0x{incompatible:x} (dirty, corrupt, external data, zstd or extended L2)"
            ));
        }
    }
    let size = be64(h, 24);
    let l1_size = u64::from(be32(h, 36));
    let l1_offset = be64(h, 40);
    if l1_size > MAX_L1 {
        return bad("L1 table too large");
    }
    // Entries per L2 table: a cluster of 8-byte entries.
    let per_l1 = 1u64 << (cluster_bits + cluster_bits - 3);
    if size.div_ceil(per_l1) > l1_size {
        return bad("L1 table too small for the disk size");
    }
    Ok(Header {
        cluster_bits,
        size,
        l1_size,
        l1_offset,
    })
}

fn read_at(f: &File, buf: &mut [u8], at: u64, what: &str) -> Result<(), String> {
    f.read_exact_at(buf, at).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            format!("not a valid QCOW2 image: its {what} lies past its end")
        }
        _ => format!("cannot read the QCOW2 image: {e}"),
    })
}

/// Convert the QCOW2 image `src` into the empty file `dst`; `cancelled`
/// is asked before each cluster.
pub fn convert(src: &File, dst: &File, cancelled: &dyn Fn() -> bool) -> Result<(), String> {
    let len = src
        .metadata()
        .map_err(|e| format!("cannot read the QCOW2 image: {e}"))?
        .len();
    // A v2 header is 72 bytes, and a tiny file may end soon after it.
    let mut raw = [0u8; 104];
    let n = (len as usize).min(raw.len());
    read_at(src, &mut raw[..n], 0, "header")?;
    let h = header(&raw[..n])?;
    let cluster = 1usize << h.cluster_bits;
    let write = |e: io::Error| format!("cannot write the converted image: {e}");
    dst.set_len(h.size).map_err(write)?;

    // Only the L1 entries that map into the disk are read.
    let per_l1 = 1u64 << (2 * h.cluster_bits - 3);
    let l1_used = h.size.div_ceil(per_l1).min(h.l1_size) as usize;
    let mut l1 = vec![0u8; l1_used * 8];
    read_at(src, &mut l1, h.l1_offset, "L1 table")?;
    let mut l2 = vec![0u8; cluster];
    let mut data = vec![0u8; cluster];
    let mut packed = vec![];
    let mut inflate = flate2::Decompress::new(false);
    for (i, e) in l1.chunks_exact(8).enumerate() {
        let l2_offset = be64(e, 0) & OFFSET_MASK;
        if l2_offset == 0 {
            continue;
        }
        read_at(src, &mut l2, l2_offset, "L2 table")?;
        for (j, e) in l2.chunks_exact(8).enumerate() {
            let guest = (i as u64 * per_l1) + ((j as u64) << h.cluster_bits);
            if guest >= h.size {
                break;
            }
            if cancelled() {
                return Err("cancelled".into());
            }
            let e = be64(e, 0);
            if e & COMPRESSED != 0 {
                // The offset's width and the size in 512-byte sectors that
                // follows it (qcow2.txt, "Compressed Clusters Descriptor").
                let x = 62 - (h.cluster_bits - 8);
                let offset = e & ((1 << x) - 1);
                let sectors = ((e >> x) & ((1 << (h.cluster_bits - 8)) - 1)) + 1;
                let csize = sectors * 512 - (offset & 511);
                packed.resize(csize as usize, 0);
                // The last compressed cluster may end before its last sector.
                let avail = len.saturating_sub(offset).min(csize) as usize;
                if avail == 0 {
                    return Err(
                        "not a valid QCOW2 image: a compressed cluster lies past its end".into(),
                    );
                }
                read_at(src, &mut packed[..avail], offset, "compressed cluster")?;
                inflate.reset(false);
                let st = inflate.decompress(
                    &packed[..avail],
                    &mut data,
                    flate2::FlushDecompress::Finish,
                );
                let whole = inflate.total_out() == cluster as u64;
                if !matches!(st, Ok(flate2::Status::StreamEnd) | Ok(flate2::Status::Ok)) || !whole {
                    return Err("not a valid QCOW2 image: a compressed cluster is corrupt".into());
                }
            } else {
                let offset = e & OFFSET_MASK;
                if offset == 0 || e & ZERO != 0 {
                    // Unallocated (no backing file) or zero: a hole.
                    continue;
                }
                if !offset.is_multiple_of(cluster as u64) {
                    return Err("not a valid QCOW2 image: a cluster is not aligned".into());
                }
                read_at(src, &mut data, offset, "data cluster")?;
            }
            let n = (h.size - guest).min(cluster as u64) as usize;
            for (k, b) in data[..n].chunks(sparse::BLOCK).enumerate() {
                if !sparse::is_zero(b) {
                    let at = guest + (k * sparse::BLOCK) as u64;
                    dst.write_all_at(b, at).map_err(write)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: u32) -> [u8; 104] {
        let mut h = [0u8; 104];
        h[..4].copy_from_slice(&MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes());
        h[36..40].copy_from_slice(&1u32.to_be_bytes());
        h[40..48].copy_from_slice(&(3u64 << 16).to_be_bytes());
        h[100..104].copy_from_slice(&104u32.to_be_bytes());
        h
    }

    #[test]
    fn headers() {
        assert_eq!(header(&head(3)).unwrap().cluster_bits, 16);
        assert_eq!(header(&head(2)[..72]).unwrap().size, 1 << 20);
        assert!(header(&head(3)[..72]).unwrap_err().contains("too short"));
        let mut h = head(3);
        h[8..16].copy_from_slice(&4096u64.to_be_bytes());
        assert!(header(&h).unwrap_err().contains("backing file"));
        let mut h = head(3);
        h[32..36].copy_from_slice(&1u32.to_be_bytes());
        assert!(header(&h).unwrap_err().contains("encrypted"));
        let mut h = head(3);
        h[72..80].copy_from_slice(&8u64.to_be_bytes());
        assert!(header(&h).unwrap_err().contains("incompatible"));
        let mut h = head(3);
        h[36..40].copy_from_slice(&0u32.to_be_bytes());
        assert!(header(&h).unwrap_err().contains("too small"));
        assert!(header(&head(4)).unwrap_err().contains("version 4"));
    }
}
