//! Page classes of the map and the one rule that gives a page its class from its flags.

use crate::kpageflags::PageFlags;
use serde::Serialize;

/// What a page (or a block, by its worst page) is, ordered from least to most in the way of
/// compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Free in the buddy allocator.
    Free,
    /// No flags and count 0, outside a buddy run: a per-CPU free list or never initialised.
    Noflags,
    /// Page cache (LRU or mapped, not anonymous).
    File,
    /// Anonymous memory (movable).
    Anon,
    /// Transparent huge pages.
    Thp,
    /// hugetlbfs pages.
    Hugetlb,
    /// Page tables.
    Pgtable,
    /// Slab pages.
    Slab,
    /// Other allocated kernel pages (vmalloc, stacks, drivers, the zero page).
    Kernel,
    /// Reserved or offline pages.
    Reserved,
    /// Pages with a memory error.
    Hwpoison,
}

/// Every class, in rank order.
pub const CLASSES: [Class; 11] = [
    Class::Free,
    Class::Noflags,
    Class::File,
    Class::Anon,
    Class::Thp,
    Class::Hugetlb,
    Class::Pgtable,
    Class::Slab,
    Class::Kernel,
    Class::Reserved,
    Class::Hwpoison,
];

impl Class {
    /// The lowercase name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Class::Free => "free",
            Class::Noflags => "noflags",
            Class::File => "file",
            Class::Anon => "anon",
            Class::Thp => "thp",
            Class::Hugetlb => "hugetlb",
            Class::Pgtable => "pgtable",
            Class::Slab => "slab",
            Class::Kernel => "kernel",
            Class::Reserved => "reserved",
            Class::Hwpoison => "hwpoison",
        }
    }

    /// One letter for colourless pictures.
    pub fn letter(self) -> char {
        match self {
            Class::Free => '.',
            Class::Noflags => ',',
            Class::File => 'f',
            Class::Anon => 'a',
            Class::Thp => 'T',
            Class::Hugetlb => 'H',
            Class::Pgtable => 'p',
            Class::Slab => 's',
            Class::Kernel => 'k',
            Class::Reserved => 'R',
            Class::Hwpoison => 'X',
        }
    }

    /// The colour of the class in pictures.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Class::Free => [0xe8, 0xe8, 0xe8],
            Class::Noflags => [0xc8, 0xc8, 0xc8],
            Class::File => [0x4c, 0x9a, 0xe0],
            Class::Anon => [0x3c, 0xb0, 0x4c],
            Class::Thp => [0x1a, 0x6b, 0x2a],
            Class::Hugetlb => [0x8e, 0x44, 0xad],
            Class::Pgtable => [0xf0, 0xa0, 0x30],
            Class::Slab => [0xe0, 0x60, 0x20],
            Class::Kernel => [0xc0, 0x20, 0x20],
            Class::Reserved => [0x40, 0x40, 0x40],
            Class::Hwpoison => [0xff, 0x00, 0xff],
        }
    }

    /// Can compaction move (or reclaim) this page out of the way?
    pub fn movable(self) -> bool {
        matches!(self, Class::File | Class::Anon | Class::Thp)
    }

    /// Free or as good as free for a block (free, or no flags and count 0).
    pub fn free(self) -> bool {
        matches!(self, Class::Free | Class::Noflags)
    }

    /// What it means, for legends.
    pub fn describe(self) -> &'static str {
        match self {
            Class::Free => "free (buddy)",
            Class::Noflags => "no flags, count 0 (per-CPU free list or not initialised)",
            Class::File => "page cache",
            Class::Anon => "anonymous",
            Class::Thp => "transparent huge pages",
            Class::Hugetlb => "hugetlbfs",
            Class::Pgtable => "page tables",
            Class::Slab => "slab",
            Class::Kernel => "other kernel memory",
            Class::Reserved => "reserved / offline",
            Class::Hwpoison => "hwpoison",
        }
    }
}

/// The class of one page from its flags word; `count` is needed only for words without flags
/// outside a free run (`None` there: pending).
pub(super) fn classify(raw: u64, in_free_run: bool) -> Option<Class> {
    let f = PageFlags::from_bits_retain(raw);
    Some(if f.contains(PageFlags::HWPOISON) {
        Class::Hwpoison
    } else if f.intersects(PageFlags::RESERVED | PageFlags::OFFLINE) {
        Class::Reserved
    } else if f.contains(PageFlags::BUDDY) {
        Class::Free
    } else if f.contains(PageFlags::SLAB) {
        Class::Slab
    } else if f.contains(PageFlags::PGTABLE) {
        Class::Pgtable
    } else if f.contains(PageFlags::HUGE) {
        Class::Hugetlb
    } else if f.contains(PageFlags::THP) {
        Class::Thp
    } else if f.intersects(PageFlags::ANON | PageFlags::KSM) {
        Class::Anon
    } else if f.intersects(PageFlags::LRU | PageFlags::MMAP) {
        Class::File
    } else if raw == 0 {
        if in_free_run {
            Class::Free
        } else {
            return None;
        }
    } else {
        Class::Kernel
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_flags() {
        let f = |p: PageFlags| classify(p.bits(), false);
        assert_eq!(f(PageFlags::BUDDY), Some(Class::Free));
        assert_eq!(f(PageFlags::ANON | PageFlags::LRU), Some(Class::Anon));
        assert_eq!(
            f(PageFlags::THP | PageFlags::ANON | PageFlags::COMPOUND_TAIL),
            Some(Class::Thp)
        );
        assert_eq!(f(PageFlags::LRU | PageFlags::UPTODATE), Some(Class::File));
        assert_eq!(
            f(PageFlags::SLAB | PageFlags::COMPOUND_HEAD),
            Some(Class::Slab)
        );
        assert_eq!(f(PageFlags::RESERVED), Some(Class::Reserved));
        assert_eq!(
            f(PageFlags::HWPOISON | PageFlags::ANON),
            Some(Class::Hwpoison)
        );
        assert_eq!(f(PageFlags::empty()), None);
        assert_eq!(classify(0, true), Some(Class::Free));
        assert!(Class::Slab > Class::Anon && Class::Anon > Class::Free);
    }
}
