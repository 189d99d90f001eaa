//! Compression of archives: detected from the first bytes on input (as
//! the reference's import-compress.c), chosen from the file name or
//! `--format=` on output. Pure-Rust codecs only, so the build needs no C
//! library: flate2 (miniz_oxide), bzip2 (libbz2-rs-sys), ruzstd, lzma-rs.

use std::io::{BufRead, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// The magic numbers of each format, from their specifications.
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Compression::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::Uncompressed,
        }
    }

    /// From an export file's name; anything else is an uncompressed tar.
    pub fn from_file_name(name: &str) -> Compression {
        if name.ends_with(".gz") || name.ends_with(".tgz") {
            Compression::Gzip
        } else if name.ends_with(".bz2") {
            Compression::Bzip2
        } else if name.ends_with(".xz") {
            Compression::Xz
        } else if name.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::Uncompressed
        }
    }

    /// `--format=` values, as the reference's.
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s {
            "uncompressed" => Compression::Uncompressed,
            "gzip" => Compression::Gzip,
            "bzip2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Uncompressed => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// A reader of the decompressed stream of `r`, whose format is told by its
/// first bytes.
pub fn decoder<R: BufRead + Send + 'static>(mut r: R) -> Result<Box<dyn Read>, String> {
    let head = r
        .fill_buf()
        .map_err(|e| format!("cannot read the archive: {e}"))?;
    Ok(match Compression::detect(head) {
        Compression::Uncompressed => Box::new(r),
        // Multi-member readers: `cat a.gz b.gz` is one valid stream.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(r)
                .map_err(|e| format!("cannot read the zstd archive: {e}"))?,
        ),
        Compression::Xz => Box::new(XzReader::new(r)?),
    })
}

/// lzma-rs decodes xz only from a reader into a writer; a thread runs it
/// into a pipe, and its error, if any, ends the stream instead of a
/// silent EOF that would look like a truncated archive.
struct XzReader {
    pipe: std::io::PipeReader,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl XzReader {
    fn new<R: BufRead + Send + 'static>(mut r: R) -> Result<XzReader, String> {
        let (pipe, mut w) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let thread = std::thread::spawn(move || {
            lzma_rs::xz_decompress(&mut r, &mut w)
                .map_err(|e| format!("cannot read the xz archive: {e}"))
        });
        Ok(XzReader {
            pipe,
            thread: Some(thread),
        })
    }
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 {
            if let Some(t) = self.thread.take() {
                match t.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(std::io::Error::other(e)),
                    Err(_) => return Err(std::io::Error::other("the xz decoder crashed")),
                }
            }
        }
        Ok(n)
    }
}

/// A writer that compresses into `w`; `finish` must be called at the end.
pub enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(c: Compression, w: W) -> Result<Encoder<W>, String> {
        Ok(match c {
            Compression::Uncompressed => Encoder::Plain(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                w,
                bzip2::Compression::default(),
            )),
            Compression::Xz | Compression::Zstd => {
                return Err(format!(
                    "{} compression is not supported yet for export",
                    c.as_str()
                ))
            }
        })
    }

    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Plain(mut w) => w.flush().map(|()| w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(b),
            Encoder::Gzip(e) => e.write(b),
            Encoder::Bzip2(e) => e.write(b),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Bzip2(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"\xfd7zXZ\0"), Compression::Xz);
        assert_eq!(Compression::detect(b"\x28\xb5\x2f\xfd"), Compression::Zstd);
        assert_eq!(Compression::detect(b"./\0\0"), Compression::Uncompressed);
        assert_eq!(Compression::from_file_name("a.tgz"), Compression::Gzip);
        assert_eq!(
            Compression::from_file_name("a.tar"),
            Compression::Uncompressed
        );
    }
}
