//! Help, version, generated completions and man page, environment knobs.

use nspawn_tests::*;

#[test]
fn help_is_grouped_and_fits_a_terminal() {
    if ours_only() {
        return;
    }
    let o = run(nspawn(&["--help"]));
    let out = ok(o);
    for heading in [
        "Image:",
        "Execution:",
        "System identity:",
        "Mounts:",
        "Input/Output:",
        "Integration:",
    ] {
        assert!(out.contains(heading), "{heading} missing:\n{out}");
    }
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    let v = ok(run(nspawn(&["--version"])));
    assert!(v.starts_with("nspawn "), "{v}");
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    if ours_only() {
        return;
    }
    let gen = nspawn_bin().with_file_name("nspawn-gen");
    let dir = std::path::Path::new("/var/tmp/nspawn-tests").join(unique("gen"));
    let st = std::process::Command::new(&gen).arg(&dir).status().unwrap();
    assert!(st.success());
    let bash = dir.join("bash-completion/completions/nspawn");
    let text = std::fs::read_to_string(&bash).unwrap();
    assert!(text.contains("--ephemeral") && text.contains("--bind-ro"));
    assert!(std::process::Command::new("bash")
        .arg("-n")
        .arg(&bash)
        .status()
        .unwrap()
        .success());
    for f in [
        "zsh/site-functions/_nspawn",
        "fish/vendor_completions.d/nspawn.fish",
    ] {
        assert!(
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .contains("ephemeral"),
            "{f}"
        );
    }
    let man = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.join("man/man1/nspawn.1"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let page = text_of(&man.stdout);
    assert!(
        page.contains("--ephemeral") && page.contains("--resolv-conf"),
        "{page}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn text_of(b: &[u8]) -> String {
    // man formats with backspaces for bold on some pagers; drop them.
    let s = String::from_utf8_lossy(b).into_owned();
    let mut out = String::new();
    for c in s.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.replace('\u{2010}', "-")
}

#[test]
fn environment_knobs_of_the_reference() {
    let t = Tree::busybox("knobs");
    let mut c = nspawn(&["-q", "--pipe", "-D", t.dir(), "/bin/sh", "-c",
        "grep -c ' /tmp ' /proc/self/mountinfo; echo $container; touch /proc/sys/kernel/hostname && echo procsys-rw"]);
    c.env("SYSTEMD_NSPAWN_TMPFS_TMP", "0")
        .env("SYSTEMD_NSPAWN_CONTAINER_SERVICE", "my-manager")
        .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "yes");
    let o = run(c);
    assert_eq!(stdout(&o), "0\nmy-manager\nprocsys-rw\n", "{}", stderr(&o));
    // Without locking, a second runner may use a busy tree.
    let mut first = nspawn(&[
        "-q",
        "--pipe",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "touch /running; sleep 3",
    ]);
    first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = first.spawn().unwrap();
    assert!(wait_until(std::time::Duration::from_secs(10), || t
        .join("running")
        .exists()));
    // (Under another name: machine names stay unique.)
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-M",
        "knobs-second",
        "-D",
        t.dir(),
        "/bin/true",
    ]);
    c.env("SYSTEMD_NSPAWN_LOCK", "0");
    ok(run(c));
    let _ = first.kill();
    let _ = first.wait();
}

/// On a host without systemd (this one): `--register=` of any value is
/// quietly our registry alone, `--property=` is checked and then noted as
/// having no effect, and a bad one stops the start with one line.
#[test]
fn register_and_property_without_a_service_manager() {
    if ours_only() || std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let t = Tree::busybox("prop");
    for register in ["--register=yes", "--register=no", "--register=auto"] {
        let o = run(nspawn(&["-q", "-D", t.dir(), register, "/bin/true"]));
        assert!(o.status.success(), "{register}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{register}");
    }
    let o = run(nspawn(&[
        "-D",
        t.dir(),
        "--property=CPUWeight=100",
        "--property=MemoryMax=1G",
        "/bin/true",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--property= has no effect without a service manager"),
        "{}",
        stderr(&o)
    );
    let name = unique("badprop");
    for bad in [
        "--property=Frobnicate=1",
        "--property=CPUWeight=0",
        "--property=CPUWeight",
    ] {
        let o = run(nspawn(&[
            "-D",
            t.dir(),
            "-M",
            &name,
            bad,
            "/bin/sh",
            "-c",
            "touch /ran",
        ]));
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(
            err.contains("Failed to parse --property= argument"),
            "{err}"
        );
        assert!(!t.join("ran").exists(), "{bad}: the payload ran");
        assert!(!machine_cgroup(&name).exists(), "{bad}: a cgroup was left");
    }
}
