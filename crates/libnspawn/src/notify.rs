//! sd_notify(3) to whoever started us (`$NOTIFY_SOCKET`, set by a service
//! manager for `Type=notify` units), and the socket the guest notifies us on.

use crate::error::{Context, Result};
use std::os::fd::{AsRawFd, OwnedFd};
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

/// The longest notification read; systemd's own limit for the messages
/// it takes from services (`NOTIFY_BUFFER_MAX`, one pipe buffer). A longer
/// datagram is dropped whole (`MSG_TRUNC`), not read in part.
pub const MAX_MESSAGE: usize = 4096;
/// Messages read per wake-up: a guest flooding the socket cannot keep the
/// runner's loop from its other sources; the rest waits in the socket,
/// whose queue the kernel bounds, for the next turn.
const BATCH: usize = 64;
/// Longest `STATUS=` kept, in bytes.
const MAX_STATUS: usize = 256;

/// What one guest notification says, of what we read (sd_notify(3)).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notification {
    pub ready: bool,
    pub stopping: bool,
    pub reloading: bool,
    /// A positive PID; nothing for `MAINPID=` that is not one.
    pub main_pid: Option<i32>,
    /// At most `MAX_STATUS` bytes, cut at a character boundary.
    pub status: Option<String>,
}

/// Parse one notification: newline-separated `KEY=VALUE` assignments, a
/// later one replacing an earlier one. Anything else, in any amount, is
/// ignored; a message longer than `MAX_MESSAGE` is not looked at.
pub fn parse(msg: &[u8]) -> Notification {
    let mut n = Notification::default();
    if msg.len() > MAX_MESSAGE {
        return n;
    }
    for line in msg.split(|&b| b == b'\n') {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        match key {
            b"READY" => n.ready = value == b"1",
            b"STOPPING" => n.stopping = value == b"1",
            b"RELOADING" => n.reloading = value == b"1",
            b"MAINPID" => n.main_pid = parse_pid(value),
            b"STATUS" => {
                let text = String::from_utf8_lossy(value);
                let mut end = text.len().min(MAX_STATUS);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                n.status = Some(text[..end].to_string());
            }
            _ => {}
        }
    }
    n
}

/// A PID as sd_notify sends it: decimal digits only, positive, in range.
fn parse_pid(v: &[u8]) -> Option<i32> {
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
}

/// Read the pending guest notifications, at most `BATCH` of them.
///
/// No control buffer is given to `recvmsg`: descriptors a guest passes
/// with `SCM_RIGHTS` (or credentials it claims) are then never installed
/// in the runner — the kernel drops them with the message and sets
/// `MSG_CTRUNC` (`scm_recv()` in include/net/scm.h). Such a message, and
/// one longer than `MAX_MESSAGE`, is ignored whole.
pub fn drain_guest(sock: &OwnedFd) -> Vec<Notification> {
    use nix::sys::socket::{recvmsg, MsgFlags, UnixAddr};
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_MESSAGE];
    for _ in 0..BATCH {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let (n, flags) =
            match recvmsg::<UnixAddr>(sock.as_raw_fd(), &mut iov, None, MsgFlags::MSG_DONTWAIT) {
                Ok(m) => (m.bytes, m.flags),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            };
        if !flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
            out.push(parse(&buf[..n]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_assignments() {
        let n = parse(b"READY=1\nSTATUS=up and running\nMAINPID=42\nX_FOO=bar\n");
        assert_eq!(
            n,
            Notification {
                ready: true,
                main_pid: Some(42),
                status: Some("up and running".into()),
                ..Default::default()
            }
        );
        assert!(parse(b"STOPPING=1").stopping);
        assert!(!parse(b"READY=0").ready);
    }

    #[test]
    fn bogus_mainpid_is_no_pid() {
        for v in [
            "",
            "0",
            "-1",
            "+5",
            " 5",
            "5 ",
            "1e3",
            "0x10",
            "2147483648",
            "99999999999",
            "1\x00",
            "\u{663}",
        ] {
            assert_eq!(
                parse(format!("MAINPID={v}").as_bytes()).main_pid,
                None,
                "{v:?}"
            );
        }
        assert_eq!(parse(b"MAINPID=2147483647").main_pid, Some(i32::MAX));
        // A later bogus one replaces an earlier good one.
        assert_eq!(parse(b"MAINPID=7\nMAINPID=x").main_pid, None);
    }

    #[test]
    fn garbage_and_huge_messages_say_nothing() {
        assert_eq!(parse(b""), Notification::default());
        assert_eq!(parse(&[0xff; 4096]), Notification::default());
        assert_eq!(parse(&[b'\n'; 4096]), Notification::default());
        assert_eq!(parse(&[b'='; 4096]), Notification::default());
        let mut big = b"READY=1\n".to_vec();
        big.resize(65536, b'x');
        assert_eq!(parse(&big), Notification::default());
    }

    #[test]
    fn status_is_bounded_and_whole_characters() {
        let long = format!("STATUS={}", "\u{e9}".repeat(1000));
        let s = parse(long.as_bytes()).status.unwrap();
        assert!(
            s.len() <= MAX_STATUS && s.len() >= MAX_STATUS - 1,
            "{}",
            s.len()
        );
        assert!(s.chars().all(|c| c == '\u{e9}'));
        let s = parse(b"STATUS=\xff\xfe\x1b[2J").status.unwrap();
        assert_eq!(s, "\u{fffd}\u{fffd}\x1b[2J");
    }

    /// The socket as the runner has it, a guest's sender, and the
    /// runner's descriptor count.
    fn pair() -> (OwnedFd, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (OwnedFd::from(a), b)
    }

    #[test]
    fn passed_descriptors_are_never_kept() {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let (ours, theirs) = pair();
        // Copies of a pipe's writing end are passed: once ours are closed
        // and the messages read, the reading end sees end-of-file only if
        // no copy was installed in this process. (Counting /proc/self/fd
        // would race with the other tests' threads.)
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let passed: Vec<OwnedFd> = (0..8).map(|_| writer.try_clone().unwrap()).collect();
        drop(writer);
        let raw: Vec<i32> = passed.iter().map(|f| f.as_raw_fd()).collect();
        for msg in [&b"READY=1"[..], b"STATUS=x"] {
            let iov = [std::io::IoSlice::new(msg)];
            sendmsg::<()>(
                theirs.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&raw)],
                MsgFlags::empty(),
                None,
            )
            .unwrap();
        }
        drop(passed);
        theirs.send(b"STOPPING=1").unwrap();
        // Only the message without descriptors is believed.
        assert_eq!(
            drain_guest(&ours),
            vec![Notification {
                stopping: true,
                ..Default::default()
            }]
        );
        nix::fcntl::fcntl(
            &reader,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut b = [0u8; 1];
        assert_eq!(nix::unistd::read(&reader, &mut b), Ok(0));
    }

    #[test]
    fn a_flood_is_read_in_bounded_turns() {
        let (ours, theirs) = pair();
        theirs.set_nonblocking(true).unwrap();
        let huge = vec![b'x'; 65536];
        let mut sent = 0;
        for i in 0..200 {
            // Now and then a 64 KiB datagram, dropped whole.
            if i % 50 == 0 {
                let _ = theirs.send(&huge);
            }
            if theirs.send(b"READY=1").is_err() {
                break;
            }
            sent += 1;
        }
        assert!(sent > BATCH, "sent only {sent}");
        let mut read = 0;
        loop {
            let got = drain_guest(&ours);
            assert!(got.len() <= BATCH);
            assert!(got.iter().all(|n| n.ready));
            if got.is_empty() {
                break;
            }
            read += got.len();
        }
        assert_eq!(read, sent);
    }
}
