//! The one model of what a container should be. The command line and
//! `.nspawn` files fill it; `launch` only reads it.

use crate::error::{Error, Result};
use crate::id128::Id128;
pub use crate::knobs::{ApiVfsWritable, Knobs};
pub use crate::signal::{parse_signal, signal_name};
use std::path::PathBuf;

/// What PID 1 of the container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// The command itself is PID 1 (the reference's default).
    #[default]
    Pid1,
    /// A stub init is PID 1 and the command runs as PID 2 (`--as-pid2`).
    Pid2,
    /// The tree's init is PID 1 (`--boot`).
    Boot,
}

/// How the container's console is connected to ours (`--console=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    Interactive,
    ReadOnly,
    Passive,
    Pipe,
    Autopipe,
}

impl ConsoleMode {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "interactive" => Self::Interactive,
            "read-only" => Self::ReadOnly,
            "passive" => Self::Passive,
            "pipe" => Self::Pipe,
            "autopipe" => Self::Autopipe,
            _ => return Err(Error::invalid(format!("Unknown console mode: {s}"))),
        })
    }

    /// Resolve `autopipe` and the unset default against whether our standard
    /// input and output are terminals, as the reference does.
    pub fn resolve(mode: Option<Self>, tty: bool) -> Self {
        match mode {
            None if tty => Self::Interactive,
            None => Self::ReadOnly,
            Some(Self::Autopipe) if tty => Self::Interactive,
            Some(Self::Autopipe) => Self::Pipe,
            Some(m) => m,
        }
    }

    /// Whether the container gets a pseudo terminal as `/dev/console`.
    pub fn has_pty(self) -> bool {
        !matches!(self, Self::Pipe | Self::Autopipe)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegisterMode {
    Yes,
    No,
    #[default]
    Auto,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The container's root directory, as given (absolute).
    pub directory: PathBuf,
    pub machine: String,
    pub hostname: Option<String>,
    pub uuid: Option<Id128>,
    pub start_mode: StartMode,
    /// The command (or, with `--boot`, the arguments for init).
    pub parameters: Vec<String>,
    /// `NAME=VALUE` pairs from `--setenv`, in order.
    pub setenv: Vec<(String, String)>,
    pub user: Option<String>,
    /// A user by number, with its groups (`--oci-bundle`); `user` wins.
    pub identity: Option<crate::user::Identity>,
    pub chdir: Option<String>,
    pub kill_signal: Option<libc::c_int>,
    pub console: ConsoleMode,
    pub quiet: bool,
    pub keep_unit: bool,
    pub register: RegisterMode,
    pub private_network: bool,
    pub fs: crate::mount::spec::FsSettings,
    /// `-S`: the slice for the machine's cgroup (default machine.slice).
    pub slice: Option<String>,
    /// `--property=`: for the machine's scope unit on systemd hosts.
    pub properties: Vec<crate::systemd::property::Property>,
    pub knobs: Knobs,
    pub security: crate::security::SecuritySettings,
    pub net: crate::net::NetSettings,
    /// `--private-users`, `--private-users-ownership`.
    pub userns: crate::userns::UsernsSettings,
    /// `-i`: the disk image whose root becomes `directory` inside the
    /// container's mount namespace (`disk::MOUNT_POINT`).
    pub image: Option<crate::disk::ImageSpec>,
    /// Kernel parameters of the container's namespaces (`--oci-bundle`'s
    /// `linux.sysctl`), checked by `sysctl::scope`.
    pub sysctl: Vec<(String, String)>,
}

impl Settings {
    /// The signal that asks PID 1 to shut down: `--kill-signal=`, else
    /// SIGRTMIN+3 for a booted init (systemd's "halt") and SIGKILL otherwise.
    pub fn kill_signal(&self) -> libc::c_int {
        match (self.kill_signal, self.start_mode) {
            (Some(sig), _) => sig,
            (None, StartMode::Boot) => libc::SIGRTMIN() + 3,
            (None, _) => libc::SIGKILL,
        }
    }

    /// What the container runs from, as the user named it: the image,
    /// else the tree.
    pub fn origin(&self) -> &std::path::Path {
        match &self.image {
            Some(i) => &i.path,
            None => &self.directory,
        }
    }

    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.machine)
    }
}

/// The rules live with the registry's readers, which the NSS module links
/// alone.
pub use nspawn_registry::{hostname_is_valid, machine_name_is_valid};

/// Turn a directory's base name into a machine name the way the reference
/// does (observed on systemd 252): keep `[A-Za-z0-9.-]`, drop a `.` after
/// the start, a `.` or a `-`, drop a `-` after the start or a `.`, trim a
/// trailing separator, cut to 64 characters.
pub fn machine_name_from_path(name: &str) -> Option<String> {
    let name = name.strip_suffix(".raw").unwrap_or(name);
    let mut out = String::new();
    for c in name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
    {
        let prev = out.chars().last();
        let drop = match c {
            '.' => matches!(prev, None | Some('.') | Some('-')),
            '-' => matches!(prev, None | Some('.')),
            _ => false,
        };
        if !drop {
            out.push(c);
        }
    }
    out.truncate(64);
    while out.ends_with(['.', '-']) {
        out.pop();
    }
    machine_name_is_valid(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        for ok in ["foo", "a", "debian12", "my-host.example", "A1-b2"] {
            assert!(machine_name_is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            ".foo",
            "foo.",
            "-foo",
            "foo-",
            "a..b",
            "a_b",
            "ä",
            &"x".repeat(65),
        ] {
            assert!(!machine_name_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(
            machine_name_from_path("debian12").as_deref(),
            Some("debian12")
        );
        assert_eq!(machine_name_from_path("img.raw").as_deref(), Some("img"));
        for (dir, name) in [
            ("ref-bb_x.y", "ref-bbx.y"),
            ("Ref BB!x", "RefBBx"),
            ("a..b", "a.b"),
            (".hidden", "hidden"),
            ("-leading", "leading"),
            ("ünïcode", "ncode"),
            ("a@b:c", "abc"),
            ("ab-", "ab"),
            ("foo.bar.", "foo.bar"),
            ("a.-b", "a.b"),
            ("a--b", "a--b"),
            ("a-.b", "a-b"),
            ("a_-_b", "a-b"),
        ] {
            assert_eq!(machine_name_from_path(dir).as_deref(), Some(name), "{dir}");
        }
        assert_eq!(machine_name_from_path(&"n".repeat(70)).unwrap().len(), 64);
        for bad in ["---", "___", "...", ".."] {
            assert_eq!(machine_name_from_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn knobs() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Knobs::from_env(env(&[])).unwrap(), Knobs::default());
        let k = Knobs::from_env(env(&[
            ("SYSTEMD_NSPAWN_LOCK", "0"),
            ("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network"),
        ]))
        .unwrap();
        assert!(!k.lock && k.api_vfs_writable == ApiVfsWritable::Network);
        assert!(Knobs::from_env(env(&[("SYSTEMD_NSPAWN_TMPFS_TMP", "maybe")])).is_err());
    }

    #[test]
    fn console_defaults() {
        assert_eq!(ConsoleMode::resolve(None, true), ConsoleMode::Interactive);
        assert_eq!(ConsoleMode::resolve(None, false), ConsoleMode::ReadOnly);
        assert_eq!(
            ConsoleMode::resolve(Some(ConsoleMode::Autopipe), false),
            ConsoleMode::Pipe
        );
        assert!(ConsoleMode::parse("bogus").is_err());
    }
}
