//! The image store: images found by name in the reference's search path
//! (`store`), what they take on disk (`usage`), and the verbs that change
//! them (`ops`), each under the same lock the runner takes on its tree.

pub mod cancel;
pub mod ops;
pub mod store;
pub mod transfer;
pub mod usage;

pub use store::{Image, Kind};
