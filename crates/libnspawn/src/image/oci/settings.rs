//! The image config as the machine's settings: a `NAME.nspawn` beside the
//! image, so `nspawn -M NAME` runs what a container engine runs for the
//! image and `nspawn -M NAME CMD` overrides the command as it always
//! does. `Parameters=` counts only in a file that also sets `Boot=` (see
//! the settings file's rules), hence `Boot=no`. Ports and labels are kept
//! as comments here and in the image's metadata.

use super::manifest::RunConfig;
use std::fmt::Write;

/// A word quoted as the settings file's word splitter reads it back.
pub fn quote(w: &str) -> String {
    let mut s = String::from("\"");
    for c in w.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A single-line value (a path, a user, a signal): `None` if it has a
/// line break, which would end the key and start another.
fn single(v: &str) -> Option<&str> {
    (!v.contains(['\n', '\r'])).then_some(v)
}

/// A stop signal as `KillSignal=` takes it: `SIGTERM`, from `SIGTERM`,
/// `TERM` or a number.
fn signal(s: &str) -> Option<String> {
    let s = single(s.trim())?;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .ok()
            .map(|s| s.as_str().to_string());
    }
    let name = s.to_ascii_uppercase();
    let name = match name.starts_with("SIG") {
        true => name,
        false => format!("SIG{name}"),
    };
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        .then_some(name)
}

pub fn nspawn_file(source: &str, digest: &str, c: &RunConfig) -> String {
    let mut f = String::new();
    let _ = writeln!(
        f,
        "# From the OCI image {source}, {digest} (nspawnctl pull-oci)."
    );
    let _ = writeln!(f, "[Exec]");
    let argv: Vec<&String> = c
        .entrypoint
        .iter()
        .flatten()
        .chain(c.cmd.iter().flatten())
        .collect();
    if !argv.is_empty() {
        let _ = writeln!(f, "Boot=no");
        let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
        let _ = writeln!(f, "Parameters={}", words.join(" "));
    }
    for e in c.env.iter().flatten().filter(|e| e.contains('=')) {
        let _ = writeln!(f, "Environment={}", quote(e));
    }
    if let Some(d) = c
        .working_dir
        .as_deref()
        .and_then(single)
        .filter(|d| d.starts_with('/'))
    {
        let _ = writeln!(f, "WorkingDirectory={d}");
    }
    // "user", "uid", "user:group" or "uid:gid": nspawn's --user takes the
    // user; its primary group comes from the image's passwd.
    if let Some(u) = c
        .user
        .as_deref()
        .and_then(single)
        .map(|u| u.split(':').next().unwrap_or(u))
    {
        if !u.is_empty() && u != "root" && u != "0" {
            let _ = writeln!(f, "User={u}");
        }
    }
    if let Some(s) = c.stop_signal.as_deref().and_then(signal) {
        let _ = writeln!(f, "KillSignal={s}");
    }
    for p in c.exposed_ports.iter().flat_map(|p| p.keys()) {
        let _ = writeln!(f, "# ExposedPort: {}", p.replace(['\n', '\r'], " "));
    }
    for (k, v) in c.labels.iter().flatten() {
        let _ = writeln!(
            f,
            "# Label: {}={}",
            k.replace(['\n', '\r'], " "),
            v.replace(['\n', '\r'], " ")
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file() {
        let c: RunConfig = serde_json::from_str(
            r#"{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo \"hi\" $X"],"Env":["X=a b","PATH=/bin"],
               "WorkingDir":"/srv","User":"1000:1000","StopSignal":"SIGINT",
               "ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}}"#,
        )
        .unwrap();
        let f = nspawn_file("registry.example/x:1", "sha256:00", &c);
        assert!(
            f.contains("Boot=no\nParameters=\"/bin/sh\" \"-c\" \"echo \\\"hi\\\" $X\"\n"),
            "{f}"
        );
        assert!(f.contains("Environment=\"X=a b\"\n"), "{f}");
        assert!(
            f.contains("WorkingDirectory=/srv\nUser=1000\nKillSignal=SIGINT\n"),
            "{f}"
        );
        assert!(f.contains("# ExposedPort: 80/tcp\n# Label: a=b\n"), "{f}");
        let words =
            crate::unitfile::split_words("\"/bin/sh\" \"-c\" \"echo \\\"hi\\\" $X\"").unwrap();
        assert_eq!(words, ["/bin/sh", "-c", "echo \"hi\" $X"]);
        assert_eq!(signal("15").as_deref(), Some("SIGTERM"));
        assert_eq!(signal("term").as_deref(), Some("SIGTERM"));
        assert_eq!(signal("RTMIN+3").as_deref(), Some("SIGRTMIN+3"));
    }
}
