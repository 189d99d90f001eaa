//! `start`, `enable`, `disable`: machines as services. Where systemd runs,
//! the `nspawn@.service` template (units/ in the repository, installed by
//! scripts/boot-debian.sh) does it; where it does not, `start` runs the
//! machine in the background under `nspawn` directly and says so.

use clap::Args;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Args)]
pub struct StartArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Beyond machinectl: run a snapshot that is removed at the end (-x)
    #[arg(short = 'x', long)]
    ephemeral: bool,
    /// Beyond machinectl: give the machine a veth link (the default, as
    /// nspawn@.service), or none with `no` (the host's network)
    #[arg(long = "network-veth", value_name = "BOOL", default_value = "yes",
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    network_veth: bool,
}

/// Where `enable` links: systemd's directory for the administrator's
/// units, or `$NSPAWN_UNIT_DIR` (a test's own directory, or an image
/// being prepared, as `systemctl --root` would).
fn unit_dir() -> std::path::PathBuf {
    std::env::var_os("NSPAWN_UNIT_DIR")
        .filter(|d| !d.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| "/etc/systemd/system".into())
}

/// The link `enable` makes for `name`.
fn wants_link(name: &str) -> std::path::PathBuf {
    unit_dir()
        .join("machines.target.wants")
        .join(format!("nspawn@{name}.service"))
}

/// Whether `enable` linked `name` to start at boot.
pub fn is_enabled(name: &str) -> bool {
    wants_link(name).symlink_metadata().is_ok()
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn check_name(n: &str) -> Result<(), String> {
    if libnspawn::settings::machine_name_is_valid(n) {
        Ok(())
    } else {
        Err(format!("Invalid machine name: {n}"))
    }
}

pub fn enable(a: NamesArgs, on: bool) -> Result<i32, String> {
    let template = unit_dir().join("nspawn@.service");
    let wants = unit_dir().join("machines.target.wants");
    for n in &a.names {
        check_name(n)?;
        let link = wants_link(n);
        if on {
            if !template.exists() {
                return Err(format!(
                    "{} is not installed (scripts/boot-debian.sh installs it)",
                    template.display()
                ));
            }
            std::fs::create_dir_all(&wants)
                .map_err(|e| format!("cannot create {}: {e}", wants.display()))?;
            match std::os::unix::fs::symlink(&template, &link) {
                Ok(()) => println!(
                    "Created symlink {} → {}.",
                    link.display(),
                    template.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {}: {e}", link.display())),
            }
        } else {
            match std::fs::remove_file(&link) {
                Ok(()) => println!("Removed \"{}\".", link.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", link.display())),
            }
        }
    }
    if systemd_running() {
        let _ = std::process::Command::new("systemctl")
            .arg("daemon-reload")
            .status();
    }
    Ok(0)
}

pub fn start(a: StartArgs) -> Result<i32, String> {
    // The template's command line is fixed: a start that differs from it
    // runs the machine in the background as where systemd does not run.
    let as_template = !a.ephemeral && a.network_veth;
    for n in &a.names {
        check_name(n)?;
        if systemd_running() && as_template {
            let st = std::process::Command::new("systemctl")
                .arg("start")
                .arg(format!("nspawn@{n}.service"))
                .status()
                .map_err(|e| format!("cannot run systemctl: {e}"))?;
            if !st.success() {
                return Err(format!("Failed to start nspawn@{n}.service"));
            }
            continue;
        }
        start_detached(n, a.ephemeral, a.network_veth)?;
    }
    Ok(0)
}

/// No service manager: run the template's command line ourselves, in a
/// session of its own, with its output in /var/log/nspawn/NAME.log, and
/// wait until the machine is registered (or the runner gave up).
fn start_detached(n: &str, ephemeral: bool, veth: bool) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    if libnspawn::registry::get(n).is_ok() {
        return Err(format!("Machine {n} is already running."));
    }
    let nspawn = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("nspawn"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "nspawn".into());
    std::fs::create_dir_all("/var/log/nspawn")
        .map_err(|e| format!("cannot create /var/log/nspawn: {e}"))?;
    let log_path = format!("/var/log/nspawn/{n}.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("cannot create {log_path}: {e}"))?;
    let mut cmd = std::process::Command::new(&nspawn);
    // The template's command line (units/nspawn@.service).
    cmd.args([
        "--quiet",
        "--keep-unit",
        "--boot",
        "--link-journal=try-guest",
        "-U",
        "--settings=override",
        "--console=passive",
    ])
    .args(veth.then_some("--network-veth"))
    .args(ephemeral.then_some("--ephemeral"))
    .arg(format!("--machine={n}"))
    .stdin(std::process::Stdio::null())
    .stdout(log.try_clone().map_err(|e| e.to_string())?)
    .stderr(log);
    // SAFETY: setsid between fork and exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", nspawn.display()))?;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if libnspawn::registry::get(n).is_ok() {
            println!("Started machine {n} in the background (no systemd on this host); its console log: {log_path}");
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log.lines().last().unwrap_or("").to_string();
            return Err(format!("machine {n} did not start ({st}): {last}"));
        }
        if Instant::now() > end {
            return Err(format!(
                "machine {n} did not register within 30 s; see {log_path}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::StartArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Start {
        #[command(flatten)]
        a: StartArgs,
    }

    fn parse(args: &[&str]) -> Result<StartArgs, clap::Error> {
        Start::try_parse_from(std::iter::once("start").chain(args.iter().copied())).map(|s| s.a)
    }

    #[test]
    fn start_options() {
        let a = parse(&["m"]).unwrap();
        assert!(a.network_veth && !a.ephemeral);
        let a = parse(&["m", "--ephemeral", "--network-veth=no"]).unwrap();
        assert!(!a.network_veth && a.ephemeral);
        assert!(parse(&["m", "--network-veth=yes"]).unwrap().network_veth);
        assert!(parse(&["m", "--network-veth=maybe"]).is_err());
    }
}
