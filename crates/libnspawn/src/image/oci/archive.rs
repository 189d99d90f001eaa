//! `import-oci`: an image saved locally, in one of the three forms
//! container tools write — an OCI image layout directory (`oci:DIR`), the
//! same as a tar (`oci-archive`), or Docker's `docker save` tar
//! (`docker-archive`: `manifest.json` naming a config file and
//! uncompressed layer tars by path). A tar is read once, front to back;
//! each file goes into the blob store under the digest it hashes to (a
//! `blobs/sha256/HEX` entry must hash to HEX), so nothing of the archive
//! is ever written under a name the archive chose. Then the image is
//! resolved and built as a pull's.

use super::blobs::Blobs;
use super::manifest::{self, Descriptor};
use super::{build, parse, read_bounded, resolve, Resolved};
use crate::error::{Error, Result};
use crate::image::transfer::{self, compress, Options};
use crate::image::{cancel, ops};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What a tar held besides blobs: its index or Docker manifest, and the
/// digest of every other file by its path.
#[derive(Default)]
struct Archived {
    index: Option<Vec<u8>>,
    docker: Option<Vec<u8>>,
    by_path: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    layers: Vec<String>,
}

pub fn import(path: &Path, name: &str, arch: Option<&str>, o: Options) -> Result<PathBuf> {
    transfer::check_name(name, o)?;
    let what = format!("cannot import {}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    let pool = ops::create_pool()?;
    let blobs = Blobs::open(&pool).map_err(Error::invalid)?;
    let arch = arch
        .map(str::to_string)
        .unwrap_or_else(|| manifest::host_arch().into());
    let source = path.canonicalize().unwrap_or(path.to_path_buf());
    let source = source.to_string_lossy();
    let img = if meta.is_dir() {
        layout(&blobs, path, &source, &arch)
    } else {
        cancel::catch();
        ingest(&blobs, path).and_then(|a| from_archive(&blobs, a, &source, &arch))
    }
    .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    build(&blobs, &img, name, o)
}

/// A layout directory: `index.json`, and blobs copied into the store as
/// they are needed (checked against their digests there).
fn layout(blobs: &Blobs, dir: &Path, source: &str, arch: &str) -> Result<Resolved, String> {
    let f = std::fs::File::open(dir.join("index.json"))
        .map_err(|e| format!("no index.json (not an OCI layout): {e}"))?;
    let index = read_bounded(f, "index.json")?;
    let mut fetch = |d: &Descriptor| -> Result<(), String> {
        if blobs.has(&d.digest) {
            return Ok(());
        }
        let hex = blobs.path(&d.digest)?;
        let hex = hex.file_name().unwrap_or_default();
        let p = dir.join("blobs/sha256").join(hex);
        let f = std::fs::File::open(&p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
        let size = (d.size > 0).then_some(d.size);
        blobs.put(&d.digest, f, size, &mut |_| {})
    };
    let img = oci(blobs, &index, source, arch, &mut fetch)?;
    fetch(&img.config)?;
    for l in &img.layers {
        fetch(l)?;
    }
    Ok(img)
}

/// An OCI `index.json`: its only entry, or the one for `arch`.
fn oci(
    blobs: &Blobs,
    index: &[u8],
    source: &str,
    arch: &str,
    fetch: &mut dyn FnMut(&Descriptor) -> Result<(), String>,
) -> Result<Resolved, String> {
    let top: manifest::Index = parse(index, "index.json")?;
    let mut doc = |d: &Descriptor| -> Result<super::Document, String> {
        fetch(d)?;
        let body = blobs.read_small(&d.digest)?;
        let t = manifest::media_type(Some(&d.media_type), &body);
        Ok((body, t, d.digest.clone()))
    };
    let first = match top.manifests.as_slice() {
        [only] => doc(only)?,
        _ => {
            let d = manifest::select(&top, arch)
                .ok_or_else(|| format!("no image for linux/{arch} in index.json"))?;
            doc(d)?
        }
    };
    let mut next = |digest: &str| {
        doc(&Descriptor {
            media_type: String::new(),
            digest: digest.to_string(),
            size: 0,
            platform: None,
        })
    };
    resolve(source, first, arch, &mut next)
}

/// Read a tar front to back into the store.
fn ingest(blobs: &Blobs, path: &Path) -> Result<Archived, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut ar = tar::Archive::new(compress::decoder(BufReader::with_capacity(1 << 16, f))?);
    let bad = |e: std::io::Error| format!("cannot read the archive: {e}");
    let mut out = Archived::default();
    for entry in ar.entries().map_err(bad)? {
        let e = entry.map_err(bad)?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let p = e.path().map_err(bad)?.to_string_lossy().into_owned();
        let p = p.trim_start_matches("./").to_string();
        match p.as_str() {
            "index.json" => out.index = Some(read_bounded(e, "index.json")?),
            "manifest.json" => out.docker = Some(read_bounded(e, "manifest.json")?),
            _ => match p.strip_prefix("blobs/sha256/") {
                Some(hex) => {
                    let digest = format!("sha256:{hex}");
                    let size = e.header().size().ok();
                    blobs.put(&digest, e, size, &mut |_| {})?;
                }
                None => {
                    let digest = blobs.put_any(e)?;
                    out.by_path.insert(p, digest);
                }
            },
        }
    }
    Ok(out)
}

fn from_archive(blobs: &Blobs, a: Archived, source: &str, arch: &str) -> Result<Resolved, String> {
    let mut present = |d: &Descriptor| -> Result<(), String> {
        match blobs.has(&d.digest) {
            true => Ok(()),
            false => Err(format!("blob {} is not in the archive", d.digest)),
        }
    };
    if let Some(index) = &a.index {
        let img = oci(blobs, index, source, arch, &mut present)?;
        present(&img.config)?;
        for l in &img.layers {
            present(l)?;
        }
        return Ok(img);
    }
    let Some(docker) = &a.docker else {
        return Err("neither index.json nor manifest.json in the archive".into());
    };
    let entries: Vec<DockerEntry> = parse(docker, "manifest.json")?;
    let [e] = entries.as_slice() else {
        return Err(format!(
            "manifest.json lists {} images, one is supported",
            entries.len()
        ));
    };
    let blob = |p: &str, t: &str| -> Result<Descriptor, String> {
        let digest = a
            .by_path
            .get(p.trim_start_matches("./"))
            .ok_or_else(|| format!("{p} named in manifest.json is not in the archive"))?;
        Ok(Descriptor {
            media_type: t.to_string(),
            digest: digest.clone(),
            size: 0,
            platform: None,
        })
    };
    let config = blob(&e.config, "application/vnd.docker.container.image.v1+json")?;
    let layers = e
        .layers
        .iter()
        .map(|l| blob(l, "application/vnd.docker.image.rootfs.diff.tar"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Resolved {
        source: source.to_string(),
        digest: config.digest.clone(),
        config,
        layers,
    })
}
