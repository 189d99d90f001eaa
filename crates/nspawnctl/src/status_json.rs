//! `status --json`: what `status` shows of a machine, as one JSON object
//! a program (the Cockpit page) can read without parsing the text layout.
//! Keys are `status`'s labels lowercased, as machinectl's `--json` turns
//! table columns into keys; times stay microseconds since the epoch.

use crate::cgtree::Node;
use crate::machine::os_value;
use libnspawn::registry::Record;
use serde_json::{json, Value};

/// `os`: the machine's os-release; `state`: as its runner answers;
/// `leader_comm`: the leader's name; `tree`: its unit's cgroup tree;
/// `journal`: the last lines of its journal.
pub fn machine(
    r: &Record,
    os: &[(String, String)],
    state: &str,
    leader_comm: &str,
    tree: Option<&Node>,
    journal: &[String],
) -> Value {
    // "-" is the text layout's word for a missing value; JSON has null.
    let os_key = |k: &str| Some(os_value(os, k)).filter(|v| v != "-");
    json!({
        "machine": r.name,
        "id": r.id,
        "class": r.class,
        "service": r.service,
        "state": state,
        "since": r.started_usec,
        "leader": r.leader,
        "leader_comm": leader_comm,
        "root": r.root,
        "interfaces": r.interfaces,
        "addresses": r.addresses,
        "os": os_key("ID"),
        "version": os_key("VERSION_ID"),
        "pretty_name": os_key("PRETTY_NAME"),
        "unit": tree.map(|t| t.name.clone()),
        "processes": tree.map(Node::to_json),
        "journal": journal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        serde_json::from_value(json!({
            "name": "m1", "class": "container", "service": "nspawn", "root": "/var/lib/machines/m1",
            "leader": 42, "runner": 41, "id": "0123456789abcdef0123456789abcdef",
            "cgroup": null, "interfaces": ["ve-m1"], "addresses": ["10.0.0.2"],
            "state": "running", "started_usec": 1_700_000_000_000_000u64, "bounding": 0,
        }))
        .unwrap()
    }

    #[test]
    fn labels_become_keys() {
        let os = vec![
            ("ID".to_string(), "debian".to_string()),
            (
                "PRETTY_NAME".to_string(),
                "Debian GNU/Linux 12 (bookworm)".to_string(),
            ),
        ];
        let tree = Node {
            name: "machine-m1.scope".into(),
            procs: vec![(42, "/sbin/init".into())],
            children: vec![],
        };
        let v = machine(
            &record(),
            &os,
            "degraded",
            "init",
            Some(&tree),
            &["a line".into()],
        );
        assert_eq!(v["machine"], "m1");
        assert_eq!(v["state"], "degraded");
        assert_eq!(v["since"], 1_700_000_000_000_000u64);
        assert_eq!(v["leader"], 42);
        assert_eq!(v["root"], "/var/lib/machines/m1");
        assert_eq!(v["addresses"][0], "10.0.0.2");
        assert_eq!(v["os"], "debian");
        assert!(v["version"].is_null());
        assert_eq!(v["pretty_name"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(v["unit"], "machine-m1.scope");
        assert_eq!(v["processes"]["processes"][0]["pid"], 42);
        assert_eq!(v["journal"][0], "a line");
    }

    #[test]
    fn without_a_cgroup() {
        let v = machine(&record(), &[], "running", "", None, &[]);
        assert!(v["unit"].is_null() && v["processes"].is_null() && v["os"].is_null());
        assert_eq!(v["journal"], json!([]));
    }
}
