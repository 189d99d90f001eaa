//! The environment of the container's PID 1: built from nothing, never
//! inherited (REFERENCE §2), then `--setenv` on top.

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host os-release keys passed as `container_host_<key>`.
const HOST_KEYS: &[&str] = &[
    "ID",
    "VERSION_ID",
    "BUILD_ID",
    "VARIANT_ID",
    "IMAGE_ID",
    "IMAGE_VERSION",
];

pub struct EnvInput<'a> {
    pub boot: bool,
    pub term: Option<&'a str>,
    pub container_uuid: &'a str,
    pub user: Option<(&'a str, &'a str)>,
    pub host_os_release: &'a str,
    pub setenv: &'a [(String, String)],
    pub credentials: bool,
    pub container_service: &'a str,
}

/// os-release text read at most (a machine's, which it wrote).
pub const OS_RELEASE_MAX: usize = 64 * 1024;
/// Entries kept of it, the longest key and the longest value kept (in
/// bytes, cut at a character boundary): os-release(5) fields are short,
/// and what a host tool keeps of a machine's must be bounded.
const OS_RELEASE_ENTRIES: usize = 128;
const OS_RELEASE_KEY: usize = 64;
const OS_RELEASE_VALUE: usize = 512;

/// Parse os-release text into (KEY, value) pairs, unquoting values. Total
/// and bounded: only the first `OS_RELEASE_MAX` bytes are looked at, and
/// what comes back is at most `OS_RELEASE_ENTRIES` pairs of bounded size.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text[..floor_char(text, OS_RELEASE_MAX)]
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            if k.is_empty()
                || k.len() > OS_RELEASE_KEY
                || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return None;
            }
            let mut v = unquote(v);
            v.truncate(floor_char(&v, OS_RELEASE_VALUE));
            Some((k.to_string(), v))
        })
        .take(OS_RELEASE_ENTRIES)
        .collect()
}

/// The largest character boundary of `s` at or below `max`.
fn floor_char(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Build `KEY=VALUE` strings; a later entry replaces an earlier one.
pub fn build(i: &EnvInput) -> Vec<String> {
    // The reference's order; only the identifying os-release keys of the
    // host are passed on.
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("container".into(), i.container_service.into()),
    ];
    if let Some(term) = i.term {
        env.push(("TERM".into(), term.into()));
    }
    let (user, home) = i.user.unwrap_or(("root", "/root"));
    env.push(("HOME".into(), home.into()));
    env.push(("USER".into(), user.into()));
    env.push(("LOGNAME".into(), user.into()));
    env.push(("container_uuid".into(), i.container_uuid.into()));
    env.push(("NOTIFY_SOCKET".into(), "/run/host/notify".into()));
    if i.credentials {
        env.push((
            "CREDENTIALS_DIRECTORY".into(),
            "/run/host/credentials".into(),
        ));
    }
    if !i.boot {
        env.push(("LANG".into(), "C.UTF-8".into()));
    }
    for (k, v) in parse_os_release(i.host_os_release)
        .into_iter()
        .filter(|(k, _)| HOST_KEYS.contains(&k.as_str()))
    {
        env.push((format!("container_host_{}", k.to_ascii_lowercase()), v));
    }
    for (k, v) in i.setenv {
        env.push((k.clone(), v.clone()));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(env.len());
    for (k, v) in env {
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Parse a `--setenv=` value: `NAME=VALUE`, or `NAME` alone to take the
/// caller's value (`caller` looks it up; empty when unset, as the reference).
pub fn parse_setenv(
    s: &str,
    caller: impl Fn(&str) -> Option<String>,
) -> Result<(String, String), String> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (s, None),
    };
    let valid = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!(
            "Cannot assign environment variable {s}: Invalid argument"
        ));
    }
    Ok((
        name.to_string(),
        value.or_else(|| caller(name)).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_of_a_hostile_machine_is_bounded() {
        assert!(parse_os_release("").is_empty());
        assert!(parse_os_release("=\n==\n\"\n'\n\\\n#=x\n").is_empty());
        // A lone quote, a trailing backslash, quotes of two kinds.
        let p = parse_os_release("A=\"\nB=x\\\nC=\"'\nD='\n");
        assert_eq!(
            p,
            [("A", "\""), ("B", "x"), ("C", "\"'"), ("D", "'")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let long = format!("ID={}\n{}=x\n", "\u{e9}".repeat(10000), "K".repeat(65));
        let p = parse_os_release(&long);
        assert_eq!(p.len(), 1);
        assert!(p[0].1.len() <= OS_RELEASE_VALUE && p[0].1.len() >= OS_RELEASE_VALUE - 1);
        let many = "K=v\n".repeat(100_000);
        assert_eq!(parse_os_release(&many).len(), OS_RELEASE_ENTRIES);
        // Entries past the first 64 KiB are not read.
        let late = format!("{}\nID=late\n", "#".repeat(OS_RELEASE_MAX));
        assert!(parse_os_release(&late).is_empty());
        let cut = format!("{}\u{e9}", "#".repeat(OS_RELEASE_MAX - 1));
        assert!(parse_os_release(&cut).is_empty());
    }

    #[test]
    fn os_release() {
        let p = parse_os_release("# c\nID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nX='a\\\"b'\nbad line\n");
        assert_eq!(p[0], ("ID".into(), "debian".into()));
        assert_eq!(p[1].1, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(p[2].1, "a\"b");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn env_is_built_and_setenv_wins() {
        let setenv = [
            ("PATH".to_string(), "/x".to_string()),
            ("FOO".to_string(), "1".to_string()),
        ];
        let e = build(&EnvInput {
            boot: false,
            term: Some("xterm"),
            container_uuid: "u",
            user: None,
            host_os_release: "ID=debian\nNAME=Debian\n",
            setenv: &setenv,
            credentials: false,
            container_service: "systemd-nspawn",
        });
        assert!(e.contains(&"PATH=/x".to_string()));
        assert!(e.contains(&"FOO=1".to_string()));
        assert!(e.contains(&"container=systemd-nspawn".to_string()));
        assert!(e.contains(&"container_host_id=debian".to_string()));
        assert!(e.contains(&"LANG=C.UTF-8".to_string()));
        assert!(!e.iter().any(|v| v.starts_with("container_host_name=")));
        assert_eq!(e.iter().filter(|v| v.starts_with("PATH=")).count(), 1);
    }

    #[test]
    fn setenv_parsing() {
        let caller = |n: &str| (n == "BAR").then(|| "b".to_string());
        assert_eq!(
            parse_setenv("A=1=2", caller).unwrap(),
            ("A".into(), "1=2".into())
        );
        assert_eq!(
            parse_setenv("BAR", caller).unwrap(),
            ("BAR".into(), "b".into())
        );
        assert_eq!(
            parse_setenv("NOPE", caller).unwrap(),
            ("NOPE".into(), String::new())
        );
        assert!(parse_setenv("A B=x", caller).is_err());
        assert!(parse_setenv("=x", caller).is_err());
        assert!(parse_setenv("1A=x", caller).is_err());
    }
}
