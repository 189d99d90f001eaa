//! The documents of an OCI image (image-spec v1.1; Docker's v2 schema 2
//! forms are the same shapes under other media types): an index (or
//! manifest list) of per-platform manifests, a manifest naming a config
//! and its layers, and what the config says about running the image.
//! Parsed with serde from bounded byte buffers; unknown fields ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a registry is asked for, in the `Accept` header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest, index or config we read (containerd's limit for
/// manifests is 4 MiB too): a registry cannot make us hold more.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// Layer media types we unpack; the decompressor is chosen by the magic
/// bytes, so each of these only has to be a (compressed) tar.
const LAYERS: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The parts of the image config that say how to run it.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

pub fn check_layer(d: &Descriptor) -> Result<(), String> {
    if LAYERS.contains(&d.media_type.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "layer {} has an unsupported media type '{}'",
            d.digest, d.media_type
        ))
    }
}

/// A document's media type: the server's `Content-Type`, or else the
/// `mediaType` field it carries (OCI makes it optional in the header).
pub fn media_type(header: Option<&str>, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let header = header.map(|h| h.split(';').next().unwrap_or(h).trim());
    if let Some(h) = header.filter(|h| is_index(h) || is_manifest(h)) {
        return h.to_string();
    }
    // A specific type the server names (Docker's schema 1, say) is kept,
    // to be refused by name; generic ones say nothing.
    let named = header.filter(|h| {
        !h.is_empty()
            && !matches!(
                *h,
                "application/json" | "application/octet-stream" | "text/plain"
            )
    });
    match (serde_json::from_slice::<Typed>(body), named) {
        (Ok(t), _) if !t.media_type.is_empty() => t.media_type,
        (_, Some(h)) => h.to_string(),
        (Ok(t), None) if t.manifests.is_some() => OCI_INDEX.into(),
        (Ok(_), None) => OCI_MANIFEST.into(),
        (Err(_), None) => String::new(),
    }
}

/// This machine's architecture as OCI names it (the Go names).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The manifest an index gives for `arch` on Linux (`arch` may carry a
/// variant, `arm/v7`); the first match, as the image-spec says.
pub fn select<'a>(index: &'a Index, arch: &str) -> Option<&'a Descriptor> {
    let (arch, variant) = match arch.split_once('/') {
        Some((a, v)) => (a, Some(v)),
        None => (arch, None),
    };
    index.manifests.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == "linux"
                && p.architecture == arch
                && (variant.is_none() || p.variant.as_deref() == variant)
        }) && is_manifest_or_untyped(&d.media_type)
    })
}

fn is_manifest_or_untyped(t: &str) -> bool {
    t.is_empty() || is_manifest(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_selection() {
        let j = br#"{"schemaVersion":2,"manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,
           "platform":{"architecture":"arm","os":"linux","variant":"v6"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,
           "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:c","size":1,
           "platform":{"architecture":"amd64","os":"linux"}}]}"#;
        assert_eq!(media_type(None, j), OCI_INDEX);
        let v1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
        assert_eq!(media_type(Some(v1), br#"{"schemaVersion":1}"#), v1);
        assert_eq!(media_type(Some("application/json"), b"{}"), OCI_MANIFEST);
        let i: Index = serde_json::from_slice(j).unwrap();
        assert_eq!(select(&i, "amd64").unwrap().digest, "sha256:c");
        assert_eq!(select(&i, "arm/v7").unwrap().digest, "sha256:b");
        assert_eq!(select(&i, "arm").unwrap().digest, "sha256:a");
        assert!(select(&i, "s390x").is_none());
    }

    #[test]
    fn layers() {
        let d = |t: &str| Descriptor {
            media_type: t.into(),
            digest: "sha256:x".into(),
            size: 0,
            platform: None,
        };
        assert!(check_layer(&d("application/vnd.oci.image.layer.v1.tar+zstd")).is_ok());
        let e = check_layer(&d(
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
        ))
        .unwrap_err();
        assert!(e.contains("unsupported media type"), "{e}");
    }
}
