//! The command line, spelled as systemd-nspawn spells it, turned into
//! `Settings`. Value syntax is checked here, before anything is created.

mod fs;
mod image;
mod net;
mod oci;
mod pending;
mod security;
pub mod settings_file;
mod userns;

use clap::{ArgAction, Parser};
use libnspawn::settings::{self, ConsoleMode, RegisterMode, StartMode};
use libnspawn::{Id128, Settings};
use std::path::{Path, PathBuf};

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

    /// Register with systemd-machined where it runs: yes, no, auto
    #[arg(long, value_name = "BOOL", value_parser = parse_register, num_args = 0..=1, require_equals = true, default_missing_value = "yes",
        help_heading = "Integration")]
    register: Option<RegisterMode>,

    /// The slice (parent cgroup) for the machine's cgroup
    #[arg(short = 'S', long, value_name = "NAME.slice", value_parser = parse_slice, help_heading = "Integration")]
    slice: Option<String>,

    /// A property for the machine's scope unit (systemd hosts)
    #[arg(long, value_name = "NAME=VALUE", action = ArgAction::Append, help_heading = "Integration")]
    property: Vec<String>,

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

    /// Run the OCI runtime bundle in DIR (its config.json; no .nspawn file)
    #[arg(long = "oci-bundle", value_name = "DIR", help_heading = "Image")]
    oci_bundle: Option<PathBuf>,

    /// Whether to read NAME.nspawn: yes, no, override, trusted
    #[arg(long, value_name = "MODE", value_parser = settings_file::Mode::parse, help_heading = "Integration")]
    settings: Option<settings_file::Mode>,

    #[command(flatten)]
    fs: fs::FsArgs,

    #[command(flatten)]
    image: image::ImageArgs,

    #[command(flatten)]
    net: net::NetArgs,

    #[command(flatten)]
    pending: pending::PendingArgs,

    #[command(flatten)]
    security: security::SecurityArgs,

    #[command(flatten)]
    userns: userns::UsernsArgs,

    /// The command to run, or with --boot the arguments for init
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A slice name as systemd spells one: `a-b.slice` is nested in `a.slice`.
fn parse_slice(s: &str) -> Result<String, String> {
    let stem = s
        .strip_suffix(".slice")
        .ok_or_else(|| format!("Invalid slice name: {s}"))?;
    let ok = !stem.is_empty()
        && !stem.starts_with('-')
        && !stem.ends_with('-')
        && !stem.contains("--")
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:\\".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("Invalid slice name: {s}"))
    }
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

fn parse_properties(
    list: &[String],
) -> Result<Vec<libnspawn::systemd::property::Property>, String> {
    let mut out = vec![];
    for p in list {
        out.extend(
            libnspawn::systemd::property::parse(p)
                .map_err(|e| format!("Failed to parse --property= argument: {e}"))?,
        );
    }
    Ok(out)
}

fn parse_register(s: &str) -> Result<RegisterMode, String> {
    match s {
        "yes" | "true" | "on" | "1" | "y" | "t" => Ok(RegisterMode::Yes),
        "no" | "false" | "off" | "0" | "n" | "f" => Ok(RegisterMode::No),
        "auto" => Ok(RegisterMode::Auto),
        _ => Err(format!("Failed to parse --register= argument: {s}")),
    }
}

/// Why parsing ended without settings: clap's own output (help, version)
/// or a one-line error.
pub enum Failure {
    Clap(clap::Error),
    Message(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Message(s)
    }
}

/// The message of a clap error, as one line: our value checks say it all.
pub fn clap_message(e: &clap::Error) -> String {
    if e.kind() == clap::error::ErrorKind::ValueValidation {
        if let Some(src) = std::error::Error::source(e) {
            return src.to_string();
        }
    }
    let s = e.to_string();
    let line = s.lines().next().unwrap_or(&s);
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

fn clap_failure(e: clap::Error) -> Failure {
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            Failure::Clap(e)
        }
        _ => Failure::Message(clap_message(&e)),
    }
}

/// The whole command line, with the machine's `.nspawn` file merged in.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Settings, Failure> {
    let (mut cli, matches) = settings_file::reparse(&args).map_err(clap_failure)?;
    if let Some(bundle) = cli.oci_bundle.take() {
        return Ok(oci::settings(cli, &matches, bundle)?);
    }
    let mode = cli.settings.unwrap_or(settings_file::Mode::Yes);
    if mode == settings_file::Mode::No {
        return Ok(cli.into_settings()?);
    }
    let template = cli.fs.has_template();
    let at = locate(
        cli.directory.as_deref(),
        cli.image.image.as_deref(),
        cli.machine.as_deref(),
        template,
    )?;
    let Some(found) = libnspawn::nspawnfile::find(&at.machine, at.origin()) else {
        return Ok(cli.into_settings()?);
    };
    let merged = settings_file::merge(&args, &matches, &found, mode)?;
    let (cli, _) = settings_file::reparse(&merged).map_err(clap_failure)?;
    Ok(cli.into_settings()?)
}

impl Cli {
    pub fn try_parse_from_args(argv: impl IntoIterator<Item = String>) -> Result<Cli, clap::Error> {
        let matches = <Cli as clap::CommandFactory>::command().try_get_matches_from(argv)?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
    }

    /// Every check of the option values that does not need the tree, for
    /// a settings file's key on its own: values, not combinations (a key
    /// may need another, `Port=` a `VirtualEthernet=`; the merged command
    /// line is checked whole afterwards). The network values are checked
    /// by their parsers already.
    pub fn check_values(self) -> Result<(), String> {
        self.pending.check()?;
        for e in &self.setenv {
            libnspawn::env::parse_setenv(e, |_| None)?;
        }
        self.fs.into_settings()?;
        parse_properties(&self.property)?;
        self.security.values();
        Ok(())
    }

    /// Check the combination and fill in the defaults the reference derives.
    pub fn into_settings(self) -> Result<Settings, String> {
        self.pending.check()?;
        let properties = parse_properties(&self.property)?;
        if self.boot && self.as_pid2 {
            return Err("--boot and --as-pid2 may not be combined.".into());
        }
        let start_mode = match (self.boot, self.as_pid2) {
            (true, _) => StartMode::Boot,
            (_, true) => StartMode::Pid2,
            _ => StartMode::Pid1,
        };
        let fs = self.fs.into_settings()?;
        let (net, private_network) = self.net.into_settings()?;
        let security = self.security.into_settings(private_network)?;
        let userns = self.userns.into_settings()?;
        if userns.enabled() && net.namespace_path.is_some() {
            return Err("--network-namespace-path= cannot be combined with --private-users (the namespace belongs to the host's user namespace)".into());
        }
        let idmapped = fs.mounts.iter().any(|m| {
            matches!(m.kind, libnspawn::mount::spec::MountKind::Bind { idmap, .. }
                if idmap != libnspawn::mount::spec::Idmap::Off)
        });
        if idmapped && !userns.enabled() {
            return Err("idmap bind options need a user namespace (--private-users)".into());
        }
        let Located {
            directory,
            image,
            machine,
        } = locate(
            self.directory.as_deref(),
            self.image.image.as_deref(),
            self.machine.as_deref(),
            fs.template.is_some(),
        )?;
        if image.is_some() && fs.template.is_some() {
            return Err("--template= and --image= may not be combined.".into());
        }
        if image.is_some() && !userns.bind_users.is_empty() {
            return Err("--bind-user= with --image= is not supported yet".into());
        }
        let image = image.map(|p| self.image.spec(p));
        // Each ephemeral instance gets a name of its own unless one was
        // given, as in the reference (determine_names()); an empty `-M`
        // gives none.
        let named = self.machine.as_deref().is_some_and(|m| !m.is_empty());
        let machine = if fs.ephemeral && !named {
            ephemeral_name(&machine)?
        } else {
            machine
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
            identity: None,
            chdir: self.chdir,
            kill_signal: self.kill_signal,
            console: ConsoleMode::resolve(console, tty),
            quiet,
            keep_unit: self.keep_unit,
            register: self.register.unwrap_or_default(),
            private_network,
            fs,
            slice: self.slice,
            properties,
            knobs: libnspawn::settings::Knobs::from_env(|k| std::env::var(k).ok())
                .map_err(|e| e.to_string())?,
            net,
            security,
            userns,
            image,
            sysctl: vec![],
        })
    }
}

/// Where a container runs from: its tree, or a disk image whose root is
/// attached at the tree's path inside the container.
struct Located {
    directory: PathBuf,
    image: Option<PathBuf>,
    machine: String,
}

impl Located {
    /// What the user named: the image, else the tree (beside which its
    /// `.nspawn` file is looked for).
    fn origin(&self) -> &Path {
        self.image.as_deref().unwrap_or(&self.directory)
    }
}

/// The tree or image and the machine name, as the reference derives them:
/// `-D` or `-i`, or `-M NAME` on the machine search path, or the current
/// directory; the name from `-M` or the base name as given (an image's
/// without `.raw`).
fn locate(
    directory: Option<&Path>,
    image: Option<&Path>,
    machine: Option<&str>,
    template: bool,
) -> Result<Located, String> {
    let machine = machine.filter(|m| !m.is_empty());
    let given = match (directory, image, machine) {
        (Some(_), Some(_), _) => {
            return Err("--directory= and --image= may not be combined.".into())
        }
        (Some(d), None, _) => Place::Tree(absolute(d)?),
        (None, Some(i), _) => Place::Image(absolute(i)?),
        (None, None, Some(m)) => machine_image(m)?,
        (None, None, None) => Place::Tree(
            std::env::current_dir()
                .map_err(|e| format!("cannot get the current directory: {e}"))?,
        ),
    };
    let (given, is_image) = match given {
        Place::Tree(p) => (p, false),
        Place::Image(p) => (p, true),
    };
    let machine = match machine {
        Some(m) => m.to_string(),
        // From the path as given: a symlink's name, not its target's.
        None => given
            .components()
            .next_back()
            .and_then(|c| {
                let name = c.as_os_str().to_string_lossy();
                let name = match is_image {
                    true => name.strip_suffix(".raw").unwrap_or(&name).to_string(),
                    false => name.into_owned(),
                };
                settings::machine_name_from_path(&name)
            })
            .ok_or("Failed to determine machine name automatically, please use -M.")?,
    };
    if is_image {
        let image = given
            .canonicalize()
            .map_err(|e| format!("Failed to resolve path {}: {}", given.display(), lower(&e)))?;
        return Ok(Located {
            directory: PathBuf::from(libnspawn::disk::MOUNT_POINT),
            image: Some(image),
            machine,
        });
    }
    // A missing directory is fine when a template will fill it.
    let directory = match given.canonicalize() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && template => given.clone(),
        r => r.map_err(|e| format!("Failed to resolve path {}: {}", given.display(), lower(&e)))?,
    };
    if !directory.is_dir() && !template {
        return Err(format!("{} is not a directory", directory.display()));
    }
    if directory == Path::new("/") {
        return Err("spawning a container on the root directory is not supported".into());
    }
    Ok(Located {
        directory,
        image: None,
        machine,
    })
}

enum Place {
    Tree(PathBuf),
    Image(PathBuf),
}

/// The image `-M NAME` without `-D` or `-i` runs: found in the image
/// store's search path, as the reference's `image_find()`: a directory or
/// subvolume is the tree, `NAME.raw` or a block device a disk image.
fn machine_image(m: &str) -> Result<Place, String> {
    use libnspawn::image::store;
    match store::find(m) {
        Ok(i) if i.kind.is_tree() => Ok(Place::Tree(i.path)),
        Ok(i) => Ok(Place::Image(i.path)),
        Err(_) => Err(format!(
            "No image for machine '{m}' found in {}.",
            store::search_path()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn ephemeral_name(machine: &str) -> Result<String, String> {
    let id = Id128::random().map_err(|e| e.to_string())?;
    let base: String = machine.chars().take(64 - 17).collect();
    Ok(format!(
        "{}-{}",
        base.trim_end_matches(['.', '-']),
        &id.plain()[..16]
    ))
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir()
        .map(|c| c.join(p))
        .map_err(|e| format!("cannot get the current directory: {e}"))
}

/// An io::Error's text without the "(os error N)" suffix.
pub(crate) fn lower(e: &std::io::Error) -> String {
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
