//! Writing an image as a tar archive: the tree walked without following
//! symlinks, numeric owners, modes, mtimes, hard links as links, device
//! nodes, and xattrs (ACLs and file capabilities included) as PAX
//! `SCHILY.xattr.*` records, which GNU tar and our import both read.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub fn pack<W: Write>(root: &Path, out: W) -> Result<W, String> {
    let mut b = tar::Builder::new(out);
    let mut links = HashMap::new();
    walk(&mut b, root, Path::new("."), &mut links)?;
    b.into_inner()
        .map_err(|e| format!("cannot write the archive: {e}"))
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot export {}: {e}", path.display());
    let m = std::fs::symlink_metadata(path).map_err(io)?;
    let ft = m.file_type();
    if ft.is_socket() {
        // Sockets cannot be archived, and mean nothing without their server.
        return Ok(());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
    xattrs(b, path).map_err(io)?;
    if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).map_err(io)?;
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for e in entries {
            walk(b, &path.join(&e), &name.join(&e), links)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(io)?;
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, target).map_err(io)?;
    } else if ft.is_file() {
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return b.append_link(&mut h, name, first).map_err(io);
            }
            links.insert((m.dev(), m.ino()), name.to_path_buf());
        }
        let f = std::fs::File::open(path).map_err(io)?;
        b.append_data(&mut h, name, f).map_err(io)?;
    } else {
        let kind = match () {
            _ if ft.is_char_device() => tar::EntryType::Char,
            _ if ft.is_block_device() => tar::EntryType::Block,
            _ => tar::EntryType::Fifo,
        };
        h.set_entry_type(kind);
        h.set_size(0);
        let rdev = m.rdev();
        h.set_device_major(rustix::fs::major(rdev)).map_err(io)?;
        h.set_device_minor(rustix::fs::minor(rdev)).map_err(io)?;
        b.append_data(&mut h, name, std::io::empty()).map_err(io)?;
    }
    Ok(())
}

/// A PAX header with the entry's xattrs, written before the entry it
/// belongs to (POSIX pax, "x" typeflag). `xattr::list`/`get` do not follow
/// symlinks (llistxattr/lgetxattr).
fn xattrs<W: Write>(b: &mut tar::Builder<W>, path: &Path) -> std::io::Result<()> {
    let mut data = vec![];
    for key in xattr::list(path)? {
        let Some(value) = xattr::get(path, &key)? else {
            continue;
        };
        let mut rec = b"SCHILY.xattr.".to_vec();
        rec.extend_from_slice(key.as_encoded_bytes());
        rec.push(b'=');
        rec.extend_from_slice(&value);
        rec.push(b'\n');
        // A record is "LEN KEY=VALUE\n", LEN counting itself.
        let mut len = rec.len() + 2;
        while len != rec.len() + 1 + len.to_string().len() {
            len = rec.len() + 1 + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} ").as_bytes());
        data.extend_from_slice(&rec);
    }
    if data.is_empty() {
        return Ok(());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeader")?;
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data.as_slice())
}
