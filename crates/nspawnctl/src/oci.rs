//! `pull-oci` and `import-oci`: OCI images from a registry or a saved
//! layout/archive become images (libnspawn::image::oci does the work;
//! this is arguments and messages).

use crate::transfers::{done, Common};
use clap::Args;
use libnspawn::image::oci::{self, auth, reference::Reference, PullOptions};
use std::path::Path;

#[derive(Args)]
pub struct PullOciArgs {
    /// HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]
    #[arg(value_name = "REF")]
    reference: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// The architecture to pick from an image index (ARCH or ARCH/VARIANT,
    /// as OCI names them; default: this machine's)
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// USER:PASSWORD for the registry (default: from auth.json)
    #[arg(long, value_name = "USER:PASSWORD", value_parser = auth::parse_creds)]
    creds: Option<auth::Creds>,
    /// Use plain http with this registry (the default for a loopback one)
    #[arg(long, conflicts_with = "tls_verify")]
    insecure: bool,
    /// no: plain http, as --insecure; yes: https with the certificate
    /// verified, also for a loopback registry
    #[arg(long = "tls-verify", value_name = "BOOL", value_parser = parse_bool)]
    tls_verify: Option<bool>,
    #[command(flatten)]
    common: Common,
}

fn parse_bool(s: &str) -> Result<bool, String> {
    libnspawn::unitfile::parse_boolean(s).ok_or_else(|| format!("invalid boolean '{s}'"))
}

pub fn pull_oci(a: PullOciArgs) -> Result<i32, String> {
    let r = Reference::parse(&a.reference)?;
    let name = match a.name {
        Some(n) => n,
        None => r.default_name().ok_or_else(|| {
            format!(
                "cannot derive an image name from '{}', please give one",
                a.reference
            )
        })?,
    };
    let o = PullOptions {
        arch: a.arch,
        tls: match a.insecure {
            true => Some(false),
            false => a.tls_verify,
        },
        creds: a.creds,
        common: a.common.options(),
    };
    oci::pull(&a.reference, &name, &o).map_err(|e| e.to_string())?;
    done(&name)
}

#[derive(Args)]
pub struct ImportOciArgs {
    /// An OCI layout directory, an oci-archive or a docker-archive tar
    #[arg(value_name = "PATH")]
    path: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// The architecture to pick from an image index
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub fn import_oci(a: ImportOciArgs) -> Result<i32, String> {
    let trimmed = a.path.trim_end_matches('/');
    let name = crate::transfers::name_for(a.name, trimmed, |p| {
        let base = p.rsplit('/').next().unwrap_or(p);
        let base = base.strip_suffix(".tar").unwrap_or(base);
        libnspawn::image::store::name_is_valid(base).then(|| base.to_string())
    })?;
    oci::archive::import(
        Path::new(&a.path),
        &name,
        a.arch.as_deref(),
        a.common.options(),
    )
    .map_err(|e| e.to_string())?;
    done(&name)
}
