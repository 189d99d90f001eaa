//! The mapping, field by field, without the kernel.

use super::*;
use crate::mount::spec::{Idmap, MountKind, Source};
use serde_json::json;

fn bundle() -> &'static Path {
    Path::new("/b")
}

fn config(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"ociVersion": "1.0.2-dev", "root": {"path": "rootfs"}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn ok(extra: serde_json::Value) -> Oci {
    parse(config(extra), bundle()).unwrap()
}

fn fails(extra: serde_json::Value) -> String {
    parse(config(extra), bundle()).unwrap_err().to_string()
}

#[test]
fn versions() {
    for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1+dev"] {
        assert!(version_supported(v), "{v}");
    }
    for v in ["0.9.0", "1.3.0", "2.0.0", "1.0", "", "1.0.x"] {
        assert!(!version_supported(v), "{v}");
    }
    assert_eq!(
        fails(json!({"ociVersion": "1.3.0"})),
        "ociVersion: version 1.3.0 is not supported (1.0 to 1.2 are)"
    );
    assert_eq!(
        parse(json!({}), bundle()).unwrap_err().to_string(),
        "ociVersion: missing"
    );
}

#[test]
fn process() {
    let o = ok(json!({"process": {
        "terminal": false,
        "user": {"uid": 1000, "gid": 100, "additionalGids": [5]},
        "args": ["sh", "-c", "true"],
        "env": ["PATH=/bin", "A=b=c"],
        "cwd": "/tmp",
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                    {"type": "RLIMIT_CORE", "soft": -1, "hard": -1}],
        "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "ambient": ["CAP_KILL"]},
        "noNewPrivileges": true,
        "oomScoreAdj": -5,
        "apparmorProfile": ""
    }}));
    assert_eq!(o.terminal, Some(false));
    assert_eq!(
        o.identity,
        Some(Identity {
            uid: 1000,
            gid: 100,
            groups: vec![5]
        })
    );
    assert_eq!(o.args.unwrap(), ["sh", "-c", "true"]);
    assert_eq!(
        o.env.unwrap(),
        [("PATH".into(), "/bin".into()), ("A".into(), "b=c".into())]
    );
    assert_eq!(o.cwd.as_deref(), Some("/tmp"));
    assert_eq!(
        o.rlimits,
        [
            (libc::RLIMIT_NOFILE, 100, 200),
            (libc::RLIMIT_CORE, libc::RLIM_INFINITY, libc::RLIM_INFINITY)
        ]
    );
    let c = o.caps.unwrap();
    assert_eq!(c.bounding, Some(1 << 5 | 1));
    assert_eq!(c.ambient, Some(1 << 5));
    assert_eq!(c.effective, None);
    assert_eq!(
        (o.no_new_privileges, o.oom_score_adjust),
        (Some(true), Some(-5))
    );
    assert_eq!(o.root.as_deref(), Some(Path::new("/b/rootfs")));
}

#[test]
fn bad_values_name_their_path() {
    for (extra, msg) in [
        (
            json!({"process": {"args": []}}),
            "process.args: empty argument list",
        ),
        (
            json!({"process": {"bogus": 1}}),
            "process.bogus: unknown field",
        ),
        (
            json!({"process": {"cwd": "tmp"}}),
            "process.cwd: not an absolute path: tmp",
        ),
        (
            json!({"process": {"env": ["NOEQUALS"]}}),
            "process.env[0]: not a NAME=VALUE assignment: NOEQUALS",
        ),
        (
            json!({"process": {"user": {"uid": "0", "gid": 0}}}),
            "process.user.uid: expected an unsigned integer, got a string",
        ),
        (
            json!({"process": {"user": {"gid": 0}}}),
            "process.user.uid: missing",
        ),
        (
            json!({"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}}),
            "process.rlimits[0].type: unknown resource limit RLIMIT_BOGUS",
        ),
        (
            json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}}),
            "process.rlimits[0]: soft limit above hard limit",
        ),
        (
            json!({"process": {"capabilities": {"bounding": ["CAP_BOGUS"]}}}),
            "process.capabilities.bounding[0]: unknown capability CAP_BOGUS",
        ),
        (
            json!({"process": {"oomScoreAdj": 1001}}),
            "process.oomScoreAdj: 1001 is out of range -1000..1000",
        ),
        (
            json!({"process": {"selinuxLabel": "x"}}),
            "process.selinuxLabel: not supported",
        ),
        (
            json!({"hostname": "a b"}),
            "hostname: not a valid host name: a b",
        ),
        (
            json!({"linux": {"intelRdt": {}}}),
            "linux.intelRdt: not supported",
        ),
        (
            json!({"linux": {"sysctl": {"kernel.domainname": "x"}}}),
            "linux.sysctl.kernel.domainname: not a sysctl of the container's namespaces (IPC, network), refusing to change the host's",
        ),
        (
            json!({"linux": {"sysctl": {"vm.swappiness": "1"}}}),
            "linux.sysctl.vm.swappiness: not a sysctl of the container's namespaces (IPC, network), refusing to change the host's",
        ),
        (
            json!({"linux": {"sysctl": {"net..x": "1"}}}),
            "linux.sysctl.net..x: not a valid sysctl key",
        ),
        (
            json!({"linux": {"sysctl": {"kernel.shmmax": 1}}}),
            "linux.sysctl.kernel.shmmax: expected a string, got a number",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "mount"}]}}),
            "linux.namespaces: a container without a pid namespace is not supported",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "bogus"}]}}),
            "linux.namespaces[0].type: unknown namespace type bogus",
        ),
        (
            json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}),
            "linux.namespaces[0].path: joining a pid namespace is not supported",
        ),
        (
            json!({"linux": {"devices": [{"type": "b", "path": "/dev/sda", "major": 8, "minor": 0}]}}),
            "linux.devices[0]: device /dev/sda is not supported",
        ),
        (
            json!({"hooks": {"prestart": [{"path": "/bin/true"}]}}),
            "hooks.prestart: hooks are not supported",
        ),
        (
            json!({"mounts": [{"destination": "mnt", "type": "tmpfs"}]}),
            "mounts[0].destination: not an absolute path: mnt",
        ),
        (
            json!({"mounts": [{"destination": "/mnt", "type": "bind", "source": "/x", "options": ["noatime"]}]}),
            "mounts[0].options: bind option noatime is not supported",
        ),
        (
            json!({"mounts": [{"destination": "/mnt", "type": "tmpfs", "options": ["rshared"]}]}),
            "mounts[0].options: propagation rshared is not supported",
        ),
        (json!({"domainname": "x"}), "domainname: not supported"),
        (json!({"bogus": true}), "bogus: unknown field"),
    ] {
        assert_eq!(fails(extra.clone()), msg, "{extra}");
    }
}

#[test]
fn mounts() {
    let o = ok(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
        {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/one", "source": "/srv/one", "options": ["bind"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]},
        {"destination": "/q", "type": "mqueue", "source": "mqueue", "options": ["noexec"]}
    ], "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
        "maskedPaths": ["/proc/kcore", "/etc/shadow"],
        "readonlyPaths": ["/proc/sys", "/etc"]
    }}));
    let kinds: Vec<(&str, &MountKind)> = o
        .mounts
        .iter()
        .map(|m| (m.dest.as_str(), &m.kind))
        .collect();
    assert_eq!(kinds.len(), 4);
    assert_eq!(
        kinds[0],
        (
            "/data",
            &MountKind::Bind {
                source: Source::Host("/b/data".into()),
                read_only: true,
                recursive: true,
                idmap: Idmap::Off,
                flags: nix::mount::MsFlags::empty(),
            }
        )
    );
    assert!(matches!(
        kinds[1].1,
        MountKind::Bind {
            recursive: false,
            read_only: false,
            ..
        }
    ));
    assert_eq!(
        kinds[2].1,
        &MountKind::Tmpfs {
            flags: nix::mount::MsFlags::MS_NOSUID,
            data: Some("size=1m".into())
        }
    );
    assert!(matches!(kinds[3].1, MountKind::Fs { fstype, flags, .. }
        if fstype == "mqueue" && *flags == nix::mount::MsFlags::MS_NOEXEC));
    assert_eq!(o.masked.len(), 1);
    assert_eq!(o.masked[0].dest, "/etc/shadow");
    assert_eq!(o.read_only_paths.len(), 1);
    assert_eq!(o.private_network, Some(false));
    assert_eq!(o.user_namespace, Some(false));
}

#[test]
fn user_namespace_and_resources() {
    let ns = json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                    {"type": "user"}, {"type": "network"}, {"type": "cgroup"}]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let o = ok(
        json!({"linux": {"namespaces": ns, "uidMappings": map, "gidMappings": map,
        "resources": {"devices": [{"allow": false, "access": "rwm"}],
                      "memory": {"limit": 1048576}, "pids": {"limit": 10},
                      "cpu": {"shares": 2048, "quota": 50000, "period": 100000}},
        "cgroupsPath": "/machine.slice"}}),
    );
    assert_eq!(
        (o.user_namespace, o.mapping),
        (Some(true), Some((100000, 65536)))
    );
    assert_eq!(o.private_network, Some(true));
    assert_eq!(o.slice.as_deref(), Some("machine.slice"));
    let names: Vec<&str> = o.properties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "MemoryMax",
            "CPUWeight",
            "CPUQuotaPerSecUSec",
            "CPUQuotaPeriodUSec",
            "TasksMax"
        ]
    );
    let other = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    assert_eq!(
        fails(json!({"linux": {"namespaces": ns, "uidMappings": map, "gidMappings": other}})),
        "linux: uidMappings and gidMappings that differ are not supported"
    );
    assert_eq!(
        fails(json!({"linux": {"namespaces": ns}})),
        "linux.uidMappings: missing, with a user namespace"
    );
}

fn seccomp_fails(seccomp: serde_json::Value) -> String {
    fails(json!({"linux": {"seccomp": seccomp}}))
}

#[test]
fn seccomp() {
    use crate::security::bpf::{self, Abi, Cond, Op};
    let o = ok(json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write", "a_call_from_the_future"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_LE"}]},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getppid"], "action": "SCMP_ACT_TRAP"}
        ]
    }}}));
    let p = o.seccomp.unwrap();
    assert_eq!(p.default, bpf::ret_errno(libc::ENOSYS));
    assert_eq!(p.abis, [Abi::X86_64, Abi::I386, Abi::X32, Abi::Aarch64]);
    assert_eq!(
        p.flags,
        (libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW | libc::SECCOMP_FILTER_FLAG_LOG) as u32
    );
    let actions: Vec<u32> = p.rules.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            bpf::RET_ALLOW,
            bpf::ret_errno(libc::EROFS),
            bpf::ret_errno(libc::EPERM),
            bpf::RET_ALLOW,
            bpf::RET_ALLOW,
            bpf::RET_KILL_THREAD,
            bpf::RET_KILL_PROCESS,
            bpf::RET_LOG,
            bpf::RET_TRAP,
        ]
    );
    assert_eq!(
        p.rules[0].names,
        ["read", "write", "a_call_from_the_future"]
    );
    assert_eq!(
        p.rules[3].conds,
        [Cond {
            arg: 0,
            op: Op::MaskedEq(2114060288),
            value: 0
        }]
    );
    assert_eq!(
        p.rules[4].conds,
        [Cond {
            arg: 0,
            op: Op::Le,
            value: 8
        }]
    );
    let bare = ok(json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}));
    let bare = bare.seccomp.unwrap();
    assert_eq!((bare.default, bare.rules.len()), (bpf::RET_ALLOW, 0));
}

#[test]
fn seccomp_refusals_name_the_value() {
    let allow = |extra: serde_json::Value| {
        let mut r = json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [r]})
    };
    for (seccomp, msg) in [
        (json!({}), "linux.seccomp.defaultAction: missing"),
        (
            json!({"defaultAction": "SCMP_ACT_NOPE"}),
            "linux.seccomp.defaultAction: unknown action SCMP_ACT_NOPE",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
            "linux.seccomp.defaultErrnoRet: given with SCMP_ACT_ALLOW, not SCMP_ACT_ERRNO",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
            "linux.seccomp.listenerPath: not supported",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
            "linux.seccomp.architectures[0]: unknown architecture SCMP_ARCH_Z80",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
            "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported (no listener)",
        ),
        (
            allow(json!({"action": "SCMP_ACT_NOTIFY"})),
            "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported (no seccomp agent is told)",
        ),
        (
            allow(json!({"action": "SCMP_ACT_TRACE"})),
            "linux.seccomp.syscalls[0].action: SCMP_ACT_TRACE is not supported",
        ),
        (
            allow(json!({"names": []})),
            "linux.seccomp.syscalls[0].names: empty",
        ),
        (
            allow(json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 5000})),
            "linux.seccomp.syscalls[0].errnoRet: 5000 is not an errno value (0 to 4095)",
        ),
        (
            allow(json!({"errnoRet": 1})),
            "linux.seccomp.syscalls[0].errnoRet: given with SCMP_ACT_ALLOW, not SCMP_ACT_ERRNO",
        ),
        (
            allow(json!({"args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]})),
            "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument (0 to 5)",
        ),
        (
            allow(json!({"args": [{"index": 0, "value": 0, "op": "SCMP_CMP_SORTOF"}]})),
            "linux.seccomp.syscalls[0].args[0].op: unknown operator SCMP_CMP_SORTOF",
        ),
        (
            allow(json!({"args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]})),
            "linux.seccomp.syscalls[0].args[0].value: expected an unsigned integer, got a number",
        ),
        (
            allow(json!({"comment": "x"})),
            "linux.seccomp.syscalls[0].comment: unknown field",
        ),
    ] {
        let got = seccomp_fails(seccomp);
        assert!(got.starts_with(msg), "{got} is not {msg}");
    }
}

#[test]
fn sysctl() {
    let o = ok(json!({"linux": {"sysctl": {
        "kernel.shmmax": "1000000", "fs.mqueue.msg_max": "20", "net.ipv4.ip_forward": "1"
    }}}));
    assert_eq!(
        o.sysctl,
        [
            ("fs.mqueue.msg_max".to_string(), "20".to_string()),
            ("kernel.shmmax".into(), "1000000".into()),
            ("net.ipv4.ip_forward".into(), "1".into()),
        ]
    );
}
