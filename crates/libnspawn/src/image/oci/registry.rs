//! A client of the OCI distribution API (registry v2): manifests and
//! blobs of one repository over ureq, https (rustls, the host's
//! certificates), or http for one declared insecure and, unless told
//! `--tls-verify=yes`, for a loopback registry. A 401 is answered once per request: a `Bearer` challenge by
//! a token from its realm (anonymous, or with the credentials), a `Basic`
//! one by the credentials. At most 5 redirects are followed (a blob is
//! often served from elsewhere; ureq drops the `Authorization` header
//! when the host changes).

use super::auth::{self, Creds};
use super::manifest::{self, MAX_DOCUMENT};
use super::reference::Reference;
use crate::image::transfer::verify;
use std::io::Read;
use std::time::Duration;

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    repo: String,
    creds: Option<Creds>,
    authorization: Option<String>,
}

/// Why a request failed: missing (404) or anything else, as one line.
#[derive(Debug)]
pub enum Failure {
    NotFound,
    Other(String),
}

impl Failure {
    pub fn message(self, what: &str) -> String {
        match self {
            Failure::NotFound => format!("{what}: not found (HTTP 404)"),
            Failure::Other(m) => format!("{what}: {m}"),
        }
    }
}

type Response = (Box<dyn Read + Send>, Option<u64>, Option<String>);

impl Client {
    pub fn new(r: &Reference, tls: Option<bool>, creds: Option<Creds>) -> Client {
        let scheme = if !tls.unwrap_or(!r.is_loopback()) {
            "http"
        } else {
            "https"
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .redirects(5)
            .build();
        let creds = creds.or_else(|| auth::from_files(&r.registry));
        Client {
            agent,
            base: format!("{scheme}://{}/v2/{}", r.registry, r.repository),
            repo: r.repository.clone(),
            creds,
            authorization: None,
        }
    }

    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Response, Failure> {
        for attempt in 0..2 {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(a) = &self.authorization {
                req = req.set("Authorization", a);
            }
            match req.call() {
                Ok(r) => {
                    let len = r.header("Content-Length").and_then(|v| v.parse().ok());
                    let ct = r.header("Content-Type").map(str::to_string);
                    return Ok((Box::new(r.into_reader()), len, ct));
                }
                Err(ureq::Error::Status(401, r)) if attempt == 0 => {
                    let ch = r.header("WWW-Authenticate").unwrap_or("").to_string();
                    self.authorization = Some(self.authorize(&ch).map_err(Failure::Other)?);
                }
                Err(ureq::Error::Status(401, _)) => {
                    return Err(Failure::Other(
                        "authentication failed (HTTP 401 Unauthorized)".into(),
                    ))
                }
                Err(ureq::Error::Status(404, _)) => return Err(Failure::NotFound),
                Err(ureq::Error::Status(code, r)) => {
                    return Err(Failure::Other(format!("HTTP {code} {}", r.status_text())))
                }
                Err(ureq::Error::Transport(t)) => {
                    let m = t.to_string();
                    let m = m.strip_prefix(&format!("{url}: ")).unwrap_or(&m);
                    return Err(Failure::Other(one_line(m)));
                }
            }
        }
        unreachable!("the loop returns on its second turn")
    }

    /// The `Authorization` a 401's challenge asks for.
    fn authorize(&self, challenge: &str) -> Result<String, String> {
        let (scheme, params) = auth::challenge(challenge);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match scheme.as_str() {
            "basic" => match &self.creds {
                Some(c) => Ok(auth::basic(c)),
                None => Err("authentication required (HTTP 401 Unauthorized); give --creds USER:PASSWORD or log in with podman login".into()),
            },
            "bearer" => {
                let realm = param("realm").ok_or("a Bearer challenge without a realm")?;
                let scope = param("scope")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                let mut req = self.agent.get(realm).query("scope", &scope);
                if let Some(s) = param("service") {
                    req = req.query("service", s);
                }
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &auth::basic(c));
                }
                let r = req.call().map_err(|e| match e {
                    ureq::Error::Status(401 | 403, _) => {
                        "authentication failed: the token service refused the credentials (HTTP 401)".to_string()
                    }
                    e => format!("cannot get a token from {realm}: {}", one_line(&e.to_string())),
                })?;
                let body = super::read_bounded(r.into_reader(), "the token")?;
                let v: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("invalid token from {realm}: {e}"))?;
                let t = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| format!("no token in the answer of {realm}"))?;
                Ok(format!("Bearer {t}"))
            }
            _ => Err("authentication failed (HTTP 401 Unauthorized)".into()),
        }
    }

    /// A manifest or index by tag or digest: its bytes (at most
    /// MAX_DOCUMENT), media type and digest, checked against `reference`
    /// when that is a digest.
    pub fn manifest(&mut self, reference: &str) -> Result<super::Document, Failure> {
        let url = format!("{}/manifests/{reference}", self.base);
        let (r, len, ct) = self.get(&url, Some(manifest::ACCEPT))?;
        if len.is_some_and(|l| l > MAX_DOCUMENT) {
            return Err(Failure::Other(format!(
                "the manifest is larger than {MAX_DOCUMENT} bytes"
            )));
        }
        let body = super::read_bounded(r, "the manifest").map_err(Failure::Other)?;
        let digest = format!("sha256:{}", verify::hex(&body));
        if super::reference::is_digest(reference) && digest != reference {
            return Err(Failure::Other(format!(
                "the manifest does not match its digest {reference} (got {digest})"
            )));
        }
        let t = manifest::media_type(ct.as_deref(), &body);
        Ok((body, t, digest))
    }

    /// A blob's stream and length.
    pub fn blob(&mut self, digest: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), Failure> {
        let url = format!("{}/blobs/{digest}", self.base);
        let (r, len, _) = self.get(&url, None)?;
        Ok((r, len))
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}
