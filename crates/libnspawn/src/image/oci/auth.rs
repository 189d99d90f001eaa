//! Credentials for a registry: `--creds USER:PASS`, else the first
//! containers auth file that has an entry for the host, in the order
//! podman reads them: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`.
//! Entries are `{"auths": {"HOST[:PORT]": {"auth": base64("USER:PASS")}}}`.

use base64::Engine;
use std::path::PathBuf;

pub type Creds = (String, String);

pub fn parse_creds(s: &str) -> Result<Creds, String> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err("invalid --creds: write USER:PASSWORD".into()),
    }
}

fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut v = vec![];
    v.extend(env("REGISTRY_AUTH_FILE"));
    v.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    v.extend(env("HOME").map(|h| h.join(".docker/config.json")));
    v
}

/// The credentials an auth file keeps for `host`.
pub fn from_files(host: &str) -> Option<Creds> {
    auth_files().into_iter().find_map(|f| {
        let text = std::fs::read(&f).ok()?;
        lookup(&text, host)
    })
}

fn lookup(json: &[u8], host: &str) -> Option<Creds> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, e)| {
        let k = k
            .strip_prefix("https://")
            .or_else(|| k.strip_prefix("http://"))
            .unwrap_or(k);
        (k.split('/').next() == Some(host)).then_some(e)
    })?;
    let b = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    parse_creds(std::str::from_utf8(&b).ok()?).ok()
}

pub fn basic(c: &Creds) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.0, c.1));
    format!("Basic {b}")
}

/// A `WWW-Authenticate` challenge: its scheme and parameters
/// (RFC 7235: `Bearer realm="...",service="...",scope="..."`).
pub fn challenge(h: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = vec![];
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let (val, tail) = match v.strip_prefix('"') {
            Some(q) => match q.split_once('"') {
                Some((val, t)) => (val, t),
                None => (q, ""),
            },
            None => v.split_once(',').map_or((v, ""), |(a, b)| (a, b)),
        };
        params.push((k.trim().to_string(), val.to_string()));
        rest = tail.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_files() {
        let (s, p) = challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p[0], ("realm".into(), "http://127.0.0.1:1/token".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull".into()));
        let j = br#"{"auths":{"127.0.0.1:5000":{"auth":"dTpwOng="}}}"#;
        assert_eq!(
            lookup(j, "127.0.0.1:5000"),
            Some(("u".into(), "p:x".into()))
        );
        assert_eq!(lookup(j, "127.0.0.1:5001"), None);
        assert_eq!(basic(&("u".into(), "p:x".into())), "Basic dTpwOng=");
        assert!(parse_creds("nopass").is_err());
    }
}
