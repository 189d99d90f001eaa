//! `import-tar`, `import-fs`, `export-tar`, `pull-tar`: images in and out
//! (their raw counterparts in `raw`, with the options shared from here).
//! The streaming, confinement and verification are
//! libnspawn::image::transfer; this is arguments and messages.

use crate::output;
use clap::Args;
use libnspawn::image::store;
use libnspawn::image::transfer::{self, compress::Compression, trust::Policy, Options, Verify};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct Common {
    /// Replace an existing image of the same name
    #[arg(long)]
    force: bool,
    /// Make the new image read-only
    #[arg(long = "read-only")]
    read_only: bool,
}

impl Common {
    pub(crate) fn options(&self) -> Options {
        Options {
            force: self.force,
            read_only: self.read_only,
        }
    }
}

/// The image name given, or the one the file or URL implies (`implied`:
/// the tar or the raw rule).
pub(crate) fn name_for(
    given: Option<String>,
    source: &str,
    implied: fn(&str) -> Option<String>,
) -> Result<String, String> {
    match given {
        Some(n) => Ok(n),
        None => implied(source)
            .ok_or_else(|| format!("cannot derive an image name from '{source}', please give one")),
    }
}

pub(crate) fn done(name: &str) -> Result<i32, String> {
    eprintln!("Imported image '{name}'.");
    Ok(0)
}

#[derive(Args)]
pub struct ImportTarArgs {
    /// The archive, or - for stdin
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub fn import_tar(a: ImportTarArgs) -> Result<i32, String> {
    let (src, size, name): (Box<dyn Read>, _, _) = match a.file.as_str() {
        "-" => {
            let name = a
                .name
                .ok_or("an image name is needed to import from stdin")?;
            (Box::new(std::io::stdin()), None, name)
        }
        f => {
            let name = name_for(a.name, f, transfer::default_name)?;
            let file = std::fs::File::open(f).map_err(|e| format!("cannot open {f}: {e}"))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size, name)
        }
    };
    transfer::import_tar(src, size, &name, a.common.options()).map_err(|e| e.to_string())?;
    done(&name)
}

#[derive(Args)]
pub struct ImportFsArgs {
    #[arg(value_name = "DIRECTORY")]
    dir: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub fn import_fs(a: ImportFsArgs) -> Result<i32, String> {
    let trimmed = a.dir.trim_end_matches('/');
    let name = name_for(a.name, trimmed, transfer::default_name)?;
    transfer::import_fs(Path::new(&a.dir), &name, a.common.options()).map_err(|e| e.to_string())?;
    done(&name)
}

/// How a pull is verified, for pull-tar and pull-raw.
#[derive(Args)]
pub struct VerifyArgs {
    /// no, checksum, signature, or the file's SHA-256 in hex
    #[arg(long, value_name = "MODE", default_value = "signature", value_parser = parse_verify)]
    verify: Verify,
    /// The OpenPGP keyring signatures are checked against (default: the
    /// reference's import-pubring in /etc/systemd, else /usr/lib/systemd)
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
}

impl VerifyArgs {
    pub fn policy(self) -> Policy {
        Policy {
            mode: self.verify,
            keyring: self.keyring,
        }
    }
}

#[derive(Args)]
pub struct PullTarArgs {
    #[arg(value_name = "URL")]
    url: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    verify: VerifyArgs,
    #[command(flatten)]
    common: Common,
}

fn parse_verify(s: &str) -> Result<Verify, String> {
    Verify::parse(s).ok_or_else(|| {
        format!("invalid verification mode '{s}' (no, checksum, signature or a SHA-256 in hex)")
    })
}

pub fn pull_tar(a: PullTarArgs) -> Result<i32, String> {
    let name = name_for(a.name, &a.url, transfer::default_name)?;
    transfer::pull_tar(&a.url, &name, &a.verify.policy(), a.common.options())
        .map_err(|e| e.to_string())?;
    done(&name)
}

#[derive(Args)]
pub struct ExportTarArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// The archive to write, or - (the default) for stdout
    #[arg(value_name = "FILE")]
    file: Option<String>,
    /// uncompressed, xz, gzip, bzip2, zstd (default: from the file's suffix)
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<Compression>,
}

pub(crate) fn parse_format(s: &str) -> Result<Compression, String> {
    Compression::parse(s).ok_or_else(|| format!("invalid format '{s}'"))
}

pub fn export_tar(a: ExportTarArgs) -> Result<i32, String> {
    let i = store::find(&a.name).map_err(|e| e.to_string())?;
    let c = format_for(a.format, a.file.as_deref());
    let out = output::open(a.file.as_deref())?;
    let w = std::io::BufWriter::new(out.file()?);
    let mut w = transfer::export_tar(&i, w, c).map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut w).map_err(|e| format!("cannot write the export: {e}"))?;
    out.commit()?;
    Ok(0)
}

/// `--format=`, else the compression the output file's suffix names.
pub(crate) fn format_for(given: Option<Compression>, file: Option<&str>) -> Compression {
    given.unwrap_or_else(|| {
        file.filter(|f| *f != "-")
            .map(Compression::from_file_name)
            .unwrap_or(Compression::Uncompressed)
    })
}
