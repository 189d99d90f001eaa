//! Loop devices over a range of the image file, made with one
//! `LOOP_CONFIGURE` (linux/loop.h, Linux 5.8): backing file, offset, size
//! limit and flags in a single request, so no half-configured device is
//! ever visible. Every device has `LO_FLAGS_AUTOCLEAR`: the kernel detaches
//! it when its last opener goes — our descriptor, then the mounts of it in
//! the container's mount namespace — so a killed runner leaves nothing
//! attached once the namespace is gone.
//!
//! By hand rather than a crate: `loopdev` is unmaintained (last release
//! 2022, no `LOOP_CONFIGURE`) and `loopdev-3` generates its bindings with
//! bindgen at build time (libclang); the two structures are fixed kernel
//! ABI, and the requests go through `image::ioctl` like the others.

use crate::error::{Context, Error, Result};
use crate::image::ioctl::{call, Op};
use rustix::fs::{Mode, OFlags};
use rustix::ioctl::opcode;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;

#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// `LOOP_CONFIGURE` and `LOOP_CTL_GET_FREE` are `_IO` numbers with no size
/// encoded; the first takes a `struct loop_config *`, the second ignores
/// its argument.
const LOOP_CONFIGURE: Op<LoopConfig> = Op::raw(opcode::none(0x4C, 0x0A));
const LOOP_CTL_GET_FREE: Op<libc::c_int> = Op::raw(opcode::none(0x4C, 0x82));

/// An attached loop device, held open; see the module's note on its end.
pub struct Loop {
    /// Held, not used: it keeps the device until the mounts hold it.
    _fd: OwnedFd,
    number: u32,
}

impl Loop {
    pub fn path(&self) -> String {
        format!("/dev/loop{}", self.number)
    }
}

/// Attach `size` bytes at `offset` of the file `backing` (named `name` for
/// `losetup`'s sake) to a free loop device.
pub fn attach(
    backing: BorrowedFd,
    offset: u64,
    size: u64,
    read_only: bool,
    name: &str,
) -> Result<Loop> {
    let control = rustix::fs::open(
        "/dev/loop-control",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "cannot open /dev/loop-control".into())?;
    let mut flags = LO_FLAGS_AUTOCLEAR;
    if read_only {
        flags |= LO_FLAGS_READ_ONLY;
    }
    // Another process may take the device we were told is free before we
    // configure it (EBUSY); ask again.
    for _ in 0..64 {
        let mut unused = 0;
        let number = call(&control, &LOOP_CTL_GET_FREE, &mut unused)
            .ctx(|| "cannot get a free loop device".into())? as u32;
        let path = format!("/dev/loop{number}");
        // The device is only writable if configured through a descriptor
        // open for writing (loop_configure() in drivers/block/loop.c).
        let mode = if read_only {
            OFlags::RDONLY
        } else {
            OFlags::RDWR
        };
        let fd = match rustix::fs::open(path.as_str(), mode | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            // Made by GET_FREE a moment ago; devtmpfs has no node yet.
            Err(rustix::io::Errno::NOENT) => {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            Err(e) => return Err(e).ctx(|| format!("cannot open {path}")),
        };
        let mut cfg = config(backing, offset, size, flags, name);
        match call(&fd, &LOOP_CONFIGURE, &mut cfg) {
            Ok(_) => return hold(fd, number),
            Err(rustix::io::Errno::BUSY) => continue,
            Err(e) => return Err(e).ctx(|| format!("cannot set up {path} for {name}")),
        }
    }
    Err(Error::invalid(format!(
        "cannot set up a loop device for {name}: all taken while we tried"
    )))
}

/// Keep the configured device through a read-only descriptor: where the
/// kernel refuses to mount a block device that is open for writing
/// (CONFIG_BLK_DEV_WRITE_MOUNTED=n), ours must not be. The device stays
/// attached meanwhile: the writable descriptor is closed only after.
fn hold(configured: OwnedFd, number: u32) -> Result<Loop> {
    let path = format!("/dev/loop{number}");
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open {path}"))?;
    drop(configured);
    Ok(Loop { _fd: fd, number })
}

fn config(backing: BorrowedFd, offset: u64, size: u64, flags: u32, name: &str) -> LoopConfig {
    let mut file_name = [0u8; LO_NAME_SIZE];
    let n = name.len().min(LO_NAME_SIZE - 1);
    file_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset,
            sizelimit: size,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags,
            file_name,
            crypt_name: [0; LO_NAME_SIZE],
            encrypt_key: [0; 32],
            init: [0; 2],
        },
        reserved: [0; 8],
    }
}
