//! A private `/run/nspawn` (a tmpfs of the test's choosing, in a mount
//! namespace of its own) and, if asked, a private network namespace: for
//! tests that must fill or exhaust what runners share on the host (the
//! records' file system, the address pool, the user-namespace ranges)
//! without touching the host's, where other machines run meanwhile.
//!
//! A `sleep` holds the namespaces; commands join them with `nsenter`,
//! and the test reads the private `/run` through `/proc/PID/root`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Sandbox {
    holder: Child,
    net: bool,
}

impl Sandbox {
    /// Namespaces with a tmpfs mounted with `tmpfs_opts` on /run/nspawn,
    /// and with `net` a network namespace of their own (loopback up).
    pub fn new(tmpfs_opts: &str, net: bool) -> Sandbox {
        let lo = if net { "ip link set lo up;" } else { "" };
        let script = format!(
            "set -e; mkdir -p /run/nspawn; \
             mount -t tmpfs -o {tmpfs_opts} nspawn-sandbox /run/nspawn; {lo} \
             echo ready; exec sleep 3600"
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private"]);
        if net {
            c.arg("-n");
        }
        c.args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut holder = c.spawn().expect("unshare");
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "sandbox did not start");
        Sandbox { holder, net }
    }

    /// The sandbox's root, as the test sees it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder.id()))
    }

    /// Its `/run/nspawn`, as the test sees it.
    pub fn run_nspawn(&self) -> PathBuf {
        self.root().join("run/nspawn")
    }

    /// `args` run in the sandbox's namespaces.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m"]);
        if self.net {
            c.arg("-n");
        }
        c.arg("--").args(args);
        c
    }

    /// The runner under test, in the sandbox.
    pub fn nspawn(&self, args: &[&str]) -> Command {
        let bin = crate::nspawn_bin();
        let mut all = vec![bin.to_str().unwrap()];
        all.extend_from_slice(args);
        self.command(&all)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
