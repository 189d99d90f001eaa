//! dm-verity: an image whose root hash is known, or asked for
//! (`--root-hash=`, a `NAME.roothash` beside it, `--verity-data=`,
//! `--root-hash-sig=`, or a verity partition in its table), is only ever
//! run verified. `plan` gathers what verifying takes — the root hash (given,
//! beside the image, or in a root-verity-sig partition), its signature if
//! any, and the hash area (a file of its own, or the root-verity
//! partition) — checks the hash area's top against the root hash in user
//! space (`hashtree`), and refuses with one line whatever is missing. The
//! kernel then checks every block as it is read (`dm`). Where the kernel
//! has no device mapper, the image is refused, never run unverified.

use super::dissect::{Layout, VerityPart};
use super::hashtree::{self, Params};
use super::table::Designator;
use super::ImageSpec;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where the hash tree (after its superblock) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashArea {
    /// A file of its own, from its first byte.
    File(PathBuf),
    /// A range of the image: the root-verity partition.
    Partition { offset: u64, size: u64 },
}

/// What the root's verity device is made of.
#[derive(Debug)]
pub struct Plan {
    pub root_hash: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub hash: HashArea,
    pub params: Params,
}

/// `NAME.EXT` beside `NAME.raw` (or beside an image of another name).
fn beside(image: &Path, ext: &str) -> PathBuf {
    let stem = match image.extension().and_then(|e| e.to_str()) {
        Some("raw") => image.with_extension(""),
        _ => image.to_path_buf(),
    };
    let mut s = stem.into_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// `NAME.roothash` (and `NAME.usrhash`) beside `NAME.raw`, as the
/// reference looks for them.
pub fn side_files(image: &Path) -> Vec<PathBuf> {
    ["roothash", "usrhash"]
        .iter()
        .map(|ext| beside(image, ext))
        .filter(|p| p.exists())
        .collect()
}

/// A root hash as given: hex, at least 256 bits (as the reference).
pub fn parse_root_hash(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("Failed to parse root hash: {s}"));
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("checked hex"))
        .collect();
    if bytes.len() < 32 {
        return Err("Root hash must be at least 256 bits long, refusing.".into());
    }
    Ok(bytes)
}

/// Whether the kernel offers the device mapper (its control node, or the
/// misc device registered).
fn has_device_mapper() -> bool {
    super::dm::available()
        || std::fs::read_to_string("/proc/misc")
            .is_ok_and(|m| m.lines().any(|l| l.ends_with(" device-mapper")))
}

/// Why the image must be verified, if it must.
fn reason(spec: &ImageSpec, layout: &Layout) -> Option<String> {
    if spec.root_hash.is_some() {
        return Some("--root-hash= is given".into());
    }
    if spec.root_hash_sig.is_some() {
        return Some("--root-hash-sig= is given".into());
    }
    if let Some(p) = &spec.verity_data {
        return Some(format!("--verity-data={} is given", p.display()));
    }
    if let Some(p) = side_files(&spec.path).first() {
        return Some(format!("{} exists", p.display()));
    }
    layout
        .verity
        .first()
        .map(|v| format!("it has a {} partition", v.designator.name()))
}

fn partition(layout: &Layout, d: Designator) -> Option<&VerityPart> {
    layout.verity.iter().find(|v| v.designator == d)
}

/// A root-verity-sig partition: JSON (`rootHash`, `signature` in base64)
/// padded with NULs, as systemd-repart writes it.
pub fn parse_signature_partition(data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    use base64::Engine;
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let v: serde_json::Value = serde_json::from_slice(&data[..end])
        .map_err(|e| format!("its root-verity-sig partition is not JSON: {e}"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|f| f.as_str())
            .ok_or_else(|| format!("its root-verity-sig partition has no \"{k}\""))
    };
    let root = parse_root_hash(field("rootHash")?)?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(field("signature")?)
        .map_err(|e| format!("its root-verity-sig partition's signature: {e}"))?;
    Ok((root, sig))
}

/// `--root-hash-sig=`: `base64:DATA` or a file.
fn read_signature(arg: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    match arg.strip_prefix("base64:") {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| format!("--root-hash-sig=: {e}")),
        None => std::fs::read(arg).map_err(|e| format!("cannot read {arg}: {e}")),
    }
}

/// What it takes to run the image in `file` verified, or `None` if nothing
/// asks for verification. Every way it cannot be verified is an error
/// (a line of its own), never a reason to run it without.
pub fn plan(
    spec: &ImageSpec,
    layout: &Layout,
    file: &mut std::fs::File,
) -> Result<Option<Plan>, String> {
    let Some(why) = reason(spec, layout) else {
        return Ok(None);
    };
    let shown = spec.path.display();
    let refuse = |what: String| {
        format!("cannot verify {shown} ({why}): {what}; refusing to run it unverified")
    };
    if partition(layout, Designator::UsrVerity).is_some() || beside(&spec.path, "usrhash").exists()
    {
        return Err(refuse("dm-verity of /usr is not supported".into()));
    }
    let sig_part = match partition(layout, Designator::RootVeritySig) {
        Some(v) => {
            let mut data = vec![0u8; v.size.min(64 * 1024) as usize];
            file.seek(SeekFrom::Start(v.offset))
                .and_then(|_| file.read_exact(&mut data))
                .map_err(|e| refuse(format!("cannot read its root-verity-sig partition: {e}")))?;
            Some(parse_signature_partition(&data).map_err(refuse)?)
        }
        None => None,
    };
    let side_hash = beside(&spec.path, "roothash");
    let given = match &spec.root_hash {
        Some(h) => Some(h.clone()),
        None if side_hash.exists() => Some(
            std::fs::read_to_string(&side_hash)
                .map_err(|e| refuse(format!("cannot read {}: {e}", side_hash.display())))?,
        ),
        None => None,
    };
    let root_hash = match (given, &sig_part) {
        (Some(h), sig) => {
            let h = parse_root_hash(&h).map_err(refuse)?;
            if sig.as_ref().is_some_and(|(signed, _)| *signed != h) {
                return Err(refuse(
                    "the root hash is not the one its root-verity-sig partition signs".into(),
                ));
            }
            h
        }
        (None, Some((signed, _))) => signed.clone(),
        (None, None) => return Err(refuse(
            "no root hash is known (--root-hash=, NAME.roothash or a root-verity-sig partition)"
                .into(),
        )),
    };
    let side_sig = beside(&spec.path, "roothash.p7s");
    let signature = match &spec.root_hash_sig {
        Some(arg) => Some(read_signature(arg).map_err(refuse)?),
        None if side_sig.exists() => Some(
            std::fs::read(&side_sig)
                .map_err(|e| refuse(format!("cannot read {}: {e}", side_sig.display())))?,
        ),
        None => sig_part.map(|(_, sig)| sig),
    };
    let side_data = beside(&spec.path, "verity");
    let hash = match (&spec.verity_data, partition(layout, Designator::RootVerity)) {
        (Some(p), _) => HashArea::File(p.clone()),
        (None, _) if spec.path.extension().is_some_and(|e| e == "raw") && side_data.exists() => {
            HashArea::File(side_data)
        }
        (None, Some(v)) => HashArea::Partition {
            offset: v.offset,
            size: v.size,
        },
        (None, None) => {
            return Err(refuse(
                "no verity data (--verity-data=, NAME.verity or a root-verity partition)".into(),
            ))
        }
    };
    // The hash area's top against the root hash: a few KiB whatever the
    // image's size, and a mismatch told as such, before any device.
    let checked = match &hash {
        HashArea::File(p) => std::fs::File::open(p)
            .map_err(|e| format!("cannot open the verity data: {e}"))
            .and_then(|mut f| {
                let params = hashtree::read_superblock(&mut f, 0)?;
                hashtree::check_root(&mut f, 0, &root_hash).map(|_| params)
            })
            .map_err(|e| format!("{}: {e}", p.display())),
        HashArea::Partition { offset, .. } => hashtree::read_superblock(file, *offset)
            .and_then(|params| hashtree::check_root(file, *offset, &root_hash).map(|_| params))
            .map_err(|e| format!("its root-verity partition: {e}")),
    };
    let params = checked.map_err(|e| format!("cannot run {shown} verified: {e}"))?;
    let covered = params.data_blocks * u64::from(params.data_block_size);
    if covered > layout.root().size {
        return Err(refuse(format!(
            "its verity data covers {covered} bytes, more than its root file system's {}",
            layout.root().size
        )));
    }
    if !has_device_mapper() {
        return Err(refuse(
            "the kernel has no device mapper for dm-verity".into(),
        ));
    }
    Ok(Some(Plan {
        root_hash,
        signature,
        hash,
        params,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_hashes() {
        let h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF";
        assert_eq!(parse_root_hash(h).unwrap().len(), 32);
        assert!(parse_root_hash("abc").is_err());
        assert!(parse_root_hash("zz").is_err());
        assert!(parse_root_hash("00112233")
            .unwrap_err()
            .contains("at least 256 bits"));
    }

    /// As systemd-repart writes a root-verity-sig partition: JSON, then
    /// NULs to the partition's end.
    #[test]
    fn signature_partitions() {
        let root = "ab".repeat(32);
        let mut data = format!(
            "{{\"rootHash\":\"{root}\",\"certificateFingerprint\":\"00\",\"signature\":\"MIIB\"}}\n"
        )
        .into_bytes();
        data.resize(4096, 0);
        let (r, sig) = parse_signature_partition(&data).unwrap();
        assert_eq!(r, vec![0xab; 32]);
        assert_eq!(sig, vec![0x30, 0x82, 0x01]);
        assert!(parse_signature_partition(b"{\"rootHash\":\"ab\"}\0\0")
            .unwrap_err()
            .contains("256 bits"));
        assert!(parse_signature_partition(b"\0\0\0")
            .unwrap_err()
            .contains("not JSON"));
        let no_sig = format!("{{\"rootHash\":\"{root}\"}}");
        assert!(parse_signature_partition(no_sig.as_bytes())
            .unwrap_err()
            .contains("\"signature\""));
    }

    #[test]
    fn files_beside_the_image() {
        let img = Path::new("/m/foo.raw");
        assert_eq!(beside(img, "roothash"), Path::new("/m/foo.roothash"));
        assert_eq!(
            beside(img, "roothash.p7s"),
            Path::new("/m/foo.roothash.p7s")
        );
        assert_eq!(
            beside(Path::new("/dev/sdb"), "verity"),
            Path::new("/dev/sdb.verity")
        );
    }
}
