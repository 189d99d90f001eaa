//! A bundle's settings onto the command line's: each setting the command
//! line did not give comes from the bundle, as the reference's
//! merge_settings() does with its settings mask. The bundle is trusted,
//! as the reference trusts it. What the bundle leaves out keeps the
//! command line's defaults, except three the reference turns off for a
//! bundle: `--resolv-conf`, `--link-journal` and `--timezone`.

use super::Oci;
use crate::mount::spec::{LinkJournal, ResolvConf, Timezone};
use crate::security::{caps, ProcessCaps};
use crate::settings::{ConsoleMode, Settings, StartMode};
use crate::userns::Mode;

/// The settings the command line can give, each one or more options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The command, `--boot`, `--as-pid2`.
    Command,
    Chdir,
    Environment,
    User,
    /// `--capability`, `--drop-capability`, `--ambient-capability`.
    Capabilities,
    NoNewPrivileges,
    /// `--system-call-filter`: the bundle's `linux.seccomp` replaces the
    /// filter those lists change.
    SystemCallFilter,
    OomScoreAdjust,
    CpuAffinity,
    Hostname,
    ReadOnly,
    /// `--bind`, `--bind-ro`, `--tmpfs`, `--overlay`, `--inaccessible`.
    Mounts,
    /// Every network option.
    Network,
    PrivateUsers,
    Slice,
    Console,
    ResolvConf,
    LinkJournal,
    Timezone,
}

/// Apply `oci` where `given` says the command line did not set the group.
pub fn apply(s: &mut Settings, oci: Oci, given: impl Fn(Group) -> bool) -> crate::Result<()> {
    let from = |g: Group| !given(g);
    if from(Group::Command) {
        s.start_mode = StartMode::Pid1;
        if let Some(args) = oci.args {
            s.parameters = args;
        }
    }
    if from(Group::Chdir) && oci.cwd.is_some() {
        s.chdir = oci.cwd;
    }
    if from(Group::Environment) {
        if let Some(env) = oci.env {
            s.setenv = env;
        }
    }
    if from(Group::User) && oci.identity.is_some() {
        s.user = None;
        s.identity = oci.identity;
    }
    if from(Group::Capabilities) {
        if let Some(c) = oci.caps {
            if let Some(b) = c.bounding {
                s.security.caps_add = b;
                s.security.caps_drop = caps::all_mask() & !b;
            }
            s.security.caps_ambient = c.ambient.unwrap_or(0);
            let known = c.effective.is_some() || c.permitted.is_some() || c.inheritable.is_some();
            if known {
                s.security.process_caps = Some(ProcessCaps {
                    effective: c.effective.unwrap_or(0),
                    permitted: c.permitted.unwrap_or(0),
                    inheritable: c.inheritable.unwrap_or(0),
                });
            }
        }
    }
    if from(Group::NoNewPrivileges) {
        if let Some(n) = oci.no_new_privileges {
            s.security.no_new_privileges = n;
        }
    }
    if from(Group::SystemCallFilter) && oci.seccomp.is_some() {
        s.security.syscall_policy = oci.seccomp;
    }
    if from(Group::OomScoreAdjust) && oci.oom_score_adjust.is_some() {
        s.security.limits.oom_score_adjust = oci.oom_score_adjust;
    }
    if from(Group::CpuAffinity) && oci.cpu_affinity.is_some() {
        s.security.limits.cpu_affinity = oci.cpu_affinity;
    }
    // Per resource: the command line's come later, and a later one wins.
    let mut rlimits = oci.rlimits;
    rlimits.append(&mut s.security.limits.rlimits);
    s.security.limits.rlimits = rlimits;
    if from(Group::Hostname) && oci.hostname.is_some() {
        s.hostname = oci.hostname;
    }
    if from(Group::ReadOnly) {
        if let Some(ro) = oci.read_only {
            s.fs.read_only = ro;
        }
    }
    if from(Group::Mounts) {
        s.fs.mounts = oci.mounts;
        s.fs.mounts.extend(oci.masked);
        s.fs.mounts.extend(oci.read_only_paths);
    }
    if from(Group::Network) {
        if let Some(p) = oci.private_network {
            s.private_network = p;
        }
        if oci.netns_path.is_some() {
            s.net.namespace_path = oci.netns_path;
        }
    }
    if from(Group::PrivateUsers) && oci.user_namespace == Some(true) {
        if let Some((base, size)) = oci.mapping {
            s.userns.mode = Mode::Fixed { base, size };
        }
    }
    if from(Group::Slice) && oci.slice.is_some() {
        s.slice = oci.slice;
    }
    s.properties.extend(oci.properties);
    if from(Group::Console) && oci.terminal == Some(false) {
        s.console = ConsoleMode::Pipe;
        s.quiet = true;
    }
    if from(Group::ResolvConf) {
        s.fs.resolv_conf = ResolvConf::Off;
    }
    if from(Group::LinkJournal) {
        s.fs.link_journal = LinkJournal::No;
    }
    if from(Group::Timezone) {
        s.fs.timezone = Timezone::Off;
    }
    // A network namespace of its own, from the bundle or the command line.
    let own_netns = s.private_network || s.net.namespace_path.is_some();
    if let Some((key, _)) = oci
        .sysctl
        .iter()
        .find(|(k, _)| crate::sysctl::scope(k) == Some(crate::sysctl::Scope::Net) && !own_netns)
    {
        return Err(crate::Error::invalid(format!(
            "linux.sysctl.{key}: a network sysctl needs a network namespace of the container's own"
        )));
    }
    s.sysctl = oci.sysctl;
    s.security.validate(s.private_network)?;
    if s.userns.enabled() && s.net.namespace_path.is_some() {
        return Err(crate::Error::invalid(
            "a network namespace path cannot be combined with a user namespace",
        ));
    }
    Ok(())
}
