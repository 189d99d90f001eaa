//! `nspawn-gen DIR`: write bash, zsh and fish completions and the nspawn(1)
//! man page, generated from the command-line definitions themselves, into
//! DIR (laid out as under /usr/local/share).

use clap::CommandFactory;
use std::path::Path;

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("nspawn-gen: usage: nspawn-gen DIR");
        std::process::exit(1);
    };
    if let Err(e) = generate(Path::new(&dir)) {
        eprintln!("nspawn-gen: {e}");
        std::process::exit(1);
    }
}

fn generate(dir: &Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    let mut cmd = nspawn::cli::Cli::command();
    for (shell, sub, name) in [
        (Shell::Bash, "bash-completion/completions", "nspawn"),
        (Shell::Zsh, "zsh/site-functions", "_nspawn"),
        (Shell::Fish, "fish/vendor_completions.d", "nspawn.fish"),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d)?;
        let mut f = std::fs::File::create(d.join(name))?;
        clap_complete::generate(shell, &mut cmd, "nspawn", &mut f);
    }
    let man = dir.join("man/man1");
    std::fs::create_dir_all(&man)?;
    let mut f = std::fs::File::create(man.join("nspawn.1"))?;
    clap_mangen::Man::new(cmd).render(&mut f)
}
