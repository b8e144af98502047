//! `pgtool snapshot DIR [--pid PID...] [--force]`: save this host's page state for
//! `pgtool --root DIR`.

use crate::Global;
use pgtool::output::stdout_error;
use pgtool::{Error, SysRoot};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `pgtool snapshot`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes DIR/proc/{kpageflags,kpagecount,kpagecgroup} (sparse copies), DIR/proc/{iomem,meminfo}, \
DIR/cgroup-inodes.tsv, empty DIR/sys and DIR/debugfs, and for each --pid \
DIR/proc/PID/{maps,pagemap,comm,status,cmdline,cgroup,smaps_rollup}; then \
`pgtool --root DIR v2p PID ADDR` answers as the live system did. Needs root for PFNs, kpage* \
files and iomem addresses. Always reads the live system (--root is refused).

Security: the snapshot holds root-only data (PFNs, page flags, physical addresses), so it is \
written root-only: directories 0700, files 0600, whatever the umask. It is written into a new, \
randomly named directory beside DIR (every file created with O_EXCL|O_NOFOLLOW, so no planted \
symbolic link is followed) and renamed to DIR at the end; on any error it is removed and DIR \
is left as it was. DIR must not exist or be empty; --force replaces a previous snapshot (a \
directory holding only proc, sys, debugfs and cgroup-inodes.tsv) whole, without following \
links inside it. DIR on proc, sysfs, a cgroup hierarchy, debugfs or tracefs is refused.

Files pgtool writes: `snapshot` (this tree, 0700/0600) and every --prometheus FILE textfile \
(`types`, `idle wss` and the other commands that offer it; mode 0644, for collectors running as \
another user; written to a random temporary name beside FILE with O_EXCL|O_NOFOLLOW and \
renamed over FILE; a symbolic link at FILE is refused). Nothing is ever written under --root.")]
pub struct Args {
    /// The directory to create (its parent must exist; DIR must be missing or empty).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also save the maps, pagemap and status files of these processes (`self` is pgtool
    /// itself, which is rarely what you want).
    #[arg(long = "pid", value_name = "PID", num_args = 1..)]
    pub pids: Vec<String>,
    /// Replace DIR when it holds a previous snapshot (and nothing else).
    #[arg(long)]
    pub force: bool,
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
        .map(|p| pgtool::input::parse_pid(p, &live))
        .collect::<Result<Vec<u32>, Error>>()?;
    let opts = pgtool::snapshot::Options { force: args.force };
    let s = pgtool::snapshot::save_with(&live, &args.dir, &pids, opts)?;
    {
        let mut err = std::io::stderr().lock();
        for n in &s.notes {
            let _ = writeln!(err, "pgtool: note: {n}");
        }
    }
    let entries = s
        .pagemap_entries
        .iter()
        .map(|(p, n)| format!("{p}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "saved {} files into {} ({} PFNs{}{})",
        s.files.len(),
        args.dir.display(),
        s.kpage_words[0],
        if entries.is_empty() {
            ""
        } else {
            "; pagemap entries: "
        },
        entries
    )
    .and_then(|()| {
        writeln!(
            out,
            "the snapshot holds root-only data (PFNs, page flags, physical addresses): it is \
             readable by its owner only (directories 0700, files 0600); keep it that way when \
             you copy it"
        )
    })
    .and_then(|()| out.flush())
    .map_err(stdout_error)?;
    Ok(0)
}
