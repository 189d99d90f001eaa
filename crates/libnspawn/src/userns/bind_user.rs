//! `--bind-user=NAME`: a host user inside the container, as the
//! reference does it. The user's uid and gid are mapped to a container id
//! from 60514 on (systemd's range for them, 60514-60577) by extra lines
//! in the maps, so the host home bound on `/run/host/home/NAME` shows
//! as theirs inside; the user and group records are JSON drop-ins in
//! `/run/host/userdb/` (read by nss-systemd in the guest, see
//! nss-systemd(8)).

use super::Range;
use crate::error::{Context, Error, Result};
use crate::inroot;
use std::os::fd::{AsFd, BorrowedFd};

/// The first container id for bound users, and how many there may be.
pub const FIRST: u32 = 60514;
const MAX: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundUser {
    pub name: String,
    pub group: String,
    pub host_uid: u32,
    pub host_gid: u32,
    /// The uid and gid inside.
    pub id: u32,
    pub home: String,
}

/// A host account as NSS gives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct HostAccount {
    uid: u32,
    gid: u32,
    group: String,
    home: String,
}

/// getent(1), the host's own program for NSS lookups, where distributions
/// put it.
fn getent() -> Option<&'static str> {
    ["/usr/bin/getent", "/bin/getent"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The host's accounts of `names` (`None` for an unknown name), looked up
/// through NSS by getent(1), in a forked helper (`helper.rs`). Not by
/// `getpwnam(3)`: the runner is linked statically (BENCHMARKS.md), and a
/// static glibc cannot load the modules nsswitch.conf names beside
/// `files` (nss-systemd, sss, LDAP): loading one crashes the process.
/// getent is dynamic, so every host module answers as it does for `id`.
fn host_accounts(names: &[String]) -> Result<Vec<Option<HostAccount>>> {
    let getent = getent().ok_or_else(|| {
        Error::invalid("cannot look up the users to bind: no getent(1) on the host")
    })?;
    let lookup = || {
        let found: Option<Vec<Option<HostAccount>>> =
            names.iter().map(|name| account(getent, name)).collect();
        found
            .map(|f| serde_json::to_string(&f).unwrap_or_default())
            .unwrap_or_default()
    };
    crate::helper::run(std::time::Duration::from_secs(30), lookup)
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| Error::invalid("cannot look up the users to bind on the host"))
}

/// One account by getent: `Some(None)` when NSS does not know the name
/// (getent's exit status 2), `None` when the lookup itself failed.
fn account(getent: &str, name: &str) -> Option<Option<HostAccount>> {
    // A name getent would take for an option or a numeric id is no name.
    if name.starts_with('-') || name.bytes().all(|b| b.is_ascii_digit()) {
        return Some(None);
    }
    let Some(user) = getent_entry(getent, "passwd", name)? else {
        return Some(None);
    };
    // name:password:uid:gid:gecos:home:shell
    let f: Vec<&str> = user.split(':').collect();
    if f.len() < 7 || f[0] != name {
        return None;
    }
    let (uid, gid) = (f[2].parse().ok()?, f[3].parse::<u32>().ok()?);
    // name:password:gid:members; a primary group NSS does not know is
    // named after the user, as the reference does.
    let group = getent_entry(getent, "group", &gid.to_string())?
        .and_then(|g| g.split(':').next().map(String::from))
        .unwrap_or_else(|| name.to_string());
    Some(Some(HostAccount {
        uid,
        gid,
        group,
        home: f[5].to_string(),
    }))
}

/// `getent DATABASE KEY`'s line: `Some(None)` for a key not found.
/// getent dies with the helper running it, which the runner kills when a
/// lookup hangs (an unreachable directory server): none is left behind.
fn getent_entry(getent: &str, database: &str, key: &str) -> Option<Option<String>> {
    let out = crate::sys::dies_with_us(&mut std::process::Command::new(getent))
        .args([database, key])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    match out.status.code() {
        Some(0) => {
            let text = String::from_utf8(out.stdout).ok()?;
            Some(Some(text.lines().next()?.to_string()))
        }
        Some(2) => Some(None),
        _ => None,
    }
}

/// Look the users up on the host and check they fit: not inside the
/// container's range, no clash with the tree's own users and groups.
pub fn resolve(
    names: &[String],
    r: &Range,
    tree_passwd: &str,
    tree_group: &str,
) -> Result<Vec<BoundUser>> {
    if names.len() as u32 > MAX {
        return Err(Error::invalid(format!("at most {MAX} users can be bound")));
    }
    let accounts = host_accounts(names)?;
    let mut out = vec![];
    for (i, (name, acct)) in names.iter().zip(accounts).enumerate() {
        let HostAccount {
            uid,
            gid,
            group,
            home,
        } = acct.ok_or_else(|| {
            Error::invalid(format!("cannot bind user {name}: no such user on the host"))
        })?;
        if uid == 0 || r.contains(uid) || r.contains(gid) {
            return Err(Error::invalid(format!(
                "cannot bind user {name}: UID {uid} or GID {gid} is root or inside the container's range"
            )));
        }
        let id = FIRST + i as u32;
        if r.size <= id {
            return Err(Error::invalid(format!(
                "cannot bind user {name}: the container's range is too small"
            )));
        }
        for (file, what) in [(tree_passwd, "user"), (tree_group, "group")] {
            let want = if what == "user" { name } else { &group };
            let clash = file.lines().any(|l| {
                let f: Vec<&str> = l.split(':').collect();
                f.first() == Some(&want.as_str()) || f.get(2) == Some(&id.to_string().as_str())
            });
            if clash {
                return Err(Error::invalid(format!(
                    "cannot bind user {name}: the container already has a {what} {want} or id {id}"
                )));
            }
        }
        out.push(BoundUser {
            name: name.clone(),
            group,
            host_uid: uid,
            host_gid: gid,
            id,
            home,
        });
    }
    Ok(out)
}

/// The map lines for `r` with the bound users' ids cut out of it and
/// mapped to their host ids instead (user_namespaces(7): up to 340 lines,
/// no overlaps on either side). `host` picks the uid or the gid.
pub fn map_lines(r: &Range, users: &[BoundUser], host: fn(&BoundUser) -> u32) -> String {
    let mut out = String::new();
    let mut next = 0u32;
    for u in users {
        if u.id > next {
            out.push_str(&format!("{next} {} {}\n", r.base + next, u.id - next));
        }
        out.push_str(&format!("{} {} 1\n", u.id, host(u)));
        next = u.id + 1;
    }
    if next < r.size {
        out.push_str(&format!("{next} {} {}\n", r.base + next, r.size - next));
    }
    out
}

/// In the child, before `/run/host` is made read-only: the home on
/// `/run/host/home/NAME` and the records in `/run/host/userdb`.
pub fn setup(run: BorrowedFd, users: &[BoundUser]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    inroot::mkdir_p(run, "/host/userdb", 0o755)?;
    for u in users {
        let home = format!("/run/host/home/{}", u.name);
        let target = inroot::mkdir_p(run, &format!("/host/home/{}", u.name), 0o755)?;
        let src = nix::fcntl::open(
            u.home.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("cannot open the home of {}: {}", u.name, u.home))?;
        crate::mount::bind_fd(
            src.as_fd(),
            target.as_fd(),
            true,
            &format!("the home of {} on {home}", u.name),
        )?;
        let (n, g, id) = (json(&u.name), json(&u.group), u.id);
        let files = [
            (format!("{}.user", u.name), format!(
                "{{\"userName\":{n},\"uid\":{id},\"gid\":{id},\"homeDirectory\":{},\"service\":\"io.systemd.NSpawn\"}}\n",
                json(&home)
            ), 0o644),
            (format!("{}.group", u.group), format!(
                "{{\"groupName\":{g},\"gid\":{id},\"service\":\"io.systemd.NSpawn\"}}\n"
            ), 0o644),
            (format!("{}.user-privileged", u.name), "{\"privileged\":{\"hashedPassword\":[\"!\"]}}\n".to_string(), 0o600),
        ];
        for (file, data, mode) in &files {
            inroot::write_file(run, &format!("/host/userdb/{file}"), data.as_bytes(), *mode)?;
        }
        let dir =
            inroot::open_dir(run, "/host/userdb").ctx(|| "cannot open /run/host/userdb".into())?;
        for (link, to) in [
            (format!("{id}.user"), format!("{}.user", u.name)),
            (format!("{id}.group"), format!("{}.group", u.group)),
            (
                format!("{id}.user-privileged"),
                format!("{}.user-privileged", u.name),
            ),
        ] {
            nix::unistd::symlinkat(to.as_str(), &dir, link.as_str())
                .ctx(|| format!("cannot create /run/host/userdb/{link}"))?;
        }
    }
    Ok(())
}

/// A JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u32, host: u32) -> BoundUser {
        BoundUser {
            name: "u".into(),
            group: "u".into(),
            host_uid: host,
            host_gid: host + 1,
            id,
            home: "/home/u".into(),
        }
    }

    #[test]
    fn maps_with_holes() {
        let r = Range {
            base: 425984000,
            size: 65536,
        };
        assert_eq!(
            map_lines(&r, &[user(60514, 1500)], |u| u.host_uid),
            "0 425984000 60514\n60514 1500 1\n60515 426044515 5021\n"
        );
        assert_eq!(
            map_lines(&r, &[user(60514, 1500), user(60515, 1600)], |u| u.host_gid),
            "0 425984000 60514\n60514 1501 1\n60515 1601 1\n60516 426044516 5020\n"
        );
        assert_eq!(map_lines(&r, &[], |u| u.host_uid), "0 425984000 65536\n");
        assert_eq!(json("a\"b"), "\"a\\\"b\"");
    }
    /// The host's getent, as the runner runs it: root is there, a name
    /// NSS does not know is told apart from a failed lookup, and a name
    /// getent would take for an option or an id is no user.
    #[test]
    fn getent_finds_root_and_no_stranger() {
        let getent = getent().expect("getent(1)");
        let root = account(getent, "root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!((root.group.as_str(), root.home.as_str()), ("root", "/root"));
        assert_eq!(account(getent, "no-such-user-nspawn-rs"), Some(None));
        assert_eq!(account(getent, "--help"), Some(None));
        assert_eq!(account(getent, "0"), Some(None));
    }
}
