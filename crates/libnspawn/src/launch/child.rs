//! The container process, from `clone3` to `execve`: PID 1 of the new PID
//! namespace, in its own mount, IPC, UTS and cgroup namespaces. It builds the
//! file system, enters it, becomes the payload's identity and executes it.
//! Single-threaded and short; every failure goes up the channel as one line.

use super::channel::Channel;
use super::{failpoint, stub};
use crate::env::{self, EnvInput};
use crate::error::{Context, Error, Result};
use crate::id128::Id128;
use crate::inroot;
use crate::journal;
use crate::mount::spec::Volatile;
use crate::mount::{self, ApiOptions};
use crate::security::{self, caps, limits, seccomp};
use crate::settings::{Settings, StartMode};
use crate::user::{self, Account};
use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// What the runner hands the container process (inherited across clone).
pub struct ChildCtx<'a> {
    pub settings: &'a Settings,
    pub channel: Channel,
    pub runner: OwnedFd,
    pub notify: &'a OwnedFd,
    pub pty: bool,
    pub cgroup2: bool,
    pub container_uuid: Id128,
    pub host_os_release: &'a [u8],
    pub term: Option<String>,
    /// `--network-namespace-path`: the namespace to join.
    pub netns: Option<BorrowedFd<'a>>,
    /// Wait for the runner's "go" before starting the payload (it makes
    /// the network links after `clone3`).
    pub wait_go: bool,
    /// Wait, once the machine id is sent, until the runner has placed us
    /// in the machine's scope (made around a running process) and, under a
    /// user namespace, made the host's side of `--link-journal`.
    pub wait_placed: bool,
    /// In a user namespace of its own: wait for the maps first.
    pub userns: bool,
    /// The capabilities kept (`spawn::kept_capabilities`).
    pub retain: u64,
    /// `--bind-user`: homes and user records to set up.
    pub bind_users: &'a [crate::userns::bind_user::BoundUser],
    /// Descriptors 3.. passed on to the payload (`$LISTEN_FDS`).
    pub listen_fds: u32,
    /// `-i`: the image's file systems, to attach as the root.
    pub image: Option<ImageRoot<'a>>,
    /// `nspawn-oci create`: the exec FIFO (`O_PATH`) to block on, set up,
    /// until `start` opens it; the runtime exits meanwhile, so from then
    /// on the container no longer dies with it.
    pub exec_fifo: Option<OwnedFd>,
    /// `nspawn-oci create`: the hooks of the container's namespaces, and
    /// whether to wait, mounts made, for the runtime's own.
    pub oci_hooks: Option<&'a crate::oci::hooks::ContainerHooks>,
}

/// A disk image's detached mounts for one run, and whether its root is
/// read-only whatever the options (squashfs, the partition's flag).
#[derive(Clone, Copy)]
pub struct ImageRoot<'a> {
    pub mounts: &'a crate::disk::attach::Mounted,
    pub read_only: bool,
}

/// Never returns: executes the payload or exits after reporting the error.
pub fn run(ctx: ChildCtx) -> ! {
    let err = match setup_and_exec(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    ctx.channel.send_error(&err.to_string());
    // SAFETY: _exit is always safe; nothing to flush in this process.
    unsafe { libc::_exit(1) }
}

/// Exit quietly: the runner failed (and says why) or is gone.
fn runner_gone() -> ! {
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(1) }
}

/// Wait for the runner's "go" (with what it carries).
fn wait_go(channel: &Channel) -> super::channel::GoMounts {
    match channel.recv() {
        Ok(super::channel::Msg::Go(m)) => m,
        _ => runner_gone(),
    }
}

/// The stages, in order: namespaces, root file system, the rest of the
/// file system, then identity, confinement and exec.
fn setup_and_exec(ctx: &ChildCtx) -> Result<Infallible> {
    let s = ctx.settings;
    // Die with the runner. It may have died before this was armed: its
    // pidfd turns readable when it exits.
    die_with_runner(ctx.runner.as_fd());
    reset_signals();
    // The hooks' `pid` is the host's (runtime-spec, state): read from the
    // host's /proc, still mounted here.
    let host_pid = match ctx.oci_hooks {
        Some(_) => host_pid()?,
        None => 0,
    };
    failpoint::hit("child.start")?;
    let mut idmapped = namespaces(ctx)?;
    // Before our /proc (whose sys is read-only) hides the host's.
    let sysctl = crate::sysctl::open(&s.sysctl)?;
    let image = ctx.image.map(|i| i.mounts);
    let tree = mount::root::prepare(&s.directory, &s.fs, idmapped.tree.take(), image)?;
    if image.is_some() {
        // A tree was checked before its start; an image only now, with
        // its /usr partition in place.
        mount::check_tree(tree.as_fd(), s.origin(), s.start_mode == StartMode::Boot)?;
    }
    let root_fd = match &s.fs.pivot_root {
        Some((new, old)) => pivot_root_dir(tree.as_fd(), new, old.as_deref())?,
        None => tree,
    };
    let root = root_fd.as_fd();
    let machine_id = machine_id(root, &s.directory)?;
    // Looked up in the tree's own files, before anything else is mounted.
    let account = match s.user.as_deref() {
        // As the reference: root, by name or number, is a reset to 0 with
        // no supplementary groups, whatever the tree's files say.
        Some(u @ ("root" | "0")) => Some(Account {
            groups: vec![],
            ..lookup_user(root, u).unwrap_or_else(|_| Account::root())
        }),
        Some(u) => Some(lookup_user(root, u)?),
        None => s.identity.as_ref().map(|id| numeric_account(root, id)),
    };
    let container_uuid = machine_id.unwrap_or(ctx.container_uuid);
    failpoint::hit("child.root")?;
    ctx.channel.send_id(container_uuid)?;
    if ctx.wait_placed {
        wait_go(&ctx.channel);
    }
    file_system(ctx, root, container_uuid, account.as_ref(), idmapped)?;
    failpoint::hit("child.mounts")?;
    if let Some(h) = ctx.oci_hooks {
        create_hooks(&ctx.channel, h, host_pid)?;
    }
    mount::enter_root(root)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    setup_stdio(ctx.pty)?;
    if ctx.wait_go {
        wait_go(&ctx.channel);
    }
    let filters = match ctx.channel.recv() {
        Ok(super::channel::Msg::Filters(f)) => f,
        _ => runner_gone(),
    };
    // In every namespace of ours, with the runner's links in.
    crate::sysctl::apply(sysctl, &s.sysctl)?;
    confine_and_exec(ctx, container_uuid, account.as_ref(), &filters, host_pid)
}

/// Become root of our user namespace (if any), join or set up the network
/// namespace. Returns the runner's idmapped mounts. (Born outside the v1
/// hierarchies' root cgroups: `spawn` left them before it cloned us.)
fn namespaces(ctx: &ChildCtx) -> Result<super::channel::GoMounts> {
    let idmapped = if ctx.userns {
        let m = become_namespace_root(&ctx.channel, &ctx.settings.directory)?;
        die_with_runner(ctx.runner.as_fd());
        m
    } else {
        Default::default()
    };
    match ctx.netns {
        Some(ns) => nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| "cannot join the network namespace".into())?,
        // A namespace of our own (clone3 made it): its loopback starts down.
        None if ctx.settings.private_network => crate::net::loopback_up()?,
        None => {}
    }
    Ok(idmapped)
}

/// Everything mounted below the root, before we enter it: the cgroup
/// namespace, the API file systems, /dev and the console, /etc files,
/// custom mounts, credentials, the journal, read-only, bound users,
/// /run/host, and the host name.
fn file_system(
    ctx: &ChildCtx,
    root: BorrowedFd,
    container_uuid: Id128,
    account: Option<&Account>,
    from_runner: super::channel::GoMounts,
) -> Result<()> {
    let s = ctx.settings;
    // In the container's cgroup now (clone3 put us there, or the runner
    // moved us); a namespace made now is rooted there (a CLONE_NEWCGROUP
    // in clone3 itself would be rooted at the runner's cgroup:
    // copy_namespaces() runs first). Made on v1-only hosts too, for the v1
    // hierarchies' sake (release_agent).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .ctx(|| "cannot create the cgroup namespace".into())?;
    let run = mount::setup_api(
        root,
        &ApiOptions {
            private_network: s.private_network,
            knobs: &s.knobs,
            boot_id: Id128::random()?,
            cgroup2: ctx.cgroup2,
            host_os_release: ctx.host_os_release,
            container_uuid,
            userns: ctx.userns,
            sysfs: from_runner.sysfs.as_ref().map(|f| f.as_fd()),
        },
    )?;
    ctx.channel
        .send_kmsg(&mount::cover_kmsg(root, run.as_fd())?)?;
    failpoint::mark("child.api");
    if let Some(master) = mount::setup_dev(root, ctx.pty, ctx.userns)? {
        ctx.channel.send_fd(&master)?;
    }
    mount::make_nodes(root, &s.fs.device_nodes, ctx.userns)?;
    failpoint::mark("child.dev");
    let fs = &s.fs;
    // Under --volatile=yes|overlay the tree is read-only anyway, below a
    // writable layer: --read-only changes nothing there (the reference's
    // etc_writable()).
    let layered = matches!(fs.volatile, Volatile::Yes | Volatile::Overlay);
    let root_read_only = fs.read_only && !layered;
    // A read-only image (squashfs, erofs, a read-only partition) cannot be
    // written either, unless a layer is on top.
    let image_read_only = ctx.image.is_some_and(|i| i.read_only) && !layered;
    let read_only = root_read_only || image_read_only || fs.volatile == Volatile::State;
    // Custom mounts first, as the reference: a bind or overlay on /etc
    // gets the resolv.conf and localtime, instead of hiding them.
    mount::custom::mount_all(
        root,
        run.as_fd(),
        &fs.mounts,
        ctx.userns.then_some(from_runner.binds),
    )?;
    // A network we route and masquerade reaches the host's resolvers.
    let isolated = s.private_network && !crate::net::reaches_host_resolvers(&s.net);
    mount::etc::setup_resolv_conf(root, fs.resolv_conf, isolated, read_only)?;
    mount::etc::setup_timezone(root, fs.timezone, read_only)?;
    mount::write_credentials(
        run.as_fd(),
        &fs.credentials,
        account.map(|a| (a.uid, a.gid)),
    )?;
    journal::setup(
        root,
        &s.directory,
        &container_uuid.plain(),
        fs.link_journal,
        fs.ephemeral,
        ctx.userns,
    )?;
    if root_read_only {
        mount::root::make_read_only(root)?;
    }
    crate::userns::bind_user::setup(run.as_fd(), ctx.bind_users)?;
    mount::finish_run_host(run.as_fd(), ctx.notify.as_fd())?;
    nix::unistd::sethostname(s.hostname())
        .ctx(|| format!("cannot set the host name to {}", s.hostname()))
}

/// Inside the root now: the bounding set, limits, the environment and the
/// descriptors the payload gets, the system call filter, then the user's
/// identity and capabilities, and exec.
fn confine_and_exec(
    ctx: &ChildCtx,
    container_uuid: Id128,
    account: Option<&Account>,
    filters: &seccomp::Filters,
    host_pid: i32,
) -> Result<Infallible> {
    let s = ctx.settings;
    let sec = &s.security;
    let retain = ctx.retain;
    caps::drop_bounding(retain)?;
    limits::apply(&sec.limits)?;
    let uuid = container_uuid.to_string();
    let host_os_release = String::from_utf8_lossy(ctx.host_os_release);
    let mut envp = env::build(&EnvInput {
        boot: s.start_mode == StartMode::Boot,
        term: ctx.term.as_deref(),
        container_uuid: &uuid,
        // $USER and $LOGNAME as given (`-u 1000` is "1000"), as the reference.
        user: account.map(|a| (s.user.as_deref().unwrap_or(&a.name), a.home.as_str())),
        host_os_release: &host_os_release,
        setenv: &s.setenv,
        credentials: !s.fs.credentials.is_empty(),
        container_service: &s.knobs.container_service,
    });
    pass_descriptors(ctx.listen_fds, s.start_mode, &mut envp)?;
    if let Some(fifo) = &ctx.exec_fifo {
        wait_exec_fifo(ctx, fifo, host_pid)?;
    }
    // The stub's program, copied while the filter cannot refuse it.
    let stub = match s.start_mode {
        StartMode::Pid2 => Some(crate::inner::sealed()?),
        _ => None,
    };
    filters.load()?;
    failpoint::mark("child.filtered");
    if let Some(inner) = stub {
        stub::fork_stub(inner)?;
    }
    if let Some(a) = account {
        caps::keep_across_setuid(sec.caps_ambient | sec.process_caps.map_or(0, |p| p.permitted))?;
        become_user(a)?;
        if ctx.exec_fifo.is_none() {
            die_with_runner(ctx.runner.as_fd());
        }
    }
    if let Some(dir) = &s.chdir {
        nix::unistd::chdir(dir.as_str())
            .ctx(|| format!("cannot change to working directory {dir}"))?;
    }
    let root = !matches!(account, Some(a) if a.uid != 0);
    security::finish(sec, retain, root)?;
    failpoint::hit("child.exec")?;
    exec_payload(s, account, &envp)
}

/// `nspawn-oci create`'s handshake, as runc's: no longer die with the
/// runtime (it exits once we are ready), tell it we are, then block
/// opening the FIFO for writing until `start` opens it for reading. A
/// command that cannot be found fails here, while `create` still waits
/// to report it (as runc's init looks it up before the FIFO).
fn wait_exec_fifo(ctx: &ChildCtx, fifo: &OwnedFd, host_pid: i32) -> Result<()> {
    let s = ctx.settings;
    if let Some(cmd) = s.parameters.first() {
        let dir = s.chdir.as_deref().unwrap_or("/");
        let found = search_path(cmd).iter().any(|p| {
            let p = if p.starts_with('/') {
                p.clone()
            } else {
                format!("{dir}/{p}")
            };
            nix::unistd::access(p.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
                && std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        });
        if !found {
            return Err(Error::invalid(format!(
                "exec: \"{cmd}\": executable file not found in $PATH: no such file or directory"
            )));
        }
    }
    // SAFETY: prctl with integer arguments; 0 disarms the death signal.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    if runner_ended(ctx.runner.as_fd()) {
        runner_gone();
    }
    ctx.channel.send_ready()?;
    // Nothing of the runtime's stays open while we wait (its lock on the
    // container's record is a descriptor too): only the standard ones,
    // those passed on, and the FIFO.
    let keep = 3 + ctx.listen_fds;
    let fifo_fd = fifo.as_raw_fd() as u32;
    if fifo_fd > keep {
        crate::sys::close_range(keep, fifo_fd - 1, false)?;
    }
    crate::sys::close_range(fifo_fd.max(keep - 1) + 1, u32::MAX, false)?;
    // Through our own /proc: the FIFO's host path is out of reach now.
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let w = nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "cannot open the exec FIFO".into())?;
    // `start` has opened it: the `startContainer` hooks run now, in our
    // namespaces and root (runtime-spec), and `start` reads how they
    // went: "0", or the error line, which is ours too.
    let hooks = ctx
        .oci_hooks
        .map(|h| {
            let state = h.state(host_pid, "created");
            crate::oci::hooks::run(&h.start_container, "startContainer", &state)
        })
        .unwrap_or(Ok(()));
    let word = match &hooks {
        Ok(()) => "0",
        Err(e) => e.as_str(),
    };
    nix::unistd::write(&w, word.as_bytes()).ctx(|| "cannot write the exec FIFO".into())?;
    hooks.map_err(Error::Invalid)
}

/// Mounts made, before we enter the root: the runtime's `prestart` and
/// `createRuntime` hooks (it says "go" once they ran), then the
/// `createContainer` ones, run here: in the container's namespaces, with
/// the host's paths still in reach (runtime-spec).
fn create_hooks(
    channel: &Channel,
    h: &crate::oci::hooks::ContainerHooks,
    host_pid: i32,
) -> Result<()> {
    if h.runtime {
        channel.send_mounted()?;
        wait_go(channel);
    }
    let state = h.state(host_pid, "creating");
    crate::oci::hooks::run(&h.create_container, "createContainer", &state).map_err(Error::Invalid)
}

/// Our PID in the host's PID namespace: what the host's /proc (still
/// the one mounted) says `self` is.
fn host_pid() -> Result<i32> {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .ok_or_else(|| Error::invalid("cannot read our PID from /proc/self"))
}

/// Wait for the runner to write our id maps (user_namespaces(7): until
/// then we are nobody inside), then become root of the namespace: uid and
/// gid 0 inside, no supplementary groups of the host's. Returns the
/// idmapped mounts the runner made.
fn become_namespace_root(
    channel: &Channel,
    directory: &std::path::Path,
) -> Result<super::channel::GoMounts> {
    let tree = wait_go(channel);
    // Still the host's uid 0: the tree's path resolves for us, not for
    // root of the namespace if a directory above it is closed to others.
    let reach = mount::root::cover_unsearchable(directory)?;
    let root = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root)
        .ctx(|| "cannot become group 0 in the user namespace".into())?;
    nix::unistd::setgroups(&[]).ctx(|| "cannot drop the supplementary groups".into())?;
    let root = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root)
        .ctx(|| "cannot become root in the user namespace".into())?;
    if let Some(r) = reach {
        r.finish(directory)?;
    }
    Ok(tree)
}

/// Die with the runner, and check it did not die already (then its pidfd
/// is readable). Armed again after each change of our credentials, which
/// clears it (prctl(2), PR_SET_PDEATHSIG).
fn die_with_runner(runner: BorrowedFd) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // Checked after arming: a runner that died before is seen here.
    if runner_ended(runner) {
        runner_gone();
    }
}

/// Whether the runner's pidfd says it has exited.
fn runner_ended(runner: BorrowedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(runner, nix::poll::PollFlags::POLLIN)];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0
}

/// The tree's own machine id wins; a missing, empty or "uninitialized"
/// `/etc/machine-id` means none (the guest's init then takes
/// `$container_uuid`).
fn machine_id(root: BorrowedFd, directory: &std::path::Path) -> Result<Option<Id128>> {
    let Some(data) = inroot::read_file(root, "/etc/machine-id")? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&data);
    let text = text.trim();
    if text.is_empty() || text == "uninitialized" {
        return Ok(None);
    }
    Id128::parse(text).map(Some).map_err(|_| {
        Error::invalid(format!(
            "invalid machine id in {}/etc/machine-id",
            directory.display()
        ))
    })
}

/// The payload gets 0, 1, 2 and, when the caller passed some for it
/// (sd_listen_fds(3)), 3 .. 3+n with `$LISTEN_FDS`; every other descriptor
/// is closed on exec, whoever opened it.
fn pass_descriptors(n: u32, mode: StartMode, envp: &mut Vec<String>) -> Result<()> {
    crate::sys::close_range(3 + n, u32::MAX, true)?;
    if n == 0 {
        return Ok(());
    }
    for fd in 3..3 + n as libc::c_int {
        // SAFETY: clearing FD_CLOEXEC on a descriptor we were given.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // The payload's PID inside: 1, or 2 behind the --as-pid2 stub.
    let pid = if mode == StartMode::Pid2 { 2 } else { 1 };
    envp.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
    envp.push(format!("LISTEN_FDS={n}"));
    envp.push(format!("LISTEN_PID={pid}"));
    Ok(())
}

fn reset_signals() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: installing the default disposition.
            let _ = unsafe { sigaction(sig, &dfl) };
        }
    }
    for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: as above, for the real-time signals nix does not enumerate.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The console becomes stdin, stdout and stderr, and our controlling
/// terminal; without one we keep the caller's descriptors (`--pipe`).
fn setup_stdio(pty: bool) -> Result<()> {
    let _ = nix::unistd::setsid();
    if !pty {
        return Ok(());
    }
    let fd = nix::fcntl::open(
        "/dev/console",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "cannot open /dev/console".into())?;
    // SAFETY: TIOCSCTTY with argument 0 on a terminal we opened.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .ctx(|| "cannot make /dev/console the controlling terminal".into())?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        Errno::result(unsafe { libc::dup2(fd.as_raw_fd(), target) })
            .ctx(|| "cannot connect to /dev/console".into())?;
    }
    Ok(())
}

fn lookup_user(root: BorrowedFd, user: &str) -> Result<Account> {
    let read = |p: &str| {
        inroot::read_file(root, p)
            .map(|d| String::from_utf8_lossy(&d.unwrap_or_default()).into_owned())
    };
    user::lookup(user, &read("/etc/passwd")?, &read("/etc/group")?)
}

/// A user by number: its name and home from the tree's files where it has
/// an entry (for `$USER` and `$HOME`), its groups exactly as given.
fn numeric_account(root: BorrowedFd, id: &user::Identity) -> Account {
    let found = lookup_user(root, &id.uid.to_string()).ok();
    Account {
        name: found
            .as_ref()
            .map_or_else(|| id.uid.to_string(), |a| a.name.clone()),
        uid: id.uid,
        gid: id.gid,
        home: found
            .as_ref()
            .map_or_else(|| "/".into(), |a| a.home.clone()),
        shell: found.map_or_else(|| "/bin/sh".into(), |a| a.shell),
        groups: id.groups.clone(),
    }
}

/// `--pivot-root=NEW[:OLD]`: NEW (inside the tree) becomes the root; the
/// tree's own root is reachable at OLD inside it, or not at all.
fn pivot_root_dir(tree: BorrowedFd, new: &str, old: Option<&str>) -> Result<OwnedFd> {
    let dir = inroot::open_dir(tree, new).ctx(|| format!("cannot open {new} for --pivot-root"))?;
    let p = inroot::proc_fd(dir.as_fd());
    nix::mount::mount(
        Some(p.as_str()),
        p.as_str(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("cannot bind {new} for --pivot-root"))?;
    let newroot = inroot::open_dir(tree, new).ctx(|| format!("cannot open {new}"))?;
    if let Some(old) = old {
        let t = inroot::mkdir_p(newroot.as_fd(), old, 0o755)?;
        mount::mount_on(
            Some(inroot::proc_fd(tree).as_str()),
            t.as_fd(),
            None,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None,
            &format!("the old root on {old}"),
        )?;
    }
    Ok(newroot)
}

fn become_user(a: &Account) -> Result<()> {
    if std::fs::metadata(&a.home).is_err() {
        // As the reference: the home directory is created, owned by the user.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&a.home)
            .ctx(|| format!("cannot create home directory {}", a.home))?;
        nix::unistd::chown(a.home.as_str(), Some(a.uid.into()), Some(a.gid.into()))
            .ctx(|| format!("cannot chown home directory {}", a.home))?;
    }
    let groups: Vec<nix::unistd::Gid> = a.groups.iter().map(|&g| g.into()).collect();
    nix::unistd::setgroups(&groups)
        .ctx(|| format!("cannot set supplementary groups of {}", a.name))?;
    nix::unistd::setresgid(a.gid.into(), a.gid.into(), a.gid.into())
        .ctx(|| format!("cannot change to group {}", a.gid))?;
    nix::unistd::setresuid(a.uid.into(), a.uid.into(), a.uid.into())
        .ctx(|| format!("cannot change to user {}", a.name))
}

use std::os::unix::fs::DirBuilderExt;

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("argument contains a NUL byte: {s:?}")))
}

fn exec_payload(s: &Settings, account: Option<&Account>, envp: &[String]) -> Result<Infallible> {
    let envp: Vec<CString> = envp.iter().map(|e| cstr(e)).collect::<Result<_>>()?;
    let args: Vec<CString> = s
        .parameters
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<_>>()?;
    match s.start_mode {
        StartMode::Boot => {
            let mut last = Errno::ENOENT;
            for init in [
                "/usr/lib/systemd/systemd",
                "/lib/systemd/systemd",
                "/sbin/init",
            ] {
                let path = cstr(init)?;
                let mut argv = vec![path.clone()];
                argv.extend(args.iter().cloned());
                last = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
            }
            Err(last).ctx(|| "cannot execute an init in the container (tried /usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/init)".into())
        }
        _ if !args.is_empty() => {
            let cmd = &s.parameters[0];
            let mut last = Errno::ENOENT;
            for path in search_path(cmd) {
                let p = cstr(&path)?;
                match nix::unistd::execve(&p, &args, &envp).unwrap_err() {
                    // Keep looking on the path, as execvp(3) does.
                    e @ (Errno::ENOENT | Errno::ENOTDIR) => {
                        if last == Errno::ENOENT {
                            last = e;
                        }
                    }
                    e => last = e,
                }
            }
            Err(last).ctx(|| format!("cannot execute {cmd}"))
        }
        _ => {
            let home = account
                .map(|a| a.home.clone())
                .unwrap_or_else(|| "/root".into());
            if s.chdir.is_none() {
                // As the reference: a home that cannot be entered leaves us in /.
                let _ = nix::unistd::chdir(home.as_str());
            }
            // The reference ignores root's passwd entry here.
            let own = account.map(|a| a.shell.clone());
            let mut last = Errno::ENOENT;
            for shell in own
                .iter()
                .map(String::as_str)
                .chain(["/bin/bash", "/bin/sh"])
            {
                let name = shell.rsplit('/').next().unwrap_or(shell);
                let argv = [cstr(&format!("-{name}"))?];
                last = nix::unistd::execve(&cstr(shell)?, &argv, &envp).unwrap_err();
            }
            Err(last).ctx(|| "cannot execute a shell in the container".into())
        }
    }
}

/// Candidate paths for a command, searched on the container's default PATH
/// (execvp(3) would search the runner's own `$PATH`).
fn search_path(cmd: &str) -> Vec<String> {
    if cmd.contains('/') {
        return vec![cmd.to_string()];
    }
    env::DEFAULT_PATH
        .split(':')
        .map(|d| format!("{d}/{cmd}"))
        .collect()
}
