//! What a pull trusts, as the reference's `--verify=`: with `checksum` the
//! expected SHA-256 of every file fetched comes from `FILE.sha256` or the
//! `SHA256SUMS` beside it; with `signature` that sums file must also carry
//! a good detached OpenPGP signature (`FILE.sha256.asc`/`.gpg`, or
//! `SHA256SUMS.gpg`/`.asc`) by a key of the import keyring. The sums and
//! the signature are fetched and checked before any image data, so a bad
//! signature costs no download.
//!
//! The signature is checked by `gpgv` (else `gpg`, as the reference runs
//! it), not by an OpenPGP crate: the keyrings are gpg's, the Debian hosts
//! we target always have gpgv (apt needs it), and a crate would put a
//! second OpenPGP implementation with its own policy beside the one the
//! distribution maintains.

use super::{fetch, verify};
use crate::error::{Context, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The keyrings the reference reads, the administrator's first.
const KEYRINGS: &[&str] = &[
    "/etc/systemd/import-pubring.pgp",
    "/etc/systemd/import-pubring.gpg",
    "/usr/lib/systemd/import-pubring.pgp",
    "/usr/lib/systemd/import-pubring.gpg",
];

/// `--verify=`: what vouches for a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    No,
    Checksum,
    Signature,
    /// The SHA-256 the main file must have, given literally (lower case
    /// hex); side files are then not fetched, as nothing vouches for them.
    Sha256(String),
}

impl Verify {
    pub fn parse(s: &str) -> Option<Verify> {
        Some(match s {
            "no" | "false" => Verify::No,
            "checksum" => Verify::Checksum,
            "signature" | "yes" | "true" => Verify::Signature,
            h if verify::single(h).as_deref() == Some(&h.to_ascii_lowercase()) => {
                Verify::Sha256(h.to_ascii_lowercase())
            }
            _ => return None,
        })
    }
}

/// How a pull is verified: the mode and, for signatures, the keyring
/// (`--keyring=`; by default the first of `KEYRINGS` that exists).
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Verify,
    pub keyring: Option<PathBuf>,
}

/// What vouches for the files of a pull.
pub struct Trust {
    /// Checked sums (`None` with `--verify=no` or a literal hash).
    sums: Option<Sums>,
    /// A literal hash of the main file, which is the only one fetched.
    literal: Option<(String, String)>,
}

struct Sums {
    /// The file they came from (`SHA256SUMS` or `FILE.sha256`).
    name: String,
    text: String,
}

impl Trust {
    /// Fetch (and with `signature` verify) what vouches for `url`.
    pub fn fetch(url: &str, p: &Policy) -> Result<Trust> {
        let literal = |l| Trust {
            sums: None,
            literal: l,
        };
        match &p.mode {
            Verify::No => return Ok(literal(None)),
            Verify::Sha256(h) => {
                return Ok(literal(Some((fetch::file_name(url).into(), h.clone()))))
            }
            Verify::Checksum | Verify::Signature => {}
        }
        let keyring = match p.mode {
            Verify::Signature => Some(keyring(p.keyring.as_deref())?),
            _ => None,
        };
        let sums = sums_for(url)?;
        if let Some(k) = keyring {
            let sig = signature_for(url, &sums.name)?;
            gpg_verify(&k, sums.text.as_bytes(), &sig)?;
        }
        Ok(Trust {
            sums: Some(sums),
            literal: None,
        })
    }

    /// Whether side files (settings) may be fetched: not when only the
    /// main file's hash is known.
    pub fn side_files(&self) -> bool {
        self.literal.is_none()
    }

    /// The SHA-256 `file` must have; `None` when nothing is verified.
    pub fn expected(&self, file: &str) -> Result<Option<String>> {
        if let Some((main, h)) = &self.literal {
            return match main == file {
                true => Ok(Some(h.clone())),
                false => Err(Error::invalid(format!("no checksum for {file}"))),
            };
        }
        let Some(s) = &self.sums else {
            return Ok(None);
        };
        let per_file = s.name.strip_suffix(".sha256") == Some(file);
        let hash = match per_file {
            true => verify::single(&s.text),
            false => verify::lookup(&s.text, file),
        };
        match hash {
            Some(h) => Ok(Some(h)),
            None => Err(Error::invalid(format!(
                "No checksum for {file} in {}, cannot verify. (Try --verify=no?)",
                s.name
            ))),
        }
    }

    /// Check a downloaded `file` whose stream hashed to `got`.
    pub fn check(&self, file: &str, got: &str) -> Result<()> {
        match self.expected(file)? {
            Some(want) if want != got => Err(Error::invalid(verify::invalid(file))),
            _ => Ok(()),
        }
    }
}

/// `FILE.sha256` if the server has one with a hash in it, else `SHA256SUMS`.
fn sums_for(url: &str) -> Result<Sums> {
    let file = fetch::file_name(url);
    let per_file = format!("{file}.sha256");
    if let Some(b) = fetch::small(&fetch::sibling(url, &per_file)).map_err(Error::invalid)? {
        let text = String::from_utf8_lossy(&b).into_owned();
        if verify::single(&text).is_some() {
            return Ok(Sums {
                name: per_file,
                text,
            });
        }
    }
    match fetch::small(&fetch::sibling(url, "SHA256SUMS")).map_err(Error::invalid)? {
        Some(b) => Ok(Sums {
            name: "SHA256SUMS".into(),
            text: String::from_utf8_lossy(&b).into_owned(),
        }),
        None => Err(Error::invalid(format!(
            "No checksum for {file}: neither {file}.sha256 nor SHA256SUMS found, cannot verify. (Try --verify=no?)"
        ))),
    }
}

/// The detached signature of the sums file, in the names the reference
/// tries: armoured or binary, per file or per directory.
fn signature_for(url: &str, sums: &str) -> Result<Vec<u8>> {
    let names = match sums {
        "SHA256SUMS" => ["SHA256SUMS.gpg".to_string(), "SHA256SUMS.asc".to_string()],
        s => [format!("{s}.asc"), format!("{s}.gpg")],
    };
    for n in &names {
        if let Some(b) = fetch::small(&fetch::sibling(url, n)).map_err(Error::invalid)? {
            if b.is_empty() {
                return Err(Error::invalid("Signature is empty, cannot verify."));
            }
            return Ok(b);
        }
    }
    Err(Error::invalid(format!(
        "No signature of {sums} found ({} or {}), cannot verify. (Try --verify=checksum?)",
        names[0], names[1]
    )))
}

fn keyring(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(k) = given {
        // gpg takes a keyring name without a slash as one in its home
        // directory, which here is empty: make the name absolute.
        return std::path::absolute(k)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| Error::invalid(format!("keyring {} not found", k.display())));
    }
    KEYRINGS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(format!(
                "cannot verify signatures: no keyring (looked for {}); give one with --keyring= or use --verify=checksum",
                KEYRINGS.join(", ")
            ))
        })
}

/// A private, empty home for gpg, removed on drop.
struct Home(PathBuf);

impl Home {
    fn new() -> Result<Home> {
        let template = std::env::temp_dir().join("nspawn-gpg.XXXXXX");
        let p = nix::unistd::mkdtemp(&template)
            .map_err(|e| Error::invalid(format!("cannot create a directory for gpg: {e}")))?;
        Ok(Home(p))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Does `signature` sign `signed` with a key of `keyring`?
fn gpg_verify(keyring: &Path, signed: &[u8], signature: &[u8]) -> Result<()> {
    let home = Home::new()?;
    let sig = home.0.join("signature");
    std::fs::write(&sig, signature).ctx(|| format!("cannot write {}", sig.display()))?;
    let mut keyring_arg = std::ffi::OsString::from("--keyring=");
    keyring_arg.push(keyring);
    let mut home_arg = std::ffi::OsString::from("--homedir=");
    home_arg.push(&home.0);
    let mut cmds = [Command::new("gpgv"), Command::new("gpg")];
    cmds[0].args([&home_arg, &keyring_arg]);
    cmds[1]
        .args([
            "--no-options",
            "--no-default-keyring",
            "--no-auto-key-locate",
            "--no-auto-check-trustdb",
            "--batch",
            "--trust-model=always",
        ])
        .args([&home_arg, &keyring_arg])
        .arg("--verify");
    for mut cmd in cmds {
        cmd.arg(&sig)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::invalid(format!("cannot run gpgv: {e}"))),
        };
        let mut stdin = child.stdin.take().expect("piped");
        // Written beside the wait, so a verifier that talks before it has
        // read everything cannot deadlock us; one that stops reading early
        // gives EPIPE here and its verdict in the exit status.
        let out = std::thread::scope(|s| {
            s.spawn(move || {
                let _ = stdin.write_all(signed);
            });
            child.wait_with_output()
        })
        .ctx(|| "cannot run gpgv".into())?;
        if out.status.success() {
            return Ok(());
        }
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("no output");
        return Err(Error::invalid(format!(
            "DOWNLOAD INVALID: Signature verification failed ({why})."
        )));
    }
    Err(Error::invalid(
        "cannot verify signatures: neither gpgv nor gpg is installed (install gpgv, or use --verify=checksum)",
    ))
}
