//! Starting and supervising a container.
//!
//! The runner (this process) checks and locks the tree, makes the cgroup,
//! then `clone3`s the container process straight into its namespaces and
//! cgroup (`child`). The two talk over one SEQPACKET socket (`channel`).
//! The runner then only monitors: the container's pidfd, a signalfd, the
//! console pty and the guest's notify socket, in one `poll` loop.

mod channel;
mod child;
mod place;
mod sealed;
mod stub;

use crate::cgroup::Cgroup;
use crate::console::{self, Escape, Pty, RawMode};
use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::security::devices;
use crate::settings::{signal_name, ConsoleMode, Settings};
use crate::sys::{self, Exit, Forked};
use crate::{lock, mount, notify, registry};
use channel::Msg;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

/// Whether we run inside a container (systemd's convention: the manager
/// provides /run/host/container-manager, or $container is set for PID 1).
fn in_container() -> bool {
    std::path::Path::new("/run/host/container-manager").exists()
        || std::env::var_os("container").is_some()
}

/// How one run of the container ended.
enum Outcome {
    Exited(i32),
    Reboot,
}

/// Run the container described by `s`; returns the exit status for the
/// runner (the payload's, or as the reference maps a shutdown).
pub fn run(s: &Settings) -> Result<i32> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::invalid("Need to be root."));
    }
    if s.start_mode == crate::settings::StartMode::Pid2 {
        sealed::reexec()?;
    }
    if let Some(template) = &s.fs.template {
        crate::template::ensure(&s.directory, template)?;
    }
    let root = nix::fcntl::open(
        &s.directory,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open directory {}", s.directory.display()))?;
    mount::check_tree(
        root.as_fd(),
        &s.directory,
        s.start_mode == crate::settings::StartMode::Boot,
    )?;
    drop(root);
    check_sources(&s.fs)?;
    let fs = &s.fs;
    let shared = fs.ephemeral || fs.read_only || fs.volatile != crate::mount::spec::Volatile::No;
    let _lock = if s.knobs.lock {
        Some(lock::lock_tree(&s.directory, shared)?)
    } else {
        None
    };
    let host_os_release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    let mode = place::Mode::of(s);
    let cgroup = mode.prepare(s)?;
    // The network's record (addresses, zone) is made and locked before the
    // reaper forks, so the reaper holds it too and cleans up after a
    // killed runner.
    // Network checks come after the cgroup's, so a second start of a
    // running machine is told so rather than that its link name is taken.
    let prepared = crate::net::check(&s.net, &s.machine).and_then(|ns| {
        let record = match s.net.wants_veth() {
            true => Some(crate::net::record::reserve(&s.net, &s.machine)?),
            false => None,
        };
        Ok((ns, record))
    });
    let (netns_path, record) = match prepared {
        Ok(p) => p,
        Err(e) => {
            if let Some(cg) = cgroup {
                cg.remove();
            }
            return Err(e);
        }
    };
    let userns = match crate::userns::prepare(&s.userns, &s.directory, &s.machine) {
        Ok(u) => u,
        Err(e) => {
            if let Some(h) = record {
                h.release();
            }
            if let Some(cg) = cgroup {
                cg.remove();
            }
            return Err(e);
        }
    };
    // A runner that cannot offer its endpoint still runs the machine;
    // nspawnctl then signals it directly.
    let control = match crate::control::Endpoint::bind(&s.machine) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("nspawn: no control endpoint: {e}");
            None
        }
    };
    let control_id = control.as_ref().map(|c| (c.path().to_path_buf(), c.id()));
    // Without a cgroup made now (a scope is made around each run of the
    // container), the reaper finds the container's in the record.
    let _reaper = (cgroup.is_some() || mode == place::Mode::Scope)
        .then(|| {
            let runner = std::process::id() as i32;
            let keep: Vec<BorrowedFd> = record
                .iter()
                .map(|h| h.fd())
                .chain(userns.iter().map(|u| u.record.fd()))
                .collect();
            crate::cgroup::spawn_reaper(cgroup.as_ref(), &keep, || {
                if cgroup.is_none() {
                    end_recorded_scope(&s.machine, runner);
                }
                if let Some((path, id)) = &control_id {
                    crate::control::remove_if_same(path, *id);
                }
                if let Some(h) = &record {
                    h.reap();
                }
                if let Some(u) = &userns {
                    u.record.reap();
                }
                // Last: a new start of the name waits while this record
                // of a dead runner is there (place.rs).
                registry::remove_if_runner(&s.machine, runner);
            })
        })
        .transpose()?;
    if let Some(cg) = &cgroup {
        attach_devices(s, cg)?;
    }
    let listen_fds = listen_fds();

    let handled = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ];
    let mut mask = SigSet::empty();
    handled.iter().for_each(|&sig| mask.add(sig));
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .ctx(|| "cannot block signals".into())?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "cannot create a signalfd".into())?;

    if !s.quiet {
        eprintln!(
            "Spawning container {} on {}.",
            s.machine,
            s.directory.display()
        );
        eprintln!("Press ^] three times within 1s to kill container.");
    }
    let result = (|| loop {
        let rec = record.as_ref().map(|h| &h.record);
        match run_once(
            s,
            mode,
            &cgroup,
            &sfd,
            &host_os_release,
            &Held {
                netns_path: netns_path.as_ref(),
                record: rec,
                userns: userns.as_ref(),
                listen_fds,
                control: control.as_ref(),
            },
        )? {
            Outcome::Exited(code) => return Ok(code),
            Outcome::Reboot if s.keep_unit => return Ok(133),
            Outcome::Reboot => continue,
        }
    })();
    registry::remove(&s.machine);
    if let Some(c) = &control {
        c.remove();
    }
    if let Some(h) = record {
        h.release();
    }
    if let Some(u) = userns {
        u.record.release();
    }
    // The cgroup is the name's lock: last, so a new start of the name
    // finds everything else released.
    if let Some(cg) = cgroup {
        cg.remove();
    }
    notify::notify_caller("STOPPING=1");
    result
}

/// Our device program on the container's cgroup.
fn attach_devices(s: &Settings, cg: &Cgroup) -> Result<()> {
    match devices::attach(cg.fd()) {
        // Nested in a container that denies bpf(2): its own device
        // program, on an ancestor of our cgroup, already applies to ours
        // (BPF_F_ALLOW_MULTI runs every ancestor's program).
        Err(e) if e.errno() == Some(nix::errno::Errno::EPERM) && in_container() => {
            if !s.quiet {
                eprintln!("nspawn: running inside a container that denies bpf(2): its device policy applies");
            }
            Ok(())
        }
        r => r,
    }
}

/// In the reaper of a runner whose container lived in a scope: if the
/// runner did not end it (its record is still there), wait until the
/// cgroup the record names has emptied (PID 1 dies with the runner), then
/// have machined forget the machine and systemd drop the scope, as the
/// runner would have.
fn end_recorded_scope(machine: &str, runner: i32) {
    let Some(r) = registry::read_record(machine).filter(|r| r.runner == runner) else {
        return;
    };
    if let Some(cg) = &r.cgroup {
        crate::cgroup::wait_empty_at(cg);
    }
    let _ = crate::systemd::bus::end_machine(machine, true, true);
}

/// Host paths named by mounts must exist before anything is started, as in
/// the reference ("Failed to stat ...").
fn check_sources(fs: &crate::mount::spec::FsSettings) -> Result<()> {
    use crate::mount::spec::{MountKind, Source};
    for m in &fs.mounts {
        let sources: Vec<&Source> = match &m.kind {
            MountKind::Bind { source, .. } => vec![source],
            MountKind::Overlay { lowers, upper, .. } => lowers.iter().chain(upper.iter()).collect(),
            _ => vec![],
        };
        for src in sources {
            if let Source::Host(p) = src {
                std::fs::metadata(p).ctx(|| format!("Failed to stat {}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// What the runner holds across reboots of the container.
pub(crate) struct Held<'a> {
    netns_path: Option<&'a OwnedFd>,
    record: Option<&'a crate::net::record::Record>,
    userns: Option<&'a crate::userns::Prepared>,
    listen_fds: u32,
    control: Option<&'a crate::control::Endpoint>,
}

fn run_once(
    s: &Settings,
    mode: place::Mode,
    cgroup: &Option<Cgroup>,
    sfd: &SignalFd,
    host_os_release: &[u8],
    held: &Held,
) -> Result<Outcome> {
    let Held {
        netns_path,
        record,
        userns,
        listen_fds,
        ..
    } = *held;
    let tty = console::is_tty(console::stdin()) && console::is_tty(console::stdout());
    let console_mode = ConsoleMode::resolve(Some(s.console), tty);
    let term = std::env::var("TERM").ok();
    let notify_sock = notify::guest_socket()?;
    let (ours, theirs) = channel::pair()?;
    let runner = sys::pidfd_self()?;
    let mut ns = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if s.private_network {
        ns |= libc::CLONE_NEWNET;
    }
    // One clone3 makes the user namespace and the others together, so the
    // new user namespace owns them all: root inside may then mount, set
    // the host name and configure its network (user_namespaces(7)).
    if userns.is_some() {
        ns |= libc::CLONE_NEWUSER;
    }
    // Root of a user namespace may not write the host's /var/log/journal:
    // the runner makes that side once the machine id is known.
    let journal_host = userns.is_some() && crate::journal::has_host_side(s.fs.link_journal);
    let wait_placed = mode.waits() || journal_host;
    let (pid, pidfd) = match sys::clone3(ns, cgroup.as_ref().map(|c| c.fd()))? {
        Forked::Child => {
            drop(ours);
            child::run(child::ChildCtx {
                settings: s,
                channel: theirs,
                runner,
                notify: &notify_sock,
                pty: console_mode.has_pty(),
                cgroup2: cgroup.is_some()
                    || (mode.waits() && crate::cgroup::unified_root().is_some()),
                wait_placed,
                container_uuid: s.uuid.map(Ok).unwrap_or_else(Id128::random)?,
                host_os_release,
                term: term.as_deref(),
                netns: netns_path.map(|f| f.as_fd()),
                wait_go: s.net.wants_links(),
                userns: userns.is_some(),
                bind_users: userns.map(|u| u.users.as_slice()).unwrap_or_default(),
                listen_fds,
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(theirs);
    drop(runner);

    let kill = |e: Error| {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = sys::wait_pidfd(pidfd.as_fd());
        e
    };
    // The child waits for its id maps before anything else; a cgroup made
    // before it is handed to its root before its init can want it.
    if let Some(u) = userns {
        // Binds first: a refused one must leave the tree as it was, before
        // `chown` ownership shifts it.
        let range = &u.record.range;
        let done = crate::userns::write_maps(pid, range, &u.users)
            .and_then(|_| crate::userns::binds::make(&s.fs.mounts, pid, range, &s.directory))
            .and_then(|binds| Ok((binds, u.start(pid, &s.directory)?)))
            .and_then(|(binds, tree)| {
                if let Some(cg) = cgroup {
                    cg.delegate(range.base, range.base)?;
                }
                ours.send_go_mounts(&channel::Idmapped { tree, binds })
            });
        done.map_err(kill)?;
    }

    // The links need the container's namespace, so they are made now; the
    // child waits for "go" before its payload starts.
    let network = match s.net.wants_links() {
        true => Some(crate::net::setup(&s.net, &s.machine, pid as u32, record).map_err(kill)?),
        false => None,
    };

    // The machine id comes first from the child; the scope and the
    // registration (which carries it) are made while the child waits.
    let machine_id = match ours.recv().map_err(kill)? {
        Msg::MachineId(id) => id,
        Msg::Error(msg) => {
            let _ = sys::wait_pidfd(pidfd.as_fd());
            return Err(Error::Invalid(msg));
        }
        _ => return Err(kill(Error::invalid("the container sent no machine id"))),
    };
    let placed = place::place(mode, s, pid, machine_id, held).map_err(kill)?;
    let result = (|| {
        if let Some(cg) = &placed.cgroup {
            attach_devices(s, cg)?;
            if let Some(u) = userns {
                cg.delegate(u.record.range.base, u.record.range.base)?;
            }
        }
        if let (true, Some(u)) = (journal_host, userns) {
            crate::journal::setup_host(
                &s.directory,
                &machine_id.plain(),
                s.fs.link_journal,
                s.fs.ephemeral,
                u.record.range.base,
            )?;
        }
        if wait_placed {
            ours.send_go()?;
        }
        if network.is_some() {
            ours.send_go()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let e = kill(e);
        placed.end(s);
        return Err(e);
    }
    let cgroup_path = cgroup
        .as_ref()
        .or(placed.cgroup.as_ref())
        .map(|c| c.path().to_path_buf());
    let result = watch(
        s,
        &ours,
        sfd,
        held,
        Running {
            pid,
            pidfd: pidfd.as_fd(),
            machine_id,
            cgroup: cgroup_path,
            console_mode,
            network: network.as_ref(),
            notify_sock: &notify_sock,
        },
    );
    placed.end(s);
    result
}

/// One run of the container, placed and about to start its payload.
struct Running<'a> {
    pid: i32,
    pidfd: BorrowedFd<'a>,
    machine_id: Id128,
    cgroup: Option<std::path::PathBuf>,
    console_mode: ConsoleMode,
    network: Option<&'a crate::net::Network>,
    notify_sock: &'a OwnedFd,
}

/// From the container's start to its end: its console, its record in the
/// registry, and the monitor loop.
fn watch(
    s: &Settings,
    ours: &channel::Channel,
    sfd: &SignalFd,
    held: &Held,
    run: Running,
) -> Result<Outcome> {
    let Running {
        pid,
        pidfd,
        machine_id,
        cgroup,
        console_mode,
        network,
        notify_sock,
    } = run;
    let (record, control) = (held.record, held.control);
    let mut pty = None;
    loop {
        match ours.recv()? {
            Msg::Console(master) => pty = Some(Pty::new(master)),
            Msg::Error(msg) => {
                let _ = sys::wait_pidfd(pidfd);
                return Err(Error::Invalid(msg));
            }
            Msg::Eof => break,
            Msg::Go(_) | Msg::MachineId(_) => {}
        }
    }
    registry::publish(&registry::Record {
        name: s.machine.clone(),
        class: "container".into(),
        service: "nspawn".into(),
        root: s.directory.clone(),
        leader: pid,
        runner: std::process::id() as i32,
        starts: registry::Starts::now(pid),
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
        bounding: s.security.retain(s.private_network),
        syscall_allow: s.security.syscall_allow.clone(),
        syscall_deny: s.security.syscall_deny.clone(),
        suppress_sync: s.security.suppress_sync,
        no_new_privileges: s.security.no_new_privileges,
        control: control.map(|c| c.path().to_path_buf()),
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
        pidfd,
        sfd,
        pty.as_mut().filter(|_| live),
        forward_in,
        Sources {
            notify_sock,
            dhcp: network.and_then(|n| n.dhcp.as_ref()),
            control,
        },
    )?;
    if let Some(p) = pty.as_mut() {
        p.drain(Some(console::stdout()));
    }
    drop(_raw);
    Ok(outcome(s, exit))
}

/// Descriptors the caller passed for the payload (sd_listen_fds(3)): only
/// if `$LISTEN_PID` names us, as the protocol wants.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        Some(n) if ours => n,
        _ => 0,
    }
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
            // Held open until this process exits, after the cleanup: its
            // end-of-file tells the caller the machine is gone.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(conn);
        }
        None => {}
    }
}

/// The monitor loop: returns when PID 1 of the container has exited.
fn supervise(
    s: &Settings,
    pidfd: BorrowedFd,
    sfd: &SignalFd,
    mut pty: Option<&mut Pty>,
    mut forward_in: bool,
    sources: Sources,
) -> Result<Exit> {
    let Sources {
        notify_sock,
        dhcp,
        control,
    } = sources;
    let output = Some(console::stdout());
    let mut term_requests = 0;
    let mut escape = Escape::default();
    let stdin = console::stdin();
    loop {
        let pty_live = pty.as_ref().is_some_and(|p| !p.hung_up);
        let pty_out = pty.as_ref().is_some_and(|p| p.wants_write());
        let mut fds = vec![
            PollFd::new(pidfd, PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(notify_sock.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(p) = pty.as_ref().filter(|_| pty_live) {
            let mut ev = PollFlags::POLLIN;
            if pty_out {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(p.master.as_fd(), ev));
        }
        let stdin_idx = fds.len();
        if forward_in && pty.is_some() && !pty_out {
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

        if let Some(p) = pty.as_deref_mut() {
            if p.hung_up {
                p.hung_up = false;
            }
            if !p.drain(output) {
                p.hung_up = true;
            }
            p.flush();
        }
        if notify_ready {
            notify::drain_guest(notify_sock);
        }
        if stdin_ready {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(stdin, &mut buf) {
                // As the reference: end of input on an interactive console
                // ends the container.
                Ok(0) => {
                    forward_in = false;
                    let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                }
                Ok(n) => {
                    if escape.feed(&buf[..n], Instant::now()) {
                        let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                    } else if let Some(p) = pty.as_deref_mut() {
                        p.send(&buf[..n]);
                    }
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => forward_in = false,
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                match info.ssi_signo as libc::c_int {
                    libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                        term_requests += 1;
                        let sig = if term_requests == 1 {
                            s.kill_signal()
                        } else {
                            libc::SIGKILL
                        };
                        if sig != libc::SIGKILL {
                            eprintln!("Trying to halt container. Send SIGTERM again to trigger immediate termination.");
                        }
                        let _ = sys::pidfd_send_signal(pidfd, sig);
                    }
                    libc::SIGWINCH => {
                        if let Some(p) = pty.as_deref() {
                            console::copy_winsize(console::stdout(), p.master.as_fd());
                        }
                    }
                    _ => {}
                }
            }
        }
        if child_done {
            if let Some(p) = pty.as_deref_mut() {
                p.drain(output);
            }
            return sys::wait_pidfd(pidfd);
        }
    }
}

/// Map how PID 1 ended to the runner's result, as the reference does.
fn outcome(s: &Settings, exit: Exit) -> Outcome {
    let name = &s.machine;
    match exit {
        Exit::Code(0) => {
            if !s.quiet {
                eprintln!("Container {name} exited successfully.");
            }
            Outcome::Exited(0)
        }
        Exit::Code(code) => {
            if !s.quiet {
                eprintln!("Container {name} failed with error code {code}.");
            }
            // 133 means "restart me" to the service template
            // (RestartForceExitStatus=133): a payload must not say it.
            Outcome::Exited(if code == 133 { 1 } else { code })
        }
        Exit::Signal(libc::SIGINT) => {
            if !s.quiet {
                eprintln!("Container {name} has been shut down.");
            }
            Outcome::Exited(0)
        }
        Exit::Signal(libc::SIGHUP) => {
            if !s.quiet {
                eprintln!("Container {name} is being rebooted.");
            }
            Outcome::Reboot
        }
        Exit::Signal(sig) => {
            eprintln!(
                "Container {name} terminated by signal {}.",
                signal_name(sig)
            );
            Outcome::Exited(1)
        }
    }
}
