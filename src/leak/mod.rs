//! `pgtool leak`: is memory leaking, where, and which function (issue #13).
//!
//! 1. [`collect`] samples meminfo, slab caches, vmalloc callers, processes and memcgs
//!    ([`sample`]) over an interval; [`report`] splits MemTotal into parts ([`meminfo`]), fits a
//!    robust slope to each ([`slope`]) and gives a verdict per part with evidence, then drills
//!    down ([`verdict`]): slab caches, vmalloc callers, processes, memcgs that grow, and
//!    page_owner's top stacks when the unaccounted part grows.
//! 2. [`trace`] (`--trace`) enables the kmem tracepoints in a tracefs instance of our own and
//!    pairs allocations with frees, reporting what stays outstanding by call site.
//! 3. Similarity of outstanding objects with the cache's biggest groups of alike objects needs
//!    a reader of kernel memory (/proc/kcore + BTF) that pgtool does not have yet: the report
//!    says so instead of guessing.
//!
//! Everything is read-only except the tracing instance, which is removed on every exit path.

pub mod meminfo;
pub mod pairing;
pub mod sample;
pub mod similar;
pub mod slope;
pub mod trace;
pub mod trace_parse;
pub mod verdict;

use crate::error::Result;
use crate::output::human_bytes;
use crate::root::SysRoot;
pub use sample::{Sample, Sampler};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
pub use verdict::{LeakRecord, analyse};

/// Page_owner stacks listed when the unaccounted part grows.
pub const PAGE_OWNER_TOP: usize = 5;

/// Where the verdict leads next for a growing cache: its contents and its leaking call site.
pub const SLAB_NEXT: &str = "what a growing cache is full of: `pgtool slab --objects CACHE` \
(root, /proc/kcore + BTF); which call site leaks it: `pgtool leak --trace`, which compares the \
objects each call site left outstanding with the cache's biggest groups of alike objects";

/// Take `count` samples `interval` apart (stopping early, with what was taken, when `stop` is
/// set, e.g. by Ctrl-C). Returns the samples and the notes on what could not be read.
pub fn collect(
    root: &SysRoot,
    interval: Duration,
    count: u32,
    stop: &AtomicBool,
) -> Result<(Vec<Sample>, BTreeSet<String>)> {
    let mut s = Sampler::new(root);
    let mut out = Vec::with_capacity(count as usize);
    let start = Instant::now();
    for i in 0..count {
        if i > 0 {
            // sleep to the i-th tick (not interval after the last read) in short steps
            let due = start + interval.saturating_mul(i);
            while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(100)));
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        out.push(s.sample()?);
    }
    Ok((out, s.notes))
}

/// The result of `pgtool leak`.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Categories first, then drill-down items.
    pub records: Vec<LeakRecord>,
    /// The verdict in sentences.
    pub summary: Vec<String>,
    /// What was not read or not done, and what the deeper steps need.
    pub notes: Vec<String>,
    /// Seconds between the first and the last sample.
    pub window: f64,
    /// Samples taken.
    pub samples: usize,
}

/// Analyse samples into the report (reads page_owner when the unaccounted part grows).
pub fn report(root: &SysRoot, samples: &[Sample], notes: BTreeSet<String>, top: usize) -> Report {
    let a = analyse(samples, top);
    let mut notes: Vec<String> = notes.into_iter().collect();
    let mut records = a.categories.clone();
    records.extend(a.details.iter().cloned());
    let growing: Vec<&LeakRecord> = a
        .categories
        .iter()
        .filter(|r| r.verdict == "growing" && !verdict::RECLAIMABLE.contains(&r.name.as_str()))
        .collect();
    let mut summary = Vec::new();
    if samples.len() < 3 {
        summary.push(format!(
            "verdict: unknown: {} sample(s); a trend needs 3 or more (--count)",
            samples.len()
        ));
    } else if growing.is_empty() {
        summary.push(format!(
            "verdict: no leak seen: no unreclaimable part of memory grew consistently over {:.0}s ({} samples)",
            a.window,
            samples.len()
        ));
    } else {
        for g in &growing {
            let drill: Vec<String> = a
                .details
                .iter()
                .filter(|d| drills_into(d, &g.name))
                .take(3)
                .map(|d| format!("{} {} {}/s", d.kind, d.name, signed(d.bytes_per_s)))
                .collect();
            summary.push(format!(
                "verdict: {} ({}) grows {}/s, now {}{}",
                g.name,
                g.class,
                signed(g.bytes_per_s),
                human_bytes(g.size_bytes),
                if drill.is_empty() {
                    String::new()
                } else {
                    format!(": {}", drill.join(", "))
                }
            ));
        }
    }
    if let Some(b) = &a.last {
        if !b.missing.is_empty() {
            notes.push(format!(
                "meminfo lacks {} on this kernel (counted as 0)",
                b.missing.join(", ")
            ));
        }
        if b.unaccounted < 0 {
            notes.push(format!(
                "the accounted parts exceed MemTotal by {} (counters overlap or drift)",
                human_bytes(b.unaccounted.unsigned_abs())
            ));
        }
    }
    let unaccounted_grows = growing.iter().any(|g| g.name == "unaccounted");
    page_owner_drill(root, unaccounted_grows, &mut records, &mut notes);
    notes.push(
        "next: `pgtool leak --trace --duration 5` (root, tracefs) names the call sites whose \
         slab allocations stay outstanding"
            .into(),
    );
    notes.push(SLAB_NEXT.into());
    Report {
        records,
        summary,
        notes,
        window: a.window,
        samples: samples.len(),
    }
}

fn drills_into(d: &LeakRecord, category: &str) -> bool {
    match d.kind {
        "slab_cache" => category.starts_with("slab"),
        "vmalloc_caller" => category == "vmalloc",
        "process" | "memcg" => category.starts_with("user"),
        _ => false,
    }
}

fn signed(v: i64) -> String {
    let s = human_bytes(v.unsigned_abs());
    if v < 0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

/// page_owner's top stacks when the unaccounted part grows and page_owner is on; otherwise a
/// note on how to turn it on.
fn page_owner_drill(
    root: &SysRoot,
    grows: bool,
    records: &mut Vec<LeakRecord>,
    notes: &mut Vec<String>,
) {
    use crate::page_owner::report::{GroupKey, Report as PoReport};
    let path = root.debugfs().join("page_owner");
    let on = path.exists();
    if !grows {
        if !on {
            notes.push(
                "page_owner is off: if the unaccounted part grows, boot with page_owner=on \
                 (CONFIG_PAGE_OWNER) to see the stacks that hold those pages"
                    .into(),
            );
        }
        return;
    }
    if !on {
        notes.push(format!(
            "unaccounted memory grows; {} is absent: boot with page_owner=on (CONFIG_PAGE_OWNER) \
             and mount debugfs, then `pgtool page-owner --by stack` names the stacks holding pages",
            path.display()
        ));
        return;
    }
    let mut rep = PoReport::new(vec![GroupKey::Stack], None);
    rep.only_unreleased = false;
    let res =
        crate::text_input::open(&path, "a page_owner dump").and_then(|r| rep.read_dump(r, &path));
    if let Err(e) = res {
        notes.push(format!("page_owner not read: {e}"));
        return;
    }
    let ps = crate::page_size();
    for g in rep.top().into_iter().take(PAGE_OWNER_TOP) {
        let stack = g.key.first().cloned().unwrap_or_default();
        let frames: Vec<&str> = stack
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(4)
            .collect();
        records.push(LeakRecord {
            kind: "page_owner_stack",
            name: frames.join(" < "),
            class: "unaccounted",
            size_bytes: g.pages.saturating_mul(ps),
            growth_bytes: 0,
            bytes_per_s: 0,
            tau: 0.0,
            verdict: "unknown",
            evidence: format!(
                "{} blocks held now (all page_owner pages, not only unaccounted ones)",
                g.records
            ),
        });
    }
}

/// The Prometheus families of a report: per category its bytes, slope and whether it grows
/// (label `category`); per drilled slab cache and vmalloc caller its slope (labels `cache`,
/// `caller`: bounded by the kernel's caches and functions); the window.
pub fn metrics(rep: &Report) -> Result<crate::output::metrics::Metrics> {
    use crate::output::metrics::{Kind, Metrics};
    let mut m = Metrics::new();
    let cats: Vec<&LeakRecord> = rep
        .records
        .iter()
        .filter(|r| r.kind == "category")
        .collect();
    type Fam = (&'static str, &'static str, fn(&LeakRecord) -> f64);
    let fams: [Fam; 3] = [
        (
            "pgtool_leak_category_bytes",
            "Memory in this part of MemTotal, in bytes (last sample).",
            |r| r.size_bytes as f64,
        ),
        (
            "pgtool_leak_category_growth_bytes_per_second",
            "Theil-Sen slope of the part over the sampling window, bytes per second.",
            |r| r.bytes_per_s as f64,
        ),
        (
            "pgtool_leak_category_growing",
            "1 when the part grew consistently over the window (pgtool leak's verdict).",
            |r| f64::from(u8::from(r.verdict == "growing")),
        ),
    ];
    for (name, help, value) in fams {
        let f = m.family(name, help, Kind::Gauge)?;
        for r in &cats {
            f.add(&[("category", &r.name)], value(r));
        }
    }
    for (kind, name, label, help) in [
        (
            "slab_cache",
            "pgtool_leak_slab_cache_growth_bytes_per_second",
            "cache",
            "Slope of a growing slab cache's active objects x object size, bytes per second.",
        ),
        (
            "vmalloc_caller",
            "pgtool_leak_vmalloc_caller_growth_bytes_per_second",
            "caller",
            "Slope of a growing vmalloc caller's pages, bytes per second.",
        ),
    ] {
        let f = m.family(name, help, Kind::Gauge)?;
        for r in rep.records.iter().filter(|r| r.kind == kind) {
            f.add(&[(label, &r.name)], r.bytes_per_s as f64);
        }
    }
    m.family(
        "pgtool_leak_window_seconds",
        "Time between the first and the last sample behind the slopes.",
        Kind::Gauge,
    )?
    .add(&[], rep.window);
    Ok(m)
}
