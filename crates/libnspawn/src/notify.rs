//! sd_notify(3) to whoever started us (`$NOTIFY_SOCKET`, set by a service
//! manager for `Type=notify` units), and the socket the guest notifies us on.

use crate::error::{Context, Result};
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Send one notification; silently nothing when not run as a service.
pub fn notify_caller(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy();
    let addr = match path.strip_prefix('@') {
        Some(abs) => SocketAddr::from_abstract_name(abs.as_bytes()),
        None => SocketAddr::from_pathname(path.as_ref()),
    };
    let (Ok(addr), Ok(sock)) = (addr, UnixDatagram::unbound()) else {
        return;
    };
    let _ = sock.send_to_addr(state.as_bytes(), &addr);
}

/// An unbound datagram socket; the container process binds it at
/// `/run/host/notify` in its tree, and the runner reads what the guest sends
/// on the same socket.
pub fn guest_socket() -> Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .ctx(|| "cannot create the notify socket".into())
}

/// Read and return pending guest notifications (newline-separated states).
pub fn drain_guest(sock: &OwnedFd) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = nix::sys::socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(sock),
        &mut buf,
        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    ) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}
