//! The NSS module: `getent hosts NAME` resolves a running machine.

use nspawn_tests::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn getent_resolves_a_running_machine() {
    if ours_only() {
        return;
    }
    let t = Tree::busybox("nss");
    let mut c = nspawn(&[
        "-q",
        "--pipe",
        "-n",
        "-D",
        t.dir(),
        "/bin/sh",
        "-c",
        "touch /running; sleep 30",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut runner = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::path::Path::new("/run/nspawn/machines")
            .join(&t.name)
            .exists()
    }));
    let record = std::fs::read_to_string(format!("/run/nspawn/net/{}", t.name)).unwrap();
    let ip = record
        .lines()
        .find_map(|l| l.strip_prefix("container_address="))
        .unwrap()
        .to_string();

    let nss = NssModule::new();
    let script = format!(
        "getent hosts {n}; getent hosts no-such-machine-{n}; echo rc=$?",
        n = t.name
    );
    let out = nss.shell(&script).output().unwrap();
    let text = text(&out.stdout);
    let mut lines = text.lines();
    let first: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        first,
        [ip.as_str(), t.name.as_str()],
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.next(), Some("rc=2"), "{text}");
    runner.kill().unwrap();
    runner.wait().unwrap();
    // Gone with the machine (its reaper removes the record).
    assert!(wait_until(Duration::from_secs(10), || {
        !std::path::Path::new("/run/nspawn/machines")
            .join(&t.name)
            .exists()
    }));
    let out = nss.shell(&script).output().unwrap();
    assert!(
        self::text(&out.stdout).starts_with("rc=2"),
        "{}",
        self::text(&out.stdout)
    );
}
