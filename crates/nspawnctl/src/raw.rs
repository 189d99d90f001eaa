//! `import-raw`, `pull-raw`, `export-raw`: disk images in and out. The
//! work is libnspawn::image::transfer::raw; this is arguments and
//! messages, with the options `transfers` defines for the tar verbs.

use crate::output;
use crate::transfers::{done, format_for, name_for, parse_format, Common, VerifyArgs};
use clap::Args;
use libnspawn::image::store;
use libnspawn::image::transfer::{compress::Compression, raw};
use std::io::Read;

#[derive(Args)]
pub struct ImportRawArgs {
    /// The disk image (raw or QCOW2, maybe compressed), or - for stdin
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub fn import_raw(a: ImportRawArgs) -> Result<i32, String> {
    let (src, size, name): (Box<dyn Read>, _, _) = match a.file.as_str() {
        "-" => {
            let name = a
                .name
                .ok_or("an image name is needed to import from stdin")?;
            (Box::new(std::io::stdin()), None, name)
        }
        f => {
            let name = name_for(a.name, f, raw::default_name)?;
            let file = std::fs::File::open(f).map_err(|e| format!("cannot open {f}: {e}"))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size, name)
        }
    };
    let what = match a.file.as_str() {
        "-" => "stdin",
        f => f,
    };
    raw::import_raw(src, size, what, &name, a.common.options()).map_err(|e| e.to_string())?;
    done(&name)
}

#[derive(Args)]
pub struct PullRawArgs {
    #[arg(value_name = "URL")]
    url: String,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    verify: VerifyArgs,
    #[command(flatten)]
    common: Common,
}

pub fn pull_raw(a: PullRawArgs) -> Result<i32, String> {
    let name = name_for(a.name, &a.url, raw::default_name)?;
    raw::pull_raw(&a.url, &name, &a.verify.policy(), a.common.options())
        .map_err(|e| e.to_string())?;
    done(&name)
}

#[derive(Args)]
pub struct ExportRawArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// The file to write, or - (the default) for stdout
    #[arg(value_name = "FILE")]
    file: Option<String>,
    /// uncompressed, xz, gzip, bzip2, zstd (default: from the file's suffix)
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<Compression>,
}

pub fn export_raw(a: ExportRawArgs) -> Result<i32, String> {
    let i = store::find(&a.name).map_err(|e| e.to_string())?;
    let c = format_for(a.format, a.file.as_deref());
    let out = output::open(a.file.as_deref())?;
    raw::export_raw(&i, out.file()?, c).map_err(|e| e.to_string())?;
    out.commit()?;
    Ok(0)
}
