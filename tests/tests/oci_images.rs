//! pull-oci and import-oci against a real registry (Debian's
//! docker-registry on 127.0.0.1, images pushed by skopeo from layouts the
//! tests build from the busybox fixture), compared with what podman runs
//! for the same image; and against a scripted registry for the bad cases.
//! Each test has its own pool (`NSPAWN_IMAGE_PATH`, `Pool`).

use nspawn_tests::oci::*;
use nspawn_tests::pool::Pool;
use nspawn_tests::*;
use std::path::Path;
use std::process::{Command, Output};

fn nspawn_in(p: &Pool, args: &[&str]) -> Output {
    let mut c = nspawn(args);
    c.env("NSPAWN_IMAGE_PATH", &p.pool);
    run(c)
}

/// `podman run --rm IMAGE ARGS` with its storage under `root`, as this
/// host needs it (cgroupfs, file events, a bounded nofile).
fn podman(root: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "--runtime=runc",
            "--storage-driver=vfs",
        ])
        .args(args);
    run(c)
}

fn podman_run(root: &Path, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    // "--entrypoint=X IMAGE" as two arguments.
    let words: Vec<&str> = image.split(' ').collect();
    let (opts, image) = words.split_at(words.len() - 1);
    args.extend(opts);
    let image = image[0];
    args.extend([
        "--tls-verify=false",
        "--network=none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        image,
    ]);
    args.extend(cmd);
    ok(podman(root, &args))
}

/// The busybox tree with `/srv/app` and a non-root user.
fn app_tree(dir: &Path) {
    busybox(dir);
    std::fs::create_dir_all(dir.join("srv/app")).unwrap();
    let mut passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap_or_default();
    passwd.push_str("app:x:1000:1000::/srv/app:/bin/sh\n");
    std::fs::write(dir.join("etc/passwd"), passwd).unwrap();
}

fn app_config() -> serde_json::Value {
    serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo \"$GREETING from $(pwd) as $(id -u)\" \"$0\"", "arg0"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello world"],
        "WorkingDir": "/srv/app",
        "User": "1000",
        "StopSignal": "SIGINT",
        "ExposedPorts": {"8080/tcp": {}},
        "Labels": {"org.example.kind": "test"},
    })
}

#[test]
fn pull_runs_what_podman_runs() {
    if reference() {
        return;
    }
    let p = Pool::new("ocipull");
    let reg = Registry::start(&p.root.join("registry"));
    let tree = p.root.join("tree");
    app_tree(&tree);
    let layout = Layout::new(&p.root.join("layout"));
    let m = layout.image(
        "amd64",
        &[(LAYER_GZIP, tar_of(&tree, Some("gzip")))],
        app_config(),
    );
    let digest = m["digest"].as_str().unwrap().to_string();
    layout.finish(vec![m]);
    reg.push(&layout.dir, "lib/app:1.0");
    let r = reg.reference("lib/app:1.0");

    let name = unique("app");
    ok(p.ctl(&["pull-oci", &r, &name]));
    let settings = std::fs::read_to_string(p.pool.join(format!("{name}.nspawn"))).unwrap();
    assert!(settings.contains("Boot=no\n"), "{settings}");
    assert!(settings.contains("User=1000\n"), "{settings}");
    assert!(settings.contains("KillSignal=SIGINT\n"), "{settings}");
    assert!(settings.contains("# ExposedPort: 8080/tcp\n"), "{settings}");

    let ours = ok(nspawn_in(&p, &["-q", "--pipe", "-M", &name]));
    let theirs = podman_run(&p.root.join("podman"), &r, &[]);
    assert_eq!(ours, theirs);
    assert_eq!(ours.trim(), "hello world from /srv/app as 1000 arg0");
    // A command given replaces the image's whole command line, entry
    // point included (as nspawn's command does; podman keeps the entry
    // point unless --entrypoint is given).
    let ours = ok(nspawn_in(
        &p,
        &[
            "-q",
            "--pipe",
            "-M",
            &name,
            "/bin/sh",
            "-c",
            "echo $GREETING; id -u",
        ],
    ));
    let theirs = podman_run(
        &p.root.join("podman"),
        &format!("--entrypoint=/bin/sh {r}"),
        &["-c", "echo $GREETING; id -u"],
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours, "hello world\n1000\n");

    // Where it came from, kept with the image and shown.
    let status = ok(p.ctl(&["image-status", &name]));
    assert!(status.contains(&format!("Digest: {digest}")), "{status}");
    assert!(status.contains(&format!("Source: {r}")), "{status}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(p.ctl(&["list-images", "--output=json"]))).unwrap();
    assert_eq!(list[0]["digest"], digest.as_str());
    assert_eq!(list[0]["source"], r.as_str());

    // The default name, and --force.
    ok(p.ctl(&["pull-oci", &r]));
    let err = p.refused(&["pull-oci", &r]);
    assert!(err.contains("already exists"), "{err}");
    ok(p.ctl(&["pull-oci", "--force", &r]));
    // Rename and remove take the side files along.
    let other = unique("moved");
    ok(p.ctl(&["rename", "app-1.0", &other]));
    assert!(p.pool.join(format!("{other}.oci.json")).is_file());
    ok(p.ctl(&["remove", &other]));
    let left: Vec<String> = p
        .entries()
        .into_iter()
        .filter(|e| e.contains("moved") || e.starts_with("app-1.0"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
