//! A machine's cgroup tree with its processes, read once and then shown
//! as systemd-cgls draws it (`status`) or as JSON (`status --json`).

use crate::table::printable;
use std::path::Path;

pub struct Node {
    pub name: String,
    /// PID and command line, in `cgroup.procs` order.
    pub procs: Vec<(i32, String)>,
    /// Sub-cgroups that hold processes, by name.
    pub children: Vec<Node>,
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

pub fn read(dir: &Path) -> Node {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(|p| (p, cmdline(p)))
        .collect();
    let mut subs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    subs.retain(|s| !crate::machine::processes(s).is_empty());
    subs.sort();
    Node {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        procs,
        children: subs.iter().map(|s| read(s)).collect(),
    }
}

impl Node {
    /// The lines below this node (itself not named), like systemd-cgls;
    /// what the machine wrote made printable.
    pub fn draw(&self, prefix: &str, out: &mut Vec<String>) {
        let n = self.procs.len() + self.children.len();
        let mut i = 0;
        for (pid, cmd) in &self.procs {
            i += 1;
            let branch = if i == n { "└─" } else { "├─" };
            out.push(format!("{prefix}{branch}{pid} {}", printable(cmd)));
        }
        for c in &self.children {
            i += 1;
            let last = i == n;
            out.push(format!(
                "{prefix}{}{}",
                if last { "└─" } else { "├─" },
                printable(&c.name)
            ));
            c.draw(&format!("{prefix}{}", if last { "  " } else { "│ " }), out);
        }
    }

    /// `{"cgroup", "processes": [{"pid", "cmdline"}], "children": [...]}`;
    /// JSON escapes what the machine wrote, so it is left as it is.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cgroup": self.name,
            "processes": self.procs.iter()
                .map(|(pid, cmd)| serde_json::json!({ "pid": pid, "cmdline": cmd }))
                .collect::<Vec<_>>(),
            "children": self.children.iter().map(Node::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Node;

    fn sample() -> Node {
        Node {
            name: "machine-a.scope".into(),
            procs: vec![],
            children: vec![Node {
                name: "payload".into(),
                procs: vec![(10, "/sbin/init".into()), (11, "sh -c \x1b[2J".into())],
                children: vec![],
            }],
        }
    }

    #[test]
    fn drawn_as_cgls() {
        let mut out = vec![];
        sample().draw("", &mut out);
        assert_eq!(
            out,
            ["└─payload", "  ├─10 /sbin/init", "  └─11 sh -c \\x1b[2J"]
        );
    }

    #[test]
    fn json_keeps_the_tree() {
        let v = sample().to_json();
        assert_eq!(v["cgroup"], "machine-a.scope");
        assert_eq!(v["children"][0]["cgroup"], "payload");
        assert_eq!(v["children"][0]["processes"][1]["pid"], 11);
        assert_eq!(v["children"][0]["processes"][1]["cmdline"], "sh -c \x1b[2J");
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains("\\u001b[2J"), "{text}");
    }
}
