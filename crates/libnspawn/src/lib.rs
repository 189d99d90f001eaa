//! Build and run systemd-nspawn style containers.
//!
//! `settings` is the model the binaries fill; `launch::run` does the rest.
//! See docs/ARCHITECTURE.md for the stages and who owns what.

pub mod cgroup;
pub mod console;
pub mod control;
pub mod env;
pub mod error;
pub mod id128;
pub mod inroot;
pub mod journal;
pub mod launch;
pub mod lock;
pub mod mount;
pub mod net;
pub mod notify;
pub mod nspawnfile;
pub mod registry;
pub mod security;
pub mod settings;
pub mod sys;
pub mod systemd;
pub mod template;
pub mod unitfile;
pub mod user;
pub mod userns;

pub use error::{Error, Result};
pub use id128::Id128;
pub use settings::Settings;
