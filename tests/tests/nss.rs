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

    // The module as glibc finds it (libnss_nspawn.so.2 on the library
    // path), and an nsswitch.conf naming it: both only in a private mount
    // namespace of the lookup, so the host's configuration is untouched.
    let dir = std::path::Path::new("/var/tmp/nspawn-tests").join(unique("nss"));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(
        nspawn_bin().with_file_name("libnss_nspawn.so"),
        dir.join("libnss_nspawn.so.2"),
    )
    .unwrap();
    let conf = std::fs::read_to_string("/etc/nsswitch.conf").unwrap();
    let conf: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("hosts:") {
                "hosts: files nspawn".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.join("nsswitch.conf"), conf).unwrap();
    let script = format!(
        "mount --bind {d}/nsswitch.conf /etc/nsswitch.conf && LD_LIBRARY_PATH={d} getent hosts {n}; LD_LIBRARY_PATH={d} getent hosts no-such-machine-{n}; echo rc=$?",
        d = dir.display(),
        n = t.name
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
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
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        self::text(&out.stdout).starts_with("rc=2"),
        "{}",
        self::text(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
