//! `mounts`, `linux.maskedPaths` and `linux.readonlyPaths` as custom
//! mounts, the kinds `--bind`, `--tmpfs` and `--inaccessible` make, plus
//! other file systems by type. The API file systems are ours: entries for
//! them are skipped, as the reference skips them (nspawn-oci.c,
//! oci_exclude_mount), since a runtime-spec bundle always lists them.

use super::json::{err, At, Result};
use crate::mount::options;
use crate::mount::spec::{clean_abs, CustomMount, Idmap, MountKind, Source};
use nix::mount::MsFlags;
use std::path::Path;

const OURS: &[&str] = &[
    "/dev",
    "/dev/mqueue",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/proc/acpi",
    "/proc/apm",
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/kallsyms",
    "/proc/kcore",
    "/proc/keys",
    "/proc/scsi",
    "/proc/sys",
    "/proc/sys/net",
    "/proc/sysrq-trigger",
    "/proc/timer_list",
    "/run",
    "/sys",
    "/sys/fs/selinux",
    "/tmp",
];

fn ours(dest: &str) -> bool {
    OURS.contains(&dest) || dest == "/sys/fs/cgroup" || dest.starts_with("/sys/fs/cgroup/")
}

fn destination(at: At) -> Result<String> {
    let path = at.path.clone();
    let d = at.string()?;
    clean_abs(&d).map_or_else(|| err(&path, format!("not an absolute path: {d}")), Ok)
}

/// Propagation words: ours stay private, so `private`/`rprivate` ask for
/// what is done anyway; the others would need shared mounts.
fn propagation(word: &str, path: &str) -> Result<bool> {
    match word {
        "private" | "rprivate" => Ok(true),
        "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
            err(path, format!("propagation {word} is not supported"))
        }
        _ => Ok(false),
    }
}

/// One entry of `mounts`; `None` for one of the API file systems.
pub fn mount(at: At, bundle: &Path) -> Result<Option<CustomMount>> {
    let mut o = at.object()?;
    let dest = destination(o.need("destination")?)?;
    let source = o.take("source").map(At::string).transpose()?;
    let fstype = o.take("type").map(At::string).transpose()?;
    let opts_at = o.take("options");
    let opts_path = opts_at.as_ref().map(|a| a.path.clone()).unwrap_or_default();
    let opts = opts_at.map(At::strings).transpose()?.unwrap_or_default();
    let path = o.path.clone();
    o.unsupported(&["uidMappings", "gidMappings"])?;
    o.done()?;
    if ours(&dest) {
        return Ok(None);
    }
    let mut kept = vec![];
    for w in &opts {
        // runc's own option (podman's `--tmpfs` sets it): copy what the
        // tree has at the target into the new tmpfs. Not done here: the
        // tmpfs starts empty (README, "Where we differ").
        if w == "tmpcopyup" || w == "notmpcopyup" {
            continue;
        }
        if !propagation(w, &opts_path)? {
            kept.push(w.as_str());
        }
    }
    // runc's rule: a bind is a bind by its options, whatever its type
    // (Docker writes `"type": "none"`).
    let bind = fstype.as_deref().is_none_or(|t| t == "bind")
        || kept.iter().any(|w| *w == "bind" || *w == "rbind");
    if bind {
        let src = source.ok_or_else(|| super::json::PathError {
            path: format!("{path}.source"),
            msg: "missing".into(),
        })?;
        // Relative to the bundle, as the reference and runc read it.
        let src = bundle.join(&src);
        let src = clean_abs(&src.to_string_lossy())
            .map_or_else(|| err(&format!("{path}.source"), "not a normal path"), Ok)?;
        let (mut read_only, mut recursive) = (false, true);
        let mut flags = MsFlags::empty();
        for w in kept {
            match w {
                "rbind" => recursive = true,
                "bind" => recursive = false,
                "ro" => read_only = true,
                "rw" => read_only = false,
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                _ => return err(&opts_path, format!("bind option {w} is not supported")),
            }
        }
        return Ok(Some(CustomMount {
            kind: MountKind::Bind {
                source: Source::Host(src.into()),
                read_only,
                recursive,
                idmap: Idmap::Off,
                flags,
            },
            dest,
        }));
    }
    let fstype = fstype.unwrap_or_default();
    let split =
        options::split(&kept.join(","), MsFlags::empty()).or_else(|e| err(&opts_path, e))?;
    let kind = match fstype.as_str() {
        "tmpfs" => MountKind::Tmpfs {
            flags: split.flags,
            data: split.data,
        },
        _ => MountKind::Fs {
            fstype: fstype.clone(),
            source: source.unwrap_or_else(|| fstype.clone()),
            flags: split.flags,
            data: split.data,
        },
    };
    Ok(Some(CustomMount { kind, dest }))
}

/// `linux.maskedPaths`: made inaccessible; a path the tree lacks is
/// skipped, as runc and the reference do.
pub fn masked(at: At) -> Result<Vec<CustomMount>> {
    let mut out = vec![];
    for item in at.array()? {
        let dest = destination(item)?;
        if !ours(&dest) {
            out.push(CustomMount {
                kind: MountKind::Inaccessible { graceful: true },
                dest,
            });
        }
    }
    Ok(out)
}

/// `linux.readonlyPaths`: each bound onto itself, read-only.
pub fn read_only(at: At) -> Result<Vec<CustomMount>> {
    let mut out = vec![];
    for item in at.array()? {
        let dest = destination(item)?;
        if !ours(&dest) {
            out.push(CustomMount {
                kind: MountKind::Bind {
                    source: Source::Tree(dest.clone()),
                    read_only: true,
                    recursive: true,
                    idmap: Idmap::Off,
                    flags: nix::mount::MsFlags::empty(),
                },
                dest,
            });
        }
    }
    Ok(out)
}
