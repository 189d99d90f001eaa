//! One case under one binary: a fresh copy of the busybox tree (with the
//! probe as `/probe`), the case's fixtures, the command line with its
//! placeholders filled in, and the run itself. Both binaries get the same
//! arguments, the same environment and a tree of the same name in a
//! directory of their own, so the machine name (and host name) agree.

use super::cases::{Case, Fix};
use super::normalise::Context;
use crate::{host_quirks_removed, nspawn_bin, repo_root, stop_runners_of, text, wait_output};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Reference,
    Ours,
}

impl Impl {
    pub fn label(self) -> &'static str {
        match self {
            Impl::Reference => "ref",
            Impl::Ours => "ours",
        }
    }

    /// The reference needs `--register=no --keep-unit` on a host without
    /// systemd; a case's own `--register=`/`--keep-unit` come later and win.
    fn command(self) -> Command {
        match self {
            Impl::Reference => {
                let mut c = Command::new("systemd-nspawn");
                c.args(["--register=no", "--keep-unit"]);
                c
            }
            Impl::Ours => Command::new(nspawn_bin()),
        }
    }
}

/// Whether the reference binary is installed.
pub fn reference_available() -> bool {
    Command::new("systemd-nspawn")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The per-process directory: a template tree and, per binary, the runs.
/// Removed on drop.
pub struct Workspace {
    pub root: PathBuf,
    template: PathBuf,
    hostuser: String,
}

impl Workspace {
    pub fn new() -> Workspace {
        let root =
            Path::new("/var/tmp/nspawn-tests").join(format!("compat-{}", std::process::id()));
        let template = root.join("template");
        std::fs::create_dir_all(&root).unwrap();
        let st = Command::new(repo_root().join("scripts/fixtures.sh"))
            .arg("busybox")
            .arg(&template)
            .status()
            .unwrap();
        assert!(st.success(), "busybox fixture failed");
        std::fs::copy(env!("NSPAWN_COMPAT_PROBE"), template.join("probe")).unwrap();
        for i in [Impl::Reference, Impl::Ours] {
            std::fs::create_dir_all(root.join(i.label())).unwrap();
        }
        Workspace {
            root,
            template,
            hostuser: host_user().unwrap_or_else(|| "nobody".into()),
        }
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if std::env::var_os("NSPAWN_COMPAT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A host account with a home directory, for `--bind-user`.
fn host_user() -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let uid: u32 = f.get(2)?.parse().ok()?;
        let home = Path::new(f.get(5)?);
        ((1000..60000).contains(&uid) && home.is_dir()).then(|| f[0].to_string())
    })
}

/// What one binary did with one case.
pub struct Run {
    pub argv: Vec<String>,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// How to read its output (paths, name, ids).
    pub ctx: Context,
}

/// The places of one case under one binary; removed on drop.
struct Places {
    tree: PathBuf,
    fix: PathBuf,
    settings: PathBuf,
}

impl Drop for Places {
    fn drop(&mut self) {
        if let Some(t) = self.tree.to_str() {
            stop_runners_of(t);
        }
        if std::env::var_os("NSPAWN_COMPAT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.tree);
            let _ = std::fs::remove_dir_all(&self.fix);
            let _ = std::fs::remove_file(&self.settings);
        }
    }
}

/// Host links a case needs, made before both runs, removed after.
pub struct HostLinks(Vec<String>);

impl HostLinks {
    pub fn new(case: &Case, name: &str) -> HostLinks {
        let mut made = vec![];
        for f in &case.fixes {
            let (link, kind): (String, &[&str]) = match f {
                Fix::Bridge => (format!("cb{name}"), &["bridge"]),
                Fix::HostLink => (format!("cd{name}"), &["veth", "peer", "name", "cq"]),
                _ => continue,
            };
            let mut args = vec![
                "link".to_string(),
                "add".into(),
                link.clone(),
                "type".into(),
            ];
            args.extend(kind.iter().map(|k| k.to_string()));
            if kind.len() > 1 {
                // The peer's name: "cq" and the machine name.
                args.last_mut().unwrap().push_str(name);
            }
            let st = Command::new("ip").args(&args).status().unwrap();
            assert!(st.success(), "ip {}", args.join(" "));
            made.push(link);
        }
        HostLinks(made)
    }
}

impl Drop for HostLinks {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn cp(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

impl Workspace {
    fn prepare(&self, case: &Case, imp: Impl, name: &str) -> Places {
        let dir = self.root.join(imp.label());
        let p = Places {
            tree: dir.join(name),
            fix: dir.join(format!("{name}.fix")),
            settings: dir.join(format!("{name}.nspawn")),
        };
        write(&p.fix.join("data/hello"), "hello\n");
        write(&p.fix.join("file"), "file\n");
        write(&p.fix.join("lower1/a"), "a\n");
        write(&p.fix.join("lower2/b"), "b\n");
        write(&p.fix.join("cred"), "secret\n");
        std::fs::create_dir_all(p.fix.join("upper")).unwrap();
        if case.fixes.contains(&Fix::Template) {
            cp(&self.template, &p.fix.join("template"));
        } else {
            cp(&self.template, &p.tree);
        }
        for f in &case.fixes {
            match f {
                Fix::ProbeInit => {
                    let init = p.tree.join("usr/lib/systemd/systemd");
                    std::fs::create_dir_all(init.parent().unwrap()).unwrap();
                    std::fs::copy(p.tree.join("probe"), init).unwrap();
                }
                Fix::ProbeInUsr => {
                    std::fs::copy(p.tree.join("probe"), p.tree.join("usr/lib/compat-probe"))
                        .unwrap();
                }
                Fix::NestedRoot => {
                    cp(&self.template, &p.tree.join("sysroot"));
                    std::fs::create_dir(p.tree.join("sysroot/oldroot")).unwrap();
                }
                Fix::MachineId(id) => write(&p.tree.join("etc/machine-id"), &format!("{id}\n")),
                Fix::OciBundle(text) => write(
                    &p.fix.join("bundle/config.json"),
                    &self.expand(text, &p, name),
                ),
                Fix::Settings(text) => write(&p.settings, &self.expand(text, &p, name)),
                Fix::Template | Fix::Bridge | Fix::HostLink => {}
            }
        }
        p
    }

    fn expand(&self, s: &str, p: &Places, name: &str) -> String {
        s.replace("{tree}", p.tree.to_str().unwrap())
            .replace("{fix}", p.fix.to_str().unwrap())
            .replace("{name}", name)
            .replace("{hostuser}", &self.hostuser)
    }

    /// Run `case` under `imp` with machine name `name`.
    pub fn run(&self, case: &Case, imp: Impl, name: &str) -> Run {
        let p = self.prepare(case, imp, name);
        let mut argv: Vec<String> = vec![];
        if case.pipe {
            argv.extend(["-q".into(), "--pipe".into()]);
        }
        argv.extend(["-D".into(), p.tree.display().to_string()]);
        argv.extend(case.args.iter().map(|a| self.expand(a, &p, name)));
        argv.extend(case.payload.iter().map(|a| self.expand(a, &p, name)));
        let mut cmd = imp.command();
        cmd.args(&argv)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("TERM", "vt220")
            .env("COMPAT_CALLER", "from-caller")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = wait_output(cmd.spawn().expect("spawn"), Duration::from_secs(60));
        if imp == Impl::Reference {
            // Its propagation directory stays behind on a host whose /run
            // is no tmpfs ("Attempted to remove disk file system").
            let _ = std::fs::remove_dir(Path::new("/run/systemd/nspawn/propagate").join(name));
        }
        let ctx = Context::new(
            vec![
                (p.tree.display().to_string(), "{tree}".into()),
                (p.fix.display().to_string(), "{fix}".into()),
                (
                    self.root.join(imp.label()).display().to_string(),
                    "{root}".into(),
                ),
                (name.to_string(), "{name}".into()),
            ],
            &argv,
        );
        Run {
            argv,
            status: out.status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
            }),
            stdout: text(&out.stdout).replace('\r', ""),
            stderr: host_quirks_removed(&text(&out.stderr).replace('\r', "")),
            ctx,
        }
    }
}
