//! `nspawn`: parse the command line, run the container, exit as it did.

use nspawn::cli;

fn main() {
    let code = match cli::parse(std::env::args_os().collect()) {
        Ok(settings) => match libnspawn::launch::run(&settings) {
            Ok(code) => code,
            Err(e) => fail(&e.to_string()),
        },
        Err(cli::Failure::Clap(e)) => {
            let _ = e.print();
            0
        }
        Err(cli::Failure::Message(m)) => fail(&m),
    };
    std::process::exit(code);
}

fn fail(msg: &str) -> i32 {
    eprintln!("nspawn: {msg}");
    1
}
