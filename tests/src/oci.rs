//! OCI images for the pull-oci tests: a layout directory built from trees
//! (`Layout`), a real registry on 127.0.0.1 (Debian's `docker-registry`,
//! its storage under the test's directory, killed on drop) that `skopeo`
//! pushes layouts into, and a scripted registry (`Scripted`) that answers
//! each path as the test says, for the bad-registry cases.

use crate::{text, wait_until};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    format!(
        "sha256:{}",
        text(&o.stdout).split_whitespace().next().unwrap()
    )
}

pub use crate::busybox_at as busybox;

/// The tar of `dir`'s contents (`tar --numeric-owner`), compressed by
/// `filter` (`gzip`, `zstd`) unless `None`.
pub fn tar_of(dir: &Path, filter: Option<&str>) -> Vec<u8> {
    let o = Command::new("tar")
        .args(["--numeric-owner", "--sort=name", "-cf", "-", "-C"])
        .arg(dir)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success());
    match filter {
        None => o.stdout,
        Some(f) => {
            let mut c = Command::new(f)
                .arg("-c")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut input = c.stdin.take().unwrap();
            let data = o.stdout;
            let t = std::thread::spawn(move || input.write_all(&data).unwrap());
            let out = c.wait_with_output().unwrap();
            t.join().unwrap();
            out.stdout
        }
    }
}

/// `prog` (skopeo, podman) in a private mount namespace whose
/// `/var/lib/containers` is `state`: containers/image keeps its blob-info
/// cache there whatever `--root` says, and the host's must not change.
/// (The mount point is made on the host if missing: an empty directory.)
pub fn contained(state: &Path, prog: &str) -> Command {
    std::fs::create_dir_all(state).unwrap();
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-ec",
        "mkdir -p /var/lib/containers; mount --bind \"$0\" /var/lib/containers; exec \"$@\"",
    ])
    .arg(state)
    .arg(prog);
    c
}

pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// An OCI image layout being written: blobs, and the manifests that
/// `index.json` will list.
pub struct Layout {
    pub dir: PathBuf,
    pub index: Vec<serde_json::Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            index: vec![],
        }
    }

    /// Store `data`; its descriptor.
    pub fn blob(&self, media_type: &str, data: &[u8]) -> serde_json::Value {
        let d = sha256(data);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": d, "size": data.len()})
    }

    /// A manifest of `layers` (media type, bytes) with `run` as the
    /// config's `config`; its descriptor (with `platform` for `arch`).
    pub fn image(
        &self,
        arch: &str,
        layers: &[(&str, Vec<u8>)],
        run: serde_json::Value,
    ) -> serde_json::Value {
        let descs: Vec<_> = layers.iter().map(|(t, b)| self.blob(t, b)).collect();
        // diff_ids: the digests of the uncompressed tars.
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|(t, b)| {
                let raw = match *t {
                    LAYER_GZIP => filter("gzip", b),
                    LAYER_ZSTD => filter("zstd", b),
                    _ => b.clone(),
                };
                sha256(&raw)
            })
            .collect();
        let config = serde_json::json!({
            "architecture": arch, "os": "linux", "config": run,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let cd = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cd, "layers": descs,
        });
        let mut d = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&m).unwrap(),
        );
        d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        d
    }

    /// A stored blob's bytes.
    pub fn read(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("blobs/sha256").join(&digest[7..])).unwrap()
    }

    /// The digest and bytes of the first layer of manifest `m` (a
    /// descriptor from `image`).
    pub fn first_layer(&self, m: &serde_json::Value) -> (String, Vec<u8>) {
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.read(m["digest"].as_str().unwrap())).unwrap();
        let layer = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let bytes = self.read(&layer);
        (layer, bytes)
    }

    /// Write `index.json` listing `manifests` directly.
    pub fn finish(&self, manifests: Vec<serde_json::Value>) {
        let i = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&i).unwrap()).unwrap();
    }

    /// `index.json` naming one nested index of `manifests` (a multi-arch
    /// image, as skopeo copies it with `--all`).
    pub fn finish_multi(&self, manifests: Vec<serde_json::Value>) {
        let i = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let d = self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&i).unwrap(),
        );
        self.finish(vec![d]);
    }
}

fn filter(prog: &str, data: &[u8]) -> Vec<u8> {
    let mut c = Command::new(prog)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    let data = data.to_vec();
    let t = std::thread::spawn(move || input.write_all(&data).unwrap());
    let o = c.wait_with_output().unwrap();
    t.join().unwrap();
    o.stdout
}

/// Debian's docker-registry on 127.0.0.1, storage under `dir`.
pub struct Registry {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        Self::start_with(dir, "")
    }

    /// With TLS: a certificate for 127.0.0.1 signed by a new CA, whose
    /// certificate is `dir/ca.pem`.
    pub fn start_tls(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let sh = |script: &str| {
            let o = Command::new("sh")
                .args(["-ec", script])
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o.stderr));
        };
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
              -subj /CN=test-ca -addext basicConstraints=critical,CA:TRUE 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj /CN=127.0.0.1 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >ext.cnf
            openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
              -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null");
        let tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        );
        Self::start_with(dir, &tls)
    }

    fn start_with(dir: &Path, http_extra: &str) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let conf = dir.join("config.yml");
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{http_extra}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "docker-registry did not start"
        );
        Registry {
            port,
            dir: dir.to_path_buf(),
            child,
        }
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("127.0.0.1:{}/{repo_tag}", self.port)
    }

    /// `skopeo copy oci:LAYOUT docker://127.0.0.1:PORT/REPO_TAG` (`--all`
    /// for an index).
    pub fn push(&self, layout: &Path, repo_tag: &str) {
        self.push_as(layout, repo_tag, "oci")
    }

    /// As `push`, the manifests converted to `format` (`oci`, or `v2s2`:
    /// Docker's schema 2 manifests and manifest lists).
    pub fn push_as(&self, layout: &Path, repo_tag: &str, format: &str) {
        let o = contained(&self.dir.join("containers"), "skopeo")
            .args([
                "copy",
                "--all",
                "--quiet",
                "--dest-tls-verify=false",
                "--format",
                format,
            ])
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}", self.reference(repo_tag)))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo: {}", text(&o.stderr));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scripted answer: status, headers, body; `Truncate` sends a
/// `Content-Length` larger than the body and closes.
#[derive(Clone)]
pub enum Answer {
    Ok(String, Vec<u8>),
    Status(u16, Vec<(String, String)>),
    Truncate(Vec<u8>, usize),
    /// The body 4 KiB at a time, `Duration` apart.
    Slow(Vec<u8>, Duration),
    /// Answers only a request carrying this `Authorization`, else 401
    /// with the challenge.
    Auth(String, String, Box<Answer>),
}

/// A registry that answers each path with what the test put in `routes`;
/// it counts the requests per path.
pub struct Scripted {
    pub port: u16,
    pub routes: Arc<Mutex<HashMap<String, Answer>>>,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Scripted {
    pub fn start() -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Default::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Default::default();
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { break };
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || serve(s, &r, &h));
            }
        });
        Scripted { port, routes, hits }
    }

    pub fn set(&self, path: &str, a: Answer) {
        self.routes.lock().unwrap().insert(path.to_string(), a);
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// Serve image `repo:tag` from `layout`'s first manifest; returns its
    /// blobs' paths (config first, then layers).
    pub fn serve_layout(
        &self,
        layout: &Layout,
        repo: &str,
        tag: &str,
        manifest: &serde_json::Value,
    ) {
        let blob = |d: &str| layout.read(d);
        let md = manifest["digest"].as_str().unwrap();
        let body = blob(md);
        let t = "application/vnd.oci.image.manifest.v1+json".to_string();
        self.set(
            &format!("/v2/{repo}/manifests/{tag}"),
            Answer::Ok(t.clone(), body.clone()),
        );
        self.set(
            &format!("/v2/{repo}/manifests/{md}"),
            Answer::Ok(t, body.clone()),
        );
        let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut ds = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        for l in m["layers"].as_array().unwrap() {
            ds.push(l["digest"].as_str().unwrap().to_string());
        }
        for d in ds {
            self.set(
                &format!("/v2/{repo}/blobs/{d}"),
                Answer::Ok("application/octet-stream".into(), blob(&d)),
            );
        }
    }
}

fn serve(
    s: TcpStream,
    routes: &Mutex<HashMap<String, Answer>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut s = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) <= 2 {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    auth = v.trim().to_string();
                }
            }
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap().to_string();
        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let mut a = routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Answer::Status(404, vec![]));
        while let Answer::Auth(want, challenge, inner) = a.clone() {
            a = if auth == want {
                *inner
            } else {
                Answer::Status(401, vec![("WWW-Authenticate".into(), challenge)])
            };
        }
        let ok = match a {
            Answer::Ok(t, body) => write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {t}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .and_then(|()| s.write_all(&body)),
            Answer::Status(code, headers) => {
                let mut head = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n");
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                s.write_all(head.as_bytes())
            }
            Answer::Truncate(body, claimed) => {
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\n\r\n");
                let _ = s.write_all(&body);
                return;
            }
            Answer::Slow(body, delay) => {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                for c in body.chunks(4096) {
                    if s.write_all(c).is_err() {
                        return;
                    }
                    std::thread::sleep(delay);
                }
                Ok(())
            }
            Answer::Auth(..) => unreachable!(),
        };
        if ok.is_err() {
            return;
        }
        let _ = s.flush();
    }
}

/// The cgroup hierarchies' mount points: each v1 controller and
/// `unified/` on a hybrid host, or the one v2 tree.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .chain(
            Path::new("/sys/fs/cgroup/cgroup.procs")
                .exists()
                .then(|| PathBuf::from("/sys/fs/cgroup")),
        )
        .collect()
}

/// The child cgroups of `parent` (relative) in any hierarchy.
pub fn cgroups_below(parent: &str) -> Vec<String> {
    let mut out = vec![];
    for h in cgroup_hierarchies() {
        let dir = h.join(parent.trim_start_matches('/'));
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

/// podman's default cgroup parent under `--cgroup-manager=cgroupfs`, in
/// any hierarchy. A podman run without `--cgroup-parent` makes it (with
/// `conmon/` below) and nothing removes it: every podman of the tests
/// passes a parent of its own, and their teardowns check this is not
/// made meanwhile.
pub fn libpod_parents() -> Vec<String> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("libpod_parent"))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

/// Wait (up to 10 s) until no process names `dir` on its command line:
/// podman's own processes outlive the command that started them (conmon,
/// and the `podman container cleanup` conmon runs when the container
/// ends), and what they leave is only seen once they are gone.
pub fn wait_for_processes_of(dir: &Path) {
    let needle = dir.as_os_str().as_encoded_bytes().to_vec();
    let me = std::process::id().to_string();
    wait_until(Duration::from_secs(10), || {
        !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.bytes().all(|b| b.is_ascii_digit())
                && name != me
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
    });
}

/// Remove podman's `PARENT/conmon` cgroups (podman's, not the runtime's:
/// conmon's cgroup outlives the container) in every hierarchy; returns
/// the other child cgroups of `parent` that are left.
pub fn remove_conmon_cgroups(parent: &str) -> Vec<String> {
    let (conmon, left): (Vec<String>, Vec<String>) = cgroups_below(parent)
        .into_iter()
        .partition(|c| c.ends_with("/conmon"));
    for c in conmon {
        // conmon may still be exiting: its cgroup empties when it has.
        wait_until(Duration::from_secs(5), || std::fs::remove_dir(&c).is_ok());
    }
    left
}

/// Remove the cgroup `parent` (relative) in every hierarchy.
pub fn remove_cgroup_parent(parent: &str) {
    for h in cgroup_hierarchies() {
        let _ = std::fs::remove_dir(h.join(parent.trim_start_matches('/')));
    }
}
