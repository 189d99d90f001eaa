//! The table of cases. Coverage is checked against our own definitions
//! (`nspawn::cli::Cli::command()` and `settings_file::keys()`): an option
//! or settings key with no case here, and not in `SKIPPED` with a reason,
//! fails `tests/tests/compat.rs`.
//!
//! Arguments may name per-run places: `{tree}` (the tree, also passed as
//! `-D`), `{fix}` (a directory of host fixtures: `data/hello`, `file`,
//! `lower1/a`, `lower2/b`, `upper/`, `cred`), `{name}` (the machine name,
//! short enough for interface names: `vx{name}` fits), `{hostuser}` (a
//! host account with a home).

/// `Fast` cases run by default; `Full` ones with `NSPAWN_COMPAT_FULL=1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Fast,
    Full,
}

/// What a case needs besides a fresh tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fix {
    /// The probe is also the tree's init (`/usr/lib/systemd/systemd`).
    ProbeInit,
    /// The probe is also `/usr/lib/compat-probe`, and the payload: under
    /// `--volatile=yes` only the tree's `/usr` is there.
    ProbeInUsr,
    /// `NAME.nspawn` next to the tree, with this text (placeholders expanded).
    Settings(&'static str),
    /// No tree at `{tree}`; a copy of it at `{fix}/template`.
    Template,
    /// A copy of the tree at `/sysroot` inside it, with an empty
    /// `/sysroot/oldroot` (`--pivot-root`).
    NestedRoot,
    /// `{fix}/bundle/config.json` with this text (placeholders expanded).
    OciBundle(&'static str),
    /// `/etc/machine-id` in the tree holds this id.
    MachineId(&'static str),
    /// A host bridge `cb{name}`, removed after the case.
    Bridge,
    /// A host interface `cd{name}` (one end of a veth pair; the kernel
    /// here has no dummy links), removed after the case.
    HostLink,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub id: &'static str,
    pub args: Vec<&'static str>,
    /// The command after the options (`/probe` unless set).
    pub payload: Vec<&'static str>,
    pub fixes: Vec<Fix>,
    pub tier: Tier,
    /// Whether `-q --pipe` go first (a console case sets its own).
    pub pipe: bool,
    /// The case this one is compared against (`baseline`, or one that
    /// already has what this one builds on, such as `-U`).
    pub base: &'static str,
    /// Whether the reference refuses it (exits non-zero): checked on every
    /// run, so that a case meant to run the probe cannot quietly run it
    /// under neither binary.
    pub refused: bool,
}

impl Case {
    fn fast(mut self) -> Case {
        self.tier = Tier::Fast;
        self
    }

    fn fix(mut self, f: Fix) -> Case {
        self.fixes.push(f);
        self
    }

    fn payload(mut self, p: &[&'static str]) -> Case {
        self.payload = p.to_vec();
        self
    }

    fn refused(mut self) -> Case {
        self.refused = true;
        self
    }

    fn in_usr(self) -> Case {
        self.fix(Fix::ProbeInUsr)
            .payload(&["/usr/lib/compat-probe"])
    }

    fn no_pipe(mut self) -> Case {
        self.pipe = false;
        self
    }

    fn settings(self, text: &'static str) -> Case {
        self.fix(Fix::Settings(text))
    }

    /// Whether the case makes links on the host (veth, bridges, moved
    /// interfaces): such cases run one at a time, so that no other case
    /// sees their links come and go.
    pub fn makes_host_links(&self) -> bool {
        let net_opt = |a: &str| {
            a == "-n"
                || a == "-p"
                || a.starts_with("--port")
                || (a.starts_with("--network-") && !a.starts_with("--network-namespace-path"))
        };
        self.args.iter().any(|a| net_opt(a))
            || self.fixes.iter().any(|f| match f {
                Fix::Bridge | Fix::HostLink => true,
                Fix::Settings(t) => t.contains("[Network]"),
                _ => false,
            })
    }

    /// Options as written on the command line, by the name our definitions
    /// use (the long name, or `-X` for a short-only one), for coverage.
    pub fn options(&self) -> Vec<String> {
        let mut out = vec![];
        for a in &self.args {
            if let Some(long) = a.strip_prefix("--") {
                out.push(long.split('=').next().unwrap_or(long).to_string());
            } else if let Some(short) = a.strip_prefix('-') {
                // A cluster of flags, or one short option and its value.
                for c in short.chars() {
                    out.push(format!("-{c}"));
                    if SHORT_WITH_VALUE.contains(&c) {
                        break;
                    }
                }
            }
        }
        out
    }

    /// `(section, key)` of every assignment in the case's settings file.
    pub fn settings_keys(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        for f in &self.fixes {
            let Fix::Settings(text) = f else { continue };
            let mut section = String::new();
            for l in text.lines().map(str::trim) {
                if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    section = s.to_string();
                } else if let Some((k, _)) = l.split_once('=') {
                    out.push((section.clone(), k.trim().to_string()));
                }
            }
        }
        out
    }
}

/// Short options that take a value (the rest of a cluster is the value).
const SHORT_WITH_VALUE: &[char] = &['D', 'E', 'u', 'M', 'S', 'p', 'i'];

fn case(id: &'static str, args: &[&'static str]) -> Case {
    Case {
        id,
        args: args.to_vec(),
        payload: vec!["/probe"],
        fixes: vec![],
        tier: Tier::Full,
        pipe: true,
        base: BASELINE,
        refused: false,
    }
}

/// Options of ours with no case, and why.
pub const SKIPPED: &[(&str, &str)] = &[
    ("help", "clap's own text, not the reference's"),
    ("version", "a version string of our own"),
    ("directory", "every case passes -D with its tree"),
    (
        "command",
        "every case passes the probe (or init's arguments)",
    ),
];

/// Settings keys with no case of their own, and why.
pub const SKIPPED_KEYS: &[(&str, &str, &str)] = &[];

/// The cases with no options at all: every other case is compared with
/// its own binary's run of this one.
pub const BASELINE: &str = "baseline";

/// Cases compared against another case than the baseline: one that
/// already has what they build on, so that what that one changes (and its
/// deviations) is listed once, under it.
pub const BASES: &[(&str, &[&str])] = &[
    (
        "ephemeral",
        &[
            "ephemeral-long",
            "ephemeral-machine",
            "ephemeral-machine-empty",
            "ephemeral-overlay",
            "ephemeral-read-only",
        ],
    ),
    (
        "private-network",
        &[
            "veth",
            "veth-long",
            "veth-extra",
            "veth-extra-named",
            "interface",
            "interface-renamed",
            "macvlan",
            "key-private",
            "key-virtual-ethernet-extra",
            "key-interface",
            "key-macvlan",
        ],
    ),
    (
        "veth",
        &[
            "bridge",
            "zone",
            "port",
            "port-long",
            "private-network-veth",
            "key-virtual-ethernet",
            "key-bridge",
            "key-zone",
            "key-port",
        ],
    ),
    (
        "private-users-pick",
        &[
            "private-users-yes",
            "private-users-pick-long",
            "private-users-identity",
            "private-users-chown",
            "private-users-map",
            "bind-user",
            "userns-bind",
            "userns-bind-idmap",
            "userns-tmpfs-nosuid",
            "key-private-users",
            "key-bind-user",
            "key-private-users-ownership",
        ],
    ),
    (
        "read-only",
        &["read-only-bind", "read-only-tmpfs", "key-read-only"],
    ),
    (
        "volatile-state",
        &[
            "read-only-volatile-state",
            "volatile-state-tmpfs",
            "key-volatile",
        ],
    ),
    ("volatile-yes", &["read-only-volatile-yes"]),
    ("volatile-overlay", &["read-only-volatile-overlay"]),
    (
        "boot",
        &[
            "boot-long",
            "boot-with-user",
            "key-boot",
            "settings-cli-command",
        ],
    ),
    ("as-pid2", &["as-pid2-long", "as-pid2-user"]),
];

pub fn table() -> Vec<Case> {
    let mut t = table_in_order();
    for c in &mut t {
        if let Some((base, _)) = BASES.iter().find(|(_, of)| of.contains(&c.id)) {
            c.base = base;
        }
    }
    t
}

fn table_in_order() -> Vec<Case> {
    let mut t = vec![case(BASELINE, &[]).fast()];
    t.extend(image());
    t.extend(execution());
    t.extend(identity());
    t.extend(integration());
    t.extend(console());
    t.extend(mounts());
    t.extend(credentials());
    t.extend(network());
    t.extend(security());
    t.extend(resources());
    t.extend(userns());
    t.extend(pending());
    t.extend(combinations());
    t.extend(settings_modes());
    t.extend(settings_keys());
    t
}

fn image() -> Vec<Case> {
    vec![
        case("ephemeral", &["-x"]).fast(),
        case("ephemeral-long", &["--ephemeral"]),
        case("ephemeral-machine", &["-x", "-M", "{name}e"]).fast(),
        case("ephemeral-machine-empty", &["-x", "--machine="]).fast(),
        case("read-only", &["--read-only"]).fast(),
        case("volatile-bare", &["--volatile"]).in_usr().fast(),
        case("volatile-yes", &["--volatile=yes"]).in_usr().fast(),
        case("volatile-state", &["--volatile=state"]).fast(),
        case("volatile-overlay", &["--volatile=overlay"]).fast(),
        case("volatile-no", &["--volatile=no"]),
        case("volatile-empty", &["--volatile="]).refused().in_usr(),
        case("volatile-bad", &["--volatile=-1"]).refused().fast(),
        case("template", &["--template={fix}/template"])
            .fix(Fix::Template)
            .fast(),
        case("template-missing", &["--template={fix}/nonexistent"]).refused(),
        case("template-ephemeral", &["-x", "--template={fix}/template"])
            .refused()
            .fast(),
        case("pivot-root", &["--pivot-root=/sysroot"])
            .fix(Fix::NestedRoot)
            .fast(),
        case("pivot-root-old", &["--pivot-root=/sysroot:/oldroot"])
            .refused()
            .fix(Fix::NestedRoot),
        case("pivot-root-relative", &["--pivot-root=sysroot"])
            .refused()
            .fast(),
    ]
}

fn execution() -> Vec<Case> {
    vec![
        case("boot", &["-b"])
            .fix(Fix::ProbeInit)
            .payload(&["first", "--second=2"])
            .fast(),
        case("boot-long", &["--boot"])
            .fix(Fix::ProbeInit)
            .payload(&[]),
        case("boot-as-pid2", &["-b", "-a"])
            .refused()
            .fix(Fix::ProbeInit)
            .fast(),
        case("as-pid2", &["-a"]).fast(),
        case("as-pid2-long", &["--as-pid2"]),
        case("chdir", &["--chdir=/tmp"]).fast(),
        case("chdir-relative", &["--chdir=tmp"]).refused().fast(),
        case("chdir-missing", &["--chdir=/nonexistent"]).refused(),
        case("setenv", &["-E", "FOO=bar"]).fast(),
        case("setenv-long", &["--setenv=FOO=bar baz"]),
        case("setenv-caller", &["-E", "COMPAT_CALLER"]).fast(),
        case("setenv-unset-caller", &["-E", "COMPAT_NOT_SET"]),
        case("setenv-empty-value", &["-E", "FOO="]),
        case("setenv-bad-name", &["-E", "=x"]).refused().fast(),
        case("setenv-twice", &["-E", "FOO=1", "-E", "FOO=2"]),
        case("setenv-path", &["-E", "PATH=/usr/bin"]),
        case("setenv-term", &["-E", "TERM=dumb"]),
        case("user", &["-u", "tester"]).fast(),
        case("user-long", &["--user=tester"]),
        case("user-uid", &["-u", "1000"]),
        case("user-root", &["-u", "root"]),
        case("user-missing", &["-u", "nosuchuser"]).refused().fast(),
        case("user-root-number", &["-u", "0"]),
        case("kill-signal", &["--kill-signal=SIGTERM"]).fast(),
        case("kill-signal-rtmin", &["--kill-signal=SIGRTMIN+3"]),
        case("kill-signal-number", &["--kill-signal=15"]),
        case("kill-signal-bad", &["--kill-signal=SIGBOGUS"])
            .refused()
            .fast(),
    ]
}

fn identity() -> Vec<Case> {
    vec![
        case("machine", &["-M", "{name}m"]).fast(),
        case("machine-long", &["--machine={name}m"]),
        case("machine-bad", &["-M", "a b"]).refused().fast(),
        case("machine-empty", &["--machine="]),
        case("hostname", &["--hostname=probe-host"]).fast(),
        case("hostname-dots", &["--hostname=a.b.example"]),
        case("hostname-bad", &["--hostname=bad_host!"])
            .refused()
            .fast(),
        case("uuid", &["--uuid=0123456789abcdef0123456789abcdef"]).fast(),
        case(
            "uuid-dashed",
            &["--uuid=01234567-89ab-cdef-0123-456789abcdef"],
        ),
        case(
            "uuid-tree-has-one",
            &["--uuid=0123456789abcdef0123456789abcdef"],
        )
        .fix(Fix::MachineId("fedcba9876543210fedcba9876543210")),
        case("uuid-bad", &["--uuid=xyz"]).refused().fast(),
        case("uuid-empty", &["--uuid="]).refused(),
        case("machine-id-in-tree", &[]).fix(Fix::MachineId("fedcba9876543210fedcba9876543210")),
    ]
}

fn integration() -> Vec<Case> {
    vec![
        case("register-no", &["--register=no"]).fast(),
        case("register-yes", &["--register=yes"]).refused(),
        case("register-bad", &["--register=maybe"]).refused().fast(),
        case("keep-unit", &["--keep-unit"]).fast(),
        case("slice", &["-S", "compat.slice"]).fast(),
        case("slice-long", &["--slice=compat-sub.slice"]),
        case("slice-bad", &["--slice=nodot"]),
        case("property", &["--property=CPUWeight=50"]).fast(),
        case("property-bad", &["--property=Bogus=1"]),
        case("resolv-conf-off", &["--resolv-conf=off"]).fast(),
        case("resolv-conf-copy-host", &["--resolv-conf=copy-host"]).fast(),
        case("resolv-conf-copy-static", &["--resolv-conf=copy-static"]),
        case("resolv-conf-copy-uplink", &["--resolv-conf=copy-uplink"]),
        case("resolv-conf-copy-stub", &["--resolv-conf=copy-stub"]),
        case("resolv-conf-replace-host", &["--resolv-conf=replace-host"]).fast(),
        case(
            "resolv-conf-replace-static",
            &["--resolv-conf=replace-static"],
        ),
        case(
            "resolv-conf-replace-uplink",
            &["--resolv-conf=replace-uplink"],
        ),
        case("resolv-conf-replace-stub", &["--resolv-conf=replace-stub"]),
        case("resolv-conf-bind-host", &["--resolv-conf=bind-host"]).fast(),
        case("resolv-conf-bind-static", &["--resolv-conf=bind-static"]),
        case("resolv-conf-bind-uplink", &["--resolv-conf=bind-uplink"]),
        case("resolv-conf-bind-stub", &["--resolv-conf=bind-stub"]),
        case("resolv-conf-delete", &["--resolv-conf=delete"]).fast(),
        case("resolv-conf-auto", &["--resolv-conf=auto"]),
        case("resolv-conf-help", &["--resolv-conf=help"]).fast(),
        case("resolv-conf-bad", &["--resolv-conf=bogus"])
            .refused()
            .fast(),
        case("timezone-off", &["--timezone=off"]).fast(),
        case("timezone-copy", &["--timezone=copy"]).fast(),
        case("timezone-bind", &["--timezone=bind"]),
        case("timezone-symlink", &["--timezone=symlink"]).fast(),
        case("timezone-delete", &["--timezone=delete"]),
        case("timezone-auto", &["--timezone=auto"]),
        case("timezone-help", &["--timezone=help"]).fast(),
        case("timezone-bad", &["--timezone=bogus"]).refused().fast(),
        case("link-journal-no", &["--link-journal=no"]).fast(),
        case("link-journal-auto", &["--link-journal=auto"]),
        case("link-journal-host", &["--link-journal=host"]),
        case("link-journal-guest", &["--link-journal=guest"]),
        case("link-journal-try-host", &["--link-journal=try-host"]).fast(),
        case("link-journal-try-guest", &["--link-journal=try-guest"]),
        case("link-journal-j", &["-j"]).fast(),
        case("link-journal-bad", &["--link-journal=bogus"])
            .refused()
            .fast(),
    ]
}

fn console() -> Vec<Case> {
    vec![
        case("console-pipe", &["--console=pipe"]).no_pipe().fast(),
        case("console-pipe-short", &["-P"]).no_pipe(),
        case("console-interactive", &["-q", "--console=interactive"]).no_pipe(),
        case("console-read-only", &["-q", "--console=read-only"]).no_pipe(),
        case("console-passive", &["-q", "--console=passive"]).no_pipe(),
        case("console-autopipe", &["-q", "--console=autopipe"])
            .no_pipe()
            .fast(),
        case("console-bad", &["--console=bogus"]).refused().fast(),
        case("quiet", &["--quiet", "--pipe"]).no_pipe(),
        case("not-quiet", &["--pipe"]).no_pipe().fast(),
    ]
}

fn mounts() -> Vec<Case> {
    vec![
        case("bind", &["--bind={fix}/data:/mnt"]).fast(),
        case("bind-same-path", &["--bind={fix}/data"]).fast(),
        case("bind-file", &["--bind={fix}/file:/etc/hostfile"]).fast(),
        case("bind-tree-source", &["--bind=+/etc:/mnt"]).fast(),
        case("bind-temporary", &["--bind=:/scratch"]).fast(),
        case("bind-norbind", &["--bind={fix}/data:/mnt:norbind"]).fast(),
        case("bind-rbind", &["--bind={fix}/data:/mnt:rbind"]),
        case("bind-flag-option", &["--bind={fix}/data:/mnt:nosuid"])
            .refused()
            .fast(),
        case("bind-bad-option", &["--bind={fix}/data:/mnt:bogus"]).refused(),
        case("bind-idmap-no-userns", &["--bind={fix}/data:/mnt:idmap"]).refused(),
        case("bind-relative", &["--bind=data:/mnt"])
            .refused()
            .fast(),
        case("bind-missing-source", &["--bind={fix}/nonexistent:/mnt"])
            .refused()
            .fast(),
        case("bind-escaped-colon", &["--bind={fix}/data:/a\\:b"]),
        case(
            "bind-twice",
            &["--bind={fix}/data:/mnt", "--bind={fix}/data:/mnt"],
        ),
        case(
            "bind-nested-order",
            &["--bind={fix}/data:/mnt/sub", "--bind={fix}/lower1:/mnt"],
        ),
        case("bind-ro", &["--bind-ro={fix}/data:/mnt"]).fast(),
        case("bind-ro-temporary", &["--bind-ro=:/scratch"]),
        case("tmpfs-nosuid", &["--tmpfs=/var:mode=0755,nosuid"]).fast(),
        case("tmpfs", &["--tmpfs=/var"]).fast(),
        case("tmpfs-empty-options", &["--tmpfs=/var:"]),
        case("tmpfs-flags", &["--tmpfs=/var:size=1M,suid,dev,noexec"]).fast(),
        case("tmpfs-ro", &["--tmpfs=/var:ro"]).fast(),
        case("tmpfs-atime", &["--tmpfs=/var:noatime,nodiratime"]),
        case("tmpfs-sync", &["--tmpfs=/var:sync,dirsync"]),
        case("tmpfs-bad-option", &["--tmpfs=/var:bogus=1"])
            .refused()
            .fast(),
        case("tmpfs-relative", &["--tmpfs=var"]).refused().fast(),
        case("tmpfs-owner", &["--tmpfs=/var:mode=0700,uid=1000,gid=1000"]),
        case("tmpfs-new-dir", &["--tmpfs=/new/deep"]),
        case("overlay", &["--overlay={fix}/lower1:{fix}/upper:/mnt"]).fast(),
        case(
            "overlay-two-lowers",
            &["--overlay={fix}/lower1:{fix}/lower2:{fix}/upper:/mnt"],
        ),
        case("overlay-temporary-upper", &["--overlay={fix}/lower1::/mnt"]).fast(),
        case("overlay-tree-lower", &["--overlay=+/etc::/etc"]),
        case("overlay-one-path", &["--overlay={fix}/lower1"])
            .refused()
            .fast(),
        case("overlay-relative", &["--overlay=lower:upper:/mnt"]).refused(),
        case(
            "overlay-ro",
            &["--overlay-ro={fix}/lower1:{fix}/lower2:/mnt"],
        )
        .fast(),
        case("overlay-ro-one-lower", &["--overlay-ro={fix}/lower1:/mnt"]),
        case("inaccessible", &["--inaccessible=/etc/passwd"])
            .refused()
            .fast(),
        case("inaccessible-dir", &["--inaccessible=/home"]).refused(),
        case("inaccessible-missing", &["--inaccessible=/nonexistent"]).refused(),
        case("inaccessible-relative", &["--inaccessible=etc"])
            .refused()
            .fast(),
    ]
}

fn credentials() -> Vec<Case> {
    vec![
        case("set-credential", &["--set-credential=greeting:hello"]).fast(),
        case(
            "set-credential-escapes",
            &["--set-credential=esc:a\\nb\\x41"],
        ),
        case("set-credential-empty", &["--set-credential=empty:"]),
        case(
            "set-credential-twice",
            &["--set-credential=a:1", "--set-credential=a:2"],
        )
        .refused()
        .fast(),
        case("set-credential-no-colon", &["--set-credential=nocolon"])
            .refused()
            .fast(),
        case("set-credential-bad-id", &["--set-credential=../x:1"]).refused(),
        case("load-credential", &["--load-credential=secret:{fix}/cred"]).fast(),
        case(
            "load-credential-relative",
            &["--load-credential=secret:cred"],
        )
        .refused(),
        case(
            "load-credential-missing",
            &["--load-credential=secret:{fix}/nonexistent"],
        )
        .refused(),
    ]
}

fn network() -> Vec<Case> {
    vec![
        case("private-network", &["--private-network"]).fast(),
        case("veth", &["-n"]).fast(),
        case("veth-long", &["--network-veth"]),
        case("veth-extra", &["--network-veth-extra=vx{name}"]),
        case(
            "veth-extra-named",
            &["--network-veth-extra=vx{name}:extra0"],
        )
        .fast(),
        case("veth-extra-bad", &["--network-veth-extra=a:b:c"]).refused(),
        case("bridge", &["--network-bridge=cb{name}"]).fix(Fix::Bridge),
        case("bridge-missing", &["--network-bridge=nosuchbr0"]).refused(),
        case("zone", &["--network-zone=z{name}"]).fast(),
        case("zone-empty", &["--network-zone="]),
        case("zone-too-long", &["--network-zone=averyveryverylongzone"]).refused(),
        case(
            "bridge-and-zone",
            &["--network-bridge=br0", "--network-zone=z"],
        )
        .refused()
        .fast(),
        case("interface", &["--network-interface=cd{name}"])
            .refused()
            .fix(Fix::HostLink),
        case(
            "interface-renamed",
            &["--network-interface=cd{name}:inner0"],
        )
        .refused()
        .fix(Fix::HostLink),
        case("interface-missing", &["--network-interface=nosuchif0"]).refused(),
        case("macvlan", &["--network-macvlan=cd{name}"])
            .refused()
            .fix(Fix::HostLink),
        case("macvlan-missing", &["--network-macvlan=nosuchif0"]).refused(),
        case("ipvlan-missing", &["--network-ipvlan=nosuchif0"]).refused(),
        case(
            "netns-path",
            &["--network-namespace-path=/proc/self/ns/net"],
        ),
        case(
            "netns-path-and-veth",
            &["--network-namespace-path=/proc/self/ns/net", "-n"],
        )
        .refused()
        .fast(),
        case("port", &["-n", "-p", "tcp:18080:80"]).fast(),
        case("port-long", &["-n", "--port=18081"]),
        case("port-no-network", &["--port=18082"]).refused().fast(),
        case("port-bad", &["-n", "--port=-1"]).refused(),
    ]
}

fn security() -> Vec<Case> {
    vec![
        case("capability", &["--capability=CAP_NET_ADMIN"]).fast(),
        case(
            "capability-list",
            &["--capability=CAP_SYS_TIME,CAP_SYS_MODULE"],
        ),
        case("capability-lowercase", &["--capability=cap_sys_time"]),
        case("capability-all", &["--capability=all"]).fast(),
        case("capability-help", &["--capability=help"]).fast(),
        case("capability-bad", &["--capability=CAP_BOGUS"])
            .refused()
            .fast(),
        case("drop-capability", &["--drop-capability=CAP_CHOWN"]).fast(),
        case("drop-capability-all", &["--drop-capability=all"]),
        case("ambient-capability", &["--ambient-capability=CAP_NET_RAW"]).fast(),
        case(
            "ambient-capability-user",
            &["-u", "tester", "--ambient-capability=CAP_NET_RAW"],
        ),
        case("no-new-privileges", &["--no-new-privileges=yes"]).fast(),
        case("no-new-privileges-no", &["--no-new-privileges=no"]),
        case("no-new-privileges-bad", &["--no-new-privileges=bogus"])
            .refused()
            .fast(),
        case("syscall-filter-deny", &["--system-call-filter=~@clock"]).fast(),
        case("syscall-filter-allow", &["--system-call-filter=@clock"]),
        case("syscall-filter-deny-one", &["--system-call-filter=~bpf"]),
        case(
            "syscall-filter-twice",
            &["--system-call-filter=@swap", "--system-call-filter=~@swap"],
        ),
        case("syscall-filter-help", &["--system-call-filter=help"]).fast(),
        case(
            "syscall-filter-unknown-group",
            &["--system-call-filter=@bogus"],
        )
        .fast(),
    ]
}

fn resources() -> Vec<Case> {
    vec![
        case("rlimit", &["--rlimit=NOFILE=1024:2048"]).fast(),
        case("rlimit-infinity", &["--rlimit=CORE=infinity"]),
        case("rlimit-prefixed", &["--rlimit=RLIMIT_NPROC=100"]),
        case("rlimit-one-value", &["--rlimit=NOFILE=512"]),
        case("rlimit-bad-name", &["--rlimit=BOGUS=1"])
            .refused()
            .fast(),
        case("rlimit-soft-above-hard", &["--rlimit=NOFILE=4096:1024"]).refused(),
        case("oom-score-adjust", &["--oom-score-adjust=500"]).fast(),
        case("oom-score-adjust-min", &["--oom-score-adjust=-1000"]).refused(),
        case("oom-score-adjust-high", &["--oom-score-adjust=1001"])
            .refused()
            .fast(),
        case("cpu-affinity", &["--cpu-affinity=0"]).fast(),
        case("cpu-affinity-range", &["--cpu-affinity=0-1"]),
        case("cpu-affinity-absent", &["--cpu-affinity=63"]).refused(),
        case("cpu-affinity-bad", &["--cpu-affinity=x"])
            .refused()
            .fast(),
        case("personality", &["--personality=x86"]).fast(),
        case("personality-native", &["--personality=x86-64"]),
        case("personality-bad", &["--personality=sparc"])
            .refused()
            .fast(),
        case("suppress-sync", &["--suppress-sync=yes"]).fast(),
        case("suppress-sync-no", &["--suppress-sync=no"]),
        case("suppress-sync-bad", &["--suppress-sync=bogus"]).refused(),
    ]
}

fn userns() -> Vec<Case> {
    vec![
        case("private-users-pick", &["-U"]).fast(),
        case("private-users-yes", &["--private-users=yes"]),
        case("private-users-no", &["--private-users=no"]).fast(),
        case("private-users-identity", &["--private-users=identity"]),
        case("private-users-bad", &["--private-users=bogus"])
            .refused()
            .fast(),
        case("private-users-pick-long", &["--private-users=pick"]).fast(),
        case(
            "private-users-chown",
            &["--private-users=pick", "--private-users-ownership=chown"],
        ),
        case(
            "private-users-map",
            &["--private-users=pick", "--private-users-ownership=map"],
        ),
        case(
            "private-users-ownership-bad",
            &["--private-users-ownership=bogus"],
        )
        .refused()
        .fast(),
        case("bind-user-no-userns", &["--bind-user={hostuser}"])
            .refused()
            .fast(),
        case("bind-user", &["-U", "--bind-user={hostuser}"]),
    ]
}

/// A bundle as `runc spec` writes one, in the only version the reference
/// takes, with the cgroup namespace (without it the reference fails on
/// this hybrid host) and settings of each kind the reference applies.
const OCI_CONFIG: &str = r#"{
  "ociVersion": "1.0.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/false"],
    "env": ["PATH=/usr/bin:/bin", "FROM_BUNDLE=1"],
    "cwd": "/tmp",
    "capabilities": {"bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024}],
    "oomScoreAdj": 200
  },
  "root": {"path": "rootfs"},
  "hostname": "bundle-host",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/var", "type": "tmpfs", "source": "tmpfs", "options": ["mode=0700"]},
    {"destination": "/mnt", "type": "bind", "source": "{fix}/data", "options": ["rbind"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "readonlyPaths": ["/proc/sys", "/etc"]
  }
}"#;

fn pending() -> Vec<Case> {
    vec![
        case("image-with-directory", &["-i", "{fix}/image.raw"])
            .refused()
            .fast(),
        case("oci-bundle-missing", &["--oci-bundle={fix}/bundle"]).refused(),
        // -D wins over root.path, the command over process.args (both
        // binaries); the rest of the bundle applies.
        case("oci-bundle", &["--oci-bundle={fix}/bundle"])
            .fix(Fix::OciBundle(OCI_CONFIG))
            .fast(),
        case("root-hash-bad", &["--root-hash=zz"]).refused().fast(),
        case("root-hash-sig-missing", &["--root-hash-sig=/nonexistent"])
            .refused()
            .fast(),
        case(
            "root-hash-with-directory",
            &["--root-hash=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        ),
        case(
            "verity-data-with-directory",
            &["--verity-data=/nonexistent"],
        ),
        case("notify-ready-no", &["--notify-ready=no"]),
        case("notify-ready-yes", &["--notify-ready=yes"]),
    ]
}

fn combinations() -> Vec<Case> {
    vec![
        case("userns-bind", &["-U", "--bind={fix}/data:/mnt"]).fast(),
        case("userns-bind-idmap", &["-U", "--bind={fix}/data:/mnt:idmap"]),
        case(
            "userns-tmpfs-nosuid",
            &["-U", "--tmpfs=/var:mode=0755,nosuid"],
        )
        .fast(),
        case(
            "read-only-volatile-state",
            &["--read-only", "--volatile=state"],
        )
        .fast(),
        case("read-only-volatile-yes", &["--read-only", "--volatile=yes"]).in_usr(),
        case(
            "read-only-volatile-overlay",
            &["--read-only", "--volatile=overlay"],
        ),
        case("read-only-bind", &["--read-only", "--bind={fix}/data:/mnt"]).refused(),
        case("read-only-tmpfs", &["--read-only", "--tmpfs=/var:nosuid"]).fast(),
        case("ephemeral-overlay", &["-x", "--overlay={fix}/lower1::/mnt"]).fast(),
        case("ephemeral-volatile", &["-x", "--volatile=yes"])
            .refused()
            .fast(),
        case("ephemeral-read-only", &["-x", "--read-only"]),
        case("private-network-veth", &["--private-network", "-n"]).fast(),
        case(
            "tmpfs-then-bind-below",
            &["--tmpfs=/var", "--bind={fix}/data:/var/data"],
        ),
        case(
            "volatile-state-tmpfs",
            &["--volatile=state", "--tmpfs=/var/x:nosuid"],
        ),
        case("boot-with-user", &["-b", "-u", "tester"]).fix(Fix::ProbeInit),
        case("as-pid2-user", &["-a", "-u", "tester"]),
        case(
            "capability-drop-same",
            &[
                "--capability=CAP_NET_ADMIN",
                "--drop-capability=CAP_NET_ADMIN",
            ],
        ),
        case("user-chdir", &["-u", "tester", "--chdir=/home/tester"]),
    ]
}

fn settings_modes() -> Vec<Case> {
    const FILE: &str = "[Exec]\nHostname=fromfile\nEnvironment=FROM=file\n[Files]\nTemporaryFileSystem=/var:mode=0700\n";
    vec![
        case("settings-default", &["--hostname=fromcli"]).settings(FILE).fast(),
        case("settings-yes", &["--settings=yes", "--hostname=fromcli"]).settings(FILE),
        case("settings-no", &["--settings=no", "--hostname=fromcli"])
            .settings(FILE)
            .fast(),
        case("settings-override", &["--settings=override", "--hostname=fromcli", "-E", "FROM=cli"])
            .settings(FILE)
            .fast(),
        case("settings-trusted", &["--settings=trusted", "--tmpfs=/srv"])
            .settings(FILE)
            .fast(),
        case("settings-bad-mode", &["--settings=bogus"]).refused().fast(),
        case("settings-untrusted-privileged", &[])
            .settings("[Exec]\nCapability=CAP_NET_ADMIN\n[Files]\nBind={fix}/data:/mnt\n")
            .fast(),
        case("settings-bad-value", &["--settings=trusted"])
            .settings("[Exec]\nKillSignal=SIGBOGUS\n")
            .fast(),
        case("settings-unknown-key", &["--settings=trusted"])
            .settings("[Exec]\nBogusKey=1\n[Bogus]\nX=1\n"),
        case("settings-list-reset", &["--settings=trusted"])
            .settings("[Files]\nBind={fix}/data:/mnt\nBind=\nBind={fix}/data:/mnt2\n"),
        case("settings-empty-environment", &["--settings=trusted"])
            .settings("[Exec]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n"),
        case("settings-empty-capability", &["--settings=trusted"])
            .settings("[Exec]\nCapability=CAP_NET_ADMIN\nCapability=\nCapability=CAP_SYS_TIME\nDropCapability=CAP_CHOWN\nDropCapability=\n")
            .fast(),
        case("settings-empty-tmpfs", &["--settings=trusted"])
            .settings("[Files]\nTemporaryFileSystem=/a\nTemporaryFileSystem=\n"),
        case("settings-keys-together", &["--settings=trusted"])
            .settings("[Exec]\nCapability=CAP_SYS_TIME\nAmbientCapability=CAP_SYS_TIME\n")
            .fast(),
        case("settings-cli-command", &["--settings=trusted"])
            .settings("[Exec]\nBoot=yes\nParameters=from-file\n")
            .fix(Fix::ProbeInit)
            .payload(&["/probe", "from-cli"]),
    ]
}

/// One case per key (the `Limit*` keys share one), from a trusted file.
fn settings_keys() -> Vec<Case> {
    let k = |id, text| case(id, &["--settings=trusted"]).settings(text);
    vec![
        k("key-boot", "[Exec]\nBoot=yes\nParameters=a \"b c\"\n")
            .fix(Fix::ProbeInit)
            .payload(&[]),
        k("key-process-two", "[Exec]\nProcessTwo=yes\n"),
        k("key-environment", "[Exec]\nEnvironment=A=1 \"B=2 3\"\n").fast(),
        k("key-user", "[Exec]\nUser=tester\n"),
        k("key-working-directory", "[Exec]\nWorkingDirectory=/tmp\n"),
        k("key-pivot-root", "[Exec]\nPivotRoot=/sysroot\n").fix(Fix::NestedRoot),
        k("key-capability", "[Exec]\nCapability=CAP_NET_ADMIN CAP_SYS_TIME\n").fast(),
        k("key-drop-capability", "[Exec]\nDropCapability=CAP_CHOWN\n"),
        k("key-ambient-capability", "[Exec]\nAmbientCapability=CAP_NET_RAW\n"),
        k("key-no-new-privileges", "[Exec]\nNoNewPrivileges=yes\n"),
        k("key-kill-signal", "[Exec]\nKillSignal=SIGTERM\n"),
        k("key-personality", "[Exec]\nPersonality=x86\n"),
        k("key-machine-id", "[Exec]\nMachineID=0123456789abcdef0123456789abcdef\n"),
        k("key-private-users", "[Exec]\nPrivateUsers=pick\n"),
        k("key-notify-ready", "[Exec]\nNotifyReady=no\n"),
        k("key-system-call-filter", "[Exec]\nSystemCallFilter=~@clock\n"),
        k(
            "key-limits",
            "[Exec]\nLimitCPU=100\nLimitFSIZE=infinity\nLimitDATA=infinity\nLimitSTACK=8388608\nLimitCORE=0\nLimitRSS=infinity\nLimitNOFILE=512:1024\nLimitAS=infinity\nLimitNPROC=1000\nLimitMEMLOCK=65536\nLimitLOCKS=100\nLimitSIGPENDING=100\nLimitMSGQUEUE=8192\nLimitNICE=0\nLimitRTPRIO=0\nLimitRTTIME=infinity\n",
        )
        .fast(),
        k("key-oom-score-adjust", "[Exec]\nOOMScoreAdjust=100\n"),
        k("key-cpu-affinity", "[Exec]\nCPUAffinity=0\n"),
        k("key-hostname", "[Exec]\nHostname=fromfile\n"),
        k("key-resolv-conf", "[Exec]\nResolvConf=off\n"),
        k("key-timezone", "[Exec]\nTimezone=off\n"),
        k("key-link-journal", "[Exec]\nLinkJournal=no\n"),
        k("key-suppress-sync", "[Exec]\nSuppressSync=yes\n"),
        k("key-read-only", "[Files]\nReadOnly=yes\n"),
        k("key-volatile", "[Files]\nVolatile=state\n"),
        k("key-bind", "[Files]\nBind={fix}/data:/mnt\n"),
        k("key-bind-read-only", "[Files]\nBindReadOnly={fix}/data:/mnt\n"),
        k(
            "key-bind-user",
            "[Exec]\nPrivateUsers=pick\n[Files]\nBindUser={hostuser}\n",
        ),
        k("key-tmpfs-nosuid", "[Files]\nTemporaryFileSystem=/var:mode=0755,nosuid\n").fast(),
        k("key-inaccessible", "[Files]\nInaccessible=/etc/passwd\n").refused(),
        k("key-overlay", "[Files]\nOverlay={fix}/lower1:{fix}/upper:/mnt\n"),
        k("key-overlay-read-only", "[Files]\nOverlayReadOnly={fix}/lower1:{fix}/lower2:/mnt\n"),
        k(
            "key-private-users-ownership",
            "[Exec]\nPrivateUsers=pick\n[Files]\nPrivateUsersOwnership=chown\n",
        ),
        k("key-private", "[Network]\nPrivate=yes\n"),
        k("key-virtual-ethernet", "[Network]\nVirtualEthernet=yes\n"),
        k("key-virtual-ethernet-extra", "[Network]\nVirtualEthernetExtra=vx{name}:extra0\n"),
        k("key-interface", "[Network]\nInterface=cd{name}\n").fix(Fix::HostLink),
        k("key-macvlan", "[Network]\nMACVLAN=cd{name}\n").fix(Fix::HostLink),
        k("key-ipvlan", "[Network]\nIPVLAN=nosuchif0\n").refused(),
        k("key-bridge", "[Network]\nBridge=cb{name}\n").fix(Fix::Bridge),
        k("key-zone", "[Network]\nZone=z{name}\n"),
        k("key-port", "[Network]\nVirtualEthernet=yes\nPort=tcp:18083:80\n"),
    ]
}
