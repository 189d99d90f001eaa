//! `--property=NAME=VALUE`: unit property assignments for the machine's
//! scope, turned into the typed D-Bus values systemd's
//! `StartTransientUnit` wants (systemd.resource-control(5),
//! systemd.kill(5)). Parsed when the command line is, so a bad one stops
//! the start before anything exists.
//!
//! Written here because no crate carries systemd's table of property
//! types; this covers the resource-control and kill settings a container
//! scope takes. Others are refused by name, as systemd refuses them.

/// A typed property value (its D-Bus signature in the comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `u`
    U32(u32),
    /// `i`
    I32(i32),
    /// `s`
    Str(String),
    /// `ay`
    Bytes(Vec<u8>),
    /// `a(ss)`
    Pairs(Vec<(String, String)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: Value,
}

fn prop(name: &str, value: Value) -> Vec<Property> {
    vec![Property {
        name: name.to_string(),
        value,
    }]
}

const BOOLS: &[&str] = &[
    "CPUAccounting",
    "MemoryAccounting",
    "IOAccounting",
    "TasksAccounting",
    "IPAccounting",
    "BlockIOAccounting",
    "Delegate",
    "SendSIGHUP",
    "SendSIGKILL",
    "MemoryZSwapWriteback",
];
/// Weights and their ranges (systemd.resource-control(5)).
const WEIGHTS: &[(&str, u64, u64)] = &[
    ("CPUWeight", 1, 10000),
    ("StartupCPUWeight", 1, 10000),
    ("IOWeight", 1, 10000),
    ("StartupIOWeight", 1, 10000),
    ("CPUShares", 2, 262144),
    ("StartupCPUShares", 2, 262144),
    ("BlockIOWeight", 10, 1000),
];
const MEMORY: &[&str] = &[
    "MemoryMin",
    "MemoryLow",
    "MemoryHigh",
    "MemoryMax",
    "MemorySwapMax",
    "MemoryZSwapMax",
    "MemoryLimit",
];
const CHOICES: &[(&str, &[&str])] = &[
    ("DevicePolicy", &["auto", "closed", "strict"]),
    ("KillMode", &["control-group", "process", "mixed", "none"]),
    ("CollectMode", &["inactive", "inactive-or-failed"]),
    ("ManagedOOMSwap", &["auto", "kill"]),
    ("ManagedOOMMemoryPressure", &["auto", "kill"]),
    ("ManagedOOMPreference", &["none", "avoid", "omit"]),
];
const STRINGS: &[&str] = &["Description"];
const SIGNALS: &[&str] = &["KillSignal", "FinalKillSignal", "RestartKillSignal"];
/// Time spans, sent in microseconds under the name with `USec`.
const TIMES: &[&str] = &["TimeoutStopSec", "RuntimeMaxSec", "CPUQuotaPeriodSec"];
const CPU_SETS: &[&str] = &[
    "AllowedCPUs",
    "StartupAllowedCPUs",
    "AllowedMemoryNodes",
    "StartupAllowedMemoryNodes",
];

/// Parse one `NAME=VALUE` assignment (one property, or the one systemd
/// sends for it: `CPUQuota=` as `CPUQuotaPerSecUSec`, a percentage of
/// memory as `MemoryMaxScale`, ...).
pub fn parse(assignment: &str) -> Result<Vec<Property>, String> {
    let (name, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("Not an assignment: {assignment}"))?;
    let bad = |what: &str| format!("Failed to parse {name}= value '{value}': {what}");
    if BOOLS.contains(&name) {
        let b = crate::unitfile::parse_boolean(value).ok_or_else(|| bad("not a boolean"))?;
        return Ok(prop(name, Value::Bool(b)));
    }
    if let Some(&(_, lo, hi)) = WEIGHTS.iter().find(|w| w.0 == name) {
        let w = match value {
            "" => u64::MAX,
            "idle" if name.ends_with("CPUWeight") => 0,
            v => v
                .parse::<u64>()
                .ok()
                .filter(|w| (lo..=hi).contains(w))
                .ok_or_else(|| bad(&format!("not a weight between {lo} and {hi}")))?,
        };
        return Ok(prop(name, Value::U64(w)));
    }
    if MEMORY.contains(&name) {
        if let Some(scale) = parse_percent(value).map_err(|e| bad(&e))? {
            return Ok(prop(&format!("{name}Scale"), Value::U32(scale)));
        }
        let v = match value {
            "infinity" | "" => u64::MAX,
            v => parse_size(v).ok_or_else(|| bad("not a size"))?,
        };
        return Ok(prop(name, Value::U64(v)));
    }
    if name == "TasksMax" {
        if let Some(scale) = parse_percent(value).map_err(|e| bad(&e))? {
            return Ok(prop("TasksMaxScale", Value::U32(scale)));
        }
        let v = match value {
            "infinity" | "" => u64::MAX,
            v => v
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("not a number of tasks"))?,
        };
        return Ok(prop(name, Value::U64(v)));
    }
    if name == "CPUQuota" {
        let usec = match value {
            "" => u64::MAX,
            v => {
                let pct = v
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && p.is_finite())
                    .ok_or_else(|| bad("not a percentage"))?;
                (pct * 10_000.0).round() as u64
            }
        };
        return Ok(prop("CPUQuotaPerSecUSec", Value::U64(usec)));
    }
    if let Some((_, choices)) = CHOICES.iter().find(|c| c.0 == name) {
        if !choices.contains(&value) {
            return Err(bad(&format!("expected one of {}", choices.join(", "))));
        }
        return Ok(prop(name, Value::Str(value.to_string())));
    }
    if STRINGS.contains(&name) {
        return Ok(prop(name, Value::Str(value.to_string())));
    }
    if SIGNALS.contains(&name) {
        let sig = crate::signal::parse_signal(value).map_err(|_| bad("not a signal"))?;
        return Ok(prop(name, Value::I32(sig)));
    }
    if TIMES.contains(&name) {
        let usec = match value {
            "infinity" => u64::MAX,
            v => parse_timespan(v).ok_or_else(|| bad("not a time span"))?,
        };
        let name = format!("{}USec", name.trim_end_matches("Sec"));
        return Ok(prop(&name, Value::U64(usec)));
    }
    if CPU_SETS.contains(&name) {
        let mask = parse_cpu_set(value).ok_or_else(|| bad("not a list of numbers or ranges"))?;
        return Ok(prop(name, Value::Bytes(mask)));
    }
    if name == "DeviceAllow" {
        if value.is_empty() {
            return Ok(prop(name, Value::Pairs(vec![])));
        }
        let (path, perms) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        let perms = perms.trim();
        let perms = if perms.is_empty() { "rwm" } else { perms };
        let path_ok = path.starts_with("/dev/")
            || path.starts_with("char-")
            || path.starts_with("block-")
            || path.starts_with("/run/systemd/inaccessible/");
        if !path_ok || !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(bad(
                "expected a device node or char-/block- class and r, w, m",
            ));
        }
        return Ok(prop(
            name,
            Value::Pairs(vec![(path.to_string(), perms.to_string())]),
        ));
    }
    Err(format!("Unknown assignment: {assignment}"))
}

/// `N%` (or `N.NN%`, `N‰`) as systemd's 32-bit scale; `Ok(None)` if it is
/// not a percentage at all.
fn parse_percent(v: &str) -> Result<Option<u32>, String> {
    let (num, div) = if let Some(p) = v.strip_suffix('%') {
        (p, 100.0)
    } else if let Some(p) = v.strip_suffix('‰') {
        (p, 1000.0)
    } else {
        return Ok(None);
    };
    let f: f64 = num
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f >= 0.0 && *f <= div)
        .ok_or_else(|| "not a percentage between 0 and 100".to_string())?;
    Ok(Some((f / div * u32::MAX as f64).round() as u32))
}

/// A size with an optional 1024-based suffix (K, M, G, T, P, E).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let mult: u64 = match unit.trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        "E" => 1 << 60,
        _ => return None,
    };
    if unit == "B" || (num.contains('.') && mult == 1) {
        return num.parse().ok().filter(|_| !num.contains('.'));
    }
    let f: f64 = num.parse().ok().filter(|f: &f64| f.is_finite())?;
    let bytes = f * mult as f64;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// A time span like `90s`, `1min 30s`, `500ms` (a bare number is seconds),
/// in microseconds.
fn parse_timespan(v: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut rest = v.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        let num: f64 = num.parse().ok()?;
        let tail = tail.trim_start();
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        let usec = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1e6,
            "us" | "usec" | "µs" => 1.0,
            "ms" | "msec" => 1e3,
            "m" | "min" | "minute" | "minutes" => 60e6,
            "h" | "hr" | "hour" | "hours" => 3600e6,
            "d" | "day" | "days" => 86400e6,
            _ => return None,
        };
        total += num * usec;
        rest = after.trim_start();
    }
    Some(total.round() as u64)
}

/// `0-3,6 8` as systemd's CPU mask: one bit per CPU, little-endian bytes.
fn parse_cpu_set(v: &str) -> Option<Vec<u8>> {
    let mut mask: Vec<u8> = Vec::new();
    for item in v.split(|c: char| c == ',' || c.is_whitespace()) {
        if item.is_empty() {
            continue;
        }
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = item.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return None;
        }
        for cpu in lo..=hi {
            if mask.len() <= cpu / 8 {
                mask.resize(cpu / 8 + 1, 0);
            }
            mask[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> (String, Value) {
        let mut v = parse(s).unwrap();
        assert_eq!(v.len(), 1);
        let p = v.remove(0);
        (p.name, p.value)
    }

    #[test]
    fn typed_like_systemd() {
        assert_eq!(one("CPUWeight=123"), ("CPUWeight".into(), Value::U64(123)));
        assert_eq!(one("CPUWeight=idle"), ("CPUWeight".into(), Value::U64(0)));
        assert_eq!(
            one("MemoryMax=64M"),
            ("MemoryMax".into(), Value::U64(64 << 20))
        );
        assert_eq!(
            one("MemoryHigh=1.5G"),
            ("MemoryHigh".into(), Value::U64(3 << 29))
        );
        assert_eq!(
            one("MemoryMax=infinity"),
            ("MemoryMax".into(), Value::U64(u64::MAX))
        );
        assert_eq!(
            one("MemoryMax=50%"),
            ("MemoryMaxScale".into(), Value::U32(2147483648))
        );
        assert_eq!(one("TasksMax=77"), ("TasksMax".into(), Value::U64(77)));
        assert_eq!(
            one("CPUQuota=20%"),
            ("CPUQuotaPerSecUSec".into(), Value::U64(200_000))
        );
        assert_eq!(
            one("TimeoutStopSec=1min 30s"),
            ("TimeoutStopUSec".into(), Value::U64(90_000_000))
        );
        assert_eq!(
            one("AllowedCPUs=0-1,9"),
            ("AllowedCPUs".into(), Value::Bytes(vec![3, 2]))
        );
        assert_eq!(
            one("DeviceAllow=/dev/fuse rw"),
            (
                "DeviceAllow".into(),
                Value::Pairs(vec![("/dev/fuse".into(), "rw".into())])
            )
        );
        assert_eq!(one("Delegate=yes"), ("Delegate".into(), Value::Bool(true)));
        assert_eq!(
            one("KillSignal=SIGINT"),
            ("KillSignal".into(), Value::I32(2))
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert_eq!(
            parse("Frobnicate=1").unwrap_err(),
            "Unknown assignment: Frobnicate=1"
        );
        assert!(parse("CPUWeight")
            .unwrap_err()
            .starts_with("Not an assignment"));
        assert!(parse("CPUWeight=0").is_err());
        assert!(parse("MemoryMax=12Q").is_err());
        assert!(parse("MemoryMax=150%").is_err());
        assert!(parse("CPUQuota=20").is_err());
        assert!(parse("DevicePolicy=open").is_err());
        assert!(parse("DeviceAllow=/etc/passwd rw").is_err());
        assert!(parse("TasksMax=0").is_err());
    }
}
