//! Churn (issue 16, part 3): many start/stop cycles of one name, and many
//! `nspawnctl shell`s into one running machine, leave the host as it was:
//! the same mounts, cgroups, links, nftables tables, records, loop
//! devices, and the same descriptors in the processes that live on (the
//! runner and reaper of the running machine).
//!
//! Other machines may start and stop on the host meanwhile (other tests,
//! other people's), so what is compared is what is ours: everything named
//! after our machines or below our trees, counted by `Counts`; the host's
//! totals are printed beside them. Short here; `NSPAWN_SOAK=1`
//! (`scripts/soak`) runs the 2,000 / 500 / 1,000.

use nspawn_tests::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn soak_or(short: usize, long: usize) -> usize {
    if soak() {
        long
    } else {
        short
    }
}

/// What the host holds that is ours (named for `prefix` or below `trees`).
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    mounts: usize,
    cgroups: usize,
    links: usize,
    nft_tables: usize,
    records: usize,
    loop_devices: usize,
}

/// The host's totals, for the log.
fn totals() -> String {
    let count = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| text(&o.stdout).lines().count())
            .unwrap_or(0)
    };
    let records: usize = ["names", "machines", "net", "userns", "control"]
        .iter()
        .map(|d| {
            std::fs::read_dir(format!("/run/nspawn/{d}"))
                .map(|e| e.count())
                .unwrap_or(0)
        })
        .sum();
    format!(
        "host: {} mounts, {} links, {} nftables tables, {} records, {} loop devices",
        count(&["cat", "/proc/self/mountinfo"]),
        count(&["ip", "-o", "link"]),
        count(&["nft", "list", "tables"]),
        records,
        count(&["losetup", "-l", "-n"]),
    )
}

fn counts(prefix: &str, trees: &[&std::path::Path]) -> Counts {
    let ours = |s: &str| s.contains(prefix);
    let mounts = mount_namespaces()
        .iter()
        .flat_map(|m| m.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| ours(l) || trees.iter().any(|t| l.contains(t.to_str().unwrap())))
        .count();
    let mut cgroups = 0;
    let scope = scope_name(prefix);
    let stem = scope.trim_end_matches(".scope");
    fn walk(d: &std::path::Path, depth: u32, f: &mut dyn FnMut(&str)) {
        if depth == 0 {
            return;
        }
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                f(&e.file_name().to_string_lossy());
                walk(&e.path(), depth - 1, f);
            }
        }
    }
    walk(std::path::Path::new("/sys/fs/cgroup"), 6, &mut |n| {
        if n.starts_with(stem) {
            cgroups += 1;
        }
    });
    let out = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default()
    };
    let links = out(&["ip", "-o", "link"])
        .lines()
        .filter(|l| l.contains(&prefix[..prefix.len().min(11)]))
        .count();
    let nft_tables = out(&["nft", "list", "tables"])
        .lines()
        .filter(|l| ours(l))
        .count();
    let records = ["names", "machines", "net", "userns", "control"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(format!("/run/nspawn/{d}"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter(|e| ours(&e.file_name().to_string_lossy()))
        .count();
    let loop_devices = out(&["losetup", "-l", "-n", "-O", "BACK-FILE"])
        .lines()
        .filter(|l| ours(l) || trees.iter().any(|t| l.contains(t.to_str().unwrap())))
        .count();
    Counts {
        mounts,
        cgroups,
        links,
        nft_tables,
        records,
        loop_devices,
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn start_stop_cycles_leave_the_host_as_it_was() {
    if ours_only() {
        return;
    }
    let prefix = format!("cy{}-", std::process::id() % 100_000);
    let t = Tree::busybox("chn");
    let (veth, userns) = (format!("{prefix}a"), format!("{prefix}b"));
    let port = (30000 + std::process::id() % 20000).to_string();
    let port_opt = format!("--port=tcp:{port}:80");
    let (n_veth, n_userns) = (soak_or(25, 2000), soak_or(8, 500));
    // One run of each first: the tree gets its mount points.
    ok(t.sh(&["-M", &veth, "-n"], "true"));
    ok(t.sh(&["-M", &userns, "-U", "-n", &port_opt], "true"));
    let before = counts(&prefix, &[&t.path]);
    eprintln!("before: {before:?}; {}", totals());
    let began = Instant::now();
    for i in 0..n_veth {
        let o = t.sh(&["-M", &veth, "-n"], "true");
        assert_eq!(o.status.code(), Some(0), "cycle {i}: {}", stderr(&o));
    }
    for i in 0..n_userns {
        let o = t.sh(&["-M", &userns, "-U", "-n", &port_opt], "true");
        assert_eq!(o.status.code(), Some(0), "-U cycle {i}: {}", stderr(&o));
    }
    for name in [&veth, &userns] {
        assert_eq!(wait_clean(name, &t.path), Vec::<String>::new());
    }
    let after = counts(&prefix, &[&t.path]);
    eprintln!(
        "after {n_veth} -n and {n_userns} -U -n --port cycles ({:?}): {after:?}; {}",
        began.elapsed(),
        totals()
    );
    assert_eq!(before, after);
}

/// A machine that runs until it is told to stop.
struct Running {
    runner: Child,
    name: String,
}

impl Running {
    fn start(t: &Tree, name: &str, opts: &[&str]) -> Running {
        let mut args = vec!["-q", "-D", t.dir(), "-M", name];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["/bin/sleep", "1000"]);
        let mut c = nspawn(&args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let runner = c.spawn().unwrap();
        let record = std::path::Path::new("/run/nspawn/machines").join(name);
        assert!(
            wait_until(Duration::from_secs(20), || record.exists()),
            "{name} did not come up"
        );
        Running {
            runner,
            name: name.to_string(),
        }
    }

    fn reaper(&self) -> Option<u32> {
        all_processes().into_iter().map(|(p, _)| p).find(|&p| {
            nspawn_tests::group::comm(p) == "nspawn-reaper"
                && std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(") ")
                            .and_then(|(_, r)| r.split(' ').nth(1).map(str::to_string))
                    })
                    .is_some_and(|ppid| ppid == self.runner.id().to_string())
        })
    }

    fn leader(&self) -> u32 {
        let o = ok(run(nspawnctl(&[
            "show", &self.name, "-p", "Leader", "--value",
        ])));
        o.trim().parse().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.runner.kill();
        let _ = self.runner.wait();
    }
}

/// What the processes of a running machine hold, and what its cgroup and
/// mount namespace hold.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    runner_fds: usize,
    reaper_fds: usize,
    leader_fds: usize,
    processes: usize,
    cgroups: usize,
    mounts: usize,
}

fn machine_state(m: &Running) -> Machine {
    let cg = machine_cgroup(&m.name);
    let leader = m.leader();
    let mut cgroups = 0;
    let mut dirs = vec![cg.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                cgroups += 1;
                dirs.push(e.path());
            }
        }
    }
    Machine {
        runner_fds: fds(m.runner.id()),
        reaper_fds: m.reaper().map(fds).unwrap_or(usize::MAX),
        leader_fds: fds(leader),
        processes: std::fs::read_to_string(cg.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .count(),
        cgroups,
        mounts: std::fs::read_to_string(format!("/proc/{leader}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .count(),
    }
}

#[test]
fn shells_into_one_machine_leave_it_and_the_host_as_they_were() {
    if ours_only() {
        return;
    }
    let prefix = format!("sh{}-", std::process::id() % 100_000);
    let t = Tree::busybox("shl");
    let name = format!("{prefix}m");
    let m = Running::start(&t, &name, &["-n"]);
    let host_before = counts(&prefix, &[&t.path]);
    let before = machine_state(&m);
    let n = soak_or(40, 1000);
    let began = Instant::now();
    for i in 0..n {
        let o = run(nspawnctl(&["shell", &name, "/bin/true"]));
        assert_eq!(o.status.code(), Some(0), "shell {i}: {}", stderr(&o));
        // The control endpoint and the registry are read too.
        if i % 10 == 0 {
            ok(run(nspawnctl(&["status", &name])));
        }
    }
    let after = machine_state(&m);
    let host_after = counts(&prefix, &[&t.path]);
    eprintln!(
        "{n} shells ({:?}): machine {before:?} -> {after:?}; host {host_before:?} -> {host_after:?}",
        began.elapsed()
    );
    assert_eq!(before, after);
    assert_eq!(host_before, host_after);
    ok(run(nspawnctl(&["terminate", &name])));
    drop(m);
    assert_eq!(wait_clean(&name, &t.path), Vec::<String>::new());
}
