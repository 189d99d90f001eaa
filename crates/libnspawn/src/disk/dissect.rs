//! What is in a disk image: a GPT whose partitions follow the
//! Discoverable Partitions Specification (`table`), or a bare file system
//! (`probe`), turned into the list of file systems to mount, root first.

use super::probe::{self, FsType};
use super::table::{self, Designator};

/// One file system of the image.
#[derive(Debug, Clone)]
pub struct Part {
    pub designator: Designator,
    /// The GPT entry's number; `None` for a bare file system.
    pub number: Option<u32>,
    pub offset: u64,
    pub size: u64,
    pub fstype: FsType,
    /// The partition's read-only flag or a file system that cannot be
    /// written.
    pub read_only: bool,
    /// The grow-fs flag: grown to fill the partition when mounted
    /// writable.
    pub grow: bool,
    pub label: String,
}

impl Part {
    /// How a message names it: "partition 2 (home)" or "the file system".
    pub fn describe(&self) -> String {
        match self.number {
            Some(n) => format!("partition {n} ({})", self.designator.name()),
            None => "the file system".into(),
        }
    }
}

/// A partition of dm-verity's: a hash area, or a signature of a root
/// hash.
#[derive(Debug, Clone)]
pub struct VerityPart {
    pub designator: Designator,
    pub number: u32,
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Layout {
    /// Root first.
    pub parts: Vec<Part>,
    /// Verity partitions found, which need dm-verity.
    pub verity: Vec<VerityPart>,
    pub gpt: bool,
}

impl Layout {
    pub fn root(&self) -> &Part {
        &self.parts[0]
    }
}

/// Read the image in `file` (`size` bytes).
pub fn dissect(file: &std::fs::File, size: u64) -> Result<Layout, String> {
    let io = |e: std::io::Error| format!("cannot read the image: {e}");
    // A GPT; else a file system from the first byte (a FAT boot sector
    // looks like an MBR: the file system is asked first); else an MBR.
    let (entries, gpt) = match table::read(file, size)? {
        Some(e) => (e, true),
        None => match probe::probe(file, 0, size).map_err(io)? {
            Some(fs) if fs != FsType::Swap => {
                return Ok(Layout {
                    parts: vec![Part {
                        designator: Designator::Root,
                        number: None,
                        offset: 0,
                        size,
                        fstype: fs,
                        read_only: fs.always_read_only(),
                        grow: false,
                        label: String::new(),
                    }],
                    verity: vec![],
                    gpt: false,
                })
            }
            _ => match super::mbr::read(file, size)? {
                Some(e) => (e, false),
                None => {
                    return Err(
                        "Couldn't identify a suitable partition table or file system.".into(),
                    )
                }
            },
        },
    };
    table::check(&entries, size)?;
    let mut parts = vec![];
    let mut verity = vec![];
    for c in table::choose(&entries)? {
        let (offset, len) = c.entry.span.expect("checked: every entry has a span");
        if c.designator.is_verity() {
            verity.push(VerityPart {
                designator: c.designator,
                number: c.entry.number,
                offset,
                size: len,
            });
            continue;
        }
        let described = format!("partition {} ({})", c.entry.number, c.designator.name());
        let fstype = match probe::probe(file, offset, len).map_err(io)? {
            Some(FsType::Swap) | None => {
                return Err(format!("{described} holds no file system we know"))
            }
            Some(fs) => fs,
        };
        parts.push(Part {
            designator: c.designator,
            number: Some(c.entry.number),
            offset,
            size: len,
            fstype,
            read_only: c.read_only || fstype.always_read_only(),
            grow: c.grow,
            label: c.entry.label,
        });
    }
    // Mount order: the root, then `/var` before `/var/tmp`.
    parts.sort_by_key(|p| {
        p.designator
            .mount_point()
            .map_or(0, |m| m.matches('/').count() - usize::from(m == "/"))
    });
    Ok(Layout { parts, verity, gpt })
}

/// Read the image at `path` without holding it (for `image-status`).
pub fn inspect(path: &std::path::Path) -> Result<Layout, String> {
    use std::io::Seek;
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| format!("cannot get the size of {}: {e}", path.display()))?;
    dissect(&file, size)
}
