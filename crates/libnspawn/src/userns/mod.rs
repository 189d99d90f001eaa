//! The container's user namespace (`--private-users`, `-U`): which host
//! ids root inside maps to, how the tree's ownership is made to fit, and
//! writing the maps from outside (user_namespaces(7): only a process with
//! CAP_SETUID in the parent namespace may map a range other than its own
//! ids, so the runner writes them right after `clone3`).

pub mod bind_user;
pub mod binds;
mod chown;
pub mod overlay;
pub mod record;

use crate::error::{Context, Error, Result};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
// The only `Invalid` error `idmapped_tree` returns: the file system
// cannot do it (`auto` then shifts the tree instead).
use Error::Invalid as Unsupported;

/// The size of the range every mode but `BASE:RANGE` gives, and the least
/// we accept: a guest's `nobody` is 65534.
pub const RANGE: u32 = 0x10000;
/// Where `pick` looks, as the reference (`UID_SHIFT_PICK_MIN/MAX`).
const PICK_MIN: u32 = 0x0008_0000;
const PICK_MAX: u32 = 0x6FFF_0000;

/// `--private-users=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    No,
    /// The range starts at the owner of the tree's root directory.
    Yes,
    /// A free range, first tried where the machine name hashes to.
    Pick,
    /// 0..65536 onto itself: a namespace, not a shift.
    Identity,
    Fixed {
        base: u32,
        size: u32,
    },
}

/// `--private-users-ownership=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    #[default]
    Off,
    Chown,
    Map,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsernsSettings {
    pub mode: Mode,
    pub ownership: Ownership,
    /// `--bind-user=`: host users to make visible inside.
    pub bind_users: Vec<String>,
}

impl UsernsSettings {
    pub fn enabled(&self) -> bool {
        self.mode != Mode::No
    }
}

impl Mode {
    /// `no|yes|pick|identity|BASE[:RANGE]` (and the booleans), as the reference.
    pub fn parse(s: &str) -> Result<Mode> {
        let bad = || Error::invalid(format!("Failed to parse --private-users= argument: {s}"));
        Ok(match s {
            "pick" => Mode::Pick,
            "identity" => Mode::Identity,
            _ => match crate::unitfile::parse_boolean(s) {
                Some(true) => Mode::Yes,
                Some(false) => Mode::No,
                None => {
                    let (b, r) = s.split_once(':').unwrap_or((s, "65536"));
                    let base: u32 = b.parse().map_err(|_| bad())?;
                    let size: u32 = r.parse().map_err(|_| bad())?;
                    if size == 0 || base.checked_add(size).is_none() {
                        return Err(Error::invalid(format!(
                            "UID range cannot be empty or go beyond {}: {s}",
                            u32::MAX
                        )));
                    }
                    if size < RANGE {
                        return Err(Error::invalid(format!(
                            "--private-users={s}: the range is too small, at least {RANGE} ids are needed"
                        )));
                    }
                    Mode::Fixed { base, size }
                }
            },
        })
    }
}

impl Ownership {
    pub fn parse(s: &str) -> Result<Ownership> {
        Ok(match s {
            "off" | "no" => Ownership::Off,
            "chown" => Ownership::Chown,
            "map" => Ownership::Map,
            "auto" => Ownership::Auto,
            _ => {
                return Err(Error::invalid(format!(
                    "Failed to parse --private-users-ownership= argument: {s}"
                )))
            }
        })
    }
}

/// A range of host ids; container id 0 is `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub base: u32,
    pub size: u32,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.base as u64 + self.size as u64
    }

    pub fn overlaps(&self, o: &Range) -> bool {
        (self.base as u64) < o.end() && (o.base as u64) < self.end()
    }

    pub fn contains(&self, id: u32) -> bool {
        id >= self.base && (id as u64) < self.end()
    }

    /// The line for `/proc/PID/uid_map` and `gid_map`.
    pub fn map_line(&self) -> String {
        format!("0 {} {}\n", self.base, self.size)
    }
}

/// The owner of the tree's root directory, as `(uid, gid)`.
pub fn tree_owner(directory: &Path) -> Result<(u32, u32)> {
    let m = std::fs::metadata(directory).ctx(|| format!("cannot stat {}", directory.display()))?;
    Ok((m.uid(), m.gid()))
}

/// The range `yes` takes from the tree: its root's owner, rounded down to
/// 64K as the reference does; the group must agree.
pub fn range_from_tree(directory: &Path) -> Result<Range> {
    let (uid, gid) = tree_owner(directory)?;
    let base = uid & 0xFFFF_0000;
    if gid & 0xFFFF_0000 != base {
        return Err(Error::invalid(format!(
            "UID and GID base of {} don't match",
            directory.display()
        )));
    }
    Ok(Range { base, size: RANGE })
}

/// Where `pick` starts looking for a machine: a hash of its name (FNV-1a),
/// so a machine tends to get the same range every time.
pub fn pick_start(machine: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in machine.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    let slots = (PICK_MAX - PICK_MIN) / RANGE + 1;
    PICK_MIN + (h % slots) * RANGE
}

/// The candidates `pick` tries, from the hashed start round the window.
pub fn pick_candidates(machine: &str) -> impl Iterator<Item = Range> {
    let slots = (PICK_MAX - PICK_MIN) / RANGE + 1;
    let first = (pick_start(machine) - PICK_MIN) / RANGE;
    (0..slots).map(move |i| Range {
        base: PICK_MIN + ((first + i) % slots) * RANGE,
        size: RANGE,
    })
}

/// Host users and groups (`/etc/passwd`, `/etc/group`) whose ids fall in
/// `r`: a container root there could act as them on shared files.
pub fn host_ids_in(r: &Range) -> Option<(String, u32)> {
    for file in ["/etc/passwd", "/etc/group"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let Some(id) = f.get(2).and_then(|v| v.parse::<u32>().ok()) {
                // The kernel's overflow ids are nobody's files.
                if r.contains(id) && id != 65534 {
                    return Some((f[0].to_string(), id));
                }
            }
        }
    }
    None
}

/// How the tree's files are made to fit the range, once decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The tree is owned by the range already (or the user said `off`).
    AsIs,
    /// An idmapped mount of the tree.
    Map,
    /// An idmapped mount where the file system supports it, else `Chown`
    /// (`auto`).
    MapOrChown,
    /// Shift the tree on disk.
    Chown,
}

/// The user namespace of a machine, reserved before anything is created.
pub struct Prepared {
    pub record: record::Held,
    fit: Fit,
    /// `--bind-user`: the host users, with their ids inside.
    pub users: Vec<bind_user::BoundUser>,
}

impl Prepared {
    /// A killed runner's range record, taken over by its reaper: only its
    /// release is left to do.
    pub fn adopted(record: record::Held) -> Prepared {
        Prepared {
            record,
            fit: Fit::AsIs,
            users: vec![],
        }
    }
}

/// Reserve the range and decide the ownership mode; `None` without a user
/// namespace. Nothing on disk is touched, so an error leaves nothing.
/// `image`: the tree is a disk image's (`-i`), mounted per run: its files
/// are mapped (`idmap_image`) or left as they are, never shifted on disk.
pub fn prepare(
    s: &UsernsSettings,
    directory: &Path,
    machine: &str,
    image: bool,
) -> Result<Option<Prepared>> {
    if !s.enabled() {
        return Ok(None);
    }
    let held = record::reserve(s.mode, directory, machine)?;
    let decided = match image {
        true => image_fit(s.ownership),
        false => fit(s.ownership, held.range, directory),
    };
    let checked = decided.and_then(|fit| {
        let read = |p: &str| -> Result<String> {
            let tree = std::fs::File::open(directory)
                .ctx(|| format!("cannot open {}", directory.display()))?;
            let data = crate::inroot::read_file(std::os::fd::AsFd::as_fd(&tree), p)?;
            Ok(String::from_utf8_lossy(&data.unwrap_or_default()).into_owned())
        };
        let users = match s.bind_users.is_empty() {
            true => vec![],
            false => bind_user::resolve(
                &s.bind_users,
                &held.range,
                &read("/etc/passwd")?,
                &read("/etc/group")?,
            )?,
        };
        Ok((fit, users))
    });
    match checked {
        Ok((fit, users)) => Ok(Some(Prepared {
            record: held,
            fit,
            users,
        })),
        Err(e) => {
            held.release();
            Err(e)
        }
    }
}

/// An image's file systems are mapped, or left alone with `off`; a
/// `chown` would write the image.
fn image_fit(ownership: Ownership) -> Result<Fit> {
    match ownership {
        Ownership::Off => Ok(Fit::AsIs),
        Ownership::Chown => Err(Error::invalid(
            "--private-users-ownership=chown cannot shift the files of an image: use map",
        )),
        Ownership::Auto | Ownership::Map => Ok(Fit::Map),
    }
}

fn fit(ownership: Ownership, r: Range, directory: &Path) -> Result<Fit> {
    let (uid, _) = tree_owner(directory)?;
    let dir = directory.display();
    let end = r.end() - 1;
    let aligned = r.base.is_multiple_of(RANGE);
    let mappable = (uid as u64) < r.size as u64;
    let unaligned = || {
        Error::invalid(format!(
            "cannot shift {dir} to UID {}: the base must be a multiple of 65536",
            r.base
        ))
    };
    match ownership {
        Ownership::Off | Ownership::Auto | Ownership::Chown if r.contains(uid) => Ok(Fit::AsIs),
        // Ids keep their low 16 bits (chown.rs), as in the reference.
        Ownership::Chown if !aligned => Err(unaligned()),
        Ownership::Chown => Ok(Fit::Chown),
        // An idmapped mount shows on-disk id N as container id N.
        Ownership::Map if mappable => Ok(Fit::Map),
        Ownership::Auto if mappable && aligned => Ok(Fit::MapOrChown),
        Ownership::Auto if mappable => Ok(Fit::Map),
        Ownership::Auto if aligned => Ok(Fit::Chown),
        Ownership::Auto => Err(unaligned()),
        Ownership::Map => Err(Error::invalid(format!(
            "{dir} is owned by UID {uid}, which an idmapped mount cannot map into {}..{end}",
            r.base
        ))),
        _ => Err(Error::invalid(format!(
            "{dir} is owned by UID {uid}, outside the container's range {}..{end} (use --private-users-ownership=map)",
            r.base
        ))),
    }
}

impl Prepared {
    /// The runner's part right after `clone3` and `write_maps`, while the
    /// child waits: with `map` a detached idmapped mount of the tree for
    /// the child to attach (mount_setattr(2): only who may mount the file
    /// system may idmap it, so the child inside its namespace cannot);
    /// with `chown` (or `auto` on a file system that cannot idmap) the
    /// tree shifted on disk.
    pub fn start(
        &self,
        pid: libc::pid_t,
        directory: &Path,
        interrupted: &dyn Fn() -> Result<()>,
    ) -> Result<Option<std::os::fd::OwnedFd>> {
        let base = self.record.range.base;
        match self.fit {
            Fit::AsIs => Ok(None),
            Fit::Chown => chown::shift_tree(directory, base, interrupted).map(|_| None),
            Fit::Map => idmapped_tree(pid, directory).map(Some),
            Fit::MapOrChown => match idmapped_tree(pid, directory) {
                Ok(t) => Ok(Some(t)),
                Err(Unsupported(_)) => {
                    chown::shift_tree(directory, base, interrupted).map(|_| None)
                }
                Err(e) => Err(e),
            },
        }
    }
}

impl Prepared {
    /// With `map`, make the image's detached mounts (not attached yet:
    /// the child attaches them once it has its maps) show their files
    /// through the maps of `pid`'s user namespace.
    pub fn idmap_image(
        &self,
        pid: libc::pid_t,
        mounted: &crate::disk::attach::Mounted,
    ) -> Result<()> {
        if self.fit != Fit::Map {
            return Ok(());
        }
        let ns = container_userns(pid)?;
        let parts = mounted.parts.iter().map(|(d, fd)| (d.name(), fd));
        for (what, fd) in std::iter::once(("root", &mounted.root)).chain(parts) {
            idmap(
                fd.as_fd(),
                ns.as_fd(),
                &format!("the image's {what} partition"),
            )?;
        }
        Ok(())
    }
}

fn container_userns(pid: libc::pid_t) -> Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .ctx(|| "cannot open the container's user namespace".into())
}

/// Idmap the detached mount `fd` of `what` with the user namespace `ns`.
fn idmap(fd: BorrowedFd, ns: BorrowedFd, what: &str) -> Result<()> {
    crate::sys::mount_setattr_idmap(fd, ns).map_err(|e| match e {
        nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP => Unsupported(format!(
            "cannot map the ownership of {what}: its file system does not support idmapped mounts"
        )),
        e => Error::Os {
            what: format!("cannot make an idmapped mount of {what}"),
            errno: e,
        },
    })
}

/// A detached idmapped mount of `directory` with the maps of `pid`'s user
/// namespace.
fn idmapped_tree(pid: libc::pid_t, directory: &Path) -> Result<std::os::fd::OwnedFd> {
    let dir = directory.display();
    let tree = crate::sys::open_tree_clone(directory)
        .ctx(|| format!("cannot clone the mount of {dir}"))?;
    let ns = container_userns(pid)?;
    idmap(tree.as_fd(), ns.as_fd(), &dir.to_string())?;
    Ok(tree)
}

/// One line of a uid or gid map (user_namespaces(7)): `size` ids from
/// `container` inside are `host` onward outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// An OCI bundle's `linux.uidMappings` and `gidMappings`, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<IdMap>,
    pub gid: Vec<IdMap>,
}

impl IdMaps {
    /// The host id container id `id` maps to in `maps`.
    pub fn host_of(maps: &[IdMap], id: u32) -> Option<u32> {
        maps.iter()
            .find(|m| id >= m.container && id - m.container < m.size)
            .map(|m| m.host + (id - m.container))
    }

    /// Write them for `pid`, as `write_maps` does ours.
    pub fn write(&self, pid: libc::pid_t) -> Result<()> {
        let lines = |maps: &[IdMap]| -> String {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
                .collect()
        };
        for (f, text) in [("uid_map", lines(&self.uid)), ("gid_map", lines(&self.gid))] {
            let path = format!("/proc/{pid}/{f}");
            std::fs::write(&path, text).ctx(|| format!("cannot write {path}"))?;
        }
        Ok(())
    }
}

/// Write the maps of the process `pid` (just cloned into its namespace,
/// waiting for us). The gid map is written by a privileged process, so
/// `setgroups` may stay allowed (user_namespaces(7), "Interaction with
/// system calls changing process UIDs or GIDs").
/// `users`: the `--bind-user` ids, cut out of the range (bind_user.rs).
pub fn write_maps(pid: libc::pid_t, r: &Range, users: &[bind_user::BoundUser]) -> Result<()> {
    let uid = bind_user::map_lines(r, users, |u| u.host_uid);
    let gid = bind_user::map_lines(r, users, |u| u.host_gid);
    for (f, lines) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{f}");
        std::fs::write(&path, lines).ctx(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("no").unwrap(), Mode::No);
        assert_eq!(Mode::parse("yes").unwrap(), Mode::Yes);
        assert_eq!(Mode::parse("pick").unwrap(), Mode::Pick);
        assert_eq!(Mode::parse("identity").unwrap(), Mode::Identity);
        assert_eq!(
            Mode::parse("1000000").unwrap(),
            Mode::Fixed {
                base: 1000000,
                size: 65536
            }
        );
        assert_eq!(
            Mode::parse("1000000:131072").unwrap(),
            Mode::Fixed {
                base: 1000000,
                size: 131072
            }
        );
        for bad in ["", "x", "1:", "1:0", "1:100", "4294967295:65536", "-1"] {
            assert!(Mode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Ownership::parse("map").unwrap(), Ownership::Map);
        assert!(Ownership::parse("bogus").is_err());
    }

    #[test]
    fn ranges() {
        let a = Range {
            base: 65536,
            size: 65536,
        };
        assert!(a.overlaps(&Range {
            base: 131071,
            size: 65536
        }));
        assert!(!a.overlaps(&Range {
            base: 131072,
            size: 65536
        }));
        assert!(!a.overlaps(&Range {
            base: 0,
            size: 65536
        }));
        assert_eq!(a.map_line(), "0 65536 65536\n");
    }

    #[test]
    fn picks() {
        let s = pick_start("debian12");
        assert_eq!(s % RANGE, 0);
        assert!((PICK_MIN..=PICK_MAX).contains(&s));
        assert_eq!(s, pick_start("debian12"));
        let all: Vec<Range> = pick_candidates("x").collect();
        assert_eq!(all.len() as u32, (PICK_MAX - PICK_MIN) / RANGE + 1);
        assert!(all.iter().all(|r| (PICK_MIN..=PICK_MAX).contains(&r.base)));
    }
}
