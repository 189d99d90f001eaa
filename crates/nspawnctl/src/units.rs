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

const UNIT_DIR: &str = "/etc/systemd/system";

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
    let template = Path::new(UNIT_DIR).join("nspawn@.service");
    let wants = Path::new(UNIT_DIR).join("machines.target.wants");
    for n in &a.names {
        check_name(n)?;
        let link = wants.join(format!("nspawn@{n}.service"));
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

pub fn start(a: NamesArgs) -> Result<i32, String> {
    for n in &a.names {
        check_name(n)?;
        if systemd_running() {
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
        start_detached(n)?;
    }
    Ok(0)
}

/// No service manager: run the template's command line ourselves, in a
/// session of its own, with its output in /var/log/nspawn/NAME.log, and
/// wait until the machine is registered (or the runner gave up).
fn start_detached(n: &str) -> Result<(), String> {
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
        "--network-veth",
        "-U",
        "--settings=override",
        "--console=passive",
    ])
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
