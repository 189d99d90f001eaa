//! `/etc/resolv.conf` and `/etc/localtime` of the container, per
//! `--resolv-conf=` and `--timezone=`. Writes go through descriptors
//! resolved inside the tree, so a symlink planted there (to a host path)
//! resolves inside the tree too.

use super::{bind_fd, remount};
use crate::error::{Context, Result};
use crate::inroot;
use crate::mount::spec::{ResolvConf, ResolvSource, Timezone};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use std::os::fd::{AsFd, BorrowedFd};

/// Bind a host file read-only over `dest` in the tree; a missing `dest` is
/// created unless the tree must stay untouched (`create` false).
fn bind_host_file(root: BorrowedFd, host: &str, dest: &str, create: bool) -> Result<()> {
    let src = nix::fcntl::open(
        host,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open {host}"))?;
    let t = if create {
        inroot::touch(root, dest, 0o644)?
    } else {
        inroot::open(root, dest, OFlag::O_PATH).ctx(|| format!("cannot open {dest}"))?
    };
    bind_fd(src.as_fd(), t.as_fd(), false, &format!("{host} on {dest}"))?;
    remount(
        root,
        dest,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
}

fn unlink(root: BorrowedFd, path: &str) -> Result<()> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = match inroot::open_dir(root, parent) {
        Ok(d) => d,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("cannot open {parent}")),
    };
    match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("cannot remove {path} in the container tree")),
    }
}

/// `auto` is best effort (a read-only tree without the file is left alone);
/// an explicit mode that cannot be done is an error.
pub fn setup_resolv_conf(
    root: BorrowedFd,
    mode: ResolvConf,
    private_network: bool,
    read_only: bool,
) -> Result<()> {
    let r = resolv_conf(root, mode, private_network, read_only);
    if mode == ResolvConf::Auto {
        Ok(())
    } else {
        r
    }
}

fn resolv_conf(
    root: BorrowedFd,
    mode: ResolvConf,
    private_network: bool,
    read_only: bool,
) -> Result<()> {
    let mode = match mode {
        // The reference's choice without systemd-resolved on the host.
        ResolvConf::Auto if private_network => ResolvConf::Off,
        ResolvConf::Auto if read_only => ResolvConf::Bind(ResolvSource::Host),
        ResolvConf::Auto => ResolvConf::Copy {
            from: ResolvSource::Host,
            replace: false,
        },
        m => m,
    };
    const DEST: &str = "/etc/resolv.conf";
    match mode {
        ResolvConf::Off | ResolvConf::Auto => Ok(()),
        ResolvConf::Delete => unlink(root, DEST),
        ResolvConf::Bind(src) => match std::fs::metadata(src.path()) {
            Ok(_) => bind_host_file(root, src.path(), DEST, !read_only),
            Err(_) => Ok(()),
        },
        ResolvConf::Copy { from, replace } => {
            let Ok(data) = std::fs::read(from.path()) else {
                return Ok(());
            };
            if inroot::open_dir(root, "/etc").is_err() {
                return Ok(());
            }
            if replace {
                unlink(root, DEST)?;
            }
            copy_into(root, DEST, &data)
        }
    }
}

/// Write a file in the tree, following a symlink at `path` inside the tree
/// (as a copy inside a chroot would).
fn copy_into(root: BorrowedFd, path: &str, data: &[u8]) -> Result<()> {
    // The same as at the last start, as a rule: left alone, since
    // truncating and writing it again cost a quarter of a millisecond
    // (the file system's journal), a twentieth of a whole start.
    if inroot::read_file(root, path).ok().flatten().as_deref() == Some(data) {
        return Ok(());
    }
    let fd = inroot::open(
        root,
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOCTTY,
    )
    .ctx(|| format!("cannot write {path} in the container tree"))?;
    inroot::write_all(fd.as_fd(), data).ctx(|| format!("cannot write {path} in the container tree"))
}

/// The host's time zone name, from its `/etc/localtime` link.
fn host_zone() -> Option<String> {
    let target = std::fs::read_link("/etc/localtime").ok()?;
    let t = target.to_str()?;
    t.split_once("zoneinfo/").map(|(_, z)| z.to_string())
}

pub fn setup_timezone(root: BorrowedFd, mode: Timezone, read_only: bool) -> Result<()> {
    let r = timezone(root, mode, read_only);
    if mode == Timezone::Auto {
        Ok(())
    } else {
        r
    }
}

fn timezone(root: BorrowedFd, mode: Timezone, read_only: bool) -> Result<()> {
    const DEST: &str = "/etc/localtime";
    let zone = host_zone();
    let zone_in_tree = zone.as_ref().is_some_and(|z| {
        inroot::open(root, &format!("/usr/share/zoneinfo/{z}"), OFlag::O_PATH).is_ok()
    });
    let mode = match mode {
        Timezone::Auto if read_only => Timezone::Bind,
        Timezone::Auto if zone_in_tree => Timezone::Symlink,
        Timezone::Auto => Timezone::Bind,
        // As the reference: no zone name on the host, nothing to link to;
        // a zone the tree does not have, a link that would dangle: bind
        // the host's file instead.
        Timezone::Symlink if zone.is_none() => Timezone::Off,
        Timezone::Symlink if !zone_in_tree => Timezone::Bind,
        m => m,
    };
    if inroot::open_dir(root, "/etc").is_err() {
        return Ok(());
    }
    match mode {
        Timezone::Off | Timezone::Auto => Ok(()),
        Timezone::Delete => unlink(root, DEST),
        Timezone::Bind => match std::fs::metadata(DEST) {
            Ok(_) => bind_host_file(root, DEST, DEST, !read_only),
            Err(_) => Ok(()),
        },
        Timezone::Copy => {
            let Ok(data) = std::fs::read(DEST) else {
                return Ok(());
            };
            unlink(root, DEST)?;
            inroot::write_file(root, DEST, &data, 0o644)
        }
        Timezone::Symlink => {
            let Some(zone) = zone else {
                return Ok(());
            };
            let target = format!("../usr/share/zoneinfo/{zone}");
            let etc = inroot::open_dir(root, "/etc").ctx(|| "cannot open /etc".into())?;
            // Already so since the last start, as a rule: left alone.
            if nix::fcntl::readlinkat(&etc, "localtime").is_ok_and(|t| t == target.as_str()) {
                return Ok(());
            }
            unlink(root, DEST)?;
            nix::unistd::symlinkat(target.as_str(), &etc, "localtime")
                .ctx(|| "cannot link /etc/localtime".into())
        }
    }
}
