//! The output-format options shared by the subcommands that print records (the rendering is the
//! library's `pgtool::output`).

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
