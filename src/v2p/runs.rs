//! Collapsing runs of like pages into one record: what makes a 1 GiB table readable.
//!
//! A run is a stretch of consecutive virtual pages of one mapping that are all
//! - not present and not swapped with the same pagemap word (never touched, guard regions), or
//! - swapped, of one swap type, at consecutive swap offsets (either direction), or
//! - present at physically contiguous PFNs (ascending or descending, one direction per run:
//!   fresh anonymous memory often comes from the allocator in descending order) with the same
//!   pagemap bits, kpageflags word (compound head/tail aside, so a THP is one run), kpagecount,
//!   memcg, folio size and iomem region.
//!
//! The run's record is its first page's, with `pages` its length and `last_pfn` the PFN of
//! its last page. Only what was read is compared: fields not asked for are `None` throughout.

use super::PageRecord;
use crate::addr::page_size;
use crate::error::Result;
use crate::kpageflags::PageFlags;
use std::borrow::Cow;

/// The pagemap bits 55-63 (flags); below them are the PFN or swap type/offset.
const PME_FLAG_BITS: u64 = !((1u64 << 55) - 1);

/// Folds a stream of page records into runs; feed pages in address order with
/// [`Collapser::push`], then call [`Collapser::finish`].
#[derive(Default)]
pub struct Collapser {
    run: Option<Run>,
    /// The last run emitted: its owned names and paths are reused by the next run when
    /// equal (runs of one mapping mostly share them), saving allocations per run.
    spare: Option<PageRecord<'static>>,
}

struct Run {
    first: PageRecord<'static>,
    /// Page-aligned address of the last page.
    last_page: u64,
    /// PFN (present) or swap offset (swapped) of the last page.
    last_pos: Option<u64>,
    /// +1 or -1 once two pages are in the run.
    dir: i8,
}

impl Collapser {
    /// An empty collapser.
    pub fn new() -> Collapser {
        Collapser::default()
    }

    /// Add the next page; `emit` gets the run it ends, if any.
    pub fn push(
        &mut self,
        rec: &PageRecord<'_>,
        mut emit: impl FnMut(&PageRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Some(run) = &mut self.run
            && run.extend(rec)
        {
            return Ok(());
        }
        self.finish(&mut emit)?;
        let ps = page_size();
        let first = match self.spare.take() {
            Some(old) => adopt(old, rec),
            None => rec.clone().into_owned(),
        };
        self.run = Some(Run {
            first,
            last_page: rec.vaddr & !(ps - 1),
            last_pos: pos(rec),
            dir: 0,
        });
        Ok(())
    }

    /// Emit the run in progress, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(&PageRecord<'_>) -> Result<()>) -> Result<()> {
        match self.run.take() {
            Some(run) => {
                let r = emit(&run.first);
                self.spare = Some(run.first);
                r
            }
            None => Ok(()),
        }
    }
}

/// `rec` as an owned record, reusing `old`'s owned strings where they are equal.
fn adopt(old: PageRecord<'static>, rec: &PageRecord<'_>) -> PageRecord<'static> {
    fn keep<T: ToOwned + PartialEq + ?Sized>(
        old: Option<Cow<'static, T>>,
        new: &Option<Cow<'_, T>>,
    ) -> Option<Cow<'static, T>> {
        match (old, new) {
            (Some(o), Some(n)) if *o == **n => Some(o),
            (_, n) => n.as_ref().map(|n| Cow::Owned((**n).to_owned())),
        }
    }
    PageRecord {
        pid: rec.pid,
        vaddr: rec.vaddr,
        pages: rec.pages,
        entry: rec.entry,
        pfn: rec.pfn,
        last_pfn: rec.last_pfn,
        phys_addr: rec.phys_addr,
        kpagecount: rec.kpagecount,
        flags_raw: rec.flags_raw,
        flags: keep(old.flags, &rec.flags),
        memcg_ino: rec.memcg_ino,
        memcg_path: keep(old.memcg_path, &rec.memcg_path),
        iomem: keep(old.iomem, &rec.iomem),
        head_pfn: rec.head_pfn,
        folio_pages: rec.folio_pages,
        vma: if *old.vma == *rec.vma {
            old.vma
        } else {
            Cow::Owned((*rec.vma).clone())
        },
    }
}

/// The position that must advance by one page: the PFN, or the swap offset.
fn pos(r: &PageRecord<'_>) -> Option<u64> {
    if r.entry.present() {
        r.pfn
    } else {
        r.entry.swap_offset()
    }
}

impl Run {
    /// Take `p` into the run when it continues it.
    fn extend(&mut self, p: &PageRecord<'_>) -> bool {
        let f = &self.first;
        let ps = page_size();
        let compound = (PageFlags::COMPOUND_HEAD | PageFlags::COMPOUND_TAIL).bits();
        let same = p.vaddr & !(ps - 1) == self.last_page.wrapping_add(ps)
            && p.vma.start == f.vma.start
            && p.pid == f.pid
            && (p.entry.raw() ^ f.entry.raw()) & PME_FLAG_BITS == 0
            && p.flags_raw.map(|w| w & !compound) == f.flags_raw.map(|w| w & !compound)
            && p.kpagecount == f.kpagecount
            && p.memcg_ino == f.memcg_ino
            && p.folio_pages == f.folio_pages
            && p.iomem == f.iomem;
        if !same {
            return false;
        }
        let swapped = !p.entry.present() && p.entry.swapped();
        let ok = if p.entry.present() || swapped {
            if swapped && p.entry.swap_type() != f.entry.swap_type() {
                return false;
            }
            match (pos(p), self.last_pos) {
                (Some(a), Some(l)) => {
                    let step = if a == l.wrapping_add(1) {
                        1
                    } else if a == l.wrapping_sub(1) {
                        -1
                    } else {
                        0
                    };
                    step != 0 && (self.dir == 0 || self.dir == step) && {
                        self.dir = step;
                        true
                    }
                }
                // PFNs hidden from an unprivileged reader: like pages all the same
                (None, None) => true,
                _ => false,
            }
        } else {
            p.entry.raw() == f.entry.raw()
        };
        if ok {
            self.last_page = p.vaddr & !(ps - 1);
            self.last_pos = pos(p);
            self.first.pages += 1;
            if p.entry.present() {
                self.first.last_pfn = p.pfn;
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagemap::PagemapEntry;
    use crate::v2p::VmaInfo;

    fn page(i: u64, raw: u64, flags: Option<u64>) -> PageRecord<'static> {
        let e = PagemapEntry::from_raw(raw);
        PageRecord {
            pid: 1,
            vaddr: 0x10000 + i * page_size(),
            pages: 1,
            entry: e,
            pfn: e.pfn().map(|p| p.0),
            last_pfn: e.pfn().map(|p| p.0),
            phys_addr: None,
            kpagecount: Some(1),
            flags_raw: flags,
            flags: None,
            memcg_ino: None,
            memcg_path: None,
            iomem: None,
            head_pfn: None,
            folio_pages: None,
            vma: Cow::Owned(VmaInfo {
                start: 0x10000,
                end: 0x100000,
                perms: "rw-p".into(),
                path: String::new(),
            }),
        }
    }

    fn runs(pages: &[PageRecord<'static>]) -> Vec<(u64, u64, Option<u64>, Option<u64>)> {
        let mut out = Vec::new();
        let mut c = Collapser::new();
        let mut emit = |r: &PageRecord<'_>| {
            out.push((r.vaddr, r.pages, r.pfn, r.last_pfn));
            Ok(())
        };
        for p in pages {
            c.push(p, &mut emit).expect("push");
        }
        c.finish(&mut emit).expect("finish");
        out
    }

    const P: u64 = 1 << 63;

    #[test]
    fn contiguous_runs_in_either_direction_and_holes() {
        let pages = vec![
            page(0, 0, None),
            page(1, 0, None),
            page(2, P | 0x50, Some(0x28)),
            page(3, P | 0x51, Some(0x28)),
            page(4, P | 0x52, Some(0x28)),
            page(5, P | 0x51, Some(0x28)), // turns back: a new run
            page(6, P | 0x50, Some(0x28)),
            page(7, P | 0x4f, Some(0x28)),
            page(8, P | 0x4e, Some(0x2c)), // other flags
            page(9, P | 0x90, Some(0x2c)), // not contiguous
            page(10, 0, None),
        ];
        let ps = page_size();
        assert_eq!(
            runs(&pages),
            vec![
                (0x10000, 2, None, None),
                (0x10000 + 2 * ps, 3, Some(0x50), Some(0x52)),
                (0x10000 + 5 * ps, 3, Some(0x51), Some(0x4f)),
                (0x10000 + 8 * ps, 1, Some(0x4e), Some(0x4e)),
                (0x10000 + 9 * ps, 1, Some(0x90), Some(0x90)),
                (0x10000 + 10 * ps, 1, None, None),
            ]
        );
    }

    #[test]
    fn a_thp_is_one_run_and_swap_offsets_chain() {
        let head = PageFlags::COMPOUND_HEAD.bits() | PageFlags::THP.bits();
        let tail = PageFlags::COMPOUND_TAIL.bits() | PageFlags::THP.bits();
        let mut pages = vec![page(0, P | 0x200, Some(head))];
        for i in 1..512 {
            pages.push(page(i, P | (0x200 + i), Some(tail)));
        }
        let sw = |i: u64, off: u64| page(512 + i, (1 << 62) | (off << 5) | 2, None);
        pages.extend([sw(0, 7), sw(1, 8), sw(2, 10)]);
        let r = runs(&pages);
        assert_eq!(r[0].1, 512);
        assert_eq!((r[0].2, r[0].3), (Some(0x200), Some(0x3ff)));
        assert_eq!(r[1].1, 2);
        assert_eq!(r[2].1, 1);
        assert_eq!(r.len(), 3);
    }
}
