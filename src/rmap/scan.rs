//! The per-address-space pass of [`super::who`]: the targets' folios as sorted PFN intervals,
//! and one process's page tables read (PAGEMAP_SCAN-narrowed or whole) and matched against them.

use super::{Mapping, Target};
use crate::addr::{Pfn, VirtAddr, page_size};
use crate::error::Result;
use crate::kpageflags::PageFlags;
use crate::maps::{self, Vma, VmaKind};
use crate::pagemap::{Pagemap, ScanFilter};
use crate::root::SysRoot;

/// Mappings up to this size are read whole; larger ones are narrowed with PAGEMAP_SCAN first.
/// `PGTOOL_WHO_DIRECT_MAX` (bytes) overrides it, for benchmarking.
pub const DIRECT_READ_MAX: u64 = 32 << 20;

fn direct_read_max() -> u64 {
    std::env::var("PGTOOL_WHO_DIRECT_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DIRECT_READ_MAX)
}

/// Pagemap entries per read (256 KiB).
const PAGEMAP_BATCH: usize = 32 << 10;

/// Sorted, disjoint PFN intervals, each with the targets it holds.
pub(super) struct Intervals {
    starts: Vec<u64>,
    ends: Vec<u64>,
    targets: Vec<Vec<usize>>,
    min: u64,
    max: u64,
    /// Bit `b` set when an interval touches PFNs `min + (b << shift)` .. `+ (1 << shift)`:
    /// most PFNs of a pagemap are refused by one bit test. Without it each present page cost
    /// a binary search over the intervals: with 1,000 PFNs spread over memory, that search
    /// was most of the user time of a pass over a 2 GiB process.
    filter: Vec<u64>,
    shift: u32,
}

/// The most bits of [`Intervals`]' filter (1 MiB): one bit per page up to 32 GiB of
/// physical address span between the lowest and highest target, coarser beyond.
const FILTER_BITS: u64 = 8 << 20;

impl Intervals {
    pub(super) fn new(targets: &[Target]) -> Intervals {
        let mut iv: Vec<(u64, u64, usize)> = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.past_end)
            .map(|(i, t)| {
                let (s, e) = t.extent();
                (s, e, i)
            })
            .collect();
        iv.sort_unstable();
        let mut out = Intervals {
            starts: Vec::new(),
            ends: Vec::new(),
            targets: Vec::new(),
            min: u64::MAX,
            max: 0,
            filter: Vec::new(),
            shift: 0,
        };
        for (s, e, i) in iv {
            // Overlaps (identical folios, or a folio that changed between reads) merge.
            if let Some(last_end) = out.ends.last_mut()
                && s < *last_end
            {
                *last_end = (*last_end).max(e);
                if let Some(t) = out.targets.last_mut() {
                    t.push(i);
                }
                continue;
            }
            out.starts.push(s);
            out.ends.push(e);
            out.targets.push(vec![i]);
        }
        if let (Some(&s), Some(&e)) = (out.starts.first(), out.ends.last()) {
            out.min = s;
            out.max = e;
        }
        out.build_filter();
        out
    }

    /// Set the filter's bits: the smallest block size (a power of two pages) that keeps it
    /// within [`FILTER_BITS`].
    fn build_filter(&mut self) {
        let span = self.max.saturating_sub(self.min);
        if span == 0 {
            return;
        }
        while (span - 1) >> self.shift >= FILTER_BITS {
            self.shift += 1;
        }
        let bits = ((span - 1) >> self.shift) + 1;
        self.filter = vec![0; bits.div_ceil(64) as usize];
        for (&s, &e) in self.starts.iter().zip(&self.ends) {
            for b in (s - self.min) >> self.shift..=(e - 1 - self.min) >> self.shift {
                self.filter[(b / 64) as usize] |= 1 << (b % 64);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    #[inline]
    pub(super) fn find(&self, pfn: u64) -> Option<usize> {
        if pfn < self.min || pfn >= self.max {
            return None;
        }
        let b = (pfn - self.min) >> self.shift;
        if self.filter[(b / 64) as usize] & (1 << (b % 64)) == 0 {
            return None;
        }
        let i = self.starts.partition_point(|&s| s <= pfn);
        (i > 0 && pfn < self.ends[i - 1]).then(|| i - 1)
    }
}

pub(super) enum MmScan {
    Done {
        runs: Vec<Mapping>,
        used_scan: bool,
    },
    /// No address space (zombie or exited between listing and reading).
    NoMm,
    /// Present pages read with PFN 0: no CAP_SYS_ADMIN.
    Hidden,
    /// Left unfinished: the pass ended early (every mapping kpagecount counts was found).
    Stopped,
}

/// The PAGEMAP_SCAN filter for these targets: present pages only (a swapped page has no PFN),
/// and no zero-page mappings unless a target is a zero page.
///
/// Narrowing further to anonymous-only or file-only pages (the FILE category) was measured
/// and rejected: the kernel then calls `vm_normal_page` for every PTE and the scan got ~50%
/// slower overall (Linux 6.18, 2 vCPUs), more than the pagemap reads it saved.
pub fn scan_filter(targets: &[Target]) -> ScanFilter {
    use crate::pagemap::category::{PFNZERO, PRESENT};
    let mut f = ScanFilter {
        inverted: 0,
        required: PRESENT,
        any_of: 0,
    };
    if !targets
        .iter()
        .any(|t| !t.past_end && t.flags.contains(PageFlags::ZERO_PAGE))
    {
        f.required |= PFNZERO;
        f.inverted |= PFNZERO;
    }
    f
}

/// One page hit: (target, vaddr, pfn, exclusive).
type Hit = (usize, u64, u64, bool);

/// Read one address space and match it against the targets; `stop` is polled between
/// pagemap batches and PAGEMAP_SCAN calls, so an early end of the pass does not wait for a
/// large address space to be read to its end.
pub(super) fn scan_mm(
    root: &SysRoot,
    pid: u32,
    targets: &[Target],
    iv: &Intervals,
    stop: &dyn Fn() -> bool,
) -> Result<MmScan> {
    let vmas = maps::read_maps(root, pid)?;
    let user: Vec<&Vma> = vmas
        .iter()
        .filter(|v| v.kind != VmaKind::Vsyscall)
        .collect();
    if user.is_empty() {
        return Ok(MmScan::NoMm);
    }
    let pm = Pagemap::open(root, pid)?;
    // Small mappings are read whole (a pagemap read over an unpopulated hole is cheap, and
    // adjacent small mappings merge into one read); large ones, where most of the range may be
    // unpopulated reservations, are narrowed with PAGEMAP_SCAN first. Device-file mappings are
    // always read whole: PAGEMAP_SCAN skips VM_PFNMAP mappings, and maps does not show VM flags.
    let filter = scan_filter(targets);
    let threshold = direct_read_max();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut used_scan = false;
    let mut scan_works = true;
    for v in &user {
        if stop() {
            return Ok(MmScan::Stopped);
        }
        let device = v.path.starts_with("/dev/") && !v.path.starts_with("/dev/shm/");
        if !scan_works || device || v.len() <= threshold {
            ranges.push((v.start.0, v.end.0));
            continue;
        }
        match pm.scan_ranges(v.start..v.end, filter)? {
            Some(regions) => {
                used_scan = true;
                ranges.extend(regions.iter().map(|r| (r.start.0, r.end.0)));
            }
            None => {
                scan_works = false;
                ranges.push((v.start.0, v.end.0));
            }
        }
    }
    let ranges = merge_ranges(ranges);
    let ps = page_size();
    let mut hits: Vec<Hit> = Vec::new();
    let mut hidden = false;
    // ranges read a batch at a time, so that a stop is seen between batches
    let pieces = ranges.iter().flat_map(|&(s, e)| {
        let step = PAGEMAP_BATCH as u64 * ps;
        (0..e.saturating_sub(s).div_ceil(step))
            .map(move |k| (s + k * step, (s + (k + 1) * step).min(e)))
    });
    for (s, e) in pieces {
        if stop() {
            return Ok(MmScan::Stopped);
        }
        // The batch buffer is allocated per call: size it to the range (most are small).
        let batch = usize::try_from(e.saturating_sub(s).div_ceil(ps))
            .unwrap_or(PAGEMAP_BATCH)
            .clamp(1, PAGEMAP_BATCH);
        pm.for_each_batch(VirtAddr(s)..VirtAddr(e), batch, |addr, entries| {
            for (k, ent) in entries.iter().enumerate() {
                match ent.pfn() {
                    Some(p) => {
                        if let Some(j) = iv.find(p.0) {
                            let va = addr.0 + k as u64 * ps;
                            for &t in &iv.targets[j] {
                                let (ts, te) = targets[t].extent();
                                if ts <= p.0 && p.0 < te {
                                    hits.push((t, va, p.0, ent.exclusive()));
                                }
                            }
                        }
                    }
                    None => hidden |= ent.pfn_hidden(),
                }
            }
            Ok(())
        })?;
    }
    if hidden && hits.is_empty() {
        return Ok(MmScan::Hidden);
    }
    // Hits come in address order (the ranges are sorted and read in order), in long runs of
    // one target (a folio's pages at consecutive addresses): a stable sort by target keeps
    // the address order and costs little on such runs (an unstable sort of every page of a
    // large file folio mapped by many processes was a third of a 1,000-PFN lookup).
    hits.sort_by_key(|h| h.0);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let (t, va0, pfn0, _) = hits[i];
        let vma = maps::find(&vmas, VirtAddr(va0));
        let mut j = i + 1;
        while j < hits.len() {
            let (t2, va, pfn, _) = hits[j];
            let k = (j - i) as u64;
            if t2 != t
                || va != va0 + k * ps
                || pfn != pfn0 + k
                || !vma.is_some_and(|v| v.contains(VirtAddr(va)))
            {
                break;
            }
            j += 1;
        }
        let target = &targets[t];
        // Prefer the page that is the target itself.
        let pick = (i..j).find(|&x| hits[x].2 == target.pfn.0).unwrap_or(i);
        let (_, va, pfn, excl) = hits[pick];
        runs.push(Mapping {
            target: t,
            pid,
            comm: String::new(),
            mm: pid,
            vaddr: VirtAddr(va),
            mapped_pfn: Pfn(pfn),
            subpage: target.folio.map(|f| pfn - f.head.0),
            pages: (j - i) as u64,
            exclusive: excl,
            vma: vma.cloned(),
        });
        i = j;
    }
    Ok(MmScan::Done { runs, used_scan })
}

/// Sort and merge overlapping or touching ranges.
fn merge_ranges(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pfn: u64, folio: Option<(u64, u64)>) -> Target {
        Target {
            pfn: Pfn(pfn),
            past_end: false,
            flags: PageFlags::empty(),
            count: 0,
            cgroup: None,
            folio: folio.map(|(h, n): (u64, u64)| crate::folio::Folio {
                head: Pfn(h),
                pages: n,
                order: n.trailing_zeros(),
                kind: crate::folio::FolioKind::Thp,
            }),
        }
    }
    #[test]
    fn intervals_find_and_merge() {
        let ts = vec![
            t(5, None),
            t(0x201, Some((0x200, 0x200))),
            t(0x3ff, Some((0x200, 0x200))),
            t(0x1000, None),
        ];
        let iv = Intervals::new(&ts);
        assert_eq!(iv.starts, vec![5, 0x200, 0x1000]);
        assert_eq!(iv.targets[1], vec![1, 2]);
        assert_eq!(iv.find(5), Some(0));
        assert_eq!(iv.find(6), None);
        assert_eq!(iv.find(4), None);
        assert_eq!(iv.find(0x200), Some(1));
        assert_eq!(iv.find(0x3ff), Some(1));
        assert_eq!(iv.find(0x400), None);
        assert_eq!(iv.find(0x1000), Some(2));
        assert_eq!(iv.find(0x1001), None);
    }

    #[test]
    fn find_agrees_with_a_linear_search_at_every_filter_granularity() {
        // Folios and pages spread over a span; each filter size from one bit per page to
        // one bit per 2^k pages must give the same answers as a plain search.
        let ts = vec![
            t(3, None),
            t(64, None),
            t(0x205, Some((0x200, 0x200))),
            t(0x1_0000, None),
            t(0x1_0001, None),
            t(0x7f_ffff, Some((0x7f_fe00, 0x200))),
        ];
        let slow = |iv: &Intervals, p: u64| {
            (0..iv.starts.len()).find(|&i| iv.starts[i] <= p && p < iv.ends[i])
        };
        let mut iv = Intervals::new(&ts);
        assert_eq!(iv.shift, 0, "a 8 Mi-page span fits one bit per page");
        let probes: Vec<u64> = (0..0x300)
            .chain(0xff00..0x1_0100)
            .chain(0x7f_fd00..0x80_0100)
            .chain([u64::MAX, 0x40_0000])
            .collect();
        for shift in [0, 1, 5, 9, 12, 30] {
            iv.shift = shift;
            iv.filter.clear();
            iv.build_filter();
            assert!(iv.filter.len() as u64 * 64 >= (0x80_0000 - 3 - 1) >> shift);
            for &p in &probes {
                assert_eq!(iv.find(p), slow(&iv, p), "pfn {p:#x} shift {shift}");
            }
        }
        // A span larger than the filter: coarser blocks, same answers.
        let wide = Intervals::new(&[t(1, None), t(1 << 40, None)]);
        assert!(wide.shift > 0 && wide.filter.len() as u64 <= FILTER_BITS / 64);
        for p in [0, 1, 2, (1 << 40) - 1, 1 << 40, (1 << 40) + 1] {
            assert_eq!(wide.find(p), slow(&wide, p), "pfn {p:#x}");
        }
    }

    #[test]
    fn ranges_merge() {
        assert_eq!(
            merge_ranges(vec![(10, 20), (0, 5), (15, 30), (30, 31), (40, 50)]),
            vec![(0, 5), (10, 31), (40, 50)]
        );
    }
}
