//! What differs between the reference's run of a case and ours. The exit
//! status and the stderr class are compared as they are; the probe's
//! sections relative to each binary's own baseline run: what the case
//! adds to and removes from the baseline must be the same for both. So a
//! difference of the baseline itself (listed once, under `baseline`) is not
//! reported again for every case, and a case that changes the same thing
//! in both passes even where the baselines differ elsewhere.

use super::normalise::Sections;
use std::collections::BTreeMap;

/// How a start ended, judged from its exit status and its stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Exit 0, nothing on stderr.
    Accepted,
    /// Exit 0, something on stderr.
    Warned,
    /// A non-zero exit.
    Refused,
}

impl Class {
    pub fn of(status: i32, stderr: &str) -> Class {
        match (status, stderr.trim().is_empty()) {
            (0, true) => Class::Accepted,
            (0, false) => Class::Warned,
            _ => Class::Refused,
        }
    }
}

/// One binary's side of a case, normalised.
pub struct Side {
    pub status: i32,
    pub stderr: String,
    pub probe: Option<Sections>,
    /// Normalised stdout, for options that print and exit (`help`).
    pub stdout: String,
}

/// One difference: `CASE/ASPECT:KEY` identifies it for the deviations file
/// (ASPECT is `status`, `class`, `probe`, `stdout` or a probe section; KEY
/// is the first word of the differing line, a mount's target for mounts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub case: String,
    pub aspect: String,
    pub key: String,
    pub detail: String,
}

impl Difference {
    pub fn id(&self) -> String {
        match self.key.is_empty() {
            true => format!("{}/{}", self.case, self.aspect),
            false => format!("{}/{}:{}", self.case, self.aspect, self.key),
        }
    }
}

type Counts = BTreeMap<String, usize>;

fn counts(lines: &[String]) -> Counts {
    let mut m = Counts::new();
    for l in lines {
        *m.entry(l.clone()).or_default() += 1;
    }
    m
}

/// Lines of `a` not matched by one in `b` (multiset difference).
fn minus(a: &Counts, b: &Counts) -> Vec<String> {
    let mut out = vec![];
    for (l, n) in a {
        let m = b.get(l).copied().unwrap_or(0);
        for _ in m..*n {
            out.push(l.clone());
        }
    }
    out
}

fn key(line: &str) -> String {
    line.split_whitespace().next().unwrap_or("").to_string()
}

/// The differences of `case` between `reference` and `ours`; `bases` are
/// (reference, ours) baseline sections, `None` for the baseline itself.
pub fn compare(
    case: &str,
    bases: Option<(&Sections, &Sections)>,
    reference: &Side,
    ours: &Side,
) -> Vec<Difference> {
    let mut out = vec![];
    let mut diff = |aspect: &str, key: String, detail: String| {
        out.push(Difference {
            case: case.to_string(),
            aspect: aspect.to_string(),
            key,
            detail,
        });
    };
    if reference.status != ours.status {
        diff(
            "status",
            String::new(),
            format!("reference exits {}, ours {}", reference.status, ours.status),
        );
    }
    let (rc, oc) = (
        Class::of(reference.status, &reference.stderr),
        Class::of(ours.status, &ours.stderr),
    );
    if rc != oc {
        diff(
            "class",
            String::new(),
            format!(
                "reference {rc:?} ({}), ours {oc:?} ({})",
                first_line(&reference.stderr),
                first_line(&ours.stderr)
            ),
        );
    }
    match (&reference.probe, &ours.probe) {
        (Some(r), Some(o)) => {
            let names: std::collections::BTreeSet<&String> = r.keys().chain(o.keys()).collect();
            let empty = vec![];
            for s in names {
                let (rl, ol) = (r.get(s).unwrap_or(&empty), o.get(s).unwrap_or(&empty));
                match bases {
                    None => {
                        let (rc, oc) = (counts(rl), counts(ol));
                        for l in minus(&rc, &oc) {
                            diff(s, key(&l), format!("reference only: {l}"));
                        }
                        for l in minus(&oc, &rc) {
                            diff(s, key(&l), format!("ours only: {l}"));
                        }
                    }
                    Some((rb, ob)) => {
                        let (rbl, obl) = (rb.get(s).unwrap_or(&empty), ob.get(s).unwrap_or(&empty));
                        let (r_add, r_del) = delta(rbl, rl);
                        let (o_add, o_del) = delta(obl, ol);
                        for (what, rs, os) in
                            [("adds", &r_add, &o_add), ("removes", &r_del, &o_del)]
                        {
                            let (rs, os) = (counts(rs), counts(os));
                            for l in minus(&rs, &os) {
                                diff(s, key(&l), format!("reference {what}: {l}"));
                            }
                            for l in minus(&os, &rs) {
                                diff(s, key(&l), format!("ours {what}: {l}"));
                            }
                        }
                    }
                }
            }
        }
        (Some(_), None) => diff(
            "probe",
            String::new(),
            "the probe ran under the reference only".into(),
        ),
        (None, Some(_)) => diff(
            "probe",
            String::new(),
            "the probe ran under ours only".into(),
        ),
        (None, None) if reference.status == 0 && ours.status == 0 => {
            let r: Vec<String> = reference.stdout.lines().map(str::to_string).collect();
            let o: Vec<String> = ours.stdout.lines().map(str::to_string).collect();
            let (rc, oc) = (counts(&r), counts(&o));
            for l in minus(&rc, &oc) {
                diff("stdout", key(&l), format!("reference only: {l}"));
            }
            for l in minus(&oc, &rc) {
                diff("stdout", key(&l), format!("ours only: {l}"));
            }
        }
        (None, None) => {}
    }
    out
}

/// (added, removed) going from `base` to `case`.
fn delta(base: &[String], case: &[String]) -> (Vec<String>, Vec<String>) {
    let (b, c) = (counts(base), counts(case));
    (minus(&c, &b), minus(&b, &c))
}

pub fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(status: i32, probe: &[(&str, &[&str])]) -> Side {
        Side {
            status,
            stderr: String::new(),
            probe: Some(
                probe
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            ),
            stdout: String::new(),
        }
    }

    #[test]
    fn deltas_cancel_baseline_differences() {
        let rb = side(0, &[("mounts", &["/ ext4", "/sys/fs/cgroup tmpfs"])]);
        let ob = side(0, &[("mounts", &["/ ext4", "/sys/fs/cgroup cgroup2"])]);
        let base = compare("baseline", None, &rb, &ob);
        assert_eq!(base.len(), 2);
        assert_eq!(base[0].id(), "baseline/mounts:/sys/fs/cgroup");
        let r = side(
            0,
            &[(
                "mounts",
                &["/ ext4", "/sys/fs/cgroup tmpfs", "/var tmpfs rw,nosuid"],
            )],
        );
        let o = side(
            0,
            &[(
                "mounts",
                &["/ ext4", "/sys/fs/cgroup cgroup2", "/var tmpfs rw"],
            )],
        );
        let d = compare(
            "tmpfs",
            Some((rb.probe.as_ref().unwrap(), ob.probe.as_ref().unwrap())),
            &r,
            &o,
        );
        let ids: Vec<String> = d.iter().map(|d| d.detail.clone()).collect();
        assert_eq!(
            ids,
            [
                "reference adds: /var tmpfs rw,nosuid",
                "ours adds: /var tmpfs rw"
            ]
        );
        let o = side(1, &[]);
        let d = compare("x", None, &r, &Side { probe: None, ..o });
        assert_eq!(d[0].id(), "x/status");
        assert_eq!(d[1].id(), "x/class");
        assert_eq!(d[2].id(), "x/probe");
    }
}
