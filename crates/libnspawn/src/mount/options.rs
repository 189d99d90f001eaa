//! Mount flags written as options: `ro`, `nosuid`, `noexec`... are flags of
//! mount(2), not data for the file system, which would refuse them
//! ("Invalid argument"). They are taken out of the option string and
//! applied to the flags, in order (`nodev,dev` ends without `MS_NODEV`), and
//! the rest is the file system's data — as mount(8) does and the
//! reference does for `--tmpfs=` and `TemporaryFileSystem=` (systemd's
//! mount_option_mangle(), over libmount's table of file-system-independent
//! options, which the table below follows).

use crate::error::{Error, Result};
use nix::mount::MsFlags;

/// `(word, flag, clears)`: the word sets `flag`, or clears it.
const FLAGS: &[(&str, libc::c_ulong, bool)] = &[
    ("ro", libc::MS_RDONLY, false),
    ("rw", libc::MS_RDONLY, true),
    ("noexec", libc::MS_NOEXEC, false),
    ("exec", libc::MS_NOEXEC, true),
    ("nosuid", libc::MS_NOSUID, false),
    ("suid", libc::MS_NOSUID, true),
    ("nodev", libc::MS_NODEV, false),
    ("dev", libc::MS_NODEV, true),
    ("sync", libc::MS_SYNCHRONOUS, false),
    ("async", libc::MS_SYNCHRONOUS, true),
    ("dirsync", libc::MS_DIRSYNC, false),
    ("silent", libc::MS_SILENT, false),
    ("loud", libc::MS_SILENT, true),
    ("mand", libc::MS_MANDLOCK, false),
    ("nomand", libc::MS_MANDLOCK, true),
    ("noatime", libc::MS_NOATIME, false),
    ("atime", libc::MS_NOATIME, true),
    ("iversion", libc::MS_I_VERSION, false),
    ("noiversion", libc::MS_I_VERSION, true),
    ("nodiratime", libc::MS_NODIRATIME, false),
    ("diratime", libc::MS_NODIRATIME, true),
    ("relatime", libc::MS_RELATIME, false),
    ("norelatime", libc::MS_RELATIME, true),
    ("strictatime", libc::MS_STRICTATIME, false),
    ("nostrictatime", libc::MS_STRICTATIME, true),
    ("lazytime", libc::MS_LAZYTIME, false),
    ("nolazytime", libc::MS_LAZYTIME, true),
    ("nosymfollow", libc::MS_NOSYMFOLLOW, false),
    ("symfollow", libc::MS_NOSYMFOLLOW, true),
];

/// Words of libmount's table that are operations, not flags of a new
/// mount: with them the reference's mount fails (a bind of a source named
/// "tmpfs", a remount, a propagation change with other flags); refused
/// here before anything is created.
const OPERATIONS: &[&str] = &[
    "bind",
    "rbind",
    "remount",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
];

/// Mount flags and the file system's data of an option string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub flags: MsFlags,
    /// `None` when every word was a flag.
    pub data: Option<String>,
}

/// Apply the flag words of `options` to `flags`; the other words, in
/// order, are the data.
pub fn split(options: &str, flags: MsFlags) -> Result<Split> {
    let mut flags = flags.bits();
    let mut data: Vec<&str> = vec![];
    for word in options.split(',').filter(|w| !w.is_empty()) {
        if OPERATIONS.contains(&word) {
            return Err(Error::invalid(format!(
                "mount option {word} cannot be used here"
            )));
        }
        match FLAGS.iter().find(|(w, ..)| *w == word) {
            Some((_, f, false)) => flags |= f,
            Some((_, f, true)) => flags &= !f,
            None => data.push(word),
        }
    }
    Ok(Split {
        flags: MsFlags::from_bits_retain(flags),
        data: (!data.is_empty()).then(|| data.join(",")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_out_data_through() {
        let base = MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME;
        let s = split("mode=0755,nosuid", base).unwrap();
        assert_eq!(s.flags, base | MsFlags::MS_NOSUID);
        assert_eq!(s.data.as_deref(), Some("mode=0755"));
        let s = split("size=1M,suid,dev,noexec,ro", base).unwrap();
        assert_eq!(
            s.flags,
            MsFlags::MS_STRICTATIME | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(s.data.as_deref(), Some("size=1M"));
        // In order: the last word about a flag wins.
        let s = split(
            "nodev,dev,ro,rw,strictatime,nostrictatime",
            MsFlags::empty(),
        )
        .unwrap();
        assert_eq!((s.flags, s.data), (MsFlags::empty(), None));
        let s = split("nosymfollow,lazytime,x-foo,uid=1", MsFlags::empty()).unwrap();
        assert_eq!(s.flags.bits(), libc::MS_NOSYMFOLLOW | libc::MS_LAZYTIME);
        assert_eq!(s.data.as_deref(), Some("x-foo,uid=1"));
        assert!(split("mode=0755,shared", base).is_err());
        assert!(split("bind", base).is_err());
        assert_eq!(split("", base).unwrap().data, None);
    }
}
