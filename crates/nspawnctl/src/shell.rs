//! `shell` and `login`: a process inside a running machine — in all its
//! namespaces (through the leader's pidfd, setns(2)), in its cgroup, with
//! its capability bounding set — on a new pseudo terminal from the
//! machine's own devpts when we have a terminal, on plain pipes otherwise.
//! Works for any guest, with or without systemd inside. The first process
//! of ours the machine can see is `nspawn-inner join`, static from a
//! sealed memfd (see `child`; docs/design/hostile.md).

use crate::machine;
use clap::Args;
use libnspawn::console::{self, Escape, Pty, RawMode, Sink};
use libnspawn::registry::Record;
use libnspawn::user::{self, Account};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

#[derive(Args)]
pub struct ShellArgs {
    /// [USER@]NAME
    #[arg(value_name = "[USER@]NAME")]
    target: String,
    /// The command (default: the user's login shell)
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Set an environment variable (NAME=VALUE)
    #[arg(short = 'E', long = "setenv", value_name = "NAME=VALUE", action = clap::ArgAction::Append)]
    setenv: Vec<String>,
    /// Run as this user (same as USER@NAME)
    #[arg(long, value_name = "USER")]
    uid: Option<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(value_name = "NAME")]
    name: String,
}

/// All of the machine's namespaces but its PID namespace, which only the
/// session's process enters (in `nspawn-inner`).
const NAMESPACES: libc::c_int = libnspawn::sys::CONTAINER_NAMESPACES & !libc::CLONE_NEWPID;

/// What to run inside.
struct Spawn {
    argv: Vec<String>,
    env: Vec<String>,
    account: Option<Account>,
    pty: bool,
    home_cwd: bool,
}

pub fn shell(a: ShellArgs) -> Result<i32, String> {
    let (user, name) = match a.target.split_once('@') {
        Some((u, n)) => (Some(u.to_string()), n.to_string()),
        None => (a.uid.clone(), a.target.clone()),
    };
    let r = machine::get(&name)?;
    let leader = machine::leader(&r)?;
    let cgroup = open_cgroup(&r)?;
    let out = enter(&leader)?;
    let account = match user.as_deref() {
        None | Some("") => lookup("root").ok(),
        Some(u) => Some(lookup(u)?),
    };
    let acct = account.clone().unwrap_or_else(Account::root);
    let mut env = vec![
        format!("PATH={}", libnspawn::env::DEFAULT_PATH),
        format!("HOME={}", acct.home),
        format!("USER={}", acct.name),
        format!("LOGNAME={}", acct.name),
        format!("SHELL={}", acct.shell),
        "container=systemd-nspawn".to_string(),
    ];
    if let Ok(t) = std::env::var("TERM") {
        env.push(format!("TERM={t}"));
    }
    for e in &a.setenv {
        let (k, v) = libnspawn::env::parse_setenv(e, |n| std::env::var(n).ok())?;
        env.retain(|x| !x.starts_with(&format!("{k}=")));
        env.push(format!("{k}={v}"));
    }
    let interactive = console::is_tty(console::stdin()) && console::is_tty(console::stdout());
    let (argv, home_cwd) = if a.command.is_empty() {
        let shell = acct.shell.clone();
        let base = shell.rsplit('/').next().unwrap_or("sh").to_string();
        (vec![shell, format!("-{base}")], true)
    } else {
        (
            vec![a.command[0].clone(), a.command[0].clone()]
                .into_iter()
                .chain(a.command[1..].iter().cloned())
                .collect(),
            false,
        )
    };
    run(
        &r,
        &leader,
        cgroup,
        out,
        Spawn {
            argv,
            env,
            account: Some(acct),
            pty: interactive,
            home_cwd,
        },
    )
}

pub fn login(a: LoginArgs) -> Result<i32, String> {
    let r = machine::get(&a.name)?;
    let leader = machine::leader(&r)?;
    let cgroup = open_cgroup(&r)?;
    let out = enter(&leader)?;
    if !console::is_tty(console::stdin()) {
        return Err("login needs a terminal".into());
    }
    // The guest's own login: agetty (which runs login), else login.
    let program = [
        "/sbin/agetty",
        "/usr/sbin/agetty",
        "/bin/login",
        "/usr/bin/login",
        "/sbin/getty",
    ]
    .into_iter()
    .find(|p| std::fs::metadata(p).is_ok())
    .ok_or_else(|| {
        format!(
            "Machine {} has no way to log in (no agetty, getty or login in it).",
            r.name
        )
    })?;
    let env = vec![
        format!("PATH={}", libnspawn::env::DEFAULT_PATH),
        format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "vt220".into())
        ),
        "container=systemd-nspawn".to_string(),
    ];
    let argv = if program.ends_with("getty") {
        // agetty on our terminal (stdin): no clear, 8 bit, local line.
        vec![
            program.to_string(),
            program.to_string(),
            "--noclear".into(),
            "-8".into(),
            "-L".into(),
            "-".into(),
            "vt220".into(),
        ]
    } else {
        vec![program.to_string(), program.to_string()]
    };
    println!(
        "Connected to machine {}. Press ^] three times within 1s to exit session.",
        r.name
    );
    // Leaving with ^]^]^] ends the session by SIGKILL: that is success here.
    run(
        &r,
        &leader,
        cgroup,
        out,
        Spawn {
            argv,
            env,
            account: None,
            pty: true,
            home_cwd: false,
        },
    )?;
    println!("\nConnection to machine {} terminated.", r.name);
    Ok(0)
}

fn lookup(u: &str) -> Result<Account, String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    user::lookup(u, &read("/etc/passwd"), &read("/etc/group")).map_err(|e| e.to_string())
}

/// The machine's cgroup, opened on the host before we leave its mounts.
fn open_cgroup(r: &Record) -> Result<Option<OwnedFd>, String> {
    let Some(cg) = &r.cgroup else { return Ok(None) };
    nix::fcntl::open(
        cg,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(Some)
    .map_err(|e| format!("cannot open cgroup {}: {}", cg.display(), e.desc()))
}

/// Whether `enter` joined the machine's own user namespace (`-U`).
static JOINED_USERNS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Join the machine's namespaces but its PID namespace (the session's
/// process joins that: see `child`); joining its mount namespace also
/// makes its root ours. A machine with a user namespace of its own is
/// joined in that too (setns(2) takes it first, so the others are entered
/// with its capabilities); joining one's own user namespace is EINVAL,
/// which tells the two apart. Returns our terminal's output, opened
/// through the host's /proc before the machine's /proc (which the
/// machine's root controls) replaces it.
fn enter(leader: &OwnedFd) -> Result<Sink, String> {
    // Checked while our /proc is still the host's: inside, /proc/self does
    // not name us. Nothing after this starts a thread (see spawn_into).
    libnspawn::sys::ensure_single_threaded().map_err(|e| e.to_string())?;
    let out = Sink::stdout();
    // Non-dumpable before we take any of the machine's credentials: under
    // `-U` we are then owned by its user namespace, whose root could
    // otherwise ptrace us, read our memory or open our /proc/PID/exe
    // (CVE-2016-9962, CVE-2019-5736) were it to find us (we stay in the
    // host's PID namespace, which it cannot name). Non-dumpable, that
    // needs CAP_SYS_PTRACE in the host's user namespace.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("cannot make nspawnctl non-dumpable: {}", e.desc()))?;
    // SAFETY: setns with a valid pidfd and namespace flags.
    let mut r = unsafe { libc::setns(leader.as_raw_fd(), NAMESPACES | libc::CLONE_NEWUSER) };
    if r == 0 {
        JOINED_USERNS.store(true, std::sync::atomic::Ordering::Relaxed);
    } else if Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        r = unsafe { libc::setns(leader.as_raw_fd(), NAMESPACES) };
    }
    if r < 0 {
        return Err(format!(
            "cannot enter the machine: {}",
            Errno::last().desc()
        ));
    }
    Ok(out)
}

/// In a machine's user namespace our host uid 0 is nobody: become root of
/// that namespace (what the machine's own root is on its files).
fn become_namespace_root() -> Result<(), Errno> {
    if !JOINED_USERNS.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let (u, g) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
    nix::unistd::setresgid(g, g, g)?;
    nix::unistd::setgroups(&[])?;
    nix::unistd::setresuid(u, u, u)
}

fn run(
    r: &Record,
    leader: &OwnedFd,
    cgroup: Option<OwnedFd>,
    out: Sink,
    sp: Spawn,
) -> Result<i32, String> {
    // A pty from the machine's own devpts, so the session's terminal exists
    // inside (we are in its mount namespace now).
    let master = if sp.pty {
        let m = nix::fcntl::open(
            "/dev/pts/ptmx",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("cannot allocate a terminal in the machine: {}", e.desc()))?;
        let mut unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK takes a pointer to an int.
        unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
        Some(m)
    } else {
        None
    };
    let argv: Vec<CString> = sp
        .argv
        .iter()
        .map(|s| CString::new(s.as_str()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = sp
        .env
        .iter()
        .map(|s| CString::new(s.as_str()).unwrap_or_default())
        .collect();
    let mut relay = match master {
        Some(_) => None,
        None => Some(crate::relay::prepare()?),
    };
    let inner = libnspawn::inner::sealed().map_err(|e| e.to_string())?;
    let (pid, pidfd) = spawn_into(cgroup.as_ref().map(|c| c.as_fd()), || {
        let pipes = relay.as_ref().map(|r| &r.child);
        let into = Handed {
            leader,
            inner: &inner,
            master: master.as_ref(),
            pipes,
        };
        child(r, &sp, into, &argv, &env)
    })?;
    let _ = pid;
    let code = match (master, relay.take()) {
        (Some(m), _) => forward(m, pidfd.as_fd(), out)?,
        (None, Some(mut relay)) if !relay.is_empty() => {
            // The session's ends are its own now: ours would keep its
            // pipes from ever ending.
            relay.child = [None, None, None];
            relay.run(pidfd.as_fd());
            wait(pidfd.as_fd())?
        }
        (None, _) => wait(pidfd.as_fd())?,
    };
    Ok(code)
}

/// clone3 into the machine's cgroup (the session's process inherits it).
/// Falls back to a cgroup of our own below it where the guest's init
/// keeps its root free of processes (cgroup v2 with controllers).
fn spawn_into(
    cgroup: Option<BorrowedFd>,
    child: impl FnOnce() -> i32,
) -> Result<(i32, OwnedFd), String> {
    use libnspawn::sys::{clone3_raw, Forked};
    // SAFETY: nspawnctl starts no threads; checked in `enter`, before the
    // machine's /proc hid ours.
    let forked = match unsafe { clone3_raw(0, cgroup) } {
        Err(Errno::EBUSY) if cgroup.is_some() => {
            let name = format!("nspawnctl-{}", std::process::id());
            let parent = cgroup.unwrap();
            let _ = nix::sys::stat::mkdirat(
                parent,
                name.as_str(),
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            );
            let sub = nix::fcntl::openat(
                parent,
                name.as_str(),
                nix::fcntl::OFlag::O_RDONLY
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| format!("cannot make a cgroup in the machine: {}", e.desc()))?;
            // SAFETY: as above.
            unsafe { clone3_raw(0, Some(sub.as_fd())) }
        }
        r => r,
    };
    match forked.map_err(|e| format!("cannot start a process in the machine: {}", e.desc()))? {
        Forked::Child => {
            let code = child();
            // SAFETY: leave the child without running our destructors.
            unsafe { libc::_exit(code) }
        }
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}

/// What the session's process is handed: the machine's leader (for its
/// PID namespace), the sealed `nspawn-inner`, and its terminal or pipes.
struct Handed<'a> {
    leader: &'a OwnedFd,
    inner: &'a OwnedFd,
    master: Option<&'a OwnedFd>,
    pipes: Option<&'a [Option<OwnedFd>; 3]>,
}

/// In the new process, still in the host's PID namespace (which the
/// machine cannot name, so nothing in it can reach us): terminal,
/// confinement and identity, then `nspawn-inner join`, static from a
/// sealed memfd, which alone forks into the machine's PID namespace and
/// executes the session's program there. So the first process of ours the
/// machine sees maps nothing of the host's (without `-U` its root, holding
/// the host's CAP_SYS_PTRACE and CAP_SYS_ADMIN, could otherwise open our
/// /proc/PID/exe and the host's libc through /proc/PID/map_files).
fn child(r: &Record, sp: &Spawn, into: Handed, argv: &[CString], env: &[CString]) -> i32 {
    let fail = |what: &str, e: Errno| -> i32 {
        eprintln!("nspawnctl: {what}: {}", e.desc());
        1
    };
    if let Err(e) = become_namespace_root() {
        return fail("cannot become root in the machine's user namespace", e);
    }
    // For our children: nspawn-inner's.
    // SAFETY: setns with a valid pidfd.
    if unsafe { libc::setns(into.leader.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
        return fail("cannot enter the machine's PID namespace", Errno::last());
    }
    if let Some(m) = into.master {
        // SAFETY: the ioctl returns a new descriptor for the terminal's peer.
        let peer = unsafe {
            libc::ioctl(
                m.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY,
            )
        };
        if peer < 0 {
            return fail("cannot open the terminal", Errno::last());
        }
        // SAFETY: plain descriptor operations on our own terminal.
        unsafe {
            for fd in 0..3 {
                libc::dup2(peer, fd);
            }
            if peer > 2 {
                libc::close(peer);
            }
        }
    } else if let Some(p) = into.pipes {
        if let Err(e) = crate::relay::install(p) {
            return fail("cannot set up the session's standard descriptors", e);
        }
    }
    // Nothing of ours but 0-2 goes in: descriptors our caller left open
    // without close-on-exec included. The memfd closes with the execve.
    if let Err(e) = libnspawn::sys::close_all_but(&[into.inner.as_raw_fd()]) {
        eprintln!("nspawnctl: {e}");
        return 1;
    }
    // The machine's confinement: its bounding set, no_new_privs, and its
    // system call filter (loaded while we may still, before the user switch).
    if let Err(e) = libnspawn::security::caps::drop_bounding(r.bounding) {
        eprintln!("nspawnctl: {e}");
        return 1;
    }
    // SAFETY: prctl with integer arguments.
    if r.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return fail("cannot set no_new_privs", Errno::last());
    }
    let policy = match &r.syscall_policy {
        Some(p) => serde_json::from_value(p.clone())
            .map(Some)
            .map_err(|e| libnspawn::Error::invalid(format!("the machine's seccomp policy: {e}"))),
        None => Ok(None),
    };
    let loaded = policy.and_then(|p| {
        libnspawn::security::seccomp::Filters::assemble(
            libnspawn::security::bpf::Arch::HOST,
            p.as_ref(),
            r.bounding,
            &r.syscall_allow,
            &r.syscall_deny,
            r.suppress_sync,
        )?
        .load()
    });
    if let Err(e) = loaded {
        eprintln!("nspawnctl: {e}");
        return 1;
    }
    if let Some(a) = &sp.account {
        let groups: Vec<nix::unistd::Gid> = a.groups.iter().map(|&g| g.into()).collect();
        if let Err(e) = nix::unistd::setgroups(&groups)
            .and_then(|_| nix::unistd::setresgid(a.gid.into(), a.gid.into(), a.gid.into()))
            .and_then(|_| nix::unistd::setresuid(a.uid.into(), a.uid.into(), a.uid.into()))
        {
            return fail(&format!("cannot become {}", a.name), e);
        }
        let dir = if sp.home_cwd { a.home.as_str() } else { "/" };
        if nix::unistd::chdir(dir).is_err() {
            let _ = nix::unistd::chdir("/");
        }
    }
    // A bare command name is searched in the machine's default PATH.
    let cmd = argv[0].to_string_lossy().into_owned();
    let candidates: Vec<String> = if cmd.contains('/') {
        vec![cmd.clone()]
    } else {
        libnspawn::env::DEFAULT_PATH
            .split(':')
            .map(|d| format!("{d}/{cmd}"))
            .collect()
    };
    let cstr = |s: &str| CString::new(s).unwrap_or_default();
    let mut args = vec![
        cstr("join"),
        cstr(if into.master.is_some() { "t" } else { "-" }),
        cstr(&r.name),
        cstr(&candidates.len().to_string()),
    ];
    args.extend(candidates.iter().map(|c| cstr(c)));
    args.extend_from_slice(&argv[1..]);
    let e = libnspawn::inner::exec(into.inner.as_fd(), &args, env);
    fail("cannot execute nspawn-inner", e)
}

fn wait(pidfd: BorrowedFd) -> Result<i32, String> {
    match libnspawn::sys::wait_pidfd(pidfd).map_err(|e| e.to_string())? {
        libnspawn::sys::Exit::Code(c) => Ok(c),
        libnspawn::sys::Exit::Signal(s) => Ok(128 + s),
    }
}

/// Copy between our terminal and the session's until it ends; ^]^]^]
/// within a second ends the session. A session that floods its terminal
/// is read in turns, and never faster than our terminal takes it, so
/// typed input (the escape among it) is always read. Our terminal's size
/// is the session's, again after each SIGWINCH (a resized window, or
/// Cockpit's terminal sending a new size), as machinectl's does.
fn forward(master: OwnedFd, pidfd: BorrowedFd, mut output: Sink) -> Result<i32, String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    const TURN: usize = 16;
    let stdin = console::stdin();
    let _raw = RawMode::enter(stdin);
    // SIGWINCH read through a signalfd, blocked only now: the session was
    // forked before, with our mask as it was, so it still gets its own.
    // The mask is left so: SIGWINCH is ignored by default anyway.
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&winch), None)
        .map_err(|e| format!("cannot block SIGWINCH: {}", e.desc()))?;
    let resized = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("cannot create a signalfd: {}", e.desc()))?;
    console::copy_winsize(console::stdout(), master.as_fd());
    let mut pty = Pty::new(master);
    let mut escape = Escape::default();
    let mut input = true;
    loop {
        let mut fds = vec![
            PollFd::new(pidfd, PollFlags::POLLIN),
            PollFd::new(resized.as_fd(), PollFlags::POLLIN),
        ];
        let mut ev = PollFlags::empty();
        if !pty.hung_up && output.has_room() {
            ev |= PollFlags::POLLIN;
        }
        if pty.wants_write() {
            ev |= PollFlags::POLLOUT;
        }
        if !ev.is_empty() {
            fds.push(PollFd::new(pty.master.as_fd(), ev));
        }
        if let Some(fd) = output.waits_on() {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        let stdin_idx = fds.len();
        if input {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        let timeout = if pty.hung_up {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        if let Err(e) = nix::poll::poll(&mut fds, timeout) {
            if e == Errno::EINTR {
                continue;
            }
            return Err(format!("cannot poll: {}", e.desc()));
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (done, typed) = (ready(0), input && ready(stdin_idx));
        let winched = ready(1);
        drop(fds);
        if winched {
            while let Ok(Some(_)) = resized.read_signal() {}
            console::copy_winsize(console::stdout(), pty.master.as_fd());
        }
        output.flush();
        pty.drain(&mut output, Some(TURN));
        pty.flush();
        if typed {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) => input = false,
                Ok(n) => {
                    if escape.feed(&buf[..n], Instant::now()) {
                        // nspawn-inner kills the session.
                        let _ = libnspawn::sys::pidfd_send_signal(pidfd, libc::SIGTERM);
                    } else {
                        pty.send(&buf[..n]);
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => input = false,
            }
        }
        if done {
            pty.drain(&mut output, None);
            output.finish(None);
            return wait(pidfd);
        }
    }
}
