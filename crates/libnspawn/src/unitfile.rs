//! The syntax of systemd unit files (systemd.syntax(7)), as `.nspawn` files
//! use it: `[Section]` headers, `Key=Value` lines, `#`/`;` comments, a
//! trailing backslash continuing a line, and value words with quotes and
//! C escapes. Untrusted input: no panics, bounded sizes.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// Files larger than this are refused (the reference caps lines at 1 MiB).
const MAX_SIZE: usize = 4 << 20;

/// A warning about a line: (1-based line, what is wrong).
pub type Warning = (usize, String);

/// Parse the text of a unit-style file. Lines outside any section, and
/// malformed lines, produce warnings, as in the reference.
pub fn parse(text: &str) -> Result<(Vec<Entry>, Vec<Warning>)> {
    if text.len() > MAX_SIZE {
        return Err(Error::invalid("file too large"));
    }
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let start = i + 1;
        let mut line = raw.to_string();
        // Continuation: a trailing backslash joins the next line (comments
        // in between are skipped, as systemd does).
        while line.ends_with('\\') {
            line.pop();
            line.push(' ');
            match lines.next() {
                Some((_, next)) if next.trim_start().starts_with(['#', ';']) => continue,
                Some((_, next)) => line.push_str(next),
                None => break,
            }
        }
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') {
            match l.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                Some(name) if !name.is_empty() && !name.contains(['[', ']']) => {
                    section = Some(name.to_string())
                }
                _ => {
                    warnings.push((start, format!("invalid section header '{l}', ignoring")));
                    section = None;
                }
            }
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            warnings.push((start, format!("missing '=', ignoring line '{l}'")));
            continue;
        };
        let Some(sec) = &section else {
            warnings.push((
                start,
                format!("assignment outside of section, ignoring '{l}'"),
            ));
            continue;
        };
        entries.push(Entry {
            section: sec.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            line: start,
        });
    }
    Ok((entries, warnings))
}

/// systemd's booleans: yes/no, true/false, on/off, 1/0, y/n, t/f.
pub fn parse_boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Split a value into words: whitespace separates, single and double quotes
/// group, and C escapes (`\n`, `\t`, `\\`, `\"`, `\xNN`, ...) are decoded.
pub fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                in_word = true;
                let n = chars
                    .next()
                    .ok_or_else(|| Error::invalid("trailing backslash"))?;
                match n {
                    'n' => cur.push('\n'),
                    't' => cur.push('\t'),
                    'r' => cur.push('\r'),
                    'a' => cur.push('\x07'),
                    'b' => cur.push('\x08'),
                    'f' => cur.push('\x0c'),
                    'v' => cur.push('\x0b'),
                    's' => cur.push(' '),
                    'x' => {
                        let h: String =
                            [chars.next(), chars.next()].into_iter().flatten().collect();
                        let v = u8::from_str_radix(&h, 16)
                            .map_err(|_| Error::invalid(format!("invalid escape \\x{h}")))?;
                        if v == 0 {
                            return Err(Error::invalid("NUL byte in value"));
                        }
                        cur.push(v as char);
                    }
                    other => cur.push(other),
                }
            }
            (None, '"' | '\'') => {
                in_word = true;
                quote = Some(c);
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(Error::invalid("unbalanced quotes"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_comments_continuations() {
        let text = "# c\n[Exec]\nBoot=yes\n; c2\nParameters=a \\\n  b\nEnvironment=X=1\n[Files]\nBind=/a\nBind=\nnonsense\nKey = spaced \n";
        let (e, w) = parse(text).unwrap();
        let kv: Vec<(&str, &str, &str, usize)> = e
            .iter()
            .map(|e| (e.section.as_str(), e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("Exec", "Boot", "yes", 3),
                ("Exec", "Parameters", "a    b", 5),
                ("Exec", "Environment", "X=1", 7),
                ("Files", "Bind", "/a", 9),
                ("Files", "Bind", "", 10),
                ("Files", "Key", "spaced", 12),
            ]
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, 11);
    }

    #[test]
    fn outside_section_and_bad_headers_warn() {
        let (e, w) = parse("Boot=yes\n[Exec\nX=1\n[Exec]\nY=2\n").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn words_and_booleans() {
        assert_eq!(
            split_words(r#"a "b c" 'd "e"' f\ g \x41\n"#).unwrap(),
            vec!["a", "b c", "d \"e\"", "f g", "A\n"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("\"\"").unwrap(), vec![""]);
        assert!(split_words("\"open").is_err());
        assert!(split_words("x\\").is_err());
        assert!(split_words("\\x00").is_err());
        for (s, b) in [
            ("yes", true),
            ("On", true),
            ("1", true),
            ("f", false),
            ("NO", false),
        ] {
            assert_eq!(parse_boolean(s), Some(b));
        }
        assert_eq!(parse_boolean("maybe"), None);
    }
}
