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

/// A private podman: storage under the test's directory, its run root
/// (which podman wants shorter than 50 characters) in /tmp, its
/// containers below a cgroup parent of its own; dropping it removes the
/// run root and the cgroups (conmon's), and fails if a container's
/// cgroup or podman's default parent (`libpod_parent`) was left.
struct Podman {
    root: std::path::PathBuf,
    run: std::path::PathBuf,
    cgroup_parent: String,
    libpod_parent_before: bool,
}

impl Podman {
    fn new(root: &Path) -> Podman {
        let name = unique("pm");
        Podman {
            root: root.to_path_buf(),
            run: Path::new("/tmp").join(&name),
            cgroup_parent: format!("/nspawn-tests-{name}"),
            libpod_parent_before: !libpod_parents().is_empty(),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        wait_for_processes_of(&self.root);
        let _ = std::fs::remove_dir_all(&self.run);
        let left = remove_conmon_cgroups(&self.cgroup_parent);
        remove_cgroup_parent(&self.cgroup_parent);
        if std::thread::panicking() {
            return;
        }
        assert!(left.is_empty(), "cgroups left: {left:?}");
        if !self.libpod_parent_before {
            let l = libpod_parents();
            assert!(l.is_empty(), "podman's default cgroup parent left: {l:?}");
        }
    }
}

/// `podman ARGS` on that storage, as this host needs it (cgroupfs, file
/// events).
fn podman(pm: &Podman, args: &[&str]) -> Output {
    let mut c = contained(&pm.root.join("containers"), "podman");
    c.arg("--root")
        .arg(pm.root.join("storage"))
        .arg("--runroot")
        .arg(&pm.run)
        .args([
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "--runtime=runc",
            "--storage-driver=vfs",
        ])
        .args(args);
    run(c)
}

fn podman_run(root: &Podman, image: &str, cmd: &[&str]) -> String {
    let parent = format!("--cgroup-parent={}", root.cgroup_parent);
    let mut args = vec!["run", "--rm", &parent];
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
    let pm = Podman::new(&p.root.join("podman"));
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
    let theirs = podman_run(&pm, &r, &[]);
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
        &pm,
        &format!("--entrypoint=/bin/sh {r}"),
        &["-c", "echo $GREETING; id -u"],
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours, "hello world\n1000\n");
    let left = leaks::wait_clean(&name, &p.pool.join(&name));
    assert!(left.is_empty(), "{left:?}");

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

/// Every entry below `d`: path, owner, group, mode, type, link target,
/// size, sorted (`find -printf`); mtimes of directories left out, since
/// unpacking a later layer into one changes it.
fn listing(d: &Path) -> Vec<String> {
    let o = Command::new("find")
        .arg(".")
        .args(["-printf", "%p %U %G %m %y %l %s\n"])
        .current_dir(d)
        .output()
        .unwrap();
    let mut v: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with(". "))
        .map(|l| match l.split(' ').nth(4) {
            // A directory's size is the file system's business.
            Some("d") => l.rsplit_once(' ').unwrap().0.to_string(),
            _ => l.to_string(),
        })
        .collect();
    v.sort();
    v
}

/// A two-layer image: busybox with `/data/{a,b}`, `/etc/gone` and
/// `/keep/x` (gzip), then (zstd) `/data` made opaque with a new `c`,
/// `/etc/gone` whited out, and `/keep/y` added.
fn two_layers(root: &Path, layout: &Layout, zstd: bool) -> serde_json::Value {
    let (l1, l2) = (root.join("l1"), root.join("l2"));
    busybox(&l1);
    for d in ["data", "keep", "data/sub"] {
        std::fs::create_dir_all(l1.join(d)).unwrap();
    }
    for f in ["data/a", "data/b", "data/sub/deep", "etc/gone", "keep/x"] {
        std::fs::write(l1.join(f), f).unwrap();
    }
    for d in ["data", "etc", "keep"] {
        std::fs::create_dir_all(l2.join(d)).unwrap();
    }
    std::fs::write(l2.join("data/.wh..wh..opq"), "").unwrap();
    std::fs::write(l2.join("data/c"), "c").unwrap();
    std::fs::write(l2.join("etc/.wh.gone"), "").unwrap();
    std::fs::write(l2.join("keep/y"), "y").unwrap();
    let run = serde_json::json!({"Cmd": ["/bin/sh", "-c", "ls /data /keep; test -e /etc/gone && echo gone-is-there; echo done"]});
    layout.image(
        "amd64",
        &[
            (LAYER_GZIP, tar_of(&l1, Some("gzip"))),
            match zstd {
                true => (LAYER_ZSTD, tar_of(&l2, Some("zstd"))),
                false => (LAYER_GZIP, tar_of(&l2, Some("gzip"))),
            },
        ],
        run,
    )
}

/// A pool, a registry with the two-layer image as `two:1`, its layout,
/// the reference, and the name it was pulled as.
fn pulled_two_layers(prefix: &str, zstd: bool) -> (Pool, Registry, Layout, String, String) {
    let p = Pool::new(prefix);
    let reg = Registry::start(&p.root.join("registry"));
    let layout = Layout::new(&p.root.join("layout"));
    let m = two_layers(&p.root, &layout, zstd);
    layout.finish(vec![m]);
    reg.push(&layout.dir, "two:1");
    let r = reg.reference("two:1");
    let name = unique("two");
    ok(p.ctl(&["pull-oci", &r, &name]));
    (p, reg, layout, r, name)
}

fn blob_count(p: &Pool) -> usize {
    std::fs::read_dir(p.pool.join(".oci_store/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn layers_whiteouts_and_shared_layers() {
    if reference() {
        return;
    }
    let (p, reg, _layout, r, name) = pulled_two_layers("ocilayers", true);
    let pm = Podman::new(&p.root.join("podman"));
    let tree = p.pool.join(&name);
    assert!(!tree.join("etc/gone").exists());
    assert!(!tree.join("data/a").exists() && !tree.join("data/sub").exists());
    assert!(
        tree.join("data/c").is_file()
            && tree.join("keep/x").is_file()
            && tree.join("keep/y").is_file()
    );
    assert!(!tree.join("data/.wh..wh..opq").exists() && !tree.join("etc/.wh.gone").exists());
    let ours = ok(nspawn_in(&p, &["-q", "--pipe", "-M", &name]));
    let theirs = podman_run(&pm, &r, &[]);
    assert_eq!(ours, theirs);
    assert_eq!(ours, "/data:\nc\n\n/keep:\nx\ny\ndone\n");
    let left = leaks::wait_clean(&name, &p.pool.join(&name));
    assert!(left.is_empty(), "{left:?}");

    // The blob store is never listed, hidden images included.
    let all = ok(p.ctl(&["list-images", "--all", "--no-legend"]));
    assert!(!all.contains("oci"), "{all}");
    // A second image on the same base layer: only its own blobs come.
    let blobs = blob_count(&p);
    assert_eq!(blobs, 3, "config and two layers");
    let base = p.root.join("l1");
    let l3 = p.root.join("l3");
    std::fs::create_dir_all(&l3).unwrap();
    std::fs::write(l3.join("third"), "3").unwrap();
    let layout2 = Layout::new(&p.root.join("layout2"));
    let m2 = layout2.image(
        "amd64",
        &[
            (LAYER_GZIP, tar_of(&base, Some("gzip"))),
            (LAYER_TAR, tar_of(&l3, None)),
        ],
        serde_json::json!({"Cmd": ["/bin/cat", "/third"]}),
    );
    layout2.finish(vec![m2]);
    reg.push(&layout2.dir, "three:1");
    let name2 = unique("three");
    ok(p.ctl(&["pull-oci", &reg.reference("three:1"), &name2]));
    assert_eq!(blob_count(&p), blobs + 2, "a new config and one new layer");
    assert_eq!(ok(nspawn_in(&p, &["-q", "--pipe", "-M", &name2])), "3");

    // clean keeps what an image uses, removes what none does.
    ok(p.ctl(&["remove", &name]));
    let out = ok(p.ctl(&["clean"]));
    assert!(out.contains("Removed 2 OCI blobs"), "{out}");
    assert_eq!(blob_count(&p), 3);
    assert_eq!(ok(nspawn_in(&p, &["-q", "--pipe", "-M", &name2])), "3");
    ok(p.ctl(&["remove", &name2]));
    ok(p.ctl(&["clean"]));
    assert_eq!(blob_count(&p), 0);
}

/// A busybox layer, and a small layer with `/arch` naming `arch`.
fn arch_image(root: &Path, layout: &Layout, arch: &str) -> serde_json::Value {
    let base = root.join("base");
    if !base.exists() {
        busybox(&base);
    }
    let top = root.join(format!("top-{arch}"));
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("arch"), arch).unwrap();
    layout.image(
        arch,
        &[
            (LAYER_GZIP, tar_of(&base, Some("gzip"))),
            (LAYER_GZIP, tar_of(&top, Some("gzip"))),
        ],
        serde_json::json!({"Cmd": ["/bin/cat", "/arch"]}),
    )
}

#[test]
fn index_resolved_for_the_architecture_and_pins() {
    if reference() {
        return;
    }
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    let p = Pool::new("ociarch");
    let reg = Registry::start(&p.root.join("registry"));
    let layout = Layout::new(&p.root.join("layout"));
    let ms = vec![
        arch_image(&p.root, &layout, other),
        arch_image(&p.root, &layout, host),
    ];
    let other_digest = ms[0]["digest"].as_str().unwrap().to_string();
    layout.finish_multi(ms);
    reg.push(&layout.dir, "multi:1");
    let r = reg.reference("multi:1");
    let (a, b) = (unique("mine"), unique("theirs"));
    ok(p.ctl(&["pull-oci", &r, &a]));
    assert_eq!(ok(nspawn_in(&p, &["-q", "--pipe", "-M", &a])), host);
    ok(p.ctl(&["pull-oci", "--arch", other, &r, &b]));
    assert_eq!(
        std::fs::read_to_string(p.pool.join(&b).join("arch")).unwrap(),
        other
    );
    // The same as a Docker manifest list of schema 2 manifests.
    reg.push_as(&layout.dir, "multi:v2s2", "v2s2");
    let docker = unique("docker");
    ok(p.ctl(&["pull-oci", &reg.reference("multi:v2s2"), &docker]));
    assert_eq!(
        std::fs::read_to_string(p.pool.join(&docker).join("arch")).unwrap(),
        host
    );
    let err = p.refused(&["pull-oci", "--arch", "s390x", &r, &unique("none")]);
    assert!(err.contains("no image for linux/s390x"), "{err}");
    // A pin by digest: the registry's manifest must hash to it.
    let pinned = unique("pinned");
    ok(p.ctl(&[
        "pull-oci",
        &reg.reference(&format!("multi@{other_digest}")),
        &pinned,
    ]));
    assert_eq!(
        std::fs::read_to_string(p.pool.join(&pinned).join("arch")).unwrap(),
        other
    );
    let wrong = format!("multi@sha256:{}", "0".repeat(64));
    let err = p.refused(&["pull-oci", &reg.reference(&wrong), &unique("wrong")]);
    assert!(
        err.contains("not found (HTTP 404)") || err.contains("no such image"),
        "{err}"
    );
}

#[test]
fn imports_of_saved_images_match_the_pull() {
    if reference() {
        return;
    }
    // gzip: a docker-archive cannot hold zstd layers.
    let (p, reg, layout, r, pulled) = pulled_two_layers("ociimport", false);
    let want = listing(&p.pool.join(&pulled));
    assert!(
        want.len() > 20 && want.iter().any(|l| l.starts_with("./data/c ")),
        "{want:?}"
    );

    // Docker's schema 2 manifest of the same image: the same tree.
    reg.push_as(&layout.dir, "two:v2s2", "v2s2");
    let docker = unique("docker");
    ok(p.ctl(&["pull-oci", &reg.reference("two:v2s2"), &docker]));
    assert_eq!(listing(&p.pool.join(&docker)), want);
    let pm = Podman::new(&p.root.join("podman"));
    ok(podman(&pm, &["pull", "-q", "--tls-verify=false", &r]));
    for format in ["oci-archive", "docker-archive"] {
        let out = p.root.join(format!("{format}.tar"));
        ok(podman(
            &pm,
            &[
                "save",
                "-q",
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
                &r,
            ],
        ));
        let name = unique("imported");
        ok(p.ctl(&["import-oci", out.to_str().unwrap(), &name]));
        assert_eq!(listing(&p.pool.join(&name)), want, "{format}");
        let settings = std::fs::read_to_string(p.pool.join(format!("{name}.nspawn"))).unwrap();
        assert!(
            settings.contains("Parameters=\"/bin/sh\" \"-c\""),
            "{format}: {settings}"
        );
    }
    // The layout directory itself.
    let name = unique("layout");
    ok(p.ctl(&["import-oci", layout.dir.to_str().unwrap(), &name]));
    assert_eq!(listing(&p.pool.join(&name)), want);
    assert_eq!(
        ok(nspawn_in(&p, &["-q", "--pipe", "-M", &name])),
        "/data:\nc\n\n/keep:\nx\ny\ndone\n"
    );
    // Not an image: one line, nothing left.
    let junk = p.root.join("junk.tar");
    std::fs::write(&junk, vec![0u8; 10240]).unwrap();
    let err = p.refused(&["import-oci", junk.to_str().unwrap(), &unique("junk")]);
    assert!(
        err.contains("neither index.json nor manifest.json"),
        "{err}"
    );
    assert!(
        !p.entries()
            .iter()
            .any(|e| e.contains("junk") || e.starts_with(".#")),
        "{:?}",
        p.entries()
    );
}

/// A one-layer image of a tree with `/hello` (no busybox: only pulled).
fn small_image(root: &Path, layout: &Layout, layer_type: &str) -> serde_json::Value {
    let t = root.join("small");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("hello"), "hi").unwrap();
    layout.image(
        "amd64",
        &[(layer_type, tar_of(&t, Some("gzip")))],
        serde_json::json!({}),
    )
}

/// What a failed pull may leave: nothing but the (verified) blob store.
#[track_caller]
fn nothing_left(p: &Pool) {
    let left: Vec<String> = p
        .entries()
        .into_iter()
        .filter(|e| e != ".oci_store")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn ctl_env(p: &Pool, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = nspawnctl(args);
    c.env("NSPAWN_IMAGE_PATH", &p.pool);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c)
}

#[test]
fn bad_registries_fail_cleanly() {
    if reference() {
        return;
    }
    let p = Pool::new("ocibad");
    let s = Scripted::start();
    let at = |repo_tag: &str| format!("127.0.0.1:{}/{repo_tag}", s.port);
    let layout = Layout::new(&p.root.join("layout"));
    let m = small_image(&p.root, &layout, LAYER_GZIP);
    let (layer, layer_bytes) = layout.first_layer(&m);

    // Unknown tag.
    let err = p.refused(&["pull-oci", &at("nope:1"), "x"]);
    assert!(err.contains("no such image or tag (HTTP 404)"), "{err}");
    nothing_left(&p);

    // The good image first, so each case below breaks one thing.
    s.serve_layout(&layout, "good", "1", &m);
    ok(p.ctl(&["pull-oci", &at("good:1"), "good"]));
    assert_eq!(
        std::fs::read_to_string(p.pool.join("good/hello")).unwrap(),
        "hi"
    );
    ok(p.ctl(&["remove", "good"]));
    ok(p.ctl(&["clean"]));

    // A blob that is not what its digest says; one cut short.
    s.serve_layout(&layout, "bad", "1", &m);
    let blob_path = format!("/v2/bad/blobs/{layer}");
    let mut wrong = layer_bytes.clone();
    *wrong.last_mut().unwrap() ^= 1;
    s.set(
        &blob_path,
        Answer::Ok("application/octet-stream".into(), wrong),
    );
    let err = p.refused(&["pull-oci", &at("bad:1"), "bad"]);
    assert!(
        err.contains(&format!("blob {layer} does not match its digest")),
        "{err}"
    );
    nothing_left(&p);
    assert!(!p.pool.join(".oci_store/sha256").join(&layer[7..]).exists());
    s.set(
        &blob_path,
        Answer::Truncate(
            layer_bytes[..layer_bytes.len() / 2].to_vec(),
            layer_bytes.len(),
        ),
    );
    let err = p.refused(&["pull-oci", &at("bad:1"), "bad"]);
    assert!(
        err.contains(&format!("cannot read {layer}: response body closed")),
        "{err}"
    );
    nothing_left(&p);

    // A manifest too big to be one; a redirect loop.
    s.set(
        "/v2/big/manifests/1",
        Answer::Ok(manifest_type(), vec![b' '; 5 << 20]),
    );
    let err = p.refused(&["pull-oci", &at("big:1"), "big"]);
    assert!(err.contains("larger than 4194304 bytes"), "{err}");
    let loop_to = vec![("Location".to_string(), "/v2/loop/manifests/1".to_string())];
    s.set("/v2/loop/manifests/1", Answer::Status(302, loop_to));
    let err = p.refused(&["pull-oci", &at("loop:1"), "loop"]);
    assert!(err.to_lowercase().contains("redirects"), "{err}");
    nothing_left(&p);

    // Docker's old schema 1, which has no config to run the image by.
    let v1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    s.set(
        "/v2/v1/manifests/1",
        Answer::Ok(v1.into(), br#"{"schemaVersion":1,"name":"v1"}"#.to_vec()),
    );
    let err = p.refused(&["pull-oci", &at("v1:1"), "v1"]);
    assert!(
        err.contains(&format!("unsupported media type '{v1}'")),
        "{err}"
    );
    // A layer type we do not unpack.
    let odd = Layout::new(&p.root.join("odd"));
    let om = small_image(
        &p.root,
        &odd,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    );
    s.serve_layout(&odd, "odd", "1", &om);
    let err = p.refused(&["pull-oci", &at("odd:1"), "odd"]);
    assert!(err.contains("unsupported media type"), "{err}");
    nothing_left(&p);
}

fn manifest_type() -> String {
    "application/vnd.oci.image.manifest.v1+json".into()
}

#[test]
fn registry_auth_basic_and_bearer() {
    if reference() {
        return;
    }
    let p = Pool::new("ociauth");
    let s = Scripted::start();
    let at = |repo_tag: &str| format!("127.0.0.1:{}/{repo_tag}", s.port);
    let layout = Layout::new(&p.root.join("layout"));
    let m = small_image(&p.root, &layout, LAYER_GZIP);
    s.serve_layout(&layout, "priv", "1", &m);
    // Every route of the repository behind Basic auth for u:secret.
    let basic = "Basic dTpzZWNyZXQ=".to_string();
    let routes: Vec<(String, Answer)> = s
        .routes
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &routes {
        s.set(
            k,
            Answer::Auth(
                basic.clone(),
                "Basic realm=\"reg\"".into(),
                Box::new(v.clone()),
            ),
        );
    }
    let err = p.refused(&["pull-oci", &at("priv:1"), "a"]);
    assert!(err.contains("authentication required"), "{err}");
    let err = p.refused(&["pull-oci", "--creds", "u:wrong", &at("priv:1"), "a"]);
    assert!(err.contains("authentication failed"), "{err}");
    nothing_left(&p);
    ok(p.ctl(&["pull-oci", "--creds", "u:secret", &at("priv:1"), "a"]));
    let blob_hits = || -> usize {
        s.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains("/blobs/"))
            .map(|(_, n)| n)
            .sum()
    };
    let fetched = blob_hits();
    assert!(fetched >= 2, "{fetched}");

    // Bearer: a token from the realm, which wants the credentials of an
    // auth file.
    let token = format!("http://127.0.0.1:{}/token", s.port);
    let challenge =
        format!("Bearer realm=\"{token}\",service=\"reg\",scope=\"repository:priv:pull\"");
    for (k, v) in &routes {
        s.set(
            k,
            Answer::Auth(
                "Bearer tok-1".into(),
                challenge.clone(),
                Box::new(v.clone()),
            ),
        );
    }
    s.set(
        "/token",
        Answer::Auth(
            basic.clone(),
            "Basic realm=\"t\"".into(),
            Box::new(Answer::Ok(
                "application/json".into(),
                br#"{"token":"tok-1"}"#.to_vec(),
            )),
        ),
    );
    let err = p.refused(&["pull-oci", &at("priv:1"), "b"]);
    assert!(err.contains("authentication failed"), "{err}");
    let auth = p.root.join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"dTpzZWNyZXQ="}}}}}}"#,
            s.port
        ),
    )
    .unwrap();
    ok(ctl_env(
        &p,
        &["pull-oci", &at("priv:1"), "b"],
        &[("REGISTRY_AUTH_FILE", &auth)],
    ));
    assert_eq!(
        std::fs::read_to_string(p.pool.join("b/hello")).unwrap(),
        "hi"
    );
    assert!(s.hits("/token") >= 2);
    // Its blobs were all in the store: not one was asked for again.
    assert_eq!(blob_hits(), fetched);
    // An anonymous token: the realm gives one without credentials.
    s.set(
        "/token",
        Answer::Ok("application/json".into(), br#"{"token":"tok-1"}"#.to_vec()),
    );
    ok(p.ctl(&["pull-oci", &at("priv:1"), "c"]));
}

/// A layer written by a stranger: a tar from Python's tarfile with
/// entries `entries` (name, kind, link target or content).
fn hostile_layer(dir: &Path, entries: &[(&str, &str, &str)]) -> Vec<u8> {
    let spec = serde_json::to_string(entries).unwrap();
    let out = dir.join("hostile.tar");
    let script = r#"
import io, json, sys, tarfile
with tarfile.open(sys.argv[2], "w") as t:
    for name, kind, arg in json.loads(sys.argv[1]):
        i = tarfile.TarInfo(name)
        if kind == "dir":
            i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
        elif kind == "symlink":
            i.type = tarfile.SYMTYPE; i.linkname = arg; t.addfile(i)
        elif kind == "hardlink":
            i.type = tarfile.LNKTYPE; i.linkname = arg; t.addfile(i)
        else:
            b = arg.encode(); i.size = len(b); i.mode = 0o644; t.addfile(i, io.BytesIO(b))
"#;
    let st = Command::new("python3")
        .args(["-c", script, &spec])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(&out).unwrap()
}

#[test]
fn hostile_layers_stay_inside() {
    if reference() {
        return;
    }
    let p = Pool::new("ocihostile");
    let outside = p.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), "keep").unwrap();
    let o = outside.to_str().unwrap();
    let s = Scripted::start();
    let at = |r: &str| format!("127.0.0.1:{}/{r}", s.port);
    // Writing through an absolute symlink to a host directory: refused
    // (the directory does not exist inside the image).
    let wt = Layout::new(&p.root.join("wt"));
    let l = hostile_layer(
        &p.root,
        &[("abs", "symlink", o), ("abs/pwned", "file", "x")],
    );
    let wm = wt.image("amd64", &[(LAYER_TAR, l)], serde_json::json!({}));
    s.serve_layout(&wt, "wt", "1", &wm);
    let err = p.refused(&["pull-oci", &at("wt:1"), "wt"]);
    assert!(err.contains("cannot unpack abs/pwned"), "{err}");
    nothing_left(&p);
    // Whiteouts through symlinks and with `..`: removed inside, or not at all.
    let layout = Layout::new(&p.root.join("layout"));
    let l1 = hostile_layer(
        &p.root,
        &[
            ("abs", "symlink", o),
            ("../escape", "file", "x"),
            ("rel", "symlink", "../../../../../../../../.."),
            ("inside", "file", "x"),
        ],
    );
    let l2 = hostile_layer(
        &p.root,
        &[
            ("abs/.wh.victim", "file", ""),
            (&format!("rel{o}/.wh.victim"), "file", ""),
            ("x/.wh...", "file", ""),
            ("../.wh.outside", "file", ""),
            ("rel/.wh.inside", "file", ""),
        ],
    );
    let m = layout.image(
        "amd64",
        &[(LAYER_TAR, l1), (LAYER_TAR, l2)],
        serde_json::json!({}),
    );
    s.serve_layout(&layout, "evil", "1", &m);
    ok(p.ctl(&["pull-oci", &at("evil:1"), "evil"]));
    // `rel` is the image's root from inside: its `inside` went, nothing else.
    assert!(!p.pool.join("evil/inside").exists());
    assert_eq!(
        std::fs::read_link(p.pool.join("evil/abs")).unwrap(),
        outside
    );
    // A hard link to a host file: no such file in the image, refused.
    let hl = Layout::new(&p.root.join("hl"));
    let target = format!("{}/victim", outside.display());
    let hm = hl.image(
        "amd64",
        &[(
            LAYER_TAR,
            hostile_layer(&p.root, &[("hl", "hardlink", &target)]),
        )],
        serde_json::json!({}),
    );
    s.serve_layout(&hl, "hl", "1", &hm);
    let err = p.refused(&["pull-oci", &at("hl:1"), "hl"]);
    assert!(err.contains("cannot unpack hl"), "{err}");
    assert!(!p.pool.join("hl").exists());
    let mut outside_now: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside_now.sort();
    assert_eq!(outside_now, ["victim"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "keep"
    );
    assert!(!p.root.join("escape").exists() && !p.pool.join("escape").exists());
    assert!(p.root.join("outside").is_dir());
}

/// Processes whose command line has `needle` (a pull of one test).
fn pulls_of(needle: &str) -> bool {
    !processes_with(needle).is_empty()
}

#[test]
fn interrupted_pulls_leave_nothing() {
    if reference() {
        return;
    }
    let p = Pool::new("ociint");
    let s = Scripted::start();
    let layout = Layout::new(&p.root.join("layout"));
    let big = p.root.join("big");
    std::fs::create_dir_all(&big).unwrap();
    // Incompressible, so the layer is as big as the file: 1 MiB, served
    // at 4 KiB per 20 ms (about 5 s).
    let mut data = vec![0u8; 1 << 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut data))
        .unwrap();
    std::fs::write(big.join("noise"), &data).unwrap();
    let m = layout.image(
        "amd64",
        &[(LAYER_GZIP, tar_of(&big, Some("gzip")))],
        serde_json::json!({}),
    );
    s.serve_layout(&layout, "slow", "1", &m);
    let (layer, bytes) = layout.first_layer(&m);
    let path = format!("/v2/slow/blobs/{layer}");
    s.set(
        &path,
        Answer::Slow(bytes, std::time::Duration::from_millis(20)),
    );
    let r = format!("127.0.0.1:{}/slow:1", s.port);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        let hits = s.hits(&path);
        let name = unique("slow");
        let mut c = nspawnctl(&["pull-oci", &r, &name]);
        c.env("NSPAWN_IMAGE_PATH", &p.pool)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = c.spawn().unwrap();
        assert!(wait_until(std::time::Duration::from_secs(10), || s
            .hits(&path)
            > hits));
        std::thread::sleep(std::time::Duration::from_millis(500));
        unsafe { libc::kill(child.id() as i32, sig) };
        let o = wait_output(child, std::time::Duration::from_secs(20));
        if sig == libc::SIGKILL {
            assert_eq!(o.status.code(), None);
        } else {
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            assert!(stderr(&o).contains("cancelled"), "{}", stderr(&o));
        }
        assert!(!pulls_of(&name));
        nothing_left(&p);
        // No partial blob either: the store has only the config.
        let blobs = std::fs::read_dir(p.pool.join(".oci_store/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 1, "after signal {sig}");
    }
}

#[test]
fn https_registry_with_its_certificate() {
    if reference() {
        return;
    }
    let p = Pool::new("ocitls");
    let dir = p.root.join("registry");
    let reg = Registry::start_tls(&dir);
    let layout = Layout::new(&p.root.join("layout"));
    let m = small_image(&p.root, &layout, LAYER_GZIP);
    layout.finish(vec![m]);
    reg.push(&layout.dir, "small:1");
    let r = reg.reference("small:1");
    let ca = dir.join("ca.pem");
    // Verified against the CA it names: pulled over https.
    ok(ctl_env(
        &p,
        &["pull-oci", "--tls-verify=yes", &r, "small"],
        &[("SSL_CERT_FILE", &ca)],
    ));
    assert_eq!(
        std::fs::read_to_string(p.pool.join("small/hello")).unwrap(),
        "hi"
    );
    // Not trusted without it; plain http (a loopback default) finds TLS.
    let err = p.refused(&["pull-oci", "--tls-verify=yes", &r, "other"]);
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
    let err = p.refused(&["pull-oci", &r, "other"]);
    assert!(err.contains("cannot pull"), "{err}");
    let left: Vec<String> = p
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("other"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// SIGKILL while a layer is being unpacked: the locked temporary stays
/// until the next transfer into the pool sweeps it, and the unpacker
/// died with its parent.
#[test]
fn killed_while_unpacking_is_swept() {
    if reference() {
        return;
    }
    let p = Pool::new("ocikill");
    let big = p.root.join("big");
    std::fs::create_dir_all(&big).unwrap();
    // 128 MiB of zeros: small as gzip, long enough to write.
    std::fs::File::create(big.join("zeros"))
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    let layout = Layout::new(&p.root.join("layout"));
    let m = layout.image(
        "amd64",
        &[(LAYER_GZIP, tar_of(&big, Some("gzip")))],
        serde_json::json!({}),
    );
    layout.finish(vec![m]);
    let name = unique("killed");
    let mut c = nspawnctl(&["import-oci", layout.dir.to_str().unwrap(), &name]);
    c.env("NSPAWN_IMAGE_PATH", &p.pool)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let temp = |p: &Pool| p.entries().iter().any(|e| e.starts_with(".#"));
    assert!(wait_until(std::time::Duration::from_secs(20), || temp(&p)));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(wait_until(std::time::Duration::from_secs(10), || {
        processes_with(&name).is_empty()
    }));
    assert!(!p.pool.join(&name).exists());
    assert!(temp(&p), "{:?}", p.entries());
    // The next import sweeps the dead temporary.
    let small = Layout::new(&p.root.join("small"));
    let sm = small_image(&p.root, &small, LAYER_GZIP);
    small.finish(vec![sm]);
    ok(p.ctl(&["import-oci", small.dir.to_str().unwrap(), "small"]));
    assert!(!temp(&p), "{:?}", p.entries());
}
