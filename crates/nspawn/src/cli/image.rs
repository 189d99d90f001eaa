//! Disk image options: `-i` and what verifies the image.

use clap::Args;
use libnspawn::disk::{verity, ImageSpec};
use std::path::PathBuf;

#[derive(Args, Debug, Default)]
pub struct ImageArgs {
    /// Root file system disk image (or block device) for the container
    #[arg(short = 'i', long, value_name = "PATH", help_heading = "Image")]
    pub image: Option<PathBuf>,

    /// Root hash of the image's dm-verity data, in hex
    #[arg(long = "root-hash", value_name = "HASH", value_parser = parse_root_hash, help_heading = "Image")]
    root_hash: Option<String>,

    /// PKCS#7 signature of the root hash (base64:DATA or a path)
    #[arg(long = "root-hash-sig", value_name = "SIG", value_parser = parse_root_hash_sig, help_heading = "Image")]
    root_hash_sig: Option<String>,

    /// The image's dm-verity data, in a file of its own
    #[arg(long = "verity-data", value_name = "PATH", help_heading = "Image")]
    verity_data: Option<PathBuf>,
}

fn parse_root_hash(s: &str) -> Result<String, String> {
    verity::parse_root_hash(s).map(|_| s.to_string())
}

/// As the reference, a path is read when the option is parsed, so a
/// missing or unreadable file is refused before anything starts.
fn parse_root_hash_sig(s: &str) -> Result<String, String> {
    if s.strip_prefix("base64:").is_none() {
        std::fs::metadata(s)
            .and_then(|m| match m.is_file() {
                true => std::fs::File::open(s).map(drop),
                false => Err(std::io::Error::from_raw_os_error(libc::EISDIR)),
            })
            .map_err(|e| {
                format!(
                    "Failed parse root hash signature file '{s}': {}",
                    super::lower(&e)
                )
            })?;
    }
    Ok(s.to_string())
}

impl ImageArgs {
    /// The image to run (`path`: absolute, resolved) with its options.
    pub fn spec(&self, path: PathBuf) -> ImageSpec {
        ImageSpec {
            path,
            root_hash: self.root_hash.clone(),
            root_hash_sig: self.root_hash_sig.clone(),
            verity_data: self.verity_data.clone(),
        }
    }
}
