//! File system options: ephemeral, volatile, read-only, binds, overlays,
//! /etc files, journal, credentials.

use clap::{ArgAction, Args};
use libnspawn::mount::spec::{self, FsSettings, LinkJournal, ResolvConf, Timezone, Volatile};

#[derive(Args, Debug, Default)]
pub struct FsArgs {
    /// Create a missing directory from this template tree
    #[arg(long, value_name = "PATH", help_heading = "Image")]
    template: Option<std::path::PathBuf>,

    /// Run on a throw-away snapshot of the tree
    #[arg(short = 'x', long, help_heading = "Image")]
    ephemeral: bool,

    /// Mount the root directory read-only
    #[arg(long = "read-only", help_heading = "Image")]
    read_only: bool,

    /// Run the system in volatile mode: yes, state, overlay, no
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = parse_volatile,
        help_heading = "Image")]
    volatile: Option<Volatile>,

    /// Pivot root to NEW inside the tree, keeping the old root at OLD
    #[arg(long = "pivot-root", value_name = "NEW[:OLD]", value_parser = parse_pivot, help_heading = "Image")]
    pivot_root: Option<(String, Option<String>)>,

    /// Bind mount a file or directory from the host (+SRC: from the tree)
    #[arg(long, value_name = "SRC[:DST[:OPTS]]", action = ArgAction::Append, help_heading = "Mounts")]
    bind: Vec<String>,

    /// Same as --bind, read-only
    #[arg(long = "bind-ro", value_name = "SRC[:DST[:OPTS]]", action = ArgAction::Append, help_heading = "Mounts")]
    bind_ro: Vec<String>,

    /// Mount an empty tmpfs at PATH
    #[arg(long, value_name = "PATH[:OPTS]", action = ArgAction::Append, help_heading = "Mounts")]
    tmpfs: Vec<String>,

    /// Overlay mount: lower directories, upper directory, destination
    #[arg(long, value_name = "LOWER...:UPPER:DEST", action = ArgAction::Append, help_heading = "Mounts")]
    overlay: Vec<String>,

    /// Read-only overlay mount
    #[arg(long = "overlay-ro", value_name = "LOWER...:DEST", action = ArgAction::Append, help_heading = "Mounts")]
    overlay_ro: Vec<String>,

    /// Make a path inaccessible (empty, unwritable)
    #[arg(long, value_name = "PATH", action = ArgAction::Append, help_heading = "Mounts")]
    inaccessible: Vec<String>,

    /// Set up /etc/resolv.conf: off, copy-host, bind-host, ..., auto (help: list)
    #[arg(
        long = "resolv-conf",
        value_name = "MODE",
        help_heading = "Integration"
    )]
    resolv_conf: Option<String>,

    /// Set up /etc/localtime: off, copy, bind, symlink, delete, auto (help: list)
    #[arg(long, value_name = "MODE", help_heading = "Integration")]
    timezone: Option<String>,

    /// Link the journal to the host: no, auto, host, guest, try-host, try-guest
    #[arg(long = "link-journal", value_name = "MODE", value_parser = parse_link_journal, help_heading = "Integration")]
    link_journal: Option<LinkJournal>,

    /// Same as --link-journal=try-guest
    #[arg(short = 'j', help_heading = "Integration")]
    j: bool,

    /// Pass a credential with this literal value
    #[arg(long = "set-credential", value_name = "ID:VALUE", action = ArgAction::Append, help_heading = "Credentials")]
    set_credential: Vec<String>,

    /// Pass a credential read from a host file
    #[arg(long = "load-credential", value_name = "ID:PATH", action = ArgAction::Append, help_heading = "Credentials")]
    load_credential: Vec<String>,
}

fn parse_volatile(s: &str) -> Result<Volatile, String> {
    Volatile::parse(s).map_err(|e| e.to_string())
}

fn parse_pivot(s: &str) -> Result<(String, Option<String>), String> {
    spec::parse_pivot_root(s).map_err(|e| e.to_string())
}

fn parse_link_journal(s: &str) -> Result<LinkJournal, String> {
    LinkJournal::parse(s).map_err(|e| e.to_string())
}

/// `help` lists a mode option's values and exits, as the reference.
fn help_or<T>(
    value: &Option<String>,
    modes: &[&str],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value.as_deref() {
        Some("help") => {
            println!("{}", modes.join("\n"));
            std::process::exit(0);
        }
        Some(v) => parse(v).map(Some),
        None => Ok(None),
    }
}

impl FsArgs {
    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

    pub fn into_settings(self) -> Result<FsSettings, String> {
        fn e<T>(r: libnspawn::Result<T>) -> Result<T, String> {
            r.map_err(|e| e.to_string())
        }
        if self.ephemeral && self.template.is_some() {
            return Err("--ephemeral and --template= may not be combined.".into());
        }
        if self.ephemeral && self.volatile.is_some_and(|v| v != Volatile::No) {
            return Err("--ephemeral and --volatile= may not be combined.".into());
        }
        // Resolved now, as the reference does, even when the tree exists.
        if let Some(t) = &self.template {
            t.canonicalize().map_err(|e| {
                let msg = e.to_string();
                let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
                format!("Failed to resolve path {}: {msg}", t.display())
            })?;
        }
        let mut mounts = Vec::new();
        // The reference applies them in this order of options.
        for b in &self.bind {
            mounts.push(e(spec::parse_bind(b, false))?);
        }
        for b in &self.bind_ro {
            mounts.push(e(spec::parse_bind(b, true))?);
        }
        for t in &self.tmpfs {
            mounts.push(e(spec::parse_tmpfs(t))?);
        }
        for o in &self.overlay {
            mounts.push(e(spec::parse_overlay(o, false))?);
        }
        for o in &self.overlay_ro {
            mounts.push(e(spec::parse_overlay(o, true))?);
        }
        for i in &self.inaccessible {
            mounts.push(e(spec::parse_inaccessible(i))?);
        }
        // Shallower destinations first, so a bind below another one stays visible.
        mounts.sort_by_key(|m| m.dest.matches('/').count());
        let mut credentials = Vec::new();
        for c in &self.set_credential {
            credentials.push(e(spec::parse_set_credential(c))?);
        }
        for c in &self.load_credential {
            credentials.push(e(spec::parse_load_credential(c))?);
        }
        for (i, (id, _)) in credentials.iter().enumerate() {
            if credentials[..i].iter().any(|(other, _)| other == id) {
                return Err(format!("Duplicate credential '{id}', refusing."));
            }
        }
        let resolv_conf = help_or(&self.resolv_conf, spec::RESOLV_CONF_MODES, |v| {
            ResolvConf::parse(v).map_err(|e| e.to_string())
        })?;
        let timezone = help_or(&self.timezone, spec::TIMEZONE_MODES, |v| {
            Timezone::parse(v).map_err(|e| e.to_string())
        })?;
        let link_journal = match (self.link_journal, self.j) {
            (Some(m), _) => m,
            (None, true) => LinkJournal::Guest { try_only: true },
            (None, false) => LinkJournal::default(),
        };
        Ok(FsSettings {
            read_only: self.read_only,
            volatile: self.volatile.unwrap_or_default(),
            ephemeral: self.ephemeral,
            template: self.template,
            mounts,
            resolv_conf: resolv_conf.unwrap_or_default(),
            timezone: timezone.unwrap_or_default(),
            link_journal,
            credentials,
            pivot_root: self.pivot_root,
            // Only an OCI bundle's, through `nspawn-oci`.
            device_nodes: vec![],
        })
    }
}
