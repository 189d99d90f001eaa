//! What becomes the container's `/`: the tree itself, or a throw-away
//! layer over it (`--ephemeral`, `--volatile=`). Everything here happens in
//! the container's private mount namespace, over the tree's own path: the
//! host never sees these mounts, and they vanish with the namespace, so a
//! runner killed with SIGKILL leaves no upper layer or copy behind.

use super::mount_on;
use crate::error::{Context, Error, Result};
use crate::inroot;
use crate::mount::spec::{FsSettings, Volatile};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

fn open_path(p: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", p.display()))
}

/// A tmpfs over `directory` with `flags` and `data`; returns a handle to
/// it (for *at() calls).
fn tmpfs_over(directory: &Path, flags: MsFlags, data: &str) -> Result<OwnedFd> {
    mount(Some("tmpfs"), directory, Some("tmpfs"), flags, Some(data))
        .ctx(|| format!("cannot mount a tmpfs over {}", directory.display()))?;
    open_path(directory)
}

/// Nothing we mount may propagate back to the host, and nothing the host
/// mounts later may show up inside.
fn make_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "cannot make the mount namespace private".into())
}

/// Under a user namespace the container's root is not the host's: it may
/// not search directories the host keeps to itself, such as a 0700
/// `/var/lib/machines` above the tree. Called while the container process
/// still has the host's uid 0 (its id maps written, before it becomes root
/// of its namespace): takes a detached copy of the tree and covers the
/// highest such ancestor with a tmpfs owned by the namespace's root, in the
/// container's own mount namespace. `Reach::finish`, as root of the
/// namespace, makes the path again below it and attaches the copy there,
/// so the tree's path resolves as before. Nothing of this is seen outside,
/// and it goes with the host's root at `pivot_root`.
pub fn cover_unsearchable(directory: &Path) -> Result<Option<Reach>> {
    let ancestors: Vec<&Path> = directory.ancestors().skip(1).collect();
    let blocked = ancestors.into_iter().rev().find(|a| {
        *a != Path::new("/") && nix::sys::stat::stat(*a).is_ok_and(|st| st.st_mode & 0o001 == 0)
    });
    let Some(top) = blocked else {
        return Ok(None);
    };
    make_private()?;
    let tree = crate::sys::open_tree_clone(directory)
        .ctx(|| format!("cannot take a copy of {}", directory.display()))?;
    mount(
        Some("tmpfs"),
        top,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,uid=0,gid=0"),
    )
    .ctx(|| format!("cannot cover {}", top.display()))?;
    Ok(Some(Reach { tree }))
}

/// The tree's copy, to attach at its path once that resolves again.
pub struct Reach {
    tree: OwnedFd,
}

impl Reach {
    pub fn finish(self, directory: &Path) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(directory)
            .ctx(|| format!("cannot make {} again", directory.display()))?;
        crate::sys::move_mount_to(self.tree.as_fd(), directory)
            .ctx(|| format!("cannot attach the copy of {}", directory.display()))
    }
}

/// Stack the container's root over `directory` as the settings ask, then
/// bind it on itself; returns a handle to the result. `idmapped`: a
/// detached idmapped mount of the tree (`--private-users-ownership=map`),
/// attached over it first, so everything else stacks on the mapped view.
/// `image`: a disk image's detached mounts, its root attached there and
/// its other partitions inside it (each under its own overlay with
/// `--ephemeral`; before `--volatile=yes` takes `/usr` from them).
pub fn prepare(
    directory: &Path,
    fs: &FsSettings,
    idmapped: Option<OwnedFd>,
    image: Option<&crate::disk::attach::Mounted>,
) -> Result<OwnedFd> {
    make_private()?;
    if let Some(tree) = idmapped {
        crate::sys::move_mount_to(tree.as_fd(), directory).ctx(|| {
            format!(
                "cannot attach the idmapped mount of {}",
                directory.display()
            )
        })?;
    }
    if let Some(i) = image {
        crate::sys::move_mount_to(i.root.as_fd(), directory)
            .ctx(|| format!("cannot attach the image's root on {}", directory.display()))?;
    }
    let overlay = fs.ephemeral || fs.volatile == Volatile::Overlay;
    if overlay {
        overlay_root(directory)?;
    }
    if let Some(i) = image {
        super::image::attach_parts(&open_path(directory)?, &i.parts, overlay)?;
    }
    if fs.volatile == Volatile::Yes {
        volatile_root(directory)?;
    }
    mount(
        Some(directory),
        directory,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("cannot bind {} on itself", directory.display()))?;
    let root = open_path(directory)?;
    if fs.volatile == Volatile::State {
        make_read_only(root.as_fd())?;
        let var = inroot::open_dir(root.as_fd(), "/var").ctx(|| "cannot open /var".into())?;
        // As the reference's (TMPFS_LIMITS_VOLATILE_STATE): device nodes
        // and set-uid programs work in /var as they did on disk, and it may
        // hold a quarter of the memory.
        mount_on(
            Some("tmpfs"),
            var.as_fd(),
            Some("tmpfs"),
            MsFlags::MS_STRICTATIME,
            Some("mode=0755,size=25%,nr_inodes=1m"),
            "a tmpfs on /var",
        )?;
    }
    Ok(root)
}

/// The tree as the lower layer of an overlay whose upper layer lives in a
/// tmpfs: the start costs the same for any tree size and file system, and
/// the tree is never written.
fn overlay_root(directory: &Path) -> Result<()> {
    let lower = open_path(directory)?;
    let tmp = tmpfs_over(
        directory,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=0755",
    )?;
    for d in ["upper", "work"] {
        nix::sys::stat::mkdirat(&tmp, d, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("cannot create the overlay's {d}"))?;
    }
    let t = inroot::proc_fd(tmp.as_fd());
    let opts = format!(
        "lowerdir={},upperdir={t}/upper,workdir={t}/work",
        inroot::proc_fd(lower.as_fd())
    );
    mount(
        Some("overlay"),
        directory,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .ctx(|| format!("cannot mount an overlay over {}", directory.display()))
}

/// An overlay over the directory `path` (not `/`: a name is looked up, so
/// the mount just made on it is what is found next) of `root`, its upper
/// layer in a tmpfs of its own.
pub(super) fn overlay_at(root: BorrowedFd, path: &str) -> Result<()> {
    let lower = inroot::open_dir(root, path).ctx(|| format!("cannot open {path}"))?;
    mount_on(
        Some("tmpfs"),
        lower.as_fd(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
        &format!("a tmpfs over {path}"),
    )?;
    let tmp = inroot::open_dir(root, path).ctx(|| format!("cannot open {path}"))?;
    for d in ["upper", "work"] {
        nix::sys::stat::mkdirat(&tmp, d, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("cannot create the overlay's {d}"))?;
    }
    let t = inroot::proc_fd(tmp.as_fd());
    let opts = format!(
        "lowerdir={},upperdir={t}/upper,workdir={t}/work",
        inroot::proc_fd(lower.as_fd())
    );
    mount_on(
        Some("overlay"),
        tmp.as_fd(),
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
        &format!("an overlay over {path}"),
    )
}

/// `--volatile=yes`: an empty tmpfs root with only the tree's `/usr`
/// (read-only) and the top-level links into it, which needs a tree with a
/// merged `/usr`.
fn volatile_root(directory: &Path) -> Result<()> {
    let tree = open_path(directory)?;
    let merged = nix::fcntl::readlinkat(&tree, "bin")
        .map(|t| matches!(t.to_str(), Some("usr/bin" | "/usr/bin")))
        .unwrap_or(false);
    if !merged || inroot::open_dir(tree.as_fd(), "/usr").is_err() {
        return Err(Error::invalid(format!(
            "--volatile=yes needs a tree with a merged /usr (/bin -> usr/bin); {} has none",
            directory.display()
        )));
    }
    let usr = inroot::open_dir(tree.as_fd(), "/usr").ctx(|| "cannot open /usr".into())?;
    let links: Vec<(String, std::ffi::OsString)> = std::fs::read_dir(directory)
        .ctx(|| format!("cannot read {}", directory.display()))?
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let t = target.to_str()?;
            (t.starts_with("usr/") || t.starts_with("/usr/")).then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    target.into_os_string(),
                )
            })
        })
        .collect();
    // As the reference's root for --volatile=yes (TMPFS_LIMITS_ROOTFS): a
    // root file system, so device nodes and set-uid programs work.
    let root = tmpfs_over(
        directory,
        MsFlags::MS_STRICTATIME,
        "mode=0755,size=25%,nr_inodes=1m",
    )?;
    for (name, target) in &links {
        nix::unistd::symlinkat(target.as_os_str(), &root, name.as_str())
            .ctx(|| format!("cannot link /{name}"))?;
    }
    for (d, mode) in [
        ("usr", 0o755),
        ("etc", 0o755),
        ("var", 0o755),
        ("root", 0o700),
    ] {
        nix::sys::stat::mkdirat(&root, d, Mode::from_bits_truncate(mode))
            .ctx(|| format!("cannot create /{d}"))?;
    }
    let target = inroot::open_dir(root.as_fd(), "/usr").ctx(|| "cannot open /usr".into())?;
    mount_on(
        Some(inroot::proc_fd(usr.as_fd()).as_str()),
        target.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        "the tree's /usr",
    )?;
    let top = inroot::open_dir(root.as_fd(), "/usr").ctx(|| "cannot open /usr".into())?;
    mount_on(
        None,
        top.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
        "/usr read-only",
    )
}

/// Remount the root bind mount read-only; the API file systems mounted on
/// it keep their own flags (a non-recursive remount).
pub fn make_read_only(root: BorrowedFd) -> Result<()> {
    mount_on(
        None,
        root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
        "the root read-only",
    )
}
