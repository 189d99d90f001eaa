//! dm-verity through the kernel's device mapper (linux/dm-ioctl.h): one
//! read-only `verity` target over the root's loop device, checked against
//! the hash area's loop device and the root hash. Three requests make it
//! (`DM_DEV_CREATE`, `DM_TABLE_LOAD`, `DM_DEV_SUSPEND` to resume). As soon
//! as we hold it open, `DM_DEV_REMOVE` with `DM_DEFERRED_REMOVE` hands it
//! to the kernel, which removes it when the last opener goes (our
//! descriptor, then the mounts in the container's namespace), as the loop
//! devices' autoclear: nothing of it outlives the runner and its
//! container, however they end. Only a runner killed within those few
//! requests leaves a device, named after its PID, which a later runner of
//! the same PID removes before making its own.
//!
//! By hand rather than a crate: `devicemapper` (Stratis) generates its
//! bindings with bindgen at build time (libclang), and libcryptsetup is a
//! C library; the two structures are fixed kernel ABI, and the requests
//! go through `image::ioctl` like the loop devices'.

use super::hashtree::Params;
use crate::error::{Context, Error, Result};
use crate::image::ioctl::{call, Op};
use rustix::fs::{Mode, OFlags};
use std::os::fd::OwnedFd;

const DM_NAME_LEN: usize = 128;
const DM_UUID_LEN: usize = 129;
const DM_MAX_TYPE_NAME: usize = 16;

const DM_READONLY_FLAG: u32 = 1 << 0;
const DM_DEFERRED_REMOVE: u32 = 1 << 17;

/// The interface version we speak (4.x; the kernel takes any minor up to
/// its own).
const VERSION: [u32; 3] = [4, 0, 0];

const CONTROL: &str = "/dev/mapper/control";

#[repr(C)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; DM_NAME_LEN],
    uuid: [u8; DM_UUID_LEN],
    data: [u8; 7],
}

#[repr(C)]
struct TargetSpec {
    sector_start: u64,
    length: u64,
    status: i32,
    next: u32,
    target_type: [u8; DM_MAX_TYPE_NAME],
}

const _: () = assert!(std::mem::size_of::<DmIoctl>() == 312);
const _: () = assert!(std::mem::size_of::<TargetSpec>() == 40);

/// Room for one target and its parameters after the header.
const PAYLOAD: usize = 1024;

/// A request: the header, then (for a table) the target and its
/// parameters. The kernel reads `data_size` bytes from the pointer.
#[repr(C)]
struct Request {
    header: DmIoctl,
    payload: [u8; PAYLOAD],
}

/// `_IOWR(0xfd, nr, struct dm_ioctl)`: the size encoded is the header's.
const fn op(nr: u8) -> Op<Request> {
    Op::raw(rustix::ioctl::opcode::read_write::<DmIoctl>(0xfd, nr))
}

const DM_DEV_CREATE: Op<Request> = op(3);
const DM_DEV_REMOVE: Op<Request> = op(4);
const DM_DEV_SUSPEND: Op<Request> = op(6);
const DM_TABLE_LOAD: Op<Request> = op(9);

impl Request {
    fn new(name: &str, flags: u32) -> Box<Request> {
        let mut name_buf = [0u8; DM_NAME_LEN];
        let n = name.len().min(DM_NAME_LEN - 1);
        name_buf[..n].copy_from_slice(&name.as_bytes()[..n]);
        Box::new(Request {
            header: DmIoctl {
                version: VERSION,
                data_size: std::mem::size_of::<Request>() as u32,
                data_start: std::mem::size_of::<DmIoctl>() as u32,
                target_count: 0,
                open_count: 0,
                flags,
                event_nr: 0,
                padding: 0,
                dev: 0,
                name: name_buf,
                uuid: [0; DM_UUID_LEN],
                data: [0; 7],
            },
            payload: [0; PAYLOAD],
        })
    }

    /// One target of `sectors` sectors from 0, of `kind`, with `params`.
    fn with_target(mut self: Box<Self>, sectors: u64, kind: &str, params: &str) -> Box<Self> {
        let spec_len = std::mem::size_of::<TargetSpec>();
        // The parameters end with a NUL; the next spec would start at an
        // 8-byte boundary.
        let next = (spec_len + params.len() + 1).div_ceil(8) * 8;
        assert!(next <= PAYLOAD, "verity parameters fit the request");
        let mut target_type = [0u8; DM_MAX_TYPE_NAME];
        target_type[..kind.len()].copy_from_slice(kind.as_bytes());
        let spec = TargetSpec {
            sector_start: 0,
            length: sectors,
            status: 0,
            next: next as u32,
            target_type,
        };
        // SAFETY: TargetSpec is plain data of `spec_len` bytes.
        let raw = unsafe {
            std::slice::from_raw_parts((&spec as *const TargetSpec).cast::<u8>(), spec_len)
        };
        self.payload[..spec_len].copy_from_slice(raw);
        self.payload[spec_len..spec_len + params.len()].copy_from_slice(params.as_bytes());
        self.header.target_count = 1;
        self.header.data_size = (std::mem::size_of::<DmIoctl>() + next) as u32;
        self
    }
}

/// The device-mapper name of this runner's verified root: the machine's
/// name is not ours yet when the image is attached (and device-mapper
/// names are host-wide).
pub fn name_for(pid: u32) -> String {
    format!("nspawn-{pid}-root-verity")
}

/// Whether the kernel offers the device mapper.
pub fn available() -> bool {
    std::path::Path::new(CONTROL).exists()
}

/// The `verity` target's parameters (the kernel's
/// Documentation/admin-guide/device-mapper/verity.rst): the data and hash
/// devices as `major:minor`, the hash tree after the superblock that
/// starts the hash device, and the key of a signature of the root hash in
/// our keyrings, if there is one.
pub fn verity_params(
    p: &Params,
    data: (u32, u32),
    hash: (u32, u32),
    root_hash: &[u8],
    sig_key: Option<&str>,
) -> String {
    let salt = if p.salt.is_empty() {
        "-".to_string()
    } else {
        hex(&p.salt)
    };
    let mut s = format!(
        "{} {}:{} {}:{} {} {} {} 1 {} {} {}",
        p.hash_type,
        data.0,
        data.1,
        hash.0,
        hash.1,
        p.data_block_size,
        p.hash_block_size,
        p.data_blocks,
        p.algorithm,
        hex(root_hash),
        salt
    );
    if let Some(k) = sig_key {
        s.push_str(&format!(" 2 root_hash_sig_key_desc {k}"));
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A device number as `DM_DEV_CREATE` returns it (the kernel's
/// `huge_encode_dev`): major and minor.
fn decode_dev(dev: u64) -> (u32, u32) {
    let major = ((dev & 0xfff00) >> 8) as u32;
    let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
    (major, minor)
}

/// An active verity device, held open; removed by the kernel once
/// neither this nor a mount holds it.
pub struct Verity {
    minor: u32,
    _fd: OwnedFd,
}

impl Verity {
    /// Its node, made by devtmpfs (`dm-MINOR`).
    pub fn path(&self) -> String {
        format!("/dev/dm-{}", self.minor)
    }
}

/// Create `name`: a read-only verity device of `p.data_blocks` data
/// blocks of `data` (a block device `major:minor`), checked against the
/// tree on `hash` and `root_hash`. A signature is put in our session
/// keyring for the table load and taken out after.
pub fn create_verity(
    name: &str,
    p: &Params,
    data: (u32, u32),
    hash: (u32, u32),
    root_hash: &[u8],
    signature: Option<&[u8]>,
) -> Result<Verity> {
    let control = rustix::fs::open(CONTROL, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| format!("cannot open {CONTROL}"))?;
    // A device a runner of our PID, killed, left behind.
    remove_deferred(name);
    let mut req = Request::new(name, 0);
    call(&control, &DM_DEV_CREATE, &mut req).ctx(|| format!("cannot create {name}"))?;
    let (_, minor) = decode_dev(req.header.dev);
    let undo = |e: Error| {
        remove_deferred(name);
        e
    };
    let key = signature
        .map(|sig| SigKey::add(root_hash, sig))
        .transpose()
        .map_err(undo)?;
    let params = verity_params(
        p,
        data,
        hash,
        root_hash,
        key.as_ref().map(|k| k.desc.as_str()),
    );
    let sectors = p.data_blocks * u64::from(p.data_block_size) / 512;
    let mut load = Request::new(name, DM_READONLY_FLAG).with_target(sectors, "verity", &params);
    call(&control, &DM_TABLE_LOAD, &mut load)
        .ctx(|| format!("cannot load the verity table of {name}"))
        .map_err(undo)?;
    drop(key);
    let mut resume = Request::new(name, 0);
    call(&control, &DM_DEV_SUSPEND, &mut resume)
        .ctx(|| format!("cannot activate {name}"))
        .map_err(undo)?;
    let path = format!("/dev/dm-{minor}");
    let mut tries = 0;
    let fd = loop {
        match rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            // devtmpfs makes the node a moment after the disk is added.
            Err(rustix::io::Errno::NOENT) if tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => break r.ctx(|| format!("cannot open {path}")).map_err(undo)?,
        }
    };
    // Ours and the mounts' from now on: the kernel removes it after us.
    remove_deferred(name);
    Ok(Verity { minor, _fd: fd })
}

/// Remove `name` now, or once its last opener goes; nothing if there is
/// no such device (or no device mapper).
pub fn remove_deferred(name: &str) {
    let Ok(control) = rustix::fs::open(CONTROL, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
    else {
        return;
    };
    let mut req = Request::new(name, DM_DEFERRED_REMOVE);
    let _ = call(&control, &DM_DEV_REMOVE, &mut req);
}

/// A signature of the root hash as a "user" key, which dm-verity looks up
/// by its description (`root_hash_sig_key_desc`) and checks against the
/// kernel's trusted keys. Unlinked when dropped.
struct SigKey {
    desc: String,
    id: i64,
}

const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
const KEYCTL_UNLINK: libc::c_long = 9;

impl SigKey {
    fn add(root_hash: &[u8], sig: &[u8]) -> Result<SigKey> {
        let desc = format!("nspawn-verity:{}", hex(root_hash));
        let c_desc = std::ffi::CString::new(desc.as_str()).expect("hex has no NUL");
        // SAFETY: add_key(2) reads the type and description strings and
        // `sig.len()` bytes of the payload; it returns a key id or -1.
        let id = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c_desc.as_ptr(),
                sig.as_ptr(),
                sig.len(),
                KEY_SPEC_SESSION_KEYRING,
            )
        };
        if id < 0 {
            return Err(Error::Os {
                what: "cannot add the root hash signature to the keyring".into(),
                errno: nix::errno::Errno::last(),
            });
        }
        Ok(SigKey { desc, id })
    }
}

impl Drop for SigKey {
    fn drop(&mut self) {
        // SAFETY: keyctl(2) with integer arguments.
        unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_UNLINK,
                self.id,
                KEY_SPEC_SESSION_KEYRING,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(salt: &[u8]) -> Params {
        Params {
            hash_type: 1,
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 3072,
            salt: salt.to_vec(),
        }
    }

    /// The table line the kernel documents (verity.rst's example shape),
    /// with the tree after the superblock and the salt in hex.
    #[test]
    fn verity_table_parameters() {
        let root = [0xabu8; 32];
        let p = verity_params(&params(&[1, 2, 0xfe]), (7, 3), (7, 4), &root, None);
        assert_eq!(
            p,
            format!(
                "1 7:3 7:4 4096 4096 3072 1 sha256 {} 0102fe",
                "ab".repeat(32)
            )
        );
        let p = verity_params(&params(&[]), (7, 3), (259, 1), &root, Some("k:1"));
        assert!(p.ends_with(" - 2 root_hash_sig_key_desc k:1"), "{p}");
        assert!(p.contains(" 7:3 259:1 "), "{p}");
    }

    #[test]
    fn device_numbers_as_the_kernel_encodes_them() {
        // huge_encode_dev(MKDEV(253, 0)) and MKDEV(259, 300).
        assert_eq!(decode_dev(253 << 8), (253, 0));
        let (major, minor) = (259u64, 300u64);
        let enc = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        assert_eq!(decode_dev(enc), (259, 300));
    }

    /// The request as the kernel walks it: the target right after the
    /// header, its parameters NUL-terminated after the spec, `next` and
    /// `data_size` covering them at 8-byte alignment.
    #[test]
    fn a_table_request_is_laid_out_as_the_kernel_reads_it() {
        let params = "1 7:3 7:4 4096 4096 3072 1 sha256 ab -";
        let r =
            Request::new(&name_for(42), DM_READONLY_FLAG).with_target(3072 * 8, "verity", params);
        assert_eq!(r.header.version, [4, 0, 0]);
        assert_eq!(r.header.data_start, 312);
        assert_eq!(r.header.target_count, 1);
        assert_eq!(r.header.flags, DM_READONLY_FLAG);
        assert_eq!(&r.header.name[..23], b"nspawn-42-root-verity\0\0");
        let spec_len = std::mem::size_of::<TargetSpec>();
        let next = (spec_len + params.len() + 1).div_ceil(8) * 8;
        assert_eq!(r.header.data_size as usize, 312 + next);
        let u64_at = |o: usize| u64::from_ne_bytes(r.payload[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_ne_bytes(r.payload[o..o + 4].try_into().unwrap());
        assert_eq!(u64_at(0), 0);
        assert_eq!(u64_at(8), 3072 * 8);
        assert_eq!(u32_at(20) as usize, next);
        assert_eq!(&r.payload[24..31], b"verity\0");
        assert_eq!(
            &r.payload[spec_len..spec_len + params.len()],
            params.as_bytes()
        );
        assert_eq!(r.payload[spec_len + params.len()], 0);
        // The request number: _IOWR(0xfd, 9, 312 bytes).
        assert_eq!(
            rustix::ioctl::opcode::read_write::<DmIoctl>(0xfd, 9),
            0xc138_fd09
        );
    }
}
