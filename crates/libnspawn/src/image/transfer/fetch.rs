//! Where a pull reads from: `http://` and `https://` through ureq (TLS by
//! rustls, trusting the host's certificate store — `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` point it elsewhere), or `file://` for local mirrors. Side files (checksums, `.nspawn`) sit
//! beside the archive, in the same directory of the URL.

use std::io::Read;
use std::time::Duration;

/// A stream and its length, when the source says.
pub type Stream = (Box<dyn Read>, Option<u64>);

fn agent() -> ureq::Agent {
    // A read timeout so a stalled server ends the pull instead of hanging
    // it (one of the reference's known weaknesses).
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build()
}

pub fn check_url(url: &str) -> Result<(), String> {
    if ["http://", "https://", "file://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        Ok(())
    } else {
        Err(format!(
            "cannot pull {url}: not an http://, https:// or file:// URL"
        ))
    }
}

/// The URL's last path component, without query or fragment.
pub fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// The URL of `name` in the same directory as `url`.
pub fn sibling(url: &str, name: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rfind('/') {
        Some(i) => format!("{}{name}", &path[..=i]),
        None => name.to_string(),
    }
}

/// Open `url` for reading. `Ok(None)`: it does not exist (404, ENOENT).
pub fn open(url: &str) -> Result<Option<Stream>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return match std::fs::File::open(path) {
            Ok(f) => {
                let len = f.metadata().ok().map(|m| m.len());
                Ok(Some((Box::new(f), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot open {path}: {e}")),
        };
    }
    match agent().get(url).call() {
        Ok(r) => {
            let len = r.header("Content-Length").and_then(|v| v.parse().ok());
            Ok(Some((Box::new(r.into_reader()), len)))
        }
        Err(ureq::Error::Status(404 | 410, _)) => Ok(None),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "cannot fetch {url}: HTTP {code} {}",
            r.status_text()
        )),
        Err(e) => {
            // ureq's message starts with the URL, which we already name.
            let e = e.to_string();
            let e = e.strip_prefix(&format!("{url}: ")).unwrap_or(&e);
            Err(format!("cannot fetch {url}: {}", one_line(e)))
        }
    }
}

/// A small side file, whole; `Ok(None)` if absent. Bounded, so a hostile
/// server cannot make us hold gigabytes in memory.
pub fn small(url: &str) -> Result<Option<Vec<u8>>, String> {
    const LIMIT: u64 = 4 << 20;
    let Some((r, _)) = open(url)? else {
        return Ok(None);
    };
    let mut buf = vec![];
    r.take(LIMIT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if buf.len() as u64 > LIMIT {
        return Err(format!("cannot fetch {url}: larger than {LIMIT} bytes"));
    }
    Ok(Some(buf))
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = "http://h:1/d/x.tar.gz?a=b";
        assert_eq!(file_name(u), "x.tar.gz");
        assert_eq!(sibling(u, "SHA256SUMS"), "http://h:1/d/SHA256SUMS");
        assert!(check_url("ftp://x").is_err());
    }
}
