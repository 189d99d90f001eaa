//! The runner's control endpoint, named in the machine's record:
//! `/run/nspawn/control/NAME`, a SOCK_SEQPACKET socket in a directory only
//! root may enter (mode 0700). One request per connection:
//!
//! - `state`: answered with the machine's state (`running`).
//! - `terminate`: the runner answers `ok`, kills the container (SIGKILL to
//!   its PID 1, which ends its PID namespace) and cleans up as after any
//!   end. The connection stays open until then, so its end-of-file tells
//!   the caller that nothing of the machine is left.
//!
//! Peers must be root (SO_PEERCRED), and callers check that the socket's
//! owner is the runner the record names. A runner killed with SIGKILL
//! leaves the socket file; its reaper removes it, and so does whoever
//! finds the record stale.

use crate::error::{Context, Error, Result};
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DIR: &str = "/run/nspawn/control";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    State,
    Terminate,
}

pub struct Endpoint {
    fd: OwnedFd,
    path: PathBuf,
    id: (u64, u64),
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    nix::sys::stat::lstat(path)
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// Remove the socket at `path` if it is still the one with `id` (a newer
/// runner of the same name may have bound its own there meanwhile).
pub fn remove_if_same(path: &Path, id: (u64, u64)) {
    if file_id(path) == Some(id) {
        let _ = std::fs::remove_file(path);
    }
}

/// Remove the endpoint a stale record names (only ever below `DIR`).
pub fn remove_stale(path: &Path) {
    if path.parent() == Some(Path::new(DIR)) {
        let _ = std::fs::remove_file(path);
    }
}

/// Connections of `terminate` requests: closed once the machine is
/// cleaned up (`release_waiters`), not when the runner exits, which may be
/// later (its console output may still wait for a reader).
static WAITERS: std::sync::Mutex<Vec<OwnedFd>> = std::sync::Mutex::new(Vec::new());

/// Keep `conn` open until `release_waiters`.
pub fn hold_until_released(conn: OwnedFd) {
    if let Ok(mut w) = WAITERS.lock() {
        w.push(conn);
    }
}

/// Tell every waiting `terminate` that the machine is gone.
pub fn release_waiters() {
    if let Ok(mut w) = WAITERS.lock() {
        w.clear();
    }
}

fn seqpacket() -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "cannot create a socket".into())
}

impl Endpoint {
    /// Bind the endpoint of `machine`. The caller holds the machine's
    /// name (no other runner of it lives), so a socket found there is
    /// stale.
    pub fn bind(machine: &str) -> Result<Endpoint> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(DIR)
            .ctx(|| format!("cannot create {DIR}"))?;
        let path = Path::new(DIR).join(machine);
        let _ = std::fs::remove_file(&path);
        let fd = seqpacket()?;
        let addr = UnixAddr::new(&path).ctx(|| format!("bad socket path {}", path.display()))?;
        socket::bind(fd.as_raw_fd(), &addr).ctx(|| format!("cannot bind {}", path.display()))?;
        socket::listen(&fd, Backlog::new(8).expect("small backlog"))
            .ctx(|| format!("cannot listen on {}", path.display()))?;
        nix::fcntl::fcntl(&fd, nix::fcntl::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .ctx(|| "cannot make the socket non-blocking".into())?;
        let id = file_id(&path).ok_or_else(|| Error::invalid("the control socket vanished"))?;
        Ok(Endpoint { fd, path, id })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> (u64, u64) {
        self.id
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Take one waiting request: the connection and what it asks. Peers
    /// that are not root, or say nothing within a moment, are dropped.
    pub fn accept(&self) -> Option<(OwnedFd, Request)> {
        let raw = socket::accept4(self.fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC).ok()?;
        // SAFETY: accept4 returned a new descriptor that nothing else owns.
        let conn = unsafe { OwnedFd::from_raw_fd(raw) };
        let cred = socket::getsockopt(&conn, sockopt::PeerCredentials).ok()?;
        if cred.uid() != 0 {
            return None;
        }
        let timeout = nix::sys::time::TimeVal::new(0, 200_000);
        socket::setsockopt(&conn, sockopt::ReceiveTimeout, &timeout).ok()?;
        let mut buf = [0u8; 64];
        let n = nix::unistd::read(&conn, &mut buf).ok()?;
        let req = match &buf[..n] {
            b"state" => Request::State,
            b"terminate" => Request::Terminate,
            _ => return None,
        };
        Some((conn, req))
    }

    /// Remove the socket file (if it is still ours).
    pub fn remove(&self) {
        remove_if_same(&self.path, self.id);
    }
}

/// Answer a request.
pub fn reply(conn: &OwnedFd, text: &str) {
    let _ = nix::unistd::write(conn, text.as_bytes());
}

/// Connect to a machine's endpoint, making sure `runner` (the record's)
/// owns it, and send `request`.
fn connect(path: &Path, runner: i32, request: &str) -> Result<OwnedFd> {
    let fd = seqpacket()?;
    let addr = UnixAddr::new(path).ctx(|| format!("bad socket path {}", path.display()))?;
    socket::connect(fd.as_raw_fd(), &addr)
        .ctx(|| format!("cannot connect to {}", path.display()))?;
    let cred = socket::getsockopt(&fd, sockopt::PeerCredentials)
        .ctx(|| "cannot read the peer's credentials".into())?;
    if cred.pid() != runner || cred.uid() != 0 {
        return Err(Error::invalid(format!(
            "{} does not belong to the machine's runner",
            path.display()
        )));
    }
    nix::unistd::write(&fd, request.as_bytes()).ctx(|| "cannot send the request".into())?;
    Ok(fd)
}

fn read_until(fd: &OwnedFd, timeout: Duration) -> Result<Vec<u8>> {
    let tv = nix::sys::time::TimeVal::new(timeout.as_secs() as i64, timeout.subsec_micros() as i64);
    socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv).ctx(|| "cannot set a timeout".into())?;
    let mut buf = [0u8; 256];
    let n = nix::unistd::read(fd, &mut buf).ctx(|| "no answer from the runner".into())?;
    Ok(buf[..n].to_vec())
}

/// Ask the runner for the machine's state.
pub fn state(path: &Path, runner: i32) -> Result<String> {
    let fd = connect(path, runner, "state")?;
    let answer = read_until(&fd, Duration::from_secs(2))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Have the runner end the machine, and return once it has cleaned up and
/// exited: it says "ok", then the connection ends with the runner.
pub fn terminate(path: &Path, runner: i32, timeout: Duration) -> Result<()> {
    let fd = connect(path, runner, "terminate")?;
    if read_until(&fd, Duration::from_secs(2))? != b"ok" {
        return Err(Error::invalid("the runner refused the request"));
    }
    match read_until(&fd, timeout)?.len() {
        0 => Ok(()),
        _ => Err(Error::invalid("unexpected answer from the runner")),
    }
}
