//! runtime-spec hooks run by the runtime on the host: `prestart` and
//! `createRuntime` once the container is created (by `create`),
//! `poststart` (by `start`), `poststop` (by `delete`), each with the
//! container's state as JSON on its standard input. `createContainer` and
//! `startContainer` would run inside the container's namespaces: refused.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KINDS: &[&str] = &["prestart", "createRuntime", "poststart", "poststop"];

/// Check the bundle's `hooks` object; returns it (or `{}`).
pub fn check(hooks: Value) -> Result<Value> {
    let Value::Object(map) = &hooks else {
        return match hooks {
            Value::Null => Ok(Value::Object(Default::default())),
            _ => bail!("hooks: not an object"),
        };
    };
    for (kind, list) in map {
        let empty = list.as_array().is_some_and(|a| a.is_empty());
        if !KINDS.contains(&kind.as_str()) && !empty {
            bail!("hooks.{kind}: not supported");
        }
        let Some(list) = list.as_array() else {
            bail!("hooks.{kind}: not an array");
        };
        for (i, h) in list.iter().enumerate() {
            let path = h["path"].as_str().unwrap_or("");
            if !path.starts_with('/') {
                bail!("hooks.{kind}[{i}].path: not an absolute path: {path:?}");
            }
            let strings = |k: &str| {
                h[k].is_null()
                    || h[k]
                        .as_array()
                        .is_some_and(|a| a.iter().all(|s| s.is_string()))
            };
            if !strings("args") || !strings("env") {
                bail!("hooks.{kind}[{i}]: args and env are lists of strings");
            }
            if !h["timeout"].is_null() && h["timeout"].as_u64().is_none_or(|t| t == 0) {
                bail!("hooks.{kind}[{i}].timeout: must be a positive number of seconds");
            }
        }
    }
    Ok(hooks)
}

/// Run the hooks of `kind` in order; the first that fails (or outlives
/// its timeout, then killed) is the error.
pub fn run(hooks: &Value, kind: &str, state: &Value) -> Result<()> {
    let Some(list) = hooks[kind].as_array() else {
        return Ok(());
    };
    let input = state.to_string();
    for (i, h) in list.iter().enumerate() {
        let path = h["path"].as_str().unwrap_or("");
        let what = || format!("hook {kind}[{i}] {path}");
        let strings = |k: &str| -> Vec<String> {
            h[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let args = strings("args");
        let mut cmd = Command::new(path);
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
        cmd.env_clear()
            .envs(strings("env").iter().filter_map(|e| e.split_once('=')))
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = cmd.spawn().with_context(what)?;
        // A hook that does not read its input gets EPIPE: not an error.
        let _ = child
            .stdin
            .take()
            .map(|mut s| s.write_all(input.as_bytes()));
        let deadline = h["timeout"]
            .as_u64()
            .map(|t| Instant::now() + Duration::from_secs(t));
        let status = loop {
            if let Some(st) = child.try_wait().with_context(what)? {
                break st;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{}: timed out", what());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !status.success() {
            bail!("{}: {status}", what());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks() {
        assert!(check(Value::Null).unwrap().as_object().unwrap().is_empty());
        assert!(check(json!({"poststop": [{"path": "/bin/true", "args": ["true"]}]})).is_ok());
        assert!(check(json!({"createContainer": []})).is_ok());
        let e = |v: Value| check(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"createContainer": [{"path": "/bin/true"}]})),
            "hooks.createContainer: not supported"
        );
        assert!(e(json!({"prestart": [{"path": "true"}]})).contains("not an absolute path"));
        assert!(e(json!({"prestart": [{"path": "/x", "timeout": 0}]})).contains("timeout"));
        assert!(e(json!({"prestart": [{"path": "/x", "env": [1]}]})).contains("lists of strings"));
    }

    #[test]
    fn runs_with_the_state_and_fails_on_status() {
        let dir = std::env::temp_dir().join(format!("nspawn-oci-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("got");
        let hooks = json!({"poststart": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$X\" >> {}", out.display(), out.display())],
            "env": ["X=from-env"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}]});
        run(&hooks, "poststart", &json!({"id": "x"})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}from-env\n"
        );
        assert!(run(&hooks, "poststop", &json!({}))
            .unwrap_err()
            .to_string()
            .contains("exit status: 3"));
        assert!(run(&hooks, "prestart", &json!({}))
            .unwrap_err()
            .to_string()
            .contains("timed out"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
