//! A container's record under `--root`: the directory `ROOT/ID` (made by
//! `create`, locked by every command on that id: flock(2) on the
//! directory, released when the descriptor closes), `state.json` in it
//! (written to a temporary name and renamed over), and `exec.fifo`
//! while the container is created but not started.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub const FIFO: &str = "exec.fifo";

/// runc's rule for ids: letters, digits and `_+-.`, not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

/// The record's directory, locked: the lock goes with the descriptor.
pub struct Dir {
    pub path: PathBuf,
    _lock: libnspawn::lock::Lock,
}

fn lock(path: &Path) -> std::io::Result<Dir> {
    let fd: OwnedFd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let lock = libnspawn::lock::Lock::wait(fd)?;
    Ok(Dir {
        path: path.to_path_buf(),
        _lock: lock,
    })
}

/// Make `ROOT/ID` for a new container, locked.
pub fn make(root: &Path, id: &str) -> Result<Dir> {
    check_id(id)?;
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let path = root.join(id);
    match std::fs::create_dir(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    lock(&path).with_context(|| format!("cannot lock {}", path.display()))
}

/// The record of an existing container, locked.
pub fn open(root: &Path, id: &str) -> Result<Dir> {
    check_id(id)?;
    let path = root.join(id);
    match lock(&path) {
        Ok(d) if d.path.join("state.json").exists() => Ok(d),
        // Removed by a `delete` we waited for: as if it never was.
        Ok(_) => bail!("container does not exist"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("container does not exist"),
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// The record's directory, locked, whether `create` wrote its state or
/// was killed before; `None` if there is none.
pub fn open_any(root: &Path, id: &str) -> Result<Option<Dir>> {
    check_id(id)?;
    let path = root.join(id);
    match lock(&path) {
        Ok(d) if d.path.exists() => Ok(Some(d)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

impl Dir {
    pub fn read(&self) -> Result<Value> {
        let p = self.path.join("state.json");
        let data = std::fs::read(&p).map_err(|_| anyhow::anyhow!("container does not exist"))?;
        serde_json::from_slice(&data).with_context(|| format!("{}: not JSON", p.display()))
    }

    /// Written whole or not at all: a temporary file renamed over.
    pub fn write(&self, v: &Value) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        std::fs::write(&tmp, v.to_string())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.path.join("state.json"))
            .with_context(|| format!("cannot rename {}", tmp.display()))
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path)
            .with_context(|| format!("cannot remove {}", self.path.display()))
    }
}

/// Field 22 of /proc/PID/stat, the start time: with the PID it names
/// one process (a PID alone may be reused). `None`: gone, or a zombie.
pub fn start_time(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command (field 2) may hold spaces and parentheses: after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// created, running, paused or stopped.
pub fn status(dir: &Dir, st: &Value) -> &'static str {
    let pid = st["pid"].as_i64().unwrap_or(0);
    let alive = pid > 0 && start_time(pid) == st["startTime"].as_u64();
    if !alive {
        return "stopped";
    }
    if dir.fifo().exists() {
        return "created";
    }
    if crate::cgroups::Cgroups::from_state(st).is_frozen() {
        return "paused";
    }
    "running"
}

/// The runtime-spec state of the container.
pub fn oci_state(dir: &Dir, st: &Value) -> Value {
    let status = status(dir, st);
    let pid = if status == "stopped" {
        0
    } else {
        st["pid"].as_i64().unwrap_or(0)
    };
    json!({
        "ociVersion": "1.2.0",
        "id": st["id"],
        "pid": pid,
        "status": status,
        "bundle": st["bundle"],
        "rootfs": st["rootfs"],
        "created": st["created"],
        "annotations": st["annotations"],
        "owner": "",
    })
}

/// The state a hook reads on its standard input.
pub fn hook_state(st: &Value, status: &str) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "id": st["id"],
        "pid": st["pid"],
        "status": status,
        "bundle": st["bundle"],
        "annotations": st["annotations"],
    })
}
