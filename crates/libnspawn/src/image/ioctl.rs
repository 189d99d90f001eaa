//! The one place the image store makes `ioctl(2)` calls that rustix has no
//! wrapper for (btrfs subvolumes and quota groups, a block device's
//! read-only flag). An `Op<T>` pairs a request number with the type the
//! kernel reads or writes through the argument pointer, so a call cannot
//! pass the wrong structure; `call` is the only unsafe code.
//!
//! Why by hand: no well-kept crate covers these. `btrfsutil`/`libbtrfsutil`
//! link libbtrfsutil (a C library whose -dev package Debian does not install
//! by default) and run bindgen at build time; `btrfs-uapi` also runs bindgen
//! (libclang) and needs a newer toolchain. The few structures we need are
//! fixed kernel ABI (linux/btrfs.h, linux/btrfs_tree.h, linux/fs.h).

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use std::marker::PhantomData;
use std::os::fd::AsFd;

/// A request whose argument is a pointer to a `T`.
pub(crate) struct Op<T> {
    opcode: Opcode,
    arg: PhantomData<fn(&mut T)>,
}

impl<T> Op<T> {
    /// `_IOW(group, nr, T)`: the kernel reads a `T`.
    pub(crate) const fn write(group: u8, nr: u8) -> Op<T> {
        Op::raw(rustix::ioctl::opcode::write::<T>(group, nr))
    }

    /// `_IOR(group, nr, T)`: the kernel writes a `T` (or, for some btrfs
    /// requests declared `_IOR`, reads one).
    pub(crate) const fn read(group: u8, nr: u8) -> Op<T> {
        Op::raw(rustix::ioctl::opcode::read::<T>(group, nr))
    }

    /// `_IOWR(group, nr, T)`: the kernel reads and writes back a `T`.
    pub(crate) const fn read_write(group: u8, nr: u8) -> Op<T> {
        Op::raw(rustix::ioctl::opcode::read_write::<T>(group, nr))
    }

    /// A request number with no size encoded (`_IO`) that still takes a
    /// pointer to a `T`, as the old block device requests do.
    pub(crate) const fn raw(opcode: Opcode) -> Op<T> {
        Op {
            opcode,
            arg: PhantomData,
        }
    }
}

struct Call<'a, T> {
    opcode: Opcode,
    arg: &'a mut T,
}

// SAFETY: the pointer handed to the kernel is a live `&mut T` for the whole
// call, and `T` is what the request reads or writes (the `Op<T>` constants
// are the kernel's definitions, with sizes checked at compile time where
// they are declared).
unsafe impl<T> Ioctl for Call<'_, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        (self.arg as *mut T).cast()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut core::ffi::c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Make the request `op` on `fd` with `arg`; the call's non-negative
/// return value (a few btrfs requests say something with it).
///
/// Callers make sure `fd` is what the request is for (a directory on
/// btrfs, a block device): request numbers are reused by device drivers.
pub(crate) fn call<T>(fd: impl AsFd, op: &Op<T>, arg: &mut T) -> rustix::io::Result<IoctlOutput> {
    // SAFETY: see `Call`: `arg` has the type `op` was declared with.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            Call {
                opcode: op.opcode,
                arg,
            },
        )
    }
}
