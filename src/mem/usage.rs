//! The accounting of one page, as the kernel's `smaps` does it (fs/proc/task_mmu.c,
//! `smaps_pte_entry` -> `smaps_account` -> `smaps_page_accumulate`), from what user space can
//! see: the pagemap word, the page's kpageflags word and its kpagecount.
//!
//! - A page counts in RSS when `vm_normal_page` would return it: not the shared zero page
//!   (counted apart, as `zero_page_bytes`), not hugetlb (smaps keeps it in `*_Hugetlb`, outside
//!   Rss), not a PFN without a `struct page` (KPF_NOPAGE).
//! - PSS is kept in the kernel's fixed point (`PAGE_SIZE << PSS_SHIFT`, divided by the map count
//!   when it is 2 or more, truncated per page) and only shifted back when shown, so sums over a
//!   process equal `smaps_rollup`'s to the byte before its final truncation to kB.
//! - anon / shmem / file follow `folio_test_anon`, then `folio_test_swapbacked` (KPF_ANON,
//!   KPF_SWAPBACKED).
//! - SwapPss divides each swap slot by its reference count (`swp_swapcount`); user space counts
//!   the page-table references to the slot over every process instead (see `mod.rs`).

use crate::kpageflags::PageFlags;
use serde::Serialize;

/// The kernel's PSS fixed-point shift (`PSS_SHIFT` in fs/proc/task_mmu.c).
pub const PSS_SHIFT: u32 = 12;

/// Figures summed over pages: bytes, except the `*_pss` fields which are fixed point
/// (bytes << [`PSS_SHIFT`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident bytes (smaps `Rss`).
    pub rss: u64,
    /// Proportional share, fixed point (smaps `Pss`).
    pub pss: u64,
    /// Bytes of pages mapped once (map count <= 1): what freeing the process would return.
    pub uss: u64,
    /// Resident anonymous bytes (smaps `Anonymous`).
    pub anon: u64,
    /// Resident page-cache bytes (not anonymous, not swap-backed).
    pub file: u64,
    /// Resident shmem / tmpfs / shared-anonymous bytes.
    pub shmem: u64,
    /// PSS of anonymous pages, fixed point (smaps `Pss_Anon`).
    pub pss_anon: u64,
    /// PSS of file pages, fixed point (smaps `Pss_File`).
    pub pss_file: u64,
    /// PSS of shmem pages, fixed point (smaps `Pss_Shmem`).
    pub pss_shmem: u64,
    /// Swapped-out bytes (smaps `Swap`, anonymous swap entries only).
    pub swap: u64,
    /// Proportional share of swap, fixed point (smaps `SwapPss`).
    pub swap_pss: u64,
    /// Resident bytes in large folios (KPF_THP: PMD- or PTE-mapped THP and mTHP).
    pub thp: u64,
    /// Resident bytes of KSM-merged pages.
    pub ksm: u64,
    /// Bytes mapping the shared zero page (not in RSS, as in smaps).
    pub zero_page: u64,
    /// Bytes of hugetlb pages (not in RSS, as in smaps).
    pub hugetlb: u64,
    /// Resident bytes whose folio is dirty (KPF_DIRTY; PTE dirty bits are not visible).
    pub dirty: u64,
    /// Some pages were counted without their kpageflags (a lean walk): THP, KSM and dirty
    /// are unknown.
    pub flags_unknown: bool,
}

/// How a present page was counted (for callers that keep per-category tallies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// In RSS.
    Resident,
    /// The shared zero page.
    ZeroPage,
    /// A hugetlb page.
    Hugetlb,
    /// No `struct page` (a PFN mapping): not counted.
    NoPage,
}

impl Usage {
    /// Count one present page of `page_size` bytes with kpageflags `flags` and kpagecount
    /// `mapcount`.
    pub fn add_page(&mut self, page_size: u64, flags: PageFlags, mapcount: u64) -> Counted {
        if flags.contains(PageFlags::NOPAGE) {
            return Counted::NoPage;
        }
        if flags.contains(PageFlags::ZERO_PAGE) {
            self.zero_page += page_size;
            return Counted::ZeroPage;
        }
        if flags.contains(PageFlags::HUGE) {
            self.hugetlb += page_size;
            return Counted::Hugetlb;
        }
        let pss = pss_share(page_size, mapcount);
        self.rss += page_size;
        self.pss += pss;
        if mapcount < 2 {
            self.uss += page_size;
        }
        if flags.contains(PageFlags::ANON) {
            self.anon += page_size;
            self.pss_anon += pss;
        } else if flags.contains(PageFlags::SWAPBACKED) {
            self.shmem += page_size;
            self.pss_shmem += pss;
        } else {
            self.file += page_size;
            self.pss_file += pss;
        }
        if flags.contains(PageFlags::THP) {
            self.thp += page_size;
        }
        if flags.contains(PageFlags::KSM) {
            self.ksm += page_size;
        }
        if flags.contains(PageFlags::DIRTY) {
            self.dirty += page_size;
        }
        Counted::Resident
    }

    /// Count `bytes` of anonymous pages mapped once, whose kpageflags were not read (see
    /// [`crate::mem::scan::Walker::lean`]): resident, unique, anonymous, PSS the whole size.
    pub fn add_exclusive_anon(&mut self, bytes: u64) {
        self.rss += bytes;
        self.pss += bytes << PSS_SHIFT;
        self.uss += bytes;
        self.anon += bytes;
        self.pss_anon += bytes << PSS_SHIFT;
        self.flags_unknown = true;
    }

    /// Count `bytes` of page-cache pages mapped once, of a file not on shmem, whose
    /// kpageflags were not read: resident, unique, file, PSS the whole size.
    pub fn add_exclusive_file(&mut self, bytes: u64) {
        self.rss += bytes;
        self.pss += bytes << PSS_SHIFT;
        self.uss += bytes;
        self.file += bytes;
        self.pss_file += bytes << PSS_SHIFT;
        self.flags_unknown = true;
    }

    /// Count one swapped-out page whose slot `refs` page-table entries reference.
    pub fn add_swap(&mut self, page_size: u64, refs: u64) {
        self.swap += page_size;
        self.swap_pss += pss_share(page_size, refs);
    }

    /// Add another usage to this one (saturating: totals never wrap).
    pub fn merge(&mut self, o: &Usage) {
        let f = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        f(&mut self.rss, o.rss);
        f(&mut self.pss, o.pss);
        f(&mut self.uss, o.uss);
        f(&mut self.anon, o.anon);
        f(&mut self.file, o.file);
        f(&mut self.shmem, o.shmem);
        f(&mut self.pss_anon, o.pss_anon);
        f(&mut self.pss_file, o.pss_file);
        f(&mut self.pss_shmem, o.pss_shmem);
        f(&mut self.swap, o.swap);
        f(&mut self.swap_pss, o.swap_pss);
        f(&mut self.thp, o.thp);
        f(&mut self.ksm, o.ksm);
        f(&mut self.zero_page, o.zero_page);
        f(&mut self.hugetlb, o.hugetlb);
        f(&mut self.dirty, o.dirty);
        self.flags_unknown |= o.flags_unknown;
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// The figures in bytes, for output.
    pub fn bytes(&self) -> UsageBytes {
        let flag = |v: u64| (!self.flags_unknown).then_some(v);
        UsageBytes {
            rss_bytes: self.rss,
            pss_bytes: self.pss >> PSS_SHIFT,
            uss_bytes: Some(self.uss),
            shared_bytes: Some(self.rss.saturating_sub(self.uss)),
            swap_bytes: self.swap,
            swap_pss_bytes: self.swap_pss >> PSS_SHIFT,
            anon_bytes: self.anon,
            file_bytes: Some(self.file),
            shmem_bytes: Some(self.shmem),
            pss_anon_bytes: self.pss_anon >> PSS_SHIFT,
            pss_file_bytes: self.pss_file >> PSS_SHIFT,
            pss_shmem_bytes: self.pss_shmem >> PSS_SHIFT,
            thp_bytes: flag(self.thp),
            ksm_bytes: flag(self.ksm),
            zero_page_bytes: Some(self.zero_page),
            hugetlb_bytes: self.hugetlb,
            dirty_bytes: flag(self.dirty),
        }
    }
}

/// One page's PSS in fixed point: the kernel's `(PAGE_SIZE << PSS_SHIFT) / mapcount` for a map
/// count of 2 or more, the whole page otherwise.
pub fn pss_share(page_size: u64, mapcount: u64) -> u64 {
    let whole = page_size << PSS_SHIFT;
    if mapcount >= 2 {
        whole / mapcount
    } else {
        whole
    }
}

/// The figures of a [`Usage`] as output fields (bytes). `None` where the source cannot tell
/// (rows read from `smaps_rollup` have no page flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageBytes {
    /// Resident set (smaps `Rss`).
    pub rss_bytes: u64,
    /// Proportional set (smaps `Pss`).
    pub pss_bytes: u64,
    /// Unique set: pages mapped only here.
    pub uss_bytes: Option<u64>,
    /// Resident pages also mapped elsewhere (`rss - uss`).
    pub shared_bytes: Option<u64>,
    /// Swapped out (smaps `Swap`).
    pub swap_bytes: u64,
    /// Proportional share of swap (smaps `SwapPss`).
    pub swap_pss_bytes: u64,
    /// Resident anonymous (smaps `Anonymous`).
    pub anon_bytes: u64,
    /// Resident file-backed.
    pub file_bytes: Option<u64>,
    /// Resident shmem.
    pub shmem_bytes: Option<u64>,
    /// PSS of anonymous pages (smaps `Pss_Anon`).
    pub pss_anon_bytes: u64,
    /// PSS of file pages (smaps `Pss_File`).
    pub pss_file_bytes: u64,
    /// PSS of shmem pages (smaps `Pss_Shmem`).
    pub pss_shmem_bytes: u64,
    /// Resident in large folios (THP/mTHP).
    pub thp_bytes: Option<u64>,
    /// Resident KSM-merged.
    pub ksm_bytes: Option<u64>,
    /// Mapping the shared zero page (not in RSS).
    pub zero_page_bytes: Option<u64>,
    /// hugetlb pages (not in RSS).
    pub hugetlb_bytes: u64,
    /// Resident with a dirty folio.
    pub dirty_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss_follows_the_kernels_fixed_point() {
        let mut u = Usage::default();
        let anon = PageFlags::ANON | PageFlags::LRU;
        u.add_page(4096, anon, 1);
        u.add_page(4096, anon, 3);
        u.add_page(4096, PageFlags::LRU, 0);
        u.add_page(4096, PageFlags::SWAPBACKED | PageFlags::THP, 2);
        assert_eq!(u.add_page(4096, PageFlags::ZERO_PAGE, 9), Counted::ZeroPage);
        assert_eq!(u.add_page(4096, PageFlags::HUGE, 1), Counted::Hugetlb);
        assert_eq!(u.add_page(4096, PageFlags::NOPAGE, 1), Counted::NoPage);
        u.add_swap(4096, 3);
        let b = u.bytes();
        assert_eq!(b.rss_bytes, 4 * 4096);
        // (4096 << 12) / 3 truncated, then >> 12: 1365 bytes, not 1365.33
        assert_eq!(
            u.pss,
            (4096 << 12) * 2 + (4096u64 << 12) / 3 + (4096 << 12) / 2
        );
        assert_eq!(b.pss_bytes, 4096 * 2 + 1365 + 2048);
        assert_eq!(b.uss_bytes, Some(2 * 4096));
        assert_eq!(b.shared_bytes, Some(2 * 4096));
        assert_eq!((b.pss_anon_bytes, b.pss_file_bytes), (4096 + 1365, 4096));
        assert_eq!(b.pss_shmem_bytes, 2048);
        assert_eq!((b.zero_page_bytes, b.hugetlb_bytes), (Some(4096), 4096));
        assert_eq!((b.swap_bytes, b.swap_pss_bytes), (4096, 1365));
        assert_eq!(b.thp_bytes, Some(4096));
        // Counted from pagemap alone: exact smaps figures, page flags unknown.
        let mut l = Usage::default();
        l.add_exclusive_anon(2 * 4096);
        let mut full = Usage::default();
        full.add_page(4096, anon, 1);
        full.add_page(4096, anon, 1);
        let (lb, fb) = (l.bytes(), full.bytes());
        assert_eq!(
            (lb.rss_bytes, lb.pss_bytes, lb.uss_bytes),
            (fb.rss_bytes, fb.pss_bytes, fb.uss_bytes)
        );
        assert_eq!(
            (lb.anon_bytes, lb.pss_anon_bytes),
            (fb.anon_bytes, fb.pss_anon_bytes)
        );
        assert_eq!(
            (lb.thp_bytes, lb.ksm_bytes, lb.dirty_bytes),
            (None, None, None)
        );
        l.add_exclusive_file(4096);
        full.add_page(4096, PageFlags::LRU, 1);
        let (lb, fb) = (l.bytes(), full.bytes());
        assert_eq!(
            (lb.file_bytes, lb.pss_file_bytes),
            (fb.file_bytes, fb.pss_file_bytes)
        );
        assert_eq!(lb.pss_bytes, fb.pss_bytes);
        full.merge(&l);
        assert_eq!(full.bytes().dirty_bytes, None);
    }
}
