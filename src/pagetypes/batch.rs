//! One batch of a process's pagemap entries with their kpageflags (kpagecgroup, kpagecount)
//! words, looked up in coalesced reads where page-types reads one word per page, and handed
//! back entry by entry as page-types' `walk_vma` would see them. Both process walks (the
//! in-order pipeline in `task` and the chunked one in `task_chunks`) use it, so the per-entry
//! rules live here once.

use super::config::Stop;
use super::read::{Gather, MAX_RUN, MAX_SLOTS, Sides, Src, run_key};
use crate::VirtAddr;
use crate::addr::page_size;
use crate::pagemap::PagemapEntry;

/// A present page with its words (`add_page`'s arguments).
pub(crate) struct Page {
    pub vpn: u64,
    pub pfn: u64,
    pub flags: u64,
    pub cgroup: u64,
    pub mapcnt: u64,
    pub pme: u64,
}

/// One entry of a batch, as page-types' `walk_vma` acts on it.
pub(crate) enum Entry {
    /// A present page whose kpageflags word exists.
    Page(Page),
    /// A swapped page (`walk_swap`).
    Swap { vpn: u64, pme: u64 },
}

/// Pagemap entries (virtual page number, raw entry) of present or swapped pages, and the
/// lookups of their PFNs. Owned, so a worker thread can fill it.
pub(crate) struct Batch {
    /// Its place in the walk (the in-order pipeline's sequence number).
    pub seq: u64,
    /// The entries.
    pub pending: Vec<(u64, u64)>,
    keys: Vec<u64>,
    gflags: Gather,
    gcg: Gather,
    gcnt: Gather,
}

/// The populated ranges (virtual page numbers) of `from..to` in `pm` by PAGEMAP_SCAN, into
/// `regions` (cleared first); false when the kernel cannot scan (before Linux 6.7) or the range
/// does not fit in addresses.
pub(crate) fn scan_populated(pm: &Src, from: u64, to: u64, regions: &mut Vec<(u64, u64)>) -> bool {
    let ps = page_size();
    regions.clear();
    let (Some(start), Some(end)) = (from.checked_mul(ps), to.checked_mul(ps)) else {
        return false;
    };
    matches!(
        crate::pagemap::scan(&pm.file, VirtAddr(start)..VirtAddr(end), |r| {
            regions.push((r.start.0 / ps, r.end.0.div_ceil(ps)))
        }),
        Ok(true)
    )
}

impl Batch {
    /// A batch with room for `cap` entries, allocated once (a worker that grew a buffer would
    /// do it in its own malloc arena, which stays resident).
    pub fn new(sides: &Sides, cap: usize) -> Batch {
        assert!(
            cap <= MAX_SLOTS,
            "a batch holds at most {MAX_SLOTS} entries"
        );
        Batch {
            seq: 0,
            pending: Vec::with_capacity(cap),
            keys: Vec::with_capacity(cap),
            gflags: Gather::with_capacity(cap),
            gcg: Gather::with_capacity(if sides.cgroup.is_some() { cap } else { 0 }),
            gcnt: Gather::with_capacity(if sides.count.is_some() { cap } else { 0 }),
        }
    }

    /// Keep the pagemap entries `entries` of the pages from `vpn` on that page-types acts on
    /// (present or swapped); how many were kept.
    pub fn push(&mut self, vpn: u64, entries: &[u64]) -> u64 {
        let before = self.pending.len();
        for (k, &e) in entries.iter().enumerate() {
            let pme = PagemapEntry::from_raw(e);
            if pme.pfn().is_some() || pme.swapped() {
                self.pending.push((vpn + k as u64, e));
            }
        }
        (self.pending.len() - before) as u64
    }

    /// Look up the words of every present entry: runs of physically consecutive pages in
    /// consecutive slots become one sort key each, read in coalesced spans.
    pub fn run(&mut self, sides: &Sides) {
        self.keys.clear();
        let mut run: Option<(u64, usize, usize)> = None;
        let keys = &mut self.keys;
        let mut push = |r: Option<(u64, usize, usize)>| {
            if let Some(k) = r.and_then(|(pfn, slot, len)| run_key(pfn, slot, len)) {
                keys.push(k);
            }
        };
        for (slot, &(_, e)) in self.pending.iter().enumerate() {
            let pfn = PagemapEntry::from_raw(e).pfn().map(|p| p.0);
            match (&mut run, pfn) {
                (Some((p0, s0, len)), Some(pfn))
                    if *p0 + *len as u64 == pfn && *s0 + *len == slot && *len < MAX_RUN =>
                {
                    *len += 1;
                }
                _ => {
                    push(run.take());
                    run = pfn.map(|p| (p, slot, 1));
                }
            }
        }
        push(run);
        self.keys.sort_unstable();
        let slots = self.pending.len();
        self.gflags.load(&sides.flags, &self.keys, slots);
        if let Some(cg) = &sides.cgroup {
            self.gcg.load(cg, &self.keys, slots);
        }
        if let Some(ct) = &sides.count {
            self.gcnt.load(ct, &self.keys, slots);
        }
    }

    /// page-types' per-entry work for the batch, in order: `f` sees each present page whose
    /// kpageflags word exists (a PFN past the file's end is skipped, as page-types' 0-word
    /// read is) and each swapped entry. A failed lookup ends the batch with page-types' error.
    pub fn each(
        &self,
        sides: &Sides,
        mut f: impl FnMut(Entry) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        for (slot, &(vpn, e)) in self.pending.iter().enumerate() {
            let pme = PagemapEntry::from_raw(e);
            let pfn = pme.pfn().map_or(0, |p| p.0);
            if pfn != 0
                && let Some(flags) = self
                    .gflags
                    .get(&sides.flags, &sides.flags_name, slot, pfn)?
            {
                let cgroup = match &sides.cgroup {
                    Some(s) => self
                        .gcg
                        .get(s, &sides.flags_name, slot, pfn)?
                        .ok_or_else(|| {
                            Stop::Fatal(b"kpagecgroup returned fewer pages than expected".to_vec())
                        })?,
                    None => 0,
                };
                let mapcnt = match &sides.count {
                    Some(s) => self.gcnt.get(s, &s.name, slot, pfn)?.ok_or_else(|| {
                        Stop::Fatal(b"kpagecount returned fewer pages than expected".to_vec())
                    })?,
                    None => 0,
                };
                f(Entry::Page(Page {
                    vpn,
                    pfn,
                    flags,
                    cgroup,
                    mapcnt,
                    pme: e,
                }))?;
            }
            if pme.swapped() {
                f(Entry::Swap { vpn, pme: e })?;
            }
        }
        Ok(())
    }
}
