//! btrfs subvolumes, as the reference's btrfs-util.c uses them for images:
//! making one, snapshotting one with the subvolumes nested in it,
//! deleting one with its nested subvolumes, its read-only flag, and the
//! tree search that finds nested subvolumes and quota items. The requests
//! and structures are linux/btrfs.h and linux/btrfs_tree.h (see `ioctl`
//! for why by hand); every one is made on a directory checked to be on
//! btrfs first.

use super::ioctl::{call, Op};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::{Errno, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// `statfs(2)` magic of btrfs (linux/magic.h).
const SUPER_MAGIC: i64 = 0x9123_683e;
/// The top directory of every subvolume has this inode number.
pub(crate) const FIRST_FREE_OBJECTID: u64 = 256;
const LAST_FREE_OBJECTID: u64 = -256i64 as u64;
/// Tree ids and item types (linux/btrfs_tree.h).
pub(crate) const ROOT_TREE_OBJECTID: u64 = 1;
const ROOT_BACKREF_KEY: u32 = 144;
/// `BTRFS_SUBVOL_RDONLY`, the subvolume flag `btrfs property set ro` sets.
const SUBVOL_RDONLY: u64 = 1 << 1;

const MAGIC: u8 = 0x94;
const NAME_MAX_V1: usize = 4087;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; NAME_MAX_V1 + 1],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    /// `size` and `qgroup_inherit`, unused here.
    unused: [u64; 4],
    name: [u8; 4040],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct SearchKey {
    pub tree_id: u64,
    pub min_objectid: u64,
    pub max_objectid: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    pub min_transid: u64,
    pub max_transid: u64,
    pub min_type: u32,
    pub max_type: u32,
    pub nr_items: u32,
    unused: [u32; 1],
    unused1: [u64; 4],
}

const SEARCH_BUF: usize = 4096 - std::mem::size_of::<SearchKey>();

#[repr(C)]
struct SearchArgs {
    key: SearchKey,
    buf: [u8; SEARCH_BUF],
}

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

const _: () = assert!(std::mem::size_of::<VolArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<VolArgsV2>() == 4096);
const _: () = assert!(std::mem::size_of::<SearchKey>() == 104);
const _: () = assert!(std::mem::size_of::<SearchArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<InoLookupArgs>() == 4096);

const RESIZE: Op<VolArgs> = Op::write(MAGIC, 3);
const SUBVOL_CREATE: Op<VolArgs> = Op::write(MAGIC, 14);
const SNAP_DESTROY: Op<VolArgs> = Op::write(MAGIC, 15);
const TREE_SEARCH: Op<SearchArgs> = Op::read_write(MAGIC, 17);
const INO_LOOKUP: Op<InoLookupArgs> = Op::read_write(MAGIC, 18);
const SNAP_CREATE_V2: Op<VolArgsV2> = Op::write(MAGIC, 23);
const SUBVOL_GETFLAGS: Op<u64> = Op::read(MAGIC, 25);
const SUBVOL_SETFLAGS: Op<u64> = Op::write(MAGIC, 26);

/// Whether `fd` is on a btrfs file system.
pub(crate) fn is_btrfs(fd: impl AsFd) -> bool {
    // f_type is i64 here, a narrower type on other architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as i64 == SUPER_MAGIC)
}

/// Whether `fd` is the top directory of a btrfs subvolume.
pub(crate) fn is_subvolume(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    rustix::fs::fstat(fd).is_ok_and(|st| {
        st.st_ino == FIRST_FREE_OBJECTID
            && rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir()
            && is_btrfs(fd)
    })
}

fn open_dir(dir: BorrowedFd, path: &str) -> Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        if path.is_empty() { "." } else { path },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A subvolume's own name, one path component that fits the request.
fn name_into(buf: &mut [u8], name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name.len() >= buf.len() {
        return Err(Errno::INVAL);
    }
    buf[..name.len()].copy_from_slice(name.as_bytes());
    Ok(())
}

/// The id of the subvolume `fd` is in (its tree id).
pub(crate) fn subvolume_id(fd: BorrowedFd) -> Result<u64> {
    if !is_btrfs(fd) {
        return Err(Errno::NOTTY);
    }
    let mut a = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    };
    call(fd, &INO_LOOKUP, &mut a)?;
    Ok(a.treeid)
}

/// A new empty subvolume `name` in the directory `dir`.
pub(crate) fn create(dir: BorrowedFd, name: &str) -> Result<()> {
    if !is_btrfs(dir) {
        return Err(Errno::NOTTY);
    }
    let mut a = VolArgs {
        fd: 0,
        name: [0; NAME_MAX_V1 + 1],
    };
    name_into(&mut a.name, name)?;
    call(dir, &SUBVOL_CREATE, &mut a).map(drop)
}

/// Grow the file system of the directory `dir` (its first device) to the
/// device's whole size (`BTRFS_IOC_RESIZE` with "max").
pub(crate) fn resize_to_max(dir: BorrowedFd) -> Result<()> {
    let mut a = VolArgs {
        fd: 0,
        name: [0; NAME_MAX_V1 + 1],
    };
    name_into(&mut a.name, "max")?;
    call(dir, &RESIZE, &mut a).map(drop)
}

/// The read-only flag of the subvolume `fd`.
pub(crate) fn read_only(fd: BorrowedFd) -> Result<bool> {
    if !is_subvolume(fd) {
        return Err(Errno::NOTTY);
    }
    let mut flags = 0u64;
    call(fd, &SUBVOL_GETFLAGS, &mut flags)?;
    Ok(flags & SUBVOL_RDONLY != 0)
}

/// Set or clear the read-only flag of the subvolume `fd` (only this
/// subvolume's, not those nested in it, as the reference).
pub(crate) fn set_read_only(fd: BorrowedFd, on: bool) -> Result<()> {
    if !is_subvolume(fd) {
        return Err(Errno::NOTTY);
    }
    let mut flags = 0u64;
    call(fd, &SUBVOL_GETFLAGS, &mut flags)?;
    let mut new = if on {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    if new != flags {
        call(fd, &SUBVOL_SETFLAGS, &mut new)?;
    }
    Ok(())
}

/// One item a tree search found: its key and its body (little-endian
/// on-disk structures).
pub(crate) struct Item {
    pub objectid: u64,
    pub kind: u32,
    pub offset: u64,
    pub body: Vec<u8>,
}

/// Every item of tree `key.tree_id` between the smallest and largest key
/// that `key` gives (BTRFS_IOC_TREE_SEARCH; the kernel compares whole keys,
/// so callers check each component of what they get). Needs CAP_SYS_ADMIN.
pub(crate) fn search(fd: BorrowedFd, key: SearchKey) -> Result<Vec<Item>> {
    let mut args = SearchArgs {
        key,
        buf: [0; SEARCH_BUF],
    };
    let mut out = vec![];
    let min = |k: &SearchKey| (k.min_objectid, k.min_type, k.min_offset);
    let max = |k: &SearchKey| (k.max_objectid, k.max_type, k.max_offset);
    while min(&args.key) <= max(&args.key) {
        args.key.nr_items = 4096;
        call(fd, &TREE_SEARCH, &mut args)?;
        if args.key.nr_items == 0 {
            break;
        }
        let mut at = 0usize;
        let mut last = None;
        for _ in 0..args.key.nr_items {
            // struct btrfs_ioctl_search_header: transid, objectid, offset,
            // type, len, in the host's byte order.
            let head = args.buf.get(at..at + 32).ok_or(Errno::BADMSG)?;
            let u64_at = |i: usize| u64::from_ne_bytes(head[i..i + 8].try_into().unwrap());
            let u32_at = |i: usize| u32::from_ne_bytes(head[i..i + 4].try_into().unwrap());
            let (objectid, offset, kind, len) = (u64_at(8), u64_at(16), u32_at(24), u32_at(28));
            let body = args
                .buf
                .get(at + 32..at + 32 + len as usize)
                .ok_or(Errno::BADMSG)?;
            out.push(Item {
                objectid,
                kind,
                offset,
                body: body.to_vec(),
            });
            last = Some((objectid, kind, offset));
            at += 32 + len as usize;
        }
        // Go on from just after the last key found, as one 136-bit number.
        let Some((o, t, f)) = last else { break };
        let k = &mut args.key;
        (k.min_objectid, k.min_type, k.min_offset) = (o, t, f);
        if k.min_offset < u64::MAX {
            k.min_offset += 1;
        } else if k.min_type < u32::from(u8::MAX) {
            (k.min_type, k.min_offset) = (k.min_type + 1, 0);
        } else if k.min_objectid < u64::MAX {
            (k.min_objectid, k.min_type, k.min_offset) = (k.min_objectid + 1, 0, 0);
        } else {
            break;
        }
    }
    Ok(out)
}

/// A key spanning every transaction, for `search`.
pub(crate) fn key(tree_id: u64) -> SearchKey {
    SearchKey {
        tree_id,
        max_transid: u64::MAX,
        ..SearchKey::default()
    }
}

pub(crate) fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The subvolume `id` is nested in, if any (its ROOT_BACKREF item).
pub(crate) fn parent(fd: BorrowedFd, id: u64) -> Result<Option<u64>> {
    let mut k = key(ROOT_TREE_OBJECTID);
    (k.min_objectid, k.max_objectid) = (id, id);
    (k.min_type, k.max_type) = (ROOT_BACKREF_KEY, ROOT_BACKREF_KEY);
    k.max_offset = u64::MAX;
    Ok(search(fd, k)?
        .into_iter()
        .find(|i| i.objectid == id && i.kind == ROOT_BACKREF_KEY)
        .map(|i| i.offset))
}

/// A subvolume nested directly in another: its id, and where it is
/// below the other's top directory (`dir` is empty or ends in `/`).
struct Child {
    id: u64,
    dir: String,
    name: String,
}

/// The subvolumes nested directly in subvolume `id` (which `fd` is in).
fn children(fd: BorrowedFd, id: u64) -> Result<Vec<Child>> {
    let mut k = key(ROOT_TREE_OBJECTID);
    (k.min_objectid, k.max_objectid) = (FIRST_FREE_OBJECTID, LAST_FREE_OBJECTID);
    (k.min_type, k.max_type) = (ROOT_BACKREF_KEY, ROOT_BACKREF_KEY);
    (k.min_offset, k.max_offset) = (id, id);
    let mut out = vec![];
    for i in search(fd, k)? {
        if i.kind != ROOT_BACKREF_KEY || i.offset != id {
            continue;
        }
        // struct btrfs_root_ref: dirid, sequence, name_len (le16), name.
        let dirid = le64(&i.body, 0).ok_or(Errno::BADMSG)?;
        let len = i.body.get(16..18).ok_or(Errno::BADMSG)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        let name = i.body.get(18..18 + len).ok_or(Errno::BADMSG)?;
        let mut a = InoLookupArgs {
            treeid: id,
            objectid: dirid,
            name: [0; 4080],
        };
        call(fd, &INO_LOOKUP, &mut a)?;
        let end = a.name.iter().position(|&c| c == 0).unwrap_or(a.name.len());
        out.push(Child {
            id: i.objectid,
            dir: String::from_utf8_lossy(&a.name[..end]).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(out)
}

/// Snapshot the subvolume `src` as `name` in `dir`, writable, and the
/// subvolumes nested in it in their places (a snapshot has only empty
/// directories where they were), as the reference's
/// BTRFS_SNAPSHOT_RECURSIVE. The data is shared, not copied.
pub(crate) fn snapshot(src: BorrowedFd, dir: BorrowedFd, name: &str) -> Result<()> {
    if !is_subvolume(src) || !is_btrfs(dir) {
        return Err(Errno::NOTTY);
    }
    let mut a = VolArgsV2 {
        fd: i64::from(std::os::fd::AsRawFd::as_raw_fd(&src)),
        transid: 0,
        flags: 0,
        unused: [0; 4],
        name: [0; 4040],
    };
    name_into(&mut a.name, name)?;
    call(dir, &SNAP_CREATE_V2, &mut a)?;
    let old_id = subvolume_id(src)?;
    let new = open_dir(dir, name)?;
    let new_id = subvolume_id(new.as_fd())?;
    for c in children(src, old_id)? {
        // A snapshot taken into the source itself is not copied into itself.
        if c.id == new_id {
            continue;
        }
        let old_child = open_dir(src, &format!("{}{}", c.dir, c.name))?;
        let new_parent = open_dir(new.as_fd(), &c.dir)?;
        rustix::fs::unlinkat(&new_parent, c.name.as_str(), AtFlags::REMOVEDIR)?;
        snapshot(old_child.as_fd(), new_parent.as_fd(), &c.name)?;
    }
    Ok(())
}

/// Delete the subvolume `name` in `dir` and every subvolume nested in
/// it (the reference's BTRFS_REMOVE_RECURSIVE|BTRFS_REMOVE_QUOTA): its
/// quota groups go too. `ENOTTY` if it is not a subvolume.
pub(crate) fn remove(dir: BorrowedFd, name: &str) -> Result<()> {
    let fd = open_dir(dir, name)?;
    if !is_subvolume(&fd) {
        return Err(Errno::NOTTY);
    }
    let id = subvolume_id(fd.as_fd())?;
    let mut a = VolArgs {
        fd: 0,
        name: [0; NAME_MAX_V1 + 1],
    };
    name_into(&mut a.name, name)?;
    match call(dir, &SNAP_DESTROY, &mut a) {
        Ok(_) => {}
        Err(Errno::NOTEMPTY) => {
            // Nested subvolumes first; their placeholders are in this
            // subvolume, which must be writable for that.
            set_read_only(fd.as_fd(), false)?;
            for c in children(fd.as_fd(), id)? {
                let parent = open_dir(fd.as_fd(), &c.dir)?;
                remove(parent.as_fd(), &c.name)?;
            }
            call(dir, &SNAP_DESTROY, &mut a)?;
        }
        Err(e) => return Err(e),
    }
    super::qgroup::forget(dir, id);
    Ok(())
}
