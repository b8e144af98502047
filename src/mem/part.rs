//! Reading part of an address space: pagemap over a list of pieces (a VMA's populated range),
//! then the kpage words of its present pages a batch at a time, summed per (VMA, memcg).
//! [`split`] cuts a walk's pieces into contiguous parts of similar page counts, so a large
//! address space is read by several threads (pagemap and kpageflags reads are independent
//! per page: on 2 CPUs a 2 GiB process is read in about half the time).

use super::backing::Lean;
use super::lookup::{Pending, Scratch, SharedCache, lookup};
use super::scan::{PageFiles, WalkStats, swap_key};
use super::usage::{Counted, Usage};
use crate::addr::{VirtAddr, page_size};
use crate::error::Result;
use crate::kpageflags::PageFlags;
use crate::pagemap::Pagemap;
use std::collections::HashMap;
use std::ops::Range;

/// Pages a part must have to be worth a thread of its own (~2 ms of reading against the
/// ~0.1 ms a thread costs to start).
pub const SPLIT_MIN_PAGES: u64 = 16 << 10;

/// One range of one VMA to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Index of the VMA in the walk.
    pub vma: usize,
    /// The addresses (page-aligned).
    pub range: Range<VirtAddr>,
    /// Which pages mapped once may be counted from pagemap alone.
    pub lean: Lean,
}

impl Piece {
    fn pages(&self) -> u64 {
        (self.range.end.0 - self.range.start.0).div_ceil(page_size())
    }
}

/// `plan` cut into at most `threads` contiguous parts of similar page counts, none under
/// `min_pages` (a piece may be cut at a page boundary). One part (the plan itself) when the
/// plan is too small to share.
pub fn split(plan: &[Piece], threads: usize, min_pages: u64) -> Vec<Vec<Piece>> {
    let total: u64 = plan.iter().map(Piece::pages).sum();
    let n = (total / min_pages.max(1)).clamp(1, threads.max(1) as u64);
    if n <= 1 {
        return vec![plan.to_vec()];
    }
    let ps = page_size();
    let share = total.div_ceil(n);
    let mut parts = vec![Vec::new()];
    let mut room = share;
    for p in plan {
        let mut p = p.clone();
        while p.pages() > room && parts.len() < n as usize {
            let cut = VirtAddr(p.range.start.0 + room * ps);
            if room > 0 {
                let head = Piece {
                    range: p.range.start..cut,
                    ..p.clone()
                };
                parts.last_mut().expect("one part").push(head);
                p.range.start = cut;
            }
            parts.push(Vec::new());
            room = share;
        }
        room = room.saturating_sub(p.pages());
        parts.last_mut().expect("one part").push(p);
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// A part's figures: per (VMA index, memcg), and what it saw besides.
#[derive(Debug, Default)]
pub struct State {
    pub stats: WalkStats,
    pub parts: HashMap<(usize, u64), Usage>,
    pending: Vec<Pending>,
}

impl State {
    /// Add another part's figures to these.
    pub fn absorb(&mut self, o: State) {
        for (k, u) in o.parts {
            self.parts.entry(k).or_default().merge(&u);
        }
        let (a, b) = (&mut self.stats, o.stats);
        a.hidden += b.hidden;
        a.large_folio_pages += b.large_folio_pages;
        a.past_end += b.past_end;
        a.folio_counts_differ |= b.folio_counts_differ;
    }
}

/// A reader of pieces, with its buffers.
pub struct Part<'a, 'b> {
    pub files: &'a PageFiles,
    pub swap_refs: &'a HashMap<u64, u32>,
    pub batch: usize,
    pub cache: &'b mut SharedCache,
    pub scratch: &'b mut Scratch,
}

impl Part<'_, '_> {
    /// Read `pieces` of the address space behind `pm`.
    pub fn run(&mut self, pm: &Pagemap, pieces: &[Piece]) -> Result<State> {
        let ps = page_size();
        let mut st = State::default();
        for piece in pieces {
            let (lean, i) = (piece.lean, piece.vma);
            let (mut lean_anon, mut lean_file) = (0u64, 0u64);
            // Half a batch read, flushed at half a batch pending: at most a batch of pages
            // waits for its kpage words.
            let half = self.batch.div_ceil(2);
            let batch = half.min(piece.pages() as usize).max(1);
            pm.for_each_batch(piece.range.clone(), batch, |_, entries| {
                for e in entries {
                    let once = e.exclusive() && e.pfn().is_some();
                    if once && lean.anon && !e.file_shared() {
                        lean_anon += 1;
                    } else if once && lean.file && e.file_shared() {
                        lean_file += 1;
                    } else if let Some(p) = e.pfn() {
                        st.pending.push(Pending {
                            pfn: p.0,
                            vma: i,
                            exclusive: e.exclusive(),
                            plain_file: lean.file && e.file_shared(),
                        });
                    } else if e.pfn_hidden() {
                        st.stats.hidden += 1;
                    } else if let Some(k) = swap_key(*e) {
                        let refs = self.swap_refs.get(&k).copied().unwrap_or(1);
                        st.parts
                            .entry((i, 0))
                            .or_default()
                            .add_swap(ps, u64::from(refs));
                    }
                }
                if st.pending.len() >= half {
                    self.flush(&mut st)?;
                }
                Ok(())
            })?;
            if lean_anon + lean_file > 0 {
                let u = st.parts.entry((i, 0)).or_default();
                u.add_exclusive_anon(lean_anon * ps);
                u.add_exclusive_file(lean_file * ps);
            }
        }
        self.flush(&mut st)?;
        Ok(st)
    }

    /// Look up the pending PFNs' flags, counts (and memcgs) and count them.
    fn flush(&mut self, st: &mut State) -> Result<()> {
        if st.pending.is_empty() {
            return Ok(());
        }
        let ps = page_size();
        lookup(self.files, self.cache, &st.pending, self.scratch)?;
        let words = std::mem::take(&mut self.scratch.words);
        let mut prev: Option<(u64, u64)> = None;
        // Pages come in VMA order: sum a run of one (VMA, memcg) locally, not a map entry per
        // page.
        let mut run: Option<((usize, u64), Usage)> = None;
        for (p, w) in st.pending.iter().zip(&words) {
            let (pfn, vma) = (p.pfn, p.vma);
            let (fl, n, cg) = match w.flags {
                Some(fl) => (PageFlags::from_bits_retain(fl), w.count, w.cgroup),
                None => {
                    st.stats.past_end += 1;
                    (PageFlags::empty(), 1, 0)
                }
            };
            if fl.contains(PageFlags::COMPOUND_TAIL | PageFlags::THP)
                && let Some((pp, pn)) = prev
                && pp + 1 == pfn
                && pn != n
            {
                st.stats.folio_counts_differ = true;
            }
            prev = fl.contains(PageFlags::THP).then_some((pfn, n));
            let key = (vma, cg);
            if run.as_ref().is_some_and(|(k, _)| *k != key)
                && let Some((k, u)) = run.take()
            {
                st.parts.entry(k).or_default().merge(&u);
            }
            let u = &mut run.get_or_insert_with(|| (key, Usage::default())).1;
            if u.add_page(ps, fl, n) == Counted::Resident && fl.contains(PageFlags::THP) {
                st.stats.large_folio_pages += 1;
            }
        }
        if let Some((k, u)) = run {
            st.parts.entry(k).or_default().merge(&u);
        }
        self.scratch.words = words;
        st.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(vma: usize, start_page: u64, pages: u64) -> Piece {
        let ps = page_size();
        Piece {
            vma,
            range: VirtAddr(start_page * ps)..VirtAddr((start_page + pages) * ps),
            lean: Lean::default(),
        }
    }

    /// The parts cover the plan exactly, in order, with similar page counts.
    #[test]
    fn split_covers_the_plan_in_order() {
        let plan = vec![piece(0, 0, 10), piece(1, 100, 1000), piece(2, 5000, 7)];
        assert_eq!(split(&plan, 1, 1), vec![plan.clone()]);
        assert_eq!(
            split(&plan, 4, 2000),
            vec![plan.clone()],
            "too small to share"
        );
        for threads in 2..6 {
            let parts = split(&plan, threads, 100);
            assert_eq!(parts.len(), threads, "{threads} threads");
            let flat: Vec<Piece> = parts.iter().flatten().cloned().collect();
            // Rejoin the cut pieces: the same ranges, in order.
            let mut joined: Vec<Piece> = Vec::new();
            for p in flat {
                match joined.last_mut() {
                    Some(l) if l.vma == p.vma && l.range.end == p.range.start => {
                        l.range.end = p.range.end
                    }
                    _ => joined.push(p),
                }
            }
            assert_eq!(joined, plan, "{threads} threads");
            let sizes: Vec<u64> = parts
                .iter()
                .map(|p| p.iter().map(Piece::pages).sum())
                .collect();
            let share = 1017u64.div_ceil(threads as u64);
            assert!(sizes.iter().all(|&s| s <= share), "{sizes:?}");
        }
        assert!(split(&[], 4, 1).iter().all(|p| p.is_empty()));
    }
}
