//! A disk image's GPT partition table, read with the `gpt` crate, and what
//! the Discoverable Partitions Specification (systemd's
//! docs/DISCOVERABLE_PARTITIONS.md) makes of it: which partition is the
//! root, which go to `/usr`, `/home`, `/srv`, `/var`, `/var/tmp`, `/efi`
//! and `/boot`, and with which flags. Everything past `read` is pure.

use std::os::unix::fs::FileExt;

/// Partition attribute bits of the specification.
pub const FLAG_NO_AUTO: u64 = 1 << 63;
pub const FLAG_READ_ONLY: u64 = 1 << 60;
pub const FLAG_GROW_FS: u64 = 1 << 59;
/// UEFI's "no block I/O protocol": the ESP's equivalent of no-auto.
pub const FLAG_NO_BLOCK_IO: u64 = 1 << 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Designator {
    Root,
    Usr,
    Home,
    Srv,
    Var,
    Tmp,
    Esp,
    Xbootldr,
    Swap,
    RootVerity,
    UsrVerity,
    RootVeritySig,
    UsrVeritySig,
    /// A generic Linux data partition: the root only if it is the one
    /// partition of its kind and no root is marked.
    Generic,
}

#[cfg(target_arch = "x86_64")]
const ARCH: [(&str, Designator); 6] = [
    ("4f68bce3-e8cd-4db1-96e7-fbcaf984b709", Designator::Root),
    ("8484680c-9521-48c6-9c11-b0720656f69e", Designator::Usr),
    (
        "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
        Designator::RootVerity,
    ),
    (
        "77ff5f63-e7b6-4633-acf4-1565b864c0e6",
        Designator::UsrVerity,
    ),
    (
        "41092b05-9fc8-4523-994f-2def0408b176",
        Designator::RootVeritySig,
    ),
    (
        "e7bb33fb-06cf-4e81-8273-e543b413e2e2",
        Designator::UsrVeritySig,
    ),
];

#[cfg(target_arch = "aarch64")]
const ARCH: [(&str, Designator); 6] = [
    ("b921b045-1df0-41c3-af44-4c6f280d3fae", Designator::Root),
    ("b0e01050-ee5f-4390-949a-9101b17104e9", Designator::Usr),
    (
        "df3300ce-d69f-4c92-978c-9bfb0f38d820",
        Designator::RootVerity,
    ),
    (
        "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
        Designator::UsrVerity,
    ),
    (
        "6db69de6-29f4-4758-a7a5-962190f00ce3",
        Designator::RootVeritySig,
    ),
    (
        "c23ce4ff-44bd-4b00-b2d4-b41b3419e02a",
        Designator::UsrVeritySig,
    ),
];

const COMMON: [(&str, Designator); 8] = [
    ("933ac7e1-2eb4-4f13-b844-0e14e2aef915", Designator::Home),
    ("3b8f8425-20e0-4f3b-907f-1a25a76f98e8", Designator::Srv),
    ("4d21b016-b534-45c2-a9fb-5c16e091fd2d", Designator::Var),
    ("7ec6f557-3bc5-4aca-b293-16ef5df639d1", Designator::Tmp),
    ("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", Designator::Esp),
    ("bc13c2ff-59e6-4262-a352-b275fd6f7172", Designator::Xbootldr),
    ("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", Designator::Swap),
    ("0fc63daf-8483-4772-8e79-3d69d8477de4", Designator::Generic),
];

impl Designator {
    /// The designator of a partition type (lower-case UUID), for this
    /// architecture; other architectures' roots are not ours.
    pub fn of(type_uuid: &str) -> Option<Designator> {
        ARCH.iter()
            .chain(COMMON.iter())
            .find(|(u, _)| *u == type_uuid)
            .map(|(_, d)| *d)
    }

    pub fn name(self) -> &'static str {
        match self {
            Designator::Root => "root",
            Designator::Usr => "usr",
            Designator::Home => "home",
            Designator::Srv => "srv",
            Designator::Var => "var",
            Designator::Tmp => "tmp",
            Designator::Esp => "esp",
            Designator::Xbootldr => "xbootldr",
            Designator::Swap => "swap",
            Designator::RootVerity => "root-verity",
            Designator::UsrVerity => "usr-verity",
            Designator::RootVeritySig => "root-verity-sig",
            Designator::UsrVeritySig => "usr-verity-sig",
            Designator::Generic => "linux-generic",
        }
    }

    /// Where it is mounted in the container (the ESP's place is decided
    /// against the root's contents, see `mount/image.rs`).
    pub fn mount_point(self) -> Option<&'static str> {
        Some(match self {
            Designator::Root => "/",
            Designator::Usr => "/usr",
            Designator::Home => "/home",
            Designator::Srv => "/srv",
            Designator::Var => "/var",
            Designator::Tmp => "/var/tmp",
            Designator::Esp => "/efi",
            Designator::Xbootldr => "/boot",
            _ => return None,
        })
    }

    pub fn is_verity(self) -> bool {
        matches!(
            self,
            Designator::RootVerity
                | Designator::UsrVerity
                | Designator::RootVeritySig
                | Designator::UsrVeritySig
        )
    }

    /// Root and `/usr` may come in several versions; the highest label wins.
    fn versioned(self) -> bool {
        matches!(self, Designator::Root | Designator::Usr)
    }

    fn skipped(self, flags: u64) -> bool {
        match self {
            Designator::Esp => flags & FLAG_NO_BLOCK_IO != 0,
            _ => flags & FLAG_NO_AUTO != 0,
        }
    }
}

/// One used entry of the table, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's number, from 1, as `sfdisk` and the kernel count.
    pub number: u32,
    pub type_uuid: String,
    pub label: String,
    /// First byte and length; `None` for an entry whose last sector comes
    /// before its first.
    pub span: Option<(u64, u64)>,
    pub flags: u64,
}

/// The partition table of the image in `file`, if it has a GPT: `Ok(None)`
/// when there is no GPT signature in sector 1 (for 512 or 4096-byte
/// sectors).
pub fn read(file: &std::fs::File, size: u64) -> Result<Option<Vec<Entry>>, String> {
    let Some(lb) = [512u64, 4096]
        .into_iter()
        .find(|&lb| signature_at(file, lb).unwrap_or(false))
    else {
        return Ok(None);
    };
    // The crate asserts (a panic, not an error) that entries are 128 bytes:
    // a hostile table must be refused before it is handed over.
    for at in [lb, size.saturating_sub(lb) / lb * lb] {
        if signature_at(file, at).unwrap_or(false) && entry_size_at(file, at) != Some(128) {
            return Err("unsupported GPT: partition entries are not 128 bytes".into());
        }
    }
    let block = match lb {
        512 => gpt::disk::LogicalBlockSize::Lb512,
        _ => gpt::disk::LogicalBlockSize::Lb4096,
    };
    let dev = file
        .try_clone()
        .map_err(|e| format!("cannot read the partition table: {e}"))?;
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(block)
        .open_from_device(dev)
        .map_err(|e| format!("cannot read the partition table: {e}"))?;
    Ok(Some(
        disk.partitions()
            .iter()
            .filter(|(_, p)| p.is_used())
            .map(|(&n, p)| Entry {
                number: n,
                type_uuid: p.part_type_guid.guid.to_string().to_ascii_lowercase(),
                label: p.name.clone(),
                span: match (p.bytes_start(block), p.bytes_len(block)) {
                    (Ok(start), Ok(len)) => Some((start, len)),
                    _ => None,
                },
                flags: p.flags,
            })
            .collect(),
    ))
}

fn signature_at(file: &std::fs::File, at: u64) -> std::io::Result<bool> {
    let mut sig = [0u8; 8];
    file.read_exact_at(&mut sig, at)?;
    Ok(&sig == b"EFI PART")
}

fn entry_size_at(file: &std::fs::File, at: u64) -> Option<u32> {
    let mut v = [0u8; 4];
    file.read_exact_at(&mut v, at + 84).ok()?;
    Some(u32::from_le_bytes(v))
}

/// A table the image cannot have: an empty or inverted entry, one that
/// reaches past the image's end, or two that overlap.
pub fn check(entries: &[Entry], image_size: u64) -> Result<(), String> {
    let mut spans = vec![];
    for e in entries {
        match e.span {
            Some((start, len)) if len > 0 => {
                if start.checked_add(len).is_none_or(|end| end > image_size) {
                    return Err(format!(
                        "partition {} reaches past the end of the image (truncated?)",
                        e.number
                    ));
                }
                spans.push((start, start + len, e.number));
            }
            _ => return Err(format!("partition {} has no size", e.number)),
        }
    }
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!("partitions {} and {} overlap", w[0].2, w[1].2));
        }
    }
    Ok(())
}

/// A partition chosen for the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub designator: Designator,
    pub entry: Entry,
    pub read_only: bool,
    pub grow: bool,
}

/// The partitions the specification mounts (and the verity ones, which
/// the caller must refuse without dm-verity), root first; swap and those
/// marked no-auto are left out. Root and `/usr`: the highest version of
/// the label wins, as in the reference; two that compare equal are
/// refused (nothing says which is meant). Others: the first one wins.
pub fn choose(entries: &[Entry]) -> Result<Vec<Chosen>, String> {
    let mut chosen: Vec<Chosen> = vec![];
    let mut generic = vec![];
    for e in entries {
        let Some(d) = Designator::of(&e.type_uuid) else {
            continue;
        };
        if d == Designator::Swap || d.skipped(e.flags) {
            continue;
        }
        if d == Designator::Generic {
            generic.push(e);
            continue;
        }
        let c = Chosen {
            designator: d,
            entry: e.clone(),
            read_only: e.flags & FLAG_READ_ONLY != 0 || d.is_verity(),
            grow: e.flags & FLAG_GROW_FS != 0,
        };
        match chosen.iter_mut().find(|o| o.designator == d) {
            None => chosen.push(c),
            Some(old) if d.versioned() => match version_cmp(&c.entry.label, &old.entry.label) {
                std::cmp::Ordering::Greater => *old = c,
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(format!(
                    "two {} partitions ({} and {}) and no version in their labels to choose one by",
                    d.name(),
                    old.entry.number,
                    e.number
                ))
                }
            },
            Some(_) => {}
        }
    }
    if !chosen.iter().any(|c| c.designator == Designator::Root) {
        match generic.as_slice() {
            [one] => chosen.push(Chosen {
                designator: Designator::Root,
                entry: (*one).clone(),
                read_only: one.flags & FLAG_READ_ONLY != 0,
                grow: false,
            }),
            _ => return Err("No suitable root partition found in image.".into()),
        }
    }
    chosen.sort_by_key(|c| c.designator != Designator::Root);
    Ok(chosen)
}

/// Compare version strings as `strverscmp(3)` roughly does: runs of
/// digits by value, everything else byte by byte.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let strip = |d: &[u8]| -> usize { d.iter().take_while(|&&c| c == b'0').count() };
                let (ta, tb) = (&da[strip(da)..], &db[strip(db)..]);
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, ty: &str, label: &str, start: u64, len: u64, flags: u64) -> Entry {
        Entry {
            number: n,
            type_uuid: ty.into(),
            label: label.into(),
            span: Some((start, len)),
            flags,
        }
    }

    fn root() -> &'static str {
        ARCH[0].0
    }

    const HOME: &str = "933ac7e1-2eb4-4f13-b844-0e14e2aef915";
    const SWAP: &str = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f";
    const GENERIC: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";

    #[test]
    fn bad_tables() {
        let a = entry(1, root(), "", 1 << 20, 1 << 20, 0);
        let b = entry(2, HOME, "", (1 << 20) + 4096, 1 << 20, 0);
        assert_eq!(
            check(&[a.clone(), b], 8 << 20).unwrap_err(),
            "partitions 1 and 2 overlap"
        );
        let zero = entry(2, HOME, "", 4 << 20, 0, 0);
        assert!(check(&[a.clone(), zero], 8 << 20)
            .unwrap_err()
            .contains("no size"));
        assert!(check(std::slice::from_ref(&a), 1 << 20)
            .unwrap_err()
            .contains("past the end"));
        let mut inverted = a.clone();
        inverted.span = None;
        assert!(check(&[inverted], 8 << 20).is_err());
        assert!(check(&[a], 8 << 20).is_ok());
    }

    #[test]
    fn roots() {
        let none = choose(&[entry(1, HOME, "", 0, 1, 0)]).unwrap_err();
        assert_eq!(none, "No suitable root partition found in image.");
        let two = choose(&[entry(1, root(), "", 0, 1, 0), entry(2, root(), "", 1, 1, 0)]);
        assert!(two.unwrap_err().contains("two root partitions"));
        let versions = choose(&[
            entry(1, root(), "os_1.9", 0, 1, 0),
            entry(2, root(), "os_1.10", 1, 1, 0),
        ])
        .unwrap();
        assert_eq!(versions[0].entry.number, 2);
        let generic = choose(&[entry(3, GENERIC, "", 0, 1, 0)]).unwrap();
        assert_eq!(generic[0].designator, Designator::Root);
        assert!(choose(&[
            entry(3, GENERIC, "", 0, 1, 0),
            entry(4, GENERIC, "", 1, 1, 0)
        ])
        .is_err());
    }

    #[test]
    fn flags_and_kinds() {
        let c = choose(&[
            entry(1, HOME, "", 2, 1, FLAG_READ_ONLY),
            entry(2, root(), "", 0, 1, FLAG_GROW_FS),
            entry(3, SWAP, "", 3, 1, 0),
            entry(
                4,
                "7ec6f557-3bc5-4aca-b293-16ef5df639d1",
                "",
                4,
                1,
                FLAG_NO_AUTO,
            ),
        ])
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].designator, Designator::Root);
        assert!(c[0].grow && !c[0].read_only);
        assert_eq!(c[1].designator, Designator::Home);
        assert!(c[1].read_only);
    }

    #[test]
    fn versions() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("a10", "a9"), Greater);
        assert_eq!(version_cmp("a1.2", "a1.2"), Equal);
        assert_eq!(version_cmp("", "a"), Less);
        assert_eq!(version_cmp("v007", "v7"), Equal);
    }
}
