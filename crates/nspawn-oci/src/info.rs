//! What the runtime reports: `state`, `list`, `ps`, `features`, `spec`.

use crate::cgroups::Cgroups;
use crate::state;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

pub fn state(root: &Path, id: &str) -> Result<()> {
    let dir = state::open(root, id)?;
    let st = dir.read()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&state::oci_state(&dir, &st))?
    );
    Ok(())
}

pub fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| state::check_id(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let states: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let dir = state::open(root, id).ok()?;
            let st = dir.read().ok()?;
            Some(state::oci_state(&dir, &st))
        })
        .collect();
    match (format, quiet) {
        (_, true) => states
            .iter()
            .for_each(|s| println!("{}", s["id"].as_str().unwrap_or(""))),
        ("json", _) => println!("{}", Value::Array(states)),
        ("table", _) => {
            println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
            for s in &states {
                println!(
                    "{}\t{}\t{}\t{}\t{}\troot",
                    s["id"].as_str().unwrap_or(""),
                    s["pid"],
                    s["status"].as_str().unwrap_or(""),
                    s["bundle"].as_str().unwrap_or(""),
                    s["created"].as_str().unwrap_or("")
                );
            }
        }
        (f, _) => bail!("invalid format option: {f}"),
    }
    Ok(())
}

pub fn ps(root: &Path, id: &str, format: &str) -> Result<()> {
    let dir = state::open(root, id)?;
    let st = dir.read()?;
    let pids = Cgroups::from_state(&st).procs();
    match format {
        "json" => println!("{}", json!(pids)),
        "table" => {
            println!("PID\tCMD");
            for p in pids {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let cmd: Vec<String> = cmd
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                println!("{p}\t{}", cmd.join(" "));
            }
        }
        f => bail!("invalid format option: {f}"),
    }
    Ok(())
}

/// runtime-spec's features document: what this runtime takes.
pub fn features() -> Result<()> {
    let f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec",
            "private", "rprivate", "size", "mode", "uid", "gid"],
        "linux": {
            "namespaces": ["mount", "pid", "ipc", "uts", "network", "cgroup"],
            "capabilities": libnspawn::security::caps::names(libnspawn::security::caps::all_mask()),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                    "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {}
    });
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(())
}

/// A starting `config.json`, as `runc spec` writes one: `sh` in `rootfs`.
pub fn spec(bundle: Option<&Path>) -> Result<()> {
    let file = bundle.unwrap_or(Path::new(".")).join("config.json");
    if file.exists() {
        bail!("File {} exists. Remove it first", file.display());
    }
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "nspawn-oci",
        "mounts": [],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    std::fs::write(&file, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("cannot write {}", file.display()))
}
