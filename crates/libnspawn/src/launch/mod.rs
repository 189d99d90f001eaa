//! Starting and supervising a container, in named stages that read top to
//! bottom:
//!
//! 1. `preflight`: checks with no side effects;
//! 2. `reserve`: everything the start holds on the host, as guards, the
//!    machine's name first (and the reaper, which shares them);
//! 3. per run of the container (again after a reboot): `spawn` (the
//!    container process, itself a guard that kills and reaps on drop),
//!    `wire` (what the runner does from outside: id maps, links,
//!    placement), and `supervise` (the monitor loop).
//!
//! Every resource is owned by one guard; a failure or a stop request at
//! any step drops what exists, in the order of the fields that hold it,
//! and a killed runner's reaper runs the same release code.

mod channel;
mod child;
pub(crate) mod failpoint;
mod host_limits;
pub mod oci_init;
pub use spawn::{filters, kept_capabilities};
mod place;
mod reaper;
mod reserve;
mod signals;
mod spawn;
mod stub;
mod supervise;

use crate::cgroup::Cgroup;
use crate::console::{self};
use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::security::devices;
use crate::settings::{ConsoleMode, Settings, StartMode};
use crate::{mount, notify};
use channel::Msg;
use reserve::{Held, Reservation};
use signals::Signals;
use spawn::Container;
use std::os::fd::AsFd;

/// How long the runner waits for one step of the container's own setup
/// (its root file system, its machine id): far more than it takes, but a
/// bound, so a container stuck in a mount never holds a start forever.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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
    failpoint::init();
    failpoint::mark("run");
    crate::sys::null_stdio(&[]);
    let signals = Signals::block()?;
    preflight(s)?;
    failpoint::stage("preflight", &signals)?;
    let mode = place::Mode::of(s);
    let res = reserve::reserve(s, mode, &signals)?;
    host_limits::raise_for(s);
    let host_os_release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    if !s.quiet {
        eprintln!(
            "Spawning container {} on {}.",
            s.machine,
            s.origin().display()
        );
        eprintln!("Press ^] three times within 1s to kill container.");
    }
    let mut streams = console::Streams::new();
    let result = (|| loop {
        match run_once(s, mode, &res, &signals, &host_os_release, &mut streams)? {
            Outcome::Exited(code) => return Ok(code),
            Outcome::Reboot if s.keep_unit => return Ok(133),
            Outcome::Reboot => continue,
        }
    })();
    failpoint::mark("exited");
    drop(res);
    failpoint::mark("released");
    notify::notify_caller("STOPPING=1");
    // Nothing of the machine is left: `nspawnctl terminate` may return,
    // and the console's last output wait for a slow reader.
    crate::control::release_waiters();
    streams.finish(None);
    result
}

/// Checks that need nothing held: the host paths named by mounts must
/// exist before anything is started, as in the reference ("Failed to
/// stat ...").
fn preflight(s: &Settings) -> Result<()> {
    use crate::mount::spec::{MountKind, Source};
    for m in &s.fs.mounts {
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

/// The tree must be there (after `--template` made it) and look like one.
fn check_tree(s: &Settings) -> Result<()> {
    let root = nix::fcntl::open(
        &s.directory,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("cannot open directory {}", s.directory.display()))?;
    mount::check_tree(root.as_fd(), &s.directory, s.start_mode == StartMode::Boot)
}

/// Our device program on the container's cgroup.
fn attach_devices(quiet: bool, cg: &Cgroup) -> Result<()> {
    match devices::attach(cg.fd()) {
        // Nested in a container that denies bpf(2): its own device
        // program, on an ancestor of our cgroup, already applies to ours
        // (BPF_F_ALLOW_MULTI runs every ancestor's program).
        Err(e) if e.errno() == Some(nix::errno::Errno::EPERM) && in_container() => {
            if !quiet {
                eprintln!("nspawn: running inside a container that denies bpf(2): its device policy applies");
            }
            Ok(())
        }
        r => r,
    }
}

/// One run of the container: what is undone when it ends, in this order
/// (the fields' order): the container killed and reaped first, then its
/// scope and registration, then its links.
struct Run<'a> {
    container: Container,
    placed: Option<place::Placed<'a>>,
    network: Option<crate::net::Network>,
}

fn run_once(
    s: &Settings,
    mode: place::Mode,
    res: &Reservation,
    signals: &Signals,
    host_os_release: &[u8],
    streams: &mut console::Streams,
) -> Result<Outcome> {
    let tty = console::is_tty(console::stdin()) && console::is_tty(console::stdout());
    let console_mode = ConsoleMode::resolve(Some(s.console), tty);
    let notify_sock = notify::guest_socket()?;
    let (ours, theirs) = channel::pair()?;
    // This run's mounts of the image, detached: the container process
    // attaches its copies; ours close once it exists.
    let image = match &res.image {
        Some(i) => Some((i.mount(!reserve::writes_tree(s))?, i.root_read_only)),
        None => None,
    };
    let container = spawn::container(
        s,
        spawn::Inputs {
            mode,
            held: &res.held,
            netns: res.netns_path.as_ref().map(|f| f.as_fd()),
            channel: theirs,
            notify: &notify_sock,
            pty: console_mode.has_pty(),
            host_os_release,
            image: image.as_ref().map(|(mounts, read_only)| child::ImageRoot {
                mounts,
                read_only: *read_only,
            }),
        },
    )?;
    let mut run = Run {
        container,
        placed: None,
        network: None,
    };
    failpoint::stage("spawn", signals)?;
    let mounted = image.as_ref().map(|(m, _)| m);
    let wired = wire(s, mode, &res.held, &mut run, &ours, signals, mounted);
    // Ours close now: the container process has its copies.
    drop(image);
    let machine_id = wired.map_err(|e| match ours.pending_error(run.container.pidfd()) {
        Some(msg) => Error::Invalid(msg),
        None => e,
    })?;
    supervise::watch(
        s,
        &ours,
        signals,
        &res.held,
        &run,
        supervise::Started {
            machine_id,
            console_mode,
            notify_sock: &notify_sock,
            streams,
        },
    )
}

/// What the runner does from outside once the container process exists,
/// while it waits: its id maps and idmapped mounts (of the tree, or of
/// `image`'s file systems), its links, its placement with the service
/// manager. Returns its machine id.
fn wire<'a>(
    s: &Settings,
    mode: place::Mode,
    held: &'a Held,
    run: &mut Run<'a>,
    ours: &channel::Channel,
    signals: &Signals,
    image: Option<&crate::disk::attach::Mounted>,
) -> Result<Id128> {
    let pid = run.container.pid;
    // The child waits for its id maps before anything else; a cgroup made
    // before it is handed to its root before its init can want it.
    if let Some(u) = &held.userns {
        let range = &u.record.range;
        crate::userns::write_maps(pid, range, &u.users)?;
        // Binds first: a refused one must leave the tree as it was, before
        // `chown` ownership shifts it.
        let binds = crate::userns::binds::make(&s.fs.mounts, pid, range, &s.directory)?;
        let tree = match image {
            Some(m) => u.idmap_image(pid, m).map(|()| None)?,
            None => u.start(pid, &s.directory, &|| signals.check())?,
        };
        if let Some(cg) = &held.cgroup {
            cg.delegate(range.base, range.base)?;
        }
        let sysfs = (!s.private_network)
            .then(|| mount::detached_sysfs(&s.knobs))
            .transpose()?;
        ours.send_go_mounts(&channel::GoMounts { tree, sysfs, binds })?;
        failpoint::stage("wire.userns", signals)?;
    }
    // The links need the container's namespace, so they are made now; the
    // child waits for "go" before its payload starts.
    if s.net.wants_links() {
        run.network = Some(crate::net::setup(
            &s.net,
            &s.machine,
            pid as u32,
            held.net.as_ref(),
        )?);
        failpoint::stage("wire.net", signals)?;
    }
    // While the child sets up its root: its system call filters, sent
    // last, which it waits for only before its payload.
    let filters = spawn::filters(s)?;
    failpoint::mark("wire.filters");
    // The cgroup made before it (ours, not a scope's) gets its device
    // program now, while the child sets up: the payload, which the child
    // starts only once it has the filters sent last, finds it in place.
    if let Some(cg) = &held.cgroup {
        attach_devices(s.quiet, cg)?;
    }
    // The machine id comes first from the child; the scope and the
    // registration (which carries it) are made while the child waits.
    let machine_id = match ours.recv_within(signals, SETUP_TIMEOUT)? {
        Msg::MachineId(id) => id,
        Msg::Error(msg) => return Err(Error::Invalid(msg)),
        _ => return Err(Error::invalid("the container sent no machine id")),
    };
    let ifindex = held
        .net
        .as_ref()
        .and_then(|r| r.record.host_link.as_deref())
        .and_then(|l| nix::net::if_::if_nametoindex(l).ok())
        .map(|i| i as i32);
    let placed = run
        .placed
        .insert(place::place(mode, s, &held.name, pid, machine_id, ifindex)?);
    failpoint::stage("wire.place", signals)?;
    if let Some(cg) = &placed.cgroup {
        attach_devices(s.quiet, cg)?;
        if let Some(u) = &held.userns {
            cg.delegate(u.record.range.base, u.record.range.base)?;
        }
    }
    if let (true, Some(u)) = (spawn::journal_host(s, held), &held.userns) {
        crate::journal::setup_host(
            &s.directory,
            &machine_id.plain(),
            s.fs.link_journal,
            s.fs.ephemeral,
            u.record.range.base,
        )?;
    }
    if spawn::waits_placed(s, mode, held) {
        ours.send_go()?;
    }
    if run.network.is_some() {
        ours.send_go()?;
    }
    ours.send_filters(&filters)?;
    Ok(machine_id)
}
