//! The working-set heatmap: time x address, the colour of a cell the share of its resident
//! pages accessed during one interval (damo's `report heatmap`, without DAMON).
//!
//! The address axis is the process's mapped VMAs end to end (gaps between them squeezed out),
//! cut into buckets of one size that never cross a VMA. With the idle method (page_idle
//! bitmap) every bucket is measured page by page; with the refs method (`clear_refs` +
//! smaps `Referenced`) the kernel only says how much of each VMA was referenced, so every
//! bucket of a VMA gets that VMA's share: its resolution is one VMA.
//!
//! Memory is bounded by buckets x intervals (one small record each); nothing per page is kept
//! between intervals.

use crate::addr::page_size;
use crate::error::{Error, Result};
use crate::idle::{self, IdleBitmap, Method, PageSet};
use crate::maps::Vma;
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;
use std::time::{Duration, Instant};

/// One bucket of the address axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Index of its VMA in [`Axis::vmas`].
    pub vma: usize,
}

/// The address axis: the VMAs drawn and their buckets.
#[derive(Clone, Debug)]
pub struct Axis {
    /// VMAs with resident pages when sampling began, in address order.
    pub vmas: Vec<Vma>,
    /// Buckets in address order.
    pub buckets: Vec<Bucket>,
    /// VMAs with resident pages left out (the smallest, when there were more than the cells
    /// could show).
    pub dropped: usize,
}

impl Axis {
    /// Cut `vmas` into at most `cells` buckets of one size (a multiple of the page size).
    /// When there are more than `cells / 2` VMAs, only the largest `cells / 2` are drawn (the
    /// count of the others is [`Axis::dropped`]): every VMA drawn keeps at least one bucket.
    pub fn new(mut vmas: Vec<Vma>, cells: u64) -> Axis {
        let ps = page_size();
        let cells = cells.max(1);
        let keep = (cells / 2).max(1) as usize;
        let mut dropped = 0;
        if vmas.len() > keep {
            vmas.sort_by_key(|v| std::cmp::Reverse(v.end.0 - v.start.0));
            dropped = vmas.len() - keep;
            vmas.truncate(keep);
            vmas.sort_by_key(|v| v.start.0);
        }
        let lens: Vec<u64> = vmas
            .iter()
            .map(|v| (v.end.0 - v.start.0).div_ceil(ps))
            .collect();
        let buckets_for = |step: u64| lens.iter().map(|l| l.div_ceil(step)).sum::<u64>();
        // The smallest step (in pages) that fits: buckets_for falls as the step grows.
        let (mut lo, mut hi) = (1u64, lens.iter().copied().max().unwrap_or(1).max(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if buckets_for(mid) <= cells {
                hi = mid
            } else {
                lo = mid + 1
            }
        }
        let step = lo * ps;
        let mut buckets = Vec::new();
        for (i, v) in vmas.iter().enumerate() {
            let mut s = v.start.0;
            while s < v.end.0 {
                let e = (s + step).min(v.end.0);
                buckets.push(Bucket {
                    start: s,
                    end: e,
                    vma: i,
                });
                s = e;
            }
        }
        Axis {
            vmas,
            buckets,
            dropped,
        }
    }

    /// The bucket holding `addr` (binary search).
    pub fn find(&self, addr: u64) -> Option<usize> {
        let i = self.buckets.partition_point(|b| b.end <= addr);
        self.buckets.get(i).filter(|b| b.start <= addr).map(|_| i)
    }
}

/// One cell: a bucket in one interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Seconds since sampling began, at the end of the interval.
    pub time: f64,
    /// First address of the bucket.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// Resident pages of the bucket.
    pub pages: u64,
    /// Of those, accessed during the interval (refs method: the VMA's referenced share of them).
    pub accessed: u64,
}

impl Record for Cell {}

impl Cell {
    /// The accessed share, 0 to 1 (0 without pages).
    pub fn share(&self) -> f64 {
        if self.pages == 0 {
            0.0
        } else {
            self.accessed as f64 / self.pages as f64
        }
    }
}

/// What to sample.
#[derive(Clone, Debug)]
pub struct Request {
    /// The process.
    pub pid: u32,
    /// Only VMAs matching one of these names (empty: all).
    pub vma_names: Vec<String>,
    /// Interval length.
    pub interval: Duration,
    /// Number of intervals.
    pub count: u64,
    /// Buckets wanted on the address axis.
    pub cells: u64,
    /// Idle bitmap or refs.
    pub method: Method,
}

/// The process's VMAs with resident pages (selected by name), for the axis.
pub fn resident_vmas(root: &SysRoot, req: &Request) -> Result<Vec<Vma>> {
    let select =
        |v: &Vma| req.vma_names.is_empty() || req.vma_names.iter().any(|n| v.matches_name(n));
    let set = PageSet::from_pid(root, req.pid, &select, None)?;
    let vmas: Vec<Vma> = set
        .groups
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .filter_map(|(v, _)| v)
        .collect();
    if vmas.is_empty() {
        return Err(Error::NotFound(if req.vma_names.is_empty() {
            format!("process {} has no resident pages to sample", req.pid)
        } else {
            format!(
                "no mapping of process {} matching {:?} has resident pages",
                req.pid, req.vma_names
            )
        }));
    }
    Ok(vmas)
}

/// Sample `req.count` intervals, handing each interval's cells (one per bucket, in address
/// order) to `f` as soon as it ends.
pub fn sample(
    root: &SysRoot,
    req: &Request,
    axis: &Axis,
    mut f: impl FnMut(&[Cell]) -> Result<()>,
) -> Result<()> {
    if !root.is_live() {
        return Err(Error::Refused(
            "a heatmap marks pages idle or clears referenced bits: it runs on the live system only, not under --root"
                .into(),
        ));
    }
    let bitmap = match req.method {
        Method::Idle => Some(IdleBitmap::open(root, true)?),
        Method::Refs => None,
    };
    let names = req.vma_names.clone();
    let select = move |v: &Vma| names.is_empty() || names.iter().any(|n| v.matches_name(n));
    let t0 = Instant::now();
    let mut cells: Vec<Cell> = Vec::with_capacity(axis.buckets.len());
    for _ in 0..req.count {
        let pages = |set: &PageSet, cells: &mut Vec<Cell>| {
            for p in set.pages() {
                if let Some(b) = p.vaddr.and_then(|a| axis.find(a.0)) {
                    cells[b].pages += 1;
                }
            }
        };
        cells.clear();
        cells.extend(axis.buckets.iter().map(|b| Cell {
            time: 0.0,
            start: b.start,
            end: b.end,
            pages: 0,
            accessed: 0,
        }));
        match &bitmap {
            Some(bm) => {
                let set = PageSet::from_pid(root, req.pid, &select, None)?;
                set.mark(bm)?;
                std::thread::sleep(req.interval);
                let bits = set.read(bm)?;
                pages(&set, &mut cells);
                for ((_, group), idle_bits) in set.groups.iter().zip(&bits) {
                    for (p, idle) in group.iter().zip(idle_bits) {
                        if !idle && let Some(b) = p.vaddr.and_then(|a| axis.find(a.0)) {
                            cells[b].accessed += 1;
                        }
                    }
                }
            }
            None => {
                idle::clear_refs(root, req.pid)?;
                std::thread::sleep(req.interval);
                let smaps = idle::refs_sample(root, req.pid)?;
                let set = PageSet::from_pid(root, req.pid, &select, None)?;
                pages(&set, &mut cells);
                for s in smaps {
                    let Some(vi) = axis
                        .vmas
                        .iter()
                        .position(|v| v.start == s.vma.start && v.end == s.vma.end)
                    else {
                        continue;
                    };
                    let share = if s.rss == 0 {
                        0.0
                    } else {
                        (s.referenced as f64 / s.rss as f64).min(1.0)
                    };
                    for (c, b) in cells.iter_mut().zip(&axis.buckets) {
                        if b.vma == vi {
                            c.accessed = (c.pages as f64 * share).round() as u64;
                        }
                    }
                }
            }
        }
        let t = t0.elapsed().as_secs_f64();
        for c in &mut cells {
            c.time = (t * 1000.0).round() / 1000.0;
        }
        f(&cells)?;
    }
    Ok(())
}

/// damo's `--zoom auto`: the bucket range from the first to the last bucket accessed in any
/// interval (all buckets when none was).
pub fn hot_range(rows: &[Vec<Cell>]) -> std::ops::Range<usize> {
    let n = rows.first().map_or(0, Vec::len);
    let hot = |i: usize| {
        rows.iter()
            .any(|r| r.get(i).is_some_and(|c| c.accessed > 0))
    };
    match ((0..n).find(|&i| hot(i)), (0..n).rev().find(|&i| hot(i))) {
        (Some(a), Some(b)) => a..b + 1,
        _ => 0..n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64) -> Vma {
        crate::maps::parse_line(&format!("{start:x}-{end:x} rw-p 00000000 00:00 0")).expect("vma")
    }

    #[test]
    fn buckets_never_cross_vmas() {
        let ps = page_size();
        let axis = Axis::new(
            vec![
                vma(0x10000, 0x10000 + 10 * ps),
                vma(0x900000, 0x900000 + 6 * ps),
            ],
            5,
        );
        // at most 5 buckets: 4-page buckets (4+4+2 and 4+2); 3 pages would need 6
        let lens: Vec<u64> = axis
            .buckets
            .iter()
            .map(|b| (b.end - b.start) / ps)
            .collect();
        assert_eq!(lens, vec![4, 4, 2, 4, 2]);
        assert_eq!(axis.find(0x10000 + 9 * ps), Some(2));
        assert_eq!(axis.find(0x900000), Some(3));
        assert_eq!(axis.find(0x500000), None);
        let c = |a| Cell {
            time: 0.0,
            start: 0,
            end: 0,
            pages: 4,
            accessed: a,
        };
        let three = Axis::new(
            vec![
                vma(0x10000, 0x20000),
                vma(0x30000, 0x31000),
                vma(0x40000, 0x48000),
            ],
            4,
        );
        assert_eq!(three.dropped, 1, "only the 2 largest of 3 VMAs fit 4 cells");
        assert_eq!(three.buckets.len(), 3, "8-page buckets: 2 + 1");
        assert_eq!(hot_range(&[vec![c(0), c(1), c(0), c(2), c(0)]]), 1..4);
    }
}
