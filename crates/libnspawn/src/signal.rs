//! Signal names as the reference takes and prints them.

use crate::error::{Error, Result};
use nix::sys::signal::Signal;

/// The offset in `RTMIN+N` / `RTMAX-N`: decimal digits only (no sign,
/// so `RTMAX--5` and `RTMIN+-3` are refused), and small.
fn offset(n: &str) -> Option<libc::c_int> {
    if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Parse a signal name or number as systemd's `signal_from_string()` does:
/// `TERM`, `SIGTERM`, `15`, `RTMIN+3`, `SIGRTMIN+3`.
pub fn parse_signal(s: &str) -> Result<libc::c_int> {
    let bad = || Error::invalid(format!("Cannot parse signal: {s}"));
    let name = s.strip_prefix("SIG").unwrap_or(s);
    if let Ok(n) = name.parse::<libc::c_int>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = match rest.strip_prefix('+') {
            Some(n) => offset(n).ok_or_else(bad)?,
            None if rest.is_empty() => 0,
            None => return Err(bad()),
        };
        let sig = libc::SIGRTMIN() + off;
        return if sig <= libc::SIGRTMAX() {
            Ok(sig)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off = match rest.strip_prefix('-') {
            Some(n) => offset(n).ok_or_else(bad)?,
            None if rest.is_empty() => 0,
            None => return Err(bad()),
        };
        let sig = libc::SIGRTMAX() - off;
        return if sig >= libc::SIGRTMIN() {
            Ok(sig)
        } else {
            Err(bad())
        };
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as libc::c_int)
        .map_err(|_| bad())
}

/// A signal's name for messages: `KILL`, `RTMIN+3`.
pub fn signal_name(sig: libc::c_int) -> String {
    if sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() {
        return format!("RTMIN+{}", sig - libc::SIGRTMIN());
    }
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("2").unwrap(), libc::SIGINT);
        assert_eq!(parse_signal("RTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert_eq!(parse_signal("SIGRTMIN+4").unwrap(), libc::SIGRTMIN() + 4);
        for bad in [
            "",
            "FOO",
            "0",
            "99",
            "RTMIN+99",
            "%$š",
            "RTMIN3",
            "RTMAX--5",
            "RTMIN+-3",
            "RTMIN+",
            "RTMAX-",
            "RTMIN++1",
            "RTMAX-0x2",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_signal("RTMAX-2").unwrap(), libc::SIGRTMAX() - 2);
        assert_eq!(signal_name(libc::SIGKILL), "KILL");
        assert_eq!(signal_name(libc::SIGRTMIN() + 3), "RTMIN+3");
    }
}
