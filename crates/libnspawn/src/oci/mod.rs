//! `--oci-bundle=DIR`: a runtime-spec bundle's `config.json` (versions
//! 1.0 to 1.2) read into the settings it stands for, as systemd's
//! nspawn-oci.c reads one. One job per file: `json` (a walk that knows
//! its JSON path, so every error names the value), `process`, `mounts`,
//! `linux`, `seccomp`, and `merge` (the result onto the command line's `Settings`,
//! where the command line did not set the same thing). Fields the spec
//! defines that have no equivalent here are refused by name; nothing is
//! ignored silently except annotations and hints. docs/design/oci.md.

pub mod hooks;
pub mod json;
mod linux;
pub mod merge;
mod mounts;
mod process;
mod seccomp;

use crate::error::{Error, Result};
use crate::mount::spec::CustomMount;
use crate::systemd::property::Property;
use crate::user::Identity;
use json::{err, At};
use std::path::{Path, PathBuf};

/// The capability sets of `process.capabilities`; `None`: not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: Option<u64>,
    pub effective: Option<u64>,
    pub permitted: Option<u64>,
    pub inheritable: Option<u64>,
    pub ambient: Option<u64>,
}

/// What a bundle asks for; `None` or empty: the bundle does not say.
#[derive(Debug, Clone, Default)]
pub struct Oci {
    /// `root.path`, absolute (relative ones are the bundle's).
    pub root: Option<PathBuf>,
    pub read_only: Option<bool>,
    pub terminal: Option<bool>,
    pub identity: Option<Identity>,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<(String, String)>>,
    pub cwd: Option<String>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub caps: Option<CapSets>,
    pub no_new_privileges: Option<bool>,
    pub oom_score_adjust: Option<i32>,
    pub hostname: Option<String>,
    /// `mounts`, in order.
    pub mounts: Vec<CustomMount>,
    pub masked: Vec<CustomMount>,
    pub read_only_paths: Vec<CustomMount>,
    pub private_network: Option<bool>,
    pub netns_path: Option<PathBuf>,
    pub user_namespace: Option<bool>,
    /// (host base, size) of the one id mapping.
    pub mapping: Option<(u32, u32)>,
    pub slice: Option<String>,
    /// `linux.resources`, as the scope properties the reference makes.
    pub properties: Vec<Property>,
    pub cpu_affinity: Option<Vec<usize>>,
    /// `linux.seccomp`: replaces our filter.
    pub seccomp: Option<crate::security::syscall_policy::SyscallPolicy>,
    /// `linux.sysctl`, checked to be of the container's namespaces
    /// (`net.*` once the network is known: `merge`).
    pub sysctl: Vec<(String, String)>,
}

/// `1.0.x` to `1.2.x`, with a pre-release suffix (`1.0.2-dev`, what runc
/// and podman write).
fn version_supported(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts[0] == "1"
        && ["0", "1", "2"].contains(&parts[1])
        && !parts[2].is_empty()
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// Read `BUNDLE/config.json`. Every error is one line naming the file
/// and the JSON path of the value.
pub fn load(bundle: &Path) -> Result<Oci> {
    let file = bundle.join("config.json");
    let text = std::fs::read(&file).map_err(|e| {
        Error::invalid(format!(
            "cannot read {}: {}",
            file.display(),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)).desc()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::invalid(format!("{}: not JSON: {e}", file.display())))?;
    parse(value, bundle).map_err(|e| Error::invalid(format!("{}: {e}", file.display())))
}

/// The document, already JSON, of the bundle at `bundle`.
pub fn parse(value: serde_json::Value, bundle: &Path) -> json::Result<Oci> {
    let mut o = At::new(String::new(), value).object()?;
    let v = o.need("ociVersion")?;
    let vpath = v.path.clone();
    let version = v.string()?;
    if !version_supported(&version) {
        return err(
            &vpath,
            format!("version {version} is not supported (1.0 to 1.2 are)"),
        );
    }
    let mut oci = Oci::default();
    if let Some(p) = o.take("process") {
        process::read(p, &mut oci)?;
    }
    if let Some(r) = o.take("root") {
        let mut r = r.object()?;
        let path = r.need("path")?.string()?;
        oci.root = Some(bundle.join(path));
        if let Some(ro) = r.take("readonly") {
            oci.read_only = Some(ro.bool()?);
        }
        r.done()?;
    }
    if let Some(h) = o.take("hostname") {
        let path = h.path.clone();
        let name = h.string()?;
        if !crate::settings::hostname_is_valid(&name) {
            return err(&path, format!("not a valid host name: {name}"));
        }
        oci.hostname = Some(name);
    }
    if let Some(m) = o.take("mounts") {
        for item in m.array()? {
            oci.mounts.extend(mounts::mount(item, bundle)?);
        }
    }
    if let Some(l) = o.take("linux") {
        linux::read(l, &mut oci)?;
    }
    if oci.user_namespace == Some(true) && oci.mapping.is_none() {
        return err("linux.uidMappings", "missing, with a user namespace");
    }
    if let Some(h) = o.take("hooks") {
        let path = h.path.clone();
        let hooks = h.object()?.entries();
        let given = hooks
            .into_iter()
            .find(|(_, v)| v.value.as_array().is_none_or(|a| !a.is_empty()));
        if let Some((name, _)) = given {
            return err(&json::join(&path, &name), "hooks are not supported");
        }
    }
    if let Some(a) = o.take("annotations") {
        for (k, v) in a.object()?.entries() {
            let path = v.path.clone();
            if k.is_empty() || !v.value.is_string() {
                return err(&path, "annotations are string to string");
            }
        }
    }
    o.unsupported(&["domainname", "solaris", "windows", "vm", "zos"])?;
    o.done()?;
    Ok(oci)
}

#[cfg(test)]
mod tests;
