//! The rows of the `who` listing ([`WhoRecord`]), in the vocabulary of [`crate::output`].

use super::{Mapping, Report, Target};
use crate::cgroup::CgroupIndex;
use crate::folio::FolioKind;
use crate::output::{Record, hex};
use serde::Serialize;

/// The mapping a row is about (all `null` for a PFN nobody maps). Always an object, so the
/// CSV header is the same whatever the first row is.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VmaRecord<'a> {
    /// First address of the mapping.
    pub start: Option<u64>,
    /// One past its last address.
    pub end: Option<u64>,
    /// `rwxp` permissions as in maps.
    pub perms: Option<&'a str>,
    /// The file, `[heap]`, `[stack]`, `[anon]`...
    pub path: Option<&'a str>,
}

/// The folio of the PFN (all `null` for a small page): the same fields as
/// [`crate::folio::Folio`] serializes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FolioRecord {
    /// The head page.
    pub head_pfn: Option<u64>,
    /// Pages in the folio.
    pub pages: Option<u64>,
    /// log2(pages).
    pub order: Option<u32>,
    /// `thp`, `hugetlb`, `slab` or `compound`.
    pub kind: Option<FolioKind>,
}

/// One row of `pgtool who`: a process mapping (a page of the folio of) `pfn`, or, for a PFN no
/// process maps, one row with the process fields `null` and a `note`.
#[derive(Clone, Debug, Serialize)]
pub struct WhoRecord<'a> {
    /// The PFN asked about.
    pub pfn: u64,
    /// The process.
    pub pid: Option<u32>,
    /// Its command name.
    pub comm: Option<&'a str>,
    /// Where it maps the PFN (or the first page of the run of its folio it maps).
    pub vaddr: Option<u64>,
    /// The mapping holding `vaddr`.
    pub vma: VmaRecord<'a>,
    /// Pagemap bit 56: mapped by this process only.
    pub exclusive: Option<bool>,
    /// Index in the folio of the page mapped at `vaddr` (`null` for a small page).
    pub subpage: Option<u64>,
    /// The PFN mapped at `vaddr`: `pfn` itself or another page of its folio.
    pub mapped_pfn: Option<u64>,
    /// Consecutive folio pages mapped from `vaddr` on.
    pub pages: Option<u64>,
    /// Lowest PID sharing this address space.
    pub mm: Option<u32>,
    /// The folio holding `pfn`.
    pub folio: FolioRecord,
    /// kpagecount (`null` past the end of memory).
    pub kpagecount: Option<u64>,
    /// Flag names ([`crate::kpageflags::PageFlags::listing_names`]).
    pub flags: &'a [String],
    /// The kpageflags word.
    pub flags_raw: Option<u64>,
    /// `flags_raw` as a `0x` hex string (exact in every JSON reader).
    pub flags_raw_hex: Option<&'a str>,
    /// kpagecgroup: the memcg's inode (0: uncharged; `null` when unreadable).
    pub memcg_ino: Option<u64>,
    /// That memcg's path (`null` when uncharged, unknown or deleted).
    pub memcg_path: Option<&'a str>,
    /// Why mappings are missing, or what an unmapped page is.
    pub note: Option<&'a str>,
}

impl Record for WhoRecord<'_> {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "pfn",
        "pid",
        "comm",
        "vaddr",
        "subpage",
        "vma_path",
        "kpagecount",
        "flags",
    ];
}

/// What every row of one target shares, computed once per target (the rows borrow it: a
/// lookup of many PFNs prints thousands of rows).
#[derive(Clone, Debug)]
pub struct TargetFacts {
    /// Flag names.
    pub flags: Vec<String>,
    /// The kpageflags word in `0x` hex (`None` past the end of memory).
    pub flags_raw_hex: Option<String>,
    /// The memcg path.
    pub memcg_path: Option<String>,
    /// The notes joined with `; `.
    pub note: Option<String>,
}

impl Report {
    /// The per-target facts of target `i`; `cgroups` resolves memcg inodes to paths.
    pub fn facts(&self, i: usize, cgroups: Option<&CgroupIndex>) -> TargetFacts {
        let t = &self.targets[i];
        let notes = self.notes(i);
        TargetFacts {
            flags: if t.past_end {
                Vec::new()
            } else {
                t.flags.listing_names(None)
            },
            flags_raw_hex: (!t.past_end).then(|| hex(t.flags.raw())),
            memcg_path: t
                .cgroup
                .and_then(|ino| cgroups?.memcg(ino))
                .map(|c| c.path.display().to_string()),
            note: (!notes.is_empty()).then(|| {
                notes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        }
    }

    /// The rows of target `i` (`facts` from [`Report::facts`]): one per mapping, or one
    /// without a process when nobody maps it.
    pub fn records<'a>(
        &'a self,
        i: usize,
        facts: &'a TargetFacts,
    ) -> impl Iterator<Item = WhoRecord<'a>> + 'a {
        let t = &self.targets[i];
        let mut ms = self.mappings_of(i).peekable();
        let none = ms.peek().is_none().then_some(None);
        ms.map(Some).chain(none).map(move |m| record(t, m, facts))
    }
}

fn record<'a>(t: &'a Target, m: Option<&'a Mapping>, facts: &'a TargetFacts) -> WhoRecord<'a> {
    let vma = m.and_then(|m| m.vma.as_ref());
    WhoRecord {
        pfn: t.pfn.0,
        pid: m.map(|m| m.pid),
        comm: m.map(|m| m.comm.as_str()),
        vaddr: m.map(|m| m.vaddr.0),
        vma: VmaRecord {
            start: vma.map(|v| v.start.0),
            end: vma.map(|v| v.end.0),
            perms: vma.map(|v| v.perms.as_str()),
            path: vma.map(|v| v.display_name()),
        },
        exclusive: m.map(|m| m.exclusive),
        subpage: m.and_then(|m| m.subpage),
        mapped_pfn: m.map(|m| m.mapped_pfn.0),
        pages: m.map(|m| m.pages),
        mm: m.map(|m| m.mm),
        folio: t
            .folio
            .map(|f| FolioRecord {
                head_pfn: Some(f.head.0),
                pages: Some(f.pages),
                order: Some(f.order),
                kind: Some(f.kind),
            })
            .unwrap_or_default(),
        kpagecount: (!t.past_end).then_some(t.count),
        flags: &facts.flags,
        flags_raw: (!t.past_end).then_some(t.flags.raw()),
        flags_raw_hex: facts.flags_raw_hex.as_deref(),
        memcg_ino: t.cgroup,
        memcg_path: facts.memcg_path.as_deref(),
        note: facts.note.as_deref(),
    }
}
