//! `create` and `run`. `create` reads the bundle before it makes
//! anything, then the record (locked), the cgroup with its limits, the
//! exec FIFO, and the container process (libnspawn's `oci_init`); it
//! records the process as soon as it exists, so that a `create` killed
//! at any point leaves what `delete --force` clears, and writes the pid
//! file last. A failure undoes it all (`Made`'s drop).

use crate::cgroups::Cgroups;
use crate::cli::CreateArgs;
use crate::scope::Scope;
use crate::state::{self, Dir};
use anyhow::{bail, Context, Result};
use libnspawn::launch::oci_init;
use serde_json::json;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// What a `create` made so far; dropped unless it succeeded (`keep`),
/// in field order: the scope unit if we started it (stopped, which
/// removes systemd's cgroups of it), our cgroups, the record.
struct Made {
    scope: Option<Scope>,
    cgroups: Cgroups,
    dir: Option<Dir>,
}

impl Made {
    fn keep(mut self) -> Dir {
        self.scope = None;
        self.cgroups = Cgroups::default();
        self.dir.take().expect("the record")
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(unit) = self.scope.take().and_then(|s| s.started()) {
            if let Err(e) = crate::scope::stop(&unit) {
                eprintln!("nspawn-oci: warning: {e:#}");
            }
        }
        let _ = self.cgroups.remove();
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}

fn open_dir(p: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", p.display()))
}

/// Written to a temporary name in the same directory, then renamed: a
/// reader never sees a partial PID.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn create(root: &Path, a: &CreateArgs, systemd: bool) -> Result<()> {
    create_init(root, a, systemd, false).map(drop)
}

/// The container process, and its pty master when `foreground` keeps
/// the terminal (`process.terminal` without a console socket).
fn create_init(
    root: &Path,
    a: &CreateArgs,
    systemd: bool,
    foreground: bool,
) -> Result<(oci_init::Init, Option<OwnedFd>)> {
    state::check_id(&a.id)?;
    let b = crate::bundle::load(&a.bundle, &a.id)?;
    if b.terminal && a.console_socket.is_none() && !foreground {
        bail!("process.terminal needs --console-socket");
    }
    let mut master = None;
    let rel = crate::cgroups::relative(b.cgroups_path.as_deref(), &a.id, systemd)?;
    let mut made = Made {
        scope: Scope::plan(b.cgroups_path.as_deref(), &a.id, systemd)?,
        cgroups: Cgroups::default(),
        dir: Some(state::make(root, &a.id)?),
    };
    made.dir.as_ref().expect("the record").write(&json!({
        "id": a.id,
        "pid": 0,
        "cgroups": Cgroups::planned(&rel).to_json(),
    }))?;
    // A scope holds a running process, so the container process is
    // cloned into our cgroup and placed in the scope while it waits
    // (`placed`), then limited; without one its cgroup is made and
    // limited now, and it is cloned into it.
    if made.scope.is_some() {
        made.cgroups = Cgroups::planned(&rel);
    } else {
        made.cgroups = Cgroups::create(&rel)?;
        limit(&made.cgroups, &b)?;
    }
    let dir = made.dir.as_ref().expect("the record");
    let fifo_path = dir.fifo();
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .with_context(|| format!("cannot make {}", fifo_path.display()))?;
    // Opened for writing by root of the user namespace, which has no
    // power over files of unmapped owners (user_namespaces(7)): it must
    // own the FIFO, as under runc.
    if let Some(m) = &b.id_maps {
        use libnspawn::userns::IdMaps;
        let uid = IdMaps::host_of(&m.uid, 0).map(Into::into);
        let gid = IdMaps::host_of(&m.gid, 0).map(Into::into);
        nix::unistd::chown(&fifo_path, uid, gid)
            .with_context(|| format!("cannot chown {}", fifo_path.display()))?;
    }
    let fifo = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot open {}", fifo_path.display()))?;
    let scope = made.scope.as_ref();
    let unified = match scope {
        Some(_) => None,
        None => made.cgroups.unified().map(open_dir).transpose()?,
    };
    let netns = b
        .settings
        .net
        .namespace_path
        .as_deref()
        .map(|p| {
            nix::fcntl::open(
                p,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("cannot open network namespace {}", p.display()))
        })
        .transpose()?;
    let record = |pid: i32| {
        json!({
            "id": a.id,
            "pid": pid,
            "startTime": state::start_time(pid.into()),
            "bundle": b.dir,
            "rootfs": b.rootfs,
            "created": crate::time::rfc3339(std::time::SystemTime::now()),
            "annotations": b.annotations,
            "cgroups": made.cgroups.to_json(),
            // Once started: a unit of that name that is not ours (a
            // `create` that failed to make it) is never stopped for us.
            "unit": scope.and_then(Scope::started),
            "hooks": b.hooks,
            "process": process_defaults(&b.settings),
        })
    };
    let hooks = crate::hooks::container(
        &b.hooks,
        json!({
            "ociVersion": "1.2.0",
            "id": a.id,
            "bundle": b.dir,
            "annotations": b.annotations,
        }),
    );
    // prestart, then createRuntime: as the container process waits with
    // its mounts made, before it enters its root (runtime-spec).
    let runtime_hooks = |_pid| {
        let creating = crate::state::hook_state(&dir.read()?, "creating");
        crate::hooks::run(&b.hooks, "prestart", &creating)?;
        crate::hooks::run(&b.hooks, "createRuntime", &creating)
    };
    let init = oci_init::create(
        oci_init::Request {
            settings: &b.settings,
            pty: b.terminal,
            exec_fifo: fifo,
            cgroup: unified.as_ref().map(|f| f.as_fd()),
            cgroup2: made.cgroups.unified().is_some(),
            netns: netns.as_ref().map(|f| f.as_fd()),
            preserve_fds: a.preserve_fds,
            hooks: (!hooks.is_empty()).then_some(&hooks),
            id_maps: b.id_maps.as_ref(),
        },
        oci_init::Steps {
            started: |pid| dir.write(&record(pid)).map_err(to_lib),
            placed: |pid| {
                let place = || {
                    if let Some(s) = scope {
                        s.start(pid, &a.id)?;
                        dir.write(&record(pid))?;
                        made.cgroups.make_missing(&rel)?;
                    }
                    made.cgroups.attach_v1(pid)?;
                    match scope {
                        Some(_) => limit(&made.cgroups, &b),
                        None => Ok(()),
                    }
                };
                place().map_err(to_lib)
            },
            console: |m| {
                // Its size before the process can run: the bundle's, or
                // (a foreground `run` relaying its terminal) our own.
                if let Some(size) = b.console_size {
                    crate::console::set_size(&m, size);
                }
                match &a.console_socket {
                    Some(s) => crate::console::send(s, &m).map_err(to_lib),
                    None => {
                        let stdin = libnspawn::console::stdin();
                        if libnspawn::console::is_tty(stdin) {
                            libnspawn::console::copy_winsize(stdin, m.as_fd());
                        }
                        master = Some(m);
                        Ok(())
                    }
                }
            },
            mounted: |pid| runtime_hooks(pid).map_err(to_lib),
        },
    )?;
    if let Some(p) = &a.pid_file {
        if let Err(e) = write_pid_file(p, init.pid) {
            let _ = libnspawn::sys::pidfd_send_signal(init.pidfd.as_fd(), libc::SIGKILL);
            let _ = libnspawn::sys::wait_pidfd(init.pidfd.as_fd());
            return Err(e);
        }
    }
    made.keep();
    Ok((init, master))
}

/// `linux.resources`, and the device policy on the v2 cgroup (consulted
/// on hybrid hosts too): nspawn's (the standard nodes and ptys, whatever
/// mknod makes), or the bundle's rules with ours above them.
fn limit(cgroups: &Cgroups, b: &crate::bundle::Bundle) -> Result<()> {
    cgroups.apply(&b.resources)?;
    if let Some(cg) = cgroups.unified().map(open_dir).transpose()? {
        match &b.device_rules {
            Some(rules) => libnspawn::security::devices::attach_rules(cg.as_fd(), rules)?,
            None => libnspawn::security::devices::attach(cg.as_fd())?,
        }
    }
    Ok(())
}

/// What `exec` confines its process like, besides what it is given:
/// the container process's own settings.
fn process_defaults(s: &libnspawn::Settings) -> serde_json::Value {
    json!({
        "env": s.setenv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cwd": s.chdir.clone().unwrap_or_else(|| "/".into()),
    })
}

fn to_lib(e: anyhow::Error) -> libnspawn::Error {
    libnspawn::Error::invalid(format!("{e:#}"))
}

/// `create`, `start`, then (unless `--detach`) relay signals and the
/// terminal to the container's process until it ends (`foreground`),
/// `delete` it, and exit as it did (128+N for signal N).
pub fn run(root: &Path, a: &CreateArgs, systemd: bool) -> Result<i32> {
    let fwd = (!a.detach)
        .then(crate::foreground::Forwarder::block)
        .transpose()?;
    let (init, master) = create_init(root, a, systemd, fwd.is_some())?;
    if let Err(e) = crate::lifecycle::start(root, &a.id) {
        let _ = crate::lifecycle::delete(root, &a.id, true);
        let _ = libnspawn::sys::wait_pidfd(init.pidfd.as_fd());
        return Err(e);
    }
    let Some(fwd) = fwd else {
        return Ok(0);
    };
    if let Err(e) = fwd.relay(init.pidfd.as_fd(), master) {
        let _ = libnspawn::sys::pidfd_send_signal(init.pidfd.as_fd(), libc::SIGKILL);
        let _ = libnspawn::sys::wait_pidfd(init.pidfd.as_fd());
        let _ = crate::lifecycle::delete(root, &a.id, true);
        return Err(e);
    }
    let exit = libnspawn::sys::wait_pidfd(init.pidfd.as_fd())?;
    crate::lifecycle::delete(root, &a.id, true)?;
    Ok(match exit {
        libnspawn::sys::Exit::Code(c) => c,
        libnspawn::sys::Exit::Signal(s) => 128 + s,
    })
}
