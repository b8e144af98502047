//! `pgtool mem`: RSS, PSS, USS and swap per process, mapping, library, memcg or user.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::mem::{self, By, Request, Rows};
use pgtool::output::{Format, Record, Sink, human_bytes};
use pgtool::{Error, input};
use std::io::Write;
use std::path::PathBuf;

/// What rows are summed by.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ByArg {
    /// One row per process (address space).
    #[default]
    Process,
    /// One row per mapping name (path, [heap], [anon]...) per process, like showmap.
    Mapping,
    /// One row per mapped file, summed over processes, like librank.
    Library,
    /// One row per memcg the pages are charged to (kpagecgroup), not where processes sit now.
    Memcg,
    /// One row per user.
    User,
}

/// Labels that make metrics series per process; off by default (unbounded cardinality).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// A `pid` label on process and mapping series: one series per process, new ones on
    /// every restart.
    Pid,
}

/// Arguments of `pgtool mem`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Figures follow the kernel's smaps rules (Rss, Pss, Pss_Anon/File/Shmem, \
Swap, SwapPss) page by page from pagemap, kpagecount and kpageflags; uss_bytes counts pages \
mapped once. Without root PFNs are hidden: figures then come from /proc/PID/smaps_rollup \
(--by process and user only). Notes on stderr say what could not be counted.\n\n\
Exit status: 0 success; 1 no process matched or could be read; 2 usage or system error.\n\n\
Examples:\n  pgtool mem\n  pgtool mem --by library --path libc\n  \
pgtool mem --pid 1234 --children --json\n  pgtool mem --by memcg --prometheus /var/lib/node_exporter/mem.prom"
)]
pub struct Args {
    /// Sum rows by process, mapping, library, memcg or user.
    #[arg(long, value_enum, default_value_t = ByArg::Process)]
    pub by: ByArg,
    /// Only these processes (a PID or `self`; comma separated or repeated).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<String>,
    /// With --pid: also every descendant of those processes.
    #[arg(long, requires = "pid")]
    pub children: bool,
    /// Only processes with this command name (as in /proc/PID/comm; repeatable).
    #[arg(long, value_name = "NAME")]
    pub comm: Vec<String>,
    /// Only processes whose memory cgroup is CGROUP or below it (a path, relative to the
    /// hierarchy's mount or absolute, or @INODE).
    #[arg(long, value_name = "CGROUP")]
    pub cgroup: Option<String>,
    /// Only mappings this selects: a path, a bracketed name ([heap]), or part of a file name
    /// (libc); repeatable.
    #[arg(long, value_name = "NAME")]
    pub path: Vec<String>,
    /// Show only the N largest rows (the total still covers all).
    #[arg(long, value_name = "N")]
    pub top: Option<String>,
    /// Read /proc/PID/smaps_rollup instead of pages (what non-root gets anyway).
    #[arg(long)]
    pub rollup: bool,
    /// Faster: pages mapped once (most of a process's memory: anonymous, or page cache of a
    /// file not on tmpfs) are counted from pagemap alone, without kpageflags/kpagecount; every
    /// smaps figure (RSS, PSS, USS, anon, file, shmem, swap) stays exact, but thp, ksm and
    /// dirty read null (unknown). Ignored by --by memcg.
    #[arg(long)]
    pub fast: bool,
    /// Pagemap entries read at once (bounds memory; 0x hex or decimal).
    #[arg(long, value_name = "PAGES", hide = true)]
    pub batch: Option<String>,
    /// Threads a large process (over 64 MiB of populated pages per thread) is read by
    /// (default: the CPUs this process may use, at most 8); each keeps its own batch buffers.
    #[arg(long, value_name = "N", value_parser = threads_arg)]
    pub threads: Option<usize>,
    /// Also write the figures as a Prometheus textfile (atomic), labelled by comm and user,
    /// mapping, library path, memcg path or user.
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Extra metric labels (cost: a series per process).
    #[arg(long, value_enum, value_delimiter = ',', requires = "prometheus")]
    pub labels: Vec<Label>,
    #[command(flatten)]
    pub format: FormatArgs,
}

fn threads_arg(s: &str) -> Result<usize, String> {
    input::parse_thread_count(s).map_err(|e| e.to_string())
}

/// Run `pgtool mem`.
pub fn run(a: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let mut pids = Vec::new();
    for p in &a.pid {
        pids.push(input::parse_pid(p, &root)?);
    }
    let top = match &a.top {
        Some(t) => {
            Some(usize::try_from(input::parse_number_for(t, "--top count")?).unwrap_or(usize::MAX))
        }
        None => None,
    };
    let batch = match &a.batch {
        Some(b) => {
            let n = input::parse_number_for(b, "--batch size")?;
            if n == 0 || n > 1 << 24 {
                return Err(Error::Usage(format!(
                    "bad --batch size {}: expected 1 to 16777216 pages",
                    input::quote(b)
                )));
            }
            n as usize
        }
        None => 0,
    };
    let req = Request {
        by: match a.by {
            ByArg::Process => By::Process,
            ByArg::Mapping => By::Mapping,
            ByArg::Library => By::Library,
            ByArg::Memcg => By::Memcg,
            ByArg::User => By::User,
        },
        pids,
        children: a.children,
        comm: a.comm.clone(),
        cgroup: a.cgroup.clone(),
        paths: a.path.clone(),
        batch,
        threads: a.threads.unwrap_or(0),
        rollup: a.rollup,
        lean: a.fast,
    };
    let rep = mem::report(&root, &req)?;
    if let Some(path) = &a.prometheus {
        mem::records::metrics(&rep.rows, a.labels.contains(&Label::Pid))?.write_textfile(path)?;
    }
    let mut sink = Sink::stdout(a.format.format());
    match &rep.rows {
        Rows::Process(v) => emit(&mut sink, v, top, |r| r.total, |r| (&r.usage, "processes"))?,
        Rows::Mapping(v) => emit(&mut sink, v, top, |r| r.total, |r| (&r.usage, "mappings"))?,
        Rows::Library(v) => emit(&mut sink, v, top, |r| r.total, |r| (&r.usage, "files"))?,
        Rows::Memcg(v) => emit(&mut sink, v, top, |r| r.total, |r| (&r.usage, "memcgs"))?,
        Rows::User(v) => emit(&mut sink, v, top, |r| r.total, |r| (&r.usage, "users"))?,
    }
    sink.finish()?;
    // Notes after the listing, so an error (a full disk, a bad metrics path) comes first.
    let mut err = std::io::stderr().lock();
    for n in &rep.notes {
        let _ = writeln!(err, "pgtool: note: {n}");
    }
    Ok(0)
}

/// Write the rows (at most `top` of them), then the total: a record in JSON and CSV, a line of
/// text under the table.
fn emit<R: Record, W: Write>(
    sink: &mut Sink<W>,
    rows: &[R],
    top: Option<usize>,
    is_total: impl Fn(&R) -> bool,
    usage: impl Fn(&R) -> (&mem::usage::UsageBytes, &'static str),
) -> Result<(), Error> {
    let body: Vec<&R> = rows.iter().filter(|r| !is_total(r)).collect();
    let shown = top.unwrap_or(usize::MAX).min(body.len());
    for r in &body[..shown] {
        sink.write(*r)?;
    }
    let Some(total) = rows.iter().find(|r| is_total(r)) else {
        return Ok(());
    };
    if sink.format() == Format::Table {
        let (u, what) = usage(total);
        let opt = |v: Option<u64>| v.map(human_bytes).unwrap_or_else(|| "-".into());
        sink.text(&format!(
            "total ({} {what}{}): rss {}  pss {}  uss {}  swap {}  swap_pss {}",
            body.len(),
            if shown < body.len() {
                format!(", {shown} shown")
            } else {
                String::new()
            },
            human_bytes(u.rss_bytes),
            human_bytes(u.pss_bytes),
            opt(u.uss_bytes),
            human_bytes(u.swap_bytes),
            human_bytes(u.swap_pss_bytes),
        ))
    } else {
        sink.write(total)
    }
}
