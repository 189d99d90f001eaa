//! File system settings and the syntax of `--bind=`, `--tmpfs=`,
//! `--overlay=` and `--inaccessible=` (systemd-nspawn(1)), shared by the
//! command line and `.nspawn` files.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Where a mount's source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path (absolute).
    Host(PathBuf),
    /// A path inside the container tree (`+` prefix).
    Tree(String),
    /// A fresh, empty, throw-away directory (an empty source).
    Temporary,
}

/// How a bind mount's ownership is shown in a user namespace (the bind
/// options of systemd-nspawn(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idmap {
    /// As on disk (`noidmap`, the default).
    #[default]
    Off,
    /// Through the container's own maps: on-disk id N is N inside (`idmap`).
    Container,
    /// The source's owner is root inside, everyone else nobody (`rootidmap`).
    Root,
    /// The source's owner is the owner of the target inside (`owneridmap`).
    Owner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Bind {
        source: Source,
        read_only: bool,
        recursive: bool,
        idmap: Idmap,
        /// `nosuid`, `nodev`, `noexec` (OCI bundles' bind options).
        flags: nix::mount::MsFlags,
    },
    /// Flags and data as mounted: `options::split` of the option string.
    Tmpfs {
        flags: nix::mount::MsFlags,
        data: Option<String>,
    },
    /// `lowers` from lowest to highest, as given on the command line.
    Overlay {
        lowers: Vec<Source>,
        upper: Option<Source>,
        read_only: bool,
    },
    /// `graceful`: a path the tree lacks is skipped (an OCI bundle's
    /// masked paths), not an error.
    Inaccessible { graceful: bool },
    /// Another file system, by type (an OCI bundle's mounts).
    Fs {
        fstype: String,
        source: String,
        flags: nix::mount::MsFlags,
        data: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomMount {
    pub kind: MountKind,
    /// Absolute path inside the container.
    pub dest: String,
}

impl CustomMount {
    /// Whether this is an overlay of host directories only (a throw-away
    /// upper layer counts as one): under a user namespace the runner
    /// makes those (`userns/overlay.rs`).
    pub fn host_overlay(&self) -> bool {
        match &self.kind {
            MountKind::Overlay { lowers, upper, .. } => lowers
                .iter()
                .chain(upper.iter())
                .all(|s| !matches!(s, Source::Tree(_))),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Volatile {
    #[default]
    No,
    Yes,
    State,
    Overlay,
}

impl Volatile {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "no" | "false" | "0" | "off" => Self::No,
            "yes" | "true" | "1" | "on" => Self::Yes,
            "state" => Self::State,
            "overlay" => Self::Overlay,
            _ => {
                return Err(Error::invalid(format!(
                    "Failed to parse --volatile= argument: {s}"
                )))
            }
        })
    }
}

/// `--resolv-conf=`: what to do with the container's `/etc/resolv.conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolvConf {
    Off,
    Delete,
    #[default]
    Auto,
    /// Copy (`replace: false`), replace, or bind the chosen source.
    Copy {
        from: ResolvSource,
        replace: bool,
    },
    Bind(ResolvSource),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvSource {
    Host,
    Static,
    Uplink,
    Stub,
}

impl ResolvSource {
    pub fn path(self) -> &'static str {
        match self {
            Self::Host => "/etc/resolv.conf",
            Self::Static => "/usr/lib/systemd/resolv.conf",
            Self::Uplink => "/run/systemd/resolve/resolv.conf",
            Self::Stub => "/run/systemd/resolve/stub-resolv.conf",
        }
    }
}

pub const RESOLV_CONF_MODES: &[&str] = &[
    "off",
    "copy-host",
    "copy-static",
    "copy-uplink",
    "copy-stub",
    "replace-host",
    "replace-static",
    "replace-uplink",
    "replace-stub",
    "bind-host",
    "bind-static",
    "bind-uplink",
    "bind-stub",
    "delete",
    "auto",
];

impl ResolvConf {
    pub fn parse(s: &str) -> Result<Self> {
        let src = |x: &str| match x {
            "host" => Some(ResolvSource::Host),
            "static" => Some(ResolvSource::Static),
            "uplink" => Some(ResolvSource::Uplink),
            "stub" => Some(ResolvSource::Stub),
            _ => None,
        };
        let bad = || Error::invalid(format!("Failed to parse /etc/resolv.conf mode: {s}"));
        Ok(match s {
            "off" => Self::Off,
            "delete" => Self::Delete,
            "auto" => Self::Auto,
            _ => match s.split_once('-') {
                Some(("copy", x)) => Self::Copy {
                    from: src(x).ok_or_else(bad)?,
                    replace: false,
                },
                Some(("replace", x)) => Self::Copy {
                    from: src(x).ok_or_else(bad)?,
                    replace: true,
                },
                Some(("bind", x)) => Self::Bind(src(x).ok_or_else(bad)?),
                _ => return Err(bad()),
            },
        })
    }
}

/// `--timezone=`: what to do with the container's `/etc/localtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timezone {
    Off,
    Copy,
    Bind,
    Symlink,
    Delete,
    #[default]
    Auto,
}

pub const TIMEZONE_MODES: &[&str] = &["off", "copy", "bind", "symlink", "delete", "auto"];

impl Timezone {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "off" => Self::Off,
            "copy" => Self::Copy,
            "bind" => Self::Bind,
            "symlink" => Self::Symlink,
            "delete" => Self::Delete,
            "auto" => Self::Auto,
            _ => {
                return Err(Error::invalid(format!(
                    "Failed to parse /etc/localtime mode: {s}"
                )))
            }
        })
    }
}

/// `--link-journal=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkJournal {
    No,
    #[default]
    Auto,
    Host {
        try_only: bool,
    },
    Guest {
        try_only: bool,
    },
}

impl LinkJournal {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "no" => Self::No,
            "auto" => Self::Auto,
            "host" => Self::Host { try_only: false },
            "try-host" => Self::Host { try_only: true },
            "guest" => Self::Guest { try_only: false },
            "try-guest" => Self::Guest { try_only: true },
            _ => {
                return Err(Error::invalid(format!(
                    "Failed to parse link journal mode {s}"
                )))
            }
        })
    }
}

/// Everything that shapes the container's file system besides the API
/// file systems.
#[derive(Debug, Clone, Default)]
pub struct FsSettings {
    pub read_only: bool,
    pub volatile: Volatile,
    pub ephemeral: bool,
    pub template: Option<PathBuf>,
    pub mounts: Vec<CustomMount>,
    pub resolv_conf: ResolvConf,
    pub timezone: Timezone,
    pub link_journal: LinkJournal,
    /// (id, contents) for `/run/host/credentials`.
    pub credentials: Vec<(String, Vec<u8>)>,
    /// `--pivot-root=NEW[:OLD]`.
    pub pivot_root: Option<(String, Option<String>)>,
    /// Device nodes beyond the standard ones (an OCI bundle's
    /// `linux.devices`, `nspawn-oci`).
    pub device_nodes: Vec<DeviceNode>,
}

/// A device node to make in the container (`mount::dev::make_nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute, inside the container.
    pub path: String,
    pub kind: NodeKind,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
    Fifo,
}

/// Split at unescaped colons; `\:` and `\\` are taken literally.
pub fn split_colons(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

pub(crate) fn clean_abs(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn source(s: &str) -> Option<Source> {
    if s.is_empty() {
        return Some(Source::Temporary);
    }
    if let Some(inner) = s.strip_prefix('+') {
        let inner = if inner.starts_with('/') {
            inner.to_string()
        } else {
            format!("/{inner}")
        };
        return clean_abs(&inner).map(Source::Tree);
    }
    clean_abs(s).map(|p| Source::Host(PathBuf::from(p)))
}

/// `--bind=` / `--bind-ro=`: `SRC[:DST[:OPTS]]`.
pub fn parse_bind(s: &str, read_only: bool) -> Result<CustomMount> {
    let opt = if read_only { "--bind-ro=" } else { "--bind=" };
    let bad = || {
        Error::invalid(format!(
            "Failed to parse {opt} argument {s}: Invalid argument"
        ))
    };
    let parts = split_colons(s);
    if parts.len() > 3 || (parts.len() == 1 && parts[0].is_empty()) {
        return Err(bad());
    }
    let src = source(&parts[0]).ok_or_else(bad)?;
    let dest = match parts.get(1) {
        Some(d) => clean_abs(d).ok_or_else(bad)?,
        None => match &src {
            Source::Host(p) => p.to_string_lossy().into_owned(),
            Source::Tree(p) => p.clone(),
            Source::Temporary => return Err(bad()),
        },
    };
    let mut recursive = true;
    let mut idmap = Idmap::Off;
    if let Some(opts) = parts.get(2) {
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "rbind" => recursive = true,
                "norbind" => recursive = false,
                "idmap" => idmap = Idmap::Container,
                "noidmap" => idmap = Idmap::Off,
                "rootidmap" => idmap = Idmap::Root,
                "owneridmap" => idmap = Idmap::Owner,
                _ => return Err(Error::invalid(format!("Invalid bind mount option: {o}"))),
            }
        }
    }
    // The runner makes idmapped mounts of host paths only: a path in the
    // tree is not known before the container's root is built.
    if idmap != Idmap::Off && !matches!(src, Source::Host(_)) {
        return Err(Error::invalid(format!(
            "Failed to parse {opt} argument {s}: idmap options need a host source path"
        )));
    }
    Ok(CustomMount {
        kind: MountKind::Bind {
            source: src,
            read_only,
            recursive,
            idmap,
            flags: nix::mount::MsFlags::empty(),
        },
        dest,
    })
}

/// `--tmpfs=PATH[:OPTS]`: OPTS (`mode=0755` when empty) as the reference
/// mounts them, flag words applied over `nodev,strictatime` and the rest
/// passed to tmpfs (`options::split`).
pub fn parse_tmpfs(s: &str) -> Result<CustomMount> {
    let bad = || {
        Error::invalid(format!(
            "Failed to parse --tmpfs= argument {s}: Invalid argument"
        ))
    };
    let (path, opts) = match s.split_once(':') {
        Some((p, o)) if !o.is_empty() => (p, o),
        Some((p, _)) => (p, "mode=0755"),
        None => (s, "mode=0755"),
    };
    let dest = clean_abs(path).ok_or_else(bad)?;
    let base = nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_STRICTATIME;
    let split = super::options::split(opts, base)
        .map_err(|e| Error::invalid(format!("Failed to parse --tmpfs= argument {s}: {e}")))?;
    Ok(CustomMount {
        kind: MountKind::Tmpfs {
            flags: split.flags,
            data: split.data,
        },
        dest,
    })
}

/// `--overlay=` / `--overlay-ro=`: `LOWER...:UPPER:DEST`, or `LOWER:UPPER`
/// (the destination is then the upper's path). An empty upper is a
/// throw-away one.
pub fn parse_overlay(s: &str, read_only: bool) -> Result<CustomMount> {
    let opt = if read_only {
        "--overlay-ro="
    } else {
        "--overlay="
    };
    let parts = split_colons(s);
    if parts.len() < 2 {
        return Err(Error::invalid(format!(
            "{opt} needs at least two colon-separated directories specified."
        )));
    }
    let bad = || {
        Error::invalid(format!(
            "Failed to parse {opt} argument {s}: Invalid argument"
        ))
    };
    let (lowers, upper, dest) = if parts.len() == 2 {
        let dest = match source(&parts[1]).ok_or_else(bad)? {
            Source::Host(p) => p.to_string_lossy().into_owned(),
            Source::Tree(p) => p,
            Source::Temporary => return Err(bad()),
        };
        (&parts[..1], &parts[1], dest)
    } else {
        let n = parts.len();
        (
            &parts[..n - 2],
            &parts[n - 2],
            clean_abs(&parts[n - 1]).ok_or_else(bad)?,
        )
    };
    let mut lowers: Vec<Source> = lowers
        .iter()
        .map(|l| match source(l) {
            Some(Source::Temporary) | None => Err(bad()),
            Some(src) => Ok(src),
        })
        .collect::<Result<_>>()?;
    let upper = source(upper).ok_or_else(bad)?;
    let upper = if read_only {
        // Read-only: the "upper" is just the highest lower layer.
        if upper != Source::Temporary {
            lowers.push(upper);
        }
        None
    } else {
        Some(upper)
    };
    Ok(CustomMount {
        kind: MountKind::Overlay {
            lowers,
            upper,
            read_only,
        },
        dest,
    })
}

/// `--inaccessible=PATH`.
pub fn parse_inaccessible(s: &str) -> Result<CustomMount> {
    let dest = clean_abs(s).ok_or_else(|| {
        Error::invalid(format!(
            "Failed to parse --inaccessible= argument {s}: Invalid argument"
        ))
    })?;
    Ok(CustomMount {
        kind: MountKind::Inaccessible { graceful: false },
        dest,
    })
}

/// `--set-credential=ID:VALUE` (C-style escapes in VALUE).
pub fn parse_set_credential(s: &str) -> Result<(String, Vec<u8>)> {
    let (id, value) = s.split_once(':').ok_or_else(|| {
        Error::invalid(format!("Failed to parse --set-credential= argument: {s}"))
    })?;
    check_credential_id(id)?;
    Ok((id.to_string(), unescape_c(value)))
}

/// `--load-credential=ID:PATH`: the file is read now, on the host.
pub fn parse_load_credential(s: &str) -> Result<(String, Vec<u8>)> {
    let (id, path) = s.split_once(':').ok_or_else(|| {
        Error::invalid(format!("Failed to parse --load-credential= argument: {s}"))
    })?;
    check_credential_id(id)?;
    if !path.starts_with('/') {
        return Err(Error::invalid(format!(
            "Credential path {path} is not absolute"
        )));
    }
    let data = std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "Failed to read credential {id} from {path}: {}",
            io_text(&e)
        ))
    })?;
    Ok((id.to_string(), data))
}

fn io_text(e: &std::io::Error) -> String {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
        .desc()
        .to_string()
}

fn check_credential_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 255
        && !id.contains('/')
        && !id.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Credential name is not valid: {id}"
        )))
    }
}

fn unescape_c(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' if i + 2 < b.len() => {
                    match std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.extend_from_slice(b"\\x"),
                    }
                }
                c => {
                    out.push(b'\\');
                    out.push(c);
                }
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// `--pivot-root=NEW[:OLD]`.
pub fn parse_pivot_root(s: &str) -> Result<(String, Option<String>)> {
    let bad = || {
        Error::invalid(format!(
            "Failed to parse --pivot-root= argument {s}: Invalid argument"
        ))
    };
    let parts = split_colons(s);
    match parts.as_slice() {
        [new] => Ok((clean_abs(new).ok_or_else(bad)?, None)),
        [new, old] => Ok((
            clean_abs(new).ok_or_else(bad)?,
            Some(clean_abs(old).ok_or_else(bad)?),
        )),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let m = parse_bind("/srv/data", false).unwrap();
        assert_eq!(m.dest, "/srv/data");
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: Source::Host("/srv/data".into()),
                read_only: false,
                recursive: true,
                idmap: Idmap::Off,
                flags: nix::mount::MsFlags::empty(),
            }
        );
        let m = parse_bind("+/usr/share:/share:norbind", true).unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: Source::Tree("/usr/share".into()),
                read_only: true,
                recursive: false,
                idmap: Idmap::Off,
                flags: nix::mount::MsFlags::empty(),
            }
        );
        let m = parse_bind(":/scratch", false).unwrap();
        assert_eq!(
            (m.kind, m.dest.as_str()),
            (
                MountKind::Bind {
                    source: Source::Temporary,
                    read_only: false,
                    recursive: true,
                    idmap: Idmap::Off,
                    flags: nix::mount::MsFlags::empty(),
                },
                "/scratch"
            )
        );
        for (opts, idmap) in [
            ("idmap", Idmap::Container),
            ("rootidmap", Idmap::Root),
            ("owneridmap", Idmap::Owner),
            ("idmap,noidmap", Idmap::Off),
        ] {
            let m = parse_bind(&format!("/srv:/srv:{opts}"), false).unwrap();
            assert!(
                matches!(m.kind, MountKind::Bind { idmap: i, .. } if i == idmap),
                "{opts}"
            );
        }
        assert!(parse_bind("+/srv:/srv:idmap", false).is_err());
        assert!(parse_bind(":/srv:rootidmap", false).is_err());
        let m = parse_bind("/a\\:b:/c", false).unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: Source::Host("/a:b".into()),
                read_only: false,
                recursive: true,
                idmap: Idmap::Off,
                flags: nix::mount::MsFlags::empty(),
            }
        );
        for bad in [
            "relative:path",
            "",
            "/a:rel",
            "/a:/b:bogus",
            "/a:/b:rbind:x",
            ":",
            "/a/../b",
            "/a:/b/../../c",
        ] {
            assert!(parse_bind(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_overlay_inaccessible() {
        use nix::mount::MsFlags;
        let base = MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME;
        let tmpfs = |flags, data: Option<&str>| MountKind::Tmpfs {
            flags,
            data: data.map(String::from),
        };
        assert_eq!(
            parse_tmpfs("/x").unwrap().kind,
            tmpfs(base, Some("mode=0755"))
        );
        assert_eq!(
            parse_tmpfs("/x:").unwrap().kind,
            tmpfs(base, Some("mode=0755"))
        );
        assert_eq!(
            parse_tmpfs("/x:size=1m").unwrap().kind,
            tmpfs(base, Some("size=1m"))
        );
        assert_eq!(
            parse_tmpfs("/var:mode=0755,nosuid").unwrap().kind,
            tmpfs(base | MsFlags::MS_NOSUID, Some("mode=0755"))
        );
        assert_eq!(
            parse_tmpfs("/var:ro,dev").unwrap().kind,
            tmpfs(MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY, None)
        );
        assert!(parse_tmpfs("/var:mode=0755,shared").is_err());
        assert!(parse_tmpfs("").is_err() && parse_tmpfs("x").is_err());
        let o = parse_overlay("/l1:/l2:/up:/dst", false).unwrap();
        assert_eq!(o.dest, "/dst");
        assert_eq!(
            o.kind,
            MountKind::Overlay {
                lowers: vec![Source::Host("/l1".into()), Source::Host("/l2".into())],
                upper: Some(Source::Host("/up".into())),
                read_only: false,
            }
        );
        let o = parse_overlay("/l::/dst", false).unwrap();
        assert!(matches!(
            o.kind,
            MountKind::Overlay {
                upper: Some(Source::Temporary),
                ..
            }
        ));
        let o = parse_overlay("/l:+/up", false).unwrap();
        assert_eq!(o.dest, "/up");
        let o = parse_overlay("/l1:/l2:/dst", true).unwrap();
        assert!(
            matches!(o.kind, MountKind::Overlay { ref lowers, upper: None, read_only: true } if lowers.len() == 2)
        );
        assert!(parse_overlay("onlyone", false)
            .unwrap_err()
            .to_string()
            .contains("at least two"));
        assert!(parse_overlay("/a:/b:rel", false).is_err());
        assert!(parse_inaccessible("rel").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(Volatile::parse("state").unwrap(), Volatile::State);
        assert!(Volatile::parse("-1").is_err());
        // `--volatile=` with nothing after it: refused, as the reference
        // (a bare `--volatile` is clap's "yes").
        assert!(Volatile::parse("").is_err());
        assert_eq!(
            ResolvConf::parse("replace-stub").unwrap(),
            ResolvConf::Copy {
                from: ResolvSource::Stub,
                replace: true
            }
        );
        assert_eq!(
            ResolvConf::parse("bind-host").unwrap(),
            ResolvConf::Bind(ResolvSource::Host)
        );
        for m in RESOLV_CONF_MODES {
            assert!(ResolvConf::parse(m).is_ok(), "{m}");
        }
        assert!(ResolvConf::parse("copy-bogus").is_err());
        for m in TIMEZONE_MODES {
            assert!(Timezone::parse(m).is_ok(), "{m}");
        }
        assert!(LinkJournal::parse("try-guest").is_ok() && LinkJournal::parse("x").is_err());
    }

    #[test]
    fn credentials() {
        assert_eq!(
            parse_set_credential("a:b\\nc\\x41").unwrap(),
            ("a".into(), b"b\ncA".to_vec())
        );
        assert!(parse_set_credential("nocolon").is_err());
        assert!(parse_set_credential("../x:1").is_err());
        assert!(parse_load_credential("id:relative").is_err());
        assert_eq!(
            parse_pivot_root("/sysroot:/oldroot").unwrap(),
            ("/sysroot".into(), Some("/oldroot".into()))
        );
    }
}
