//! `clone`, `rename`, `remove`, `read-only`, `clean`: the verbs that change
//! images. The work, and the lock that keeps them off an image a machine
//! runs from, is libnspawn::image::ops; this is arguments and messages.

use clap::Args;
use libnspawn::image::{ops, store};

fn find(name: &str) -> Result<store::Image, String> {
    store::find(name).map_err(|e| e.to_string())
}

#[derive(Args)]
pub struct CloneArgs {
    #[arg(value_name = "NAME")]
    source: String,
    #[arg(value_name = "NEW")]
    new: String,
    /// Make the copy read-only
    #[arg(long = "read-only")]
    read_only: bool,
}

pub fn clone(a: CloneArgs) -> Result<i32, String> {
    let i = find(&a.source)?;
    ops::clone(&i, &a.new, a.read_only).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct RenameArgs {
    #[arg(value_name = "NAME")]
    name: String,
    #[arg(value_name = "NEW")]
    new: String,
}

pub fn rename(a: RenameArgs) -> Result<i32, String> {
    let i = find(&a.name)?;
    ops::rename(&i, &a.new).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct RemoveArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

pub fn remove(a: RemoveArgs) -> Result<i32, String> {
    // Every name is looked up before anything is removed.
    let images = a
        .names
        .iter()
        .map(|n| find(n))
        .collect::<Result<Vec<_>, _>>()?;
    for i in &images {
        ops::remove(i).map_err(|e| e.to_string())?;
    }
    Ok(0)
}

#[derive(Args)]
pub struct ReadOnlyArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// yes (the default) or no
    #[arg(value_name = "BOOL", value_parser = parse_bool)]
    read_only: Option<bool>,
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(format!("invalid boolean '{s}'")),
    }
}

pub fn read_only(a: ReadOnlyArgs) -> Result<i32, String> {
    let i = find(&a.name)?;
    ops::set_read_only(&i, a.read_only.unwrap_or(true)).map_err(|e| e.to_string())?;
    Ok(0)
}

#[derive(Args)]
pub struct CleanArgs {
    /// Remove every image not in use, not only hidden ones
    #[arg(short, long)]
    all: bool,
}

/// Remove hidden images (with `--all`, all images) that no machine runs
/// from; vendor images and busy ones are left, as the reference does.
pub fn clean(a: CleanArgs) -> Result<i32, String> {
    let mut removed = 0;
    for i in store::list(true) {
        if i.vendor || !(a.all || store::is_hidden(&i.name)) {
            continue;
        }
        match i.lock().map_err(|e| e.to_string())? {
            None => {
                eprintln!("Skipping image '{}': in use.", i.name);
                continue;
            }
            // ops::remove takes the lock itself.
            Some(lock) => drop(lock),
        }
        match ops::remove(&i) {
            Ok(()) => {
                println!("Removed image '{}'.", i.name);
                removed += 1;
            }
            Err(e) => eprintln!("nspawnctl: {e}"),
        }
    }
    println!("Removed {removed} images in total.");
    Ok(0)
}
