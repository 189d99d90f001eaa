//! Link the unwinder statically (libgcc_eh) on glibc targets, so that the
//! runner does not load libgcc_s at every start (std asks for it only for
//! the few `_Unwind_*` calls of its panic backtraces; with panic=abort
//! nothing unwinds). This crate's native libraries come before std's on
//! the link line, so `_Unwind_*` resolve here and `--as-needed` drops
//! libgcc_s: one library less for ld.so to open, map and relocate.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if gnu && linux {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
