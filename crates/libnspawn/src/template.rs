//! `--template=DIR`: fill a missing tree from a template once. The copy is
//! made next to the target and renamed into place, so an interrupted copy
//! never leaves a half tree that a later start would take for complete.
//! `cp -a --reflink=auto` shares blocks where the file system can (btrfs,
//! xfs) and keeps ownership, modes, links, ACLs and xattrs; no crate does
//! all of that as faithfully.

use crate::error::{Context, Error, Result};
use std::path::Path;
use std::process::Command;

/// Fill `directory` from `template` unless it exists. `interrupted` is
/// asked while the copy runs; a stop request kills the copy and removes
/// it. Copies left by runners killed meanwhile are removed first.
pub fn ensure(
    directory: &Path,
    template: &Path,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<()> {
    if directory.exists() {
        return Ok(());
    }
    if !template.is_dir() {
        return Err(Error::invalid(format!(
            "Template {} is not a directory",
            template.display()
        )));
    }
    let name = directory
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = directory.parent().unwrap_or(Path::new("/"));
    let prefix = format!(".#{name}.template-");
    remove_abandoned(parent, &prefix);
    let tmp = parent.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let copied = copy(template, &tmp, interrupted);
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, directory)
        .ctx(|| format!("cannot move the copy into place at {}", directory.display()))
}

fn copy(template: &Path, tmp: &Path, interrupted: &dyn Fn() -> Result<()>) -> Result<()> {
    let mut cp = Command::new("cp")
        .args(["-a", "--reflink=auto", "--no-target-directory"])
        .arg(template)
        .arg(tmp)
        .spawn()
        .ctx(|| "cannot run cp".into())?;
    let status = loop {
        if let Some(st) = cp.try_wait().ctx(|| "cannot wait for cp".into())? {
            break st;
        }
        if let Err(e) = interrupted() {
            let _ = cp.kill();
            let _ = cp.wait();
            return Err(e);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    match status.success() {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "cannot copy template {} to {}",
            template.display(),
            tmp.display()
        ))),
    }
}

/// Remove the half copies `PREFIX<pid>` of runners that are gone.
fn remove_abandoned(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let Some(pid) = n.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let gone = pid
            .parse::<i32>()
            .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_err());
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
