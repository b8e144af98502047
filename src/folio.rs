//! The one folio resolver: which compound page (THP, hugetlb page, slab or other large folio)
//! holds a PFN, from `/proc/kpageflags` alone. Used by v2p, who, idle and hwpoison, so they
//! agree on the head and order of every page.

use crate::addr::Pfn;
use crate::error::Result;
use crate::kpage::U64File;
use crate::kpageflags::PageFlags;
use serde::Serialize;

/// Largest folio order probed: 2^20 pages (4 GiB of 4 KiB pages, above any x86 hugetlb size).
pub const MAX_ORDER: u32 = 20;
/// The most pages a folio may have: `2^MAX_ORDER`.
pub const MAX_FOLIO_PAGES: u64 = 1 << MAX_ORDER;

/// What kind of compound page a folio is, from its pages' flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FolioKind {
    /// A hugetlbfs page (`huge`).
    Hugetlb,
    /// A transparent huge page or other large anon/file folio on the LRU (`thp`).
    Thp,
    /// A slab's compound page (`slab`).
    Slab,
    /// Any other compound page (kernel allocations with __GFP_COMP).
    Compound,
}

impl FolioKind {
    /// The kind a compound page with `flags` belongs to (tails carry the same kind bits).
    pub fn of(flags: PageFlags) -> FolioKind {
        if flags.contains(PageFlags::HUGE) {
            FolioKind::Hugetlb
        } else if flags.contains(PageFlags::THP) {
            FolioKind::Thp
        } else if flags.contains(PageFlags::SLAB) {
            FolioKind::Slab
        } else {
            FolioKind::Compound
        }
    }
}

/// The folio a PFN belongs to, when it is a compound page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Folio {
    /// The head page.
    #[serde(rename = "head_pfn")]
    pub head: Pfn,
    /// Number of pages in the folio (a power of two).
    pub pages: u64,
    /// log2(pages).
    pub order: u32,
    /// THP, hugetlb, slab or other.
    pub kind: FolioKind,
}

impl Folio {
    /// True when `pfn` is one of this folio's pages.
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.head.0 <= pfn.0 && pfn.0 - self.head.0 < self.pages
    }
    /// The index of `pfn` inside the folio (0 for the head).
    pub fn index_of(&self, pfn: Pfn) -> u64 {
        pfn.0.saturating_sub(self.head.0)
    }
}

/// The folio holding `pfn`, whose kpageflags word is `flags`; `None` when the page is not
/// compound or the words read are inconsistent (the folio changed under us).
///
/// Folios are naturally aligned powers of two, so a few probes suffice instead of reading the
/// folio page by page: the head is the first of `pfn` rounded down to 2, 4, 8, ... pages that is
/// a `COMPOUND_HEAD` (every word passed on the way must be a `COMPOUND_TAIL`); the order is the
/// first `j` for which `head + 2^j` is not a `COMPOUND_TAIL`. At most 2 x 20 single-word
/// reads, whatever the folio size.
pub fn folio_of(kpageflags: &U64File, pfn: Pfn, flags: PageFlags) -> Result<Option<Folio>> {
    let head_bit = PageFlags::COMPOUND_HEAD.bits();
    let tail_bit = PageFlags::COMPOUND_TAIL.bits();
    let word = |i: u64| -> Result<u64> { Ok(kpageflags.get(i)?.unwrap_or(0)) };
    let head = if flags.contains(PageFlags::COMPOUND_HEAD) {
        pfn.0
    } else if flags.contains(PageFlags::COMPOUND_TAIL) {
        let mut found = None;
        let mut last = pfn.0;
        for k in 1..=MAX_ORDER {
            let cand = pfn.0 & !((1u64 << k) - 1);
            if cand == last {
                continue;
            }
            last = cand;
            let w = word(cand)?;
            if w & head_bit != 0 {
                found = Some(cand);
                break;
            }
            if w & tail_bit == 0 {
                return Ok(None); // neither head nor tail: the folio changed
            }
        }
        match found {
            Some(h) => h,
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    for order in 0..=MAX_ORDER {
        let probe = head + (1u64 << order);
        let w = word(probe)?;
        if w & tail_bit == 0 || w & head_bit != 0 {
            if probe <= pfn.0 {
                return Ok(None);
            }
            return Ok(Some(Folio {
                head: Pfn(head),
                pages: 1 << order,
                order,
                kind: FolioKind::of(flags),
            }));
        }
    }
    Ok(None)
}

/// Resolves many PFNs in ascending order, reusing the last folio found (many PFNs of one big
/// folio cost one probe sequence).
#[derive(Debug, Default)]
pub struct FolioCache {
    last: Option<Folio>,
}

impl FolioCache {
    /// A cache with nothing in it.
    pub fn new() -> FolioCache {
        FolioCache::default()
    }

    /// As [`folio_of`], answered from the last folio when it holds `pfn`.
    pub fn folio_of(
        &mut self,
        kpageflags: &U64File,
        pfn: Pfn,
        flags: PageFlags,
    ) -> Result<Option<Folio>> {
        if !flags.is_compound() {
            return Ok(None);
        }
        if let Some(f) = self.last
            && f.contains(pfn)
        {
            return Ok(Some(f));
        }
        let f = folio_of(kpageflags, pfn, flags)?;
        if f.is_some() {
            self.last = f;
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn folio_extent_from_flags_file() {
        let h = PageFlags::COMPOUND_HEAD.bits() | PageFlags::THP.bits();
        let tl = PageFlags::COMPOUND_TAIL.bits() | PageFlags::THP.bits();
        // 0..8 plain, an order-3 folio at 8..16, an order-1 folio at 16..18, 18 plain,
        // an order-2 folio at 20..24
        let mut words = vec![0u64; 32];
        words[8] = h;
        for w in &mut words[9..16] {
            *w = tl;
        }
        words[16] = h;
        words[17] = tl;
        words[20] = h;
        for w in &mut words[21..24] {
            *w = tl;
        }
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        for w in &words {
            f.write_all(&w.to_ne_bytes()).expect("w");
        }
        let file = U64File::open(f.path()).expect("open");
        let fl = |i: usize| PageFlags::from_bits_retain(words[i]);
        let folio = |h, n: u64| {
            Some(Folio {
                head: Pfn(h),
                pages: n,
                order: n.trailing_zeros(),
                kind: FolioKind::Thp,
            })
        };
        for p in 8..16 {
            assert_eq!(
                folio_of(&file, Pfn(p), fl(p as usize)).expect("r"),
                folio(8, 8),
                "{p}"
            );
        }
        assert_eq!(folio_of(&file, Pfn(17), fl(17)).expect("r"), folio(16, 2));
        assert_eq!(folio_of(&file, Pfn(16), fl(16)).expect("r"), folio(16, 2));
        assert_eq!(folio_of(&file, Pfn(23), fl(23)).expect("r"), folio(20, 4));
        assert_eq!(folio_of(&file, Pfn(1), fl(1)).expect("r"), None);
        // A tail whose head is missing (the folio changed): no folio.
        assert_eq!(
            folio_of(&file, Pfn(19), PageFlags::COMPOUND_TAIL).expect("r"),
            None
        );
        let mut c = FolioCache::new();
        assert_eq!(c.folio_of(&file, Pfn(9), fl(9)).expect("r"), folio(8, 8));
        assert_eq!(c.folio_of(&file, Pfn(15), fl(15)).expect("r"), folio(8, 8));
        assert_eq!(c.folio_of(&file, Pfn(18), fl(18)).expect("r"), None);
    }
}
