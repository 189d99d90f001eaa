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
    let copied = copy(template, &tmp, directory, interrupted);
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, directory)
        .ctx(|| format!("cannot move the copy into place at {}", directory.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&tmp);
        })
}

/// `cp -a` of `template` to `tmp`. Its error messages go to a memory
/// file (a pipe could fill while we poll), of which the last line's
/// reason is ours: a full file system gives hundreds of them. It dies with
/// us (`PR_SET_PDEATHSIG`): a killed runner's copy must not go on writing
/// beside the next start's.
fn copy(
    template: &Path,
    tmp: &Path,
    directory: &Path,
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let errors = rustix::fs::memfd_create("cp-errors", rustix::fs::MemfdFlags::CLOEXEC)
        .ctx(|| "cannot create a memory file".into())?;
    let mut c = Command::new("cp");
    c.args(["-a", "--reflink=auto", "--no-target-directory"])
        .arg(template)
        .arg(tmp)
        .stderr(std::fs::File::from(
            errors
                .try_clone()
                .ctx(|| "cannot duplicate a descriptor".into())?,
        ));
    crate::sys::dies_with_us(&mut c);
    let mut cp = c
        .spawn()
        .ctx(|| "cannot run cp".into())
        .map_err(Error::from_fork)?;
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
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut f = std::fs::File::from(errors);
    let _ = std::io::Seek::rewind(&mut f);
    let _ = std::io::Read::read_to_string(&mut f, &mut text);
    // "cp: error writing 'PATH': No space left on device": the reason.
    let why = text
        .lines()
        .last()
        .map(|l| l.rsplit(": ").next().unwrap_or(l).to_string())
        .unwrap_or_else(|| format!("cp {status}"));
    Err(Error::invalid(format!(
        "cannot copy template {} to {}: {why}",
        template.display(),
        directory.display()
    )))
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
