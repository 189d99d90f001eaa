//! `exec`: not done yet.

use anyhow::{bail, Result};
use std::path::Path;

pub fn exec(_root: &Path, a: &crate::cli::ExecArgs) -> Result<i32> {
    crate::state::check_id(&a.id)?;
    bail!("exec is not supported yet")
}
