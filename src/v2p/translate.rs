//! The translation pipeline: per batch of pages, one pagemap read, one gather per kpage file
//! the [`Needs`] ask for, then the records, borrowing names and paths from bounded caches.

use super::{AddrSpec, BATCH_PAGES, KERNEL_START, Needs, PageRecord, VmaInfo};
use crate::addr::{VirtAddr, page_shift, page_size};
use crate::cgroup::CgroupIndex;
use crate::error::{Error, PFN_HIDDEN, Result};
use crate::folio::FolioCache;
use crate::iomem::Iomem;
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::{self, Vma};
use crate::pagemap::{Pagemap, PagemapEntry};
use crate::root::SysRoot;
use std::borrow::Cow;
use std::collections::HashMap;

/// The pagemap bits [`PageFlags::listing_names`] adds to the names: soft-dirty (55),
/// exclusive (56), file/shared (61), swapped (62).
const NAME_PME_BITS: u64 = (1 << 55) | (1 << 56) | (1 << 61) | (1 << 62);

/// Entries kept in each cache before it is emptied (bounds memory on pathological inputs).
const CACHE_MAX: usize = 4096;

/// Translates addresses of one process; keeps the open files and caches between specs.
pub struct Translator {
    root: SysRoot,
    pid: u32,
    vmas: Vec<Vma>,
    pagemap: Pagemap,
    needs: Needs,
    kpage: [KpageSlot; 3],
    folios: FolioCache,
    names: HashMap<(u64, u64), Vec<String>>,
    cgroups: Option<Option<CgroupIndex>>,
    memcg_paths: HashMap<u64, Option<String>>,
    iomem: Option<Option<IomemMap>>,
    notes: Vec<String>,
    pfn_hidden: bool,
    short_noted: [bool; 3],
    entries: Vec<u64>,
}

enum KpageSlot {
    Unopened,
    Open(U64File),
    Failed,
}

/// `/proc/iomem` cut into disjoint spans, each with its description: one binary search per
/// page instead of a walk of the region tree.
struct IomemMap {
    /// `[start, end)` and the regions holding it, outermost first.
    spans: Vec<(u64, u64, Option<String>)>,
}

impl IomemMap {
    fn new(io: &Iomem) -> IomemMap {
        let mut cuts: Vec<u64> = io
            .regions
            .iter()
            .flat_map(|r| [r.start, r.end.saturating_add(1)])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let spans = cuts
            .windows(2)
            .map(|w| (w[0], w[1], io.describe(w[0])))
            .filter(|s| s.2.is_some())
            .collect();
        IomemMap { spans }
    }

    fn describe(&self, addr: u64) -> Option<&str> {
        let i = self.spans.partition_point(|s| s.1 <= addr);
        self.spans
            .get(i)
            .filter(|s| s.0 <= addr)
            .and_then(|s| s.2.as_deref())
    }
}

impl Translator {
    /// Open the maps and pagemap of `pid` under `root`; everything is read ([`Needs`]'s
    /// default) until [`Translator::set_needs`] says otherwise.
    pub fn new(root: &SysRoot, pid: u32) -> Result<Translator> {
        if !root.is_live() && !root.proc().is_dir() {
            return Err(Error::io_hint(
                root.proc(),
                std::io::Error::from_raw_os_error(libc::ENOENT),
                "--root DIR must hold proc/ as `pgtool snapshot DIR` writes it",
            ));
        }
        if !root.pid_dir(pid).is_dir() {
            return Err(Error::NoSuchProcess { pid });
        }
        let vmas = maps::read_maps(root, pid)?;
        let pm_path = root.pid_file(pid, "pagemap");
        if !root.is_live() && !pm_path.exists() {
            let dir = root.snapshot_dir().map(|d| d.display().to_string());
            return Err(Error::io_hint(
                &pm_path,
                std::io::Error::from_raw_os_error(libc::ENOENT),
                format!(
                    "the snapshot has no pagemap for {pid}: save it with `pgtool snapshot {} --pid {pid}`",
                    dir.unwrap_or_default()
                ),
            ));
        }
        let pagemap = Pagemap::open(root, pid)?;
        Ok(Translator {
            root: root.clone(),
            pid,
            vmas,
            pagemap,
            needs: Needs::default(),
            kpage: [
                KpageSlot::Unopened,
                KpageSlot::Unopened,
                KpageSlot::Unopened,
            ],
            folios: FolioCache::new(),
            names: HashMap::new(),
            cgroups: None,
            memcg_paths: HashMap::new(),
            iomem: None,
            notes: Vec::new(),
            pfn_hidden: false,
            short_noted: [false; 3],
            entries: Vec::with_capacity(BATCH_PAGES),
        })
    }

    /// Read only what `needs` asks for; the rest of each record is `None`.
    pub fn set_needs(&mut self, needs: Needs) {
        self.needs = needs;
    }

    /// The process's mappings.
    pub fn vmas(&self) -> &[Vma] {
        &self.vmas
    }

    /// Things worth telling the user once (PFNs hidden, a kpage file unreadable, iomem
    /// addresses hidden), in the order met.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// True when some present page's PFN read as 0 (reader lacks CAP_SYS_ADMIN).
    pub fn pfn_hidden(&self) -> bool {
        self.pfn_hidden
    }

    /// The mappings whose name matches (see [`Vma::matches_name`]), as specs.
    pub fn vma_specs(&self, name: &str) -> Result<Vec<AddrSpec>> {
        let v: Vec<AddrSpec> = self
            .vmas
            .iter()
            .filter(|v| v.matches_name(name) && !v.is_empty())
            .map(|v| AddrSpec {
                start: v.start.0,
                end: v.end.0,
                single: false,
            })
            .collect();
        if v.is_empty() {
            return Err(Error::NotFound(format!(
                "no mapping of {} matches {} (see {})",
                self.pid,
                crate::input::quote(name),
                self.root.pid_file(self.pid, "maps").display()
            )));
        }
        Ok(v)
    }

    /// Translate every page of `spec`, calling `f` per page in address order, one batch of
    /// [`BATCH_PAGES`] at a time (memory is bounded by the batch, whatever the range). An
    /// address (or a range) no mapping covers is [`Error::NotMapped`]; pages in holes inside a
    /// range are skipped. A pagemap that ends before a user-space address (a truncated
    /// snapshot) is an error, never "not present".
    pub fn translate(
        &mut self,
        spec: &AddrSpec,
        mut f: impl FnMut(&PageRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        let first = self.vmas.partition_point(|v| v.end.0 <= spec.start);
        let pieces: Vec<(u64, u64, usize)> = self.vmas[first..]
            .iter()
            .enumerate()
            .take_while(|(_, v)| v.start.0 < spec.end)
            .map(|(i, v)| (spec.start.max(v.start.0), spec.end.min(v.end.0), first + i))
            .collect();
        if pieces.is_empty() {
            if spec.start >= KERNEL_START {
                return Err(Error::Usage(format!(
                    "address {:#x} is a kernel address: v2p translates user-space addresses of a \
                     process (user space ends below {KERNEL_START:#x})",
                    spec.start
                )));
            }
            return Err(Error::NotMapped {
                pid: self.pid,
                addr: spec.start,
            });
        }
        let ps = page_size();
        for (start, end, vi) in pieces {
            let vma = VmaInfo::from(&self.vmas[vi]);
            let end_vpn = end.div_ceil(ps);
            let mut vpn = VirtAddr(start).vpn();
            while vpn < end_vpn {
                let stop = (vpn + BATCH_PAGES as u64).min(end_vpn);
                let cut = self.read_batch(vpn, stop)?;
                self.process_batch(vpn, start, &vma, &mut f)?;
                if let Some(e) = cut {
                    return Err(e);
                }
                vpn = stop;
            }
        }
        Ok(())
    }

    /// The pagemap words of pages `vpn..stop` into `self.entries`. A file that ends before a
    /// user-space page leaves the entries read and returns the error to give after them.
    fn read_batch(&mut self, vpn: u64, stop: u64) -> Result<Option<Error>> {
        let ps = page_size();
        let entries = &mut self.entries;
        entries.clear();
        self.pagemap.for_each_batch(
            VirtAddr(vpn * ps)..VirtAddr(stop.saturating_mul(ps)),
            BATCH_PAGES,
            |_, es| {
                entries.extend(es.iter().map(|e| e.raw()));
                Ok(())
            },
        )?;
        let got = entries.len() as u64;
        if got < stop - vpn {
            let missing = (vpn + got) * ps;
            // Past the end of user space (e.g. [vsyscall]) the kernel returns no entries.
            if missing < KERNEL_START {
                let why = if self.root.is_live() {
                    "the kernel returned fewer entries than asked".to_string()
                } else {
                    "the snapshot's pagemap is truncated: save it again with `pgtool snapshot`"
                        .to_string()
                };
                return Ok(Some(Error::io_hint(
                    self.pagemap.path(),
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                    format!(
                        "it ends at page {:#x}, before address {missing:#x} of {}: {why}",
                        vpn + got,
                        self.pid
                    ),
                )));
            }
            entries.resize((stop - vpn) as usize, 0);
        }
        Ok(None)
    }

    fn process_batch(
        &mut self,
        first_vpn: u64,
        start: u64,
        vma: &VmaInfo,
        f: &mut impl FnMut(&PageRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        let entries = std::mem::take(&mut self.entries);
        let pfns: Vec<u64> = entries
            .iter()
            .filter_map(|&w| PagemapEntry::from_raw(w).pfn())
            .map(|p| p.0)
            .collect();
        if !self.pfn_hidden
            && entries
                .iter()
                .any(|&w| PagemapEntry::from_raw(w).pfn_hidden())
        {
            self.pfn_hidden = true;
            self.notes.push(format!(
                "{}: {PFN_HIDDEN}; pfn, flags, kpagecount, memcg and iomem are unknown",
                self.pagemap.path().display()
            ));
        }
        let n = self.needs;
        let gathered = |t: &mut Self, which, on: bool| -> Result<Option<Vec<Option<u64>>>> {
            if on && !pfns.is_empty() {
                t.gather(which, &pfns)
            } else {
                Ok(None)
            }
        };
        let flags = gathered(self, KpageFile::Flags, n.kpageflags)?;
        let counts = gathered(self, KpageFile::Count, n.kpagecount)?;
        let cgroups = gathered(self, KpageFile::Cgroup, n.kpagecgroup)?;
        let at = |v: &Option<Vec<Option<u64>>>, k: usize| v.as_ref().and_then(|v| v[k]);

        // Pass 1: fill the caches the records borrow from, and resolve folios.
        if self.names.len() > CACHE_MAX {
            self.names.clear();
        }
        if self.memcg_paths.len() > CACHE_MAX {
            self.memcg_paths.clear();
        }
        let mut folios: Vec<Option<(u64, u64)>> = Vec::new();
        let mut k = 0;
        for &w in &entries {
            let e = PagemapEntry::from_raw(w);
            let Some(pfn) = e.pfn() else { continue };
            if let Some(raw) = at(&flags, k) {
                if n.names {
                    self.names
                        .entry((raw, w & NAME_PME_BITS))
                        .or_insert_with(|| PageFlags::from_bits_retain(raw).listing_names(Some(e)));
                }
                if n.folio {
                    folios.resize(k, None);
                    folios.push(self.folio_of(pfn.0, PageFlags::from_bits_retain(raw))?);
                }
            }
            if n.memcg_path
                && let Some(ino) = at(&cgroups, k).filter(|i| *i != 0)
                && !self.memcg_paths.contains_key(&ino)
            {
                let p = self.cgroup_path(ino);
                self.memcg_paths.insert(ino, p);
            }
            k += 1;
        }
        if n.iomem && k > 0 {
            self.load_iomem();
        }

        // Pass 2: the records.
        let (shift, mask, ps) = (page_shift(), page_size() - 1, page_size());
        let names = &self.names;
        let memcg_paths = &self.memcg_paths;
        let iomem = self.iomem.as_ref().and_then(|i| i.as_ref());
        let mut k = 0;
        for (i, &w) in entries.iter().enumerate() {
            let e = PagemapEntry::from_raw(w);
            let vaddr = ((first_vpn + i as u64) * ps).max(start);
            let mut rec = PageRecord {
                pid: self.pid,
                vaddr,
                pages: 1,
                entry: e,
                pfn: None,
                last_pfn: None,
                phys_addr: None,
                kpagecount: None,
                flags_raw: None,
                flags: None,
                memcg_ino: None,
                memcg_path: None,
                iomem: None,
                head_pfn: None,
                folio_pages: None,
                vma: Cow::Borrowed(vma),
            };
            if let Some(pfn) = e.pfn() {
                // A 55-bit PFN field can exceed 64-bit physical addresses only in a corrupt
                // file; leave phys_addr unknown then rather than wrap.
                let phys = (pfn.0 < 1 << (64 - shift)).then(|| (pfn.0 << shift) | (vaddr & mask));
                rec.pfn = Some(pfn.0);
                rec.last_pfn = Some(pfn.0);
                rec.phys_addr = phys;
                rec.kpagecount = at(&counts, k);
                rec.memcg_ino = at(&cgroups, k);
                rec.flags_raw = at(&flags, k);
                if let Some(raw) = rec.flags_raw {
                    rec.flags = names
                        .get(&(raw, w & NAME_PME_BITS))
                        .map(|v| Cow::Borrowed(v.as_slice()));
                }
                if let Some(Some((head, pages))) = folios.get(k) {
                    rec.head_pfn = Some(*head);
                    rec.folio_pages = Some(*pages);
                }
                if let Some(ino) = rec.memcg_ino.filter(|i| *i != 0) {
                    rec.memcg_path = memcg_paths
                        .get(&ino)
                        .and_then(|p| p.as_deref())
                        .map(Cow::Borrowed);
                }
                rec.iomem = iomem
                    .zip(phys)
                    .and_then(|(m, p)| m.describe(p))
                    .map(Cow::Borrowed);
                k += 1;
            }
            f(&rec)?;
        }
        self.entries = entries;
        Ok(())
    }

    fn slot(which: KpageFile) -> usize {
        match which {
            KpageFile::Flags => 0,
            KpageFile::Count => 1,
            KpageFile::Cgroup => 2,
        }
    }

    fn file(&mut self, which: KpageFile) -> Option<&U64File> {
        let i = Self::slot(which);
        if matches!(self.kpage[i], KpageSlot::Unopened) {
            self.kpage[i] = match U64File::open_kpage(&self.root, which) {
                Ok(f) => KpageSlot::Open(f),
                Err(e) => {
                    self.notes.push(format!("{e}; {} unknown", field_of(which)));
                    KpageSlot::Failed
                }
            };
        }
        match &self.kpage[i] {
            KpageSlot::Open(f) => Some(f),
            _ => None,
        }
    }

    fn gather(&mut self, which: KpageFile, pfns: &[u64]) -> Result<Option<Vec<Option<u64>>>> {
        let Some(file) = self.file(which) else {
            return Ok(None);
        };
        match file.gather_gap(pfns, which.gather_gap()) {
            Ok(v) => {
                if !self.root.is_live()
                    && let Some(i) = v.iter().position(Option::is_none)
                {
                    self.note_short(which, pfns[i]);
                }
                Ok(Some(v))
            }
            Err(e @ Error::Truncated { .. }) => Err(e),
            Err(e) => {
                self.notes.push(format!("{e}; {} unknown", field_of(which)));
                self.kpage[Self::slot(which)] = KpageSlot::Failed;
                Ok(None)
            }
        }
    }

    /// A snapshot's kpage file that ends before a PFN its pagemap names: say so once.
    fn note_short(&mut self, which: KpageFile, pfn: u64) {
        let i = Self::slot(which);
        if self.short_noted[i] {
            return;
        }
        self.short_noted[i] = true;
        self.notes.push(format!(
            "{}: ends before PFN {pfn:#x} of {}'s pagemap (device memory, or a truncated \
             snapshot); {} unknown there",
            which.path(&self.root).display(),
            self.pid,
            field_of(which)
        ));
    }

    /// The head PFN and size of the compound page holding `pfn` (the one folio resolver).
    fn folio_of(&mut self, pfn: u64, flags: PageFlags) -> Result<Option<(u64, u64)>> {
        if !flags.is_compound() || self.file(KpageFile::Flags).is_none() {
            return Ok(None);
        }
        let KpageSlot::Open(file) = &self.kpage[Self::slot(KpageFile::Flags)] else {
            return Ok(None);
        };
        Ok(self
            .folios
            .folio_of(file, crate::addr::Pfn(pfn), flags)?
            .map(|f| (f.head.0, f.pages)))
    }

    fn cgroup_path(&mut self, ino: u64) -> Option<String> {
        if self.cgroups.is_none() {
            self.cgroups = Some(match CgroupIndex::build(&self.root) {
                Ok(i) => Some(i),
                Err(e) => {
                    self.notes.push(format!("{e}; memcg_path unknown"));
                    None
                }
            });
        }
        self.cgroups
            .as_ref()
            .and_then(|c| c.as_ref())
            .and_then(|c| c.path_of(ino))
            .map(|p| p.display().to_string())
    }

    fn load_iomem(&mut self) {
        if self.iomem.is_some() {
            return;
        }
        self.iomem = Some(match Iomem::read(&self.root) {
            Ok(io) if io.addresses_hidden() => {
                self.notes.push(format!(
                    "{}: addresses read as 0 ({}); iomem unknown",
                    self.root.iomem().display(),
                    crate::error::NEEDS_ROOT
                ));
                None
            }
            Ok(io) => Some(IomemMap::new(&io)),
            Err(e) => {
                self.notes.push(format!("{e}; iomem unknown"));
                None
            }
        });
    }
}

fn field_of(which: KpageFile) -> &'static str {
    match which {
        KpageFile::Flags => "flags",
        KpageFile::Count => "kpagecount",
        KpageFile::Cgroup => "memcg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iomem_spans_describe_as_the_tree_does() {
        let text = "00000000-00000fff : Reserved\n00001000-003fffff : System RAM\n  \
                    00100000-001fffff : Kernel code\n00400000-004fffff : PCI Bus 0000:00\n";
        let io = Iomem::parse(text, std::path::Path::new("iomem")).expect("parse");
        let m = IomemMap::new(&io);
        for a in [
            0,
            0xfff,
            0x1000,
            0xfffff,
            0x100000,
            0x1fffff,
            0x200000,
            0x3fffff,
            0x400000,
            0x4fffff,
            0x500000,
            u64::MAX,
        ] {
            assert_eq!(m.describe(a), io.describe(a).as_deref(), "{a:#x}");
        }
    }
}
