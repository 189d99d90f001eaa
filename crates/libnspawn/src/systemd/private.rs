//! systemd's private socket, `/run/systemd/private`: a peer-to-peer
//! D-Bus connection to PID 1 for root, where no bus daemon runs (early
//! boot, or a host without dbus). systemctl falls back to it the same way.
//!
//! Written by hand, not with zbus: systemd marks every message it sends
//! there with the sender `org.freedesktop.systemd1` (sd-bus's patched
//! sender on direct connections), which zbus 5 rejects as not a unique
//! name — its connection thread panics on the first reply
//! (z-galaxy/zbus#965). Only what a transient scope needs is here: the
//! EXTERNAL handshake, method calls with string, boolean and `au`
//! arguments, and reading replies, errors and `JobRemoved` signals.
//! Single-threaded; runs in the same forked helper as the bus calls.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub const SOCKET: &str = "/run/systemd/private";

/// An argument of a unit property (`a(sv)`'s variant).
pub enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    U32s(&'a [u32]),
}

/// What came back for a call.
pub enum Reply {
    /// The reply's first string or object path, if it has one.
    Return(Option<String>),
    /// The error's name and message.
    Error(String, String),
}

pub struct Conn {
    sock: UnixStream,
    timeout: Duration,
    serial: u32,
    /// `JobRemoved` signals read while waiting for a reply: job path and
    /// result.
    jobs: Vec<(String, String)>,
}

/// Message buffer with D-Bus alignment (little-endian, as we mark it).
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn pad(&mut self, n: usize) {
        while !self.0.len().is_multiple_of(n) {
            self.0.push(0);
        }
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    /// An array of elements aligned to `align`, written by `f`; its
    /// length counts from the first element (after the padding).
    fn array(&mut self, align: usize, f: impl FnOnce(&mut Buf)) {
        self.pad(4);
        let at = self.0.len();
        self.u32(0);
        self.pad(align);
        let start = self.0.len();
        f(self);
        let len = (self.0.len() - start) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn arg(&mut self, a: &Arg) {
        match a {
            Arg::Str(s) => {
                self.sig("s");
                self.str(s);
            }
            Arg::Bool(b) => {
                self.sig("b");
                self.u32(*b as u32);
            }
            Arg::U32s(v) => {
                self.sig("au");
                self.array(4, |b| v.iter().for_each(|&n| b.u32(n)));
            }
        }
    }
}

/// A reader of a received message's parts, honouring its byte order.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    le: bool,
}

impl Reader<'_> {
    fn align(&mut self, n: usize) {
        self.at = self.at.next_multiple_of(n);
    }
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }
    fn u32(&mut self) -> Option<u32> {
        self.align(4);
        let raw: [u8; 4] = self.b.get(self.at..self.at + 4)?.try_into().ok()?;
        self.at += 4;
        Some(if self.le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n + 1;
        Some(String::from_utf8_lossy(s).into_owned())
    }
    fn sig(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n + 1;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

/// A received message: the header fields we use and the body.
#[derive(Default, Debug)]
struct Msg {
    kind: u8,
    reply_serial: Option<u32>,
    error: Option<String>,
    member: Option<String>,
    signature: String,
    le: bool,
    body: Vec<u8>,
}

impl Msg {
    fn body(&self) -> Reader<'_> {
        Reader {
            b: &self.body,
            at: 0,
            le: self.le,
        }
    }
}

/// Header field codes (D-Bus specification, "Message Format").
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SIGNATURE: u8 = 8;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A method call to systemd's `interface` with `sig` and `body`.
fn method_call(serial: u32, interface: &str, member: &str, sig: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Buf::default();
    m.0.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.u32(body.len() as u32);
    m.u32(serial);
    m.array(8, |h| {
        let mut field = |code: u8, ty: &str, v: &str| {
            h.pad(8);
            h.u8(code);
            h.sig(ty);
            if ty == "g" {
                h.sig(v);
            } else {
                h.str(v);
            }
        };
        field(PATH, "o", "/org/freedesktop/systemd1");
        field(INTERFACE, "s", interface);
        field(MEMBER, "s", member);
        field(DESTINATION, "s", "org.freedesktop.systemd1");
        if !sig.is_empty() {
            field(SIGNATURE, "g", sig);
        }
    });
    m.pad(8);
    m.0.extend_from_slice(body);
    m.0
}

/// Parse one message whose header (up to its fields' array) is `fixed`
/// and whose rest is `rest`.
fn parse(fixed: &[u8; 16], rest: &[u8]) -> Option<Msg> {
    let le = fixed[0] == b'l';
    let mut all = fixed.to_vec();
    all.extend_from_slice(rest);
    let mut r = Reader {
        b: &all,
        at: 12,
        le,
    };
    let fields_len = r.u32()? as usize;
    let end = 16 + fields_len;
    let mut m = Msg {
        kind: fixed[1],
        le,
        ..Msg::default()
    };
    while r.at < end {
        r.align(8);
        let code = r.u8()?;
        let sig = r.sig()?;
        match sig.as_str() {
            "s" | "o" => {
                let v = r.str()?;
                match code {
                    ERROR_NAME => m.error = Some(v),
                    MEMBER => m.member = Some(v),
                    _ => {}
                }
            }
            "g" => {
                let v = r.sig()?;
                if code == SIGNATURE {
                    m.signature = v;
                }
            }
            "u" => {
                let v = r.u32()?;
                if code == REPLY_SERIAL {
                    m.reply_serial = Some(v);
                }
            }
            _ => return None,
        }
    }
    m.body = all.get(end.next_multiple_of(8)..)?.to_vec();
    Some(m)
}

impl Conn {
    /// Connect and authenticate as our uid (EXTERNAL); replies that take
    /// longer than `timeout` fail.
    pub fn open(timeout: Duration) -> std::io::Result<Conn> {
        let mut sock = UnixStream::connect(SOCKET)?;
        sock.set_read_timeout(Some(timeout))?;
        let uid: String = nix::unistd::getuid()
            .as_raw()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        sock.write_all(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes())?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 512 {
            sock.read_exact(&mut byte)?;
            line.push(byte[0]);
        }
        if !line.starts_with(b"OK ") {
            return Err(std::io::Error::other(format!(
                "authentication refused: {}",
                String::from_utf8_lossy(&line).trim_end()
            )));
        }
        sock.write_all(b"BEGIN\r\n")?;
        Ok(Conn {
            sock,
            timeout,
            serial: 0,
            jobs: vec![],
        })
    }

    /// The next message. A call sent right behind `BEGIN` was seen to
    /// stay unanswered now and then (systemd 252 had read it with the
    /// handshake and did not look at it until more came); so whenever
    /// nothing comes for 50 ms, systemd is sent a `Ping` (answered by
    /// sd-bus itself), whose arrival makes it read on.
    fn recv(&mut self) -> std::io::Result<Msg> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(50u16)) {
                Ok(0) if std::time::Instant::now() < deadline => {
                    self.serial += 1;
                    let ping =
                        method_call(self.serial, "org.freedesktop.DBus.Peer", "Ping", "", &[]);
                    self.sock.write_all(&ping)?;
                }
                Ok(0) => return Err(std::io::ErrorKind::TimedOut.into()),
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut fixed = [0u8; 16];
        self.sock.read_exact(&mut fixed)?;
        let num = |b: [u8; 4]| {
            if fixed[0] == b'l' {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let body = num(fixed[4..8].try_into().expect("4 bytes")) as usize;
        let fields = num(fixed[12..16].try_into().expect("4 bytes")) as usize;
        // Both bounded by the specification's 128 MiB message limit.
        if body + fields > 1 << 27 {
            return Err(std::io::Error::other("message too large"));
        }
        let mut rest = vec![0u8; (16 + fields).next_multiple_of(8) - 16 + body];
        self.sock.read_exact(&mut rest)?;
        parse(&fixed, &rest).ok_or_else(|| std::io::Error::other("malformed message"))
    }

    /// A `JobRemoved` signal read now: remembered for `wait_job`.
    fn note_signal(&mut self, m: &Msg) {
        if m.kind == SIGNAL && m.member.as_deref() == Some("JobRemoved") && m.signature == "uoss" {
            let mut b = m.body();
            if let (Some(_), Some(job), Some(_), Some(result)) =
                (b.u32(), b.str(), b.str(), b.str())
            {
                self.jobs.push((job, result));
            }
        }
    }

    /// Call `member` with `sig` and `body`, and wait for its answer.
    pub fn call(&mut self, member: &str, sig: &str, body: &[u8]) -> std::io::Result<Reply> {
        self.serial += 1;
        let serial = self.serial;
        self.sock
            .write_all(&method_call(serial, MANAGER, member, sig, body))?;
        loop {
            let m = self.recv()?;
            self.note_signal(&m);
            if m.reply_serial != Some(serial) {
                continue;
            }
            return Ok(match m.kind {
                METHOD_RETURN => Reply::Return(match m.signature.chars().next() {
                    Some('s' | 'o') => m.body().str(),
                    _ => None,
                }),
                ERROR => Reply::Error(
                    m.error.clone().unwrap_or_default(),
                    if m.signature.starts_with('s') {
                        m.body().str().unwrap_or_default()
                    } else {
                        String::new()
                    },
                ),
                _ => continue,
            });
        }
    }

    /// The result of job `job` ("done", "failed", ...), from its
    /// `JobRemoved` signal (systemd sends them to every private
    /// connection).
    pub fn wait_job(&mut self, job: &str) -> std::io::Result<String> {
        loop {
            if let Some(i) = self.jobs.iter().position(|(j, _)| j == job) {
                return Ok(self.jobs.swap_remove(i).1);
            }
            let m = self.recv()?;
            self.note_signal(&m);
        }
    }
}

/// The body of `StartTransientUnit(unit, mode, props, [])`.
pub fn start_transient_body(unit: &str, mode: &str, props: &[(&str, Arg)]) -> Vec<u8> {
    let mut b = Buf::default();
    b.str(unit);
    b.str(mode);
    b.array(8, |b| {
        for (name, arg) in props {
            b.pad(8);
            b.str(name);
            b.arg(arg);
        }
    });
    b.array(8, |_| {});
    b.0
}

/// The body of a call whose arguments are all strings.
pub fn strings_body(args: &[&str]) -> Vec<u8> {
    let mut b = Buf::default();
    args.iter().for_each(|a| b.str(a));
    b.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_marshalled_as_the_specification_says() {
        let body = start_transient_body(
            "a.scope",
            "replace",
            &[("PIDs", Arg::U32s(&[7])), ("Delegate", Arg::Bool(true))],
        );
        // "a.scope", "replace", then a(sv) at 8: PIDs au [7], Delegate b 1.
        let mut want = vec![7, 0, 0, 0];
        want.extend_from_slice(b"a.scope\0");
        want.extend_from_slice(&[7, 0, 0, 0]);
        want.extend_from_slice(b"replace\0");
        // The array's length (not counting the padding to 8 after it).
        want.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[4, 0, 0, 0]);
        want.extend_from_slice(b"PIDs\0");
        // The variant's signature, padding to 4, the array [7].
        want.extend_from_slice(&[2, b'a', b'u', 0, 0, 0, 0]);
        want.extend_from_slice(&[4, 0, 0, 0, 7, 0, 0, 0]);
        want.extend_from_slice(&[8, 0, 0, 0]);
        want.extend_from_slice(b"Delegate\0");
        want.extend_from_slice(&[1, b'b', 0, 1, 0, 0, 0]);
        // An empty a(sa(sv)): its length, at 8 already.
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(body, want);

        let m = method_call(
            3,
            MANAGER,
            "StopUnit",
            "ss",
            &strings_body(&["a.scope", "replace"]),
        );
        assert_eq!(&m[..4], b"l\x01\x00\x01");
        let fixed: [u8; 16] = m[..16].try_into().unwrap();
        let parsed = parse(&fixed, &m[16..]).unwrap();
        assert_eq!(parsed.member.as_deref(), Some("StopUnit"));
        assert_eq!(parsed.signature, "ss");
        let mut b = parsed.body();
        assert_eq!(b.str().as_deref(), Some("a.scope"));
        assert_eq!(b.str().as_deref(), Some("replace"));
    }
}
