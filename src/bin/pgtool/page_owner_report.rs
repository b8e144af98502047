//! `pgtool page-owner` report (CLI side).

use crate::Global;
use pgtool::Error;

/// Arguments of `pgtool page-owner`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Not built yet.
pub fn run(_args: Args, _g: &Global) -> Result<i32, Error> {
    Err(Error::Usage("this subcommand is not built yet".into()))
}
