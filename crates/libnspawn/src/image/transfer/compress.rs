//! Compression of archives: detected from the first bytes on input (as
//! the reference's import-compress.c), chosen from the file name or
//! `--format=` on output. gzip and bzip2 through pure-Rust codecs (flate2
//! with zlib-rs, bzip2 with libbz2-rs-sys); xz and zstd through the
//! projects' own C libraries (liblzma, libzstd), built from the crates'
//! bundled sources and linked statically, for their speed and encoders.

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

/// The format of the stream `r` (told by its first bytes) and a reader of
/// its decompressed content. The first bytes are read whole (a first read
/// of a socket may return fewer) and put back in front.
pub fn open<'a, R: BufRead + 'a>(mut r: R) -> std::io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let c = Compression::detect(&head[..got]);
    let r = std::io::Cursor::new(head[..got].to_vec()).chain(r);
    Ok((c, decode(c, r)?))
}

fn decode<'a, R: BufRead + 'a>(c: Compression, r: R) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::Uncompressed => Box::new(r),
        // Multi-member readers: `cat a.gz b.gz` is one valid stream, and so
        // are concatenated xz streams (as xz(1) and the reference decode
        // them) and zstd frames.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Compression::Xz => {
            let s = liblzma::stream::Stream::new_stream_decoder(
                u64::MAX,
                liblzma::stream::CONCATENATED,
            )?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(r, s))
        }
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// A reader of the decompressed stream of `r`, whose format is told by its
/// first bytes.
pub fn decoder<'a, R: BufRead + 'a>(r: R) -> Result<Box<dyn Read + 'a>, String> {
    open(r)
        .map(|(_, d)| d)
        .map_err(|e| format!("cannot read the archive: {e}"))
}

/// A writer that compresses into `w` with the reference's settings (xz
/// preset 6 with CRC64, gzip and zstd at their default levels, zstd with
/// its checksum, bzip2 at 9); `finish` must be called at the end.
pub enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(c: Compression, w: W) -> Result<Encoder<W>, String> {
        Ok(match c {
            Compression::Uncompressed => Encoder::Plain(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Bzip2 => {
                Encoder::Bzip2(bzip2::write::BzEncoder::new(w, bzip2::Compression::best()))
            }
            Compression::Xz => Encoder::Xz(liblzma::write::XzEncoder::new(w, 6)),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, zstd::DEFAULT_COMPRESSION_LEVEL)
                    .map_err(|e| format!("cannot start zstd compression: {e}"))?;
                e.include_checksum(true)
                    .map_err(|e| format!("cannot start zstd compression: {e}"))?;
                Encoder::Zstd(e)
            }
        })
    }

    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Plain(mut w) => w.flush().map(|()| w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }

    fn inner(&mut self) -> &mut dyn Write {
        match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(e) => e,
            Encoder::Bzip2(e) => e,
            Encoder::Xz(e) => e,
            Encoder::Zstd(e) => e,
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.inner().write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner().flush()
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
