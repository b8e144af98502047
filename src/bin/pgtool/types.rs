//! `pgtool types` and the `page-types` personality: the kernel's page-types, byte for byte,
//! plus `--json`, `--csv`, `--prometheus FILE`, `--threads N` and `--root DIR`.

use crate::Global;
use pgtool::Error;
use pgtool::pagetypes::{self, Format, Invocation};
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

/// `pgtool types [--json|--csv] [--prometheus FILE] [--threads N] [PAGE-TYPES OPTIONS]`.
///
/// Every page-types option works as in page-types (`pgtool types -h` lists them): -r, -p PID,
/// -f FILE, -a ADDR, -b BITS, -c CGROUP, -d FLAGS, -i, -l, -L, -C, -M, -N, -X, -x, -F FILE.
/// JSON/CSV field names: listings `pfn, count, flags_raw, flags, symbolic, voffset,
/// kpagecount, memcg_ino`; summary `flags_raw, flags, symbolic, pages, mb`. With a listing
/// (-l/-L) JSON and CSV print only the listing.
#[derive(clap::Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "All of page-types' options work as in page-types (`pgtool types -h` prints its usage): \
-r, -p PID, -f FILE, -a ADDR, -b BITS, -c CGROUP, -d FLAGS, -i, -l, -L, -C, -M, -N, -X, -x, -F FILE, -h.

pgtool extras (anywhere among the arguments):
  --json             JSON Lines: summary rows {flags_raw, flags, symbolic, pages, mb};
                     with -l/-L the listing instead {pfn, count, flags_raw, flags,
                     symbolic, voffset, kpagecount, memcg_ino}
  --csv              the same fields as CSV with a header row
  --prometheus FILE  also write the summary as an OpenMetrics textfile (atomic rename), for
                     node_exporter's textfile collector
  --threads N        threads for whole-range PFN summaries (default: available cores)
  --root DIR         read proc/kpageflags etc. from a snapshot directory

Installed as (or linked to) `page-types`, the binary is a drop-in page-types:
  ln -s \"$(command -v pgtool)\" /usr/local/sbin/page-types"
)]
pub struct Args {
    /// page-types options and pgtool's extras (--json, --csv, --prometheus FILE,
    /// --threads N), in any order.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Restore the default SIGPIPE action, as a C program has: `page-types | head` ends quietly.
fn default_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn stdout_writer() -> Box<dyn Write> {
    let out = io::stdout();
    if out.is_terminal() {
        Box::new(io::LineWriter::new(out))
    } else {
        Box::new(io::BufWriter::with_capacity(64 << 10, out))
    }
}

/// `pgtool types ARGS`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let mut inv = Invocation::page_types(Vec::new());
    inv.argv0 = b"pgtool types".to_vec();
    inv.root = g.sysroot();
    let mut it = args.args.into_iter();
    let mut rest = Vec::new();
    let mut passthrough = false;
    while let Some(a) = it.next() {
        if passthrough {
            rest.push(a);
            continue;
        }
        let s = a.to_string_lossy().into_owned();
        let mut value = |name: &str| -> Result<OsString, Error> {
            match s.strip_prefix(&format!("{name}=")) {
                Some(v) => Ok(v.into()),
                None => it
                    .next()
                    .ok_or_else(|| Error::Usage(format!("pgtool types: {name} needs a value"))),
            }
        };
        match s.as_str() {
            "--" => {
                passthrough = true;
                rest.push(a);
            }
            "--json" => inv.format = Format::Json,
            "--csv" => inv.format = Format::Csv,
            x if x == "--prometheus" || x.starts_with("--prometheus=") => {
                inv.prometheus = Some(PathBuf::from(value("--prometheus")?));
            }
            x if x == "--threads" || x.starts_with("--threads=") => {
                let v = value("--threads")?;
                inv.threads = v
                    .to_string_lossy()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "pgtool types: --threads needs a positive number, not {:?}",
                            v
                        ))
                    })?;
            }
            x if x == "--root" || x.starts_with("--root=") => {
                inv.root = pgtool::SysRoot::at(PathBuf::from(value("--root")?));
            }
            _ => rest.push(a),
        }
    }
    inv.args = rest;
    inv.progress = io::stderr().is_terminal();
    default_sigpipe();
    let mut out = stdout_writer();
    let mut err = io::stderr();
    Ok(pagetypes::run(&inv, &mut out, &mut err))
}

/// Entry point when invoked as `page-types`: argv and output exactly as page-types.
pub fn page_types_main(argv: Vec<OsString>) -> i32 {
    default_sigpipe();
    let mut it = argv.into_iter();
    let argv0 = it.next().unwrap_or_else(|| "page-types".into());
    let mut inv = Invocation::page_types(it.collect());
    inv.argv0 = std::os::unix::ffi::OsStrExt::as_bytes(argv0.as_os_str()).to_vec();
    // a drop-in page-types writes nothing page-types would not
    inv.progress = false;
    let mut out = stdout_writer();
    let mut err = io::stderr();
    pagetypes::run(&inv, &mut out, &mut err)
}
