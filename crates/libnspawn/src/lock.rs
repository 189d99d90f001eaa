//! One runner per tree: `flock(2)` on the tree's directory itself. The lock
//! lives and dies with the runner's descriptor, so a runner killed with
//! SIGKILL leaves no lock file behind to clean up.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::OwnedFd;
use std::path::Path;

pub struct TreeLock(#[allow(dead_code)] Flock<OwnedFd>);

/// `shared`: runs that never write the tree (`--ephemeral`, `--read-only`,
/// `--volatile`) may share it with each other, not with a writer.
pub fn lock_tree(directory: &Path, shared: bool) -> Result<TreeLock> {
    let fd = nix::fcntl::open(
        directory,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cannot open {}", directory.display()))?;
    let how = if shared {
        FlockArg::LockSharedNonblock
    } else {
        FlockArg::LockExclusiveNonblock
    };
    match Flock::lock(fd, how) {
        Ok(l) => Ok(TreeLock(l)),
        Err((_, Errno::EWOULDBLOCK)) => Err(Error::invalid(format!(
            "Directory tree {} is currently busy.",
            directory.display()
        ))),
        Err((_, e)) => Err(e).ctx(|| format!("cannot lock {}", directory.display())),
    }
}
