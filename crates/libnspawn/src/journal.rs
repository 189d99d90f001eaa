//! `--link-journal=`: make the guest's journal readable on the host under
//! `/var/log/journal/<machine-id>` (so `journalctl -D` there works), either
//! by keeping it in the host's directory and binding that into the guest
//! (`host`), or by keeping it in the tree and linking to it from the host
//! (`guest`). `auto` binds the host directory when it already exists.

use crate::error::{Context, Error, Result};
use crate::inroot;
use crate::mount::bind_fd;
use crate::mount::spec::LinkJournal;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

const HOST_DIR: &str = "/var/log/journal";

/// Whether the host's side needs work for `mode` (done by the runner when
/// the container has a user namespace: its root may not write the host's
/// `/var/log/journal`).
pub fn has_host_side(mode: LinkJournal) -> bool {
    matches!(mode, LinkJournal::Host { .. } | LinkJournal::Guest { .. })
}

/// The host's side alone: the host directory (`host`), owned by `root`
/// (the container's root on the host) so the guest's journald may write
/// it, or the link to the guest's (`guest`).
pub fn setup_host(
    directory: &Path,
    machine_id: &str,
    mode: LinkJournal,
    ephemeral: bool,
    root: u32,
) -> Result<()> {
    let host = Path::new(HOST_DIR).join(machine_id);
    let result = match mode {
        LinkJournal::Host { .. } => std::fs::create_dir_all(&host)
            .ctx(|| format!("cannot create {}", host.display()))
            .and_then(|_| {
                std::os::unix::fs::chown(&host, Some(root), Some(root))
                    .ctx(|| format!("cannot hand {} to the container", host.display()))
            }),
        LinkJournal::Guest { .. } if !ephemeral => link_host(directory, &host, machine_id),
        _ => Ok(()),
    };
    tolerate(result, mode)
}

/// Both sides, from inside the container process; `host_done`: the
/// runner made the host's side already (user namespace).
pub fn setup(
    root: BorrowedFd,
    directory: &Path,
    machine_id: &str,
    mode: LinkJournal,
    ephemeral: bool,
    host_done: bool,
) -> Result<()> {
    let host = Path::new(HOST_DIR).join(machine_id);
    let inside = format!("/var/log/journal/{machine_id}");
    let result = match mode {
        LinkJournal::No => return Ok(()),
        LinkJournal::Auto => {
            if !host.is_dir() {
                return Ok(());
            }
            bind_host(root, &host, &inside)
        }
        LinkJournal::Host { .. } => {
            if !host_done {
                std::fs::create_dir_all(&host)
                    .ctx(|| format!("cannot create {}", host.display()))?;
            }
            bind_host(root, &host, &inside)
        }
        // A throw-away tree's journal cannot be linked to from the host.
        LinkJournal::Guest { .. } if ephemeral => Err(Error::invalid(
            "cannot link the journal of an ephemeral container to the host",
        )),
        LinkJournal::Guest { .. } => inroot::mkdir_p(root, &inside, 0o755).and_then(|_| {
            if host_done {
                Ok(())
            } else {
                link_host(directory, &host, machine_id)
            }
        }),
    };
    tolerate(result, mode)
}

/// `try-host` and `try-guest` go on without the link.
fn tolerate(result: Result<()>, mode: LinkJournal) -> Result<()> {
    match (result, mode) {
        (Err(_), LinkJournal::Host { try_only: true } | LinkJournal::Guest { try_only: true }) => {
            Ok(())
        }
        (r, _) => r,
    }
}

fn bind_host(root: BorrowedFd, host: &Path, inside: &str) -> Result<()> {
    let src = nix::fcntl::open(
        host,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", host.display()))?;
    let t = inroot::mkdir_p(root, inside, 0o755)?;
    bind_fd(
        src.as_fd(),
        t.as_fd(),
        false,
        &format!("{} on {inside}", host.display()),
    )
}

/// The host's `/var/log/journal/ID`, a link to the guest's directory.
fn link_host(directory: &Path, host: &Path, machine_id: &str) -> Result<()> {
    let target = directory.join(format!("var/log/journal/{machine_id}"));
    match std::fs::read_link(host) {
        Ok(t) if t == target => return Ok(()),
        Ok(_) => std::fs::remove_file(host).ctx(|| format!("cannot replace {}", host.display()))?,
        Err(_) if host.exists() => {
            return Err(Error::invalid(format!(
                "{} already exists and is not a link to the guest's journal",
                host.display()
            )))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(HOST_DIR).ctx(|| format!("cannot create {HOST_DIR}"))?;
    std::os::unix::fs::symlink(&target, host)
        .ctx(|| format!("cannot link {} to {}", host.display(), target.display()))
}
