//! v2p's fields: which keys a listing prints ([`Fields`]), what they cost to read ([`Needs`]),
//! and the record the output layer renders ([`Projected`]).

use super::PageRecord;
use crate::output::Record;
use serde::ser::{Serialize, SerializeStruct, Serializer};

macro_rules! fields {
    ($($v:ident = $name:literal: $doc:literal,)*) => {
        /// One key of a v2p record (`--fields`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Field {
            $(#[doc = $doc] $v,)*
        }
        impl Field {
            /// Every field, in the record's order.
            pub const ALL: &'static [Field] = &[$(Field::$v,)*];
            /// Every field's name, in the record's order.
            pub const NAMES: &'static [&'static str] = &[$($name,)*];
            /// The key in JSON, CSV and table headers.
            pub fn name(self) -> &'static str {
                match self { $(Field::$v => $name,)* }
            }
        }
    };
}

fields! {
    Pid = "pid": "The process.",
    Vaddr = "vaddr": "The address (the first page of a range keeps its offset).",
    Pages = "pages": "Pages the record stands for (1, or a collapsed run's length).",
    State = "state": "present, swapped, guard or none.",
    Present = "present": "Pagemap bit 63.",
    Swapped = "swapped": "Pagemap bit 62.",
    Pfn = "pfn": "The page frame number.",
    LastPfn = "last_pfn": "The PFN of a run's last page.",
    PhysAddr = "phys_addr": "The physical address.",
    SoftDirty = "soft_dirty": "Pagemap bit 55.",
    Exclusive = "exclusive": "Pagemap bit 56 (mapped by this process only).",
    UffdWp = "uffd_wp": "Pagemap bit 57.",
    FileShared = "file_shared": "Pagemap bit 61 (file page or shared anonymous).",
    Guard = "guard": "Pagemap bit 58 (guard region, Linux >= 6.15).",
    SwapType = "swap_type": "Swap type of a swapped page.",
    SwapOffset = "swap_offset": "Swap offset of a swapped page.",
    Kpagecount = "kpagecount": "/proc/kpagecount: how many times the page is mapped.",
    Flags = "flags": "Names of the kpageflags bits (with the pagemap bits).",
    FlagsRaw = "flags_raw": "The kpageflags word (with flags_raw_hex).",
    MemcgIno = "memcg_ino": "/proc/kpagecgroup: the memcg's inode.",
    MemcgPath = "memcg_path": "The cgroup directory of that inode.",
    Iomem = "iomem": "The /proc/iomem regions holding the physical address.",
    HeadPfn = "head_pfn": "A compound page's head PFN.",
    FolioPages = "folio_pages": "A compound page's size in pages.",
    PagemapRaw = "pagemap_raw": "The pagemap word (with pagemap_raw_hex).",
    Vma = "vma": "The mapping: start, end, perms, path.",
}

impl Field {
    /// The field named `s` (a key of the record; `flags_raw_hex` and `pagemap_raw_hex` name
    /// their raw words, which always travel with them).
    pub fn from_name(s: &str) -> Option<Field> {
        let s = s.trim();
        let s = s.strip_suffix("_hex").unwrap_or(s);
        Field::ALL.iter().copied().find(|f| f.name() == s)
    }
}

/// The keys a listing prints, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    list: Vec<Field>,
}

impl Fields {
    /// The given fields in the given order, repeats dropped.
    pub fn new(list: impl IntoIterator<Item = Field>) -> Fields {
        let mut v: Vec<Field> = Vec::new();
        for f in list {
            if !v.contains(&f) {
                v.push(f);
            }
        }
        Fields { list: v }
    }

    /// Every fact of a page: the whole record (`--fields all`; the single-address block).
    pub fn all() -> Fields {
        Fields::new(
            Field::ALL
                .iter()
                .copied()
                .filter(|f| !matches!(f, Field::Pages | Field::LastPfn | Field::State)),
        )
    }

    /// One record per page in JSON and CSV: what pagemap and kpageflags say (as page-types
    /// -L reads). kpagecount, memcg and iomem cost the kernel work per page and make the
    /// records a third longer: they come with `--fields`.
    pub fn page_default() -> Fields {
        use Field::*;
        Fields::new(
            Fields::all()
                .list
                .into_iter()
                .filter(|f| !matches!(f, Kpagecount | MemcgIno | MemcgPath | Iomem)),
        )
    }

    /// The table's columns for collapsed runs: fits 100 columns with the VMA as a group
    /// header; memcg, iomem and the raw words are left to `--fields`, so the table reads
    /// only kpageflags and kpagecount.
    pub fn table_runs() -> Fields {
        use Field::*;
        Fields::new([Vaddr, Pages, State, Pfn, LastPfn, Kpagecount, Flags, Vma])
    }

    /// The table's columns with one row per page.
    pub fn table_each() -> Fields {
        use Field::*;
        Fields::new([Vaddr, State, Pfn, Kpagecount, Flags, Vma])
    }

    /// These fields with what a collapsed run needs to be read right: `pages` after `vaddr`
    /// (first when there is no `vaddr`) and `last_pfn` after `pfn`.
    pub fn with_run_fields(mut self) -> Fields {
        if !self.contains(Field::Pages) {
            let at = self
                .list
                .iter()
                .position(|f| *f == Field::Vaddr)
                .map_or(0, |i| i + 1);
            self.list.insert(at, Field::Pages);
        }
        if !self.contains(Field::LastPfn)
            && let Some(i) = self.list.iter().position(|f| *f == Field::Pfn)
        {
            self.list.insert(i + 1, Field::LastPfn);
        }
        self
    }

    /// These fields with `vma` at the end when missing (a table groups rows by VMA).
    pub fn with_vma(mut self) -> Fields {
        if !self.contains(Field::Vma) {
            self.list.push(Field::Vma);
        }
        self
    }

    /// True when `f` is printed.
    pub fn contains(&self, f: Field) -> bool {
        self.list.contains(&f)
    }

    /// The fields, in order.
    pub fn list(&self) -> &[Field] {
        &self.list
    }

    /// What must be read to print these fields.
    pub fn needs(&self) -> Needs {
        use Field::*;
        let any = |fs: &[Field]| fs.iter().any(|f| self.contains(*f));
        Needs {
            kpageflags: any(&[Flags, FlagsRaw, HeadPfn, FolioPages]),
            names: self.contains(Flags),
            folio: any(&[HeadPfn, FolioPages]),
            kpagecount: self.contains(Kpagecount),
            kpagecgroup: any(&[MemcgIno, MemcgPath]),
            memcg_path: self.contains(MemcgPath),
            iomem: self.contains(Iomem),
        }
    }
}

/// What a translation reads besides pagemap (each costs the kernel work per page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// `/proc/kpageflags` (flags, flags_raw, and the folio).
    pub kpageflags: bool,
    /// The names of the flags.
    pub names: bool,
    /// The folio head and size of compound pages (a few more kpageflags words per folio).
    pub folio: bool,
    /// `/proc/kpagecount`.
    pub kpagecount: bool,
    /// `/proc/kpagecgroup`.
    pub kpagecgroup: bool,
    /// The cgroup path of each memcg inode (walks the cgroup hierarchy once).
    pub memcg_path: bool,
    /// `/proc/iomem`.
    pub iomem: bool,
}

impl Default for Needs {
    /// Everything.
    fn default() -> Needs {
        Needs {
            kpageflags: true,
            names: true,
            folio: true,
            kpagecount: true,
            kpagecgroup: true,
            memcg_path: true,
            iomem: true,
        }
    }
}

/// A [`PageRecord`] as printed: the chosen [`Fields`] in order. Raw words (`flags_raw`,
/// `pagemap_raw`) bring their `_hex` string along in JSON and CSV (JSON readers round
/// integers above 2^53); tables show the raw words in hex already and skip the companions.
pub struct Projected<'a> {
    /// The page (or run).
    pub rec: &'a PageRecord<'a>,
    /// What to print.
    pub fields: &'a Fields,
    /// Rendering for a table (no `_hex` companions).
    pub table: bool,
}

impl Serialize for Projected<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.rec;
        let e = r.entry;
        // a struct, not a map: its keys are static names, which JSON writers copy unescaped
        let mut m = s.serialize_struct("PageRecord", self.fields.list().len() + 2)?;
        for f in self.fields.list() {
            let k = f.name();
            match f {
                Field::Pid => m.serialize_field(k, &r.pid)?,
                Field::Vaddr => m.serialize_field(k, &r.vaddr)?,
                Field::Pages => m.serialize_field(k, &r.pages)?,
                Field::State => m.serialize_field(k, r.state())?,
                Field::Present => m.serialize_field(k, &e.present())?,
                Field::Swapped => m.serialize_field(k, &e.swapped())?,
                Field::Pfn => m.serialize_field(k, &r.pfn)?,
                Field::LastPfn => m.serialize_field(k, &r.last_pfn)?,
                Field::PhysAddr => m.serialize_field(k, &r.phys_addr)?,
                Field::SoftDirty => m.serialize_field(k, &e.soft_dirty())?,
                Field::Exclusive => m.serialize_field(k, &e.exclusive())?,
                Field::UffdWp => m.serialize_field(k, &e.uffd_wp())?,
                Field::FileShared => m.serialize_field(k, &e.file_shared())?,
                Field::Guard => m.serialize_field(k, &e.guard())?,
                Field::SwapType => m.serialize_field(k, &e.swap_type())?,
                Field::SwapOffset => m.serialize_field(k, &e.swap_offset())?,
                Field::Kpagecount => m.serialize_field(k, &r.kpagecount)?,
                Field::Flags => m.serialize_field(k, &r.flags)?,
                Field::FlagsRaw => {
                    m.serialize_field(k, &r.flags_raw)?;
                    if !self.table {
                        m.serialize_field("flags_raw_hex", &r.flags_raw.map(Hex))?;
                    }
                }
                Field::MemcgIno => m.serialize_field(k, &r.memcg_ino)?,
                Field::MemcgPath => m.serialize_field(k, &r.memcg_path)?,
                Field::Iomem => m.serialize_field(k, &r.iomem)?,
                Field::HeadPfn => m.serialize_field(k, &r.head_pfn)?,
                Field::FolioPages => m.serialize_field(k, &r.folio_pages)?,
                Field::PagemapRaw => {
                    m.serialize_field(k, &e.raw())?;
                    if !self.table {
                        m.serialize_field("pagemap_raw_hex", &Hex(e.raw()))?;
                    }
                }
                Field::Vma => m.serialize_field(k, &*r.vma)?,
            }
        }
        m.end()
    }
}

/// A raw word's `_hex` string, written as [`crate::output::hex`] does without allocating
/// one `String` per record.
struct Hex(u64);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

impl Record for Projected<'_> {
    const TABLE_GROUP: Option<&'static str> = Some("vma");
}

/// One fact of one page, for the table's block view of single addresses: the page is the
/// group header, then one `field value` row per fact.
#[derive(serde::Serialize)]
pub struct Fact {
    /// The page (its address), printed once as the group header.
    pub page: String,
    /// The field name.
    pub field: String,
    /// Its value as the table renders it.
    pub value: String,
}

impl Record for Fact {
    const TABLE_GROUP: Option<&'static str> = Some("page");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hex_companions_name_their_word() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
        assert_eq!(Field::from_name("flags_raw_hex"), Some(Field::FlagsRaw));
        assert_eq!(Field::from_name("nosuch"), None);
        assert_eq!(Field::NAMES.len(), Field::ALL.len());
    }

    #[test]
    fn needs_follow_the_fields() {
        let n = Fields::table_runs().needs();
        assert!(n.kpageflags && n.kpagecount && !n.kpagecgroup && !n.iomem && !n.memcg_path);
        let n = Fields::new([Field::Vaddr, Field::Pfn]).needs();
        assert!(!n.kpageflags && !n.kpagecount && !n.kpagecgroup);
        let n = Fields::new([Field::MemcgPath]).needs();
        assert!(n.kpagecgroup && n.memcg_path && !n.kpageflags);
        assert_eq!(Fields::all().needs(), Needs::default());
        let n = Fields::page_default().needs();
        assert!(n.kpageflags && n.folio && !n.kpagecount && !n.kpagecgroup && !n.iomem);
    }

    #[test]
    fn run_fields_go_next_to_their_partners() {
        let f = Fields::new([Field::Pfn, Field::Vaddr, Field::Flags]).with_run_fields();
        assert_eq!(
            f.list(),
            &[
                Field::Pfn,
                Field::LastPfn,
                Field::Vaddr,
                Field::Pages,
                Field::Flags
            ]
        );
        let f = Fields::new([Field::Flags]).with_run_fields();
        assert_eq!(f.list(), &[Field::Pages, Field::Flags]);
    }
}
