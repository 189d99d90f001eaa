//! A cgroup of a v1 hierarchy (`freezer`, `pids`) that a test puts a
//! runner in: everything the runner forks (its reaper, helpers, the
//! container) stays in it, since `clone3(CLONE_INTO_CGROUP)` moves the
//! container only on the unified hierarchy. With the freezer, a test
//! stops all of them at one instant; with `pids.max`, it limits them.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct Group {
    path: PathBuf,
}

impl Group {
    /// A new cgroup named `name` in the v1 hierarchy of `controller`;
    /// `None` where the host has no such hierarchy (pure cgroup v2).
    pub fn new(controller: &str, name: &str) -> Option<Group> {
        let hierarchy = PathBuf::from("/sys/fs/cgroup").join(controller);
        if !hierarchy.join("tasks").exists() {
            return None;
        }
        let path = hierarchy.join(name);
        std::fs::create_dir_all(&path).unwrap();
        Some(Group { path })
    }

    /// Make `c` start in this cgroup.
    pub fn join(&self, c: &mut Command) {
        let procs = CString::new(self.path.join("cgroup.procs").to_str().unwrap()).unwrap();
        // SAFETY: only open/write/close between fork and exec ("0" is the
        // writing process itself, cgroups(7)).
        unsafe {
            c.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    }

    pub fn set(&self, file: &str, value: &str) {
        std::fs::write(self.path.join(file), value).unwrap();
    }

    /// `pids.current` of a `pids` cgroup.
    pub fn current(&self) -> u64 {
        std::fs::read_to_string(self.path.join("pids.current"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn procs(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    /// Freeze (or thaw) every process in it; whether the kernel says
    /// they are, within a second. (A v1 freezer never freezes a parent
    /// waiting for its `vfork` child, as `posix_spawn` does, once that
    /// child is frozen: it stays FREEZING.)
    pub fn freeze(&self, on: bool) -> bool {
        let want = if on { "FROZEN" } else { "THAWED" };
        self.set("freezer.state", want);
        crate::wait_until(Duration::from_secs(1), || {
            std::fs::read_to_string(self.path.join("freezer.state")).is_ok_and(|s| s.trim() == want)
        })
    }

    /// SIGKILL every process in it until none is left.
    pub fn kill_all(&self) {
        crate::wait_until(Duration::from_secs(10), || {
            let procs = self.procs();
            for &pid in &procs {
                // SAFETY: a process of the test's own cgroup.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            procs.is_empty()
        });
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        crate::wait_until(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.path).is_ok() || !self.path.exists()
        });
    }
}

/// A process's name (`/proc/PID/comm`).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
