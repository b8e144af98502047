//! `pgtool idle`: mark pages idle, read them back, sample a process's working set. Thin: the
//! arguments become a [`pgtool::idle::Source`] or a [`pgtool::idle::wss::WssRequest`], the
//! library does the work and returns records, the output layer prints them.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::idle::wss::{Sampler, WssLabels, WssRequest};
use pgtool::idle::{self, IdleBitmap, Method, Selection, Source};
use pgtool::input;
use pgtool::output::{Format, Sink};
use pgtool::{Error, SysRoot};
use std::io::{self, Write};
use std::path::PathBuf;

/// Arguments of `pgtool idle`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Idle page tracking needs CONFIG_IDLE_PAGE_TRACKING \
(/sys/kernel/mm/page_idle/bitmap) and root. A page counts as accessed when its bit was cleared \
since it was marked, or when it cannot be tracked (not on an LRU list). Pages of a large folio \
(THP) share the bit of the folio's head page. Addresses and PFNs are 0x hex or decimal. \
Marking and --method refs write to the kernel, so they refuse --root (read-only).")]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Mark pages idle (says which pages on stderr first).
    Mark(PagesArgs),
    /// Count the pages still idle and those accessed since they were marked.
    Read(ReadArgs),
    /// Sample a process's working set per mapping, every interval.
    Wss(WssArgs),
    /// Draw a process's working set over time: time x address, by accessed share.
    Heatmap(crate::heatmap::Args),
}

/// Which pages.
#[derive(clap::Args, Debug)]
struct PagesArgs {
    /// The present pages of this process (a PID or `self`).
    #[arg(long, conflicts_with_all = ["pfn", "cgroup"],
          required_unless_present_any = ["pfn", "cgroup"])]
    pid: Option<String>,
    /// Only mappings with this name (path, file-name substring, [heap], [stack], [anon]);
    /// repeatable. With --pid.
    #[arg(long, requires = "pid")]
    vma: Vec<String>,
    /// Only this virtual address range: ADDR, ADDR+LEN (LEN may be 8K, 2M) or START-END (END
    /// exclusive), 0x hex or decimal; widened to whole pages. With --pid.
    #[arg(long, requires = "pid")]
    addr: Option<String>,
    /// PFNs: PFN, A+N (N pages) or A-B (B included, as in `pgtool who`), 0x hex or decimal;
    /// repeatable; `-` reads them from stdin. Holes in System RAM are skipped.
    #[arg(long, conflicts_with = "cgroup")]
    pfn: Vec<String>,
    /// The pages charged to this memcg: a cgroup directory (/sys/fs/cgroup/system.slice), a
    /// path inside the memory hierarchy (/system.slice) or @INODE.
    #[arg(long)]
    cgroup: Option<String>,
}

#[derive(clap::Args, Debug)]
struct ReadArgs {
    #[command(flatten)]
    source: PagesArgs,
    /// List every page (address, PFN, head PFN, idle) instead of counts.
    #[arg(short = 'L', long)]
    list: bool,
    #[command(flatten)]
    format: FormatArgs,
}

/// `--method`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MethodArg {
    /// The page_idle bitmap (leaves the process alone).
    Idle,
    /// /proc/PID/clear_refs + smaps Referenced (clears the process's referenced bits).
    Refs,
    /// idle when the bitmap exists, else refs.
    Auto,
}

/// `--labels`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LabelArg {
    /// The PID: new series at every restart of the process.
    Pid,
    /// The VMA's address range: one series per VMA, new ones at every ASLR layout.
    Vma,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Metrics (--prometheus) are gauges labelled by comm and mapping \
(a file path, [heap], [stack], [anon], ...), summed over the VMAs of one name, so series \
survive restarts. --labels pid,vma adds the PID and the address range: every restart and \
every address-space layout then makes a new set of series, which multiplies what Prometheus \
stores; ask for them only for short investigations."
)]
struct WssArgs {
    /// The process (a PID or `self`).
    #[arg(long)]
    pid: String,
    /// Only mappings with this name (repeatable).
    #[arg(long)]
    vma: Vec<String>,
    /// Sampling interval: 250ms, 2s, 1m (bare numbers are seconds).
    #[arg(long, default_value = "1s")]
    interval: String,
    /// Stop after this many intervals (default: run until interrupted or the process exits).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// How accessed pages are found.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// Also write the latest sample to FILE in Prometheus text format (atomically), for
    /// node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Extra metric labels, comma-separated: pid, vma. Each multiplies the series stored
    /// (new ones per restart / per address layout); the default is comm and mapping only.
    #[arg(long, value_enum, value_delimiter = ',', requires = "prometheus")]
    labels: Vec<LabelArg>,
    /// List mappings with no resident pages too.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: FormatArgs,
}

/// Run `pgtool idle`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    match args.action {
        Action::Mark(src) => mark(&root, &src),
        Action::Read(a) => read(&root, a),
        Action::Wss(a) => wss(&root, a),
        Action::Heatmap(a) => crate::heatmap::run(&root, a),
    }
}

fn source(root: &SysRoot, s: &PagesArgs) -> Result<Source, Error> {
    if let Some(p) = &s.pid {
        let addr = s
            .addr
            .as_deref()
            .map(input::parse_addr_range)
            .transpose()?
            .map(|r| r.start..r.end);
        Ok(Source::Pid {
            pid: input::parse_pid(p, root)?,
            vma: s.vma.clone(),
            addr,
        })
    } else if !s.pfn.is_empty() {
        let ranges = input::parse_pfn_args(&s.pfn, &mut io::stdin().lock())?;
        Ok(Source::Pfns(ranges))
    } else if let Some(cg) = &s.cgroup {
        Ok(Source::Cgroup {
            inode: pgtool::cgroup::resolve_filter(root, cg)?,
            name: cg.clone(),
        })
    } else {
        Err(Error::Usage(
            "name the pages: --pid, --pfn or --cgroup".into(),
        ))
    }
}

/// A line on stderr (a failure to write it is not worth failing the command for).
fn note(line: &str) {
    let _ = writeln!(io::stderr(), "pgtool: {line}");
}

fn mark(root: &SysRoot, s: &PagesArgs) -> Result<i32, Error> {
    let src = source(root, s)?;
    // Refuse --root before resolving anything: the bitmap would be written under it.
    let bitmap = IdleBitmap::open(root, true)?;
    let sel = Selection::new(root, &src)?;
    note(&format!(
        "marking idle in {}: {}",
        bitmap.path().display(),
        sel.describe()
    ));
    sel.mark(&bitmap)?;
    note(&format!("marked {} pages idle", sel.pages()));
    Ok(0)
}

fn read(root: &SysRoot, a: ReadArgs) -> Result<i32, Error> {
    // What was asked for first: naming nothing (exit 1) before a missing bitmap (exit 2).
    let sel = Selection::new(root, &source(root, &a.source)?)?;
    let bitmap = IdleBitmap::open(root, false)?;
    let mut sink = Sink::stdout(a.format.format());
    if a.list {
        sel.read_pages(root, &bitmap, &mut |r| sink.write(r))?;
    } else {
        for r in sel.read_counts(root, &bitmap)? {
            match (&r.vma, sink.format()) {
                // Tables say the total in words instead of a row of dashes.
                (None, Format::Table) => sink.text(&format!(
                    "total: {} pages, {} idle, {} accessed",
                    r.pages, r.idle_pages, r.accessed_pages
                ))?,
                _ => sink.write(&r)?,
            }
        }
    }
    sink.finish()?;
    Ok(0)
}

fn wss(root: &SysRoot, a: WssArgs) -> Result<i32, Error> {
    let interval = input::parse_duration(&a.interval)?;
    let method = match a.method {
        MethodArg::Idle => Method::Idle,
        MethodArg::Refs => Method::Refs,
        MethodArg::Auto => idle::auto_method(root),
    };
    let req = WssRequest {
        pid: input::parse_pid(&a.pid, root)?,
        vma: a.vma.clone(),
        method,
        interval,
    };
    let labels = WssLabels {
        pid: a.labels.contains(&LabelArg::Pid),
        vma: a.labels.contains(&LabelArg::Vma),
    };
    let mut sampler = Sampler::start(root, req)?;
    note(&sampler.touches());
    // Unbuffered (line-buffered) stdout: each interval must reach a pipe as it is sampled.
    let format = a.format.format();
    let mut sink = Sink::new(format, io::stdout(), table_width(format));
    loop {
        if a.count.is_some_and(|c| sampler.intervals() >= c) {
            break;
        }
        let sample = match sampler.sample() {
            Ok(s) => s,
            // Without --count the sampler runs until the process ends: that is its end.
            Err(e)
                if a.count.is_none()
                    && sampler.intervals() > 0
                    && (e.is_process_gone() || sampler.process_ended()) =>
            {
                note(&format!(
                    "{e}: stopped after {} intervals",
                    sampler.intervals()
                ));
                break;
            }
            Err(e) => return Err(e),
        };
        for r in sample.records(a.all) {
            match (&r.vma, format) {
                // Tables say the total in words (this also flushes the interval's rows).
                (None, Format::Table) => sink.text(&format!(
                    "total of {}: {} pages, {} accessed ({}), {} idle",
                    describe(&sample, r.pid),
                    r.pages,
                    r.accessed_pages,
                    pgtool::output::human_bytes(r.accessed_bytes),
                    r.idle_pages
                ))?,
                _ => sink.write(r)?,
            }
        }
        if let Some(p) = &a.prometheus {
            sample.metrics(labels)?.write_textfile(p)?;
        }
    }
    sink.finish()?;
    Ok(0)
}

fn describe(s: &pgtool::idle::wss::Sample, pid: u32) -> String {
    if s.comm.is_empty() {
        format!("pid {pid}")
    } else {
        format!("pid {pid} ({})", s.comm)
    }
}

/// The table width for a sink on plain stdout: `$COLUMNS`, else 100 (the output layer's default
/// when stdout is not a terminal). Only tables use it.
fn table_width(format: Format) -> usize {
    const DEFAULT: usize = 100;
    if format != Format::Table {
        return DEFAULT;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|c| *c >= 20)
        .unwrap_or(DEFAULT)
}
