//! `.nspawn` files: lookup, trust, precedence, syntax and errors.

use nspawn_tests::*;
use std::path::PathBuf;

/// A trusted settings file for a machine, removed on drop.
struct Trusted(PathBuf);

impl Trusted {
    fn new(machine: &str, text: &str) -> Trusted {
        std::fs::create_dir_all("/run/systemd/nspawn").unwrap();
        let p = PathBuf::from(format!("/run/systemd/nspawn/{machine}.nspawn"));
        std::fs::write(&p, text).unwrap();
        Trusted(p)
    }
}

impl Drop for Trusted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The file next to the tree (untrusted), removed with the tree's parent entry.
fn untrusted(t: &Tree, text: &str) -> PathBuf {
    let p = t.path.parent().unwrap().join(format!("{}.nspawn", t.name));
    std::fs::write(&p, text).unwrap();
    p
}

fn start(t: &Tree, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-q", "--pipe", "-D", t.dir()];
    args.extend_from_slice(extra);
    run(nspawn(&args))
}

#[test]
fn a_trusted_file_sets_exec_and_files() {
    let t = Tree::busybox("trusted");
    // The reference cannot make mount points in a read-only root.
    for d in ["data", "ro", "scratch"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    let host = PathBuf::from(format!("/var/tmp/nspawn-tests/{}-src", t.name));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "bound").unwrap();
    let text = format!(
        r#"# a comment
[Exec]
Parameters=/bin/sh -c 'echo "$0|$1"; echo $FOO/$BAR; hostname; pwd; echo $container_uuid; \
  cat /data/f; echo; echo x 2>/dev/null > /ro/f || echo ro-ok; stat -c %a /scratch; test -s /etc/os-release || echo masked; \
  touch /x 2>/dev/null || echo root-ro' "arg one" 'arg "two"'
Environment=FOO=foo "BAR=b a r"
WorkingDirectory=/tmp
Hostname=from-file
MachineID=0123456789abcdef0123456789abcdef
ResolvConf=off
Timezone=off
LinkJournal=no
KillSignal=SIGRTMIN+3
Boot=off

[Files]
ReadOnly=yes
Bind={h}:/data
BindReadOnly={h}:/ro
TemporaryFileSystem=/scratch:mode=0700
{inaccessible}Volatile=no
"#,
        h = host.display(),
        // The reference needs the host's /run/systemd/inaccessible for this.
        inaccessible = if reference() {
            ""
        } else {
            "Inaccessible=/etc/os-release\n"
        },
    );
    let _f = Trusted::new(&t.name, &text);
    let o = start(&t, &[]);
    let out = ok(o);
    assert_eq!(
        out,
        format!(
            "arg one|arg \"two\"\nfoo/b a r\nfrom-file\n/tmp\n01234567-89ab-cdef-0123-456789abcdef\nbound\nro-ok\n700\n{}root-ro\n",
            if reference() { "" } else { "masked\n" }
        )
    );
    std::fs::remove_dir_all(&host).unwrap();
}

#[test]
fn precedence_modes() {
    let t = Tree::busybox("modes");
    // Parameters= counts only with Boot= or ProcessTwo= in the same file.
    let _f = Trusted::new(
        &t.name,
        "[Exec]\nHostname=from-file\nBoot=no\nParameters=/bin/echo from-file-command\n",
    );
    // yes (default): the command line wins per setting, the file fills in.
    assert_eq!(ok(start(&t, &["--hostname=cli", "/bin/hostname"])), "cli\n");
    assert_eq!(ok(start(&t, &["--hostname=cli"])), "from-file-command\n");
    assert_eq!(ok(start(&t, &["/bin/hostname"])), "from-file\n");
    // override: the file wins.
    assert_eq!(
        ok(start(&t, &["--settings=override", "--hostname=cli"])),
        "from-file-command\n"
    );
    // no: the file is ignored.
    assert_eq!(
        ok(start(&t, &["--settings=no", "/bin/hostname"])),
        format!("{}\n", t.name)
    );
    assert_eq!(
        ok(start(&t, &["--settings=false", "/bin/hostname"])),
        format!("{}\n", t.name)
    );
}

#[test]
fn an_untrusted_file_applies_only_harmless_keys() {
    let t = Tree::busybox("untrusted");
    let path = untrusted(&t, "[Exec]\nHostname=harmless\nMachineID=0123456789abcdef0123456789abcdef\n[Files]\nTemporaryFileSystem=/evil\n[Network]\nPrivate=yes\n");
    let o = start(&t, &["/bin/sh", "-c", "hostname; test -e /evil || echo no-evil; echo $container_uuid; ls /sys/class/net | grep -c ."]);
    let out = ok(o.clone());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("harmless"));
    assert_eq!(lines.next(), Some("no-evil"));
    assert_ne!(lines.next(), Some("01234567-89ab-cdef-0123-456789abcdef"));
    assert!(
        lines.next().unwrap().parse::<u32>().unwrap() > 1,
        "private network applied from an untrusted file"
    );
    if !reference() {
        let err = stderr(&o);
        for key in ["MachineID", "TemporaryFileSystem", "Private"] {
            assert!(
                err.contains(&format!("Ignoring {key}= setting, file is not trusted.")),
                "{err}"
            );
        }
    }
    // --settings=trusted trusts it.
    let out = ok(start(
        &t,
        &[
            "--settings=trusted",
            "/bin/sh",
            "-c",
            "test -d /evil && echo evil-mounted",
        ],
    ));
    assert_eq!(out, "evil-mounted\n");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn syntax_lists_reset_and_unknown_keys_warn() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("syntax");
    let text = "[Exec]\n; comment\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2 \\\n  C=3\nUnknownKey=1\n[Mystery]\nX=y\n[Files]\nReadOnly=TRUE\n";
    let _f = Trusted::new(&t.name, text);
    let o = start(
        &t,
        &[
            "/bin/sh",
            "-c",
            "echo ${A:-unset} $B $C; touch /x 2>/dev/null || echo ro",
        ],
    );
    assert_eq!(ok(o.clone()), "unset 2 3\nro\n");
    let err = stderr(&o);
    assert!(
        err.contains(":7: Unknown key 'UnknownKey' in section [Exec], ignoring."),
        "{err}"
    );
    assert!(
        err.contains(":9: Unknown section [Mystery], ignoring."),
        "{err}"
    );
}

#[test]
fn bad_values_name_the_file_and_line_and_start_nothing() {
    // The reference warns and ignores a bad value; we refuse to start.
    if ours_only() {
        return;
    }
    let t = Tree::busybox("badfile");
    for (text, msg) in [
        ("[Exec]\nBoot=maybe\n", "Boot"),
        ("[Exec]\n\nMachineID=xyz\n", "xyz"),
        ("[Exec]\nKillSignal=NOPE\n", "NOPE"),
        ("[Files]\nVolatile=-1\n", "-1"),
        ("[Files]\nBind=relative:path\n", "relative:path"),
        ("[Exec]\nParameters=\"unbalanced\n", ""),
    ] {
        let f = Trusted::new(&t.name, text);
        let o = start(&t, &["/bin/sh", "-c", "touch /started"]);
        let err = host_quirks_removed(&stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{text}: {err}");
        assert!(!t.join("started").exists(), "{text}: the container started");
        assert!(
            err.starts_with(&format!("nspawn: {}:", f.0.display())) && err.contains(msg),
            "{text}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn network_section_applies_from_a_trusted_file() {
    let t = Tree::busybox("netfile");
    let _f = Trusted::new(&t.name, "[Network]\nVirtualEthernet=yes\n");
    let out = ok(start(
        &t,
        &["/bin/sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"],
    ));
    assert_eq!(out, "host0 lo ");
}

#[test]
fn confinement_and_limit_keys_apply() {
    let t = Tree::busybox("seckeys");
    let _f = Trusted::new(
        &t.name,
        "[Exec]\nLimitNOFILE=4096\nOOMScoreAdjust=300\nNoNewPrivileges=yes\nDropCapability=CAP_CHOWN\nPersonality=x86\nSystemCallFilter=~sethostname\n",
    );
    let out = ok(start(&t, &["/bin/sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status; \
        chown 1 /tmp 2>/dev/null || echo no-chown; uname -m; hostname other 2>/dev/null || echo no-sethostname"]));
    assert_eq!(
        out,
        "4096\n300\nNoNewPrivs:\t1\nno-chown\ni686\nno-sethostname\n"
    );
}
