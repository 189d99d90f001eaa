//! Confinement options: capabilities, system call filter, limits. Values
//! are checked by the parsers here; `help` lists and exits, as the
//! reference's `--capability=help`.

use clap::{ArgAction, Args};
use libnspawn::security::{caps, limits, seccomp, SecuritySettings};

#[derive(Args, Debug, Default)]
pub struct SecurityArgs {
    /// Keep these capabilities too (CAP_NAME,..., all; help lists them)
    #[arg(long, value_name = "CAP", value_parser = parse_caps, action = ArgAction::Append, help_heading = "Security")]
    capability: Vec<Caps>,

    /// Drop these capabilities from the kept set
    #[arg(long = "drop-capability", value_name = "CAP", value_parser = parse_caps, action = ArgAction::Append, help_heading = "Security")]
    drop_capability: Vec<Caps>,

    /// Pass these capabilities to the payload as ambient ones
    #[arg(long = "ambient-capability", value_name = "CAP", value_parser = parse_caps, action = ArgAction::Append, help_heading = "Security")]
    ambient_capability: Vec<Caps>,

    /// Set no_new_privs for the payload
    #[arg(long = "no-new-privileges", value_name = "BOOL", value_parser = parse_bool_for("--no-new-privileges"), help_heading = "Security")]
    no_new_privileges: Option<bool>,

    /// Allow (or with ~, deny) system calls and @groups (help lists groups)
    #[arg(long = "system-call-filter", value_name = "[~]LIST", value_parser = parse_filter, action = ArgAction::Append, help_heading = "Security")]
    system_call_filter: Vec<Filter>,

    /// Resource limit for the payload: NAME=SOFT[:HARD]
    #[arg(long, value_name = "NAME=LIMIT", value_parser = parse_rlimit, action = ArgAction::Append, help_heading = "Resources")]
    rlimit: Vec<(libc::__rlimit_resource_t, u64, u64)>,

    /// OOM score adjustment of the payload (-1000..1000)
    #[arg(long = "oom-score-adjust", value_name = "VALUE", value_parser = parse_oom, help_heading = "Resources")]
    oom_score_adjust: Option<i32>,

    /// CPUs the payload may run on: 0,2-3
    #[arg(long = "cpu-affinity", value_name = "CPUS", value_parser = parse_cpus, help_heading = "Resources")]
    cpu_affinity: Option<Cpus>,

    /// Architecture the payload sees: x86 or x86-64
    #[arg(long, value_name = "ARCH", value_parser = parse_personality, help_heading = "Resources")]
    personality: Option<libc::c_ulong>,

    /// Make sync calls do nothing in the container
    #[arg(long = "suppress-sync", value_name = "BOOL", value_parser = parse_bool_for("--suppress-sync"), help_heading = "Resources")]
    suppress_sync: Option<bool>,
}

/// A newtype, so clap takes the list as one value.
#[derive(Debug, Clone)]
struct Cpus(Vec<usize>);

#[derive(Debug, Clone, Copy)]
enum Caps {
    Help,
    Mask(u64),
}

#[derive(Debug, Clone)]
enum Filter {
    Help,
    List { deny: bool, names: Vec<String> },
}

fn parse_caps(s: &str) -> Result<Caps, String> {
    if s == "help" {
        return Ok(Caps::Help);
    }
    caps::parse_list(s)
        .map(Caps::Mask)
        .map_err(|e| e.to_string())
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    if s == "help" {
        return Ok(Filter::Help);
    }
    let (deny, names) = seccomp::parse_list(s).map_err(|e| e.to_string())?;
    Ok(Filter::List { deny, names })
}

/// systemd's parse_boolean().
fn parse_bool_for(option: &'static str) -> impl Fn(&str) -> Result<bool, String> + Clone {
    move |s| match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(format!("Failed to parse {option}= argument: {s}")),
    }
}

fn parse_rlimit(s: &str) -> Result<(libc::__rlimit_resource_t, u64, u64), String> {
    limits::parse_rlimit(s).map_err(|e| e.to_string())
}

fn parse_oom(s: &str) -> Result<i32, String> {
    limits::parse_oom_score_adjust(s).map_err(|e| e.to_string())
}

fn parse_cpus(s: &str) -> Result<Cpus, String> {
    limits::parse_cpu_affinity(s)
        .map(Cpus)
        .map_err(|e| e.to_string())
}

fn parse_personality(s: &str) -> Result<libc::c_ulong, String> {
    limits::parse_personality(s).map_err(|e| e.to_string())
}

fn masks(list: &[Caps]) -> u64 {
    list.iter().fold(0, |m, c| match c {
        Caps::Mask(x) => m | x,
        Caps::Help => m,
    })
}

/// A closed pipe (`| head`) is no error for a listing.
fn print_and_exit(text: &str) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    std::process::exit(0)
}

impl SecurityArgs {
    /// The settings, checked as a combination.
    pub fn into_settings(self, private_network: bool) -> Result<SecuritySettings, String> {
        let s = self.values();
        s.validate(private_network).map_err(|e| e.to_string())?;
        Ok(s)
    }

    /// The settings from the values alone (each already checked by its
    /// parser); `help` anywhere prints its list and exits 0.
    pub fn values(self) -> SecuritySettings {
        let all_caps = [
            &self.capability,
            &self.drop_capability,
            &self.ambient_capability,
        ];
        if all_caps
            .iter()
            .any(|l| l.iter().any(|c| matches!(c, Caps::Help)))
        {
            let list: String = caps::names(caps::all_mask())
                .iter()
                .map(|n| format!("{n}\n"))
                .collect();
            print_and_exit(&list);
        }
        if self
            .system_call_filter
            .iter()
            .any(|f| matches!(f, Filter::Help))
        {
            print_and_exit(&seccomp::help());
        }
        let mut s = SecuritySettings {
            caps_add: masks(&self.capability),
            caps_drop: masks(&self.drop_capability),
            caps_ambient: masks(&self.ambient_capability),
            no_new_privileges: self.no_new_privileges.unwrap_or(false),
            suppress_sync: self.suppress_sync.unwrap_or(false),
            ..Default::default()
        };
        for f in self.system_call_filter {
            if let Filter::List { deny, names } = f {
                if deny {
                    s.syscall_deny.extend(names);
                } else {
                    s.syscall_allow.extend(names);
                }
            }
        }
        s.limits = limits::Limits {
            rlimits: self.rlimit,
            oom_score_adjust: self.oom_score_adjust,
            cpu_affinity: self.cpu_affinity.map(|c| c.0),
            personality: self.personality,
        };
        s
    }
}
