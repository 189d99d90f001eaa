//! machinectl's output shapes. Tables: each column padded to its widest cell (the last
//! one not padded), a header line, and a blank line and `N THINGS
//! listed.` after, unless `--no-legend`.

pub fn print<const N: usize>(head: [&str; N], rows: &[[String; N]], no_legend: bool, things: &str) {
    // Without the header line its words do not widen the columns.
    let mut widths = head.map(|h| if no_legend { 0 } else { h.chars().count() });
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |r: &[String]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| match i + 1 == N {
                true => c.clone(),
                false => format!("{c:<w$}", w = widths[i]),
            })
            .collect();
        cells.join(" ")
    };
    if !no_legend {
        println!("{}", line(&head.map(String::from)));
    }
    for r in rows {
        println!("{}", line(r));
    }
    if !no_legend {
        println!("\n{} {things} listed.", rows.len());
    }
}

/// `show`'s `KEY=VALUE` lines (or, with `value_only`, the values), only
/// those named in `filter` if it is not empty.
pub fn print_properties(props: &[(&str, String)], filter: &[String], value_only: bool) {
    for (k, v) in props {
        if !filter.is_empty() && !filter.iter().any(|p| p == k) {
            continue;
        }
        match value_only {
            true => println!("{v}"),
            false => println!("{k}={v}"),
        }
    }
}

/// machinectl's `--json=pretty|short|off`, and our older `-o json` /
/// `-o json-pretty` for the same tables: both name one JSON mode.
#[derive(clap::Args, Clone, Default)]
pub struct JsonArg {
    /// Print JSON: pretty, short (one line) or off
    #[arg(long = "json", value_name = "MODE", value_parser = ["pretty", "short", "off"])]
    pub json: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Json {
    Off,
    Short,
    Pretty,
}

impl JsonArg {
    /// The mode `--json` names, else the one `-o FORMAT` names (`text`,
    /// `json`, `json-pretty`); `--json` wins where both are given.
    pub fn mode(&self, output: &str) -> Json {
        match self.json.as_deref() {
            Some("pretty") => Json::Pretty,
            Some("short") => Json::Short,
            Some(_) => Json::Off,
            None => match output {
                "json" => Json::Short,
                "json-pretty" => Json::Pretty,
                _ => Json::Off,
            },
        }
    }
}

/// A JSON document on one line (short) or indented (pretty).
pub fn print_json_mode(v: &serde_json::Value, mode: Json) -> Result<(), String> {
    print_json(v, mode == Json::Pretty)
}

/// `--output=json` (one line) or `json-pretty`.
pub fn print_json(v: &serde_json::Value, pretty: bool) -> Result<(), String> {
    let text = match pretty {
        true => serde_json::to_string_pretty(v),
        false => serde_json::to_string(v),
    };
    println!("{}", text.map_err(|e| e.to_string())?);
    Ok(())
}

/// `s` safe to print on a terminal: what a machine wrote (its os-release,
/// host name, process names, cgroup names) may hold escape sequences that
/// would retitle, recolour or redraw the reader's terminal, or make it
/// answer with input. Control characters (C0, DEL, C1) and the
/// bidirectional overrides are shown as `\xNN` / `\u{NNNN}`, as systemd
/// shows such bytes; a backslash stays a backslash.
pub fn printable(s: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(|c| c.is_control() || bidi(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if (c.is_control() || bidi(c)) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || bidi(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{printable, Json, JsonArg};

    #[test]
    fn json_mode_from_either_option() {
        let arg = |j: Option<&str>| JsonArg {
            json: j.map(String::from),
        };
        assert_eq!(arg(None).mode("text"), Json::Off);
        assert_eq!(arg(None).mode("json"), Json::Short);
        assert_eq!(arg(None).mode("json-pretty"), Json::Pretty);
        assert_eq!(arg(Some("short")).mode("text"), Json::Short);
        assert_eq!(arg(Some("pretty")).mode("json"), Json::Pretty);
        assert_eq!(arg(Some("off")).mode("json"), Json::Off);
    }

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        assert_eq!(printable("Debian GNU/Linux 12"), "Debian GNU/Linux 12");
        assert_eq!(
            printable("x\x1b]0;owned\x07\x1b[2J\r\n\u{9b}31m\u{7f}"),
            "x\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x0a\\x9b31m\\x7f"
        );
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("ünïcödé ✓"), "ünïcödé ✓");
    }
}
