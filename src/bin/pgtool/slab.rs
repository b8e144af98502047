//! `pgtool slab`: sample slab caches, sort by size or growth, flag leak suspects.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::output::Sink;
use pgtool::slab::{SortBy, Source, alloc_calls, metrics, records, sample, trends};
use std::path::PathBuf;
use std::time::Duration;

/// Sample /proc/slabinfo (or /sys/kernel/slab) and list caches by size and growth.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Leak suspects are caches whose active objects grew between every two consecutive samples
(--count 3 --interval 1s by default: two seconds of sampling). /proc/slabinfo and the files of
/sys/kernel/slab are readable by root only.

Fields (JSON/CSV, the same): cache, object_size_bytes, active_objs, num_objs, size_bytes (memory
held by the slabs), growth (active objects, last sample minus first), active_samples, suspect,
source (slabinfo or sysfs). --alloc-calls lists count, site, detail, stack.

--prometheus FILE also writes, atomically, for every cache (label cache only):
pgtool_slab_cache_bytes, _active_objects, _objects, _object_size_bytes, _growth_objects,
_leak_suspect, and pgtool_slab_window_seconds.

--objects [CACHE] lists groups of identical objects (words that look like pointers to per-object
kernel memory, in the direct map, vmalloc or vmemmap, are masked): rank, objects, percent (of the
allocated objects scanned), sample_addr, pointer_words, symbols (`+0xOFF name+0xoff/0xsize` for
every word pointing into the kernel image or a module) and hexdump (one member's bytes; printed
under each row of the table). Without CACHE it samples first and takes the leak suspects' caches.

Exit status: 0 listed; 1 --suspects found none, or --alloc-calls found no call site; 2 usage or
system error (not root, a damaged --root tree).")]
pub struct Args {
    /// Time between samples: 250ms, 2s, 1m (a bare number is seconds).
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub interval: String,
    /// Number of samples (leak suspects need at least 2: active objects grow in every one).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Order of the caches.
    #[arg(long, value_enum, default_value_t = SortBy::Size)]
    pub sort: SortBy,
    /// Show the N first caches (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Only the leak suspects.
    #[arg(long)]
    pub suspects: bool,
    /// Read /sys/kernel/slab even when /proc/slabinfo is readable.
    #[arg(long)]
    pub sysfs: bool,
    /// Show the top alloc_calls of this cache (needs slub_debug=U at boot).
    #[arg(long, value_name = "CACHE")]
    pub alloc_calls: Option<String>,
    /// What a cache's allocated objects are: groups of near-identical objects (pointer-like
    /// words masked), biggest first, with a hexdump and the kernel symbols inside (reads
    /// /proc/kcore, BTF and /proc/kallsyms; root). Without CACHE: the leak suspects' caches.
    #[arg(long, value_name = "CACHE", num_args = 0..=1, default_missing_value = "")]
    pub objects: Option<String>,
    /// Also write every cache's figures as a Prometheus textfile (atomic rename).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool slab`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    // parsed here, not by clap, so a bad token gets the grammar's own message as everywhere
    let interval: Duration = pgtool::input::parse_duration(&args.interval)?;
    let top = if args.top == 0 { usize::MAX } else { args.top };
    if let Some(cache) = &args.alloc_calls {
        let calls = alloc_calls(&root, cache)?;
        if calls.is_empty() {
            return Err(Error::NotFound(format!(
                "no alloc_calls recorded for cache {cache:?} (no object allocated since tracking began?)"
            )));
        }
        let mut sink = Sink::stdout(args.format.format());
        for c in calls.iter().take(top) {
            sink.write(c)?;
        }
        sink.finish()?;
        return Ok(0);
    }
    if let Some(cache) = &args.objects {
        return objects(&args, cache, interval, top, g);
    }
    let count = args.count as usize;
    let mut samples = Vec::with_capacity(count);
    let mut source = Source::Slabinfo;
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let (s, caches) = sample(&root, args.sysfs.then_some(Source::Sysfs))?;
        source = s;
        samples.push(caches);
    }
    let mut recs = records(&trends(&samples), args.sort, source, pgtool::page_size());
    if let Some(p) = &args.prometheus {
        let window = interval.saturating_mul(args.count.saturating_sub(1));
        metrics(&recs, window)?.write_textfile(p)?;
    }
    let suspects: Vec<String> = recs
        .iter()
        .filter(|r| r.suspect)
        .map(|r| r.cache.clone())
        .collect();
    if args.suspects {
        recs.retain(|r| r.suspect);
        if recs.is_empty() {
            return Err(Error::NotFound(format!(
                "no leak suspects: no cache's active objects grew in every one of {count} samples{}",
                if count < 2 {
                    " (--suspects needs --count 2 or more)"
                } else {
                    ""
                }
            )));
        }
    }
    let mut sink = Sink::stdout(args.format.format());
    for r in recs.iter().take(top) {
        sink.write(r)?;
    }
    let src = match source {
        Source::Slabinfo => "/proc/slabinfo",
        Source::Sysfs => "/sys/kernel/slab",
    };
    sink.text(&format!(
        "{count} samples {:?} apart from {src}; leak suspects (active objects grew in every sample):",
        interval
    ))?;
    // The suspects, wrapped to the table's 100 columns.
    let mut line = String::from(" ");
    let none = suspects.is_empty().then(|| "none".to_string());
    for name in suspects.iter().chain(none.as_ref()) {
        if line.len() > 1 && line.len() + name.len() + 1 > 100 {
            sink.text(&line)?;
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(name);
    }
    sink.text(&line)?;
    sink.finish()?;
    Ok(0)
}

/// `slab --objects [CACHE]`: the groups of each cache asked for (or of each leak suspect).
fn objects(
    args: &Args,
    cache: &str,
    interval: Duration,
    top: usize,
    g: &Global,
) -> Result<i32, Error> {
    use pgtool::kmem::{Slub, objects::scan};
    let root = g.sysroot();
    let names: Vec<String> = if cache.is_empty() {
        let count = (args.count as usize).max(2);
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            if i > 0 {
                std::thread::sleep(interval);
            }
            samples.push(sample(&root, args.sysfs.then_some(Source::Sysfs))?.1);
        }
        let names: Vec<String> = trends(&samples)
            .into_iter()
            .filter(|t| t.suspect)
            .map(|t| t.last.name)
            .collect();
        if names.is_empty() {
            return Err(Error::NotFound(format!(
                "no leak suspects to look inside: no cache's active objects grew in every one of {count} samples (name a cache: --objects CACHE)"
            )));
        }
        names
    } else {
        vec![cache.to_string()]
    };
    let slub = Slub::open(&root)?;
    let mut sink = Sink::stdout(args.format.format());
    for name in &names {
        let t = std::time::Instant::now();
        let (groups, sum) = scan(&slub, &root, name, top)?;
        let c = sum.cache.as_ref();
        sink.text(&format!(
            "{name}: kmem_cache {:#x}, object_size {}, size {}, order {}; {} slabs, {} objects ({} allocated, {} free, {} in KFENCE's pool), {} PFNs scanned in {:.2?}{}{}",
            c.map_or(0, |c| c.addr),
            c.map_or(0, |c| c.object_size),
            c.map_or(0, |c| c.size),
            c.map_or(0, |c| c.order),
            sum.slabs,
            sum.objects,
            sum.allocated,
            sum.free,
            sum.kfence,
            sum.pfns,
            t.elapsed(),
            if sum.dropped_objects > 0 {
                format!("; {} objects in groups dropped when the group table was full", sum.dropped_objects)
            } else {
                String::new()
            },
            if sum.broken_freelists + sum.unreadable_slabs > 0 {
                format!("; {} free lists changed while read, {} slabs unreadable", sum.broken_freelists, sum.unreadable_slabs)
            } else {
                String::new()
            },
        ))?;
        for grp in &groups {
            sink.write(grp)?;
            for line in &grp.hexdump {
                sink.text(&format!("    {line}"))?;
            }
        }
    }
    sink.finish()?;
    Ok(0)
}
