//! `pgtool types` / `page-types`: the kernel's tools/vm/page-types (Linux 6.1) with the same
//! options, the same bytes on stdout and stderr and the same exit statuses, plus JSON/CSV,
//! Prometheus textfile output, snapshot roots and a faster, multi-threaded walk.
//!
//! The behaviour follows the project's page-types spec (Part A) exactly: glibc `getopt_long`
//! parsing with options acting in argument order, `strtoll` numbers, prefix-matched flag
//! names, the raw/non-raw flag transformation, the `-l` batch-boundary quirk, and the summary
//! rows in page-types' hash-slot order.
//!
//! ```no_run
//! use pgtool::pagetypes::{Invocation, run};
//! let inv = Invocation::page_types(vec!["-d".into(), "0x5868".into()]);
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! assert_eq!(run(&inv, &mut out, &mut err), 0);
//! ```

pub mod actions;
pub mod getopt;
pub mod parse;
pub mod pipe;
pub mod read;
pub mod table;
mod walk;

use crate::root::SysRoot;
use actions::Actions;
use getopt::{Event, Getopt, LongOpt};
use pipe::PipeOpts;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// How to end: an exit status, or a fatal message for stderr (exit 1).
#[derive(Debug)]
pub enum Stop {
    /// Exit at once with this status (`-h`, `-d`).
    Exit(i32),
    /// Print this on stderr and exit 1.
    Fatal(Vec<u8>),
}

impl From<Vec<u8>> for Stop {
    fn from(m: Vec<u8>) -> Stop {
        Stop::Fatal(m)
    }
}

impl From<parse::ParseError> for Stop {
    fn from(e: parse::ParseError) -> Stop {
        Stop::Fatal(e.0)
    }
}

/// Output format of the summary and listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// page-types' text, byte for byte.
    #[default]
    Classic,
    /// JSON Lines.
    Json,
    /// CSV with a header row.
    Csv,
}

/// One run: the arguments (after `argv[0]`) and pgtool's extras.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// `argv[0]` as glibc prints it in usage errors.
    pub argv0: Vec<u8>,
    /// The page-types arguments.
    pub args: Vec<OsString>,
    /// Where `/proc`, `/sys` and debugfs are.
    pub root: SysRoot,
    /// Threads for whole-range PFN summaries (1 = page-types' single pass).
    pub threads: usize,
    /// Output format.
    pub format: Format,
    /// Also write the summary as a Prometheus/OpenMetrics textfile here.
    pub prometheus: Option<PathBuf>,
    /// Show a progress line on stderr during long PFN scans (set it only when stderr is a
    /// TTY).
    pub progress: bool,
}

impl Invocation {
    /// Plain page-types: live system, classic output, threads = available cores.
    pub fn page_types(args: Vec<OsString>) -> Invocation {
        Invocation {
            argv0: b"page-types".to_vec(),
            args,
            root: SysRoot::live(),
            threads: default_threads(),
            format: Format::Classic,
            prometheus: None,
            progress: false,
        }
    }
}

/// The number of threads used by default: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

const SHORTS: &[u8] = b"rp:f:a:b:d:c:CilLMNXxF:h";

const fn lo(name: &'static str, has_arg: bool, val: u8) -> LongOpt {
    LongOpt { name, has_arg, val }
}

const LONGS: &[LongOpt] = &[
    lo("raw", false, b'r'),
    lo("pid", true, b'p'),
    lo("file", true, b'f'),
    lo("addr", true, b'a'),
    lo("bits", true, b'b'),
    lo("cgroup", true, b'c'),
    lo("describe", true, b'd'),
    lo("mark-idle", false, b'i'),
    lo("list", false, b'l'),
    lo("list-each", false, b'L'),
    lo("list-cgroup", false, b'C'),
    lo("list-mapcnt", false, b'M'),
    lo("no-summary", false, b'N'),
    lo("hwpoison", false, b'X'),
    lo("unpoison", false, b'x'),
    lo("kpageflags", false, b'F'),
    lo("help", false, b'h'),
];

/// Everything option parsing sets up.
pub(crate) struct Config {
    pub pipe: PipeOpts,
    pub mark_idle: bool,
    pub no_summary: bool,
    pub pid: i32,
    pub pagemap: Option<File>,
    pub vmas: Vec<(u64, u64)>,
    pub file: Option<Vec<u8>>,
    pub kpageflags: Option<Vec<u8>>,
    pub ranges: Vec<(u64, u64)>,
    pub hwpoison: bool,
    pub unpoison: bool,
    pub actions: Actions,
}

fn os(b: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// Run page-types with `inv`, writing to `out` / `err`; returns the exit status.
pub fn run(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut c = Config {
        pipe: PipeOpts {
            format: inv.format,
            ..PipeOpts::default()
        },
        mark_idle: false,
        no_summary: false,
        pid: 0,
        pagemap: None,
        vmas: Vec::new(),
        file: None,
        kpageflags: None,
        ranges: Vec::new(),
        hwpoison: false,
        unpoison: false,
        actions: Actions::default(),
    };
    let r = parse_options(inv, &mut c, out, err).and_then(|()| walk::main(inv, c, out, err));
    let code = match r {
        Ok(()) => 0,
        Err(Stop::Exit(code)) => code,
        Err(Stop::Fatal(m)) => {
            let _ = out.flush();
            let _ = err.write_all(&m);
            1
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    code
}

fn parse_options(
    inv: &Invocation,
    c: &mut Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Stop> {
    let posixly = std::env::var_os("POSIXLY_CORRECT").is_some();
    for ev in Getopt::new(&inv.args, SHORTS, LONGS, posixly) {
        let (opt, arg_opt) = match ev {
            Event::Opt(o, a) => (o, a),
            Event::Error(m) => {
                let _ = err.write_all(&inv.argv0);
                let _ = err.write_all(&m);
                let _ = out.write_all(table::usage().as_bytes());
                return Err(Stop::Exit(1));
            }
        };
        let arg = arg_opt.clone().unwrap_or_default();
        match opt {
            b'r' => c.pipe.raw = true,
            b'p' => walk::parse_pid(inv, c, &arg, err)?,
            b'f' => c.file = Some(arg),
            b'a' => {
                let (off, size) = parse::parse_addr_range(&arg)?;
                if c.ranges.len() >= 1024 {
                    return Err(Stop::Fatal(b"too many addr ranges\n".to_vec()));
                }
                c.ranges.push((off, size.min(u64::MAX - off)));
            }
            b'b' => {
                let f = parse::parse_bits_mask(&arg)?;
                if c.pipe.filters.len() >= 64 {
                    return Err(Stop::Fatal(b"too much bit filters\n".to_vec()));
                }
                c.pipe.filters.push(f);
            }
            b'c' => c.pipe.cgroup = parse_cgroup(&arg)?,
            b'C' => c.pipe.list_cgroup = true,
            b'd' => {
                let v = parse::parse_flag_names(&arg, false)?;
                let sym = table::symbolic(v)?;
                let _ = writeln!(out, "0x{v:016x}\t{sym}\t{}", table::long_names(v));
                return Err(Stop::Exit(0));
            }
            b'i' => c.mark_idle = true,
            b'l' => c.pipe.list = 1,
            b'L' => c.pipe.list = 2,
            b'M' => c.pipe.list_mapcnt = true,
            b'N' => c.no_summary = true,
            b'X' | b'x' => {
                if opt == b'X' {
                    c.hwpoison = true;
                } else {
                    c.unpoison = true;
                }
                c.actions
                    .prepare_hwpoison(&inv.root, c.hwpoison, c.unpoison)?;
            }
            b'F' => c.kpageflags = arg_opt,
            b'h' => {
                let _ = out.write_all(table::usage().as_bytes());
                return Err(Stop::Exit(0));
            }
            _ => return Err(Stop::Exit(1)),
        }
    }
    Ok(())
}

fn parse_cgroup(arg: &[u8]) -> Result<u64, Stop> {
    if let Some(rest) = arg.strip_prefix(b"@") {
        return Ok(parse::parse_number(rest)?);
    }
    let path = os(arg);
    match std::fs::metadata(&path) {
        Err(e) => Err(Stop::Fatal(
            format!("stat failed: {}: {}\n", path.display(), walk::strerror(&e)).into_bytes(),
        )),
        Ok(m) if !m.is_dir() => Err(Stop::Fatal(
            format!("cgroup supposed to be a directory: {}\n", path.display()).into_bytes(),
        )),
        Ok(m) => Ok(std::os::unix::fs::MetadataExt::ino(&m)),
    }
}
