//! A boot storm (issue 16, parts 1 and 2): `NSPAWN_STORM=N` machines
//! booted at once, ephemeral, from one Debian 12 tree, each with a veth
//! (`nspawn -x -b -n -D TREE -M storm-I`, detached as a shell loop would
//! start them). Each must reach `multi-user.target` with no failed unit,
//! get its own address and answer a ping from the host, and power off
//! with exit status 0 on `nspawnctl poweroff`; then nothing of any of them
//! is left. Prints the times and the memory per machine (the guest, and
//! our runner and reaper).
//!
//! Long and heavy: skipped unless `NSPAWN_STORM` is set (`scripts/soak`
//! runs it with `SOAK_STORM=N`).

use nspawn_tests::leaks::wait_clean;
use nspawn_tests::{nspawn, nspawnctl, ours_only, run, stdout, unique, wait_output};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn count() -> Option<usize> {
    std::env::var("NSPAWN_STORM").ok()?.parse().ok()
}

/// Proportional set size of `pid` in KiB (shared pages split between
/// their users), from `/proc/PID/smaps_rollup`.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn record(name: &str) -> Option<serde_json::Value> {
    let s = std::fs::read_to_string(format!("/run/nspawn/machines/{name}")).ok()?;
    serde_json::from_str(&s).ok()
}

/// The processes of a machine's cgroup and below (the guest).
fn guest_pids(cgroup: &Path) -> Vec<u32> {
    let mut out = vec![];
    let mut dirs = vec![cgroup.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.parse::<u32>().ok()));
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }
    out
}

/// Run `c` with a bound; `(exit code, stdout, stderr)`; a hang or a
/// death by signal is returned as code -1 with a note.
fn ask(mut c: std::process::Command, limit: Duration) -> (i32, String, String) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            let code = st.code().unwrap_or(-1);
            return (code, stdout(&o), nspawn_tests::stderr(&o));
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return (-1, String::new(), format!("hung for {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Management while the storm starts and stops (issue 16, part 7): list,
/// status of a machine of the storm, `top --batch` and a host-name lookup
/// through the NSS module, in a loop until `stop`; every answer must be
/// prompt, whole and clear (a machine not yet or no longer there is one
/// line of error). Returns the number of calls and the bad answers.
fn manage(
    names: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (usize, Vec<String>) {
    use std::sync::atomic::Ordering;
    let nss = nspawn_tests::NssModule::new();
    let mut calls = 0;
    let mut bad = vec![];
    let mut i = 0;
    let limit = Duration::from_secs(20);
    while !stop.load(Ordering::Relaxed) {
        let name = &names[i % names.len()];
        i += 1;
        let (code, out, err) = ask(nspawnctl(&["list", "--no-legend"]), limit);
        if code != 0 || !err.is_empty() {
            bad.push(format!("list: {code} {err:?}"));
        }
        for l in out.lines() {
            if l.split_whitespace().count() < 3 {
                bad.push(format!("list: half a line {l:?}"));
            }
        }
        let (code, out, err) = ask(nspawnctl(&["status", name]), limit);
        if !(code == 0 && out.contains(name.as_str()) || code == 1 && err.lines().count() == 1) {
            bad.push(format!("status {name}: {code} {out:?} {err:?}"));
        }
        let (code, _, err) = ask(
            nspawnctl(&["top", "--batch", "-n", "1", "-d", "0.05"]),
            limit,
        );
        if code != 0 {
            bad.push(format!("top: {code} {err:?}"));
        }
        let c = nss.shell(&format!("getent hosts {name}"));
        let (code, out, err) = ask(c, limit);
        let fields: Vec<&str> = out.split_whitespace().collect();
        let whole = (code == 0
            && fields.len() == 2
            && fields[1] == name
            && fields[0].parse::<std::net::Ipv4Addr>().is_ok())
            || (code == 2 && out.is_empty());
        if !whole {
            bad.push(format!("getent {name}: {code} {out:?} {err:?}"));
        }
        calls += 4;
    }
    (calls, bad)
}

/// `nspawnctl terminate` of a machine that is just starting: either it is
/// ended (exit 0, and its runner ends), or "not known" in one line; in the
/// latter case it is ended once it is registered. Returns bad answers and
/// how many were ended by the first `terminate`.
fn terminate_while_starting(tree: &str, prefix: &str) -> (Vec<String>, usize) {
    let mut bad = vec![];
    let mut at_once = 0;
    for k in 0..6u64 {
        let name = format!("{prefix}-{k}");
        let mut child = nspawn(&["-q", "-x", "-b", "-D", tree, "-M", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(k * 40));
        let (code, _, err) = ask(nspawnctl(&["terminate", &name]), Duration::from_secs(20));
        if code == 0 {
            at_once += 1;
        } else {
            if err.lines().count() != 1 {
                bad.push(format!("terminate {name} while starting: {code} {err:?}"));
            }
            // Not known yet: end it once it is.
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end && child.try_wait().unwrap().is_none() {
                if ask(nspawnctl(&["terminate", &name]), Duration::from_secs(20)).0 == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            bad.push(format!("{name}: runner still there 60 s after terminate"));
        }
        let _ = child.wait();
        bad.extend(wait_clean(&name, Path::new(tree)));
    }
    (bad, at_once)
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Machines(Vec<(String, Child)>);

impl Drop for Machines {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn boot_storm() {
    let Some(n) = count() else {
        eprintln!("boot_storm: skipped (set NSPAWN_STORM=N)");
        return;
    };
    if ours_only() {
        return;
    }
    let tree = std::env::var("NSPAWN_TEST_DEBIAN")
        .unwrap_or_else(|_| "/var/cache/nspawn-rs/debian12".into());
    assert!(Path::new(&tree).join("usr/lib/systemd/systemd").exists());
    let prefix = unique("storm");
    let logs = Path::new("/var/tmp/nspawn-tests").join(format!("{prefix}.logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let _logs_gone = RemoveOnDrop(logs.clone());
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let manager = {
        let (names, stop) = (names.clone(), stop.clone());
        std::thread::spawn(move || manage(names, stop))
    };
    let early = {
        // A prefix of their own: the leak checker knows a long name's
        // link only by the start of its name.
        let (tree, prefix) = (tree.clone(), unique("early"));
        std::thread::spawn(move || terminate_while_starting(&tree, &prefix))
    };
    let t0 = Instant::now();
    let mut machines = Machines(vec![]);
    for name in &names {
        let log = std::fs::File::create(logs.join(name)).unwrap();
        let child = nspawn(&["-q", "-x", "-b", "-n", "-D", &tree, "-M", name])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        machines.0.push((name.clone(), child));
    }
    let spawned = t0.elapsed();

    // Each machine: wait until it has finished booting (systemd says
    // "running" or "degraded"), from a thread of its own, so that the time
    // each one got there is its own.
    let waits: Vec<_> = names
        .iter()
        .map(|name| {
            let name = name.clone();
            std::thread::spawn(move || {
                let end = t0 + Duration::from_secs(300);
                loop {
                    let mut c = nspawnctl(&[
                        "shell",
                        &name,
                        "/bin/systemctl",
                        "is-system-running",
                        "--wait",
                    ]);
                    c.stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    let o = wait_output(c.spawn().unwrap(), Duration::from_secs(300));
                    let out = stdout(&o);
                    let state = out.lines().last().unwrap_or("").trim().to_string();
                    if state == "running" || state == "degraded" || Instant::now() > end {
                        return (name, state, t0.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    let mut booted: Vec<(String, String, Duration)> =
        waits.into_iter().map(|w| w.join().unwrap()).collect();
    booted.sort_by_key(|b| b.2);
    let last = booted.last().map(|b| b.2).unwrap_or_default();
    let not_running: Vec<_> = booted.iter().filter(|b| b.1 != "running").collect();
    let failed: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let o = run(nspawnctl(&[
                "shell",
                name,
                "/bin/sh",
                "-c",
                "systemctl --failed --no-legend --plain | sed 's/^/FAILED: /'",
            ]));
            let f = stdout(&o)
                .lines()
                .filter(|l| l.starts_with("FAILED: "))
                .collect::<Vec<_>>()
                .join("; ");
            (!f.is_empty()).then(|| format!("{name}: {f}"))
        })
        .collect();

    // Addresses: one each, all different, each answering a ping.
    let mut addresses = BTreeSet::new();
    let mut unreachable = vec![];
    for name in &names {
        let r = record(name).unwrap_or_else(|| panic!("{name}: no record"));
        let ip = r["addresses"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .find(|a| !a.contains(':'))
            })
            .unwrap_or_else(|| panic!("{name}: no IPv4 address in {r}"))
            .to_string();
        let o = run({
            let mut c = std::process::Command::new("busybox");
            c.args(["ping", "-c1", "-W2", &ip]);
            c
        });
        if !o.status.success() {
            unreachable.push(format!("{name} {ip}"));
        }
        addresses.insert(ip);
    }

    // Memory: the guest's processes, and our runner and reaper. Per
    // machine, the runner has one thread and two children: the
    // container's PID 1 and the reaper (nothing else of ours).
    let mut guest_kib = 0;
    let mut runner_kib = 0;
    let mut reaper_kib = 0;
    let mut extra = vec![];
    for name in &names {
        let r = record(name).unwrap();
        let leader = r["leader"].as_u64().unwrap_or(0) as u32;
        if let Some(cg) = r["cgroup"].as_str() {
            guest_kib += guest_pids(Path::new(cg))
                .into_iter()
                .map(pss_kib)
                .sum::<u64>();
        }
        let runner = r["runner"].as_u64().unwrap_or(0) as u32;
        runner_kib += pss_kib(runner);
        if nspawn_tests::status_field(runner, "Threads") != Some(1) {
            extra.push(format!(
                "{name}: runner has {:?} threads",
                nspawn_tests::status_field(runner, "Threads")
            ));
        }
        let kids = nspawn_tests::children(runner);
        let reapers: Vec<u32> = kids
            .iter()
            .copied()
            .filter(|&p| nspawn_tests::group::comm(p) == "nspawn-reaper")
            .collect();
        reaper_kib += reapers.iter().map(|&p| pss_kib(p)).sum::<u64>();
        let others: Vec<String> = kids
            .iter()
            .filter(|&&p| p != leader && !reapers.contains(&p))
            .map(|&p| format!("{p} {}", nspawn_tests::group::comm(p)))
            .collect();
        if reapers.len() != 1 || !others.is_empty() {
            extra.push(format!(
                "{name}: reapers {reapers:?}, other children {others:?}"
            ));
        }
    }

    // Power off each; every runner exits 0.
    let t1 = Instant::now();
    for name in &names {
        let o = run(nspawnctl(&["poweroff", name]));
        assert!(o.status.success(), "poweroff {name}: {o:?}");
    }
    let mut bad_exit = vec![];
    for (name, child) in &mut machines.0 {
        let end = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > end {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.and_then(|s| s.code()) != Some(0) {
            bad_exit.push(format!("{name}: {status:?}"));
        }
    }
    let off = t1.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (calls, bad_answers) = manager.join().unwrap();
    let (early_bad, early_at_once) = early.join().unwrap();
    let mut leftovers = vec![];
    for name in &names {
        leftovers.extend(wait_clean(name, Path::new(&tree)));
    }

    let nf = n as f64;
    println!(
        "storm {n}: spawned in {:.2} s; first booted at {:.1} s, median {:.1} s, last {:.1} s; \
         all powered off in {:.1} s",
        spawned.as_secs_f64(),
        booted
            .first()
            .map(|b| b.2)
            .unwrap_or_default()
            .as_secs_f64(),
        booted[booted.len() / 2].2.as_secs_f64(),
        last.as_secs_f64(),
        off.as_secs_f64()
    );
    println!(
        "storm {n}: memory per machine (PSS): guest {:.1} MiB, runner {:.2} MiB, reaper {:.2} MiB",
        guest_kib as f64 / 1024.0 / nf,
        runner_kib as f64 / 1024.0 / nf,
        reaper_kib as f64 / 1024.0 / nf,
    );
    let logs_of = |names: &[String]| -> String {
        names
            .iter()
            .take(3)
            .map(|n| {
                let l = std::fs::read_to_string(logs.join(n)).unwrap_or_default();
                let tail: Vec<_> = l.lines().rev().take(15).collect();
                format!(
                    "--- {n}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    };
    let stuck: Vec<String> = not_running.iter().map(|b| b.0.clone()).collect();
    assert!(
        not_running.is_empty() && failed.is_empty(),
        "not running: {not_running:?}\nfailed units: {failed:#?}\n{}",
        logs_of(&stuck)
    );
    println!(
        "storm {n}: {calls} management calls during the storm; 6 machines terminated while \
         starting, {early_at_once} by the first terminate"
    );
    assert!(extra.is_empty(), "processes of ours: {extra:#?}");
    assert!(
        bad_answers.is_empty(),
        "management answers: {bad_answers:#?}"
    );
    assert!(
        early_bad.is_empty(),
        "terminate while starting: {early_bad:#?}"
    );
    assert_eq!(addresses.len(), n, "addresses not distinct: {addresses:?}");
    assert!(unreachable.is_empty(), "no answer to ping: {unreachable:?}");
    assert!(bad_exit.is_empty(), "exit statuses: {bad_exit:?}");
    assert!(leftovers.is_empty(), "left over: {leftovers:#?}");
    assert!(
        last <= Duration::from_secs(60),
        "the last machine booted after {last:?} (limit 60 s)"
    );
}
