//! Writing a disk image sparsely, as the reference's `sparse_write`: an
//! all-zero block of the stream is not written but skipped over, so it
//! stays a hole of the new file, and the file is cut to the stream's length
//! at the end (a trailing hole is otherwise no part of the file). Only for
//! a file written once from its start: what is skipped must already read
//! as zeros.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The unit of holes: the file system block of every Linux file system we
/// meet. A block with one non-zero byte is written whole, so a smaller unit
/// would save no space, and a larger one would write zeros.
pub const BLOCK: usize = 4096;

static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// Whether `b` (at most one block) is all zeros. Slice equality of bytes is
/// a `memcmp`, fast in debug builds too.
pub fn is_zero(b: &[u8]) -> bool {
    b.chunks(BLOCK).all(|c| c == &ZEROS[..c.len()])
}

pub struct Writer {
    file: File,
    pos: u64,
}

impl Writer {
    /// `file` is new and empty.
    pub fn new(file: File) -> Writer {
        Writer { file, pos: 0 }
    }

    /// Append `buf`: each run of blocks (aligned on the file's offsets)
    /// with data is written with one `pwrite`, all-zero blocks are skipped.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut i = 0;
        let mut run: Option<usize> = None;
        while i < buf.len() {
            let room = BLOCK - (self.pos + i as u64) as usize % BLOCK;
            let end = (i + room).min(buf.len());
            match (is_zero(&buf[i..end]), run) {
                (true, Some(start)) => {
                    self.put(&buf[start..i], start)?;
                    run = None;
                }
                (false, None) => run = Some(i),
                _ => {}
            }
            i = end;
        }
        if let Some(start) = run {
            self.put(&buf[start..], start)?;
        }
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn put(&self, data: &[u8], at: usize) -> io::Result<()> {
        self.file.write_all_at(data, self.pos + at as u64)
    }

    /// Cut the file to the stream's length; the file and that length.
    pub fn finish(self) -> io::Result<(File, u64)> {
        self.file.set_len(self.pos)?;
        Ok((self.file, self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn holes_and_bytes() {
        let path = std::env::temp_dir().join(format!("nspawn-sparse-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let mut want = vec![];
        let mut w = Writer::new(f.try_clone().unwrap());
        // Odd piece sizes, so blocks straddle writes.
        let mut data = vec![0u8; 3 << 20];
        data[5000] = 1;
        data[(2 << 20) + 77] = 2;
        for piece in data.chunks(4099) {
            w.write(piece).unwrap();
            want.extend_from_slice(piece);
        }
        w.write(&[0; 100]).unwrap();
        want.extend_from_slice(&[0; 100]);
        let (f, len) = w.finish().unwrap();
        assert_eq!(len, want.len() as u64);
        let mut got = vec![0; want.len()];
        f.read_exact_at(&mut got, 0).unwrap();
        assert!(got == want);
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), want.len() as u64);
        // Two data blocks (maybe a few more on file systems with larger
        // allocation units), not three megabytes.
        assert!(m.blocks() * 512 <= 64 * 1024, "{} blocks", m.blocks());
        assert!(is_zero(&[]) && is_zero(&[0; 10]) && !is_zero(&[0, 0, 1]));
    }
}
