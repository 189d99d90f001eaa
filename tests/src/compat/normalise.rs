//! Probe output into sections, with what legitimately differs between two
//! runs of one case taken out: the per-run paths and machine name (they
//! differ between the two binaries' runs by construction), random ids
//! (machine and boot ids, the reference's random file suffixes), and the
//! user namespace's base (the two pick ranges by different hashes, README
//! "Known limits"). Ids a case passes itself are kept.

use std::collections::BTreeMap;

/// `[section]` -> its lines, as the probe printed them (normalised).
pub type Sections = BTreeMap<String, Vec<String>>;

/// What one run's output is to be read against.
pub struct Context {
    /// `(text, placeholder)`, longest text first.
    pub replace: Vec<(String, String)>,
    /// Ids (32 hex digits, lower case) the case gave on purpose.
    pub known_ids: Vec<String>,
    /// `net:[INODE]` of the host's network namespace.
    pub host_netns: String,
}

impl Context {
    pub fn new(mut replace: Vec<(String, String)>, args: &[String]) -> Context {
        let host_netns = std::fs::read_link("/proc/self/ns/net")
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        replace.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let mut known_ids = vec![];
        for a in args {
            scan_ids(a, |id, _| {
                known_ids.push(id.to_string());
                None
            });
        }
        Context {
            replace,
            known_ids,
            host_netns,
        }
    }

    /// Ids numbered in order of appearance (before the names are
    /// replaced, which could otherwise match inside one), then paths and
    /// names replaced.
    pub fn text(&self, s: &str) -> String {
        let mut seen: Vec<String> = vec![];
        let known = &self.known_ids;
        let mut s = scan_ids(s, |id, dashed| {
            if known.iter().any(|k| k == id) {
                return None;
            }
            let n = match seen.iter().position(|x| x == id) {
                Some(i) => i + 1,
                None => {
                    seen.push(id.to_string());
                    seen.len()
                }
            };
            Some(if dashed {
                format!("<uuid{n}>")
            } else {
                format!("<id{n}>")
            })
        });
        for (from, to) in &self.replace {
            if !from.is_empty() {
                s = s.replace(from.as_str(), to);
            }
        }
        s
    }
}

/// Calls `f` with each 128-bit id in `s` (plain 32 hex digits or the
/// dashed UUID form; lower-cased, dashes removed) and whether it was
/// dashed; replaces it with what `f` returns. Other runs of 16 or more hex
/// digits (random suffixes) become `<hex>`.
fn scan_ids(s: &str, mut f: impl FnMut(&str, bool) -> Option<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let hex = |c: u8| c.is_ascii_hexdigit();
    while i < b.len() {
        if hex(b[i]) && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            // A dashed UUID: 8-4-4-4-12.
            if b.len() >= i + 36 {
                let cand = &b[i..i + 36];
                let shape = cand.iter().enumerate().all(|(j, &c)| {
                    if [8, 13, 18, 23].contains(&j) {
                        c == b'-'
                    } else {
                        hex(c)
                    }
                });
                let end_ok = b.get(i + 36).is_none_or(|c| !c.is_ascii_alphanumeric());
                if shape && end_ok {
                    let id: String = std::str::from_utf8(cand)
                        .unwrap()
                        .replace('-', "")
                        .to_ascii_lowercase();
                    match f(&id, true) {
                        Some(r) => out.push_str(&r),
                        None => out.push_str(std::str::from_utf8(cand).unwrap()),
                    }
                    i += 36;
                    continue;
                }
            }
        }
        if hex(b[i]) {
            let start = i;
            while i < b.len() && hex(b[i]) {
                i += 1;
            }
            let run = &s[start..i];
            let bounded = (start == 0 || !b[start - 1].is_ascii_alphanumeric())
                && b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
            if run.len() == 32 && bounded {
                match f(&run.to_ascii_lowercase(), false) {
                    Some(r) => out.push_str(&r),
                    None => out.push_str(run),
                }
            } else if run.len() >= 16 {
                // Random suffixes may be all digits; no value a container
                // sees has 16 decimal digits in a row.
                out.push_str("<hex>");
            } else {
                out.push_str(run);
            }
            continue;
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The probe's sections, or `None` when the probe did not run (a refused
/// start, or an option that prints and exits).
pub fn sections(stdout: &str, ctx: &Context) -> Option<Sections> {
    let text = ctx.text(stdout);
    let start = text.find("@@probe ")?;
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for l in text[start..].lines().skip(1) {
        if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
        } else if let Some(c) = &current {
            out.get_mut(c).unwrap().push(l.to_string());
        }
    }
    userns_base(&mut out);
    if let Some(net) = out.get_mut("net") {
        host_links(net, &ctx.host_netns);
    }
    if let Some(m) = out.get_mut("mounts") {
        for l in m.iter_mut() {
            *l = mount_line(l);
        }
        m.sort();
    }
    Some(out)
}

/// The links of the host's network namespace are whatever else runs on
/// the host (other tests' links come and go): only that it is the host's
/// is compared. A private namespace's inode differs per run.
fn host_links(net: &mut Vec<String>, host_netns: &str) {
    let Some(ns) = net.first().and_then(|l| l.strip_prefix("namespace ")) else {
        return;
    };
    if ns == host_netns {
        *net = vec!["the host's network namespace".into()];
    } else {
        net[0] = "a network namespace of its own".into();
    }
}

/// A mount line with the names each implementation picks at random or by
/// descriptor left out: the reference's temporary directories
/// (`nspawn-temp-XXXXXX`) and propagation directory, and overlay layers
/// (ours names them by `/proc/self/fd/N`, so a hostile tree cannot
/// redirect them; their number is kept).
fn mount_line(l: &str) -> String {
    let f: Vec<&str> = l.split(' ').collect();
    if f.len() != 6 {
        return l.to_string();
    }
    let mut root = f[3].to_string();
    if root.starts_with("/run/systemd/nspawn/propagate/") {
        root = "/run/systemd/nspawn/propagate/<machine>".into();
    }
    for prefix in ["nspawn-temp-", "nspawn-volatile-"] {
        if let Some(i) = root.find(prefix) {
            let start = i + prefix.len();
            let end = (start + 6).min(root.len());
            root.replace_range(start..end, "<random>");
        }
    }
    let sb = match f[1] {
        "overlay" => f[5]
            .split(',')
            .map(|o| match o.split_once('=') {
                Some(("lowerdir", v)) => format!("lowerdir=<{} layers>", v.split(':').count()),
                Some((k @ ("upperdir" | "workdir"), _)) => format!("{k}=<dir>"),
                _ => o.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => f[5].to_string(),
    };
    format!("{} {} {} {root} {} {sb}", f[0], f[1], f[2], f[4])
}

/// Under a user namespace the host side of the maps (the base of the
/// range) is a choice of each implementation: a number in the range shows
/// as `<base>` or `<base+N>` wherever it appears (the maps, `uid=`/`gid=`
/// options of file systems made for the range).
fn userns_base(s: &mut Sections) {
    let mut ranges = vec![];
    if let Some(ids) = s.get("ids") {
        for l in ids {
            for key in ["uid_map ", "gid_map "] {
                // "INSIDE HOST COUNT; ...": the range is where inside 0 is
                // (a `--bind-user` map has more lines, within it or not).
                let Some(rest) = l.strip_prefix(key) else {
                    continue;
                };
                for triple in rest.split("; ") {
                    let f: Vec<u64> = triple
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if f.len() == 3 && f[0] == 0 && f[1] != 0 {
                        ranges.push((f[1], 65536.max(f[2])));
                    }
                }
            }
        }
    }
    if ranges.is_empty() {
        return;
    }
    for lines in s.values_mut() {
        for l in lines.iter_mut() {
            *l = map_numbers(l, |n| {
                let (base, _) = ranges.iter().find(|(b, r)| (*b..b + r).contains(&n))?;
                Some(match n - base {
                    0 => "<base>".to_string(),
                    k => format!("<base+{k}>"),
                })
            });
        }
    }
}

/// Each whole decimal number in `s` replaced where `f` says so.
fn map_numbers(s: &str, f: impl Fn(u64) -> Option<String>) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            match digits.parse().ok().and_then(&f) {
                Some(r) => out.push_str(&r),
                None => out.push_str(digits),
            }
            digits.clear();
        }
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_paths_and_bases() {
        let ctx = Context::new(
            vec![
                ("/var/tmp/x/ref/c1".into(), "{tree}".into()),
                ("c1".into(), "{name}".into()),
            ],
            &["--uuid=0123456789abcdef0123456789abcdef".to_string()],
        );
        let t = ctx.text(
            "a 53e2d8ac-17d5-4a10-b07a-63e2cb88dc32 b 53e2d8ac17d54a10b07a63e2cb88dc32 \
             0123456789abcdef0123456789abcdef /var/tmp/x/ref/c1/etc c1 id84cba6da7d4d8ce1 4946240k \
             kmsg9300351464759622",
        );
        assert_eq!(
            t,
            "a <uuid1> b <id1> 0123456789abcdef0123456789abcdef {tree}/etc {name} i<hex> 4946240k kmsg<hex>"
        );
        let s = sections(
            "@@probe 1\n[ids]\nuid_map 0 1878589440 65536\n[mounts]\n/var tmpfs tmpfs / rw uid=1878589440,gid=1878589445,x=18785894401\n",
            &ctx,
        )
        .unwrap();
        assert_eq!(s["ids"], ["uid_map 0 <base> 65536"]);
        assert_eq!(
            s["mounts"],
            ["/var tmpfs tmpfs / rw uid=<base>,gid=<base+5>,x=18785894401"]
        );
        assert_eq!(
            mount_line("/mnt overlay overlay / rw lowerdir=/proc/self/fd/16:/proc/self/fd/15,upperdir=/x,uuid=on"),
            "/mnt overlay overlay / rw lowerdir=<2 layers>,upperdir=<dir>,uuid=on"
        );
    }
}
