//! Raw disk images: `import-raw`, `pull-raw`, `export-raw`. An incoming
//! image is one file, so there is nothing to confine: this process reads
//! the source (a file, stdin, or a download through `fetch`), hashes it,
//! decompresses it (the format told by its first bytes) and writes it
//! sparsely (`sparse`) into a locked hidden `.#NAME.<random>` file in the
//! writable pool. Only when the stream has ended cleanly, its checksum
//! matched (`--verify=checksum`, the same checks as `pull-tar`) and a
//! QCOW2 image has been converted to raw (`qcow2`, into a second
//! temporary) is it renamed into place as `NAME.raw`. A failure, SIGINT or
//! SIGTERM drops the temporaries; after SIGKILL their locks are gone and
//! the next transfer's sweep removes them.

use super::trust::{Policy, Trust};
use super::{
    cancelled, check_name, commit_as, compress, fetch, prepare_as, progress, settings_for, verify,
    Options,
};
use crate::error::{Context, Error, Result};
use crate::image::cancel;
use crate::image::ops::Temp;
use crate::image::store::{self, Image, Kind};
use compress::Compression;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The suffixes the reference strips, again and again, from a raw image's
/// file name (`foo.raw.xz` is `foo`).
const RAW_SUFFIXES: &[&str] = &[
    ".xz", ".gz", ".bz2", ".zst", ".raw", ".qcow2", ".img", ".bin",
];

/// The unit of reads and writes.
const CHUNK: usize = 1 << 20;

/// `file` without its raw image suffixes.
pub fn strip_suffixes(mut file: &str) -> &str {
    while let Some(s) = RAW_SUFFIXES.iter().find_map(|s| file.strip_suffix(s)) {
        file = s;
    }
    file
}

/// The image name a raw file or URL gives by default; `None` if that is
/// not a valid name.
pub fn default_name(url_or_path: &str) -> Option<String> {
    let name = strip_suffixes(fetch::file_name(url_or_path));
    store::name_is_valid(name).then(|| name.to_string())
}

fn is_cancelled() -> bool {
    cancel::requested()
}

/// Decompress `src` (`what`, for messages) into the temporary, sparsely;
/// returns the SHA-256 of the stream as it came.
fn receive(
    src: Box<dyn Read>,
    total: Option<u64>,
    label: Option<&str>,
    what: &str,
    temp: &Temp,
) -> Result<String> {
    cancel::catch();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp.path)
        .ctx(|| format!("cannot open {}", temp.path.display()))?;
    let source = progress::Metered::new(
        verify::Hashing::new(src),
        progress::Progress::new(label, total),
    );
    let mut input = BufReader::with_capacity(CHUNK, source);
    let mut out = super::sparse::Writer::new(file);
    let r = copy(&mut input, &mut out, temp);
    let source = input.into_inner();
    let read_failed = source.failed;
    let hashing = source.into_inner();
    if is_cancelled() {
        return Err(cancelled());
    }
    match r {
        Err(Failure::Source(e)) | Err(Failure::Decode(_, e)) if read_failed => {
            return Err(Error::invalid(format!("cannot read {what}: {e}")))
        }
        Err(Failure::Source(e)) => return Err(Error::invalid(format!("cannot read {what}: {e}"))),
        Err(Failure::Decode(c, e)) => {
            return Err(Error::invalid(format!(
                "cannot import {what}: its {} data is corrupt or cut short: {e}",
                c.as_str()
            )))
        }
        Err(Failure::Other(e)) => return Err(e),
        Ok(()) => {}
    }
    if hashing.bytes == 0 {
        return Err(Error::invalid(format!("cannot import {what}: it is empty")));
    }
    let (file, _) = out
        .finish()
        .ctx(|| format!("cannot write {}", temp.path.display()))?;
    // Complete on disk before it is renamed into place, as the
    // reference's default --sync=yes.
    file.sync_all()
        .ctx(|| format!("cannot write {}", temp.path.display()))?;
    Ok(hashing.hex())
}

enum Failure {
    Source(std::io::Error),
    Decode(Compression, std::io::Error),
    Other(Error),
}

fn copy<R: std::io::BufRead>(
    input: &mut R,
    out: &mut super::sparse::Writer,
    temp: &Temp,
) -> std::result::Result<(), Failure> {
    let (c, mut dec) = compress::open(input).map_err(Failure::Source)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if is_cancelled() {
            return Err(Failure::Other(cancelled()));
        }
        let n = match dec.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // Our SIGINT/SIGTERM handler: the check above decides.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Decode(c, e)),
        };
        out.write(&buf[..n]).map_err(|e| {
            Failure::Other(Error::invalid(format!(
                "cannot write {}: {e}",
                temp.path.display()
            )))
        })?;
    }
}

/// The temporary as a raw image: itself, or, when it holds a QCOW2 image,
/// a new temporary with its conversion (the first one is removed).
fn unqcow2(pool: &Path, temp: Temp, name: &str) -> Result<Temp> {
    let src = File::open(&temp.path).ctx(|| format!("cannot open {}", temp.path.display()))?;
    if !super::qcow2::detect(&src).ctx(|| format!("cannot read {}", temp.path.display()))? {
        return Ok(temp);
    }
    let out = Temp::new(pool, name, false)?;
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&out.path)
        .ctx(|| format!("cannot open {}", out.path.display()))?;
    match super::qcow2::convert(&src, &dst, &is_cancelled) {
        Err(_) if is_cancelled() => Err(cancelled()),
        Err(e) => Err(Error::invalid(e)),
        Ok(()) => {
            dst.sync_all()
                .ctx(|| format!("cannot write {}", out.path.display()))?;
            Ok(out)
        }
    }
}

/// `import-raw`: a disk image read from `src` (`what`: the file, or stdin).
pub fn import_raw(
    src: Box<dyn Read>,
    size: Option<u64>,
    what: &str,
    name: &str,
    o: Options,
) -> Result<PathBuf> {
    check_name(name, o)?;
    let (pool, temp) = prepare_as(name, false)?;
    receive(src, size, None, what, &temp)?;
    let temp = unqcow2(&pool, temp, name)?;
    commit_as(&pool, temp, name, Kind::Raw, o, None)
}

/// `pull-raw`: download, check and decompress in one stream.
pub fn pull_raw(url: &str, name: &str, p: &Policy, o: Options) -> Result<PathBuf> {
    fetch::check_url(url).map_err(Error::invalid)?;
    check_name(name, o)?;
    let trust = Trust::fetch(url, p)?;
    let file = fetch::file_name(url);
    let settings = settings_for(url, strip_suffixes(file), &trust)?;
    let Some((src, total)) = fetch::open(url).map_err(Error::invalid)? else {
        return Err(Error::invalid(format!("cannot fetch {url}: not found")));
    };
    let (pool, temp) = prepare_as(name, false)?;
    let got = receive(src, total, Some(url), url, &temp)?;
    // Checked before the QCOW2 parser ever sees it.
    trust.check(file, &got)?;
    let temp = unqcow2(&pool, temp, name)?;
    commit_as(&pool, temp, name, Kind::Raw, o, settings.as_deref())
}

/// A copy of `f` that later writes to the image do not change: a reflink
/// into an unnamed file beside it (as the reference), where the file
/// system can; `None` where it cannot.
fn snapshot(f: &File, dir: &Path) -> Option<File> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .ok()?;
    rustix::fs::ioctl_ficlone(&fd, f).ok()?;
    Some(File::from(fd))
}

/// Whether `out` is an empty regular file written from its start, where
/// holes can be left by seeking (never a pipe, nor a file opened to append).
fn can_seek_holes(out: &File) -> bool {
    let Ok(m) = out.metadata() else { return false };
    let append = rustix::fs::fcntl_getfl(out)
        .map(|f| f.contains(rustix::fs::OFlags::APPEND))
        .unwrap_or(true);
    let pos = rustix::fs::seek(out, rustix::fs::SeekFrom::Current(0)).ok();
    m.file_type().is_file() && m.len() == 0 && !append && pos == Some(0)
}

/// `export-raw`: the image's bytes, compressed as `c`, into `out`.
/// Uncompressed into a new regular file, all-zero blocks stay holes.
pub fn export_raw(i: &Image, out: File, c: Compression) -> Result<File> {
    if i.kind != Kind::Raw {
        return Err(Error::invalid(format!(
            "cannot export image '{}': a {} image is not a raw disk image (export-tar exports trees)",
            i.name,
            i.kind.as_str()
        )));
    }
    let what = || format!("cannot read {}", i.path.display());
    let src = File::open(&i.path).ctx(what)?;
    if !src.metadata().ctx(what)?.file_type().is_file() {
        return Err(Error::invalid(format!(
            "cannot export image '{}': {} is not a regular file",
            i.name,
            i.path.display()
        )));
    }
    let dir = i.path.parent().unwrap_or(Path::new("/"));
    let mut src = snapshot(&src, dir).unwrap_or(src);
    cancel::catch();
    let write = |e: std::io::Error| Error::invalid(format!("cannot write the export: {e}"));
    let mut buf = vec![0u8; CHUNK];
    let next = |src: &mut File, buf: &mut [u8]| -> Result<usize> {
        loop {
            if is_cancelled() {
                return Err(cancelled());
            }
            match src.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r.ctx(what),
            }
        }
    };
    if c == Compression::Uncompressed && can_seek_holes(&out) {
        let mut w = super::sparse::Writer::new(out);
        loop {
            match next(&mut src, &mut buf)? {
                0 => break,
                n => w.write(&buf[..n]).map_err(write)?,
            }
        }
        let (out, _) = w.finish().map_err(write)?;
        return Ok(out);
    }
    let mut enc = compress::Encoder::new(c, std::io::BufWriter::with_capacity(CHUNK, out))
        .map_err(Error::invalid)?;
    loop {
        match next(&mut src, &mut buf)? {
            0 => break,
            n => enc.write_all(&buf[..n]).map_err(write)?,
        }
    }
    let w = enc.finish().map_err(write)?;
    w.into_inner().map_err(|e| write(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            default_name("http://x/d/fedora-39.raw.xz").as_deref(),
            Some("fedora-39")
        );
        assert_eq!(default_name("/srv/disk.qcow2").as_deref(), Some("disk"));
        assert_eq!(default_name("a.img.zst").as_deref(), Some("a"));
        assert_eq!(default_name("b.bin.gz").as_deref(), Some("b"));
        assert_eq!(default_name("plain").as_deref(), Some("plain"));
        assert_eq!(default_name(".raw"), None);
        assert_eq!(strip_suffixes("x.tar"), "x.tar");
    }
}
