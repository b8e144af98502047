//! The records of `pgtool types --json/--csv`, rendered by the output layer's sink: one per
//! listed page or range (`-l`/`-L`) and one per summary row. Field names follow the house
//! vocabulary (`pfn`, `vaddr`, `flags`, `flags_raw` + `flags_raw_hex`, `kpagecount`,
//! `memcg_ino`, `pages`, `*_bytes`); `flags` is decoded by [`PageFlags::listing_names`], as in
//! every other pgtool listing.

use crate::kpageflags::PageFlags;
use crate::output::{Record, hex};
use crate::pagemap::PagemapEntry;
use serde::Serialize;

/// A listed page (`-L`) or run of pages (`-l`) with the same flags.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PageRange {
    /// The first PFN (null for a swapped-out page of `-p`).
    pub pfn: Option<u64>,
    /// The swap offset of a swapped-out page of `-p` (else null).
    pub swap_offset: Option<u64>,
    /// Pages in the run (1 with `-L`).
    pub pages: u64,
    /// The first page's virtual address, with `-p`.
    pub vaddr: Option<u64>,
    /// The first page's offset in the file in bytes, with `-f`.
    pub file_offset: Option<u64>,
    /// The names of the page's flags (overloaded bits decoded, pagemap bits added).
    pub flags: Vec<String>,
    /// The raw kpageflags word.
    pub flags_raw: u64,
    /// `flags_raw` in hex, for JSON readers that round large numbers.
    pub flags_raw_hex: String,
    /// page-types' symbolic flags of the page (its view: well-known flags, or all with -r).
    pub symbolic: String,
    /// kpagecount (page-types' map count), with `-M`.
    pub kpagecount: Option<u64>,
    /// The memcg inode, with `-C`.
    pub memcg_ino: Option<u64>,
}

impl Record for PageRange {}

/// What a listed run holds, before it becomes a [`PageRange`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// PFN, or swap offset when `swap`.
    pub index: u64,
    /// Pages.
    pub count: u64,
    /// page-types' voffset (pages), with `-p` / `-f`.
    pub voffset: u64,
    /// The raw kpageflags word.
    pub raw: u64,
    /// The pagemap entry (0 in a PFN walk).
    pub pme: u64,
    /// page-types' transformed flags.
    pub shown: u64,
    /// kpagecount.
    pub mapcnt: u64,
    /// memcg inode.
    pub cgroup: u64,
    /// A swapped-out page.
    pub swap: bool,
}

/// Which optional columns a listing has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Columns {
    /// `-p`
    pub vaddr: bool,
    /// `-f`
    pub file: bool,
    /// `-M`
    pub mapcnt: bool,
    /// `-C`
    pub cgroup: bool,
}

impl PageRange {
    /// The record of `r`, with `page_size` to turn voffsets into bytes.
    pub fn of(r: &Run, cols: Columns, page_size: u64) -> PageRange {
        let pme = (r.pme != 0).then(|| PagemapEntry::from_raw(r.pme));
        PageRange {
            pfn: (!r.swap).then_some(r.index),
            swap_offset: r.swap.then_some(r.index),
            pages: r.count,
            vaddr: cols.vaddr.then(|| r.voffset.wrapping_mul(page_size)),
            file_offset: cols.file.then(|| r.voffset.wrapping_mul(page_size)),
            flags: PageFlags::from_bits_retain(r.raw).listing_names(pme),
            flags_raw: r.raw,
            flags_raw_hex: hex(r.raw),
            symbolic: PageFlags::from_bits_retain(r.shown).symbolic(),
            kpagecount: cols.mapcnt.then_some(r.mapcnt),
            memcg_ino: cols.cgroup.then_some(r.cgroup),
        }
    }
}

/// A summary row: the pages of one flag set, in page-types' view (well-known flags, or all
/// with `-r`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FlagSet {
    /// The names of the flags.
    pub flags: Vec<String>,
    /// The flags word of the row (page-types' first column).
    pub flags_raw: u64,
    /// `flags_raw` in hex.
    pub flags_raw_hex: String,
    /// page-types' symbolic flags.
    pub symbolic: String,
    /// Pages with these flags.
    pub pages: u64,
    /// Their size in bytes.
    pub size_bytes: u64,
}

impl Record for FlagSet {}

impl FlagSet {
    /// The row of `pages` pages of flags `v`.
    pub fn of(v: u64, pages: u64, page_size: u64) -> FlagSet {
        let f = PageFlags::from_bits_retain(v);
        FlagSet {
            flags: f.names().map(|n| n.into_owned()).collect(),
            flags_raw: v,
            flags_raw_hex: hex(v),
            symbolic: f.symbolic(),
            pages,
            size_bytes: pages.wrapping_mul(page_size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_bits_use_the_listing_names() {
        // anon + mappedtodisk is anon_exclusive, as v2p and who say
        let r = Run {
            raw: 0x4_0000_5828,
            shown: 0x5828,
            count: 1,
            ..Run::default()
        };
        let p = PageRange::of(&r, Columns::default(), 4096);
        assert!(
            p.flags.iter().any(|n| n == "anon_exclusive"),
            "{:?}",
            p.flags
        );
        assert!(
            !p.flags.iter().any(|n| n == "mappedtodisk"),
            "{:?}",
            p.flags
        );
        assert_eq!(p.flags_raw_hex, "0x400005828");
        assert_eq!((p.vaddr, p.kpagecount), (None, None));
    }
}
