//! `copy-to`, `copy-from`, `bind`: files between the host and a running
//! machine. A forked child joins the machine's mount namespace (so paths
//! inside resolve in its root, symlinks and all) while holding descriptors
//! opened on the host side first; the copy then works descriptor to
//! descriptor and never follows a symlink on the receiving side.

use crate::machine;
use clap::Args;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

#[derive(Args)]
pub struct CopyArgs {
    #[arg(value_name = "NAME")]
    name: String,
    #[arg(value_name = "SOURCE")]
    source: String,
    #[arg(value_name = "DESTINATION")]
    dest: Option<String>,
    /// Create the destination's parent directories
    #[arg(long)]
    mkdir: bool,
}

#[derive(Args)]
pub struct BindArgs {
    #[arg(value_name = "NAME")]
    name: String,
    #[arg(value_name = "SOURCE")]
    source: String,
    #[arg(value_name = "DESTINATION")]
    dest: Option<String>,
    /// Read-only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Create the destination if missing
    #[arg(long)]
    mkdir: bool,
}

pub enum Direction {
    To,
    From,
}

fn split(p: &str) -> Result<(&str, &str), String> {
    if !p.starts_with('/') {
        return Err(format!("Path {p} is not absolute"));
    }
    let p = p.trim_end_matches('/');
    let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("Path {p} has no file name"));
    }
    Ok((if parent.is_empty() { "/" } else { parent }, name))
}

fn open_dir(p: &str, mkdir: bool) -> Result<OwnedFd, String> {
    if mkdir {
        std::fs::create_dir_all(p).map_err(|e| format!("cannot create {p}: {e}"))?;
    }
    nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {p}: {}", e.desc()))
}

/// Join the machine's mount namespace, and its user namespace if it has
/// one of its own (joining one's own is EINVAL): then as its root, so
/// what we write is the machine root's (the tree may be idmapped, where
/// our host uid 0 has no id at all).
fn enter_mounts(leader: &OwnedFd, as_root_inside: bool) -> Result<(), Errno> {
    let fd = leader.as_raw_fd();
    // SAFETY: setns with a valid pidfd.
    if as_root_inside && unsafe { libc::setns(fd, libc::CLONE_NEWNS | libc::CLONE_NEWUSER) } == 0 {
        JOINED_USERNS.store(true, std::sync::atomic::Ordering::Relaxed);
        let (u, g) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        nix::unistd::setresgid(g, g, g)?;
        nix::unistd::setgroups(&[])?;
        return nix::unistd::setresuid(u, u, u);
    }
    match as_root_inside.then(Errno::last) {
        // SAFETY: as above.
        None | Some(Errno::EINVAL) => {
            Errno::result(unsafe { libc::setns(fd, libc::CLONE_NEWNS) }).map(drop)
        }
        Some(e) => Err(e),
    }
}

/// `copy-from` a machine with a user namespace: its root's range on the
/// host, `(base, size)`; ids in it go back to what they are inside, so
/// root's files are root's on the host too (as machinectl does).
static SHIFT_BACK: std::sync::Mutex<Option<(u32, u32)>> = std::sync::Mutex::new(None);

/// The first line of the leader's uid map, if it is a shifted range.
fn machine_range(leader: i32) -> Option<(u32, u32)> {
    let map = std::fs::read_to_string(format!("/proc/{leader}/uid_map")).ok()?;
    let f: Vec<u32> = map
        .lines()
        .next()?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    match f[..] {
        [0, base, size] if base != 0 => Some((base, size)),
        _ => None,
    }
}

fn shift_back(id: u32) -> u32 {
    match *SHIFT_BACK.lock().unwrap() {
        Some((base, size)) if id >= base && id - base < size => id - base,
        _ => id,
    }
}

/// Set by `enter_mounts` when it joined the machine's user namespace:
/// host ids outside the machine's range then read as the overflow id.
static JOINED_USERNS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Run `f` in a child that has joined the machine's mount namespace (with
/// `as_root_inside`, as root of its user namespace if it has one).
fn in_machine(
    leader: &OwnedFd,
    as_root_inside: bool,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    // SAFETY: single-threaded; the child only does the copy and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {}", e.desc()))? {
        nix::unistd::ForkResult::Child => {
            let code = if enter_mounts(leader, as_root_inside).is_err() {
                eprintln!(
                    "nspawnctl: cannot enter the machine: {}",
                    Errno::last().desc()
                );
                1
            } else {
                match f() {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("nspawnctl: {e}");
                        1
                    }
                }
            };
            // SAFETY: leave without our parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            _ => Err(String::new()),
        },
    }
}

pub fn copy(a: CopyArgs, dir: Direction) -> Result<i32, String> {
    let r = machine::get(&a.name)?;
    let leader = machine::leader(&r)?;
    let dest = a.dest.clone().unwrap_or_else(|| a.source.clone());
    let (sp, sn) = split(&a.source)?;
    let (dp, dn) = split(&dest)?;
    let (sn, dn) = (sn.to_string(), dn.to_string());
    let result = match dir {
        Direction::To => {
            let src = open_dir(sp, false)?;
            let (dp, mkdir) = (dp.to_string(), a.mkdir);
            in_machine(&leader, true, move || {
                let dst = open_dir(&dp, mkdir)?;
                copy_entry(src.as_fd(), &sn, dst.as_fd(), &dn)
            })
        }
        Direction::From => {
            let dst = open_dir(dp, a.mkdir)?;
            let sp = sp.to_string();
            let range = machine_range(r.leader);
            in_machine(&leader, false, move || {
                *SHIFT_BACK.lock().unwrap() = range;
                let src = open_dir(&sp, false)?;
                copy_entry(src.as_fd(), &sn, dst.as_fd(), &dn)
            })
        }
    };
    match result {
        Ok(()) => Ok(0),
        // The child said what went wrong.
        Err(e) if e.is_empty() => Ok(1),
        Err(e) => Err(e),
    }
}

/// Copy `sname` in `sdir` to `dname` in `ddir`: files, directories,
/// symlinks and special files, with owner, mode and times. The
/// destination must not exist.
fn copy_entry(sdir: BorrowedFd, sname: &str, ddir: BorrowedFd, dname: &str) -> Result<(), String> {
    let st = fstatat(sdir, sname, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| format!("cannot stat {sname}: {}", e.desc()))?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let kind = st.st_mode & libc::S_IFMT;
    let err = |what: &str, e: Errno| format!("cannot {what} {dname}: {}", e.desc());
    match kind {
        libc::S_IFDIR => {
            mkdirat(ddir, dname, Mode::from_bits_truncate(0o700)).map_err(|e| err("create", e))?;
            let s = nix::fcntl::openat(
                sdir,
                sname,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err("open", e))?;
            let d = nix::fcntl::openat(
                ddir,
                dname,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err("open", e))?;
            let mut entries = nix::dir::Dir::from_fd(s.try_clone().map_err(|e| e.to_string())?)
                .map_err(|e| err("read", e))?;
            let names: Vec<String> = entries
                .iter()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "." && n != "..")
                .collect();
            for n in names {
                copy_entry(s.as_fd(), &n, d.as_fd(), &n)?;
            }
        }
        libc::S_IFREG => {
            let s = nix::fcntl::openat(
                sdir,
                sname,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err("open", e))?;
            let d = nix::fcntl::openat(
                ddir,
                dname,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| err("create", e))?;
            let mut sf = std::fs::File::from(s);
            let mut df = std::fs::File::from(d);
            std::io::copy(&mut sf, &mut df).map_err(|e| format!("cannot copy to {dname}: {e}"))?;
        }
        libc::S_IFLNK => {
            let target = nix::fcntl::readlinkat(sdir, sname).map_err(|e| err("read link", e))?;
            nix::unistd::symlinkat(target.as_os_str(), ddir, dname)
                .map_err(|e| err("create", e))?;
        }
        _ => {
            nix::sys::stat::mknodat(
                ddir,
                dname,
                nix::sys::stat::SFlag::from_bits_truncate(kind),
                mode,
                st.st_rdev,
            )
            .map_err(|e| err("create", e))?;
        }
    }
    // A host owner the machine has no id for stays the machine's root.
    let unmapped =
        |id: u32| JOINED_USERNS.load(std::sync::atomic::Ordering::Relaxed) && id == 65534;
    nix::unistd::fchownat(
        ddir,
        dname,
        (!unmapped(st.st_uid)).then(|| shift_back(st.st_uid).into()),
        (!unmapped(st.st_gid)).then(|| shift_back(st.st_gid).into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("chown", e))?;
    if kind != libc::S_IFLNK {
        nix::sys::stat::fchmodat(
            ddir,
            dname,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| err("chmod", e))?;
    }
    let times = [
        nix::sys::time::TimeSpec::new(st.st_atime, st.st_atime_nsec),
        nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    ];
    let _ = nix::sys::stat::utimensat(
        ddir,
        dname,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}

/// `bind`: a detached copy of the host path's mount (open_tree(2)), made
/// read-only if asked, then attached inside the machine (move_mount(2)).
pub fn bind(a: BindArgs) -> Result<i32, String> {
    let r = machine::get(&a.name)?;
    let leader = machine::leader(&r)?;
    let dest = a.dest.clone().unwrap_or_else(|| a.source.clone());
    split(&dest)?;
    if !Path::new(&a.source).is_absolute() {
        return Err(format!("Path {} is not absolute", a.source));
    }
    let tree = libnspawn::sys::open_tree_clone(Path::new(&a.source))
        .map_err(|e| format!("cannot open {}: {}", a.source, e.desc()))?;
    if a.read_only {
        libnspawn::sys::mount_setattr_read_only(tree.as_fd(), true)
            .map_err(|e| format!("cannot make {} read-only: {}", a.source, e.desc()))?;
    }
    let is_dir = Path::new(&a.source).is_dir();
    let mkdir = a.mkdir;
    let result = in_machine(&leader, false, move || {
        if mkdir {
            if is_dir {
                std::fs::create_dir_all(&dest).map_err(|e| format!("cannot create {dest}: {e}"))?;
            } else {
                if let Some(p) = Path::new(&dest).parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
                }
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&dest);
            }
        }
        libnspawn::sys::move_mount_to(tree.as_fd(), Path::new(&dest))
            .map_err(|e| format!("cannot mount {} on {dest}: {}", a.source, e.desc()))?;
        Ok(())
    });
    match result {
        Ok(()) => Ok(0),
        Err(e) if e.is_empty() => Ok(1),
        Err(e) => Err(e),
    }
}
