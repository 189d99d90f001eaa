//! `--template=DIR`: fill a missing tree from a template once. The copy is
//! made next to the target and renamed into place, so an interrupted copy
//! never leaves a half tree that a later start would take for complete.
//! `cp -a --reflink=auto` shares blocks where the file system can (btrfs,
//! xfs) and keeps ownership, modes, links, ACLs and xattrs; no crate does
//! all of that as faithfully.

use crate::error::{Context, Error, Result};
use std::path::Path;
use std::process::Command;

pub fn ensure(directory: &Path, template: &Path) -> Result<()> {
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
    let tmp = parent.join(format!(".#{name}.template-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let st = Command::new("cp")
        .args(["-a", "--reflink=auto", "--no-target-directory"])
        .arg(template)
        .arg(&tmp)
        .status()
        .ctx(|| "cannot run cp".into())?;
    if !st.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::invalid(format!(
            "cannot copy template {} to {}",
            template.display(),
            directory.display()
        )));
    }
    std::fs::rename(&tmp, directory)
        .ctx(|| format!("cannot move the copy into place at {}", directory.display()))
}
