//! `start`, `kill`, `delete`, `pause`/`resume`, `update`: each takes the
//! container's lock, checks its status as runc does, and acts.

use crate::cgroups::Cgroups;
use crate::state::{self, Dir};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// A pidfd for the container's process, if it is still the one recorded.
fn init_pidfd(st: &Value) -> Option<OwnedFd> {
    let pid = st["pid"].as_i64().filter(|&p| p > 0)?;
    let fd = libnspawn::sys::pidfd_open(pid as i32).ok()?;
    // Checked after the pidfd is held: it cannot change hands now.
    (state::start_time(pid) == st["startTime"].as_u64()).then_some(fd)
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = state::open(root, id)?;
    let st = dir.read()?;
    match state::status(&dir, &st) {
        "created" => {}
        "stopped" => bail!("cannot start a container that has stopped"),
        s => bail!("cannot start an already {s} container"),
    }
    let init = init_pidfd(&st).ok_or_else(|| anyhow!("container not running"))?;
    let fifo = nix::fcntl::open(
        &dir.fifo(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("cannot open the exec FIFO")?;
    // The container's open for writing returns now; wait for its byte,
    // or for it to end (then its pidfd is readable).
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(init.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("cannot poll the exec FIFO")?,
        };
        // "0", or why its `startContainer` hooks failed (one write, under
        // PIPE_BUF: read whole).
        let mut b = [0u8; 512];
        match nix::unistd::read(&fifo, &mut b) {
            Ok(1..) if b[0] == b'0' => break,
            Ok(n @ 1..) => bail!("{}", String::from_utf8_lossy(&b[..n])),
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e).context("cannot read the exec FIFO"),
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            bail!("the container's process ended before it started");
        }
    }
    std::fs::remove_file(dir.fifo()).context("cannot remove the exec FIFO")?;
    // A failed poststart hook is a warning (runtime-spec).
    if let Err(e) = crate::hooks::run(
        &st["hooks"],
        "poststart",
        &state::hook_state(&st, "running"),
    ) {
        eprintln!("nspawn-oci: warning: {e:#}");
    }
    Ok(())
}

/// A signal by number or name, with or without `SIG` (runc's forms).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    name.parse::<nix::sys::signal::Signal>()
        .or_else(|_| format!("SIG{name}").parse::<nix::sys::signal::Signal>())
        .map(|sig| sig as i32)
        .map_err(|_| anyhow!("invalid signal: {s}"))
}

pub fn kill(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let dir = state::open(root, id)?;
    let st = dir.read()?;
    if all {
        Cgroups::from_state(&st).kill_all(sig);
        return Ok(());
    }
    if state::status(&dir, &st) == "stopped" {
        bail!("container not running");
    }
    let init = init_pidfd(&st).ok_or_else(|| anyhow!("container not running"))?;
    libnspawn::sys::pidfd_send_signal(init.as_fd(), sig).context("cannot signal the container")
}

/// Kill what is left in the cgroup and wait until it is empty: for the
/// container's init through its pidfd (readable once it has exited),
/// then for the rest in growing steps from 0.1 ms (a fixed 5 ms step
/// was most of a `delete`).
fn kill_and_wait(cg: &Cgroups, st: &Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Some(init) = init_pidfd(st) {
        let _ = libnspawn::sys::pidfd_send_signal(init.as_fd(), libc::SIGKILL);
        let mut fds = [nix::poll::PollFd::new(
            init.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16));
    }
    let mut step = Duration::from_micros(100);
    loop {
        cg.kill_all(libc::SIGKILL);
        if cg.procs().is_empty() || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(step);
        step = (step * 2).min(Duration::from_millis(10));
    }
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match state::open_any(root, id)? {
        Some(d) => d,
        None if force => return Ok(()),
        None => bail!("container does not exist"),
    };
    let st = match dir.read() {
        Ok(st) => st,
        // A record `create` was killed before writing: it had made
        // nothing else yet (its cgroups are recorded before they are made).
        Err(_) if force => return dir.remove(),
        Err(e) => return Err(e),
    };
    let status = state::status(&dir, &st);
    if !force && !["stopped", "created"].contains(&status) {
        bail!("cannot delete container {id} that is not stopped: {status}");
    }
    remove(dir, &st)
}

fn remove(dir: Dir, st: &Value) -> Result<()> {
    let cg = Cgroups::from_state(st);
    kill_and_wait(&cg, st);
    // Its scope first (systemd removes its cgroups), then what is ours.
    if let Some(unit) = st["unit"].as_str() {
        crate::scope::stop(unit)?;
    }
    cg.remove()?;
    // A failed poststop hook is a warning (runtime-spec).
    if let Err(e) = crate::hooks::run(&st["hooks"], "poststop", &state::hook_state(st, "stopped")) {
        eprintln!("nspawn-oci: warning: {e:#}");
    }
    dir.remove()
}

pub fn freeze(root: &Path, id: &str, frozen: bool) -> Result<()> {
    let dir = state::open(root, id)?;
    let st = dir.read()?;
    match (state::status(&dir, &st), frozen) {
        ("running", true) | ("paused", false) => Cgroups::from_state(&st).freeze(frozen),
        (s, true) => bail!("container not running: {s}"),
        (s, false) => bail!("container not paused: {s}"),
    }
}

pub fn update(root: &Path, a: &crate::cli::UpdateArgs) -> Result<()> {
    let dir = state::open(root, &a.id)?;
    let st = dir.read()?;
    let mut r: Value = match a.resources.as_deref() {
        Some(p) if p == Path::new("-") => {
            serde_json::from_reader(std::io::stdin()).context("resources on stdin: not JSON")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("{}: not JSON", p.display()))?,
        None => serde_json::json!({}),
    };
    if let Some(m) = &a.memory {
        r["memory"]["limit"] = parse_bytes(m)?.into();
    }
    if let Some(p) = a.pids_limit {
        r["pids"]["limit"] = p.into();
    }
    if state::status(&dir, &st) == "stopped" {
        bail!("container not running");
    }
    Cgroups::from_state(&st).apply(&r)
}

/// `--memory`: bytes, with an optional k, m or g suffix; -1 unlimited.
fn parse_bytes(s: &str) -> Result<i64> {
    let lower = s.to_ascii_lowercase();
    let (num, mul) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 1 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    num.parse::<i64>()
        .map(|n| if n < 0 { -1 } else { n * mul })
        .map_err(|_| anyhow!("invalid memory value: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("x").is_err());
    }
}
