//! Builds `nspawn-inner` (`inner/main.rs`) as a static executable, which
//! `libnspawn::inner` embeds: it runs inside machines from a sealed memfd
//! and must map nothing of the host's, so no shared library. The same
//! source is also a plain `[[bin]]` of this crate, which is how rustfmt
//! and clippy see it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    for f in ["inner/main.rs", "inner/join.rs", "inner/stub.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("nspawn-inner");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // glibc's static libraries (libc6-dev); crt-static makes rustc link
    // them. Fat LTO and size optimisation: about 1 MiB, mostly glibc.
    // For the architecture being built (its linker is cargo's to find:
    // CARGO_TARGET_<TRIPLE>_LINKER, passed on below).
    let target = std::env::var("TARGET").unwrap_or_default();
    let mut cmd = Command::new(rustc);
    if !target.is_empty() {
        cmd.arg(format!("--target={target}"));
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_uppercase().replace(['-', '.'], "_")
        );
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(linker) = std::env::var(&var) {
            cmd.arg(format!("-Clinker={linker}"));
        }
    }
    let st = cmd
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "--crate-name=nspawn_inner",
            "-Copt-level=s",
            "-Cpanic=abort",
            "-Clto=fat",
            "-Ccodegen-units=1",
            "-Cstrip=symbols",
            "-Ctarget-feature=+crt-static",
            "-o",
        ])
        .arg(&out)
        .arg("inner/main.rs")
        .status()
        .expect("rustc for nspawn-inner");
    assert!(st.success(), "building the static nspawn-inner failed");
    println!("cargo:rustc-env=NSPAWN_INNER={}", out.display());
}
