//! The output-format options shared by the subcommands that print records.
#![allow(dead_code)] // shared helpers; not every subcommand uses every one

use pgtool::Error;
use std::io::{self, Write};

/// `--json` / `--csv`; a human table when neither is given.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct FormatArgs {
    /// One JSON object per record (JSON Lines) on stdout.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header row on stdout.
    #[arg(long)]
    pub csv: bool,
}

pub use pgtool::output::Format;

impl FormatArgs {
    /// The format selected.
    pub fn format(self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Table
        }
    }
}

pub use pgtool::output::stdout_error;

/// Write one JSON line.
pub fn write_json_line<W: Write, T: serde::Serialize>(out: &mut W, v: &T) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, v).map_err(|e| stdout_error(io::Error::other(e)))?;
    out.write_all(b"\n").map_err(stdout_error)
}

/// A comfy-table with pgtool's look: no borders beyond a header line, width from the terminal.
pub fn table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_HORIZONTAL_ONLY);
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t
}
