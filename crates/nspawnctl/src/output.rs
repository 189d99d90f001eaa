//! Where an export goes: stdout, or a new file that gets its name only
//! when complete. The file is made unnamed (`O_TMPFILE`) in the target's
//! directory and linked under the name at the end, so a failed, cancelled
//! or killed export leaves nothing; on a file system without `O_TMPFILE`
//! it is created under the name and removed again on failure.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::Mode;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub struct Output {
    file: File,
    target: Target,
}

enum Target {
    Stdout,
    /// Unnamed until `commit` links it.
    Unnamed(PathBuf),
    /// Created under its name: removed on drop unless committed.
    Named(PathBuf, bool),
}

/// The export's destination: `None` or `-` for stdout, else a file that
/// must not exist yet.
pub fn open(arg: Option<&str>) -> Result<Output, String> {
    let Some(path) = arg.filter(|f| *f != "-") else {
        let fd = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot use stdout: {e}"))?;
        return Ok(Output {
            file: File::from(fd),
            target: Target::Stdout,
        });
    };
    let path = PathBuf::from(path);
    let exists = || format!("cannot create {}: File exists", path.display());
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = Mode::from_bits_truncate(0o666);
    let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(dir, flags, mode) {
        Ok(fd) => Ok(Output {
            file: File::from(fd),
            target: Target::Unnamed(path),
        }),
        // Not supported by this file system (open(2): EOPNOTSUPP; EISDIR
        // from kernels without O_TMPFILE).
        Err(Errno::EOPNOTSUPP | Errno::EISDIR) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            Ok(Output {
                file,
                target: Target::Named(path, false),
            })
        }
        Err(e) => Err(format!("cannot create {}: {}", path.display(), io(e))),
    }
}

impl Output {
    /// The file to write (a descriptor of its own).
    pub fn file(&self) -> Result<File, String> {
        self.file
            .try_clone()
            .map_err(|e| format!("cannot write the export: {e}"))
    }

    /// The export is complete: give it its name.
    pub fn commit(mut self) -> Result<(), String> {
        match &mut self.target {
            Target::Stdout => Ok(()),
            Target::Named(_, done) => {
                *done = true;
                Ok(())
            }
            Target::Unnamed(path) => {
                // linkat(2) of an O_TMPFILE file through its /proc link.
                let fd = format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&self.file)
                );
                nix::unistd::linkat(
                    AT_FDCWD,
                    fd.as_str(),
                    AT_FDCWD,
                    &*path,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(|e| format!("cannot create {}: {e}", path.display()))
            }
        }
    }
}

/// An errno worded as the standard library's errors are elsewhere.
fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Target::Named(path, false) = &self.target {
            let _ = std::fs::remove_file(path);
        }
    }
}
