//! Confinement applied to the container's processes.

pub mod caps;
