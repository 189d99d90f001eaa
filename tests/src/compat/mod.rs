//! The differential compatibility harness: every case of a table runs
//! under the reference (`systemd-nspawn --register=no --keep-unit`) and
//! under ours, on fresh copies of the same busybox tree, with a static
//! probe (`tests/compat/probe.rs`) as the payload. The exit status, the
//! stderr class and what the probe saw are compared; every difference must
//! be listed in `tests/compat/deviations.txt`, and every listed one must
//! still occur.
//!
//! - `cases`: the table, from our own option definitions
//! - `run`: trees, fixtures, one run of one binary
//! - `normalise`: probe output into sections, run-specific values out
//! - `compare`: what differs between the two, relative to each's baseline
//! - `deviations`: the known-deviations file and its link to the README
//! - `report`: differences judged against it
//! - `ctl`: `nspawnctl` against `machinectl` in a booted guest

pub mod cases;
pub mod compare;
pub mod ctl;
pub mod deviations;
pub mod normalise;
pub mod report;
pub mod run;
