//! `pgtool leak`: is memory leaking, where, and (with --trace) which call site.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::output::Sink;
use std::path::PathBuf;

/// Sample where memory is and what grows; with --trace, trace kmem allocations and frees.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --trace: samples /proc/meminfo, /proc/slabinfo, /proc/vmallocinfo, /proc/PID/status and
memcg usage --count times --interval apart (12 x 5s: about a minute), splits MemTotal into parts
(user_anon, user_file, user_shmem, swap_cache, slab_reclaimable, slab_unreclaimable,
kernel_stack, page_tables, vmalloc, percpu, hugetlb, zswap, other_kernel, and unaccounted:
MemTotal minus everything the kernel counts; see docs/meminfo.md), fits a Theil-Sen slope to
each and says which grow, then lists the slab caches, vmalloc callers, processes and memcgs
that grow (page_owner's top stacks when the unaccounted part grows and page_owner is on).
A part grows when Kendall's tau of its samples is >= 0.6 and the slope over the window adds at
least 256 KiB and 0.2% of its size. Ctrl-C ends the sampling early and reports what was taken.

With --trace (root, tracefs): creates the tracefs instance instances/pgtool-leak-PID, enables
the kmem events (kmalloc, kmalloc_node, kmem_cache_alloc(_node), kfree, kmem_cache_free,
mm_page_alloc, mm_page_free: those this kernel has) for --duration, pairs allocations with frees
by address and lists what is still outstanding by call site: count, bytes, cache, oldest age.
At most --max-events allocations are tracked; more are dropped and counted. The instance is
removed on exit, on Ctrl-C/SIGTERM and on error; the global tracing settings are never touched.

Fields (JSON/CSV): kind, name, class, size_bytes, growth_bytes, bytes_per_s, tau, verdict,
evidence. --trace: call_site, cache, count, bytes, oldest_age_s, events.
--prometheus FILE: pgtool_leak_category_bytes, _category_growth_bytes_per_second,
_category_growing (label category), pgtool_leak_slab_cache_growth_bytes_per_second (cache),
pgtool_leak_vmalloc_caller_growth_bytes_per_second (caller), pgtool_leak_window_seconds.

Exit status: 0 reported; 2 usage or system error (meminfo unreadable; --trace: not root, no
tracefs, a kmem event missing).")]
pub struct Args {
    /// Time between samples: 250ms, 2s, 1m (a bare number is seconds).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// Number of samples (a trend needs 3 or more).
    #[arg(long, default_value_t = 12, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Drill-down items (caches, callers, processes, memcgs; --trace: call sites) shown per kind.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Also write the verdict as a Prometheus textfile (atomic rename).
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    pub prometheus: Option<PathBuf>,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// The --trace options.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Trace kmem allocations and frees instead of sampling (root, tracefs).
    #[arg(long)]
    pub trace: bool,
    /// How long to trace.
    #[arg(
        long,
        default_value = "5s",
        value_name = "DURATION",
        requires = "trace"
    )]
    pub duration: String,
    /// Only events of this process (common_pid; its threads are other PIDs).
    #[arg(long, value_name = "PID", requires = "trace")]
    pub pid: Option<String>,
    /// Only events of tasks with this comm.
    #[arg(long, value_name = "COMM", requires = "trace")]
    pub comm: Option<String>,
    /// Only allocations and frees in this slab cache (kmem_cache_* events; kmalloc-N by size).
    #[arg(long, value_name = "CACHE", requires = "trace")]
    pub cache: Option<String>,
    /// The most outstanding allocations tracked (about 120 bytes each); beyond it allocations
    /// are dropped and counted.
    #[arg(long, default_value_t = 250_000, value_name = "N", requires = "trace",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_events: u64,
    /// Compare the objects the top call sites left outstanding with their cache's biggest
    /// groups of alike objects (`slab --objects`), naming the likely leaker (root, /proc/kcore
    /// and BTF; the trace then holds real addresses, and 6.1 kernels print page events'
    /// gfp flags empty).
    #[arg(long, requires = "trace")]
    pub similar: bool,
}

/// Run `pgtool leak`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    if args.trace.trace {
        return trace(args, &root);
    }
    let interval = pgtool::input::parse_duration(&args.interval)?;
    let stop = pgtool::leak::trace::stop_flag()?;
    let (samples, notes) = pgtool::leak::collect(&root, interval, args.count, stop)?;
    let rep = pgtool::leak::report(&root, &samples, notes, args.top);
    if let Some(p) = &args.prometheus {
        pgtool::leak::metrics(&rep)?.write_textfile(p)?;
    }
    let mut sink = Sink::stdout(args.format.format());
    for r in &rep.records {
        sink.write(r)?;
    }
    for line in rep.summary.iter().chain(&rep.notes) {
        sink.note(line)?;
    }
    sink.finish()?;
    // the verdict and notes go to stderr too in JSON/CSV, where the sink prints records only
    if args.format.format() != pgtool::output::Format::Table {
        for line in rep.summary.iter().chain(&rep.notes) {
            eprintln!("pgtool leak: {line}");
        }
    }
    Ok(0)
}

fn trace(args: Args, root: &pgtool::SysRoot) -> Result<i32, Error> {
    let t = &args.trace;
    let opts = pgtool::leak::trace::Options {
        duration: pgtool::input::parse_duration(&t.duration)?,
        pid: t
            .pid
            .as_deref()
            .map(|p| pgtool::input::parse_pid(p, root))
            .transpose()?,
        comm: t.comm.clone(),
        cache: t.cache.clone(),
        max_events: t.max_events,
        similar: t.similar,
    };
    let stop = pgtool::leak::trace::stop_flag()?;
    let rep = pgtool::leak::trace::run(root, &opts, stop)?;
    let mut sink = Sink::stdout(args.format.format());
    for r in rep
        .sites
        .iter()
        .take(if args.top == 0 { usize::MAX } else { args.top })
    {
        sink.write(r)?;
    }
    for line in &rep.notes {
        sink.note(line)?;
    }
    sink.finish()?;
    if args.format.format() != pgtool::output::Format::Table {
        for line in &rep.notes {
            eprintln!("pgtool leak --trace: {line}");
        }
    }
    Ok(0)
}
