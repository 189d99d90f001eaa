//! From the container's start to its end: its console, its record in the
//! registry, and the monitor loop over the container's pidfd, the
//! signalfd, the console pty, the guest's notify socket, the DHCP socket
//! and the control endpoint.

use super::channel::{self, Msg};
use super::reserve::Held;
use super::signals::Signals;
use super::{Outcome, Run, SETUP_TIMEOUT};
use crate::console::{self, Escape, Pty, RawMode, Streams};
use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::settings::{signal_name, ConsoleMode, Settings};
use crate::sys::{self, Exit};
use crate::{notify, registry};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

/// What a run has once the container's setup got as far as its id.
pub struct Started<'a> {
    pub machine_id: Id128,
    pub console_mode: ConsoleMode,
    pub notify_sock: &'a OwnedFd,
    /// Where the console's output and our words go; what they have not
    /// taken yet when the container ends is written once nothing of it is
    /// left.
    pub streams: &'a mut Streams,
}

/// Reads of the console per turn of the loop: a flood of output waits
/// for the next turn, after the signals, the control endpoint and input.
const CONSOLE_TURN: usize = 16;

/// How long the end of a run waits for a slow reader of the console's
/// last output before it cleans up regardless.
const TAIL_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Wait for the container to execute its payload (its console comes on
/// the way), publish its record, and monitor it until it ends.
pub fn watch(
    s: &Settings,
    ours: &channel::Channel,
    signals: &Signals,
    held: &Held,
    run: &Run,
    started: Started,
) -> Result<Outcome> {
    let Started {
        machine_id,
        console_mode,
        notify_sock,
        streams,
    } = started;
    let container = &run.container;
    let mut pty = None;
    // Held until the container has ended (this function returns then).
    let mut _kmsg = None;
    super::failpoint::delay("supervise.setup");
    loop {
        match ours.recv_within(signals, SETUP_TIMEOUT)? {
            Msg::Console(master) => pty = Some(Pty::new(master)),
            Msg::Kmsg(fifo) => _kmsg = Some(fifo),
            Msg::Error(msg) => return Err(Error::Invalid(msg)),
            Msg::Eof => break,
            Msg::Go(_) | Msg::MachineId(_) | Msg::Filters(_) | Msg::Ready | Msg::Mounted => {}
        }
    }
    super::failpoint::stage("supervise.publish", signals)?;
    let cgroup = held
        .cgroup
        .as_ref()
        .or(run.placed.as_ref().and_then(|p| p.cgroup.as_ref()))
        .map(|c| c.path().to_path_buf());
    let record = held.net.as_ref().map(|h| &h.record);
    registry::publish(&registry::Record {
        name: s.machine.clone(),
        class: "container".into(),
        // The service machined is told (place.rs), so both list it alike.
        service: s.knobs.container_service.clone(),
        root: s.origin().to_path_buf(),
        leader: container.pid,
        runner: std::process::id() as i32,
        starts: registry::Starts::now(container.pid),
        id: machine_id.plain(),
        cgroup,
        interfaces: record
            .iter()
            .flat_map(|r| r.host_link.iter().chain(r.zone.iter()).cloned())
            .collect(),
        addresses: record
            .and_then(|r| r.container_addr)
            .map(|a| a.to_string())
            .into_iter()
            .collect(),
        state: "running".into(),
        started_usec: registry::now_usec(),
        bounding: super::spawn::kept_capabilities(s),
        syscall_allow: s.security.syscall_allow.clone(),
        syscall_deny: s.security.syscall_deny.clone(),
        suppress_sync: s.security.suppress_sync,
        syscall_policy: s
            .security
            .syscall_policy
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| crate::Error::invalid(format!("cannot record the seccomp policy: {e}")))?,
        no_new_privileges: s.security.no_new_privileges,
        control: held.control.as_ref().map(|c| c.path().to_path_buf()),
    })?;
    notify::notify_caller("READY=1");

    let forward_in = console_mode == ConsoleMode::Interactive && console::is_tty(console::stdin());
    let _raw = if forward_in {
        RawMode::enter(console::stdin())
    } else {
        None
    };
    if let Some(p) = &pty {
        if console::is_tty(console::stdout()) {
            console::copy_winsize(console::stdout(), p.master.as_fd());
        }
    }
    // Passive: the container's output waits in the pty until it ends, as
    // in the reference.
    let live = matches!(
        console_mode,
        ConsoleMode::Interactive | ConsoleMode::ReadOnly
    );
    let exit = supervise(
        s,
        run,
        signals,
        pty.as_mut().filter(|_| live),
        streams,
        forward_in,
        Sources {
            notify_sock,
            dhcp: run.network.as_ref().and_then(|n| n.dhcp.as_ref()),
            control: held.control.as_ref(),
        },
    )?;
    if let Some(p) = pty.as_mut() {
        p.drain(&mut streams.out, None);
    }
    // The last words before ours ("Container ... exited"), if the reader
    // takes them soon; else after the cleanup (`launch::run`).
    streams.finish(Some(Instant::now() + TAIL_WAIT));
    drop(_raw);
    Ok(outcome(s, exit, streams))
}

/// What else the monitor loop listens to, besides the container, the
/// signals and the console.
struct Sources<'a> {
    notify_sock: &'a OwnedFd,
    dhcp: Option<&'a crate::net::dhcp::Server>,
    control: Option<&'a crate::control::Endpoint>,
}

/// Answer a request on the control endpoint.
fn serve(control: &crate::control::Endpoint, pidfd: BorrowedFd) {
    use crate::control::Request;
    match control.accept() {
        Some((conn, Request::State)) => crate::control::reply(&conn, "running"),
        Some((conn, Request::Terminate)) => {
            crate::control::reply(&conn, "ok");
            let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            // Held open until the cleanup is done: its end-of-file tells
            // the caller the machine is gone.
            crate::control::hold_until_released(conn);
        }
        None => {}
    }
}

/// The monitor loop: returns when PID 1 of the container has exited.
fn supervise(
    s: &Settings,
    run: &Run,
    signals: &Signals,
    mut pty: Option<&mut Pty>,
    streams: &mut Streams,
    mut forward_in: bool,
    sources: Sources,
) -> Result<Exit> {
    let Sources {
        notify_sock,
        dhcp,
        control,
    } = sources;
    let pidfd = run.container.pidfd();
    let mut term_requests = 0;
    let mut escape = Escape::default();
    let stdin = console::stdin();
    loop {
        let pty_live = pty.as_ref().is_some_and(|p| !p.hung_up);
        let pty_out = pty.as_ref().is_some_and(|p| p.wants_write());
        let mut fds = vec![
            PollFd::new(pidfd, PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
            PollFd::new(notify_sock.as_fd(), PollFlags::POLLIN),
        ];
        // While the output is full the pty is not polled for input (its
        // hang-up would be reported all the same, and spin the loop).
        let pty_in = streams.out.has_room();
        if let Some(p) = pty.as_ref().filter(|_| pty_live && (pty_in || pty_out)) {
            let mut ev = PollFlags::empty();
            if pty_in {
                ev |= PollFlags::POLLIN;
            }
            if pty_out {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(p.master.as_fd(), ev));
        }
        for fd in [streams.out.waits_on(), streams.err.waits_on()]
            .into_iter()
            .flatten()
        {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        let stdin_idx = fds.len();
        // Always read: `^]^]^]` must end a container that reads neither
        // its input nor lets its output go.
        if forward_in && pty.is_some() {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        let dhcp_idx = fds.len();
        if let Some(d) = dhcp {
            fds.push(PollFd::new(d.as_fd(), PollFlags::POLLIN));
        }
        let control_idx = fds.len();
        if let Some(c) = control {
            fds.push(PollFd::new(c.fd(), PollFlags::POLLIN));
        }
        // A hung-up pty (a getty closing /dev/console to reopen it) cannot
        // be polled without spinning; look at it again shortly.
        let timeout = if pty.as_ref().is_some_and(|p| p.hung_up) {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.ctx(|| "cannot poll".into())?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (child_done, sig_ready, notify_ready) = (ready(0), ready(1), ready(2));
        let stdin_ready = stdin_idx < dhcp_idx && ready(stdin_idx);
        let dhcp_ready = dhcp.is_some() && ready(dhcp_idx);
        let control_ready = control.is_some() && ready(control_idx);
        drop(fds);
        if let (true, Some(c)) = (control_ready, control) {
            serve(c, pidfd);
        }
        if let (true, Some(d)) = (dhcp_ready, dhcp) {
            d.handle();
        }

        streams.out.flush();
        streams.err.flush();
        if let Some(p) = pty.as_deref_mut() {
            // Asked again each turn: a getty reopens its console.
            p.hung_up = false;
            p.drain(&mut streams.out, Some(CONSOLE_TURN));
            p.flush();
        }
        if notify_ready {
            notify::drain_guest(notify_sock);
        }
        if stdin_ready {
            forward_in = forward_stdin(stdin, &mut escape, pty.as_deref_mut(), pidfd);
        }
        if sig_ready {
            handle_signals(
                s,
                signals,
                pty.as_deref(),
                pidfd,
                &mut term_requests,
                streams,
            );
        }
        if child_done {
            if let Some(p) = pty.as_deref_mut() {
                p.drain(&mut streams.out, None);
            }
            return run.container.wait();
        }
    }
}

/// Input from our terminal to the console, watching for the `^]` escape.
/// Returns whether to keep forwarding.
fn forward_stdin(
    stdin: BorrowedFd,
    escape: &mut Escape,
    pty: Option<&mut Pty>,
    pidfd: BorrowedFd,
) -> bool {
    let mut buf = [0u8; 4096];
    match nix::unistd::read(stdin, &mut buf) {
        // As the reference: end of input on an interactive console
        // ends the container.
        Ok(0) => {
            let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            false
        }
        Ok(n) => {
            if escape.feed(&buf[..n], Instant::now()) {
                let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            } else if let Some(p) = pty {
                p.send(&buf[..n]);
            }
            true
        }
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => true,
        Err(_) => false,
    }
}

/// The runner's signals while the container runs: a stop request is
/// passed on as the kill signal (SIGKILL the second time), a window
/// size change to the console.
fn handle_signals(
    s: &Settings,
    signals: &Signals,
    pty: Option<&Pty>,
    pidfd: BorrowedFd,
    term_requests: &mut u32,
    streams: &mut Streams,
) {
    while let Some(info) = signals.read() {
        match info.ssi_signo as libc::c_int {
            libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                *term_requests += 1;
                let sig = if *term_requests == 1 {
                    s.kill_signal()
                } else {
                    libc::SIGKILL
                };
                if sig != libc::SIGKILL {
                    streams.say("Trying to halt container. Send SIGTERM again to trigger immediate termination.");
                }
                let _ = sys::pidfd_send_signal(pidfd, sig);
            }
            libc::SIGWINCH => {
                if let Some(p) = pty {
                    console::copy_winsize(console::stdout(), p.master.as_fd());
                }
            }
            _ => {}
        }
    }
}

/// Map how PID 1 ended to the runner's result, as the reference does.
fn outcome(s: &Settings, exit: Exit, streams: &mut Streams) -> Outcome {
    let name = &s.machine;
    match exit {
        Exit::Code(0) => {
            if !s.quiet {
                streams.say(&format!("Container {name} exited successfully."));
            }
            Outcome::Exited(0)
        }
        Exit::Code(code) => {
            if !s.quiet {
                streams.say(&format!("Container {name} failed with error code {code}."));
            }
            // 133 means "restart me" to the service template
            // (RestartForceExitStatus=133): a payload must not say it.
            Outcome::Exited(if code == 133 { 1 } else { code })
        }
        Exit::Signal(libc::SIGINT) => {
            if !s.quiet {
                streams.say(&format!("Container {name} has been shut down."));
            }
            Outcome::Exited(0)
        }
        Exit::Signal(libc::SIGHUP) => {
            if !s.quiet {
                streams.say(&format!("Container {name} is being rebooted."));
            }
            Outcome::Reboot
        }
        Exit::Signal(sig) => {
            streams.say(&format!(
                "Container {name} terminated by signal {}.",
                signal_name(sig)
            ));
            Outcome::Exited(1)
        }
    }
}
