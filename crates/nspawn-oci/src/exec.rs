//! `exec`: another process in a running container, joined as
//! `nspawnctl shell` joins a machine (docs/design/hostile.md): we are
//! non-dumpable before `setns` (through the container process's pidfd),
//! the new process starts by `clone3` in the container's v2 cgroup and
//! PID namespace, moves itself into its v1 cgroups, holds no descriptor of
//! ours when it executes (closed, not close-on-exec), and is confined like
//! the container's process: bounding set, no_new_privs, its system call
//! filters (the bundle's policy, else our allow list; loaded before the
//! user switch), then the process's
//! user, capabilities, directory and environment.

use crate::cli::ExecArgs;
use crate::state;
use anyhow::{anyhow, bail, Context, Result};
use libnspawn::security::{caps, seccomp, ProcessCaps};
use libnspawn::sys::{clone3_raw, Forked};
use nix::errno::Errno;
use serde_json::Value;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

const NAMESPACES: libc::c_int = libnspawn::sys::CONTAINER_NAMESPACES;

/// The process to start, from `--process` or the command line.
struct Proc {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    terminal: bool,
    /// `consoleSize`: (rows, columns).
    console_size: Option<(u16, u16)>,
    caps: Option<(u64, ProcessCaps, u64)>,
    no_new_privileges: bool,
}

fn cap_mask(v: &Value) -> Result<u64> {
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    caps::parse_list(&names.join(",")).map_err(|e| anyhow!("{e}"))
}

fn process(a: &ExecArgs, defaults: &Value) -> Result<Proc> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut p = match &a.process {
        Some(f) => {
            let v: Value = serde_json::from_slice(
                &std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
            )
            .with_context(|| format!("{}: not JSON", f.display()))?;
            let c = &v["capabilities"];
            let caps = if c.is_object() {
                Some((
                    cap_mask(&c["bounding"])?,
                    ProcessCaps {
                        effective: cap_mask(&c["effective"])?,
                        permitted: cap_mask(&c["permitted"])?,
                        inheritable: cap_mask(&c["inheritable"])?,
                    },
                    cap_mask(&c["ambient"])?,
                ))
            } else {
                None
            };
            Proc {
                args: strings(&v["args"]),
                env: strings(&v["env"]),
                cwd: v["cwd"].as_str().unwrap_or("/").to_string(),
                uid: v["user"]["uid"].as_u64().unwrap_or(0) as u32,
                gid: v["user"]["gid"].as_u64().unwrap_or(0) as u32,
                groups: v["user"]["additionalGids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| g.as_u64().map(|g| g as u32))
                            .collect()
                    })
                    .unwrap_or_default(),
                terminal: v["terminal"].as_bool().unwrap_or(false),
                console_size: crate::console::size(&v),
                caps,
                no_new_privileges: v["noNewPrivileges"].as_bool().unwrap_or(false),
            }
        }
        None => Proc {
            args: a.command.clone(),
            env: strings(&defaults["env"]),
            cwd: defaults["cwd"].as_str().unwrap_or("/").to_string(),
            uid: 0,
            gid: 0,
            groups: vec![],
            terminal: a.tty,
            console_size: None,
            caps: None,
            no_new_privileges: false,
        },
    };
    // Arguments on the command line win over `--process`'s.
    if !a.command.is_empty() {
        p.args = a.command.clone();
    }
    p.env.extend(a.env.iter().cloned());
    if let Some(c) = &a.cwd {
        p.cwd = c.clone();
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        p.uid = uid.parse().map_err(|_| anyhow!("invalid --user {u}"))?;
        p.gid = gid.parse().map_err(|_| anyhow!("invalid --user {u}"))?;
    }
    p.terminal |= a.tty;
    p.no_new_privileges |= a.no_new_privs;
    if p.args.is_empty() {
        bail!("exec: no command given");
    }
    Ok(p)
}

fn open_flags(p: &Path, flags: nix::fcntl::OFlag) -> Result<OwnedFd> {
    nix::fcntl::open(
        p,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", p.display()))
}

fn connect(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let s = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    nix::sys::socket::connect(s.as_raw_fd(), &UnixAddr::new(path)?)
        .with_context(|| format!("cannot connect to {}", path.display()))?;
    Ok(s)
}

pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    // What we need from the record, then the lock goes: a waiting exec
    // must not hold `delete` off.
    let (st, status) = {
        let dir = state::open(root, &a.id)?;
        let st = dir.read()?;
        let status = state::status(&dir, &st);
        (st, status)
    };
    if !["running", "created"].contains(&status) {
        bail!("cannot exec in a {status} container");
    }
    let p = process(a, &st["process"])?;
    if p.terminal && a.console_socket.is_none() {
        bail!("--tty needs --console-socket");
    }
    let bundle = crate::bundle::load(Path::new(st["bundle"].as_str().unwrap_or(".")), &a.id)?;
    let retain = libnspawn::launch::kept_capabilities(&bundle.settings);
    // The container's own filters (the bundle's policy, else our allow
    // list for its capabilities), as its process loaded them.
    let filters = libnspawn::launch::filters(&bundle.settings)?;
    let pid = st["pid"].as_i64().unwrap_or(0) as i32;
    let leader = libnspawn::sys::pidfd_open(pid).context("container not running")?;
    if state::start_time(pid.into()) != st["startTime"].as_u64() {
        bail!("container not running");
    }
    let cgroups = crate::cgroups::Cgroups::from_state(&st);
    let unified = cgroups
        .unified()
        .map(|d| {
            open_flags(
                d,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            )
        })
        .transpose()?;
    let v1: Vec<OwnedFd> = cgroups
        .hiers
        .iter()
        .filter(|h| !h.v2)
        .map(|h| open_flags(&h.dir.join("cgroup.procs"), nix::fcntl::OFlag::O_WRONLY))
        .collect::<Result<_>>()?;
    let console = a.console_socket.as_deref().map(connect).transpose()?;
    // Its directory opened now: the host's paths are out of reach once
    // we are in the container's mount namespace.
    let pid_file = a
        .pid_file
        .as_deref()
        .map(|f| -> Result<(OwnedFd, String)> {
            let dir = f.parent().filter(|d| !d.as_os_str().is_empty());
            let name = f
                .file_name()
                .ok_or_else(|| anyhow!("--pid-file {}: no file name", f.display()))?;
            let fd = open_flags(
                dir.unwrap_or(Path::new(".")),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            )?;
            Ok((fd, name.to_string_lossy().into_owned()))
        })
        .transpose()?;
    let argv = c_strings(&p.args).context("an argument holds a NUL byte")?;
    let envp = c_strings(&p.env).context("an environment entry holds a NUL byte")?;
    let path_dirs = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(libnspawn::env::DEFAULT_PATH)
        .to_string();
    libnspawn::sys::ensure_single_threaded().map_err(|e| anyhow!("{e}"))?;
    // Non-dumpable before the container can see anything of ours (see
    // the module's comment); execve resets it for the command.
    nix::sys::prctl::set_dumpable(false).context("cannot make the runtime non-dumpable")?;
    // The user namespace with the others: setns(2) enters it first, so
    // that we are privileged over the rest.
    let ns = match bundle.id_maps.is_some() {
        true => NAMESPACES | libc::CLONE_NEWUSER,
        false => NAMESPACES,
    };
    // SAFETY: setns with a pidfd and namespace flags.
    Errno::result(unsafe { libc::setns(leader.as_raw_fd(), ns) })
        .context("cannot join the container's namespaces")?;
    let master = if p.terminal {
        let m = open_flags(
            Path::new("/dev/pts/ptmx"),
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY,
        )
        .context("cannot allocate a terminal in the container")?;
        let mut unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK takes a pointer to an int.
        unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
        // Sized, and with the caller, before the process can ask.
        if let Some(size) = p.console_size {
            crate::console::set_size(&m, size);
        }
        if let Some(s) = &console {
            send_master(s, &m)?;
        }
        Some(m)
    } else {
        None
    };
    let v1_raw: Vec<RawFd> = v1.iter().map(|f| f.as_raw_fd()).collect();
    let child = Child {
        p: &p,
        master: master.as_ref().map(|m| m.as_raw_fd()),
        v1: &v1_raw,
        retain: p.caps.as_ref().map_or(retain, |c| c.0 & retain),
        filters: &filters,
        preserve: a.preserve_fds,
        argv: &argv,
        envp: &envp,
        path: &path_dirs,
    };
    // SAFETY: single-threaded (checked above); the child only runs `run`.
    let (child_pid, pidfd) = match unsafe { clone3_raw(0, unified.as_ref().map(|f| f.as_fd())) }
        .context("cannot start a process in the container")?
    {
        Forked::Child => child.run(),
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(master);
    if let Some((dir, name)) = &pid_file {
        write_pid_at(dir, name, child_pid)
            .with_context(|| format!("cannot write the pid file {name}"))?;
    }
    if a.detach {
        return Ok(0);
    }
    Ok(match libnspawn::sys::wait_pidfd(pidfd.as_fd())? {
        libnspawn::sys::Exit::Code(c) => c,
        libnspawn::sys::Exit::Signal(s) => 128 + s,
    })
}

fn c_strings(v: &[String]) -> std::result::Result<Vec<CString>, std::ffi::NulError> {
    v.iter().map(|s| CString::new(s.as_str())).collect()
}

/// The pid file in `dir`: a temporary name, renamed over.
fn write_pid_at(dir: &OwnedFd, name: &str, pid: i32) -> nix::Result<()> {
    use nix::fcntl::OFlag;
    let tmp = format!(".{name}.tmp");
    let fd = nix::fcntl::openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )?;
    nix::unistd::write(&fd, pid.to_string().as_bytes())?;
    nix::fcntl::renameat(dir, tmp.as_str(), dir, name)
}

fn send_master(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context("cannot send the console")?;
    Ok(())
}

/// What the new process needs, all prepared before `clone3`.
struct Child<'a> {
    p: &'a Proc,
    master: Option<RawFd>,
    v1: &'a [RawFd],
    retain: u64,
    filters: &'a seccomp::Filters,
    preserve: u32,
    argv: &'a [CString],
    envp: &'a [CString],
    path: &'a str,
}

impl Child<'_> {
    fn run(&self) -> ! {
        let e = self.setup();
        eprintln!("nspawn-oci: exec: {e}");
        // SAFETY: _exit is always safe; 126/127 as a shell reports them.
        unsafe { libc::_exit(if e.contains("No such file") { 127 } else { 126 }) }
    }

    /// Returns only on failure, with the error line.
    fn setup(&self) -> String {
        let p = self.p;
        let _ = nix::unistd::setsid();
        if let Some(m) = self.master {
            // SAFETY: the ioctl returns a new descriptor for the pty's peer.
            let peer = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) };
            if peer < 0 {
                return format!("cannot open the terminal: {}", Errno::last().desc());
            }
            // SAFETY: plain descriptor operations on our own terminal.
            unsafe {
                libc::ioctl(peer, libc::TIOCSCTTY, 0);
                for fd in 0..3 {
                    libc::dup2(peer, fd);
                }
                libc::close(peer);
            }
        }
        for &fd in self.v1 {
            // "0": the writing process itself (cgroups(7)).
            // SAFETY: writing to a descriptor we own.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } < 0 {
                return format!(
                    "cannot join the container's cgroup: {}",
                    Errno::last().desc()
                );
            }
        }
        for &fd in self.v1.iter().chain(self.master.as_ref()) {
            // SAFETY: closing our own descriptors.
            unsafe { libc::close(fd) };
        }
        // Closed, not close-on-exec (docs/design/hostile.md: the window
        // inside execve).
        if let Err(e) = libnspawn::sys::close_range(3 + self.preserve, u32::MAX, false) {
            return e.to_string();
        }
        if let Err(e) = caps::drop_bounding(self.retain) {
            return e.to_string();
        }
        // SAFETY: prctl with integer arguments.
        if p.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0
        {
            return format!("cannot set no_new_privs: {}", Errno::last().desc());
        }
        if let Err(e) = self.filters.load() {
            return e.to_string();
        }
        let ambient = p.caps.as_ref().map_or(0, |c| c.2);
        if p.uid != 0 {
            if let Err(e) = caps::keep_across_setuid(ambient) {
                return e.to_string();
            }
        }
        let groups: Vec<nix::unistd::Gid> = p.groups.iter().map(|&g| g.into()).collect();
        if let Err(e) = nix::unistd::setgroups(&groups)
            .and_then(|_| nix::unistd::setresgid(p.gid.into(), p.gid.into(), p.gid.into()))
            .and_then(|_| nix::unistd::setresuid(p.uid.into(), p.uid.into(), p.uid.into()))
        {
            return format!("cannot become {}:{}: {}", p.uid, p.gid, e.desc());
        }
        let applied = match &p.caps {
            Some((_, sets, ambient)) => caps::apply_exact(sets, self.retain, *ambient),
            None => caps::apply_process(self.retain, 0, p.uid == 0),
        };
        if let Err(e) = applied {
            return e.to_string();
        }
        if let Err(e) = nix::unistd::chdir(p.cwd.as_str()) {
            return format!("cannot change to {}: {}", p.cwd, e.desc());
        }
        let cmd = &p.args[0];
        let candidates: Vec<String> = if cmd.contains('/') {
            vec![cmd.clone()]
        } else {
            self.path.split(':').map(|d| format!("{d}/{cmd}")).collect()
        };
        let mut last = Errno::ENOENT;
        for c in candidates {
            let Ok(path) = CString::new(c) else { continue };
            match nix::unistd::execve(&path, self.argv, self.envp).unwrap_err() {
                Errno::ENOENT | Errno::ENOTDIR => {}
                e => last = e,
            }
        }
        format!("cannot execute {cmd}: {}", last.desc())
    }
}
