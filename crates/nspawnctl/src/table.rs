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

/// `--output=json` (one line) or `json-pretty`.
pub fn print_json(v: &serde_json::Value, pretty: bool) -> Result<(), String> {
    let text = match pretty {
        true => serde_json::to_string_pretty(v),
        false => serde_json::to_string(v),
    };
    println!("{}", text.map_err(|e| e.to_string())?);
    Ok(())
}
