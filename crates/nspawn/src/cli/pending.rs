//! systemd-nspawn options whose feature has not landed yet: accepted with
//! the reference's spelling, so a script using them gets a clear "not
//! supported yet" instead of a parse error, and nothing is started.

use clap::Args;

#[derive(Args, Debug, Default)]
pub struct PendingArgs {
    #[arg(long = "notify-ready", hide = true)]
    notify_ready: Option<String>,
}

impl PendingArgs {
    /// The first option given that is not supported yet.
    pub fn check(&self) -> Result<(), String> {
        let given: [(&str, bool); 1] = [(
            "--notify-ready",
            self.notify_ready.as_deref().is_some_and(|v| v != "no"),
        )];
        match given.iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(format!("{name} is not supported yet")),
            None => Ok(()),
        }
    }
}
