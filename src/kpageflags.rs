//! `/proc/kpageflags` words as [`PageFlags`], with the names and one-letter codes page-types
//! (Linux 6.1 `tools/vm/page-types.c`) prints, and its two views of a word: the "well-known"
//! default view and the raw view with overloaded bits expanded.
//!
//! Reading the file is [`crate::kpage`]'s job; this module only interprets the 64-bit words.
//!
//! ```
//! use pgtool::kpageflags::PageFlags;
//! let f = PageFlags::from_bits_retain(0x5868);
//! assert_eq!(f.long_names(), "uptodate,lru,active,mmap,anonymous,swapbacked");
//! assert_eq!(f.symbolic(), "___U_lA____Ma_b______________________________");
//! ```

use crate::pagemap::PagemapEntry;
use serde::Serialize;

bitflags::bitflags! {
    /// One `/proc/kpageflags` word. All 64 bits are kept ([`PageFlags::from_bits_retain`]);
    /// bits 47-51 and 61-63 are never set by the kernel: page-types (and pgtool) fill them in
    /// raw mode from overloaded kernel bits and from the page's pagemap entry.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct PageFlags: u64 {
        /// KPF_LOCKED (0)
        const LOCKED = 1 << 0;
        /// KPF_ERROR (1)
        const ERROR = 1 << 1;
        /// KPF_REFERENCED (2)
        const REFERENCED = 1 << 2;
        /// KPF_UPTODATE (3)
        const UPTODATE = 1 << 3;
        /// KPF_DIRTY (4)
        const DIRTY = 1 << 4;
        /// KPF_LRU (5)
        const LRU = 1 << 5;
        /// KPF_ACTIVE (6)
        const ACTIVE = 1 << 6;
        /// KPF_SLAB (7)
        const SLAB = 1 << 7;
        /// KPF_WRITEBACK (8)
        const WRITEBACK = 1 << 8;
        /// KPF_RECLAIM (9)
        const RECLAIM = 1 << 9;
        /// KPF_BUDDY (10): free page, head of a buddy block
        const BUDDY = 1 << 10;
        /// KPF_MMAP (11): mapped into some process
        const MMAP = 1 << 11;
        /// KPF_ANON (12)
        const ANON = 1 << 12;
        /// KPF_SWAPCACHE (13)
        const SWAPCACHE = 1 << 13;
        /// KPF_SWAPBACKED (14)
        const SWAPBACKED = 1 << 14;
        /// KPF_COMPOUND_HEAD (15)
        const COMPOUND_HEAD = 1 << 15;
        /// KPF_COMPOUND_TAIL (16)
        const COMPOUND_TAIL = 1 << 16;
        /// KPF_HUGE (17): hugetlbfs page
        const HUGE = 1 << 17;
        /// KPF_UNEVICTABLE (18)
        const UNEVICTABLE = 1 << 18;
        /// KPF_HWPOISON (19)
        const HWPOISON = 1 << 19;
        /// KPF_NOPAGE (20): no struct page behind the PFN
        const NOPAGE = 1 << 20;
        /// KPF_KSM (21)
        const KSM = 1 << 21;
        /// KPF_THP (22): part of a transparent huge page (any large rmappable folio since 6.x)
        const THP = 1 << 22;
        /// KPF_OFFLINE (23)
        const OFFLINE = 1 << 23;
        /// KPF_ZERO_PAGE (24)
        const ZERO_PAGE = 1 << 24;
        /// KPF_IDLE (25)
        const IDLE = 1 << 25;
        /// KPF_PGTABLE (26)
        const PGTABLE = 1 << 26;
        /// KPF_RESERVED (32, kernel-hacking bit)
        const RESERVED = 1 << 32;
        /// KPF_MLOCKED (33)
        const MLOCKED = 1 << 33;
        /// KPF_MAPPEDTODISK (34; upstream calls it KPF_OWNER_2 since 6.4)
        const MAPPEDTODISK = 1 << 34;
        /// KPF_PRIVATE (35)
        const PRIVATE = 1 << 35;
        /// KPF_PRIVATE_2 (36)
        const PRIVATE_2 = 1 << 36;
        /// KPF_OWNER_PRIVATE (37)
        const OWNER_PRIVATE = 1 << 37;
        /// KPF_ARCH (38)
        const ARCH = 1 << 38;
        /// KPF_UNCACHED (39)
        const UNCACHED = 1 << 39;
        /// KPF_SOFTDIRTY (40)
        const SOFTDIRTY = 1 << 40;
        /// KPF_ARCH_2 (41)
        const ARCH_2 = 1 << 41;
        /// KPF_ARCH_3 (42; newer kernels, arm64 MTE; page-types 6.1 has no name for it)
        const ARCH_3 = 1 << 42;
        /// anon_exclusive (47): raw view, from ANON + MAPPEDTODISK
        const ANON_EXCLUSIVE = 1 << 47;
        /// readahead (48): raw view, from RECLAIM without WRITEBACK
        const READAHEAD = 1 << 48;
        /// slob_free (49): raw view, from SLAB + PRIVATE
        const SLOB_FREE = 1 << 49;
        /// slub_frozen (50): raw view, from SLAB + ACTIVE
        const SLUB_FROZEN = 1 << 50;
        /// slub_debug (51): raw view, from SLAB + ERROR
        const SLUB_DEBUG = 1 << 51;
        /// file (61): from pagemap bit 61 (file page or shared anon)
        const FILE = 1 << 61;
        /// swap (62): from pagemap bit 62 (swapped out)
        const SWAP = 1 << 62;
        /// mmap_exclusive (63): from pagemap bit 56 (mapped by exactly one process)
        const MMAP_EXCLUSIVE = 1 << 63;

        // Keep every other bit too: newer kernels add flags and pgtool must not drop them.
        const _ = !0;
    }
}

/// One named bit of page-types' flag table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagName {
    /// Bit number, 0-63.
    pub bit: u32,
    /// The one-letter code in the symbolic string (not unique: H d I P A E appear twice).
    pub letter: char,
    /// The long name (unique).
    pub name: &'static str,
}

const fn f(bit: u32, letter: char, name: &'static str) -> FlagName {
    FlagName { bit, letter, name }
}

/// page-types' (Linux 6.1) 45 named bits, in ascending bit order: the order of the symbolic
/// string and of the long-name list.
pub const FLAG_NAMES: [FlagName; 45] = [
    f(0, 'L', "locked"),
    f(1, 'E', "error"),
    f(2, 'R', "referenced"),
    f(3, 'U', "uptodate"),
    f(4, 'D', "dirty"),
    f(5, 'l', "lru"),
    f(6, 'A', "active"),
    f(7, 'S', "slab"),
    f(8, 'W', "writeback"),
    f(9, 'I', "reclaim"),
    f(10, 'B', "buddy"),
    f(11, 'M', "mmap"),
    f(12, 'a', "anonymous"),
    f(13, 's', "swapcache"),
    f(14, 'b', "swapbacked"),
    f(15, 'H', "compound_head"),
    f(16, 'T', "compound_tail"),
    f(17, 'G', "huge"),
    f(18, 'u', "unevictable"),
    f(19, 'X', "hwpoison"),
    f(20, 'n', "nopage"),
    f(21, 'x', "ksm"),
    f(22, 't', "thp"),
    f(23, 'o', "offline"),
    f(24, 'z', "zero_page"),
    f(25, 'i', "idle_page"),
    f(26, 'g', "pgtable"),
    f(32, 'r', "reserved"),
    f(33, 'm', "mlocked"),
    f(34, 'd', "mappedtodisk"),
    f(35, 'P', "private"),
    f(36, 'p', "private_2"),
    f(37, 'O', "owner_private"),
    f(38, 'h', "arch"),
    f(39, 'c', "uncached"),
    f(40, 'f', "softdirty"),
    f(41, 'H', "arch_2"),
    f(47, 'd', "anon_exclusive"),
    f(48, 'I', "readahead"),
    f(49, 'P', "slob_free"),
    f(50, 'A', "slub_frozen"),
    f(51, 'E', "slub_debug"),
    f(61, 'F', "file"),
    f(62, 'w', "swap"),
    f(63, '1', "mmap_exclusive"),
];

/// The page-types entry for `bit`, if page-types names it.
pub fn flag_name(bit: u32) -> Option<&'static FlagName> {
    FLAG_NAMES.iter().find(|n| n.bit == bit)
}

/// Bits 32-47: the kernel-hacking bits hidden in the default (non-raw) view.
const HACKER_BITS: u64 = 0xffff_u64 << 32;

impl PageFlags {
    /// The raw 64-bit word.
    pub fn raw(self) -> u64 {
        self.bits()
    }

    /// True if bit `bit` is set.
    pub fn has_bit(self, bit: u32) -> bool {
        bit < 64 && self.bits() & (1u64 << bit) != 0
    }

    /// The lowest set bit page-types has no name for (27-31, 42-46, 52-60), if any. page-types
    /// refuses to print such a word ("unknown flag bit N"); pgtool's own outputs print `bitN`.
    pub fn first_unnamed_bit(self) -> Option<u32> {
        (0..64).find(|&b| self.has_bit(b) && flag_name(b).is_none())
    }

    /// page-types' default view: hide the kernel-hacking bits 32-47, and hide the compound bits
    /// unless the page is hugetlb (so THP and slab compound pages count as ordinary pages).
    pub fn well_known(self) -> PageFlags {
        let mut v = self.bits() & !HACKER_BITS;
        let compound = (PageFlags::COMPOUND_HEAD | PageFlags::COMPOUND_TAIL).bits();
        if v & compound != 0 && v & PageFlags::HUGE.bits() == 0 {
            v &= !compound;
        }
        PageFlags::from_bits_retain(v)
    }

    /// page-types' raw view (`-r`): move overloaded kernel bits to their own positions and OR in
    /// the bits that come from the page's pagemap entry (zero in a plain PFN walk). Each move is
    /// an XOR of both positions, exactly as page-types does it.
    pub fn expand_overloaded(self, pme: PagemapEntry) -> PageFlags {
        let mut v = self.bits();
        let has = |v: u64, f: PageFlags| v & f.bits() != 0;
        let mv = |v: u64, from: PageFlags, to: PageFlags| v ^ (from.bits() | to.bits());
        if has(v, PageFlags::ANON) && has(v, PageFlags::MAPPEDTODISK) {
            v = mv(v, PageFlags::MAPPEDTODISK, PageFlags::ANON_EXCLUSIVE);
        }
        if has(v, PageFlags::SLAB) {
            if has(v, PageFlags::PRIVATE) {
                v = mv(v, PageFlags::PRIVATE, PageFlags::SLOB_FREE);
            }
            if has(v, PageFlags::ACTIVE) {
                v = mv(v, PageFlags::ACTIVE, PageFlags::SLUB_FROZEN);
            }
            if has(v, PageFlags::ERROR) {
                v = mv(v, PageFlags::ERROR, PageFlags::SLUB_DEBUG);
            }
        }
        if v & (PageFlags::RECLAIM | PageFlags::WRITEBACK).bits() == PageFlags::RECLAIM.bits() {
            v = mv(v, PageFlags::RECLAIM, PageFlags::READAHEAD);
        }
        if pme.soft_dirty() {
            v |= PageFlags::SOFTDIRTY.bits();
        }
        if pme.file_shared() {
            v |= PageFlags::FILE.bits();
        }
        if pme.swapped() {
            v |= PageFlags::SWAP.bits();
        }
        if pme.exclusive() {
            v |= PageFlags::MMAP_EXCLUSIVE.bits();
        }
        PageFlags::from_bits_retain(v)
    }

    /// The 45-character symbolic string: one letter per named bit, `_` where it is clear.
    /// Unnamed bits are not shown (see [`PageFlags::first_unnamed_bit`]).
    pub fn symbolic(self) -> String {
        FLAG_NAMES
            .iter()
            .map(|n| if self.has_bit(n.bit) { n.letter } else { '_' })
            .collect()
    }

    /// The long names of the set named bits, joined with `,` (empty for no bits).
    pub fn long_names(self) -> String {
        self.names().collect::<Vec<_>>().join(",")
    }

    /// The names of every set bit in ascending order: page-types' long name where it has one,
    /// `bitN` otherwise (pgtool never fails on a bit it does not know).
    pub fn names(self) -> impl Iterator<Item = std::borrow::Cow<'static, str>> {
        (0..64u32)
            .filter(move |&b| self.has_bit(b))
            .map(|b| match flag_name(b) {
                Some(n) => std::borrow::Cow::Borrowed(n.name),
                None => std::borrow::Cow::Owned(format!("bit{b}")),
            })
    }

    /// The one decoding of a raw word for every pgtool listing (v2p, who, hwpoison, idle,
    /// `types --json`): overloaded bits moved to their own names as page-types `-r` does
    /// (`anon_exclusive`, `readahead`, `slub_frozen`...), plus the bits of the page's pagemap
    /// entry when it is known. The page-types drop-in keeps its own views.
    pub fn listing_names(self, pme: Option<PagemapEntry>) -> Vec<String> {
        self.expand_overloaded(pme.unwrap_or(PagemapEntry::from_raw(0)))
            .names()
            .map(|c| c.into_owned())
            .collect()
    }

    /// True for the head or a tail of a compound page (THP, hugetlb, slab, ...).
    pub fn is_compound(self) -> bool {
        self.intersects(PageFlags::COMPOUND_HEAD | PageFlags::COMPOUND_TAIL)
    }
}

impl Serialize for PageFlags {
    /// Serialized as the array of names, e.g. `["lru","active"]`; `flags_raw` carries the number.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_letters_match_columns() {
        assert!(FLAG_NAMES.windows(2).all(|w| w[0].bit < w[1].bit));
        for n in FLAG_NAMES {
            let s = PageFlags::from_bits_retain(1 << n.bit).symbolic();
            assert_eq!(s.len(), 45);
            assert_eq!(
                s.chars().filter(|&c| c != '_').collect::<String>(),
                n.letter.to_string()
            );
        }
    }

    #[test]
    fn well_known_hides_hacker_and_thp_compound_bits() {
        let thp_head = PageFlags::COMPOUND_HEAD | PageFlags::THP | PageFlags::RESERVED;
        assert_eq!(thp_head.well_known(), PageFlags::THP);
        let huge = PageFlags::COMPOUND_TAIL | PageFlags::HUGE;
        assert_eq!(huge.well_known(), huge);
        let unnamed = PageFlags::from_bits_retain(1 << 27 | 1 << 55);
        assert_eq!(unnamed.well_known(), unnamed);
    }

    #[test]
    fn raw_expansion_moves_overloaded_bits() {
        let none = PagemapEntry::from_raw(0);
        let f = PageFlags::ANON | PageFlags::MAPPEDTODISK;
        assert_eq!(
            f.expand_overloaded(none),
            PageFlags::ANON | PageFlags::ANON_EXCLUSIVE
        );
        // destination already set: XOR clears both
        let f = PageFlags::ANON | PageFlags::MAPPEDTODISK | PageFlags::ANON_EXCLUSIVE;
        assert_eq!(f.expand_overloaded(none), PageFlags::ANON);
        let f = PageFlags::SLAB | PageFlags::ACTIVE | PageFlags::ERROR | PageFlags::PRIVATE;
        assert_eq!(
            f.expand_overloaded(none),
            PageFlags::SLAB | PageFlags::SLUB_FROZEN | PageFlags::SLUB_DEBUG | PageFlags::SLOB_FREE
        );
        assert_eq!(
            PageFlags::RECLAIM.expand_overloaded(none),
            PageFlags::READAHEAD
        );
        let wb = PageFlags::RECLAIM | PageFlags::WRITEBACK;
        assert_eq!(wb.expand_overloaded(none), wb);
        let pme = PagemapEntry::from_raw(1 << 63 | 1 << 61 | 1 << 56 | 1 << 55 | 7);
        assert_eq!(
            PageFlags::empty().expand_overloaded(pme),
            PageFlags::FILE | PageFlags::MMAP_EXCLUSIVE | PageFlags::SOFTDIRTY
        );
    }

    #[test]
    fn names_and_unknown_bits() {
        let f = PageFlags::from_bits_retain(1 << 42 | 1 << 5);
        assert_eq!(f.first_unnamed_bit(), Some(42));
        assert_eq!(f.names().collect::<Vec<_>>(), vec!["lru", "bit42"]);
        assert_eq!(
            serde_json::to_string(&f).ok().as_deref(),
            Some(r#"["lru","bit42"]"#)
        );
        assert_eq!(PageFlags::empty().long_names(), "");
    }
}
