//! Image references as podman and skopeo write them:
//! `HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`. There is no default
//! registry: a reference must name its host, so nothing is fetched from a
//! place the user did not write.

use crate::image::store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:HEX`, a pin.
    pub digest: Option<String>,
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let bad = |why: &str| format!("invalid image reference '{s}': {why}");
        let (host, rest) = s
            .split_once('/')
            .filter(|(h, _)| h.contains(['.', ':']) || *h == "localhost")
            .ok_or_else(|| bad("it names no registry (write HOST/REPOSITORY:TAG)"))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) if is_digest(d) => (r, Some(d.to_string())),
            Some(_) => return Err(bad("the digest is not sha256: and 64 hex digits")),
            None => (rest, None),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
            _ => (rest, None),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            });
        if !repo_ok {
            return Err(bad(
                "the repository is not lower-case letters, digits, '.', '_', '-' and '/'",
            ));
        }
        if let Some(t) = &tag {
            let ok = t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(bad("the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry: host.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// What to ask the registry's manifests endpoint for: the pin if
    /// there is one, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether the registry is this host, where plain http is the norm.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => self.registry.split(':').next().unwrap_or(&self.registry),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }

    /// The image name a pull gives by default: the repository's last
    /// component, and the tag unless it is `latest`, made a valid
    /// machine name (other characters become `-`).
    pub fn default_name(&self) -> Option<String> {
        let base = self
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository);
        let raw = match self.tag.as_deref() {
            Some("latest") | None => base.to_string(),
            Some(t) => format!("{base}-{t}"),
        };
        let mut name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        while name.contains("--")
            || name.contains("..")
            || name.contains(".-")
            || name.contains("-.")
        {
            name = name
                .replace("--", "-")
                .replace("..", ".")
                .replace(".-", "-")
                .replace("-.", "-");
        }
        let name = name.trim_matches(['-', '.']).to_string();
        store::name_is_valid(&name).then_some(name)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let r = Reference::parse("127.0.0.1:5000/lib/busy_box:1.36").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "lib/busy_box");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert!(r.is_loopback());
        assert_eq!(r.default_name().as_deref(), Some("busy-box-1.36"));
        let r = Reference::parse("registry.example/app").unwrap();
        assert_eq!(r.manifest_ref(), "latest");
        assert!(!r.is_loopback());
        assert_eq!(r.default_name().as_deref(), Some("app"));
        let pin = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:1/x@{pin}")).unwrap();
        assert_eq!(r.manifest_ref(), pin);
        assert_eq!(r.tag, None);
        for bad in [
            "busybox",
            "lib/busybox",
            "h.x/UPPER",
            "h.x/a@sha256:12",
            "h.x/a:-t",
            "h.x/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
