//! The differential harness's payload: prints what a container sees, one
//! `[section]` after another, each line already free of what differs from
//! run to run on its own (mount ids, device numbers of anonymous file
//! systems, pty numbers, peer groups). What differs between runs of the
//! same case (tree paths, random ids, the machine name) is left to the
//! harness, which knows them (`tests/src/compat/normalise.rs`).
//!
//! Built static by `tests/build.rs` with `rustc` alone (std, plus glibc's
//! `syscall(2)` wrapper): it runs in any tree, busybox included.

use std::ffi::c_long;
use std::fmt::Write as _;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

extern "C" {
    fn syscall(num: c_long, ...) -> c_long;
}

/// One section: its name and what prints its lines.
type Section = (&'static str, fn() -> Vec<String>);

fn main() {
    let mut out = String::from("@@probe 1\n");
    let sections: [Section; 18] = [
        ("args", args),
        ("proc", process),
        ("ids", ids),
        ("caps", caps),
        ("security", security),
        ("syscalls", syscalls),
        ("limits", limits),
        ("env", env),
        ("identity", identity),
        ("cgroup", cgroup),
        ("fds", fds),
        ("dev", dev),
        ("net", net),
        ("etc", etc),
        ("run", run),
        ("run-host", run_host),
        ("creds", creds),
        ("mounts", mounts),
    ];
    for (name, f) in sections {
        let _ = writeln!(out, "[{name}]");
        for l in f() {
            let _ = writeln!(out, "{l}");
        }
    }
    print!("{out}");
}

fn read(p: &str) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("{p}: {}", errno_name(e.raw_os_error().unwrap_or(0))))
}

/// `KEY: value` lines of /proc/self/status.
fn status(key: &str) -> String {
    match read("/proc/self/status") {
        Ok(s) => s
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "absent".into()),
        Err(e) => e,
    }
}

fn args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| format!("{a:?}"))
        .collect()
}

fn process() -> Vec<String> {
    let stat = read("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces).
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    vec![
        format!("pid {}", std::process::id()),
        format!("ppid {}", rest.get(1).unwrap_or(&"?")),
        format!(
            "personality {}",
            read("/proc/self/personality").unwrap_or_else(|e| e).trim()
        ),
        format!(
            "oom_score_adj {}",
            read("/proc/self/oom_score_adj")
                .unwrap_or_else(|e| e)
                .trim()
        ),
        format!("cpus {}", status("Cpus_allowed_list")),
        format!(
            "cwd {}",
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| e.to_string())
        ),
        format!("umask {}", status("Umask")),
    ]
}

fn ids() -> Vec<String> {
    let map = |p: &str| match read(p) {
        Ok(s) => s
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => e,
    };
    vec![
        format!("uid {}", status("Uid")),
        format!("gid {}", status("Gid")),
        format!("groups {}", status("Groups")),
        format!("uid_map {}", map("/proc/self/uid_map")),
        format!("gid_map {}", map("/proc/self/gid_map")),
        format!(
            "setgroups {}",
            read("/proc/self/setgroups").unwrap_or_else(|e| e).trim()
        ),
    ]
}

/// capability(7) names by bit, as the kernel numbers them.
const CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

fn cap_names(hex: &str) -> String {
    let Ok(mask) = u64::from_str_radix(hex, 16) else {
        return hex.to_string();
    };
    if mask == 0 {
        return "-".into();
    }
    (0..64)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            CAPS.get(b)
                .map(|n| n.to_string())
                .unwrap_or(format!("cap{b}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn caps() -> Vec<String> {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|k| format!("{k} {}", cap_names(&status(k))))
        .collect()
}

fn security() -> Vec<String> {
    vec![
        format!("no_new_privs {}", status("NoNewPrivs")),
        format!("seccomp {}", status("Seccomp")),
    ]
}

fn errno_name(e: i32) -> String {
    let n = match e {
        0 => "ok",
        1 => "EPERM",
        2 => "ENOENT",
        9 => "EBADF",
        13 => "EACCES",
        14 => "EFAULT",
        22 => "EINVAL",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        _ => return format!("errno{e}"),
    };
    n.to_string()
}

/// System calls made so that they cannot change anything (bad descriptors,
/// null pointers, a bad reboot magic), whose errors still tell the filter
/// and the capabilities apart: EPERM/ENOSYS from the filter or a missing
/// capability, EFAULT/EINVAL/EBADF from the call itself, "ok" for a sync
/// call the filter turned into a no-op (`--suppress-sync`).
fn syscalls() -> Vec<String> {
    // x86-64 numbers; aarch64 has its own (the probe is built for the host).
    #[cfg(target_arch = "x86_64")]
    const CALLS: &[(&str, c_long, [c_long; 4])] = &[
        ("fsync-badfd", 74, [-1, 0, 0, 0]),
        ("fdatasync-badfd", 75, [-1, 0, 0, 0]),
        ("sync_file_range-badfd", 277, [-1, 0, 0, 0]),
        ("clock_settime-null", 227, [0, 0, 0, 0]),
        ("settimeofday-bad", 164, [1, 0, 0, 0]),
        ("swapoff-null", 168, [0, 0, 0, 0]),
        ("reboot-badmagic", 169, [0, 0, 0, 0]),
        ("syslog-size", 103, [10, 0, 0, 0]),
        ("init_module-null", 175, [0, 0, 0, 0]),
        ("keyctl-bad", 250, [-1, 0, 0, 0]),
        ("bpf-bad", 321, [-1, 0, 0, 0]),
        ("acct-badptr", 163, [1, 0, 0, 0]),
        ("ptrace-bad", 101, [-1, 0, 0, 0]),
        ("sethostname-null", 170, [0, 1, 0, 0]),
        ("mount-null", 165, [0, 0, 0, 0]),
        ("unshare-bad", 272, [-1, 0, 0, 0]),
        ("personality-query", 135, [0xffff_ffff, 0, 0, 0]),
        ("mknodat-badfd", 259, [-5, 0, 0, 0]),
        ("open_by_handle_at-badfd", 304, [-5, 0, 0, 0]),
        ("perf_event_open-null", 298, [0, 0, -1, -1]),
        ("kexec_load-bad", 246, [0, 0, 0, -1]),
        ("unknown-999", 999, [0, 0, 0, 0]),
    ];
    #[cfg(target_arch = "aarch64")]
    const CALLS: &[(&str, c_long, [c_long; 4])] = &[
        ("fsync-badfd", 82, [-1, 0, 0, 0]),
        ("fdatasync-badfd", 83, [-1, 0, 0, 0]),
        ("clock_settime-null", 112, [0, 0, 0, 0]),
        ("swapoff-null", 225, [0, 0, 0, 0]),
        ("reboot-badmagic", 142, [0, 0, 0, 0]),
        ("bpf-bad", 280, [-1, 0, 0, 0]),
        ("unknown-999", 999, [0, 0, 0, 0]),
    ];
    // A descriptor fsync(2) refuses (procfs has no fsync: EINVAL), to tell
    // a suppressed sync call from a real one.
    let procfd = fs::File::open("/proc/self/status").ok();
    let fd = procfd
        .as_ref()
        .map(|f| f.as_raw_fd() as c_long)
        .unwrap_or(-1);
    #[cfg(target_arch = "x86_64")]
    let fd_calls = [
        ("fsync-procfd", 74),
        ("fdatasync-procfd", 75),
        ("syncfs-procfd", 306),
    ];
    #[cfg(target_arch = "aarch64")]
    let fd_calls = [
        ("fsync-procfd", 82),
        ("fdatasync-procfd", 83),
        ("syncfs-procfd", 267),
    ];
    let with_fd = fd_calls.iter().map(|(n, nr)| (*n, *nr, [fd, 0, 0, 0]));
    CALLS
        .iter()
        .copied()
        .chain(with_fd)
        .map(|(name, nr, a)| {
            // SAFETY: each call is given arguments that make it fail (or,
            // for personality, only query), never write through a pointer.
            let r = unsafe { syscall(nr, a[0], a[1], a[2], a[3]) };
            let res = match r {
                -1 => errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
                _ => "ok".into(),
            };
            format!("{name} {res}")
        })
        .collect()
}

fn limits() -> Vec<String> {
    match read("/proc/self/limits") {
        Ok(s) => s
            .lines()
            .skip(1)
            .map(|l| {
                // "Max open files  1024  4096  files": the name is the part
                // before the first value column (at offset 26).
                let (name, vals) = l.split_at(l.len().min(26));
                let v: Vec<&str> = vals.split_whitespace().collect();
                format!(
                    "{} {} {}",
                    name.trim().trim_start_matches("Max ").replace(' ', "_"),
                    v.first().unwrap_or(&"?"),
                    v.get(1).unwrap_or(&"?")
                )
            })
            .collect(),
        Err(e) => vec![e],
    }
}

fn env() -> Vec<String> {
    let mut v: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn identity() -> Vec<String> {
    let one = |p: &str| match fs::read(p) {
        Ok(b) => escape(&b),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
    };
    vec![
        format!("hostname {}", one("/proc/sys/kernel/hostname")),
        format!("domainname {}", one("/proc/sys/kernel/domainname")),
        format!("machine-id {}", one("/etc/machine-id")),
        format!(
            "boot_id-readable {}",
            read("/proc/sys/kernel/random/boot_id").is_ok()
        ),
    ]
}

fn cgroup() -> Vec<String> {
    match read("/proc/self/cgroup") {
        Ok(s) => s.lines().map(str::to_string).collect(),
        Err(e) => vec![e],
    }
}

/// Anonymous objects by kind (`pipe:[123]` is a pipe), pty numbers out.
fn fd_target(t: &str) -> String {
    if t.starts_with("pipe:") || t.starts_with("socket:") {
        return t.split(':').next().unwrap_or(t).to_string();
    }
    if t.starts_with("/dev/pts/") {
        return "/dev/pts/N".into();
    }
    t.to_string()
}

fn fds() -> Vec<String> {
    let mut v = vec![];
    let Ok(dir) = fs::read_dir("/proc/self/fd") else {
        return vec!["unreadable".into()];
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(t) = fs::read_link(e.path()) else {
            continue; // the directory's own descriptor, closed by now
        };
        let t = t.to_string_lossy().into_owned();
        if t.starts_with("/proc/") && t.ends_with("/fd") {
            continue;
        }
        v.push((
            name.parse::<u32>().unwrap_or(u32::MAX),
            format!("{name} {}", fd_target(&t)),
        ));
    }
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

fn kind(m: &fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "d"
    } else if t.is_symlink() {
        "l"
    } else if t.is_char_device() {
        "c"
    } else if t.is_block_device() {
        "b"
    } else if t.is_fifo() {
        "p"
    } else if t.is_socket() {
        "s"
    } else {
        "f"
    }
}

fn describe(p: &Path, m: &fs::Metadata) -> String {
    let mut l = format!(
        "{} {} {:04o} {}:{}",
        p.display(),
        kind(m),
        m.permissions().mode() & 0o7777,
        m.uid(),
        m.gid()
    );
    let t = m.file_type();
    if t.is_char_device() || t.is_block_device() {
        let rdev = m.rdev();
        let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
        let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
        // Pseudo terminals (136..143) are numbered per run.
        if (136..=143).contains(&major) {
            let _ = write!(l, " pty");
        } else {
            let _ = write!(l, " {major}:{minor}");
        }
    }
    if t.is_symlink() {
        if let Ok(target) = fs::read_link(p) {
            let _ = write!(l, " -> {}", target.display());
        }
    }
    l
}

/// `/dev`, recursively; not the pty instances or what is in shm/mqueue.
fn dev() -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<String>) {
        let Ok(dir) = fs::read_dir(p) else {
            out.push(format!("{} unreadable", p.display()));
            return;
        };
        let mut entries: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            let Ok(m) = fs::symlink_metadata(&e) else {
                continue;
            };
            let s = e.to_string_lossy();
            let pty = s
                .strip_prefix("/dev/pts/")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if pty {
                continue;
            }
            out.push(describe(&e, &m));
            if m.is_dir() && !["/dev/shm", "/dev/mqueue"].contains(&s.as_ref()) {
                walk(&e, out);
            }
        }
    }
    let mut out = vec![];
    walk(Path::new("/dev"), &mut out);
    out
}

/// The network namespace (its inode, for the harness to tell the host's
/// from a private one) and its interface names (/proc/net/dev follows it).
fn net() -> Vec<String> {
    let ns = fs::read_link("/proc/self/ns/net")
        .map(|l| l.display().to_string())
        .unwrap_or_else(|e| e.to_string());
    let mut v: Vec<String> = match read("/proc/net/dev") {
        Ok(s) => s
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect(),
        Err(e) => vec![e],
    };
    v.sort();
    v.insert(0, format!("namespace {ns}"));
    v
}

fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

/// What a file is: a symlink's target, a file's contents (escaped), or why not.
fn file_state(p: &str) -> String {
    match fs::symlink_metadata(p) {
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
        Ok(m) if m.file_type().is_symlink() => format!(
            "-> {}",
            fs::read_link(p)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        ),
        Ok(m) => {
            let content = match fs::read(p) {
                Ok(b) if b.len() > 4096 => format!("{} bytes", b.len()),
                Ok(b) => escape(&b),
                Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
            };
            format!(
                "{} {:04o} {}",
                kind(&m),
                m.permissions().mode() & 0o7777,
                content
            )
        }
    }
}

fn etc() -> Vec<String> {
    vec![
        format!("resolv.conf {}", file_state("/etc/resolv.conf")),
        format!("localtime {}", file_state("/etc/localtime")),
    ]
}

/// `/run` (not `/run/host`, which has its own section): names and kinds.
fn run() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/run") else {
        return vec!["missing".into()];
    };
    let mut v: Vec<String> = dir
        .flatten()
        .filter(|e| e.file_name() != "host")
        .map(|e| {
            let kind = fs::symlink_metadata(e.path())
                .map(|m| kind(&m))
                .unwrap_or("?");
            format!("{} {kind}", e.file_name().to_string_lossy())
        })
        .collect();
    v.sort();
    v
}

/// `/run/host`: names, kinds, and the small files' contents.
fn run_host() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/run/host") else {
        return vec!["missing".into()];
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            let p = format!("/run/host/{n}");
            match n.as_str() {
                "container-manager" | "container-uuid" => format!("{n} {}", file_state(&p)),
                _ => format!(
                    "{n} {}",
                    fs::symlink_metadata(&p).map(|m| kind(&m)).unwrap_or("?")
                ),
            }
        })
        .collect()
}

fn creds() -> Vec<String> {
    let mut v = vec![format!(
        "CREDENTIALS_DIRECTORY {}",
        std::env::var("CREDENTIALS_DIRECTORY").unwrap_or_else(|_| "unset".into())
    )];
    let dir = "/run/host/credentials";
    match fs::symlink_metadata(dir) {
        Err(e) => v.push(format!(
            "{dir} {}",
            errno_name(e.raw_os_error().unwrap_or(0))
        )),
        Ok(m) => {
            v.push(format!("{dir} {:04o}", m.permissions().mode() & 0o7777));
            let mut names: Vec<String> = fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for n in names {
                v.push(format!("{n} {}", file_state(&format!("{dir}/{n}"))));
            }
        }
    }
    v
}

/// One line of /proc/self/mountinfo.
struct Mount {
    id: u32,
    parent: u32,
    target: String,
    line: String,
}

/// Whether `a` is a proper ancestor directory of `b`.
fn above(a: &str, b: &str) -> bool {
    a != b && (a == "/" || b.strip_prefix(a).is_some_and(|r| r.starts_with('/')))
}

/// Whether something is mounted on top of mount `i` (on its own root).
fn covered(all: &[Mount], i: usize) -> bool {
    all.iter()
        .any(|n| n.parent == all[i].id && n.target == all[i].target)
}

/// Whether a path lookup arrives at mount `i`'s mount point and enters it
/// (or what is stacked on it): its parent is arrived at (or is outside the
/// namespace's table) and not covered there, unless `i` is what covers it;
/// no sibling sits on a directory above its mount point, or on the same
/// one mounted later.
fn arrives(all: &[Mount], i: usize) -> bool {
    let m = &all[i];
    let hidden = all.iter().enumerate().any(|(j, n)| {
        n.parent == m.parent
            && j != i
            && (above(&n.target, &m.target) || (n.target == m.target && j > i))
    });
    if hidden {
        return false;
    }
    match all.iter().position(|p| p.id == m.parent) {
        Some(p) if p != i => arrives(all, p) && (all[p].target == m.target || !covered(all, p)),
        _ => true,
    }
}

/// /proc/self/mountinfo as `TARGET FSTYPE SOURCE ROOT VFS-OPTIONS FS-OPTIONS`,
/// sorted; ids, device numbers and peer groups left out, and so are mounts
/// nothing in the container can reach (`arrives`, `covered`).
fn mounts() -> Vec<String> {
    let text = match read("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let mut all: Vec<Mount> = vec![];
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < sep + 4 || sep < 6 {
            continue;
        }
        let (root, target, vfs) = (f[3], f[4], f[5]);
        let (fstype, source, sb) = (f[sep + 1], f[sep + 2], f[sep + 3]);
        all.push(Mount {
            id: f[0].parse().unwrap_or(0),
            parent: f[1].parse().unwrap_or(0),
            target: target.to_string(),
            line: format!("{target} {fstype} {source} {root} {vfs} {sb}"),
        });
    }
    let mut out: Vec<String> = (0..all.len())
        .filter(|&i| arrives(&all, i) && !covered(&all, i))
        .map(|i| all[i].line.clone())
        .collect();
    out.sort();
    out
}
