//! `pgtool snapshot DIR [--pid PID...]`: save this host's page state for `pgtool --root DIR`.

use crate::Global;
use pgtool::{Error, SysRoot};
use std::path::PathBuf;

/// Arguments of `pgtool snapshot`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes DIR/proc/{kpageflags,kpagecount,kpagecgroup,iomem} (sparse copies), \
DIR/cgroup-inodes.tsv, and for each --pid DIR/proc/PID/{maps,pagemap,comm,status}; \
then `pgtool --root DIR v2p PID ADDR` answers as the live system did. Needs root for PFNs, \
kpage* files and iomem addresses. Always reads the live system (--root is refused).")]
pub struct Args {
    /// The directory to write (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also save the maps and pagemap of these processes (`self` is pgtool itself, which is
    /// rarely what you want).
    #[arg(long = "pid", value_name = "PID", num_args = 1..)]
    pub pids: Vec<String>,
}

/// Run `pgtool snapshot`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    if g.root.is_some() {
        return Err(Error::Usage(
            "snapshot reads the live system; --root cannot be used with it".into(),
        ));
    }
    let live = SysRoot::live();
    let pids = args
        .pids
        .iter()
        .map(|p| pgtool::v2p::parse_pid(p, &live))
        .collect::<Result<Vec<u32>, Error>>()?;
    let s = pgtool::snapshot::save(&live, &args.dir, &pids)?;
    for n in &s.notes {
        eprintln!("pgtool: note: {n}");
    }
    eprintln!(
        "pgtool: saved {} files into {} ({} PFNs; pagemap entries: {})",
        s.files.len(),
        args.dir.display(),
        s.kpage_words[0],
        s.pagemap_entries
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}
