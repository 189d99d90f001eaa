//! runtime-spec hooks: the bundle's `hooks` checked, and those of the
//! runtime's namespace run — `prestart` and `createRuntime` by `create`
//! (while the container process waits with its mounts made, before it
//! enters its root), `poststart` by `start`, `poststop` by `delete`, each
//! with the container's state as JSON on its standard input.
//! `createContainer` and `startContainer` are run by the container
//! process itself (`container`), with libnspawn's same runner
//! (`libnspawn::oci::hooks`).

use anyhow::{anyhow, bail, Result};
use libnspawn::oci::hooks::{self, ContainerHooks};
use serde_json::Value;

const KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

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
    hooks::run(&hooks::list(hooks, kind), kind, &state.to_string()).map_err(|e| anyhow!(e))
}

/// What the container process runs itself; `state`: the state of the
/// container (its `pid` and `status` are filled in there).
pub fn container(hooks: &Value, state: Value) -> ContainerHooks {
    let given = |kind: &str| hooks[kind].as_array().is_some_and(|a| !a.is_empty());
    ContainerHooks {
        runtime: given("prestart") || given("createRuntime"),
        create_container: hooks::list(hooks, "createContainer"),
        start_container: hooks::list(hooks, "startContainer"),
        state,
    }
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
        assert!(check(json!({"createContainer": [{"path": "/bin/true"}]})).is_ok());
        assert_eq!(
            e(json!({"postCreate": [{"path": "/bin/true"}]})),
            "hooks.postCreate: not supported"
        );
        assert!(e(json!({"prestart": [{"path": "true"}]})).contains("not an absolute path"));
        assert!(e(json!({"prestart": [{"path": "/x", "timeout": 0}]})).contains("timeout"));
        assert!(e(json!({"prestart": [{"path": "/x", "env": [1]}]})).contains("lists of strings"));
    }
}
