//! Checksums of downloads, as the reference's `--verify=checksum`: the
//! expected SHA-256 comes from `FILE.sha256` or the `SHA256SUMS` beside
//! the file; the actual one is computed on the stream as it goes by.

use sha2::{Digest, Sha256};
use std::io::Read;

/// The hash `SHA256SUMS` (lines `<hex> *<file>` or `<hex>  <file>`, as
/// sha256sum writes them in binary or text mode) gives for `file`.
pub fn lookup(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (hash, rest) = l.split_once(' ')?;
        let name = rest.strip_prefix('*').or_else(|| rest.strip_prefix(' '))?;
        (name == file && is_sha256(hash)).then(|| hash.to_ascii_lowercase())
    })
}

/// A `FILE.sha256`: the hash alone, or one sha256sum line.
pub fn single(text: &str) -> Option<String> {
    let hash = text.split_whitespace().next()?;
    is_sha256(hash).then(|| hash.to_ascii_lowercase())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn hex(data: &[u8]) -> String {
    hex_of(Sha256::digest(data).as_slice())
}

fn hex_of(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes and counts what passes through it.
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    pub bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn hex(self) -> String {
        hex_of(self.hash.finalize().as_slice())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub fn invalid(file: &str) -> String {
    format!(
        "DOWNLOAD INVALID: Checksum of {file} file did not check out, file has been tampered with."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums() {
        let h = "a".repeat(64);
        let text = format!("{h} *x.tar.gz\n{}  y.tar\n", "B".repeat(64));
        assert_eq!(lookup(&text, "x.tar.gz"), Some(h.clone()));
        assert_eq!(lookup(&text, "y.tar"), Some("b".repeat(64)));
        assert_eq!(lookup(&text, "z.tar"), None);
        assert_eq!(lookup("zz *x.tar.gz", "x.tar.gz"), None);
        assert_eq!(single(&format!("{h}  x\n")), Some(h));
        assert_eq!(
            hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
