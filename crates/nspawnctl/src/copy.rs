//! `copy-to`, `copy-from`, `bind`: files between the host and a running
//! machine whose root is not trusted. A forked child joins the machine's
//! mount namespace while holding descriptors opened on the host side
//! first; every path inside is resolved from the machine's root with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (`inroot`), and the
//! copy then works descriptor to descriptor (`Copier`). The threats and
//! the answer to each: docs/design/hostile.md.

use crate::machine;
use clap::Args;
use libnspawn::inroot;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use std::ffi::{CStr, CString};
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

/// A directory on the host side: the host's own path, trusted.
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

/// The machine's root, in a child that has joined its mount namespace
/// (setns(2) made it our root): the base of every lookup inside.
fn machine_root() -> Result<OwnedFd, String> {
    nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open the machine's root: {}", e.desc()))
}

/// A directory inside the machine, resolved by `inroot` (the machine's
/// symlinks, absolute or `..`, stay inside it; /proc magic links, which
/// could name a host file through a process that is not confined yet,
/// are refused), created first with `mkdir`.
fn machine_dir(root: BorrowedFd, p: &str, mkdir: bool) -> Result<OwnedFd, String> {
    if mkdir {
        return inroot::mkdir_p(root, p, 0o755).map_err(|e| e.to_string());
    }
    inroot::open_dir(root, p).map_err(|e| format!("cannot open {p} in the machine: {}", e.desc()))
}

/// Join the machine's mount namespace, and its user namespace if it has
/// one of its own (joining one's own is EINVAL): then as its root, so
/// what we write is the machine root's (the tree may be idmapped, where
/// our host uid 0 has no id at all). True if the user namespace was
/// joined.
fn enter_mounts(leader: &OwnedFd, as_root_inside: bool) -> Result<bool, Errno> {
    let fd = leader.as_raw_fd();
    // SAFETY: setns with a valid pidfd.
    if as_root_inside && unsafe { libc::setns(fd, libc::CLONE_NEWNS | libc::CLONE_NEWUSER) } == 0 {
        let (u, g) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        nix::unistd::setresgid(g, g, g)?;
        nix::unistd::setgroups(&[])?;
        nix::unistd::setresuid(u, u, u)?;
        return Ok(true);
    }
    match as_root_inside.then(Errno::last) {
        // SAFETY: as above.
        None | Some(Errno::EINVAL) => {
            Errno::result(unsafe { libc::setns(fd, libc::CLONE_NEWNS) }).map(|_| false)
        }
        Some(e) => Err(e),
    }
}

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

/// Run `f` in a child that has joined the machine's mount namespace (with
/// `as_root_inside`, as root of its user namespace if it has one; `f` is
/// told whether it joined one). The child is not in the machine's PID
/// namespace, so nothing inside can name it; it is made non-dumpable all
/// the same, as it holds host descriptors.
fn in_machine(
    leader: &OwnedFd,
    as_root_inside: bool,
    f: impl FnOnce(bool) -> Result<(), String>,
) -> Result<(), String> {
    // SAFETY: single-threaded; the child only does the copy and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {}", e.desc()))? {
        nix::unistd::ForkResult::Child => {
            let _ = nix::sys::prctl::set_dumpable(false);
            // Modes are set exactly as asked, not masked.
            nix::sys::stat::umask(Mode::empty());
            let code = match enter_mounts(leader, as_root_inside) {
                Err(e) => {
                    eprintln!("nspawnctl: cannot enter the machine: {}", e.desc());
                    1
                }
                Ok(joined) => match f(joined) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("nspawnctl: {e}");
                        1
                    }
                },
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
    let (sn, dn) = (cstring(sn)?, cstring(dn)?);
    // The host's /proc, to reopen the O_PATH handles of regular files
    // (the machine's /proc, ours after setns, does not show our process).
    let proc = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open /proc: {}", e.desc()))?;
    let source = a.source.clone();
    let result = match dir {
        Direction::To => {
            let src = open_dir(sp, false)?;
            let (dp, mkdir) = (dp.to_string(), a.mkdir);
            in_machine(&leader, true, move |joined| {
                let root = machine_root()?;
                let dst = machine_dir(root.as_fd(), &dp, mkdir)?;
                let mut c = Copier::new(proc, false, joined, None);
                c.top(src.as_fd(), &sn, dst.as_fd(), &dn, &source)
            })
        }
        Direction::From => {
            let dst = open_dir(dp, a.mkdir)?;
            let sp = sp.to_string();
            let range = machine_range(r.leader);
            in_machine(&leader, false, move |_| {
                let root = machine_root()?;
                let src = machine_dir(root.as_fd(), &sp, false)?;
                let mut c = Copier::new(proc, true, false, range);
                c.top(src.as_fd(), &sn, dst.as_fd(), &dn, &source)
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

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("Path {s} contains a NUL byte"))
}

/// How deep a copied tree may go: each level holds two descriptors, and a
/// machine could make a tree deep enough to exhaust them or the stack.
const MAX_DEPTH: u32 = 256;

/// A copy stops before it leaves its destination's file system with less
/// free than this share of its size (1/20, 5%), capped at 1 GiB, and the
/// same share of its inodes: a machine's sparse, growing or endless file,
/// or a million hard links to one big file, cannot fill the host's disk.
const RESERVE_DIVISOR: u64 = 20;
const RESERVE_CAP: u64 = 1 << 30;
/// How much data is written between two checks of the free space.
const CHECK_EVERY: u64 = 16 << 20;

/// One copy, descriptor to descriptor. The source side is walked with
/// `O_NOFOLLOW` from a directory descriptor (a symlink is copied as a
/// symlink, never followed), a regular file is opened only through the
/// `O_PATH` handle whose fstat said regular (a FIFO or device node swapped
/// in between is never opened, so it cannot block us or act on open), and
/// everything on the destination side is created with `O_EXCL` /
/// `mkdirat` / `mknodat` and then changed through its own descriptor,
/// never by name again.
struct Copier {
    /// The host's /proc.
    proc: OwnedFd,
    /// copy-from: the destination is the host (no device nodes, no
    /// set-user-ID or set-group-ID bits out of the machine).
    to_host: bool,
    /// Joined the machine's user namespace: host ids it has no id for show
    /// as the overflow id, and such files stay the machine root's.
    joined_userns: bool,
    /// copy-from a machine with a user namespace: its root's range on the
    /// host, `(base, size)`; ids in it go back to what they are inside, so
    /// root's files are root's on the host too (as machinectl does).
    shift_back: Option<(u32, u32)>,
    /// Whether the destination's top entry was made (and is ours to remove
    /// again if the copy fails).
    made_top: bool,
    unchecked: u64,
}

type Stat = libc::stat;

impl Copier {
    fn new(
        proc: OwnedFd,
        to_host: bool,
        joined_userns: bool,
        shift_back: Option<(u32, u32)>,
    ) -> Copier {
        Copier {
            proc,
            to_host,
            joined_userns,
            shift_back,
            made_top: false,
            unchecked: 0,
        }
    }

    /// Copy `sname` in `sdir` to `dname` in `ddir`, which must not exist;
    /// on failure whatever of `dname` was made is removed again.
    fn top(
        &mut self,
        sdir: BorrowedFd,
        sname: &CStr,
        ddir: BorrowedFd,
        dname: &CStr,
        shown: &str,
    ) -> Result<(), String> {
        let r = self.entry(sdir, sname, ddir, dname, shown, 0);
        if r.is_err() && self.made_top {
            remove(ddir, dname);
        }
        r
    }

    fn entry(
        &mut self,
        sdir: BorrowedFd,
        sname: &CStr,
        ddir: BorrowedFd,
        dname: &CStr,
        shown: &str,
        depth: u32,
    ) -> Result<(), String> {
        let err = |what: &str, e: Errno| format!("cannot {what} {shown}: {}", e.desc());
        if depth > MAX_DEPTH {
            return Err(format!(
                "cannot copy {shown}: more than {MAX_DEPTH} directories deep"
            ));
        }
        let st = fstatat(sdir, sname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| err("stat", e))?;
        let kind = st.st_mode & libc::S_IFMT;
        if self.to_host && (kind == libc::S_IFCHR || kind == libc::S_IFBLK) {
            return Err(format!(
                "cannot copy {shown}: a device node is not copied out of a machine"
            ));
        }
        self.check_space(ddir, 0, shown)?;
        match kind {
            libc::S_IFDIR => {
                let s = nix::fcntl::openat(sdir, sname, DIR_FLAGS, Mode::empty())
                    .map_err(|e| err("open", e))?;
                mkdirat(ddir, dname, Mode::from_bits_truncate(0o700))
                    .map_err(|e| err("create the copy of", e))?;
                self.made_top |= depth == 0;
                let d = nix::fcntl::openat(ddir, dname, DIR_FLAGS, Mode::empty())
                    .map_err(|e| err("open the copy of", e))?;
                for n in names(&s).map_err(|e| err("read", e))? {
                    let shown = format!("{}/{}", shown.trim_end_matches('/'), n.to_string_lossy());
                    self.entry(s.as_fd(), &n, d.as_fd(), &n, &shown, depth + 1)?;
                }
                self.finish(d.as_fd(), &st, shown)
            }
            libc::S_IFREG => {
                let s = self
                    .open_regular(sdir, sname)
                    .map_err(|e| err("open", e))?
                    .ok_or_else(|| {
                        format!("cannot copy {shown}: it was replaced while being copied")
                    })?;
                // What the file holds now: a file growing while we copy is
                // copied as it was when opened.
                let size = nix::sys::stat::fstat(&s)
                    .map_err(|e| err("stat", e))?
                    .st_size as u64;
                self.check_space(ddir, size, shown)?;
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
                .map_err(|e| err("create the copy of", e))?;
                self.made_top |= depth == 0;
                self.data(&s, &d, size, shown)?;
                self.finish(d.as_fd(), &st, shown)
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(sdir, sname).map_err(|e| err("read", e))?;
                nix::unistd::symlinkat(target.as_os_str(), ddir, dname)
                    .map_err(|e| err("create the copy of", e))?;
                self.made_top |= depth == 0;
                self.finish_node(ddir, dname, &st, shown)
            }
            _ => {
                // FIFOs and sockets (and, into a machine, device nodes):
                // made, never opened. Without set-ID bits: chown would
                // clear them anyway, and there is no fchmod on O_PATH.
                nix::sys::stat::mknodat(
                    ddir,
                    dname,
                    nix::sys::stat::SFlag::from_bits_truncate(kind),
                    Mode::from_bits_truncate(st.st_mode & 0o1777),
                    st.st_rdev,
                )
                .map_err(|e| err("create the copy of", e))?;
                self.made_top |= depth == 0;
                self.finish_node(ddir, dname, &st, shown)
            }
        }
    }

    /// A regular file for reading, opened through the `O_PATH` handle that
    /// fstat showed to be one: reopened by its /proc link, not by name.
    /// None if it is no longer one: replaced since we looked (by a FIFO, a
    /// device node, a symlink).
    fn open_regular(&self, dir: BorrowedFd, name: &CStr) -> Result<Option<OwnedFd>, Errno> {
        let path = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        if nix::sys::stat::fstat(&path)?.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(None);
        }
        nix::fcntl::openat(
            &self.proc,
            format!("thread-self/fd/{}", path.as_raw_fd()).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(Some)
    }

    /// Stop before the destination's file system would keep less than its
    /// reserve free, `need` more bytes and one more inode counted.
    fn check_space(&mut self, dir: BorrowedFd, need: u64, shown: &str) -> Result<(), String> {
        self.unchecked = 0;
        let s = nix::sys::statvfs::fstatvfs(dir)
            .map_err(|e| format!("cannot check the free space for {shown}: {}", e.desc()))?;
        let unit = s.fragment_size() as u64;
        let reserve = (s.blocks() as u64 * unit / RESERVE_DIVISOR).min(RESERVE_CAP);
        let avail = s.blocks_available() as u64 * unit;
        // A file system that reports no size (an unlimited tmpfs, some
        // FUSE ones) has nothing to compare with.
        if s.blocks() > 0 && avail < need.saturating_add(reserve) {
            return Err(format!(
                "cannot copy {shown}: the destination would have less than {} MiB free ({} MiB available)",
                reserve >> 20,
                avail >> 20
            ));
        }
        let files = s.files() as u64;
        if files > 0 && (s.files_available() as u64) < files / RESERVE_DIVISOR + 1 {
            return Err(format!(
                "cannot copy {shown}: the destination would have less than 5% of its inodes free"
            ));
        }
        Ok(())
    }

    /// At most `size` bytes of `s` into `d` (to the end of `s` if `size` is
    /// 0: proc and sysfs files say 0 and have data), checking the free space
    /// as it goes. copy_file_range(2) where the file systems allow it.
    fn data(&mut self, s: &OwnedFd, d: &OwnedFd, size: u64, shown: &str) -> Result<(), String> {
        let err = |e: Errno| format!("cannot copy {shown}: {}", e.desc());
        let bounded = size > 0;
        let mut left = if bounded { size } else { u64::MAX };
        let mut in_kernel = bounded;
        let mut buf = vec![0u8; 1 << 17];
        while left > 0 {
            if self.unchecked >= CHECK_EVERY {
                self.check_space(d.as_fd(), 0, shown)?;
            }
            let chunk = left.min(1 << 20) as usize;
            let n = if in_kernel {
                match nix::fcntl::copy_file_range(s, None, d, None, chunk) {
                    Ok(n) => n,
                    Err(Errno::EXDEV | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS) => {
                        in_kernel = false;
                        continue;
                    }
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(err(e)),
                }
            } else {
                let want = chunk.min(buf.len());
                match nix::unistd::read(s, &mut buf[..want]) {
                    Ok(n) => {
                        inroot::write_all(d.as_fd(), &buf[..n]).map_err(err)?;
                        n
                    }
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(err(e)),
                }
            };
            if n == 0 {
                break;
            }
            left -= n as u64;
            self.unchecked += n as u64;
        }
        Ok(())
    }

    /// The owner this copy gives an id: a host id the machine has none for
    /// stays the machine root's; copy-from maps the machine's range back.
    fn id(&self, id: u32) -> Option<u32> {
        if self.joined_userns && id == 65534 {
            return None;
        }
        Some(match self.shift_back {
            Some((base, size)) if id >= base && id - base < size => id - base,
            _ => id,
        })
    }

    /// Owner, mode and times of a copied file or directory, through its
    /// descriptor.
    fn finish(&self, fd: BorrowedFd, st: &Stat, shown: &str) -> Result<(), String> {
        let err = |what: &str, e: Errno| format!("cannot {what} the copy of {shown}: {}", e.desc());
        nix::unistd::fchown(
            fd,
            self.id(st.st_uid).map(Into::into),
            self.id(st.st_gid).map(Into::into),
        )
        .map_err(|e| err("chown", e))?;
        let mut mode = st.st_mode & 0o7777;
        if self.to_host && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            // A program the machine made set-user-ID root is not one on the
            // host (see docs/design/hostile.md).
            mode &= !(libc::S_ISUID | libc::S_ISGID);
        }
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode)).map_err(|e| err("chmod", e))?;
        let _ = nix::sys::stat::futimens(fd, &atime(st), &mtime(st));
        Ok(())
    }

    /// Owner and times of a copied symlink, FIFO, socket or device node,
    /// through an `O_PATH` handle (on the entry itself, never a link's
    /// target).
    fn finish_node(
        &self,
        dir: BorrowedFd,
        name: &CStr,
        st: &Stat,
        shown: &str,
    ) -> Result<(), String> {
        let err = |e: Errno| format!("cannot chown the copy of {shown}: {}", e.desc());
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        nix::unistd::fchownat(
            &fd,
            "",
            self.id(st.st_uid).map(Into::into),
            self.id(st.st_gid).map(Into::into),
            AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err)?;
        let _ = nix::sys::stat::utimensat(
            dir,
            name,
            &atime(st),
            &mtime(st),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
        Ok(())
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn atime(st: &Stat) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(st.st_atime, st.st_atime_nsec)
}

fn mtime(st: &Stat) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}

/// The names in a directory, `.` and `..` left out, as the bytes they are.
fn names(dir: &OwnedFd) -> Result<Vec<CString>, Errno> {
    let mut d = nix::dir::Dir::from_fd(dir.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let mut out = vec![];
    for e in d.iter() {
        let n = e?.file_name().to_owned();
        if n.as_bytes() != b"." && n.as_bytes() != b".." {
            out.push(n);
        }
    }
    Ok(out)
}

/// Remove `name` in `dir` and all below it, never following a symlink:
/// what a failed copy made.
fn remove(dir: BorrowedFd, name: &CStr) {
    use nix::unistd::UnlinkatFlags;
    if nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) != Err(Errno::EISDIR) {
        return;
    }
    if let Ok(d) = nix::fcntl::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        for n in names(&d).unwrap_or_default() {
            remove(d.as_fd(), &n);
        }
    }
    let _ = nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir);
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
    // The mount point is resolved inside the machine (a symlink there is
    // followed inside it, a /proc magic link refused) and the mount put
    // on that descriptor, so a symlink swapped in afterwards changes
    // nothing; move_mount(2) takes no path.
    let result = in_machine(&leader, false, move |_| {
        let root = machine_root()?;
        let target = match (mkdir, is_dir) {
            (true, true) => inroot::mkdir_p(root.as_fd(), &dest, 0o755),
            (true, false) => inroot::touch(root.as_fd(), &dest, 0o644),
            (false, _) => inroot::open(root.as_fd(), &dest, OFlag::O_PATH).map_err(|e| {
                libnspawn::Error::invalid(format!(
                    "cannot open {dest} in the machine: {}",
                    e.desc()
                ))
            }),
        }
        .map_err(|e| e.to_string())?;
        libnspawn::sys::move_mount_onto_fd(tree.as_fd(), target.as_fd())
            .map_err(|e| format!("cannot mount {} on {dest}: {}", a.source, e.desc()))
    });
    match result {
        Ok(()) => Ok(0),
        Err(e) if e.is_empty() => Ok(1),
        Err(e) => Err(e),
    }
}
