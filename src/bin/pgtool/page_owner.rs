//! (placeholder: this subcommand is being written; see the open issues)

use crate::Global;
use pgtool::Error;

/// Arguments (none yet).
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Not built yet.
pub fn run(_args: Args, _g: &Global) -> Result<i32, Error> {
    Err(Error::Usage("this subcommand is not built yet".into()))
}

/// Entry point when invoked as `page_owner_sort`.
pub fn page_owner_sort_main(_argv: Vec<std::ffi::OsString>) -> i32 {
    eprintln!("page_owner_sort mode is not built yet");
    2
}
