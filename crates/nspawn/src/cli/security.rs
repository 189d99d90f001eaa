//! Confinement options: capabilities, system call filter, limits.

use clap::Args;
use libnspawn::security::SecuritySettings;

#[derive(Args, Debug, Default)]
pub struct SecurityArgs {}

impl SecurityArgs {
    pub fn into_settings(self) -> Result<SecuritySettings, String> {
        Ok(SecuritySettings::default())
    }
}
