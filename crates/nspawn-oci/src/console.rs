//! The console socket protocol of runc's callers: connect to the Unix
//! stream socket, send one message whose payload is "/dev/ptmx" and
//! whose SCM_RIGHTS carries the pty master. The caller follows the size
//! from then on; `process.consoleSize` is set first (`set_size`), or the
//! process could start on a pty of 0x0 (`stty size` fails on one).

use anyhow::{Context, Result};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// `process.consoleSize` (`{"height", "width"}`), if given.
pub fn size(process: &serde_json::Value) -> Option<(u16, u16)> {
    let s = &process["consoleSize"];
    let dim = |k: &str| s[k].as_u64().and_then(|n| u16::try_from(n).ok());
    Some((dim("height")?, dim("width")?))
}

/// Give the pty of `master` the size `(rows, columns)`.
pub fn set_size(master: &OwnedFd, (rows, cols): (u16, u16)) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

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
