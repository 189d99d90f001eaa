//! A disk image held for a start: the file opened and locked (the tree
//! lock of an image), read, and each file system reached through a loop
//! device of its own (`loopdev`). Per run of the container, `mount` makes
//! a detached mount of each (`fsopen(2)`/`fsmount(2)`): nothing of the
//! image is mounted on the host; the container process attaches them in
//! its own mount namespace, and they go with it.

use super::dissect::{self, Layout};
use super::loopdev::{self, Loop};
use super::probe::FsType;
use super::table::Designator;
use super::verity::{HashArea, Plan};
use super::{verity, ImageSpec};
use crate::error::{Context, Error, Result};
use crate::lock::Lock;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The image as a start holds it: its lock (and the descriptor the loop
/// devices were given), its layout, one loop device per file system.
pub struct Attached {
    /// The root's verity device and the loop device of its hash area.
    verity: Option<(super::dm::Verity, Loop)>,
    /// The loop devices, in the layout's order; dropped before the lock.
    loops: Vec<Loop>,
    pub layout: Layout,
    /// Whether the root is read-only whatever the options (its flag, or a
    /// file system such as squashfs).
    pub root_read_only: bool,
    /// The image's path, for messages.
    path: String,
    _lock: Lock,
}

/// Open, lock and read the image, and attach its file systems. `read_only`:
/// nothing of it may be written (`--read-only`, `--ephemeral`,
/// `--volatile`), so the lock is shared and every device read-only.
pub fn attach(
    spec: &ImageSpec,
    read_only: bool,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<Attached> {
    let path = &spec.path;
    let shown = path.display();
    let mut flags = OFlags::CLOEXEC | OFlags::NOCTTY;
    flags |= if read_only {
        OFlags::RDONLY
    } else {
        OFlags::RDWR
    };
    let st = rustix::fs::stat(path).ctx(|| format!("cannot open image {shown}"))?;
    let block = FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice;
    if block {
        // O_EXCL on a block device: refused while it is mounted or claimed.
        flags |= OFlags::EXCL;
    } else if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::invalid(format!(
            "{shown} is neither a regular file nor a block device"
        )));
    }
    let open = || match rustix::fs::open(path, flags, Mode::empty()) {
        Err(rustix::io::Errno::BUSY) if block => {
            Err(Error::invalid(format!("Block device {shown} is busy.")))
        }
        r => r.ctx(|| format!("cannot open image {shown}")),
    };
    // As the tree's lock: a killed runner's container, which shares it,
    // is waited for while it dies.
    let busy = format!("Disk image {shown} is currently busy.");
    let lock = crate::lock::lock_waiting(path, &open, !read_only, &busy, interrupted)?;
    let mut file = std::fs::File::from(
        lock.fd()
            .try_clone_to_owned()
            .ctx(|| format!("cannot open image {shown}"))?,
    );
    let size = rustix::fs::seek(&file, rustix::fs::SeekFrom::End(0))
        .ctx(|| format!("cannot get the size of {shown}"))?;
    let layout = dissect::dissect(&file, size)
        .map_err(|e| Error::invalid(format!("cannot use image {shown}: {e}")))?;
    let plan = verity::plan(spec, &layout, &mut file).map_err(Error::invalid)?;
    let name = path.to_string_lossy();
    let loops = layout
        .parts
        .iter()
        .map(|p| {
            let verified = plan.is_some() && p.designator == Designator::Root;
            let ro = read_only || p.read_only || verified;
            loopdev::attach(lock.fd(), p.offset, p.size, ro, &name)
        })
        .collect::<Result<Vec<_>>>()?;
    let verity = match &plan {
        Some(plan) => Some(verify_root(plan, &loops[0], lock.fd(), &name)?),
        None => None,
    };
    Ok(Attached {
        root_read_only: layout.root().read_only || verity.is_some(),
        verity,
        loops,
        layout,
        path: path.display().to_string(),
        _lock: lock,
    })
}

/// One run's detached mounts of the image's file systems, root first.
pub struct Mounted {
    pub root: OwnedFd,
    pub parts: Vec<(Designator, OwnedFd)>,
}

impl Attached {
    /// Mount every file system of the image, detached, for one run.
    pub fn mount(&self, read_only: bool) -> Result<Mounted> {
        let mut all = self
            .layout
            .parts
            .iter()
            .zip(&self.loops)
            .enumerate()
            .map(|(i, (p, l))| {
                let (src, ro) = match &self.verity {
                    Some((v, _)) if i == 0 => (v.path(), true),
                    _ => (l.path(), read_only || p.read_only),
                };
                fs_mount(&src, p.fstype, p.designator, ro)
                    .inspect(|fd| {
                        if p.grow && !ro {
                            let what = format!("{} of {}", p.describe(), self.path);
                            // As the reference, a file system that cannot
                            // grow (no CAP_SYS_RESOURCE, which the kernel
                            // asks for) runs at its size; we say so.
                            if let Err(e) = super::growfs::grow(fd.as_fd(), p.fstype, p.size, &what)
                            {
                                eprintln!("nspawn: {e}; it keeps its size");
                            }
                        }
                    })
                    .map(|fd| (p.designator, fd))
                    .map_err(|e| match e {
                        Error::Os { what, errno } => Error::Os {
                            what: format!(
                                "cannot mount {} of {} ({what})",
                                p.describe(),
                                self.path
                            ),
                            errno,
                        },
                        e => e,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let (_, root) = all.remove(0);
        Ok(Mounted { root, parts: all })
    }

    /// The loop devices, as `/dev/loopN`, in the layout's order.
    pub fn devices(&self) -> Vec<String> {
        self.loops.iter().map(Loop::path).collect()
    }
}

/// The root's verity device over its loop device `data`, with the hash
/// area on a loop device of its own (a range of `image`, or a file).
fn verify_root(
    plan: &Plan,
    data: &Loop,
    image: BorrowedFd,
    name: &str,
) -> Result<(super::dm::Verity, Loop)> {
    let hash = match &plan.hash {
        HashArea::Partition { offset, size } => loopdev::attach(image, *offset, *size, true, name)?,
        HashArea::File(p) => {
            let f = std::fs::File::open(p).ctx(|| format!("cannot open {}", p.display()))?;
            let len = f
                .metadata()
                .ctx(|| format!("cannot get the size of {}", p.display()))?
                .len();
            loopdev::attach(f.as_fd(), 0, len, true, &p.to_string_lossy())?
        }
    };
    let device = super::dm::create_verity(
        &super::dm::name_for(std::process::id()),
        &plan.params,
        dev_number(data)?,
        dev_number(&hash)?,
        &plan.root_hash,
        plan.signature.as_deref(),
    )?;
    Ok((device, hash))
}

/// A loop device's `major:minor`.
fn dev_number(l: &Loop) -> Result<(u32, u32)> {
    let path = l.path();
    let st = rustix::fs::stat(path.as_str()).ctx(|| format!("cannot stat {path}"))?;
    Ok((rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)))
}

/// A detached mount of the file system on the block device `src`.
fn fs_mount(src: &str, fs: FsType, d: Designator, read_only: bool) -> Result<OwnedFd> {
    let ctx = rustix::mount::fsopen(fs.name(), FsOpenFlags::FSOPEN_CLOEXEC)
        .ctx(|| format!("{} on {src}: fsopen", fs.name()))?;
    let fail = |e: rustix::io::Errno, step: &str| Error::Os {
        what: format!(
            "{} on {src}: {step}{}",
            fs.name(),
            kernel_message(ctx.as_fd())
        ),
        errno: nix::errno::Errno::from_raw(e.raw_os_error()),
    };
    rustix::mount::fsconfig_set_string(&ctx, "source", src).map_err(|e| fail(e, "source"))?;
    if read_only {
        rustix::mount::fsconfig_set_flag(&ctx, "ro").map_err(|e| fail(e, "ro"))?;
    }
    let mut attrs = MountAttrFlags::empty();
    if matches!(d, Designator::Esp | Designator::Xbootldr) {
        // Boot partitions hold no programs or devices for the container;
        // their FAT has no owners, so only root may read them.
        if fs == FsType::Vfat {
            rustix::mount::fsconfig_set_string(&ctx, "umask", "0077")
                .map_err(|e| fail(e, "umask"))?;
        }
        attrs |= MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    }
    if read_only {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    rustix::mount::fsconfig_create(&ctx).map_err(|e| fail(e, "create"))?;
    rustix::mount::fsmount(&ctx, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| fail(e, "fsmount"))
}

/// The first message the file system left in its context's log (the
/// kernel's reason, as `mount(8)` prints it), as ": ..." or nothing.
fn kernel_message(ctx: BorrowedFd) -> String {
    let mut buf = [0u8; 256];
    match rustix::io::read(ctx, &mut buf) {
        Ok(n) if n > 2 => format!(
            ": {}",
            String::from_utf8_lossy(&buf[2..n]).trim_end_matches('\n')
        ),
        _ => String::new(),
    }
}
