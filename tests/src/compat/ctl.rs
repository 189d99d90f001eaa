//! `nspawnctl` against `machinectl`, for the same machine and image inside
//! a booted Debian guest with systemd-machined (`tests/tests/compat_ctl.rs`):
//! each case is a command line both tools are given, and how much of their
//! answers must agree.

use super::compare::Difference;
use std::collections::{BTreeMap, BTreeSet};

/// How two answers are compared; the exit status always is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Every line (trailing white space aside).
    Output,
    /// `--output=json`: the same values, key for key.
    Json,
    /// `show`'s `KEY=VALUE` lines: the same keys, the same values (`value`).
    Properties,
    /// `status`'s first line, `Label: value` lines and process tree, the
    /// values as `value` has them.
    Labels,
    /// A refusal: the exit status alone.
    Status,
}

/// What of a property's or label's value is compared: times each tool
/// takes at its own moment not at all, or only their shape ("DATE; N
/// ago"); a relative "; N ago" not; the rest whole.
fn value(key: &str, v: &str) -> Option<String> {
    match key {
        "Timestamp" | "TimestampMonotonic" => None,
        "Since" => Some(format!("shape {}", v.contains("; ") && v.ends_with(" ago"))),
        _ => Some(v.split("; ").next().unwrap_or(v).to_string()),
    }
}

#[derive(Clone, Debug)]
pub struct CtlCase {
    pub id: &'static str,
    /// The arguments, as shell words (`{machine}`, `{image}` filled in).
    pub args: &'static str,
    pub compare: Compare,
}

const fn c(id: &'static str, args: &'static str, compare: Compare) -> CtlCase {
    CtlCase { id, args, compare }
}

/// The machine and the image every case is about.
pub const MACHINE: &str = "cmach";
pub const IMAGE: &str = "cimg";

pub fn table() -> Vec<CtlCase> {
    use Compare::*;
    vec![
        c("ctl-list", "list", Output),
        c("ctl-list-no-legend", "list --no-legend", Output),
        c("ctl-list-json", "list --output=json", Json),
        c("ctl-list-json-pretty", "list --output=json-pretty", Json),
        c("ctl-list-all", "list --all --no-legend", Output),
        c("ctl-show", "show {machine}", Properties),
        c(
            "ctl-show-property",
            "show {machine} -p Leader -p Class",
            Properties,
        ),
        c(
            "ctl-show-value",
            "show {machine} -p RootDirectory --value",
            Output,
        ),
        c(
            "ctl-no-pager-first",
            "--no-pager show {machine} -p Name",
            Output,
        ),
        c("ctl-status", "status {machine} --no-pager", Labels),
        c("ctl-status-full", "-l status {machine}", Labels),
        c("ctl-list-images", "list-images", Output),
        c(
            "ctl-list-images-no-legend",
            "list-images --no-legend",
            Output,
        ),
        c("ctl-list-images-json", "list-images --output=json", Json),
        c("ctl-show-image", "show-image {image}", Properties),
        c(
            "ctl-show-image-value",
            "show-image {image} -p Type --value",
            Output,
        ),
        c(
            "ctl-image-status",
            "image-status {image} --no-pager",
            Labels,
        ),
        c("ctl-show-empty-name", "show ''", Status),
        c("ctl-status-empty-name", "status ''", Status),
        c("ctl-show-minus-one", "show -- -1", Status),
        c("ctl-show-unknown", "show nosuch", Status),
        c("ctl-show-image-empty-name", "show-image ''", Status),
        c("ctl-image-status-minus-one", "image-status -- -1", Status),
        c("ctl-show-image-unknown", "show-image nosuch", Status),
        c(
            "ctl-read-only-bogus-bool",
            "read-only {image} bogus",
            Status,
        ),
        c("ctl-list-bogus-output", "list --output=bogus", Status),
        c(
            "ctl-kill-bogus-signal",
            "kill --signal=BOGUS {machine}",
            Status,
        ),
        c("ctl-terminate-unknown", "terminate nosuch", Status),
        c("ctl-poweroff-empty-name", "poweroff ''", Status),
    ]
}

/// What one tool answered: its exit status and standard output.
pub struct Answer {
    pub status: i32,
    pub stdout: String,
}

pub fn compare(case: &CtlCase, machinectl: &Answer, ours: &Answer) -> Vec<Difference> {
    let mut out = vec![];
    let mut diff = |aspect: &str, key: &str, detail: String| {
        out.push(Difference {
            case: case.id.to_string(),
            aspect: aspect.to_string(),
            key: key.to_string(),
            detail,
        })
    };
    if machinectl.status != ours.status {
        diff(
            "status",
            "",
            format!(
                "machinectl exits {}, ours {}",
                machinectl.status, ours.status
            ),
        );
    }
    if machinectl.status != 0 || ours.status != 0 {
        return out;
    }
    let (m, o) = (&machinectl.stdout, &ours.stdout);
    match case.compare {
        Compare::Status => {}
        Compare::Output => {
            let lines =
                |s: &str| -> Vec<String> { s.lines().map(|l| l.trim_end().to_string()).collect() };
            let (ml, ol) = (lines(m), lines(o));
            for (i, (a, b)) in ml.iter().zip(&ol).enumerate() {
                if a != b {
                    diff(
                        "output",
                        &(i + 1).to_string(),
                        format!("machinectl {a:?}, ours {b:?}"),
                    );
                }
            }
            if ml.len() != ol.len() {
                diff(
                    "output",
                    "lines",
                    format!("machinectl {} lines, ours {}", ml.len(), ol.len()),
                );
            }
        }
        Compare::Json => {
            let parse = |s: &str| {
                serde_json::from_str::<serde_json::Value>(s.trim()).map_err(|e| e.to_string())
            };
            match (parse(m), parse(o)) {
                (Ok(a), Ok(b)) => json(&a, &b, &mut diff),
                (a, b) => diff(
                    "json",
                    "",
                    format!("not JSON: machinectl {:?}, ours {:?}", a.err(), b.err()),
                ),
            }
        }
        Compare::Properties => {
            let props = |s: &str| -> BTreeMap<String, String> {
                s.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            pairs(&props(m), &props(o), "property", &mut diff);
        }
        Compare::Labels => {
            let (mf, of) = (
                m.lines().next().unwrap_or(""),
                o.lines().next().unwrap_or(""),
            );
            if mf != of {
                diff("output", "1", format!("machinectl {mf:?}, ours {of:?}"));
            }
            pairs(&labels(m), &labels(o), "label", &mut diff);
            let tree = |s: &str| -> Vec<String> {
                s.lines()
                    .filter(|l| l.starts_with("\t\t"))
                    .map(str::to_string)
                    .collect()
            };
            if tree(m) != tree(o) {
                diff(
                    "tree",
                    "",
                    format!("machinectl {:?}, ours {:?}", tree(m), tree(o)),
                );
            }
        }
    }
    out
}

/// `\tLabel: value` lines (a label continued on the next lines is not).
fn labels(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter(|l| l.starts_with('\t') && !l.starts_with("\t\t"))
        .filter_map(|l| l.trim_start().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The same keys with the same values (as `value` compares them).
fn pairs(
    m: &BTreeMap<String, String>,
    o: &BTreeMap<String, String>,
    aspect: &str,
    diff: &mut impl FnMut(&str, &str, String),
) {
    let keys: BTreeSet<&String> = m.keys().chain(o.keys()).collect();
    for k in keys {
        match (m.get(k), o.get(k)) {
            (Some(a), Some(b)) if value(k, a) != value(k, b) => {
                diff(aspect, k, format!("machinectl {a:?}, ours {b:?}"))
            }
            (Some(a), None) => diff(aspect, k, format!("machinectl only: {a:?}")),
            (None, Some(b)) => diff(aspect, k, format!("ours only: {b:?}")),
            _ => {}
        }
    }
}

fn json(m: &serde_json::Value, o: &serde_json::Value, diff: &mut impl FnMut(&str, &str, String)) {
    use serde_json::Value;
    match (m, o) {
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter().zip(b) {
                json(x, y, diff);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) if x != y => {
                        diff("json", k, format!("machinectl {x}, ours {y}"))
                    }
                    (Some(x), None) => diff("json", k, format!("machinectl only: {x}")),
                    (None, Some(y)) => diff("json", k, format!("ours only: {y}")),
                    _ => {}
                }
            }
        }
        _ if m != o => diff("json", "", format!("machinectl {m}, ours {o}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_labels_and_json() {
        let case = |compare| CtlCase {
            id: "x",
            args: "",
            compare,
        };
        let a = |s: &str| Answer {
            status: 0,
            stdout: s.into(),
        };
        let d = compare(
            &case(Compare::Properties),
            &a("Name=x\nTimestamp=Tue 1\nLimit=infinity\n"),
            &a("Name=x\nTimestamp=Tue 2\nLimit=0\nExtra=1\n"),
        );
        let ids: Vec<String> = d.iter().map(Difference::id).collect();
        assert_eq!(ids, ["x/property:Extra", "x/property:Limit"]);
        let d = compare(
            &case(Compare::Labels),
            &a("n(1)\n\t   Since: Tue 1; 2ms ago\n\t    Root: /a\n\t\t  └─payload\n"),
            &a("n(1)\n\t   Since: Tue 2; 0s ago\n\t    Root: /b\n\t\t  └─payload\n"),
        );
        let ids: Vec<String> = d.iter().map(Difference::id).collect();
        assert_eq!(ids, ["x/label:Root"]);
        let d = compare(
            &case(Compare::Json),
            &a(r#"[{"a":null,"b":1}]"#),
            &a(r#"[{"b":1,"a":[]}]"#),
        );
        assert_eq!(d[0].id(), "x/json:a");
        let d = compare(
            &case(Compare::Output),
            &a("x\n"),
            &Answer {
                status: 1,
                stdout: String::new(),
            },
        );
        assert_eq!(d.len(), 1);
    }
}
