//! What one run is asked to do ([`Invocation`]), how it ends ([`Stop`]) and the state option
//! parsing sets up ([`Config`]), shared by the option parser and the walks.

use super::actions::Actions;
use super::parse::ALL_BITS;
use crate::error::Error;
use crate::kpageflags::PageFlags;
use crate::pagemap::PagemapEntry;
use crate::root::SysRoot;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// How to end: an exit status, a fatal message for stderr, or a pgtool error.
#[derive(Debug)]
pub enum Stop {
    /// Exit at once with this status (`-h`, `-d`).
    Exit(i32),
    /// page-types' fatal message for stderr (exit 1 in the drop-in).
    Fatal(Vec<u8>),
    /// An error in pgtool's own terms: a failed write to stdout in `pgtool types` (a closed
    /// pipe ends quietly, anything else exits 2), a PID that does not exist, ...
    Error(Error),
}

impl From<Vec<u8>> for Stop {
    fn from(m: Vec<u8>) -> Stop {
        Stop::Fatal(m)
    }
}

impl From<super::parse::ParseError> for Stop {
    fn from(e: super::parse::ParseError) -> Stop {
        Stop::Fatal(e.0)
    }
}

/// Output format of the summary and listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// page-types' text, byte for byte.
    #[default]
    Classic,
    /// JSON Lines (records of [`super::records`]).
    Json,
    /// CSV with a header row (the same records).
    Csv,
}

/// Whose conventions a run follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The `page-types` drop-in: page-types' bytes, stderr and exit statuses, write errors on
    /// stdout ignored as C's stdio does (a closed pipe kills it with SIGPIPE, as it does C).
    #[default]
    PageTypes,
    /// `pgtool types`: pgtool's policy: a failed write to stdout is an error (a closed pipe a
    /// quiet success), errors exit 2, a filter that selects no page exits 1.
    Pgtool,
}

/// One option already parsed (by clap in `pgtool types`): page-types' short letter and its
/// argument, in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    /// The short letter (`b'p'`, `b'L'`, ...).
    pub letter: u8,
    /// Its argument, for the options that take one.
    pub value: Option<Vec<u8>>,
}

/// One run: the arguments (after `argv[0]`) and pgtool's extras.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// `argv[0]` as glibc prints it in usage errors.
    pub argv0: Vec<u8>,
    /// The page-types arguments, parsed with the getopt emulation (ignored when `parsed` is
    /// set).
    pub args: Vec<OsString>,
    /// The options, already parsed and in order.
    pub parsed: Option<Vec<Opt>>,
    /// Where `/proc`, `/sys` and debugfs are.
    pub root: SysRoot,
    /// Threads for whole-range PFN summaries (1 = page-types' single pass).
    pub threads: usize,
    /// Output format.
    pub format: Format,
    /// Also write the summary as a Prometheus textfile here.
    pub prometheus: Option<PathBuf>,
    /// Show a progress line on stderr during long PFN scans (set it only when stderr is a
    /// TTY).
    pub progress: bool,
    /// The drop-in's conventions or pgtool's.
    pub mode: Mode,
}

impl Invocation {
    /// Plain page-types: live system, classic output, threads = available cores.
    pub fn page_types(args: Vec<OsString>) -> Invocation {
        Invocation {
            argv0: b"page-types".to_vec(),
            args,
            parsed: None,
            root: SysRoot::live(),
            threads: crate::threads::available(),
            format: Format::Classic,
            prometheus: None,
            progress: false,
            mode: Mode::PageTypes,
        }
    }
}

/// Options the pipeline needs.
#[derive(Clone, Debug, Default)]
pub struct PipeOpts {
    /// `-r`
    pub raw: bool,
    /// `-b` filters (mask, bits).
    pub filters: Vec<(u64, u64)>,
    /// `-c` inode (0 = none).
    pub cgroup: u64,
    /// 0 none, 1 `-l`, 2 `-L`.
    pub list: u8,
    /// `-p` given: voffset column.
    pub show_pid: bool,
    /// `-f` given: a second voffset column.
    pub show_file: bool,
    /// `-C`
    pub list_cgroup: bool,
    /// `-M`
    pub list_mapcnt: bool,
    /// Output format.
    pub format: Format,
}

impl PipeOpts {
    /// page-types' flag transformation (A.7).
    pub fn transform(&self, flags: u64, pme: u64) -> u64 {
        let f = PageFlags::from_bits_retain(flags);
        if self.raw {
            f.expand_overloaded(PagemapEntry::from_raw(pme)).bits()
        } else {
            f.well_known().bits()
        }
    }

    /// The flags page-types counts and lists for a present page (`add_page`'s transformation
    /// and filters), or `None` when `-b` or `-c` leaves it out.
    pub fn select(&self, flags: u64, cgroup: u64, pme: u64) -> Option<u64> {
        let f = self.transform(flags, pme);
        (self.bits_ok(f) && (self.cgroup == 0 || cgroup == self.cgroup)).then_some(f)
    }

    /// The same for a swapped entry (`walk_swap`: no kpageflags word, and no memcg, so any
    /// `-c` leaves it out).
    pub fn select_swap(&self, pme: u64) -> Option<u64> {
        let f = self.transform(0, pme);
        (self.bits_ok(f) && self.cgroup == 0).then_some(f)
    }

    /// All `-b` filters pass.
    pub fn bits_ok(&self, flags: u64) -> bool {
        self.filters.iter().all(|&(mask, bits)| {
            if bits == ALL_BITS {
                flags & mask != 0
            } else {
                flags & mask == bits
            }
        })
    }
}

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

impl Config {
    pub fn new(format: Format) -> Config {
        Config {
            pipe: PipeOpts {
                format,
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
        }
    }
}

/// A path from page-types' bytes.
pub fn os(b: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// stdout under the run's [`Mode`]: the drop-in ignores write errors as C's stdio does;
/// `pgtool types` stops at the first one.
pub struct Out<'a> {
    w: &'a mut dyn Write,
    strict: bool,
}

impl<'a> Out<'a> {
    /// stdout for a run in `mode`.
    pub fn new(w: &'a mut dyn Write, mode: Mode) -> Out<'a> {
        Out {
            w,
            strict: mode == Mode::Pgtool,
        }
    }

    /// True in `pgtool types` (write errors count).
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Write `b`.
    pub fn put(&mut self, b: &[u8]) -> Result<(), Stop> {
        let r = self.w.write_all(b);
        self.check(r)
    }

    /// Flush.
    pub fn flush(&mut self) -> Result<(), Stop> {
        let r = self.w.flush();
        self.check(r)
    }

    /// The writer itself (for the record sink, which applies the policy itself).
    pub fn into_writer(self) -> &'a mut dyn Write {
        self.w
    }

    /// A write's result under the mode's policy.
    pub fn check(&self, r: io::Result<()>) -> Result<(), Stop> {
        match r {
            Err(e) if self.strict => Err(Stop::Error(crate::output::stdout_error(e))),
            _ => Ok(()),
        }
    }
}
