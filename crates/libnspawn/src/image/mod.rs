//! The image store: images found by name in the reference's search path
//! (`store`), what they take on disk (`usage`, `quota`), and the verbs that
//! change them (`ops`), each under the same lock the runner takes on its
//! tree. `btrfs`, `qgroup` and `block` are the kernel requests behind
//! subvolumes, quota groups and block devices (`ioctl`).

mod block;
pub(crate) mod btrfs;
pub mod cancel;
pub(crate) mod ioctl;
pub mod oci;
pub mod ops;
mod qgroup;
pub mod quota;
pub mod store;
pub mod transfer;
pub mod usage;

pub use store::{Image, Kind};
