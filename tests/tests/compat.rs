//! Drop-in compatibility, option by option: the differential harness
//! (`tests/src/compat/`) runs the case table against the reference and
//! ours and fails on any difference not in `tests/compat/deviations.txt`,
//! and on any listed one that no longer occurs.
//!
//! By default the fast subset runs; `NSPAWN_COMPAT_FULL=1` runs the whole
//! table, `NSPAWN_COMPAT_CASES=ID,ID` only those cases (with the
//! baseline). `NSPAWN_COMPAT_JOBS` sets the parallel runs (2),
//! `NSPAWN_COMPAT_KEEP=1` keeps the trees. Every difference found, listed
//! or not, is written to `$CARGO_TARGET_TMPDIR/compat-report.txt`.

use clap::CommandFactory;
use nspawn_tests::compat::cases::{self, Case, Tier, BASELINE};
use nspawn_tests::compat::compare::{compare, first_line, Difference, Side};
use nspawn_tests::compat::deviations;
use nspawn_tests::compat::normalise;
use nspawn_tests::compat::report::judge;
use nspawn_tests::compat::run::{self, HostLinks, Impl, Run, Workspace};
use nspawn_tests::reference;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Our options by the name a case uses: the long name, or `-X`.
fn our_options() -> Vec<String> {
    let mut cmd = nspawn::cli::Cli::command();
    cmd.build();
    cmd.get_arguments()
        .map(|a| match (a.get_long(), a.get_short()) {
            (Some(l), _) => l.to_string(),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => a.get_id().to_string(),
        })
        .collect()
}

/// A long option also counts as covered through its short spelling.
fn short_of(long: &str) -> Option<String> {
    let mut cmd = nspawn::cli::Cli::command();
    cmd.build();
    let short = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_short());
    short.map(|s| format!("-{s}"))
}

#[test]
fn every_option_has_a_case_or_a_reason() {
    let table = cases::table();
    let used: BTreeSet<String> = table.iter().flat_map(Case::options).collect();
    let mut missing = vec![];
    for o in our_options() {
        let covered = used.contains(&o) || short_of(&o).is_some_and(|s| used.contains(&s));
        let skipped = cases::SKIPPED.iter().any(|(n, _)| *n == o);
        if !covered && !skipped {
            missing.push(o);
        }
    }
    assert!(
        missing.is_empty(),
        "options with no compat case and no reason to skip: {missing:?}"
    );
    // No case names an option we do not have, and no skip is stale.
    let ours = our_options();
    let unknown: Vec<&String> = used
        .iter()
        .filter(|u| !ours.contains(u) && !ours.iter().any(|o| short_of(o).as_ref() == Some(u)))
        .collect();
    assert!(
        unknown.is_empty(),
        "cases use options we do not define: {unknown:?}"
    );
    for (n, why) in cases::SKIPPED {
        assert!(
            ours.iter().any(|o| o == n),
            "SKIPPED lists {n} ({why}), which is no option of ours"
        );
    }
}

#[test]
fn every_settings_key_has_a_case_or_a_reason() {
    let table = cases::table();
    let used: BTreeSet<(String, String)> = table.iter().flat_map(Case::settings_keys).collect();
    let missing: Vec<String> = nspawn::cli::settings_file::keys()
        .filter(|(s, k)| {
            !used.contains(&(s.to_string(), k.to_string()))
                && !cases::SKIPPED_KEYS
                    .iter()
                    .any(|(s2, k2, _)| s2 == s && k2 == k)
        })
        .map(|(s, k)| format!("[{s}] {k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "settings keys with no compat case: {missing:?}"
    );
}

#[test]
fn case_ids_are_unique_and_deviations_are_documented() {
    let table = cases::table();
    let mut seen = BTreeSet::new();
    for c in &table {
        assert!(seen.insert(c.id), "case id {} twice", c.id);
    }
    for c in &table {
        assert!(
            seen.contains(c.base),
            "{}: base {} is no case",
            c.id,
            c.base
        );
    }
    for (base, of) in cases::BASES {
        for id in of.iter().chain([base]) {
            assert!(seen.contains(id), "BASES names {id}, which is no case");
        }
    }
    for c in nspawn_tests::compat::ctl::table() {
        assert!(seen.insert(c.id), "case id {} twice", c.id);
    }
    let readme = deviations::readme_differences();
    for d in deviations::load() {
        assert!(
            seen.contains(d.case.as_str()),
            "deviations.txt:{}: no case {}",
            d.line,
            d.case
        );
        assert!(!d.reason.is_empty(), "deviations.txt:{}: no reason", d.line);
        assert!(
            deviations::documented(&readme, &d.readme),
            "deviations.txt:{}: {:?} is not in README's \"Where we differ\" section",
            d.line,
            d.readme
        );
    }
}

/// Which cases this run compares, with the cases they are compared
/// against.
fn selected(table: &[Case]) -> Vec<Case> {
    let only: Option<Vec<String>> = std::env::var("NSPAWN_COMPAT_CASES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let full = std::env::var_os("NSPAWN_COMPAT_FULL").is_some_and(|v| v != "0");
    let mut ids: BTreeSet<&str> = table
        .iter()
        .filter(|c| match &only {
            Some(ids) => c.id == BASELINE || ids.iter().any(|i| i == c.id),
            None => full || c.tier == Tier::Fast,
        })
        .map(|c| c.id)
        .collect();
    loop {
        let bases: Vec<&str> = table
            .iter()
            .filter(|c| ids.contains(c.id) && !ids.contains(c.base))
            .map(|c| c.base)
            .collect();
        if bases.is_empty() {
            break;
        }
        ids.extend(bases);
    }
    table
        .iter()
        .filter(|c| ids.contains(c.id))
        .cloned()
        .collect()
}

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A machine name for one case, the same for both binaries; short enough
/// for the interface names cases derive from it (`vx{name}`).
fn machine_name() -> String {
    format!(
        "cx{:03}{:04}",
        SERIAL.fetch_add(1, Ordering::SeqCst),
        std::process::id() % 10000
    )
}

fn side(r: &Run) -> Side {
    Side {
        status: r.status,
        stderr: r.stderr.clone(),
        probe: normalise::sections(&r.stdout, &r.ctx),
        stdout: r.ctx.text(&r.stdout),
    }
}

/// Both binaries on one case: their sides, and how to show them.
struct Outcome {
    reference: Side,
    ours: Side,
    shown: String,
}

fn run_both(ws: &Workspace, case: &Case) -> Outcome {
    let name = machine_name();
    let _links = HostLinks::new(case, &name);
    let r = ws.run(case, Impl::Reference, &name);
    let o = ws.run(case, Impl::Ours, &name);
    let shown = format!(
        "  reference: {} -> {} {}\n  ours:      {} -> {} {}\n",
        r.argv.join(" "),
        r.status,
        first_line(&r.stderr),
        o.argv.join(" "),
        o.status,
        first_line(&o.stderr)
    );
    Outcome {
        reference: side(&r),
        ours: side(&o),
        shown,
    }
}

/// Run `cases` with `jobs` at a time.
fn run_all<'a>(ws: &Workspace, cases: &[&'a Case], jobs: usize) -> Vec<(&'a str, Outcome)> {
    let results = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let out = run_both(ws, case);
                results.lock().unwrap().push((case.id, out));
            });
        }
    });
    results.into_inner().unwrap()
}

#[test]
fn differential() {
    if reference() {
        eprintln!("compares ours with the reference itself; skipped under NSPAWN_TEST_REFERENCE");
        return;
    }
    if !run::reference_available() {
        eprintln!("NOTE: systemd-nspawn is not installed; the differential harness did not run");
        return;
    }
    let table = cases::table();
    let cases = selected(&table);
    let ws = Workspace::new();
    let started = std::time::Instant::now();
    let jobs: usize = std::env::var("NSPAWN_COMPAT_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(2);

    // Cases that make host links run alone, after the others: a container
    // in the host's network namespace would see their links.
    let (serial, parallel): (Vec<&Case>, Vec<&Case>) =
        cases.iter().partition(|c| c.makes_host_links());
    let mut outcomes: BTreeMap<&str, Outcome> = run_all(&ws, &parallel, jobs).into_iter().collect();
    outcomes.extend(run_all(&ws, &serial, 1));

    let mut found: BTreeMap<&str, (Vec<Difference>, String)> = BTreeMap::new();
    for c in &cases {
        let out = &outcomes[c.id];
        let d = match c.id {
            BASELINE => compare(c.id, None, &out.reference, &out.ours),
            _ => {
                let b = &outcomes[c.base];
                match (b.reference.probe.as_ref(), b.ours.probe.as_ref()) {
                    (Some(rb), Some(ob)) => {
                        compare(c.id, Some((rb, ob)), &out.reference, &out.ours)
                    }
                    // Its own difference is reported under the base case.
                    _ => vec![Difference {
                        case: c.id.to_string(),
                        aspect: "base".into(),
                        key: String::new(),
                        detail: format!(
                            "not compared: its base case {} did not run the probe under both",
                            c.base
                        ),
                    }],
                }
            }
        };
        found.insert(c.id, (d, out.shown.clone()));
    }

    let listed = deviations::load();
    let mut report = judge(&found, &listed);
    for c in &cases {
        let refused = outcomes[c.id].reference.status != 0;
        if refused != c.refused {
            let _ = writeln!(
                report.failures,
                "case table: the reference {} {}, the table says it {}:\n{}",
                if refused { "refuses" } else { "accepts" },
                c.id,
                if c.refused { "refuses" } else { "accepts" },
                outcomes[c.id].shown
            );
        }
    }
    for c in &cases {
        let o = &outcomes[c.id];
        let _ = writeln!(
            report.full,
            "status {} reference {} ours {}",
            c.id, o.reference.status, o.ours.status
        );
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat-report.txt");
    let _ = std::fs::write(&path, &report.full);
    eprintln!(
        "compat: {} cases ({} in the table) in {:.1} s; {} differences, {} listed; report in {}",
        found.len(),
        table.len(),
        started.elapsed().as_secs_f64(),
        report.differences,
        report.differences - report.unlisted,
        path.display()
    );
    assert!(report.failures.is_empty(), "{}", report.failures);
}
