//! A private image pool for a transfer test: `NSPAWN_IMAGE_PATH` pointing
//! at `root/pool`, files to serve in `root/srv`, everything under
//! /var/tmp/nspawn-tests removed on drop.

use crate::http::Server;
use crate::{make_entries_mutable, nspawnctl, run, stderr, unique, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

pub struct Pool {
    pub root: PathBuf,
    pub pool: PathBuf,
    pub srv: PathBuf,
}

impl Pool {
    pub fn new(prefix: &str) -> Pool {
        let root = Path::new("/var/tmp/nspawn-tests").join(unique(prefix));
        let (pool, srv) = (root.join("pool"), root.join("srv"));
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::create_dir_all(&srv).unwrap();
        Pool { root, pool, srv }
    }

    /// `nspawnctl ARGS` on this pool.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut c = nspawnctl(args);
        c.env("NSPAWN_IMAGE_PATH", &self.pool);
        run(c)
    }

    /// `nspawnctl ARGS` that must fail with exit 1 and one line; the line.
    #[track_caller]
    pub fn refused(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        err.trim().to_string()
    }

    /// `nspawnctl VERB_ARGS URL [NAME]` of `srv/FILE` from a slow server
    /// (4 KiB every 20 ms), once it is well under way (its `.#slow`
    /// temporary is there): the server, to keep, and the pull.
    pub fn pull_slowly(
        &self,
        verb_args: &[&str],
        file: &str,
        name: Option<&str>,
        stderr: Stdio,
    ) -> (Server, Child) {
        let slow = Server::start(&self.srv, Duration::from_millis(20));
        let url = slow.url(file);
        let mut args = verb_args.to_vec();
        args.push(&url);
        args.extend(name);
        let mut c = nspawnctl(&args);
        c.env("NSPAWN_IMAGE_PATH", &self.pool)
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = c.spawn().unwrap();
        assert!(wait_until(Duration::from_secs(20), || self
            .entries()
            .iter()
            .any(|e| e.starts_with(".#slow"))));
        std::thread::sleep(Duration::from_millis(300));
        (slow, child)
    }

    /// Entries of the pool: images, side files, leftover `.#` temporaries.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.pool)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A --read-only image's top directory is immutable, and so is the
        // reference's download cache in a test's other pools.
        for d in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            make_entries_mutable(&d.path());
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
