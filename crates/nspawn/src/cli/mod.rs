//! The command line, spelled as systemd-nspawn spells it, turned into
//! `Settings`. Value syntax is checked here, before anything is created.

mod security;

use clap::{ArgAction, Parser};
use libnspawn::settings::{self, ConsoleMode, RegisterMode, StartMode};
use libnspawn::{Id128, Settings};
use std::path::{Path, PathBuf};

/// Where `-M NAME` without `-D` looks for `NAME`, as the reference.
const MACHINE_PATH: &[&str] = &[
    "/var/lib/machines",
    "/usr/local/lib/machines",
    "/usr/lib/machines",
];

#[derive(Parser, Debug)]
#[command(
    name = "nspawn",
    version,
    about = "Spawn a command or OS in a light-weight container.",
    args_override_self = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Root directory for the container
    #[arg(short = 'D', long, value_name = "PATH", help_heading = "Image")]
    directory: Option<PathBuf>,

    /// Invoke an init binary in the container (arguments go to init)
    #[arg(short = 'b', long, help_heading = "Execution")]
    boot: bool,

    /// Keep a stub init as PID 1, invoke the command as PID 2
    #[arg(short = 'a', long = "as-pid2", help_heading = "Execution")]
    as_pid2: bool,

    /// Set the working directory in the container
    #[arg(long, value_name = "PATH", value_parser = parse_chdir, help_heading = "Execution")]
    chdir: Option<String>,

    /// Pass an environment variable to PID 1 (NAME alone: take the caller's)
    #[arg(short = 'E', long = "setenv", value_name = "NAME[=VALUE]", action = ArgAction::Append, help_heading = "Execution")]
    setenv: Vec<String>,

    /// Run the command as this user (resolved inside the container)
    #[arg(short = 'u', long, value_name = "USER", help_heading = "Execution")]
    user: Option<String>,

    /// Signal that asks PID 1 to shut down
    #[arg(long = "kill-signal", value_name = "SIGNAL", value_parser = parse_kill_signal, help_heading = "Execution")]
    kill_signal: Option<libc::c_int>,

    /// Name of the container (default: the directory's name)
    #[arg(short = 'M', long, value_name = "NAME", value_parser = parse_machine, help_heading = "System identity")]
    machine: Option<String>,

    /// Host name of the container (default: the machine name)
    #[arg(long, value_name = "NAME", value_parser = parse_hostname, help_heading = "System identity")]
    hostname: Option<String>,

    /// Machine id to use when the tree has none
    #[arg(long, value_name = "UUID", value_parser = parse_uuid, help_heading = "System identity")]
    uuid: Option<Id128>,

    /// Only a loopback interface in the container
    #[arg(long = "private-network", help_heading = "Networking")]
    private_network: bool,

    /// Register with systemd-machined (accepted; the registry comes later)
    #[arg(long, value_name = "BOOL", value_parser = parse_register, num_args = 0..=1, default_missing_value = "yes",
        help_heading = "Integration")]
    register: Option<RegisterMode>,

    /// Do not create a scope unit; stay in the caller's
    #[arg(long = "keep-unit", help_heading = "Integration")]
    keep_unit: bool,

    /// How to connect the console: interactive, read-only, passive, pipe, autopipe
    #[arg(long, value_name = "MODE", value_parser = parse_console, help_heading = "Input/Output")]
    console: Option<ConsoleMode>,

    /// Same as --console=pipe
    #[arg(short = 'P', long, help_heading = "Input/Output")]
    pipe: bool,

    /// Do not print informational messages
    #[arg(short = 'q', long, help_heading = "Input/Output")]
    quiet: bool,

    #[command(flatten)]
    security: security::SecurityArgs,

    /// The command to run, or with --boot the arguments for init
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn parse_chdir(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("Working directory {s} is not an absolute path."));
    }
    Ok(s.to_string())
}

fn parse_kill_signal(s: &str) -> Result<libc::c_int, String> {
    settings::parse_signal(s).map_err(|e| e.to_string())
}

/// An empty `-M` means "derive it", as in the reference.
fn parse_machine(s: &str) -> Result<String, String> {
    if s.is_empty() || settings::machine_name_is_valid(s) {
        Ok(s.to_string())
    } else {
        Err(format!("Invalid machine name: {s}"))
    }
}

fn parse_hostname(s: &str) -> Result<String, String> {
    if settings::hostname_is_valid(s) {
        Ok(s.to_string())
    } else {
        Err(format!("Invalid hostname: {s}"))
    }
}

fn parse_uuid(s: &str) -> Result<Id128, String> {
    Id128::parse(s).map_err(|e| e.to_string())
}

fn parse_console(s: &str) -> Result<ConsoleMode, String> {
    ConsoleMode::parse(s).map_err(|e| e.to_string())
}

fn parse_register(s: &str) -> Result<RegisterMode, String> {
    match s {
        "yes" | "true" | "on" | "1" | "y" | "t" => Ok(RegisterMode::Yes),
        "no" | "false" | "off" | "0" | "n" | "f" => Ok(RegisterMode::No),
        "auto" => Ok(RegisterMode::Auto),
        _ => Err(format!("Failed to parse --register= argument: {s}")),
    }
}

impl Cli {
    /// Check the combination and fill in the defaults the reference derives.
    pub fn into_settings(self) -> Result<Settings, String> {
        let security = self.security.into_settings(self.private_network)?;
        if self.boot && self.as_pid2 {
            return Err("--boot and --as-pid2 may not be combined.".into());
        }
        let start_mode = match (self.boot, self.as_pid2) {
            (true, _) => StartMode::Boot,
            (_, true) => StartMode::Pid2,
            _ => StartMode::Pid1,
        };
        let machine = self.machine.filter(|m| !m.is_empty());
        let given = match (&self.directory, &machine) {
            (Some(d), _) => absolute(d)?,
            (None, Some(m)) => MACHINE_PATH
                .iter()
                .map(|p| Path::new(p).join(m))
                .find(|p| p.is_dir())
                .ok_or_else(|| {
                    format!(
                        "No image for machine '{m}' found in {}.",
                        MACHINE_PATH.join(", ")
                    )
                })?,
            (None, None) => std::env::current_dir()
                .map_err(|e| format!("cannot get the current directory: {e}"))?,
        };
        let directory = given
            .canonicalize()
            .map_err(|e| format!("Failed to resolve path {}: {}", given.display(), lower(&e)))?;
        if !directory.is_dir() {
            return Err(format!("{} is not a directory", directory.display()));
        }
        if directory == Path::new("/") {
            return Err("spawning a container on the root directory is not supported".into());
        }
        let machine = match machine {
            Some(m) => m,
            // From the path as given: a symlink's name, not its target's.
            None => given
                .components()
                .next_back()
                .and_then(|c| settings::machine_name_from_path(&c.as_os_str().to_string_lossy()))
                .ok_or("Failed to determine machine name automatically, please use -M.")?,
        };
        let setenv = self
            .setenv
            .iter()
            .map(|e| libnspawn::env::parse_setenv(e, |n| std::env::var(n).ok()))
            .collect::<Result<Vec<_>, _>>()?;
        let console = if self.pipe {
            Some(ConsoleMode::Pipe)
        } else {
            self.console
        };
        // The reference is quiet in pipe mode: the payload owns our output.
        let quiet = self.quiet || console == Some(ConsoleMode::Pipe);
        let tty = libnspawn::console::is_tty(libnspawn::console::stdin())
            && libnspawn::console::is_tty(libnspawn::console::stdout());
        Ok(Settings {
            directory,
            machine,
            hostname: self.hostname,
            uuid: self.uuid,
            start_mode,
            parameters: self.command,
            setenv,
            user: self.user,
            chdir: self.chdir,
            kill_signal: self.kill_signal,
            console: ConsoleMode::resolve(console, tty),
            quiet,
            keep_unit: self.keep_unit,
            register: self.register.unwrap_or_default(),
            private_network: self.private_network,
            security,
        })
    }
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir()
        .map(|c| c.join(p))
        .map_err(|e| format!("cannot get the current directory: {e}"))
}

/// An io::Error's text without the "(os error N)" suffix.
fn lower(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("nspawn").chain(args.iter().copied()))
    }

    #[test]
    fn command_stops_option_parsing() {
        let c = parse(&["-D", "/x", "-q", "ls", "-l", "--boot"]).unwrap();
        assert_eq!(c.command, ["ls", "-l", "--boot"]);
        assert!(c.quiet && !c.boot);
        let c = parse(&["-bD", "/x", "--", "--unit=x"]).unwrap();
        assert!(c.boot);
        assert_eq!(c.command, ["--unit=x"]);
    }

    #[test]
    fn bad_values_fail() {
        for bad in [
            &["--uuid="][..],
            &["--uuid=xyz"],
            &["--kill-signal=%$š"],
            &["--kill-signal=FOO"],
            &["--console=foo"],
            &["-M", "a b"],
            &["--chdir=relative"],
            &["--register=maybe"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn combinations() {
        let c = parse(&["-b", "-a", "-D", "/tmp"]).unwrap();
        assert!(c.into_settings().unwrap_err().contains("--as-pid2"));
    }
}
