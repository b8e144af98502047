//! From samples to a verdict: where memory is (the [`super::meminfo`] parts), what grows and
//! how fast ([`super::slope`]), a verdict per part with its evidence, and the drill-down: slab
//! caches, vmalloc callers, processes and memcgs that grow.

use super::meminfo::{Breakdown, breakdown};
use super::sample::Sample;
use super::slope::{Trend, trend};
use crate::output::human_bytes;
use std::collections::BTreeMap;

/// A part grows when pairs of samples rise this consistently (Kendall's tau)...
pub const MIN_TAU: f64 = 0.6;
/// ...and its Theil-Sen slope over the window adds at least this many bytes...
pub const MIN_GROWTH_BYTES: f64 = 256.0 * 1024.0;
/// ...and at least this fraction of its size (page cache wobbles by megabytes on a 20 GB box).
pub const MIN_GROWTH_FRACTION: f64 = 0.002;

/// One line of `pgtool leak`: a part of memory or a drill-down item (JSON/CSV the same).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LeakRecord {
    /// `category` (a part of MemTotal), `slab_cache`, `vmalloc_caller`, `process`, `memcg` or
    /// `page_owner_stack`.
    pub kind: &'static str,
    /// The part, cache, caller, `PID comm`, memcg path or stack.
    pub name: String,
    /// For categories: `user`, `kernel` or `free`; for the others the category they drill into.
    pub class: &'static str,
    /// Size in the last sample.
    pub size_bytes: u64,
    /// Last sample minus first.
    pub growth_bytes: i64,
    /// Theil-Sen slope over the window, bytes per second.
    pub bytes_per_s: i64,
    /// Kendall's tau of the samples (1: rose between every pair).
    pub tau: f64,
    /// `growing`, `stable`, `shrinking`, or `unknown` (fewer than 3 samples).
    pub verdict: &'static str,
    /// Why, in words.
    pub evidence: String,
}

impl crate::output::Record for LeakRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "kind",
        "name",
        "size_bytes",
        "growth_bytes",
        "bytes_per_s",
        "verdict",
        "evidence",
    ];
}

/// Parts that are caches the kernel shrinks under pressure: growth there is not a leak by itself.
pub const RECLAIMABLE: &[&str] = &["free", "user_file", "slab_reclaimable", "swap_cache"];

/// The verdict for a trend of a thing now `last` bytes over `window` seconds.
pub fn judge(tr: &Trend, last: u64, window: f64, samples: usize) -> &'static str {
    if samples < 3 {
        return "unknown";
    }
    let min = MIN_GROWTH_BYTES.max(last as f64 * MIN_GROWTH_FRACTION);
    let over = tr.slope * window;
    if tr.tau >= MIN_TAU && over >= min {
        "growing"
    } else if tr.tau <= -MIN_TAU && -over >= min {
        "shrinking"
    } else {
        "stable"
    }
}

fn evidence(tr: &Trend, window: f64, extra: &str) -> String {
    let sign = if tr.slope < 0.0 { "-" } else { "+" };
    format!(
        "{sign}{}/s ({sign}{} over {window:.0}s), rose in {} of {} intervals{extra}",
        human_bytes(tr.slope.abs() as u64),
        human_bytes((tr.slope * window).abs() as u64),
        tr.rises,
        tr.intervals
    )
}

fn record(
    kind: &'static str,
    name: String,
    class: &'static str,
    t: &[f64],
    y: &[u64],
    extra: &str,
) -> LeakRecord {
    let tr = trend(t, y);
    let window = t.last().copied().unwrap_or(0.0) - t.first().copied().unwrap_or(0.0);
    let last = y.last().copied().unwrap_or(0);
    LeakRecord {
        kind,
        name,
        class,
        size_bytes: last,
        growth_bytes: tr.growth,
        bytes_per_s: tr.slope.round() as i64,
        tau: (tr.tau * 1000.0).round() / 1000.0,
        verdict: judge(&tr, last, window, y.len()),
        evidence: evidence(&tr, window, extra),
    }
}

/// The analysis of a sampling run.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// One record per part of MemTotal, in [`breakdown`]'s order.
    pub categories: Vec<LeakRecord>,
    /// The drill-down items, growing ones only, fastest first within each kind.
    pub details: Vec<LeakRecord>,
    /// The last sample's breakdown.
    pub last: Option<Breakdown>,
    /// Seconds between the first and last sample.
    pub window: f64,
}

/// Analyse `samples` (oldest first); `top` drill-down items per kind.
pub fn analyse(samples: &[Sample], top: usize) -> Analysis {
    let t: Vec<f64> = samples.iter().map(|s| s.t).collect();
    let window = t.last().copied().unwrap_or(0.0) - t.first().copied().unwrap_or(0.0);
    let bds: Vec<Breakdown> = samples
        .iter()
        .map(|s| breakdown(&s.meminfo, s.vmalloc.as_ref().map(|v| v.stacks())))
        .collect();
    let Some(last) = bds.last().cloned() else {
        return Analysis::default();
    };
    let categories = last
        .parts
        .iter()
        .map(|p| {
            let y: Vec<u64> = bds.iter().map(|b| b.bytes(p.name)).collect();
            let pct = if last.total > 0 {
                100.0 * p.bytes as f64 / last.total as f64
            } else {
                0.0
            };
            let mut extra = format!("; {pct:.1}% of MemTotal = {}", p.fields);
            if RECLAIMABLE.contains(&p.name) {
                extra.push_str(" (reclaimable)");
            }
            record("category", p.name.to_string(), p.class, &t, &y, &extra)
        })
        .collect();
    let mut details = Vec::new();
    details.extend(top_growing(slab_items(samples, &t), top));
    details.extend(top_growing(vmalloc_items(samples, &t), top));
    details.extend(top_growing(proc_items(samples, &t), top));
    details.extend(top_growing(memcg_items(samples, &t), top));
    Analysis {
        categories,
        details,
        last: Some(last),
        window,
    }
}

fn top_growing(mut v: Vec<LeakRecord>, top: usize) -> Vec<LeakRecord> {
    v.retain(|r| r.verdict == "growing");
    v.sort_by(|a, b| b.bytes_per_s.cmp(&a.bytes_per_s).then(a.name.cmp(&b.name)));
    v.truncate(top);
    v
}

/// Series keyed by name over every sample (0 where absent), from a per-sample map.
fn series<'a>(
    samples: &'a [Sample],
    per: impl Fn(&'a Sample) -> Option<Vec<(String, u64)>>,
) -> Option<BTreeMap<String, Vec<u64>>> {
    let n = samples.len();
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        for (k, v) in per(s)? {
            m.entry(k).or_insert_with(|| vec![0; n])[i] += v;
        }
    }
    Some(m)
}

fn slab_items(samples: &[Sample], t: &[f64]) -> Vec<LeakRecord> {
    let Some(caches) = samples
        .iter()
        .map(|s| s.slab.clone())
        .collect::<Option<Vec<_>>>()
    else {
        return Vec::new();
    };
    crate::slab::trends(&caches)
        .iter()
        .map(|tr| {
            let y: Vec<u64> = tr
                .active
                .iter()
                .map(|a| a.saturating_mul(tr.last.objsize))
                .collect();
            let extra = format!(
                "; {} active objects of {} bytes{}",
                tr.last.active_objs,
                tr.last.objsize,
                if tr.suspect {
                    ", grew in every sample (slab leak suspect)"
                } else {
                    ""
                }
            );
            record("slab_cache", tr.last.name.clone(), "slab", t, &y, &extra)
        })
        .collect()
}

fn vmalloc_items(samples: &[Sample], t: &[f64]) -> Vec<LeakRecord> {
    let Some(m) = series(samples, |s| {
        s.vmalloc
            .as_ref()
            .map(|v| v.by_caller.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }) else {
        return Vec::new();
    };
    m.into_iter()
        .map(|(k, y)| {
            record(
                "vmalloc_caller",
                k,
                "vmalloc",
                t,
                &y,
                "; vmallocinfo pages=",
            )
        })
        .collect()
}

fn proc_items(samples: &[Sample], t: &[f64]) -> Vec<LeakRecord> {
    // a PID reused by another program is another series
    let m = series(samples, |s| {
        Some(
            s.procs
                .iter()
                .map(|p| (format!("{} {}", p.pid, p.comm), p.anon + p.shmem))
                .collect(),
        )
    })
    .unwrap_or_default();
    m.into_iter()
        .filter(|(_, y)| y.iter().all(|v| *v > 0))
        .map(|(k, y)| record("process", k, "user_anon", t, &y, "; RssAnon + RssShmem"))
        .collect()
}

fn memcg_items(samples: &[Sample], t: &[f64]) -> Vec<LeakRecord> {
    let m = series(samples, |s| {
        Some(s.memcgs.iter().map(|c| (c.path.clone(), c.bytes)).collect())
    })
    .unwrap_or_default();
    m.into_iter()
        .map(|(k, y)| record("memcg", k, "user", t, &y, "; memory.current"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_needs_consistency_and_size() {
        let tr = |slope, tau| Trend {
            slope,
            tau,
            ..Trend::default()
        };
        // 1 MiB/s for 10 s on a 100 MiB thing, consistent: growing
        assert_eq!(judge(&tr(1048576.0, 1.0), 100 << 20, 10.0, 11), "growing");
        // same slope, inconsistent
        assert_eq!(judge(&tr(1048576.0, 0.3), 100 << 20, 10.0, 11), "stable");
        // consistent but 1 KiB over the window
        assert_eq!(judge(&tr(100.0, 1.0), 100 << 20, 10.0, 11), "stable");
        // consistent, 2 MiB over the window, but of 10 GiB: under 0.2%
        assert_eq!(judge(&tr(209715.0, 1.0), 10 << 30, 10.0, 11), "stable");
        assert_eq!(
            judge(&tr(-1048576.0, -1.0), 100 << 20, 10.0, 11),
            "shrinking"
        );
        assert_eq!(judge(&tr(1048576.0, 1.0), 100 << 20, 10.0, 2), "unknown");
    }
}
