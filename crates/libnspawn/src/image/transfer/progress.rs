//! Progress of a transfer on a terminal: one line, rewritten at most once
//! a second, as the reference's `Got N% of URL.`, with rate and time left. Nothing when stderr is
//! not a terminal, so logs and pipes get only results and errors.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
    tty: bool,
    shown: bool,
}

impl Progress {
    /// `label` is what is being fetched (a URL), or `None` for an import.
    pub fn new(label: Option<&str>, total: Option<u64>) -> Progress {
        Progress {
            label: label.map(str::to_string).unwrap_or_default(),
            total,
            start: Instant::now(),
            last: None,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            shown: false,
        }
    }

    pub fn update(&mut self, done: u64) {
        let now = Instant::now();
        if !self.tty || now.duration_since(self.start) < Duration::from_secs(1) {
            return;
        }
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(now);
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = (done as f64 / secs) as u64;
        let pct = self
            .total
            .filter(|t| *t > 0)
            .map(|t| format!("{}%", (done * 100 / t).min(100)))
            .unwrap_or_else(|| bytes(done));
        let eta = match self.total {
            Some(t) if rate > 0 && t > done => format!(" {} left.", eta((t - done) / rate)),
            _ => String::new(),
        };
        let line = match self.label.is_empty() {
            true => format!("Imported {pct}. {} at {}/s.{eta}", bytes(done), bytes(rate)),
            false => format!(
                "Got {pct} of {}. {} at {}/s.{eta}",
                self.label,
                bytes(done),
                bytes(rate)
            ),
        };
        let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
        self.shown = true;
    }

    pub fn finish(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A source that shows its progress as it is read, and remembers whether
/// it failed, so that a decoder's error can be told from the source's.
pub struct Metered<R> {
    inner: R,
    done: u64,
    progress: Progress,
    pub failed: bool,
}

impl<R: std::io::Read> Metered<R> {
    pub fn new(inner: R, progress: Progress) -> Metered<R> {
        Metered {
            inner,
            done: 0,
            progress,
            failed: false,
        }
    }

    /// The source, the progress line ended.
    pub fn into_inner(mut self) -> R {
        self.progress.finish();
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.done += n as u64;
                self.progress.update(self.done);
                Ok(n)
            }
            Err(e) => {
                self.failed |= e.kind() != std::io::ErrorKind::Interrupted;
                Err(e)
            }
        }
    }
}

/// Seconds as `1h 2min 3s`, `2min 3s` or `3s`.
fn eta(secs: u64) -> String {
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}min {s}s"),
        (h, m, s) => format!("{h}h {m}min {s}s"),
    }
}

/// Bytes in powers of 1024 with one decimal, as systemd's format_bytes.
fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)];
    for (s, f) in UNITS {
        if n >= f && f > 1 {
            return format!("{}.{}{s}", n / f, n % f * 10 / f);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(eta(5), "5s");
        assert_eq!(eta(125), "2min 5s");
        assert_eq!(eta(3725), "1h 2min 5s");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(12), "12B");
    }
}
