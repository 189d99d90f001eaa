//! One record per running machine with a user namespace,
//! `/run/nspawn/userns/NAME` (`BASE SIZE`), so that `pick` and explicit
//! ranges see what other containers hold. As with the network's records
//! (`net/record.rs`): the runner holds `flock(2)` on its record while it
//! lives, the reaper inherits it, and a record nobody holds is stale and
//! swept. Allocation happens under `/run/nspawn/userns.lock`, so
//! containers started at the same moment never get overlapping ranges.

use super::{Mode, Range, RANGE};
use crate::error::{Context, Error, Result};
use crate::lock::{open_locked, Lock};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

const DIR: &str = "/run/nspawn/userns";
const LOCK: &str = "/run/nspawn/userns.lock";

pub struct Held {
    pub range: Range,
    path: PathBuf,
    lock: Lock,
}

fn parse(text: &str) -> Option<Range> {
    let mut it = text.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some(Range {
        base: it.next()??,
        size: it.next()??,
    })
}

/// The ranges of the other live records; stale ones are removed on the way.
fn in_use(except: &Path) -> Vec<(String, Range)> {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return vec![];
    };
    let mut out = vec![];
    for e in entries.flatten() {
        let path = e.path();
        if path == except {
            continue;
        }
        if let Ok(Some(_stale)) = open_locked(&path, false, false) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Some(r) = std::fs::read_to_string(&path).ok().and_then(|t| parse(&t)) {
            out.push((e.file_name().to_string_lossy().into_owned(), r));
        }
    }
    out
}

/// Choose and record the range of `machine` for `mode`.
pub fn reserve(mode: Mode, directory: &Path, machine: &str) -> Result<Held> {
    std::fs::create_dir_all(DIR).ctx(|| format!("cannot create {DIR}"))?;
    let _global = open_locked(Path::new(LOCK), true, true)?
        .ok_or_else(|| Error::invalid(format!("cannot lock {LOCK}")))?;
    let path = PathBuf::from(DIR).join(machine);
    let lock = open_locked(&path, true, false)?
        .ok_or_else(|| Error::invalid(format!("machine '{machine}' is already running")))?;
    let taken = in_use(&path);
    let clash = |r: &Range| {
        taken
            .iter()
            .find(|(_, t)| t.overlaps(r))
            .map(|(n, _)| n.clone())
    };
    let check = |r: Range| -> Result<Range> {
        if let Some(other) = clash(&r) {
            return Err(Error::invalid(format!(
                "UID range {}..{} is in use by machine {other}",
                r.base,
                r.end() - 1
            )));
        }
        // Base 0 is the identity on purpose; any other range must not
        // give root inside the ids of the host's own users.
        if r.base != 0 {
            if let Some((name, id)) = super::host_ids_in(&r) {
                return Err(Error::invalid(format!(
                    "UID range {}..{} overlaps the host's user or group {name} ({id})",
                    r.base,
                    r.end() - 1
                )));
            }
        }
        Ok(r)
    };
    let chosen = (|| -> Result<Range> {
        Ok(match mode {
            Mode::No => return Err(Error::invalid("no user namespace asked for")),
            Mode::Identity => check(Range {
                base: 0,
                size: RANGE,
            })?,
            Mode::Fixed { base, size } => check(Range { base, size })?,
            Mode::Yes => check(super::range_from_tree(directory)?)?,
            Mode::Pick => {
                // A tree shifted before (by chown) keeps its range, as in the
                // reference; otherwise the first free one from the name's hash.
                let (uid, _) = super::tree_owner(directory)?;
                let own = (uid != 0 && uid % RANGE == 0).then_some(Range {
                    base: uid,
                    size: RANGE,
                });
                match own.filter(|r| clash(r).is_none()) {
                    Some(r) => r,
                    None => super::pick_candidates(machine)
                        .find(|r| clash(r).is_none() && super::host_ids_in(r).is_none())
                        .ok_or_else(|| Error::invalid("no free UID range left"))?,
                }
            }
        })
    })();
    let range = match chosen {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    if let Err(e) = lock.write(format!("{} {}\n", range.base, range.size).as_bytes()) {
        let _ = std::fs::remove_file(&path);
        return Err(e).ctx(|| format!("cannot write {}", path.display()));
    }
    Ok(Held { range, path, lock })
}

impl Held {
    /// The record of `machine` that its killed runner left (for its
    /// reaper, which holds the name), once nobody holds it any more.
    pub fn adopt(machine: &str) -> Option<Held> {
        let path = PathBuf::from(DIR).join(machine);
        let lock = crate::lock::take_over(&path, crate::name::DYING_WAIT)?;
        let range = parse(&lock.read().unwrap_or_default()).unwrap_or(Range { base: 0, size: 0 });
        Some(Held { range, path, lock })
    }

    /// The locked descriptor, for the reaper to keep.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock.fd()
    }

    /// Remove the record if it is still this one (a new runner of the
    /// same name has a new file); run by the runner and its reaper alike.
    pub fn release(&self) {
        if self.lock.is_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(
            super::parse("65536 65536\n"),
            Some(super::Range {
                base: 65536,
                size: 65536
            })
        );
        assert_eq!(super::parse("x"), None);
    }
}
