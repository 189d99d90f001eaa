//! The content-addressed blob store shared by every OCI image of a pool:
//! `POOL/.oci_store/sha256/HEX`, one file per layer or config, written
//! once, whoever asks for it next. (`.oci_store` is not a valid image
//! name, so the store never lists it as an image.) A blob is written into
//! an unnamed `O_TMPFILE` file, hashed as it streams, and linked under its
//! digest only when the hash matched: a killed pull leaves nothing, and a
//! file in the store always holds what its name says. Pulls hold the store
//! shared (`flock`), `clean` exclusively, so a blob downloaded for an
//! image not yet committed is never collected.

use crate::image::cancel;
use crate::image::transfer::verify::Hashing;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const STORE: &str = ".oci_store";

pub struct Blobs {
    dir: PathBuf,
    _lock: OwnedFd,
}

/// A blob's file name: the hex of `sha256:HEX`, checked, so a digest from
/// a manifest can never name a path outside the store.
fn hex(digest: &str) -> Result<&str, String> {
    if super::reference::is_digest(digest) {
        Ok(&digest[7..])
    } else {
        Err(format!("unsupported digest '{digest}' (only sha256 is)"))
    }
}

impl Blobs {
    /// The store of `pool`, made if missing, held shared until dropped.
    pub fn open(pool: &Path) -> Result<Blobs, String> {
        Self::open_as(pool, false)?.ok_or_else(|| "the blob store is busy".into())
    }

    /// Held exclusively, or `None` while a pull uses it.
    fn open_as(pool: &Path, exclusive: bool) -> Result<Option<Blobs>, String> {
        let dir = pool.join(STORE).join("sha256");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let lock = rustix::fs::open(
            &dir,
            rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
        let op = match exclusive {
            true => rustix::fs::FlockOperation::NonBlockingLockExclusive,
            false => rustix::fs::FlockOperation::LockShared,
        };
        match rustix::fs::flock(&lock, op) {
            Ok(()) => Ok(Some(Blobs { dir, _lock: lock })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(format!("cannot lock {}: {e}", dir.display())),
        }
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf, String> {
        Ok(self.dir.join(hex(digest)?))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Store what `src` yields as `digest`: refused unless it hashes to
    /// it and, when `size` is known, has exactly that many bytes.
    /// `progress` is told the bytes read so far.
    pub fn put(
        &self,
        digest: &str,
        src: impl Read,
        size: Option<u64>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        let to = self.path(digest)?;
        let (file, got, n) = self.write(src, size.map(|s| s + 1), progress, digest)?;
        if let Some(s) = size.filter(|s| n != *s) {
            return Err(match n < s {
                true => format!("blob {digest} is truncated: {n} of {s} bytes"),
                false => format!("blob {digest} is larger than the {s} bytes its descriptor says"),
            });
        }
        if got != digest {
            return Err(format!(
                "blob {digest} does not match its digest (got {got})"
            ));
        }
        link(&file, &to)
    }

    /// Store what `src` yields under the digest it has, and return that.
    pub fn put_any(&self, src: impl Read) -> Result<String, String> {
        let (file, got, _) = self.write(src, None, &mut |_| {}, "the archive")?;
        link(&file, &self.path(&got)?)?;
        Ok(got)
    }

    fn write(
        &self,
        src: impl Read,
        limit: Option<u64>,
        progress: &mut dyn FnMut(u64),
        what: &str,
    ) -> Result<(File, String, u64), String> {
        let fd = rustix::fs::open(
            &self.dir,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .map_err(|e| format!("cannot create a file in {}: {e}", self.dir.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, File::from(fd));
        let mut src = Hashing::new(src.take(limit.unwrap_or(u64::MAX)));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if cancel::requested() {
                return Err("transfer cancelled".into());
            }
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read {what}: {}", one_line(&e.to_string()))),
            };
            out.write_all(&buf[..n])
                .map_err(|e| format!("cannot write into {}: {e}", self.dir.display()))?;
            progress(src.bytes);
        }
        let file = out
            .into_inner()
            .map_err(|e| format!("cannot write into {}: {}", self.dir.display(), e.error()))?;
        let n = src.bytes;
        Ok((file, format!("sha256:{}", src.hex()), n))
    }

    /// A small document (manifest, config) from the store, bounded.
    pub fn read_small(&self, digest: &str) -> Result<Vec<u8>, String> {
        let p = self.path(digest)?;
        let f = File::open(&p).map_err(|e| format!("cannot open blob {digest}: {e}"))?;
        super::read_bounded(f, &format!("blob {digest}"))
    }

    /// The store of `pool` held exclusively, for `clean`: `None` if there
    /// is none or a pull holds it.
    pub fn exclusive(pool: &Path) -> Result<Option<Blobs>, String> {
        if !pool.join(STORE).is_dir() {
            return Ok(None);
        }
        Self::open_as(pool, true)
    }

    /// Remove every blob not in `keep`; how many blobs and bytes went.
    pub fn collect(&self, keep: &HashSet<String>) -> Result<(usize, u64), String> {
        let (mut n, mut bytes) = (0, 0);
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        for e in entries.flatten() {
            let digest = format!("sha256:{}", e.file_name().to_string_lossy());
            if keep.contains(&digest) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(e.path())
                .map_err(|err| format!("cannot remove {}: {err}", e.path().display()))?;
            n += 1;
            bytes += size;
        }
        Ok((n, bytes))
    }
}

/// Give an `O_TMPFILE` file its name (linkat(2) through its /proc link,
/// which needs no CAP_DAC_READ_SEARCH); another pull may have linked the
/// same blob first, which is as good.
fn link(file: &File, to: &Path) -> Result<(), String> {
    file.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", to.display()))?;
    let proc = format!("/proc/self/fd/{}", file.as_fd().as_raw_fd());
    match rustix::fs::linkat(
        rustix::fs::CWD,
        proc.as_str(),
        rustix::fs::CWD,
        to,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(format!("cannot link {}: {e}", to.display())),
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}
