//! `nspawnctl`: machinectl's job for nspawn machines, with or without
//! systemd on the host. One small module per verb; machines are found in
//! the registry the runners publish (libnspawn::registry), images in the
//! image store (libnspawn::image).

mod cgtree;
mod copy;
mod image_ops;
mod images;
mod machine;
mod oci;
mod output;
mod raw;
mod relay;
mod shell;
mod signal;
mod status;
mod status_json;
mod table;
mod top;
mod transfers;
mod units;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nspawnctl",
    version,
    about = "Manage nspawn machines.",
    disable_help_subcommand = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
    /// machinectl's global options that change nothing here (nothing is
    /// paged, nothing asks for a password): accepted before or after the
    /// verb, so scripts written for machinectl run.
    #[arg(long = "no-pager", global = true, hide = true)]
    _no_pager: bool,
    #[arg(long = "no-ask-password", global = true, hide = true)]
    _no_ask_password: bool,
    /// Nothing is shortened to the terminal's width here.
    #[arg(short = 'l', long = "full", global = true, hide = true)]
    _full: bool,
}

#[derive(Subcommand)]
enum Verb {
    /// List running machines
    List(status::ListArgs),
    /// Show a machine's state, processes and journal
    Status(status::StatusArgs),
    /// Show a machine's properties
    Show(status::ShowArgs),
    /// Power a machine off cleanly (SIGRTMIN+4 to its init)
    Poweroff(signal::NamesArgs),
    /// Reboot a machine (SIGINT to its init)
    Reboot(signal::NamesArgs),
    /// End a machine now
    Terminate(signal::NamesArgs),
    /// Send a signal to a machine's processes
    Kill(signal::KillArgs),
    /// Run a command or a login shell inside a machine
    Shell(shell::ShellArgs),
    /// Log into a machine on a new terminal
    Login(shell::LoginArgs),
    /// Copy a file or tree from the host into a machine
    CopyTo(copy::CopyArgs),
    /// Copy a file or tree from a machine to the host
    CopyFrom(copy::CopyArgs),
    /// Bind mount a host path into a running machine
    Bind(copy::BindArgs),
    /// Show CPU, memory, tasks and I/O per machine
    Top(top::TopArgs),
    /// Start a machine (as a service where systemd runs, else in the background)
    Start(units::StartArgs),
    /// Start a machine at boot (link nspawn@NAME.service into machines.target.wants)
    Enable(units::NamesArgs),
    /// Do not start a machine at boot
    Disable(units::NamesArgs),
    /// List images in the image store
    ListImages(images::ListArgs),
    /// Show an image's type, state, OS and settings file
    ImageStatus(images::StatusArgs),
    /// Show an image's properties
    ShowImage(images::ShowArgs),
    /// Copy an image to a new name
    Clone(image_ops::CloneArgs),
    /// Rename an image (in its own directory)
    Rename(image_ops::RenameArgs),
    /// Remove images
    Remove(image_ops::RemoveArgs),
    /// Make an image read-only, or writable again
    ReadOnly(image_ops::ReadOnlyArgs),
    /// Set a btrfs quota limit on an image, or on the pool without NAME
    SetLimit(image_ops::SetLimitArgs),
    /// Remove hidden images (with --all, every image not in use)
    Clean(image_ops::CleanArgs),
    /// Import a tar archive (a file or stdin) as a new image
    ImportTar(transfers::ImportTarArgs),
    /// Import a directory tree as a new image
    ImportFs(transfers::ImportFsArgs),
    /// Write an image as a tar archive (a file or stdout)
    ExportTar(transfers::ExportTarArgs),
    /// Download a tar archive (http:// or file://) as a new image
    PullTar(transfers::PullTarArgs),
    /// Import a disk image (raw or QCOW2; a file or stdin) as NAME.raw
    ImportRaw(raw::ImportRawArgs),
    /// Write a raw image's bytes (a file or stdout)
    ExportRaw(raw::ExportRawArgs),
    /// Download a disk image (http:// or file://) as NAME.raw
    PullRaw(raw::PullRawArgs),
    /// Download an OCI image from a registry as a new image and its NAME.nspawn
    PullOci(oci::PullOciArgs),
    /// Import an OCI layout directory, oci-archive or docker-archive as a new image
    ImportOci(oci::ImportOciArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(0);
            }
            _ => {
                let s = e.to_string();
                let line = s.lines().next().unwrap_or(&s);
                fail(line.strip_prefix("error: ").unwrap_or(line))
            }
        },
    };
    if matches!(
        cli.verb,
        Verb::List(_)
            | Verb::Status(_)
            | Verb::Show(_)
            | Verb::Top(_)
            | Verb::ListImages(_)
            | Verb::ImageStatus(_)
            | Verb::ShowImage(_)
    ) {
        // A listing piped into `head` ends quietly when its reader goes,
        // as machinectl's does, instead of panicking on EPIPE. Not for the
        // verbs that serve a session or a copy: they clean up first.
        // SAFETY: the default disposition, set before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let r = match cli.verb {
        Verb::List(a) => status::list(a),
        Verb::Status(a) => status::status(a),
        Verb::Show(a) => status::show(a),
        Verb::Poweroff(a) => signal::poweroff(a),
        Verb::Reboot(a) => signal::reboot(a),
        Verb::Terminate(a) => signal::terminate(a),
        Verb::Kill(a) => signal::kill(a),
        Verb::Shell(a) => shell::shell(a),
        Verb::Login(a) => shell::login(a),
        Verb::CopyTo(a) => copy::copy(a, copy::Direction::To),
        Verb::CopyFrom(a) => copy::copy(a, copy::Direction::From),
        Verb::Bind(a) => copy::bind(a),
        Verb::Top(a) => top::top(a),
        Verb::Start(a) => units::start(a),
        Verb::Enable(a) => units::enable(a, true),
        Verb::Disable(a) => units::enable(a, false),
        Verb::ListImages(a) => images::list(a),
        Verb::ImageStatus(a) => images::status(a),
        Verb::ShowImage(a) => images::show(a),
        Verb::Clone(a) => image_ops::clone(a),
        Verb::Rename(a) => image_ops::rename(a),
        Verb::Remove(a) => image_ops::remove(a),
        Verb::ReadOnly(a) => image_ops::read_only(a),
        Verb::SetLimit(a) => image_ops::set_limit(a),
        Verb::Clean(a) => image_ops::clean(a),
        Verb::ImportTar(a) => transfers::import_tar(a),
        Verb::ImportFs(a) => transfers::import_fs(a),
        Verb::ExportTar(a) => transfers::export_tar(a),
        Verb::PullTar(a) => transfers::pull_tar(a),
        Verb::ImportRaw(a) => raw::import_raw(a),
        Verb::ExportRaw(a) => raw::export_raw(a),
        Verb::PullRaw(a) => raw::pull_raw(a),
        Verb::PullOci(a) => oci::pull_oci(a),
        Verb::ImportOci(a) => oci::import_oci(a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("nspawnctl: {msg}");
    std::process::exit(1)
}
