//! btrfs quota groups, as the reference's btrfs-util.c arranges them for
//! images: every subvolume `ID` has its leaf group `0/ID`; an image (and
//! the pool) also gets a "subtree" group `L/ID` one level below the
//! lowest group its parent subvolume is in (level 255 when the parent is
//! in none), holding it and, through their own subtree groups, the
//! subvolumes made in it later. A limit is set on both the leaf and the
//! subtree group; usage is read from the subtree group.

use super::btrfs::{self, le64};
use super::ioctl::{call, Op};
use rustix::io::{Errno, Result};
use std::os::fd::BorrowedFd;

const LEVEL_SHIFT: u32 = 48;
const QUOTA_TREE_OBJECTID: u64 = 8;
const QGROUP_STATUS_KEY: u32 = 240;
const QGROUP_INFO_KEY: u32 = 242;
const QGROUP_LIMIT_KEY: u32 = 244;
const QGROUP_RELATION_KEY: u32 = 246;
const QUOTA_CTL_ENABLE: u64 = 1;
const LIMIT_MAX_RFER: u64 = 1 << 0;
const LIMIT_MAX_EXCL: u64 = 1 << 1;

#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

#[repr(C)]
#[derive(Default)]
struct RescanArgs {
    flags: u64,
    progress: u64,
    reserved: [u64; 6],
}

#[repr(C)]
struct AssignArgs {
    assign: u64,
    src: u64,
    dst: u64,
}

#[repr(C)]
struct CreateArgs {
    create: u64,
    qgroupid: u64,
}

#[repr(C)]
#[derive(Default)]
struct Limit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
struct LimitArgs {
    qgroupid: u64,
    lim: Limit,
}

const MAGIC: u8 = 0x94;
const QUOTA_CTL: Op<QuotaCtlArgs> = Op::read_write(MAGIC, 40);
const QGROUP_ASSIGN: Op<AssignArgs> = Op::write(MAGIC, 41);
const QGROUP_CREATE: Op<CreateArgs> = Op::write(MAGIC, 42);
/// Declared `_IOR` in linux/btrfs.h although the kernel reads it.
const QGROUP_LIMIT: Op<LimitArgs> = Op::read(MAGIC, 43);
const QUOTA_RESCAN: Op<RescanArgs> = Op::write(MAGIC, 44);
const QUOTA_RESCAN_STATUS: Op<RescanArgs> = Op::read(MAGIC, 45);
const QUOTA_RESCAN_WAIT: Op<()> = Op::raw(rustix::ioctl::opcode::none(MAGIC, 46));

const _: () = assert!(std::mem::size_of::<RescanArgs>() == 64);
const _: () = assert!(std::mem::size_of::<LimitArgs>() == 48);

fn id(level: u64, id: u64) -> u64 {
    (level << LEVEL_SHIFT) | (id & ((1 << LEVEL_SHIFT) - 1))
}

fn split(qgroupid: u64) -> (u64, u64) {
    (qgroupid >> LEVEL_SHIFT, qgroupid & ((1 << LEVEL_SHIFT) - 1))
}

fn quota_items(fd: BorrowedFd, min: (u64, u32), max: (u64, u32)) -> Result<Vec<btrfs::Item>> {
    let mut k = btrfs::key(QUOTA_TREE_OBJECTID);
    (k.min_objectid, k.min_type) = min;
    (k.max_objectid, k.max_type) = max;
    k.max_offset = u64::MAX;
    match btrfs::search(fd, k) {
        // No quota tree: quotas are off.
        Err(Errno::NOENT) => Ok(vec![]),
        r => r,
    }
}

/// Whether quotas are on for the file system of `fd`.
pub(crate) fn enabled(fd: BorrowedFd) -> Result<bool> {
    if !btrfs::is_btrfs(fd) {
        return Ok(false);
    }
    Ok(
        quota_items(fd, (0, QGROUP_STATUS_KEY), (0, QGROUP_STATUS_KEY))?
            .iter()
            .any(|i| i.kind == QGROUP_STATUS_KEY),
    )
}

/// Turn quotas on; the kernel then counts what exists in a rescan.
pub(crate) fn enable(fd: BorrowedFd) -> Result<()> {
    let mut a = QuotaCtlArgs {
        cmd: QUOTA_CTL_ENABLE,
        status: 0,
    };
    call(fd, &QUOTA_CTL, &mut a).map(drop)
}

/// Whether a rescan is running: the counts are not yet right.
pub(crate) fn rescan_running(fd: BorrowedFd) -> Result<bool> {
    let mut a = RescanArgs::default();
    call(fd, &QUOTA_RESCAN_STATUS, &mut a)?;
    Ok(a.flags != 0)
}

/// Wait for a running rescan to end.
pub(crate) fn rescan_wait(fd: BorrowedFd) -> Result<()> {
    call(fd, &QUOTA_RESCAN_WAIT, &mut ()).map(drop)
}

fn rescan_start(fd: BorrowedFd) {
    let _ = call(fd, &QUOTA_RESCAN, &mut RescanArgs::default());
}

/// Make a request that fails with EBUSY while a rescan runs, waiting
/// for the rescan a few times as the reference does.
fn retry(fd: BorrowedFd, mut f: impl FnMut() -> Result<i32>) -> Result<i32> {
    for _ in 0..10 {
        match f() {
            Err(Errno::BUSY) => {
                let _ = rescan_wait(fd);
            }
            r => return r,
        }
    }
    f()
}

fn create(fd: BorrowedFd, qgroupid: u64, on: bool) -> Result<()> {
    let r = retry(fd, || {
        let mut a = CreateArgs {
            create: u64::from(on),
            qgroupid,
        };
        call(fd, &QGROUP_CREATE, &mut a)
    });
    match r {
        // Old kernels say EINVAL when quotas are off, newer ENOTCONN.
        Err(Errno::INVAL) => Err(Errno::NOTCONN),
        r => r.map(drop),
    }
}

fn assign(fd: BorrowedFd, child: u64, parent: u64, on: bool) -> Result<()> {
    let n = retry(fd, || {
        let mut a = AssignArgs {
            assign: u64::from(on),
            src: child,
            dst: parent,
        };
        call(fd, &QGROUP_ASSIGN, &mut a)
    })?;
    // A positive answer: the counts are inconsistent until a rescan.
    if n > 0 {
        rescan_start(fd);
    }
    Ok(())
}

/// Limit what group `qgroupid` may refer to; `None` lifts the limit.
pub(crate) fn set_limit(fd: BorrowedFd, qgroupid: u64, max: Option<u64>) -> Result<()> {
    retry(fd, || {
        let mut a = LimitArgs {
            qgroupid,
            lim: Limit {
                flags: LIMIT_MAX_RFER,
                // All ones tells the kernel to clear the limit.
                max_rfer: max.unwrap_or(u64::MAX),
                ..Limit::default()
            },
        };
        call(fd, &QGROUP_LIMIT, &mut a)
    })
    .map(drop)
}

/// The groups `qgroupid` is a member of.
pub(crate) fn parents(fd: BorrowedFd, qgroupid: u64) -> Result<Vec<u64>> {
    Ok(quota_items(
        fd,
        (qgroupid, QGROUP_RELATION_KEY),
        (qgroupid, QGROUP_RELATION_KEY),
    )?
    .into_iter()
    // Relations are stored both ways; parent ids are the larger.
    .filter(|i| i.kind == QGROUP_RELATION_KEY && i.objectid == qgroupid && i.offset > i.objectid)
    .map(|i| i.offset)
    .collect())
}

/// What a group counts and allows, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub referenced: u64,
    pub exclusive: u64,
    pub referenced_max: Option<u64>,
    pub exclusive_max: Option<u64>,
}

/// The counts and limits of group `qgroupid`, if it exists.
pub(crate) fn info(fd: BorrowedFd, qgroupid: u64) -> Result<Option<Info>> {
    let mut out = Info {
        referenced: 0,
        exclusive: 0,
        referenced_max: None,
        exclusive_max: None,
    };
    let mut found = false;
    for i in quota_items(fd, (0, QGROUP_INFO_KEY), (0, QGROUP_LIMIT_KEY))? {
        if i.objectid != 0 || i.offset != qgroupid {
            continue;
        }
        let b = &i.body;
        match i.kind {
            // struct btrfs_qgroup_info_item: generation, rfer, rfer_cmpr,
            // excl, excl_cmpr.
            QGROUP_INFO_KEY => {
                out.referenced = le64(b, 8).ok_or(Errno::BADMSG)?;
                out.exclusive = le64(b, 24).ok_or(Errno::BADMSG)?;
                found = true;
            }
            // struct btrfs_qgroup_limit_item: flags, max_rfer, max_excl, ...
            QGROUP_LIMIT_KEY => {
                let flags = le64(b, 0).ok_or(Errno::BADMSG)?;
                out.referenced_max = (flags & LIMIT_MAX_RFER != 0).then(|| le64(b, 8)).flatten();
                out.exclusive_max = (flags & LIMIT_MAX_EXCL != 0).then(|| le64(b, 16)).flatten();
            }
            _ => {}
        }
    }
    Ok(found.then_some(out))
}

/// The subtree group of subvolume `subvol`: the lowest-level group it
/// is in with its own id; its leaf group if it has none.
pub(crate) fn subtree(fd: BorrowedFd, subvol: u64) -> Result<u64> {
    Ok(parents(fd, subvol)?
        .into_iter()
        .filter(|&p| split(p).1 == subvol)
        .min_by_key(|&p| split(p).0)
        .unwrap_or(subvol))
}

/// Give subvolume `subvol` its subtree group below its parent
/// subvolume's groups, unless it is in a group already (the reference's
/// `btrfs_subvol_auto_qgroup` with an intermediary group).
pub(crate) fn auto(fd: BorrowedFd, subvol: u64) -> Result<()> {
    if !parents(fd, subvol)?.is_empty() {
        return Ok(());
    }
    let above = match btrfs::parent(fd, subvol)? {
        Some(p) => parents(fd, p)?,
        None => vec![],
    };
    let lowest = above.iter().map(|&q| split(q).0).min().unwrap_or(256);
    if lowest <= 1 {
        return Err(Errno::BUSY);
    }
    let group = id(lowest - 1, subvol);
    let created = match create(fd, group, true) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(e),
    };
    let exists_ok = |r: Result<()>| match r {
        Err(Errno::EXIST) => Ok(()),
        r => r,
    };
    let r = above
        .iter()
        .try_for_each(|&p| exists_ok(assign(fd, group, p, true)))
        .and_then(|()| exists_ok(assign(fd, subvol, group, true)));
    if r.is_err() && created {
        forget_group(fd, group);
    }
    r
}

/// Remove group `qgroupid` from its parents and destroy it, and the
/// parents with its id (its subtree group) likewise. Best effort: a
/// group still counting data the kernel has not freed yet stays.
fn forget_group(fd: BorrowedFd, qgroupid: u64) {
    let own = split(qgroupid).1;
    for p in parents(fd, qgroupid).unwrap_or_default() {
        let _ = assign(fd, qgroupid, p, false);
        if split(p).1 == own {
            forget_group(fd, p);
        }
    }
    let _ = create(fd, qgroupid, false);
}

/// After subvolume `subvol` was deleted: its groups go too, if quotas
/// are on (`fd` is on the same file system).
pub(crate) fn forget(fd: BorrowedFd, subvol: u64) {
    if enabled(fd).unwrap_or(false) {
        forget_group(fd, subvol);
    }
}
