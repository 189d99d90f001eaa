//! Judging the differences found against the known deviations, and the
//! report of every one.

use super::compare::Difference;
use super::deviations::Deviation;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub struct Report {
    pub differences: usize,
    pub unlisted: usize,
    /// Unlisted differences and stale deviations; empty when all is well.
    pub failures: String,
    /// Every difference, listed or not.
    pub full: String,
}

/// Every difference in `found` (per case: its differences and how it was
/// run) against `listed`: the unlisted ones, and the listed ones of a case
/// that ran that no longer occur, are failures.
pub fn judge(found: &BTreeMap<&str, (Vec<Difference>, String)>, listed: &[Deviation]) -> Report {
    let mut r = Report {
        differences: 0,
        unlisted: 0,
        failures: String::new(),
        full: String::new(),
    };
    for (case, (diffs, shown)) in found {
        if diffs.is_empty() {
            continue;
        }
        let _ = writeln!(r.full, "{case}:\n{shown}");
        let mut unlisted = String::new();
        for d in diffs {
            r.differences += 1;
            let by = listed.iter().find(|l| l.covers(d));
            let _ = writeln!(
                r.full,
                "  {} {}: {}",
                if by.is_some() { "listed  " } else { "UNLISTED" },
                d.id(),
                d.detail
            );
            if by.is_none() {
                r.unlisted += 1;
                let _ = writeln!(unlisted, "  {}: {}", d.id(), d.detail);
            }
        }
        if !unlisted.is_empty() {
            let _ = write!(
                r.failures,
                "{case}: differences not in deviations.txt:\n{shown}{unlisted}"
            );
        }
    }
    for l in listed {
        let ran = found.contains_key(l.case.as_str());
        let occurs = found.values().any(|(d, _)| d.iter().any(|d| l.covers(d)));
        if ran && !occurs {
            let _ = writeln!(
                r.failures,
                "deviations.txt:{}: {} no longer occurs ({}): remove it, and the README text if it is gone",
                l.line,
                l.id(),
                l.reason
            );
        }
    }
    r
}
