//! runc's command line, as far as its callers use it (REFERENCE §7):
//! global options before or after the command, signals by number or
//! name, `-f`/`-a`/`-b`/`-d`/`-t` short forms.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "nspawn-oci",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"),
    about = "An OCI runtime with runc's command line"
)]
pub struct Cli {
    /// Where the containers' state lives.
    #[arg(long, global = true, default_value = "/run/nspawn-oci")]
    pub root: PathBuf,
    /// Append errors to this file too.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// `text` or `json` (one JSON object per line).
    #[arg(long = "log-format", global = true)]
    pub log_format: Option<String>,
    /// cgroupsPath is `slice:prefix:name`.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc's callers; changes nothing.
    #[arg(long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct CreateArgs {
    pub id: String,
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted: we never pivot_root from the tree's parent anyway.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted: no session keyring is made.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// `run` only: return once started.
    #[arg(short, long, hide = true)]
    pub detach: bool,
}

#[derive(Args)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless `--process`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A runtime-spec `process` object as JSON.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub cwd: Option<String>,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// `UID[:GID]`.
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
}

#[derive(Args)]
pub struct UpdateArgs {
    pub id: String,
    /// LinuxResources JSON (`-` for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Set a container up, stopped before its process.
    Create(CreateArgs),
    /// Create, start, wait, delete.
    Run(CreateArgs),
    /// Run a created container's process.
    Start {
        id: String,
    },
    /// The runtime-spec state, as JSON.
    State {
        id: String,
    },
    /// Signal the container's process (or all with `--all`).
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Remove a stopped (or, with `--force`, any) container.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// The container's processes.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        ps_args: Vec<String>,
    },
    /// The containers under `--root`.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run another process in the container.
    Exec(ExecArgs),
    /// The container's resource usage, as JSON lines.
    Events {
        id: String,
        /// Once, then exit.
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Change the container's resources.
    Update(UpdateArgs),
    /// What this runtime supports, as JSON.
    Features,
    /// Write a starting config.json.
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        #[arg(long)]
        rootless: bool,
    },
}
