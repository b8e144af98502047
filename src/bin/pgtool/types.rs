//! `pgtool types` and the `page-types` personality: the kernel's page-types, byte for byte,
//! plus `--json`, `--csv`, `--prometheus FILE` and `--threads N` (and the global `--root`).
//!
//! `pgtool types` declares every option in clap (so `--help`, the man page and completions
//! list them) and hands them to the library in command-line order, as page-types acts on them;
//! the `page-types` drop-in keeps page-types' own argv handling (the getopt emulation).

use crate::Global;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, FromArgMatches};
use pgtool::pagetypes::{self, Format, Invocation, Mode, options};
use pgtool::{Error, input};
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The options as declared; see [`Args`] for their order.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Options act in the order given, as in page-types (`-d` prints and \
exits; a later `-l`/`-L` wins). Without -p/-f the whole physical memory is walked. \
Installed as (or linked to) `page-types`, the binary is a drop-in page-types with its exact \
options, output and exit statuses:\n  ln -s \"$(command -v pgtool)\" /usr/local/sbin/page-types"
)]
pub struct Declared {
    /// Raw mode, for kernel developers: show every flag, overloaded bits decoded.
    #[arg(short = 'r', long, action = ArgAction::Count)]
    raw: u8,
    /// Walk a process's address space: a PID or `self`.
    #[arg(short = 'p', long, value_name = "PID", action = ArgAction::Append)]
    pid: Vec<String>,
    /// Walk the page cache of a file, or of every file under a directory.
    #[arg(short = 'f', long, value_name = "FILE|DIR", action = ArgAction::Append)]
    file: Vec<OsString>,
    /// Walk a range of pages (PFNs, or pages of -p/-f): N, N+COUNT, N,END, N, or ,END.
    #[arg(short = 'a', long, value_name = "ADDR-SPEC", action = ArgAction::Append)]
    addr: Vec<OsString>,
    /// Select pages by flags: bit1,bit2 (any set), bit1,~bit2 (mask=value), repeatable (all).
    #[arg(short = 'b', long, value_name = "BITS-SPEC", action = ArgAction::Append)]
    bits: Vec<OsString>,
    /// Select pages charged to a memory cgroup: its directory or @INODE.
    #[arg(short = 'c', long, value_name = "PATH|@INODE", action = ArgAction::Append)]
    cgroup: Vec<OsString>,
    /// Describe flags (numbers or names, comma-separated) and exit.
    #[arg(short = 'd', long, value_name = "FLAGS", action = ArgAction::Append)]
    describe: Vec<OsString>,
    /// Mark the selected pages idle (page_idle bitmap).
    #[arg(short = 'i', long, action = ArgAction::Count)]
    mark_idle: u8,
    /// List runs of pages with the same flags (offset, length, flags).
    #[arg(short = 'l', long, action = ArgAction::Count)]
    list: u8,
    /// List every page (offset, flags).
    #[arg(short = 'L', long, action = ArgAction::Count)]
    list_each: u8,
    /// Add each page's memcg inode to the listing.
    #[arg(short = 'C', long, action = ArgAction::Count)]
    list_cgroup: u8,
    /// Add each page's map count (kpagecount) to the listing.
    #[arg(short = 'M', long, action = ArgAction::Count)]
    list_mapcnt: u8,
    /// Do not print the summary.
    #[arg(short = 'N', long, action = ArgAction::Count)]
    no_summary: u8,
    /// Inject a memory error (hwpoison) into every selected page. Destroys data.
    #[arg(short = 'X', long, action = ArgAction::Count)]
    hwpoison: u8,
    /// Unpoison every selected page.
    #[arg(short = 'x', long, action = ArgAction::Count)]
    unpoison: u8,
    /// Read page flags from this file (a saved kpageflags) instead of /proc/kpageflags.
    #[arg(short = 'F', long, value_name = "FILE", action = ArgAction::Append)]
    kpageflags: Vec<OsString>,
    /// JSON Lines: one object per summary row {flags, flags_raw, flags_raw_hex, symbolic,
    /// pages, size_bytes}; with -l/-L one per listed run instead {pfn, swap_offset, pages,
    /// vaddr, file_offset, flags, flags_raw, flags_raw_hex, symbolic, kpagecount, memcg_ino}.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row: the same fields as --json.
    #[arg(long)]
    csv: bool,
    /// Also write the summary to FILE as a Prometheus textfile (pgtool_types_pages{flags},
    /// pgtool_types_page_size_bytes), atomically, for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Threads for whole-range PFN summaries (default: the CPUs this process may use).
    #[arg(long, value_name = "N", value_parser = threads_arg)]
    threads: Option<usize>,
}

fn threads_arg(s: &str) -> Result<usize, String> {
    match input::parse_number_for(s, "thread count") {
        Ok(n) if (1..=1024).contains(&n) => Ok(n as usize),
        Ok(_) => Err(format!(
            "bad thread count {}: give 1 to 1024",
            input::quote(s)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// `pgtool types`: the declared options, plus their command-line order.
#[derive(Debug)]
pub struct Args {
    declared: Declared,
    order: Vec<(usize, u8, Option<OsString>)>,
}

/// The page-types letter of each declared option.
const LETTERS: &[(&str, u8, bool)] = &[
    ("raw", b'r', false),
    ("pid", b'p', true),
    ("file", b'f', true),
    ("addr", b'a', true),
    ("bits", b'b', true),
    ("cgroup", b'c', true),
    ("describe", b'd', true),
    ("mark_idle", b'i', false),
    ("list", b'l', false),
    ("list_each", b'L', false),
    ("list_cgroup", b'C', false),
    ("list_mapcnt", b'M', false),
    ("no_summary", b'N', false),
    ("hwpoison", b'X', false),
    ("unpoison", b'x', false),
    ("kpageflags", b'F', true),
];

impl FromArgMatches for Args {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let declared = Declared::from_arg_matches(m)?;
        let mut order = Vec::new();
        for &(id, letter, takes) in LETTERS {
            // flags have a default (0) that is not an occurrence
            if m.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let Some(idx) = m.indices_of(id) else {
                continue;
            };
            if takes {
                let vals = m.get_raw(id).into_iter().flatten();
                for (i, v) in idx.zip(vals) {
                    order.push((i, letter, Some(v.to_os_string())));
                }
            } else {
                order.extend(idx.map(|i| (i, letter, None)));
            }
        }
        Ok(Args { declared, order })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Args::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Args {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Declared::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Declared::augment_args_for_update(cmd)
    }
}

/// Restore the default SIGPIPE action, as a C program has: `page-types | head` ends as
/// page-types does.
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
    let d = args.declared;
    let mut inv = Invocation::page_types(Vec::new());
    inv.argv0 = b"pgtool types".to_vec();
    inv.mode = Mode::Pgtool;
    inv.root = g.sysroot();
    inv.format = match (d.json, d.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Classic,
    };
    inv.prometheus = d.prometheus;
    if let Some(t) = d.threads {
        inv.threads = t;
    }
    let mut order = Vec::with_capacity(args.order.len());
    for (i, letter, value) in args.order {
        let value = match (letter, value) {
            // the one PID grammar (a number or `self`), then page-types' own parsing
            (b'p', Some(v)) => {
                let pid = input::parse_pid(&v.to_string_lossy(), &inv.root)?;
                Some(pid.to_string().into_bytes())
            }
            (_, v) => v.map(OsStringExt::into_vec),
        };
        order.push((i, letter, value));
    }
    inv.parsed = Some(options::in_order(order));
    inv.progress = io::stderr().is_terminal();
    let mut out = stdout_writer();
    let mut err = io::stderr();
    pagetypes::run(&inv, &mut out, &mut err)
}

/// Entry point when invoked as `page-types`: argv and output exactly as page-types.
pub fn page_types_main(argv: Vec<OsString>) -> i32 {
    default_sigpipe();
    let mut it = argv.into_iter();
    let argv0 = it.next().unwrap_or_else(|| "page-types".into());
    let mut inv = Invocation::page_types(it.collect());
    inv.argv0 = argv0.as_bytes().to_vec();
    // a drop-in page-types writes nothing page-types would not
    inv.progress = false;
    let mut out = stdout_writer();
    let mut err = io::stderr();
    // the drop-in mode reports every failure itself, with page-types' text and status
    pagetypes::run(&inv, &mut out, &mut err).unwrap_or(1)
}
