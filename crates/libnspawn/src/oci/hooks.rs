//! Running runtime-spec hooks: `nspawn-oci` runs those of the runtime's
//! namespace itself, and the container process those of the container's
//! (`createContainer` before it enters its root, `startContainer` once
//! `start` opened its FIFO), with this same code. Each hook gets the
//! container's state as JSON on its standard input, its `args` (the
//! first as `argv[0]`), exactly its `env`, and is killed after its
//! `timeout`. The list is checked by `nspawn-oci` when it reads the
//! bundle (`hooks::check` there); here a malformed entry is skipped.

use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hook {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<Duration>,
}

/// The hooks of one kind in a bundle's `hooks` object.
pub fn list(hooks: &Value, kind: &str) -> Vec<Hook> {
    let strings = |h: &Value, k: &str| -> Vec<String> {
        h[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    hooks[kind]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| {
                    Some(Hook {
                        path: h["path"].as_str()?.into(),
                        args: strings(h, "args"),
                        env: strings(h, "env"),
                        timeout: h["timeout"].as_u64().map(Duration::from_secs),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Run `hooks` (of `kind`) in order with `state` on their input; the
/// first that fails to start, fails, or outlives its timeout (then
/// killed) is the error line.
pub fn run(hooks: &[Hook], kind: &str, state: &str) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        let what = format!("hook {kind}[{i}] {}", h.path.display());
        let mut cmd = Command::new(&h.path);
        if let Some((arg0, rest)) = h.args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
        cmd.env_clear()
            .envs(h.env.iter().filter_map(|e| e.split_once('=')))
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        // A hook dies with whoever runs it: a `create` killed while its
        // prestart hook runs leaves no hook running on (runc's does).
        crate::sys::dies_with_us(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
        // A hook that does not read its input gets EPIPE: not an error.
        let _ = child
            .stdin
            .take()
            .map(|mut s| s.write_all(state.as_bytes()));
        let deadline = h.timeout.map(|t| Instant::now() + t);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: timed out"));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !status.success() {
            return Err(format!("{what}: {status}"));
        }
    }
    Ok(())
}

/// What the container process needs for the hooks it runs itself.
#[derive(Debug, Clone, Default)]
pub struct ContainerHooks {
    /// `prestart` or `createRuntime` hooks exist: the process stops once
    /// its mounts are made, before it enters its root, for `nspawn-oci`
    /// to run them (runtime-spec: before `pivot_root`, before
    /// `createContainer`).
    pub runtime: bool,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    /// The state for the hooks (`id`, `bundle`, `annotations`, ...);
    /// `pid` and `status` are filled in when they run.
    pub state: Value,
}

impl ContainerHooks {
    pub fn is_empty(&self) -> bool {
        !self.runtime && self.create_container.is_empty() && self.start_container.is_empty()
    }

    /// The state as the hooks of `status` see it, with the container
    /// process's PID as the host sees it (runtime-spec's `pid`).
    pub fn state(&self, pid: i32, status: &str) -> String {
        let mut s = self.state.clone();
        s["pid"] = pid.into();
        s["status"] = status.into();
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_with_the_state_and_fails_on_status() {
        let dir = std::env::temp_dir().join(format!("nspawn-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("got");
        let hooks = json!({"poststart": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$X\" >> {}", out.display(), out.display())],
            "env": ["X=from-env"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}]});
        run(&list(&hooks, "poststart"), "poststart", "{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}from-env\n"
        );
        assert_eq!(
            run(&list(&hooks, "poststop"), "poststop", "{}").unwrap_err(),
            "hook poststop[0] /bin/sh: exit status: 3"
        );
        assert!(run(&list(&hooks, "prestart"), "prestart", "{}")
            .unwrap_err()
            .ends_with("timed out"));
        assert!(
            run(&list(&json!({"x": [{"path": "/no/such"}]}), "x"), "x", "")
                .unwrap_err()
                .starts_with("hook x[0] /no/such: No such file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_gets_pid_and_status() {
        let h = ContainerHooks {
            state: json!({"id": "c", "pid": 0}),
            ..Default::default()
        };
        let s: Value = serde_json::from_str(&h.state(42, "creating")).unwrap();
        assert_eq!(s, json!({"id": "c", "pid": 42, "status": "creating"}));
    }
}
