//! Builds the differential harness's probe (`compat/probe.rs`) as a static
//! executable, so it runs inside any tree (busybox has no libc to load).
//! The same source is also a plain `[[bin]]` of this crate, which is how
//! rustfmt and clippy see it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "compat/probe.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("compat-probe");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // glibc's static libraries are what the escape battery's `gcc -static`
    // uses too; crt-static makes rustc link them.
    let st = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "-Copt-level=1",
            "-Cstrip=symbols",
            "-Ctarget-feature=+crt-static",
            "-o",
        ])
        .arg(&out)
        .arg(src)
        .status()
        .expect("rustc for the compat probe");
    assert!(st.success(), "building the static compat probe failed");
    println!("cargo:rustc-env=NSPAWN_COMPAT_PROBE={}", out.display());
}
