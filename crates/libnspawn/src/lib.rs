//! Build and run systemd-nspawn style containers.
//!
//! `settings` is the model the binaries fill; `launch::run` does the rest.
//! See docs/ARCHITECTURE.md for the stages and who owns what.

pub mod cgroup;
pub mod console;
pub mod control;
pub mod disk;
pub mod env;
pub(crate) mod error;
mod helper;
pub(crate) mod id128;
pub mod image;
pub mod inner;
pub mod inroot;
pub(crate) mod journal;
pub(crate) mod knobs;
pub mod launch;
pub mod lock;
pub mod mount;
pub(crate) mod name;
pub mod net;
pub mod notify;
pub mod nspawnfile;
pub mod oci;
pub mod registry;
pub mod security;
pub mod settings;
pub(crate) mod signal;
pub mod sys;
pub mod sysctl;
pub mod systemd;
pub(crate) mod template;
pub mod unitfile;
pub mod user;
pub mod userns;

pub use error::{Error, Result};
pub use id128::Id128;
pub use settings::Settings;
