//! The pass of [`super::who`] over the address spaces: groups of processes sharing one `mm`
//! taken one at a time from a shared cursor, first by the calling thread alone; worker threads
//! join in only when that has not finished the pass within [`INLINE_FOR`], or from the start
//! for a pass known to be long (every address space read, [`LARGE_PAGES`] resident).
//!
//! Why not always start the workers: a one-PFN lookup usually ends (early stop) after a few
//! small address spaces, in well under a millisecond, and starting and joining threads (each
//! with its stack and its own malloc arena) cost more than that: `who PFN` took 2.63 ms with
//! 2 workers against 1.79 ms with `-j 1` (2 vCPUs). A pass that runs longer is worth sharing.

use super::scan::{Intervals, MmScan, scan_mm};
use super::{Mapping, ScanStats, Target, is_permission, merge_stats, push_error, snapshot_gap};
use crate::process::ProcInfo;
use crate::root::SysRoot;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the calling thread reads address spaces alone before starting the other workers:
/// longer than a one-PFN pass that stops early takes here (about 0.1 ms), so that one never
/// starts a thread, and short enough that a long pass loses little of its parallelism.
pub(super) const INLINE_FOR: Duration = Duration::from_millis(1);

/// Resident pages (256 MiB of 4 KiB pages) from which a full pass starts its workers at once:
/// several milliseconds of pagemap here (a 2 GiB process took ~15 ms), well past
/// [`INLINE_FOR`].
pub(super) const LARGE_PAGES: u64 = 1 << 16;

/// The state the readers of one pass share.
pub(super) struct Pass<'a> {
    pub root: &'a SysRoot,
    pub targets: &'a [Target],
    pub intervals: &'a Intervals,
    /// The address spaces, in the order to read them; the first process of each is read.
    pub groups: &'a [Vec<&'a ProcInfo>],
    /// Stop once every mapping kpagecount counts was found (see `Query::exhaustive`).
    pub early: bool,
    next: AtomicUsize,
    found: Vec<AtomicU64>,
    remaining: AtomicUsize,
    done: AtomicBool,
}

/// What one reader found.
#[derive(Default)]
pub(super) struct Found {
    pub mappings: Vec<Mapping>,
    pub stats: ScanStats,
}

impl<'a> Pass<'a> {
    pub(super) fn new(
        root: &'a SysRoot,
        targets: &'a [Target],
        intervals: &'a Intervals,
        groups: &'a [Vec<&'a ProcInfo>],
        early: bool,
    ) -> Pass<'a> {
        Pass {
            root,
            targets,
            intervals,
            groups,
            early,
            next: AtomicUsize::new(0),
            found: targets.iter().map(|_| AtomicU64::new(0)).collect(),
            remaining: AtomicUsize::new(targets.iter().filter(|t| !t.past_end).count()),
            done: AtomicBool::new(false),
        }
    }

    /// Read every address space with up to `threads` readers, this thread being the first;
    /// the others start only if the pass is still going after [`INLINE_FOR`], or at once when
    /// the pass cannot stop early and its address spaces are large (see [`Pass::is_large`]).
    pub(super) fn run(&self, threads: impl FnOnce() -> usize) -> Found {
        let mut mine = Found::default();
        if !self.is_large() && !self.read(&mut mine, Some(Instant::now() + INLINE_FOR)) {
            return mine;
        }
        let left = self
            .groups
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed));
        let helpers = threads().min(left).saturating_sub(1);
        if helpers == 0 {
            self.read(&mut mine, None);
            return mine;
        }
        let theirs: Vec<Found> = std::thread::scope(|s| {
            // A helper that cannot be started (a thread limit) is simply not there: the
            // readers that run take its share from the cursor.
            let handles: Vec<_> = (0..helpers)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .spawn_scoped(s, || {
                            let mut f = Found::default();
                            self.read(&mut f, None);
                            f
                        })
                        .ok()
                })
                .collect();
            self.read(&mut mine, None);
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for mut f in theirs {
            mine.mappings.append(&mut f.mappings);
            merge_stats(&mut mine.stats, f.stats);
        }
        mine
    }

    /// A pass that will read every address space (no early stop) over at least
    /// [`LARGE_PAGES`] resident pages: the deadline is checked only between address spaces,
    /// so waiting for it could leave one large address space read alone while the others
    /// wait. An early-stop pass reads the smallest first and usually ends long before.
    fn is_large(&self) -> bool {
        let resident = || {
            self.groups
                .iter()
                .map(|g| g[0].rss_pages.unwrap_or(0))
                .sum::<u64>()
        };
        !self.early && resident() >= LARGE_PAGES
    }

    /// Whether the pass ended early because every counted mapping was found.
    pub(super) fn stopped_early(&self) -> bool {
        self.early && self.done.load(Ordering::Relaxed)
    }

    fn stop(&self) -> bool {
        self.early && self.done.load(Ordering::Relaxed)
    }

    /// Take address spaces from the cursor and read them into `out` until none is left, the
    /// pass stops early, or `until` has passed. True when work may be left (`until` passed).
    fn read(&self, out: &mut Found, until: Option<Instant>) -> bool {
        loop {
            if self.stop() {
                return false;
            }
            if until.is_some_and(|t| Instant::now() >= t) {
                return self.next.load(Ordering::Relaxed) < self.groups.len();
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(group) = self.groups.get(i) else {
                return false;
            };
            self.read_one(group, out);
        }
    }

    /// Read the address space of `group` (its first process) and record its mappings under
    /// every process of the group.
    fn read_one(&self, group: &[&ProcInfo], out: &mut Found) {
        let leader = group[0];
        let st = &mut out.stats;
        match scan_mm(self.root, leader.pid, self.targets, self.intervals, &|| {
            self.stop()
        }) {
            Ok(MmScan::Done { runs, used_scan }) => {
                st.address_spaces += 1;
                st.pagemap_scan |= used_scan;
                self.count(&runs);
                for r in runs {
                    push_shared(&mut out.mappings, group, r);
                }
            }
            Ok(MmScan::Stopped) => {}
            Ok(MmScan::NoMm) => st.exited += 1,
            Ok(MmScan::Hidden) => st.denied += 1,
            Err(e) if e.is_process_gone() && self.root.is_live() => st.exited += 1,
            // On a snapshot nothing exits: a missing file is a gap in it.
            Err(e) if e.is_process_gone() => {
                st.failed += 1;
                push_error(st, snapshot_gap(self.root, leader.pid, &e));
            }
            Err(e) if is_permission(&e) => st.denied += 1,
            Err(e) => {
                st.failed += 1;
                push_error(st, e.to_string());
            }
        }
    }

    /// Count the mappings of the targets themselves; the pass is done when each target has
    /// as many as its kpagecount.
    fn count(&self, runs: &[Mapping]) {
        if !self.early {
            return;
        }
        for r in runs.iter().filter(|r| r.maps_target(self.targets)) {
            let n = self.found[r.target].fetch_add(1, Ordering::Relaxed) + 1;
            if n == self.targets[r.target].count
                && self.remaining.fetch_sub(1, Ordering::Relaxed) == 1
            {
                self.done.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Push run `r` once per process of `group` (the processes sharing its address space): the
/// last one takes `r` itself, so the common one-process group clones nothing.
fn push_shared(out: &mut Vec<Mapping>, group: &[&ProcInfo], r: Mapping) {
    let mm = group[0].pid;
    let Some((last, rest)) = group.split_last() else {
        return;
    };
    for p in rest {
        out.push(Mapping {
            pid: p.pid,
            comm: p.comm.clone(),
            mm,
            ..r.clone()
        });
    }
    out.push(Mapping {
        pid: last.pid,
        comm: last.comm.clone(),
        mm,
        ..r
    });
}
