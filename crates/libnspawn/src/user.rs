//! `--user`: the account is looked up in the container's own `/etc/passwd`
//! and `/etc/group` (read after `pivot_root`, so inside the tree), never the
//! host's. The reference runs `getent` inside instead; reading the files
//! works for trees without it (busybox) and costs no extra process.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<u32>,
}

impl Account {
    pub fn root() -> Self {
        Account {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/sh".into(),
            groups: vec![],
        }
    }
}

/// A user given by number (an OCI bundle's `process.user`): no lookup
/// decides its groups, and it needs no entry in the tree's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups, exactly.
    pub groups: Vec<u32>,
}

/// Find `user` (a name or a numeric uid) in passwd-format text, and its
/// supplementary groups in group-format text.
pub fn lookup(user: &str, passwd: &str, group: &str) -> Result<Account> {
    let by_uid = user.parse::<u32>().ok();
    let fields = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .find(|f| f[0] == user || (by_uid.is_some() && f[2].parse::<u32>().ok() == by_uid))
        .ok_or_else(|| {
            Error::invalid(format!(
                "user {user} not found in the container's /etc/passwd"
            ))
        })?;
    let num = |s: &str, what: &str| {
        s.parse::<u32>().map_err(|_| {
            Error::invalid(format!(
                "invalid {what} '{s}' for user {user} in the container's /etc/passwd"
            ))
        })
    };
    let (uid, gid) = (num(fields[2], "uid")?, num(fields[3], "gid")?);
    if uid == u32::MAX || gid == u32::MAX {
        return Err(Error::invalid(format!(
            "invalid uid or gid for user {user}"
        )));
    }
    let name = fields[0].to_string();
    // As initgroups(3): the primary group, then every group listing the user.
    let mut groups = vec![gid];
    let member_of = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
        .filter_map(|f| f[2].parse::<u32>().ok());
    for g in member_of {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let home = if fields[5].is_empty() {
        "/".to_string()
    } else {
        fields[5].to_string()
    };
    let shell = if fields[6].is_empty() {
        "/bin/sh".to_string()
    } else {
        fields[6].to_string()
    };
    Ok(Account {
        name,
        uid,
        gid,
        home,
        shell,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\ntester:x:1000:1000::/home/tester:/bin/sh\nbroken:x:zz:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ntester:x:1000:\nextra:x:1001:tester,other\nwheel:x:10:root\n";

    #[test]
    fn by_name_and_uid() {
        let a = lookup("tester", PASSWD, GROUP).unwrap();
        assert_eq!(
            (a.uid, a.gid, a.home.as_str(), a.groups.as_slice()),
            (1000, 1000, "/home/tester", &[1000, 1001][..])
        );
        assert_eq!(lookup("1000", PASSWD, GROUP).unwrap().name, "tester");
        assert_eq!(lookup("root", PASSWD, GROUP).unwrap().groups, vec![0, 10]);
    }

    #[test]
    fn errors() {
        assert!(lookup("nobody", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("not found"));
        assert!(lookup("broken", PASSWD, GROUP).is_err());
    }
}
