//! `nspawnctl` against `machinectl` where the reference runs: inside a
//! booted Debian guest with systemd-machined, for one machine our `nspawn`
//! started (and registered with machined) and one directory image, every
//! case of `compat::ctl::table()` goes to both tools; exit statuses and
//! answers are compared as the case says, and every difference must be in
//! `tests/compat/deviations.txt` (and every listed one must occur).

use nspawn_tests::compat::ctl::{self, Answer, IMAGE, MACHINE};
use nspawn_tests::compat::deviations;
use nspawn_tests::compat::report::judge;
use nspawn_tests::guest::*;
use nspawn_tests::*;
use std::collections::BTreeMap;

/// Run `tool ARGS` on the guest's console: its exit status and stdout.
fn ask(s: &mut PtySession, tool: &str, args: &str) -> Answer {
    let out = console(s, &format!("{tool} {args} 2>/dev/null; echo \"rc=$?\""));
    let (body, rc) = out.trim_end().rsplit_once("rc=").unwrap_or((&out, "-1"));
    Answer {
        status: rc.trim().parse().unwrap_or(-1),
        stdout: body.to_string(),
    }
}

#[test]
fn nspawnctl_answers_as_machinectl_does() {
    if ours_only() {
        return;
    }
    let t = DebianTree::new("ctl-cmp");
    let tree = Tree::busybox("ctl-tree");
    let image = Tree::busybox("ctl-image");
    let mut binds = our_tools();
    binds.push(format!("--bind={}:/srv/bb", tree.dir()));
    binds.push(format!("--bind={}:/var/lib/machines/{IMAGE}", image.dir()));
    let mut s = boot_with(&t, &binds.iter().map(String::as_str).collect::<Vec<_>>());
    login(&mut s);
    // Registered with machined before the payload runs; our record only
    // once it does (before that, machined reads the host's os-release).
    let started = console(
        &mut s,
        &format!(
            "(nspawn -q -D /srv/bb -M {MACHINE} /bin/sleep 600 >/tmp/m.log 2>&1 &); \
             for i in $(seq 300); do machinectl show {MACHINE} >/dev/null 2>&1 && \
               [ -e /run/nspawn/machines/{MACHINE} ] && break; sleep 0.1; done; \
             machinectl show {MACHINE} -p State --value"
        ),
    );
    assert!(started.contains("running"), "{started}");

    let mut found = BTreeMap::new();
    for case in ctl::table() {
        let args = case
            .args
            .replace("{machine}", MACHINE)
            .replace("{image}", IMAGE);
        let m = ask(&mut s, "machinectl", &args);
        let o = ask(&mut s, "nspawnctl", &args);
        let shown = format!(
            "  machinectl {args} -> {}\n  nspawnctl  {args} -> {}\n",
            m.status, o.status
        );
        found.insert(case.id, (ctl::compare(&case, &m, &o), shown));
    }
    let report = judge(&found, &deviations::load());
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat-ctl-report.txt");
    let _ = std::fs::write(&path, &report.full);
    eprintln!(
        "compat ctl: {} cases; {} differences, {} listed; report in {}",
        found.len(),
        report.differences,
        report.differences - report.unlisted,
        path.display()
    );
    console(&mut s, &format!("machinectl terminate {MACHINE}"));
    assert!(report.failures.is_empty(), "{}", report.failures);
}
