//! `tests/compat/deviations.txt`: the differences we keep on purpose, one
//! a line, as `ID | README PHRASE | REASON`:
//!
//! - `ID` is `CASE`, `CASE/ASPECT` or `CASE/ASPECT:KEY-PREFIX` (see
//!   `compare::Difference::id`); it covers the differences it names.
//! - `README PHRASE` is text of README's "Where we differ" section (where
//!   the deviation is documented for users), compared with runs of
//!   white space collapsed.
//! - `REASON` says why, in a few words.
//!
//! `#` starts a comment line.

use super::compare::Difference;

#[derive(Clone, Debug)]
pub struct Deviation {
    pub line: usize,
    pub case: String,
    pub aspect: Option<String>,
    pub key: Option<String>,
    pub readme: String,
    pub reason: String,
}

impl Deviation {
    pub fn id(&self) -> String {
        let mut s = self.case.clone();
        if let Some(a) = &self.aspect {
            s = format!("{s}/{a}");
        }
        if let Some(k) = &self.key {
            s = format!("{s}:{k}");
        }
        s
    }

    pub fn covers(&self, d: &Difference) -> bool {
        self.case == d.case
            && self.aspect.as_ref().is_none_or(|a| *a == d.aspect)
            && self
                .key
                .as_ref()
                .is_none_or(|k| d.key.starts_with(k.as_str()))
    }
}

pub fn path() -> std::path::PathBuf {
    crate::repo_root().join("tests/compat/deviations.txt")
}

pub fn parse(text: &str) -> Result<Vec<Deviation>, String> {
    let mut out = vec![];
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.splitn(3, '|').map(str::trim).collect();
        if f.len() != 3 || f.iter().any(|x| x.is_empty()) {
            return Err(format!(
                "deviations.txt:{}: want `ID | README PHRASE | REASON`",
                i + 1
            ));
        }
        let (head, key) = match f[0].split_once(':') {
            Some((h, k)) => (h, Some(k.to_string())),
            None => (f[0], None),
        };
        let (case, aspect) = match head.split_once('/') {
            Some((c, a)) => (c.to_string(), Some(a.to_string())),
            None => (head.to_string(), None),
        };
        out.push(Deviation {
            line: i + 1,
            case,
            aspect,
            key,
            readme: f[1].to_string(),
            reason: f[2].to_string(),
        });
    }
    Ok(out)
}

pub fn load() -> Vec<Deviation> {
    let text = std::fs::read_to_string(path()).expect("tests/compat/deviations.txt");
    parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// README's "Where we differ" section, white space collapsed.
pub fn readme_differences() -> String {
    let readme = std::fs::read_to_string(crate::repo_root().join("README.md")).unwrap();
    let start = readme
        .find("## Where we differ")
        .expect("README has a \"Where we differ\" section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map(|i| i + 3).unwrap_or(rest.len());
    collapse(&rest[..end])
}

/// Whether `phrase` is in the README section (as `readme_differences()`).
pub fn documented(section: &str, phrase: &str) -> bool {
    collapse(section).contains(&collapse(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_coverage() {
        let d =
            parse("# c\n\nbaseline/mounts:/sys/fs/cgroup | own cgroup | v2\nx | y | z\n").unwrap();
        assert_eq!(d[0].id(), "baseline/mounts:/sys/fs/cgroup");
        let diff = |case: &str, aspect: &str, key: &str| Difference {
            case: case.into(),
            aspect: aspect.into(),
            key: key.into(),
            detail: String::new(),
        };
        assert!(d[0].covers(&diff("baseline", "mounts", "/sys/fs/cgroup/cpu")));
        assert!(!d[0].covers(&diff("baseline", "mounts", "/proc")));
        assert!(d[1].covers(&diff("x", "status", "")));
        assert!(parse("x | y\n").is_err());
        assert!(documented("a  b\nc", "b c"));
    }
}
