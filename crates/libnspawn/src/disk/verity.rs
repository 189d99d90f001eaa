//! dm-verity: an image whose root hash is known (`--root-hash=`, a
//! `NAME.roothash` beside it, `--verity-data=`, `--root-hash-sig=`, or a
//! verity partition in its table) is only ever run verified. Verifying
//! needs the kernel's device mapper; we have no dm-verity setup yet, so
//! such an image is refused with one line, never run unverified.

use super::dissect::Layout;
use super::ImageSpec;
use std::path::{Path, PathBuf};

/// `NAME.roothash` (and `NAME.usrhash`) beside `NAME.raw`, as the
/// reference looks for them.
pub fn side_files(image: &Path) -> Vec<PathBuf> {
    let stem = match image.extension().and_then(|e| e.to_str()) {
        Some("raw") => image.with_extension(""),
        _ => image.to_path_buf(),
    };
    ["roothash", "usrhash"]
        .iter()
        .map(|ext| {
            let mut s = stem.clone().into_os_string();
            s.push(".");
            s.push(ext);
            PathBuf::from(s)
        })
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
    Path::new("/dev/mapper/control").exists()
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
        .map(|d| format!("it has a {} partition", d.name()))
}

/// `NAME.verity` beside `NAME.raw`: its verity data, as the reference
/// looks for it.
fn side_verity_data(image: &Path) -> Option<PathBuf> {
    let p = match image.extension().and_then(|e| e.to_str()) {
        Some("raw") => image.with_extension("verity"),
        _ => return None,
    };
    p.exists().then_some(p)
}

/// A root hash (given, or `NAME.roothash`) that the image's separate
/// verity data contradicts: its hash tree's top is not that root. Told
/// before the refusal for want of dm-verity, and whatever dm-verity would
/// say later: a tampered or mismatched pair never gets as far.
fn contradicted(spec: &ImageSpec) -> Option<String> {
    let given = match &spec.root_hash {
        Some(h) => h.clone(),
        None => std::fs::read_to_string(
            side_files(&spec.path)
                .into_iter()
                .find(|p| p.extension().is_some_and(|e| e == "roothash"))?,
        )
        .ok()?,
    };
    let root = parse_root_hash(&given).ok()?;
    let data = spec
        .verity_data
        .clone()
        .or_else(|| side_verity_data(&spec.path))?;
    let checked = std::fs::File::open(&data)
        .map_err(|e| format!("cannot open the verity data: {e}"))
        .and_then(|mut f| super::hashtree::check_root(&mut f, 0, &root));
    checked.err().map(|e| format!("{}: {e}", data.display()))
}

/// Refuse an image that must be verified.
pub fn refuse_unverified(spec: &ImageSpec, layout: &Layout) -> Result<(), String> {
    let Some(why) = reason(spec, layout) else {
        return Ok(());
    };
    if let Some(e) = contradicted(spec) {
        return Err(format!("cannot run {} verified: {e}", spec.path.display()));
    }
    let what = if has_device_mapper() {
        "dm-verity is not supported by nspawn yet"
    } else {
        "the kernel has no device mapper for dm-verity"
    };
    Err(format!(
        "cannot verify {} ({why}): {what}; refusing to run it unverified",
        spec.path.display()
    ))
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
}
