//! `nspawn`: parse the command line, run the container, exit as it did.

mod cli;

use clap::Parser;

fn main() {
    let code = match cli::Cli::try_parse() {
        Ok(cli) => match cli.into_settings() {
            Ok(settings) => match libnspawn::launch::run(&settings) {
                Ok(code) => code,
                Err(e) => fail(&e.to_string()),
            },
            Err(e) => fail(&e),
        },
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                0
            }
            // Our own value checks already say it all, as the reference would.
            clap::error::ErrorKind::ValueValidation => match std::error::Error::source(&e) {
                Some(src) => fail(&src.to_string()),
                None => fail(first_line(&e.to_string())),
            },
            _ => fail(first_line(&e.to_string())),
        },
    };
    std::process::exit(code);
}

/// clap's errors span several lines; we print the one that says what is wrong.
fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or(s);
    line.strip_prefix("error: ").unwrap_or(line)
}

fn fail(msg: &str) -> i32 {
    eprintln!("nspawn: {msg}");
    1
}
