//! A bundle's devices: `linux.devices` (nodes the container process
//! makes, `mount::make_nodes`) and `linux.resources.devices` (the rules
//! of the device program on the container's cgroup,
//! `security::devices::attach_rules`). Each error names its JSON path.

use anyhow::{bail, Result};
use libnspawn::mount::spec::{DeviceNode, NodeKind};
use libnspawn::security::devices::{self as policy, Rule};
use serde_json::Value;

fn number(v: &Value, path: &str) -> Result<Option<u64>> {
    match v {
        Value::Null => Ok(None),
        v => match v.as_i64() {
            // -1: any (the wildcard runc's and podman's rules write).
            Some(-1) => Ok(None),
            Some(n) if n >= 0 && n <= u32::MAX as i64 => Ok(Some(n as u64)),
            _ => bail!("{path}: not a device number: {v}"),
        },
    }
}

/// `linux.devices`, without the standard nodes.
pub fn nodes(v: &Value) -> Result<Vec<DeviceNode>> {
    let list = crate::bundle::array(v, "linux.devices")?;
    let mut out = vec![];
    for (i, d) in list.iter().enumerate() {
        let at = format!("linux.devices[{i}]");
        let path = d["path"].as_str().unwrap_or("");
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            bail!("{at}.path: not an absolute path without \"..\": {path:?}");
        }
        let kind = match d["type"].as_str() {
            Some("c" | "u") => NodeKind::Char,
            Some("b") => NodeKind::Block,
            Some("p") => NodeKind::Fifo,
            t => bail!("{at}.type: {t:?} is not c, u, b or p"),
        };
        let major = number(&d["major"], &format!("{at}.major"))?;
        let minor = number(&d["minor"], &format!("{at}.minor"))?;
        let (major, minor) = match (kind, major, minor) {
            (NodeKind::Fifo, _, _) => (0, 0),
            (_, Some(ma), Some(mi)) => (ma, mi),
            _ => bail!("{at}: a device needs its major and minor"),
        };
        let field = |k: &str, default: u32| -> Result<u32> {
            match &d[k] {
                Value::Null => Ok(default),
                v => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| anyhow::anyhow!("{at}.{k}: not a 32-bit number: {v}")),
            }
        };
        // runc's default mode, when none is given.
        let mode = field("fileMode", 0o666)?;
        let (uid, gid) = (field("uid", 0)?, field("gid", 0)?);
        if let Some((ma, mi)) = libnspawn::mount::standard_node(path) {
            if kind != NodeKind::Char || (major, minor) != (ma, mi) {
                bail!("{at}: {path} is {ma}:{mi} in every container");
            }
            continue;
        }
        out.push(DeviceNode {
            path: path.to_string(),
            kind,
            major,
            minor,
            mode,
            uid,
            gid,
        });
    }
    Ok(out)
}

/// `linux.resources.devices` as rules, in order.
pub fn rules(v: &Value) -> Result<Vec<Rule>> {
    let list = crate::bundle::array(v, "linux.resources.devices")?;
    let mut out = vec![];
    for (i, r) in list.iter().enumerate() {
        let at = format!("linux.resources.devices[{i}]");
        let Some(allow) = r["allow"].as_bool() else {
            bail!("{at}.allow: missing or not a boolean");
        };
        let block = match r["type"].as_str() {
            None | Some("a") => None,
            Some("c") => Some(false),
            Some("b") => Some(true),
            Some(t) => bail!("{at}.type: {t:?} is not a, c or b"),
        };
        let mut access = 0;
        // runtime-spec: absent means "rwm".
        for c in r["access"].as_str().unwrap_or("rwm").chars() {
            access |= match c {
                'r' => policy::ACC_READ,
                'w' => policy::ACC_WRITE,
                'm' => policy::ACC_MKNOD,
                _ => bail!("{at}.access: {c:?} is not r, w or m"),
            };
        }
        let num = |k: &str| number(&r[k], &format!("{at}.{k}")).map(|n| n.map(|n| n as u32));
        out.push(Rule {
            allow,
            block,
            major: num("major")?,
            minor: num("minor")?,
            access,
        });
    }
    Ok(out)
}

/// The program's rules for a bundle: its own, then mknod of any node
/// (runc's defaults add `c *:* m` and `b *:* m` after the bundle's: a
/// node made is of no use without a rule that allows its use; this is
/// also how the container process makes the bundle's nodes), then ours.
/// `None`: the bundle says nothing, our fixed program applies.
pub fn program_rules(rules: Vec<Rule>, nodes: &[DeviceNode]) -> Option<Vec<Rule>> {
    if rules.is_empty() && nodes.is_empty() {
        return None;
    }
    let mknod = |block| Rule {
        allow: true,
        block: Some(block),
        major: None,
        minor: None,
        access: policy::ACC_MKNOD,
    };
    let mut all = rules;
    all.extend([mknod(false), mknod(true)]);
    all.extend(policy::standard_rules());
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nodes_and_rules() {
        let n = nodes(&json!([
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
             "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/x/sda", "type": "b", "major": 8, "minor": 0, "uid": 5}
        ]))
        .unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].path, "/dev/fuse");
        assert_eq!((n[0].major, n[0].minor, n[0].mode), (10, 229, 0o666));
        assert_eq!(
            (n[1].kind, n[1].uid, n[1].mode),
            (NodeKind::Block, 5, 0o666)
        );
        let e = |v: Value| nodes(&v).unwrap_err().to_string();
        assert_eq!(
            e(json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}])),
            "linux.devices[0]: /dev/null is 1:3 in every container"
        );
        assert!(
            e(json!([{"path": "dev/x", "type": "c", "major": 1, "minor": 5}]))
                .starts_with("linux.devices[0].path")
        );
        assert!(e(json!([{"path": "/dev/x", "type": "q"}])).starts_with("linux.devices[0].type"));
        assert!(e(json!([{"path": "/dev/x", "type": "c", "major": 1}])).contains("major and minor"));

        let r = rules(&json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": -1, "access": "rm"}
        ]))
        .unwrap();
        assert_eq!(r[0].block, None);
        assert_eq!(
            (r[1].block, r[1].major, r[1].minor),
            (Some(false), Some(10), None)
        );
        assert_eq!(r[1].access, policy::ACC_READ | policy::ACC_MKNOD);
        let e = |v: Value| rules(&v).unwrap_err().to_string();
        assert_eq!(
            e(json!([{"allow": true, "access": "rx"}])),
            "linux.resources.devices[0].access: 'x' is not r, w or m"
        );
        assert!(e(json!([{"access": "r"}])).contains("allow"));
        assert!(program_rules(vec![], &[]).is_none());
        assert!(program_rules(vec![], &n).unwrap().len() > 2);
    }
}
