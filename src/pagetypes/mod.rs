//! `pgtool types` / `page-types`: the kernel's tools/vm/page-types (Linux 6.1) with the same
//! options, the same bytes on stdout and stderr and the same exit statuses, plus JSON/CSV,
//! Prometheus textfile output, snapshot roots and a faster, multi-threaded walk.
//!
//! The behaviour follows the project's page-types spec (Part A) exactly: glibc `getopt_long`
//! parsing with options acting in argument order, `strtoll` numbers, prefix-matched flag
//! names, the raw/non-raw flag transformation, the `-l` batch-boundary quirk, and the summary
//! rows in page-types' hash-slot order.
//!
//! Where things are: [`config`] (the request, how a run ends), [`options`] (page-types'
//! option table and its `switch`), [`pid`] (`-p`), `walk` (after parsing: header, walk,
//! summary), `pfn` / `threaded` (PFN ranges in one pass or in threads), `task_chunks` (a
//! process in chunks, one worker each) and `task` (a process in page order, for actions, `-l`
//! and records), `batch` (a process's entries and their lookups), `ordered` (chunks merged in
//! order), `file` (`-f`), [`read`] (page-types' reads and the batched lookups), [`pipe`] (the
//! per-page pipeline and the classic printer), `lines` (listing lines), [`records`] (`--json`/`--csv`), [`metrics`]
//! (`--prometheus`), [`cerr`] (C error text), [`table`], [`parse`], [`actions`].
//!
//! ```no_run
//! use pgtool::pagetypes::{Invocation, run};
//! let inv = Invocation::page_types(vec!["-d".into(), "0x5868".into()]);
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! assert_eq!(run(&inv, &mut out, &mut err).ok(), Some(0));
//! ```

pub mod actions;
mod batch;
pub mod cerr;
pub mod config;
mod file;
mod lines;
pub mod metrics;
pub mod options;
mod ordered;
pub mod parse;
mod pfn;
pub mod pid;
pub mod pipe;
pub mod read;
pub mod records;
pub mod table;
mod task;
mod task_chunks;
mod threaded;
mod walk;

pub use config::{Format, Invocation, Mode, Opt, Stop};

use crate::error::Error;
use config::{Config, Out};
use std::io::Write;

/// Run page-types with `inv`, writing to `out` / `err`; returns the exit status.
///
/// In [`Mode::PageTypes`] every failure is page-types' (its text on `err`, its status) and
/// this never returns `Err`. In [`Mode::Pgtool`] page-types' fatal messages and pgtool's own
/// errors (a failed write to stdout, a PID that is gone, no page selected) come back as
/// [`Error`]s for the caller to report with pgtool's exit statuses.
pub fn run(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, Error> {
    let mut c = Config::new(inv.format);
    let r = {
        let mut o = Out::new(&mut *out, inv.mode);
        options::parse(inv, &mut c, &mut o, err).and_then(|()| walk::main(inv, c, o, err))
    };
    // stdout before stderr, as page-types' exit does; in pgtool types a failed flush counts
    let flushed = Out::new(&mut *out, inv.mode).flush();
    let r = match (r, flushed) {
        (Ok(()) | Err(Stop::Exit(_)), Err(e)) => Err(e),
        (r, _) => r,
    };
    match r {
        Ok(()) => Ok(0),
        Err(Stop::Exit(code)) => Ok(code),
        Err(Stop::Fatal(m)) => match inv.mode {
            Mode::PageTypes => {
                let _ = err.write_all(&m);
                let _ = err.flush();
                Ok(1)
            }
            Mode::Pgtool => Err(Error::Usage(format!(
                "types: {}",
                String::from_utf8_lossy(&m).trim_end()
            ))),
        },
        Err(Stop::Error(e)) => Err(e),
    }
}
