//! Confinement applied to the container's processes.

pub mod caps;

/// Confinement settings (`--capability=`, `--system-call-filter=`, ...),
/// filled by the command line and `.nspawn` files.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {}
