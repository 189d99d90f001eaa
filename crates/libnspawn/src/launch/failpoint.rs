//! Failure injection for the test suite: with `NSPAWN_FAILPOINT=STAGE`
//! in the environment, the start fails at the named stage as if that step
//! had failed, so a test can check that each stage undoes what came
//! before it and reports one line; with `STAGE:pause` the runner stops
//! there (saying so on stderr) until a signal asks it to stop, so a test
//! can send SIGTERM in the middle of a start (`STAGE:delay` sleeps there
//! half a second without looking at signals; `helper:pause` stops a
//! forked helper). Stages are named where
//! `hit` and `stage` are called; `NSPAWN_FAILPOINT=list` lists them on
//! stderr as they pass. Without the variable, each is one comparison.
//!
//! `NSPAWN_TIMING=1` prints, at each stage (and at the container's end
//! and after the release), the time since `launch::run` began (`nspawn: timing STAGE +1.234 ms`), for profiling a start;
//! `NSPAWN_TIMING=NS` (the caller's `CLOCK_REALTIME` in nanoseconds when it
//! started us) counts from that instant instead.

use crate::error::{Error, Result};
use std::sync::OnceLock;

/// When the runner started, if timing was asked for: now, or the
/// caller's `CLOCK_REALTIME` in nanoseconds given as the variable's value
/// (taken just before it started us, so that the exec and the runner's own
/// start-up count too).
fn timing() -> Option<std::time::Instant> {
    static START: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    *START.get_or_init(|| {
        let v = std::env::var("NSPAWN_TIMING").ok().filter(|v| v != "0")?;
        let now = std::time::Instant::now();
        let since_caller = v.parse::<u64>().ok().filter(|&ns| ns > 1).and_then(|ns| {
            let then = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
            std::time::SystemTime::now().duration_since(then).ok()
        });
        Some(since_caller.and_then(|d| now.checked_sub(d)).unwrap_or(now))
    })
}

fn wanted() -> Option<&'static str> {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    WANTED
        .get_or_init(|| std::env::var("NSPAWN_FAILPOINT").ok())
        .as_deref()
}

/// Fail here if the test asked for `stage`.
pub fn hit(stage: &str) -> Result<()> {
    mark(stage);
    match wanted() {
        Some(w) if w == stage => Err(Error::invalid(format!("injected failure at {stage}"))),
        Some("list") => {
            say(&format!("failpoint: {stage}\n"));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// With `NSPAWN_TIMING`, say how long the start has taken at `stage`.
pub fn mark(stage: &str) {
    if let Some(start) = timing() {
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        say(&format!("nspawn: timing {stage} +{ms:.3} ms\n"));
    }
}

/// One write, so the container's lines never split ours.
fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `hit` for the runner, which may also pause at `stage`: until a stop is
/// asked for (then the start is undone), or at most a minute.
pub fn stage(stage: &str, signals: &super::signals::Signals) -> Result<()> {
    hit(stage)?;
    if wanted().and_then(|w| w.strip_suffix(":pause")) != Some(stage) {
        return Ok(());
    }
    eprintln!("nspawn: paused at {stage}");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < end {
        signals.check()?;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

/// With `NSPAWN_FAILPOINT=STAGE:delay`, sleep half a second at `stage`
/// without looking at signals, so that a test's signal and the
/// container's next step are both pending when the runner goes on.
pub fn delay(stage: &str) {
    if wanted().and_then(|w| w.strip_suffix(":delay")) == Some(stage) {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// In a forked helper (`helper.rs`), before its work: with
/// `NSPAWN_FAILPOINT=helper:pause` it says so with its PID and sleeps a
/// minute, as a helper whose bus never answers would wait, so a test can
/// kill the runner meanwhile.
pub fn helper() {
    if wanted() == Some("helper:pause") {
        say(&format!("nspawn: helper {} paused\n", std::process::id()));
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Read the variable now: the container process must not allocate for it
/// later (it is read before `clone3`, in the runner).
pub fn init() {
    let _ = wanted();
    let _ = timing();
}
