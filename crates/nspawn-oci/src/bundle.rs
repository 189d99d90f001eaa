//! A bundle's `config.json` into what `create` needs: libnspawn's
//! `Settings` (through `oci::parse` and `oci::merge`, the same reading
//! as `nspawn --oci-bundle`), and what only a runtime uses — the cgroup
//! path, the resources as given (written to the cgroup by us, not made
//! scope properties), the annotations for the state.

use anyhow::{anyhow, bail, Context, Result};
use libnspawn::Settings;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Bundle {
    pub dir: PathBuf,
    pub settings: Settings,
    pub rootfs: PathBuf,
    pub terminal: bool,
    pub cgroups_path: Option<String>,
    pub resources: Value,
    pub annotations: Value,
    /// `hooks`, checked (`hooks::check`).
    pub hooks: Value,
    /// The device program's rules (`devices::program_rules`); `None`: our
    /// fixed program.
    pub device_rules: Option<Vec<libnspawn::security::devices::Rule>>,
    /// A user namespace's maps (`idmaps`).
    pub id_maps: Option<libnspawn::userns::IdMaps>,
    /// `process.consoleSize`: (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// The array at JSON path `path` (`v`), none if absent.
pub fn array<'a>(v: &'a Value, path: &str) -> Result<&'a [Value]> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        _ => bail!("{path}: not an array"),
    }
}

/// Take `key` out of the object at `v` (if it is one).
fn take(v: &mut Value, key: &str) -> Value {
    v.as_object_mut()
        .and_then(|o| o.remove(key))
        .unwrap_or(Value::Null)
}

pub fn load(dir: &Path, id: &str) -> Result<Bundle> {
    let dir = std::path::absolute(dir).context("cannot resolve the bundle's path")?;
    let file = dir.join("config.json");
    let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut doc: Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let linux = doc.get_mut("linux");
    let (cgroups_path, resources, devices, uid_maps, gid_maps) = match linux {
        Some(l) => (
            take(l, "cgroupsPath").as_str().map(String::from),
            take(l, "resources"),
            take(l, "devices"),
            take(l, "uidMappings"),
            take(l, "gidMappings"),
        ),
        None => (None, Value::Null, Value::Null, Value::Null, Value::Null),
    };
    let in_file = |e: anyhow::Error| anyhow!("{}: {e}", file.display());
    let id_maps = crate::idmaps::read(&doc["linux"], &uid_maps, &gid_maps).map_err(in_file)?;
    // Ours now: libnspawn's reading would want its own one mapping.
    if let Some(ns) = doc
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    {
        ns.retain(|n| !(n["type"] == "user" && n["path"].is_null()));
    }
    let device_nodes = crate::devices::nodes(&devices).map_err(in_file)?;
    let device_rules = crate::devices::rules(&resources["devices"]).map_err(in_file)?;
    // The pty's size until the caller (through the console socket)
    // follows its own.
    let console_size = doc.get("process").and_then(crate::console::size);
    if let Some(p) = doc.get_mut("process") {
        take(p, "consoleSize");
        // The container process sets 0022 (what podman asks for).
        if let Some(u) = p.get_mut("user") {
            match take(u, "umask") {
                Value::Null => {}
                m if m.as_u64() == Some(0o022) => {}
                m => bail!(
                    "{}: process.user.umask: {m} is not supported (only 18, 0022)",
                    file.display()
                ),
            }
        }
    }
    let hooks = crate::hooks::check(take(&mut doc, "hooks"))
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let has_hostname = doc.get("hostname").is_some();
    let annotations = doc
        .get("annotations")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let oci = libnspawn::oci::parse(doc, &dir).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let rootfs = oci
        .root
        .clone()
        .ok_or_else(|| anyhow!("{}: root: missing", file.display()))?;
    let terminal = oci.terminal == Some(true);
    // The command line's defaults, as `nspawn -D ROOT` makes them; the
    // bundle decides everything it can say.
    let name = if libnspawn::settings::machine_name_is_valid(id) {
        id
    } else {
        "container"
    };
    let argv: Vec<String> = [
        "nspawn",
        "--quiet",
        "--register=no",
        "--settings=no",
        "--machine",
        name,
        "--directory",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([rootfs.display().to_string()])
    .collect();
    let cli = nspawn::cli::Cli::try_parse_from_args(argv)
        .map_err(|e| anyhow!("{}", nspawn::cli::clap_message(&e)))?;
    let mut settings = cli.into_settings().map_err(|e| anyhow!("{e}"))?;
    libnspawn::oci::merge::apply(&mut settings, oci, |_| false)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    // The namespace's root as `-U` would name its range, for what the
    // settings decide from it (the capabilities kept, `kept_capabilities`).
    if let Some(m) = &id_maps {
        let root = m.uid.iter().find(|r| r.container == 0).copied();
        if let Some(r) = root {
            settings.userns.mode = libnspawn::userns::Mode::Fixed {
                base: r.host,
                size: r.size,
            };
        }
    }
    let device_rules = crate::devices::program_rules(device_rules, &device_nodes);
    settings.fs.device_nodes = device_nodes;
    // No `hostname`: the new UTS namespace keeps the host's name, as
    // under runc (nspawn would name it after the machine).
    if !has_hostname {
        settings.hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
    }
    Ok(Bundle {
        dir,
        settings,
        rootfs,
        terminal,
        cgroups_path,
        resources,
        annotations,
        hooks,
        device_rules,
        id_maps,
        console_size,
    })
}
