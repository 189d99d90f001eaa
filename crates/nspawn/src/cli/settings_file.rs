//! `.nspawn` files: each key is turned into the command-line option that
//! sets the same thing, and checked by the same parser, so a file and a
//! command line can never disagree on what a value means. Precedence per
//! setting (`--settings=`): `yes` — the command line wins; `override` — the
//! file wins; `trusted` — as `yes`, and a file anywhere is trusted; `no` —
//! files are ignored.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use libnspawn::nspawnfile::Found;
use libnspawn::unitfile::{self, parse_boolean, split_words};
use std::ffi::OsString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Yes,
    No,
    Override,
    Trusted,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "trusted" => Ok(Mode::Trusted),
            "override" => Ok(Mode::Override),
            s => match parse_boolean(s) {
                Some(true) => Ok(Mode::Yes),
                Some(false) => Ok(Mode::No),
                None => Err(format!("Failed to parse --settings= argument: {s}")),
            },
        }
    }
}

/// How a key's value becomes options.
#[derive(Clone, Copy)]
enum Kind {
    /// A boolean: the option when true, nothing when false.
    Flag(&'static str),
    /// One value: `--opt=VALUE`; the last one counts.
    Value(&'static str),
    /// Repeatable: `--opt=VALUE` each; an empty value: `on_empty`.
    List(&'static str),
    /// Words of the value, `--opt=WORD` each; an empty value: `on_empty`.
    Words(&'static str),
    /// The words are the command (`Parameters=`).
    Command,
    /// `LimitNAME=`: `--rlimit=NAME=VALUE`.
    Rlimit(&'static str),
}

struct Key {
    section: &'static str,
    name: &'static str,
    /// The clap ids of the options that make up the same setting.
    group: &'static [&'static str],
    /// Ignored (with a warning) in an untrusted file.
    privileged: bool,
    kind: Kind,
}

const fn key(
    section: &'static str,
    name: &'static str,
    group: &'static [&'static str],
    privileged: bool,
    kind: Kind,
) -> Key {
    Key {
        section,
        name,
        group,
        privileged,
        kind,
    }
}

/// The start mode and the command are one setting, as in the reference:
/// `Parameters=` counts only in a file that also sets `Boot=` or
/// `ProcessTwo=`, and a command on the command line overrides both.
const START: &[&str] = &["boot", "as_pid2", "command"];
const RLIMIT: &[&str] = &["rlimit"];
pub(super) const MOUNTS: &[&str] = &[
    "bind",
    "bind_ro",
    "tmpfs",
    "overlay",
    "overlay_ro",
    "inaccessible",
];
pub(super) const NETWORK: &[&str] = &[
    "private_network",
    "veth",
    "veth_extra",
    "bridge",
    "zone",
    "interfaces",
    "macvlan",
    "ipvlan",
    "namespace_path",
    "ports",
];

use Kind::*;

/// systemd.nspawn(5), with the options each key stands for.
const KEYS: &[Key] = &[
    key("Exec", "Boot", START, false, Flag("--boot")),
    key("Exec", "ProcessTwo", START, false, Flag("--as-pid2")),
    key("Exec", "Parameters", START, false, Command),
    key("Exec", "Environment", &["setenv"], false, Words("--setenv")),
    key("Exec", "User", &["user"], false, Value("--user")),
    key(
        "Exec",
        "WorkingDirectory",
        &["chdir"],
        false,
        Value("--chdir"),
    ),
    key(
        "Exec",
        "PivotRoot",
        &["pivot_root"],
        false,
        Value("--pivot-root"),
    ),
    key(
        "Exec",
        "KillSignal",
        &["kill_signal"],
        false,
        Value("--kill-signal"),
    ),
    key("Exec", "MachineID", &["uuid"], true, Value("--uuid")),
    key(
        "Exec",
        "Hostname",
        &["hostname"],
        false,
        Value("--hostname"),
    ),
    key(
        "Exec",
        "ResolvConf",
        &["resolv_conf"],
        false,
        Value("--resolv-conf"),
    ),
    key(
        "Exec",
        "Timezone",
        &["timezone"],
        false,
        Value("--timezone"),
    ),
    key(
        "Exec",
        "LinkJournal",
        &["link_journal", "j"],
        false,
        Value("--link-journal"),
    ),
    key(
        "Exec",
        "PrivateUsers",
        &["private_users", "private_users_pick"],
        true,
        Value("--private-users"),
    ),
    key(
        "Exec",
        "NotifyReady",
        &["notify_ready"],
        false,
        Value("--notify-ready"),
    ),
    key(
        "Exec",
        "Capability",
        &["capability"],
        true,
        Words("--capability"),
    ),
    key(
        "Exec",
        "DropCapability",
        &["drop_capability"],
        false,
        Words("--drop-capability"),
    ),
    key(
        "Exec",
        "AmbientCapability",
        &["ambient_capability"],
        true,
        Words("--ambient-capability"),
    ),
    key(
        "Exec",
        "NoNewPrivileges",
        &["no_new_privileges"],
        false,
        Value("--no-new-privileges"),
    ),
    key(
        "Exec",
        "SystemCallFilter",
        &["system_call_filter"],
        false,
        List("--system-call-filter"),
    ),
    key(
        "Exec",
        "Personality",
        &["personality"],
        false,
        Value("--personality"),
    ),
    key(
        "Exec",
        "OOMScoreAdjust",
        &["oom_score_adjust"],
        false,
        Value("--oom-score-adjust"),
    ),
    key(
        "Exec",
        "CPUAffinity",
        &["cpu_affinity"],
        false,
        Value("--cpu-affinity"),
    ),
    key(
        "Exec",
        "SuppressSync",
        &["suppress_sync"],
        false,
        Value("--suppress-sync"),
    ),
    key("Exec", "LimitCPU", RLIMIT, false, Rlimit("CPU")),
    key("Exec", "LimitFSIZE", RLIMIT, false, Rlimit("FSIZE")),
    key("Exec", "LimitDATA", RLIMIT, false, Rlimit("DATA")),
    key("Exec", "LimitSTACK", RLIMIT, false, Rlimit("STACK")),
    key("Exec", "LimitCORE", RLIMIT, false, Rlimit("CORE")),
    key("Exec", "LimitRSS", RLIMIT, false, Rlimit("RSS")),
    key("Exec", "LimitNOFILE", RLIMIT, false, Rlimit("NOFILE")),
    key("Exec", "LimitAS", RLIMIT, false, Rlimit("AS")),
    key("Exec", "LimitNPROC", RLIMIT, false, Rlimit("NPROC")),
    key("Exec", "LimitMEMLOCK", RLIMIT, false, Rlimit("MEMLOCK")),
    key("Exec", "LimitLOCKS", RLIMIT, false, Rlimit("LOCKS")),
    key(
        "Exec",
        "LimitSIGPENDING",
        RLIMIT,
        false,
        Rlimit("SIGPENDING"),
    ),
    key("Exec", "LimitMSGQUEUE", RLIMIT, false, Rlimit("MSGQUEUE")),
    key("Exec", "LimitNICE", RLIMIT, false, Rlimit("NICE")),
    key("Exec", "LimitRTPRIO", RLIMIT, false, Rlimit("RTPRIO")),
    key("Exec", "LimitRTTIME", RLIMIT, false, Rlimit("RTTIME")),
    key(
        "Files",
        "ReadOnly",
        &["read_only"],
        false,
        Flag("--read-only"),
    ),
    key(
        "Files",
        "Volatile",
        &["volatile"],
        false,
        Value("--volatile"),
    ),
    key("Files", "Bind", MOUNTS, true, List("--bind")),
    key("Files", "BindReadOnly", MOUNTS, true, List("--bind-ro")),
    key(
        "Files",
        "TemporaryFileSystem",
        MOUNTS,
        true,
        List("--tmpfs"),
    ),
    key(
        "Files",
        "Inaccessible",
        MOUNTS,
        true,
        List("--inaccessible"),
    ),
    key("Files", "Overlay", MOUNTS, true, List("--overlay")),
    key(
        "Files",
        "OverlayReadOnly",
        MOUNTS,
        true,
        List("--overlay-ro"),
    ),
    key(
        "Files",
        "BindUser",
        &["bind_user"],
        true,
        List("--bind-user"),
    ),
    key(
        "Files",
        "PrivateUsersOwnership",
        &["private_users_ownership"],
        false,
        Value("--private-users-ownership"),
    ),
    key(
        "Network",
        "Private",
        NETWORK,
        true,
        Flag("--private-network"),
    ),
    key(
        "Network",
        "VirtualEthernet",
        NETWORK,
        true,
        Flag("--network-veth"),
    ),
    key(
        "Network",
        "VirtualEthernetExtra",
        NETWORK,
        true,
        List("--network-veth-extra"),
    ),
    key(
        "Network",
        "Interface",
        NETWORK,
        true,
        Words("--network-interface"),
    ),
    key(
        "Network",
        "MACVLAN",
        NETWORK,
        true,
        Words("--network-macvlan"),
    ),
    key(
        "Network",
        "IPVLAN",
        NETWORK,
        true,
        Words("--network-ipvlan"),
    ),
    key(
        "Network",
        "Bridge",
        NETWORK,
        true,
        Value("--network-bridge"),
    ),
    key("Network", "Zone", NETWORK, true, Value("--network-zone")),
    key("Network", "Port", NETWORK, true, List("--port")),
];

/// Every key a settings file may hold, as `(section, key)`: what the
/// differential harness enumerates so that no key goes without a case.
pub fn keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYS.iter().map(|k| (k.section, k.name))
}

/// What an empty value of a list key does, as systemd 252 reads each one
/// (checked against it: tests/compat, `settings-empty-*`).
enum Empty {
    /// Forgets the values before it (`Environment=`).
    Reset,
    /// Nothing (the capability and system call lists).
    Ignored,
    /// Not a mount: a bad value (the reference warns "Invalid ...
    /// specification" and goes on; a bad value stops us).
    Invalid,
}

fn on_empty(k: &Key) -> Empty {
    match k.name {
        "Capability" | "DropCapability" | "AmbientCapability" | "SystemCallFilter" => {
            Empty::Ignored
        }
        "Bind"
        | "BindReadOnly"
        | "TemporaryFileSystem"
        | "Inaccessible"
        | "Overlay"
        | "OverlayReadOnly" => Empty::Invalid,
        _ => Empty::Reset,
    }
}

/// The options a file asks for: per key (in file order), its tokens.
struct FromFile {
    key: &'static Key,
    tokens: Vec<String>,
}

fn warn(path: &std::path::Path, line: usize, msg: &str) {
    eprintln!("{}:{line}: {msg}", path.display());
}

/// Read the file and turn it into options, checking each value with the
/// command line's own parser (errors name the file and line).
fn read(found: &Found, trusted: bool) -> Result<Vec<FromFile>, String> {
    let path = &found.path;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Failed to read {}: {e}", path.display()))?;
    from_text(path, &text, trusted, true)
}

/// The options a settings file's text stands for (for the fuzzer: the whole
/// path from untrusted text to checked options, without a file).
pub fn options_from_text(text: &str, trusted: bool) -> Result<Vec<String>, String> {
    let file = from_text(std::path::Path::new("fuzz.nspawn"), text, trusted, false)?;
    Ok(file.into_iter().flat_map(|f| f.tokens).collect())
}

fn from_text(
    path: &std::path::Path,
    text: &str,
    trusted: bool,
    report: bool,
) -> Result<Vec<FromFile>, String> {
    let warn = |p: &std::path::Path, line: usize, msg: &str| {
        if report {
            warn(p, line, msg);
        }
    };
    let (entries, warnings) =
        unitfile::parse(text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (line, w) in warnings {
        warn(path, line, &w);
    }
    let text_keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let mut out: Vec<FromFile> = Vec::new();
    for e in entries {
        let Some(k) = KEYS
            .iter()
            .find(|k| k.section == e.section && k.name == e.key)
        else {
            if KEYS.iter().any(|k| k.section == e.section) {
                warn(
                    path,
                    e.line,
                    &format!(
                        "Unknown key '{}' in section [{}], ignoring.",
                        e.key, e.section
                    ),
                );
            } else {
                warn(
                    path,
                    e.line,
                    &format!("Unknown section [{}], ignoring.", e.section),
                );
            }
            continue;
        };
        if k.privileged && !trusted {
            warn(
                path,
                e.line,
                &format!("Ignoring {}= setting, file is not trusted.", k.name),
            );
            continue;
        }
        let bad = |msg: String| format!("{}:{}: {msg}", path.display(), e.line);
        let new: Vec<String> = match k.kind {
            Flag(opt) => match parse_boolean(&e.value) {
                Some(true) => vec![opt.to_string()],
                Some(false) => vec![],
                None => {
                    return Err(bad(format!(
                        "Failed to parse boolean {}={}",
                        k.name, e.value
                    )))
                }
            },
            Value(opt) => vec![format!("{opt}={}", e.value)],
            List(_) | Words(_) if e.value.is_empty() => match on_empty(k) {
                Empty::Reset => {
                    out.retain(|f| f.key.name != k.name);
                    continue;
                }
                Empty::Ignored => continue,
                Empty::Invalid => {
                    return Err(bad(format!("Invalid {}= specification: empty", k.name)))
                }
            },
            List(opt) => vec![format!("{opt}={}", e.value)],
            Rlimit(name) => vec![format!("--rlimit={name}={}", e.value)],
            Words(opt) => split_words(&e.value)
                .map_err(|x| bad(x.to_string()))?
                .into_iter()
                .map(|w| format!("{opt}={w}"))
                .collect(),
            Command => split_words(&e.value).map_err(|x| bad(x.to_string()))?,
        };
        check(&new, k).map_err(bad)?;
        // `PrivateUsers=pick` in a file shifts the tree on disk unless the
        // file says otherwise, as the reference's (its command-line `pick`
        // maps it instead).
        let new = match (k.name, e.value.as_str()) {
            ("PrivateUsers", "pick") if !entries_set(&text_keys, "PrivateUsersOwnership") => {
                let mut n = new;
                n.push("--private-users-ownership=chown".into());
                n
            }
            _ => new,
        };
        // A single-valued key replaces its earlier value; lists append.
        match k.kind {
            Flag(_) | Value(_) | Command | Rlimit(_) => {
                out.retain(|f| f.key.name != k.name);
                out.push(FromFile {
                    key: k,
                    tokens: new,
                });
            }
            _ => out.push(FromFile {
                key: k,
                tokens: new,
            }),
        }
    }
    Ok(out)
}

fn entries_set(keys: &[String], key: &str) -> bool {
    keys.iter().any(|k| k == key)
}

/// Parse the options alone, so a bad value is reported with its line.
fn check(tokens: &[String], k: &Key) -> Result<(), String> {
    if matches!(k.kind, Command) {
        return Ok(());
    }
    let argv = std::iter::once("nspawn".to_string()).chain(tokens.iter().cloned());
    match super::Cli::try_parse_from_args(argv) {
        Ok(cli) => cli.check_values(),
        Err(e) => Err(super::clap_message(&e)),
    }
}

/// Was any option of `group` given on the command line?
pub(super) fn given(matches: &ArgMatches, group: &[&str]) -> bool {
    group.iter().any(|id| {
        matches.try_get_raw(id).is_ok_and(|v| v.is_some())
            && matches.value_source(id) == Some(ValueSource::CommandLine)
    })
}

/// The command line with the file merged in, per the mode.
pub fn merge(
    args: &[OsString],
    matches: &ArgMatches,
    found: &Found,
    mode: Mode,
) -> Result<Vec<OsString>, String> {
    let trusted = found.trusted || mode == Mode::Trusted;
    let file = read(found, trusted)?;
    let (mut cli_opts, mut command) = tokenize(args);
    let mut file_opts: Vec<OsString> = Vec::new();
    let sets_start = file
        .iter()
        .any(|f| matches!(f.key.name, "Boot" | "ProcessTwo"));
    for f in file
        .iter()
        .filter(|f| sets_start || f.key.name != "Parameters")
    {
        let from_cli = given(matches, f.key.group);
        if from_cli && mode != Mode::Override {
            continue;
        }
        if from_cli {
            // The file wins: drop what the command line said for this setting.
            cli_opts.retain(|o| !o.ids.iter().any(|id| f.key.group.contains(&id.as_str())));
            if f.key.group.contains(&"command") {
                command.clear();
            }
        }
        match f.key.kind {
            Command => command = f.tokens.iter().map(OsString::from).collect(),
            _ => file_opts.extend(f.tokens.iter().map(OsString::from)),
        }
    }
    let mut out = vec![args[0].clone()];
    out.extend(file_opts);
    out.extend(cli_opts.into_iter().flat_map(|o| o.tokens));
    if !command.is_empty() {
        out.push("--".into());
        out.extend(command);
    }
    Ok(out)
}

/// One option as given: its tokens and the clap ids it sets.
struct Given {
    tokens: Vec<OsString>,
    ids: Vec<String>,
}

/// Split our own command line into options and the command, the way clap
/// reads it (long options with `=` or a separate value, groups of short
/// flags, a short option's attached value, `--`), knowing each option's id.
fn tokenize(args: &[OsString]) -> (Vec<Given>, Vec<OsString>) {
    let mut cmd = super::Cli::command();
    // Fills in each argument's defaults (how many values it takes).
    cmd.build();
    let takes_value = |a: &clap::Arg| a.get_num_args().is_some_and(|n| n.takes_values());
    let optional_value = |a: &clap::Arg| a.get_num_args().is_some_and(|n| n.min_values() == 0);
    let mut opts = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let t = args[i].to_string_lossy().into_owned();
        if t == "--" {
            return (opts, args[i + 1..].to_vec());
        }
        if let Some(long) = t.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            let arg = cmd.get_arguments().find(|a| a.get_long() == Some(name));
            let mut tokens = vec![args[i].clone()];
            if let Some(a) = arg {
                if takes_value(a) && !optional_value(a) && !long.contains('=') && i + 1 < args.len()
                {
                    i += 1;
                    tokens.push(args[i].clone());
                }
            }
            opts.push(Given {
                tokens,
                ids: arg.map(|a| a.get_id().to_string()).into_iter().collect(),
            });
        } else if t.len() > 1 && t.starts_with('-') {
            let mut ids = Vec::new();
            let mut tokens = vec![args[i].clone()];
            for (pos, c) in t.char_indices().skip(1) {
                let Some(a) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    break;
                };
                ids.push(a.get_id().to_string());
                if takes_value(a) {
                    if pos + c.len_utf8() == t.len() && !optional_value(a) && i + 1 < args.len() {
                        i += 1;
                        tokens.push(args[i].clone());
                    }
                    break;
                }
            }
            opts.push(Given { tokens, ids });
        } else {
            return (opts, args[i..].to_vec());
        }
        i += 1;
    }
    (opts, Vec::new())
}

/// Parse a command line without clap printing anything.
pub fn reparse(args: &[OsString]) -> Result<(super::Cli, ArgMatches), clap::Error> {
    let matches = super::Cli::command().try_get_matches_from(args)?;
    let cli = super::Cli::from_arg_matches(&matches)?;
    Ok((cli, matches))
}
