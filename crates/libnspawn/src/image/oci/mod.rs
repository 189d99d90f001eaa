//! OCI images into the image store: `pull-oci` from a registry
//! (`registry`, `auth`), `import-oci` of a layout directory or an
//! `oci-archive`/`docker-archive` tar (`archive`). Both end the same way
//! (`build`): the image's manifest resolved for this architecture
//! (`manifest`), every blob in the pool's content-addressed store
//! (`blobs`), checked against its digest as it streams; then the layers,
//! in order, unpacked by the confined unpacker of `transfer` into one
//! locked temporary with the whiteout rules, the config written as
//! `NAME.nspawn` (`settings`) and the image's source, digest and layers as
//! `NAME.oci.json`, both side files of the image.

pub mod archive;
pub mod auth;
mod blobs;
pub mod manifest;
pub mod reference;
mod registry;
mod settings;
mod trees;

use super::store::{self, Image};
use super::transfer::{self, unpack::Stream, Options};
use super::{cancel, ops};
use crate::error::{Context, Error, Result};
use blobs::Blobs;
use manifest::{Config, Descriptor, Index, Manifest, MAX_DOCUMENT};
use reference::Reference;
use registry::{Client, Failure};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The metadata file beside an image: `NAME.oci.json`.
pub const META_SUFFIX: &str = ".oci.json";

/// Parallel downloads of one pull.
const WORKERS: usize = 4;

pub struct PullOptions {
    /// `ARCH` or `ARCH/VARIANT` as OCI names them; this machine's if unset.
    pub arch: Option<String>,
    /// `Some(false)`: plain http, for a registry without TLS;
    /// `Some(true)`: https even on loopback; `None`: https, except for a
    /// loopback registry.
    pub tls: Option<bool>,
    pub creds: Option<auth::Creds>,
    pub common: Options,
}

/// Read at most MAX_DOCUMENT bytes of `r`; more is refused.
pub(crate) fn read_bounded(r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = vec![];
    r.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if buf.len() as u64 > MAX_DOCUMENT {
        return Err(format!(
            "{what} is larger than {MAX_DOCUMENT} bytes, refused"
        ));
    }
    Ok(buf)
}

/// An image once its manifest is known: where it came from, the manifest's
/// digest, the config's descriptor and the layers, lowest first.
pub(crate) struct Resolved {
    pub source: String,
    pub digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest or index as fetched: its bytes, media type and digest.
pub(crate) type Document = (Vec<u8>, String, String);

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid {what}: {e}"))
}

/// The manifest `body` of type `t`, or the one an index gives for `arch`
/// (fetched with `next`, which returns bytes, type and digest).
pub(crate) fn resolve(
    source: &str,
    (body, t, digest): Document,
    arch: &str,
    next: &mut dyn FnMut(&str) -> Result<Document, String>,
) -> Result<Resolved, String> {
    let (body, t, digest) = if manifest::is_index(&t) {
        let index: Index = parse(&body, "image index")?;
        let Some(d) = manifest::select(&index, arch) else {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            return Err(format!(
                "no image for linux/{arch} in the index (it has: {})",
                have.join(", ")
            ));
        };
        let got = next(&d.digest)?;
        if got.2 != d.digest {
            return Err(format!(
                "the manifest does not match its digest {} (got {})",
                d.digest, got.2
            ));
        }
        got
    } else {
        (body, t, digest)
    };
    if !manifest::is_manifest(&t) {
        return Err(format!("unsupported media type '{t}'"));
    }
    let m: Manifest = parse(&body, "image manifest")?;
    for l in &m.layers {
        manifest::check_layer(l)?;
    }
    Ok(Resolved {
        source: source.to_string(),
        digest,
        config: m.config,
        layers: m.layers,
    })
}

/// `pull-oci REF NAME`.
pub fn pull(reference: &str, name: &str, o: &PullOptions) -> Result<PathBuf> {
    let r = Reference::parse(reference).map_err(Error::invalid)?;
    transfer::check_name(name, o.common)?;
    let mut c = Client::new(&r, o.tls, o.creds.clone());
    let arch = o
        .arch
        .clone()
        .unwrap_or_else(|| manifest::host_arch().into());
    let what = format!("cannot pull {r}");
    let fail = |f: Failure| Error::invalid(f.message(&what));
    let top = c.manifest(r.manifest_ref()).map_err(|f| match f {
        Failure::NotFound => Error::invalid(format!("{what}: no such image or tag (HTTP 404)")),
        f => fail(f),
    })?;
    let mut next = |d: &str| {
        c.clone()
            .manifest(d)
            .map_err(|f| f.message(&format!("manifest {d}")))
    };
    let img = resolve(&r.to_string(), top, &arch, &mut next)
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    let pool = ops::create_pool()?;
    let blobs = Blobs::open(&pool).map_err(Error::invalid)?;
    let mut wanted = vec![img.config.clone()];
    wanted.extend(img.layers.iter().cloned());
    download(&c, &blobs, &wanted, &r.to_string())
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    build(&blobs, &img, name, o.common)
}

/// Fetch the blobs of `wanted` the store lacks, `WORKERS` at a time, with
/// one progress line for all of them.
fn download(c: &Client, blobs: &Blobs, wanted: &[Descriptor], label: &str) -> Result<(), String> {
    let mut todo: Vec<&Descriptor> = vec![];
    for d in wanted {
        if !blobs.has(&d.digest) && !todo.iter().any(|t| t.digest == d.digest) {
            todo.push(d);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    cancel::catch();
    let total: u64 = todo.iter().map(|d| d.size).sum();
    let done: Vec<AtomicU64> = todo.iter().map(|_| AtomicU64::new(0)).collect();
    let (next, failed, running) = (
        AtomicUsize::new(0),
        AtomicBool::new(false),
        AtomicUsize::new(0),
    );
    let mut progress = transfer::progress::Progress::new(Some(label), Some(total));
    let work = || -> Result<(), String> {
        let mut c = c.clone();
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= todo.len() || failed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let d = todo[i];
            let r = c
                .blob(&d.digest)
                .map_err(|f| f.message(&format!("cannot fetch blob {}", d.digest)))
                .and_then(|(r, _)| {
                    let size = (d.size > 0).then_some(d.size);
                    blobs.put(&d.digest, r, size, &mut |n| {
                        done[i].store(n, Ordering::Relaxed)
                    })
                });
            if r.is_err() {
                failed.store(true, Ordering::SeqCst);
                return r;
            }
        }
    };
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let n = todo.len().min(WORKERS);
        running.store(n, Ordering::SeqCst);
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    // Counted down however the thread ends, a panic too,
                    // so the progress loop below always ends.
                    struct Done<'a>(&'a AtomicUsize);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _done = Done(&running);
                    work()
                })
            })
            .collect();
        while running.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            progress.update(done.iter().map(|d| d.load(Ordering::Relaxed)).sum());
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a download thread panicked".into()))
            })
            .collect()
    });
    progress.finish();
    if cancel::requested() {
        return Err("transfer cancelled".into());
    }
    // The first real error, not a "cancelled" of a worker stopped by it.
    results.into_iter().collect()
}

/// The image from blobs all in the store: layers applied in order into
/// a locked temporary, renamed into place with its two side files.
pub(crate) fn build(blobs: &Blobs, img: &Resolved, name: &str, o: Options) -> Result<PathBuf> {
    let config_bytes = blobs
        .read_small(&img.config.digest)
        .map_err(Error::invalid)?;
    let config: Config = parse(&config_bytes, "image config").map_err(Error::invalid)?;
    let run = config.config.unwrap_or_default();
    let chains = trees::of(&img.layers);
    let (pool, temp, from) = start(name, &chains)?;
    let share = temp.kind == super::Kind::Subvolume;
    let n = img.layers.len();
    for (i, l) in img.layers.iter().enumerate().skip(from) {
        let p = blobs.path(&l.digest).map_err(Error::invalid)?;
        let f = std::fs::File::open(&p).ctx(|| format!("cannot open {}", p.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        let label = format!("layer {}/{n} ({})", i + 1, short(&l.digest));
        let got = transfer::receive_as(Box::new(f), size, Some(&label), &temp, Stream::Layer)?;
        // The store's files were checked as they came in; checked again,
        // so a blob changed on disk since is never applied.
        if format!("sha256:{got}") != l.digest {
            return Err(Error::invalid(format!(
                "blob {} does not match its digest (got sha256:{got})",
                l.digest
            )));
        }
        if share {
            trees::keep(&pool, &temp.path, &chains[i]).map_err(Error::invalid)?;
        }
    }
    let nspawn = settings::nspawn_file(&img.source, &img.digest, &run);
    let meta = serde_json::json!({
        "source": img.source,
        "digest": img.digest,
        "config": img.config.digest,
        "layers": img.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
        "architecture": config.architecture,
        "exposedPorts": run.exposed_ports.iter().flat_map(|p| p.keys()).collect::<Vec<_>>(),
        "labels": run.labels.unwrap_or_default(),
    });
    let to = transfer::commit(&pool, temp, name, o, Some(nspawn.as_bytes()))?;
    let meta_path = pool.join(format!("{name}{META_SUFFIX}"));
    let written = serde_json::to_vec_pretty(&meta)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&meta_path, b));
    if let Err(e) = written {
        // Not an image without its metadata: its layers could be collected.
        let _ = store::find(name).and_then(|i| ops::remove(&i));
        return Err(e).ctx(|| format!("cannot write {}", meta_path.display()));
    }
    Ok(to)
}

/// The new image's temporary: on a btrfs pool a snapshot of the kept
/// tree of its longest known prefix of layers (`trees`), else empty; and
/// how many layers it already holds.
fn start(name: &str, chains: &[String]) -> Result<(PathBuf, ops::Temp, usize)> {
    let pool = ops::create_pool()?;
    if trees::enabled(&pool) {
        if let Some((k, tree)) = trees::longest(&pool, chains) {
            ops::sweep(&pool);
            if let Some(temp) = ops::Temp::snapshot(&pool, name, &tree)? {
                return Ok((pool, temp, k));
            }
        }
    }
    let (pool, temp) = transfer::prepare(name)?;
    Ok((pool, temp, 0))
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// The metadata kept beside an OCI image, if it is one.
pub fn metadata(i: &Image) -> Option<serde_json::Value> {
    let p = i.pool.join(format!("{}{META_SUFFIX}", i.name));
    let f = std::fs::File::open(p).ok()?;
    serde_json::from_slice(&read_bounded(f, "metadata").ok()?).ok()
}

/// `clean`'s part: remove from each pool's blob store what no image's
/// metadata names. Returns blobs and bytes removed; a pool whose store a
/// pull holds is skipped (its blobs may be for an image not yet there).
pub fn collect_unused() -> Result<(usize, u64)> {
    let (mut n, mut bytes) = (0, 0);
    for pool in store::search_path() {
        let Some(store) = Blobs::exclusive(&pool).map_err(Error::invalid)? else {
            continue;
        };
        let (blobs, chains) = referenced(&pool);
        let (a, b) = store.collect(&blobs).map_err(Error::invalid)?;
        trees::collect(&pool, &chains).map_err(Error::invalid)?;
        n += a;
        bytes += b;
    }
    Ok((n, bytes))
}

/// What the images of `pool` use: blobs, and the chains of their layers.
fn referenced(pool: &Path) -> (HashSet<String>, HashSet<String>) {
    let mut keep = HashSet::new();
    let mut chains = HashSet::new();
    for e in std::fs::read_dir(pool).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(META_SUFFIX) {
            continue;
        }
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        let Some(v) = read_bounded(f, "metadata")
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let strs = |k: &str| -> Vec<String> {
            match v.get(k) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                _ => vec![],
            }
        };
        keep.extend(strs("config"));
        let layers = strs("layers");
        chains.extend(trees::chains(layers.iter().map(String::as_str)));
        keep.extend(layers);
    }
    (keep, chains)
}
