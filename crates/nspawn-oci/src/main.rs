//! `nspawn-oci`: an OCI runtime with runc's command line, as podman
//! (through conmon) and containerd (through its runc shim) call one. No
//! long-lived process of ours: `create` leaves the container's process
//! waiting on its exec FIFO, and its caller reaps it. The container is
//! built by libnspawn's container process. docs/design/oci-runtime.md.

mod blockio;
mod bundle;
mod cgroups;
mod cli;
mod console;
mod create;
mod devices;
mod events;
mod exec;
mod foreground;
mod hooks;
mod idmaps;
mod info;
mod lifecycle;
mod log;
mod scope;
mod state;
mod time;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.as_deref(), cli.log_format.as_deref());
    let root = cli.root.clone();
    let result = match cli.command {
        Command::Create(a) => create::create(&root, &a, cli.systemd_cgroup).map(|()| 0),
        Command::Run(a) => create::run(&root, &a, cli.systemd_cgroup),
        Command::Start { id } => lifecycle::start(&root, &id).map(|()| 0),
        Command::State { id } => info::state(&root, &id).map(|()| 0),
        Command::Kill { id, signal, all } => {
            lifecycle::kill(&root, &id, signal.as_deref(), all).map(|()| 0)
        }
        Command::Delete { id, force } => lifecycle::delete(&root, &id, force).map(|()| 0),
        Command::Pause { id } => lifecycle::freeze(&root, &id, true).map(|()| 0),
        Command::Resume { id } => lifecycle::freeze(&root, &id, false).map(|()| 0),
        Command::Ps { id, format, .. } => info::ps(&root, &id, &format).map(|()| 0),
        Command::List { format, quiet } => info::list(&root, &format, quiet).map(|()| 0),
        Command::Exec(a) => exec::exec(&root, &a),
        Command::Events {
            id,
            stats,
            interval,
        } => events::parse_interval(&interval)
            .and_then(|i| events::events(&root, &id, stats, i))
            .map(|()| 0),
        Command::Update(a) => lifecycle::update(&root, &a).map(|()| 0),
        Command::Features => info::features().map(|()| 0),
        Command::Spec { bundle, .. } => info::spec(bundle.as_deref()).map(|()| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logger.error(&format!("{e:#}"));
            std::process::exit(1)
        }
    }
}
