//! Bringing images in and out: `import-tar`, `import-fs`, `pull-tar` and
//! `export-tar` here, their raw disk image counterparts in `raw`. An
//! incoming tree is written under a locked hidden `.#`
//! temporary in the first writable pool directory (`ops::Temp`), by a
//! confined child (`unpack`) fed through a pipe, while this process reads
//! the source, hashes it (`verify`) and shows progress; it is renamed into
//! place only when the whole stream has been unpacked and, with
//! `--verify=checksum`, its hash checked. On any failure, on SIGINT or
//! SIGTERM the temporary is removed; after SIGKILL the next transfer's
//! sweep removes it (its lock died with us).

pub mod compress;
mod fetch;
mod pack;
pub(crate) mod progress;
mod qcow2;
pub mod raw;
mod sparse;
pub mod trust;
pub(crate) mod unpack;
pub mod verify;
mod whiteout;

use super::cancel;
use super::ops::{self, Temp};
use super::store::{self, Image, Kind};
use crate::error::{Context, Error, Result};
use compress::Compression;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
pub use trust::Verify;
use trust::{Policy, Trust};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Replace an existing image of the same name.
    pub force: bool,
    pub read_only: bool,
}

/// The suffixes the reference strips from a tar's name.
const TAR_SUFFIXES: &[&str] = &[".tar.xz", ".tar.gz", ".tar.bz2", ".tar.zst", ".tgz", ".tar"];

/// The image name a file or URL gives by default: its last component
/// without a tar suffix; `None` if that is not a valid name.
pub fn default_name(url_or_path: &str) -> Option<String> {
    let base = fetch::file_name(url_or_path);
    let name = TAR_SUFFIXES
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    store::name_is_valid(name).then(|| name.to_string())
}

pub(crate) fn check_name(name: &str, o: Options) -> Result<()> {
    if !store::name_is_valid(name) {
        return Err(Error::invalid(format!("invalid image name '{name}'")));
    }
    if !o.force && store::exists(name) {
        return Err(Error::invalid(format!("Image '{name}' already exists.")));
    }
    Ok(())
}

fn cancelled() -> Error {
    cancel::error("transfer")
}

/// Where a new image goes: the pool (created), swept of dead transfers'
/// temporaries, and a new locked temporary directory in it.
pub(crate) fn prepare(name: &str) -> Result<(PathBuf, Temp)> {
    prepare_as(name, true)
}

/// As `prepare`, with a temporary directory (`dir`) or file.
fn prepare_as(name: &str, dir: bool) -> Result<(PathBuf, Temp)> {
    let pool = ops::create_pool()?;
    ops::sweep(&pool);
    let temp = Temp::new(&pool, name, dir)?;
    Ok((pool, temp))
}

/// Stream `src` into a confined unpacker writing `temp`; returns the
/// stream's SHA-256.
fn receive(
    src: Box<dyn Read>,
    total: Option<u64>,
    label: Option<&str>,
    temp: &Temp,
) -> Result<String> {
    receive_as(src, total, label, temp, unpack::Stream::Archive)
}

/// As `receive`, the stream being what `mode` says.
pub(crate) fn receive_as(
    src: Box<dyn Read>,
    total: Option<u64>,
    label: Option<&str>,
    temp: &Temp,
    mode: unpack::Stream,
) -> Result<String> {
    cancel::catch();
    let mut child = unpack::spawn(&temp.path, temp.lock.fd(), mode)?;
    let mut src = verify::Hashing::new(src);
    let mut progress = progress::Progress::new(label, total);
    let mut buf = vec![0u8; 1 << 16];
    let what = label.unwrap_or("the archive");
    let mut broken = false;
    loop {
        if cancel::requested() {
            return Err(cancelled());
        }
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::invalid(format!("cannot read {what}: {e}"))),
        };
        let out = child.input.as_mut().expect("input open until finish");
        if out.write_all(&buf[..n]).is_err() {
            // The unpacker stopped early: its error says why.
            broken = true;
            break;
        }
        progress.update(src.bytes);
    }
    progress.finish();
    child.finish()?;
    if src.bytes == 0 {
        return Err(Error::invalid(format!("cannot import {what}: it is empty")));
    }
    if broken {
        return Err(Error::invalid(format!(
            "cannot unpack {what}: the unpacker stopped early"
        )));
    }
    if cancel::requested() {
        return Err(cancelled());
    }
    Ok(src.hex())
}

/// The reference flattens a tree with no os-release and exactly one top
/// directory (an archive of `DIR` rather than of `DIR/.`).
fn flatten(root: &Path) -> Result<()> {
    let has = |p: &str| root.join(p).symlink_metadata().is_ok();
    if has("etc/os-release") || has("usr/lib/os-release") {
        return Ok(());
    }
    let entries: Vec<_> = std::fs::read_dir(root)
        .ctx(|| format!("cannot read {}", root.display()))?
        .flatten()
        .collect();
    let [only] = entries.as_slice() else {
        return Ok(());
    };
    if !only.file_type().is_ok_and(|t| t.is_dir()) {
        return Ok(());
    }
    // Out of the way first: the directory may hold an entry of its own name.
    let moved = root.join(".#flatten");
    ops::rename_noreplace(&only.path(), &moved)?;
    for e in std::fs::read_dir(&moved).ctx(|| format!("cannot read {}", moved.display()))? {
        let e = e.ctx(|| format!("cannot read {}", moved.display()))?;
        ops::rename_noreplace(&e.path(), &root.join(e.file_name()))?;
    }
    // Keep the top directory's owner and mode, which the tree is about.
    let m = std::fs::symlink_metadata(&moved).ctx(|| format!("cannot stat {}", moved.display()))?;
    std::fs::set_permissions(root, m.permissions())
        .ctx(|| format!("cannot chmod {}", root.display()))?;
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(root, Some(m.uid()), Some(m.gid()))
        .ctx(|| format!("cannot chown {}", root.display()))?;
    std::fs::remove_dir(&moved).ctx(|| format!("cannot remove {}", moved.display()))
}

/// Put the finished temporary in place as image `name`: an existing image
/// of that name is removed first (only with `--force`, checked before).
pub(crate) fn commit(
    pool: &Path,
    temp: Temp,
    name: &str,
    o: Options,
    settings: Option<&[u8]>,
) -> Result<PathBuf> {
    commit_as(pool, temp, name, Kind::Directory, o, settings)
}

/// As `commit`, for an image of type `kind`.
fn commit_as(
    pool: &Path,
    mut temp: Temp,
    name: &str,
    kind: Kind,
    o: Options,
    settings: Option<&[u8]>,
) -> Result<PathBuf> {
    if store::exists(name) {
        if !o.force {
            return Err(Error::invalid(format!("Image '{name}' already exists.")));
        }
        ops::remove(&store::find(name)?)?;
    }
    let to = ops::entry(pool, name, kind);
    ops::rename_noreplace(&temp.path, &to)?;
    temp.done = true;
    if let Some(s) = settings {
        let p = pool.join(format!("{name}.nspawn"));
        std::fs::write(&p, s).ctx(|| format!("cannot write {}", p.display()))?;
    }
    if o.read_only {
        let i = store::find(name)?;
        ops::apply_read_only(&i, true)?;
    }
    Ok(to)
}

/// `import-tar`: an archive read from `src` (a file or stdin).
pub fn import_tar(
    src: Box<dyn Read>,
    size: Option<u64>,
    name: &str,
    o: Options,
) -> Result<PathBuf> {
    check_name(name, o)?;
    let (pool, temp) = prepare(name)?;
    receive(src, size, None, &temp)?;
    flatten(&temp.path)?;
    commit(&pool, temp, name, o, None)
}

/// `import-fs`: a copy of a directory tree (`cp -a`, as clone).
pub fn import_fs(dir: &Path, name: &str, o: Options) -> Result<PathBuf> {
    check_name(name, o)?;
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "cannot import {}: not a directory",
            dir.display()
        )));
    }
    let (pool, temp) = prepare(name)?;
    ops::copy(dir, &temp, Kind::Directory)?;
    commit(&pool, temp, name, o, None)
}

/// `pull-tar`: download and unpack in one stream, verified as `p` says.
pub fn pull_tar(url: &str, name: &str, p: &Policy, o: Options) -> Result<PathBuf> {
    fetch::check_url(url).map_err(Error::invalid)?;
    check_name(name, o)?;
    let trust = Trust::fetch(url, p)?;
    let file = fetch::file_name(url).to_string();
    let base = TAR_SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .unwrap_or(&file);
    let settings = settings_for(url, base, &trust)?;
    let Some((src, total)) = fetch::open(url).map_err(Error::invalid)? else {
        return Err(Error::invalid(format!("cannot fetch {url}: not found")));
    };
    let (pool, temp) = prepare(name)?;
    let got = receive(src, total, Some(url), &temp)?;
    trust.check(&file, &got)?;
    flatten(&temp.path)?;
    commit(&pool, temp, name, o, settings.as_deref())
}

/// The `BASE.nspawn` settings file beside a pulled image, if the server
/// has one; with verification on, only if the sums vouch for it.
pub(super) fn settings_for(url: &str, base: &str, trust: &Trust) -> Result<Option<Vec<u8>>> {
    if !trust.side_files() {
        return Ok(None);
    }
    let settings_name = format!("{base}.nspawn");
    let settings = fetch::small(&fetch::sibling(url, &settings_name)).map_err(Error::invalid)?;
    if let Some(s) = &settings {
        trust.check(&settings_name, &verify::hex(s))?;
    }
    Ok(settings)
}

/// `export-tar`: the image as an archive compressed as `c` into `out`.
pub fn export_tar<W: Write>(i: &Image, out: W, c: Compression) -> Result<W> {
    if !i.kind.is_tree() {
        return Err(Error::invalid(format!(
            "cannot export image '{}': a {} image is not a directory tree",
            i.name,
            i.kind.as_str()
        )));
    }
    let enc = compress::Encoder::new(c, out).map_err(Error::invalid)?;
    let root = i
        .path
        .canonicalize()
        .ctx(|| format!("cannot resolve {}", i.path.display()))?;
    let enc = pack::pack(&root, enc).map_err(Error::invalid)?;
    enc.finish().ctx(|| "cannot finish the archive".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            default_name("http://x/a/deb-12.tar.gz").as_deref(),
            Some("deb-12")
        );
        assert_eq!(default_name("/srv/foo.tgz").as_deref(), Some("foo"));
        assert_eq!(default_name("foo.tar.zst").as_deref(), Some("foo"));
        assert_eq!(default_name("bar").as_deref(), Some("bar"));
        assert_eq!(default_name("http://x/a b.tar"), None);
    }
}
