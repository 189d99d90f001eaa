//! The `nspawn` command line, shared by the binary and by `nspawn-gen`
//! (completions and man page from the same definitions).

pub mod cli;
