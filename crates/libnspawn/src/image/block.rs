//! A block device image's read-only flag: the reference marks a block
//! image read-only with BLKROSET and reads it back with BLKROGET
//! (linux/fs.h), which rustix does not wrap.

use super::ioctl::{call, Op};
use rustix::io::{Errno, Result};
use rustix::ioctl::opcode;
use std::os::fd::BorrowedFd;

/// `_IO(0x12, 93)` and `_IO(0x12, 94)`, both taking a pointer to an int.
const BLKROSET: Op<libc::c_int> = Op::raw(opcode::none(0x12, 93));
const BLKROGET: Op<libc::c_int> = Op::raw(opcode::none(0x12, 94));

fn check(fd: BorrowedFd) -> Result<()> {
    let st = rustix::fs::fstat(fd)?;
    match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::BlockDevice => Ok(()),
        _ => Err(Errno::NOTBLK),
    }
}

/// Whether the kernel refuses writes to the device.
pub(crate) fn read_only(fd: BorrowedFd) -> Result<bool> {
    check(fd)?;
    let mut v = 0;
    call(fd, &BLKROGET, &mut v)?;
    Ok(v != 0)
}

/// Make the device read-only or writable (needs CAP_SYS_ADMIN).
pub(crate) fn set_read_only(fd: BorrowedFd, on: bool) -> Result<()> {
    check(fd)?;
    let mut v = libc::c_int::from(on);
    call(fd, &BLKROSET, &mut v).map(drop)
}
