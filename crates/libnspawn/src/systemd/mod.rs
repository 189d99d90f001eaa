//! Cooperation with systemd where it is the host's service manager: the
//! machine's scope unit, registration with systemd-machined, and
//! `--property=` assignments for them.

pub mod bus;
mod private;
pub mod property;

/// Whether systemd runs as the service manager here (sd_booted(3)).
pub fn running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}
