//! The console socket protocol of runc's callers: connect to the Unix
//! stream socket, send one message whose payload is "/dev/ptmx" and
//! whose SCM_RIGHTS carries the pty master. The caller sets the size.

use anyhow::{Context, Result};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub fn send(socket_path: &Path, master: &OwnedFd) -> Result<()> {
    let what = || format!("cannot send the console to {}", socket_path.display());
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(what)?;
    let addr = UnixAddr::new(socket_path).with_context(what)?;
    connect(sock.as_raw_fd(), &addr).with_context(what)?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_context(what)?;
    Ok(())
}
