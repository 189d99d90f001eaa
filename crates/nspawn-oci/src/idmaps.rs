//! `linux.uidMappings` and `gidMappings`, read here rather than by
//! `libnspawn::oci` (whose `nspawn --oci-bundle` takes one range of at
//! least 65536 ids, as its `-U` does): a runtime writes the maps it is
//! given, so any number of ranges of any size (podman's `--uidmap`
//! lists, `--userns=auto`'s ranges sized to the image).

use anyhow::{bail, Result};
use libnspawn::userns::{IdMap, IdMaps};
use serde_json::Value;

/// The kernel takes at most this many lines in a map (user_namespaces(7)).
const MAX_LINES: usize = 340;

fn list(v: &Value, key: &str) -> Result<Vec<IdMap>> {
    let items = crate::bundle::array(v, &format!("linux.{key}"))?;
    if items.len() > MAX_LINES {
        bail!("linux.{key}: more than {MAX_LINES} ranges");
    }
    let mut out: Vec<IdMap> = vec![];
    for (i, m) in items.iter().enumerate() {
        let at = format!("linux.{key}[{i}]");
        let field = |k: &str| -> Result<u32> {
            m[k].as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| anyhow::anyhow!("{at}.{k}: missing or not a 32-bit id"))
        };
        let map = IdMap {
            container: field("containerID")?,
            host: field("hostID")?,
            size: field("size")?,
        };
        let fits = |start: u32| start.checked_add(map.size).is_some();
        if map.size == 0 || !fits(map.container) || !fits(map.host) {
            bail!("{at}.size: {} ids do not fit in 32 bits", map.size);
        }
        let overlap = |a: u32, b: u32, n: u32, o: u32| a < b + o && b < a + n;
        if out.iter().any(|p| {
            overlap(map.container, p.container, map.size, p.size)
                || overlap(map.host, p.host, map.size, p.size)
        }) {
            bail!("{at}: overlaps an earlier range");
        }
        out.push(map);
    }
    Ok(out)
}

/// The maps, when `user` is among `linux.namespaces`; both must be
/// given then, and map container id 0 (the container's root, who owns
/// its exec FIFO). Without a user namespace, none may be given.
pub fn read(linux: &Value, uid: &Value, gid: &Value) -> Result<Option<IdMaps>> {
    let userns = linux["namespaces"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n["type"] == "user" && n["path"].is_null()));
    let maps = IdMaps {
        uid: list(uid, "uidMappings")?,
        gid: list(gid, "gidMappings")?,
    };
    if !userns {
        if !maps.uid.is_empty() || !maps.gid.is_empty() {
            bail!("linux.uidMappings: given without a user namespace");
        }
        return Ok(None);
    }
    for (key, m) in [("uidMappings", &maps.uid), ("gidMappings", &maps.gid)] {
        if IdMaps::host_of(m, 0).is_none() {
            bail!("linux.{key}: container id 0 must be mapped with a user namespace");
        }
    }
    Ok(Some(maps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_maps() {
        let linux = json!({"namespaces": [{"type": "user"}]});
        let m = read(
            &linux,
            &json!([{"containerID": 0, "hostID": 100000, "size": 1000},
                    {"containerID": 1000, "hostID": 300000, "size": 10}]),
            &json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.uid.len(), 2);
        assert_eq!(IdMaps::host_of(&m.uid, 1005), Some(300005));
        assert_eq!(IdMaps::host_of(&m.uid, 1010), None);
        let e = |u: Value, g: Value| read(&linux, &u, &g).unwrap_err().to_string();
        let root = json!([{"containerID": 0, "hostID": 1, "size": 1}]);
        assert_eq!(
            e(
                json!([{"containerID": 1, "hostID": 5, "size": 1}]),
                root.clone()
            ),
            "linux.uidMappings: container id 0 must be mapped with a user namespace"
        );
        assert_eq!(
            e(root.clone(), json!([])),
            "linux.gidMappings: container id 0 must be mapped with a user namespace"
        );
        assert!(e(
            json!([{"containerID": 0, "hostID": 4294967295u64, "size": 2}]),
            root.clone()
        )
        .contains("do not fit"));
        assert!(e(
            json!([{"containerID": 0, "hostID": 10, "size": 5},
                   {"containerID": 5, "hostID": 12, "size": 5}]),
            root.clone()
        )
        .contains("overlaps"));
        assert!(read(&json!({}), &Value::Null, &Value::Null)
            .unwrap()
            .is_none());
        assert!(read(&json!({}), &root, &Value::Null).is_err());
    }
}
