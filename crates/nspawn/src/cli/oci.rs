//! `--oci-bundle=DIR`: the bundle's `config.json` read by
//! `libnspawn::oci`, its tree the default for `-D`, and its settings
//! merged under the command line's: an option given here wins over the
//! bundle for the whole setting it belongs to, as in the reference. No
//! `.nspawn` file is read.

use super::settings_file::given;
use clap::ArgMatches;
use libnspawn::oci::merge::{self, Group};
use libnspawn::Settings;
use std::path::PathBuf;

/// The command line's options (clap ids) that set each group.
fn ids(g: Group) -> &'static [&'static str] {
    match g {
        Group::Command => &["boot", "as_pid2", "command"],
        Group::Chdir => &["chdir"],
        Group::Environment => &["setenv"],
        Group::User => &["user"],
        Group::Capabilities => &["capability", "drop_capability", "ambient_capability"],
        Group::NoNewPrivileges => &["no_new_privileges"],
        Group::SystemCallFilter => &["system_call_filter"],
        Group::OomScoreAdjust => &["oom_score_adjust"],
        Group::CpuAffinity => &["cpu_affinity"],
        Group::Hostname => &["hostname"],
        Group::ReadOnly => &["read_only"],
        Group::Mounts => super::settings_file::MOUNTS,
        Group::Network => super::settings_file::NETWORK,
        Group::PrivateUsers => &["private_users", "private_users_pick"],
        Group::Slice => &["slice"],
        Group::Console => &["console", "pipe"],
        Group::ResolvConf => &["resolv_conf"],
        Group::LinkJournal => &["link_journal", "j"],
        Group::Timezone => &["timezone"],
    }
}

/// The settings of `cli` with the bundle at `bundle` under them.
pub fn settings(
    mut cli: super::Cli,
    matches: &ArgMatches,
    bundle: PathBuf,
) -> Result<Settings, String> {
    if cli.image.image.is_some() {
        return Err("--oci-bundle= and --image= may not be combined.".into());
    }
    let bundle = super::absolute(&bundle)?;
    let oci = libnspawn::oci::load(&bundle).map_err(|e| e.to_string())?;
    if cli.directory.is_none() {
        cli.directory = oci.root.clone();
    }
    let mut s = cli.into_settings()?;
    merge::apply(&mut s, oci, |g| given(matches, ids(g))).map_err(|e| e.to_string())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_group_names_real_options() {
        let mut cmd = super::super::Cli::command();
        cmd.build();
        let all = [
            Group::Command,
            Group::Chdir,
            Group::Environment,
            Group::User,
            Group::Capabilities,
            Group::NoNewPrivileges,
            Group::SystemCallFilter,
            Group::OomScoreAdjust,
            Group::CpuAffinity,
            Group::Hostname,
            Group::ReadOnly,
            Group::Mounts,
            Group::Network,
            Group::PrivateUsers,
            Group::Slice,
            Group::Console,
            Group::ResolvConf,
            Group::LinkJournal,
            Group::Timezone,
        ];
        for g in all {
            for id in ids(g) {
                assert!(
                    cmd.get_arguments().any(|a| a.get_id() == *id),
                    "{g:?}: no option {id}"
                );
            }
        }
    }
}
