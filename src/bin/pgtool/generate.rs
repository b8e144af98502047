//! `pgtool generate man DIR` / `pgtool generate completions DIR`: the man pages in `man/` and
//! the shell completions in `completions/` are generated from the clap definition, so they
//! cannot drift from the real options (a test checks the checked-in copies are current).

use crate::Cli;
use clap::CommandFactory;
use pgtool::Error;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `man` or `completions`.
    #[arg(value_parser = ["man", "completions"])]
    pub what: String,
    /// Output directory.
    pub dir: PathBuf,
}

/// Write the files.
pub fn run(args: Args) -> Result<i32, Error> {
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::io(&args.dir, e))?;
    match args.what.as_str() {
        "man" => write_man(&args.dir)?,
        _ => write_completions(&args.dir)?,
    }
    Ok(0)
}

fn write_man(dir: &Path) -> Result<(), Error> {
    let cmd = Cli::command();
    write_page(dir, "pgtool", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("pgtool-{}", sub.get_name());
        write_page(dir, &name, sub.clone().name(name.clone()))?;
    }
    Ok(())
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<(), Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Error::io(dir, e))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).map_err(|e| Error::io(&path, e))
}

fn write_completions(dir: &Path) -> Result<(), Error> {
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "pgtool", dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
