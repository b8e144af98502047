//! The SLUB allocator as kernel memory shows it: the `slab_caches` list of `struct kmem_cache`,
//! each slab's head (`struct slab`, or `struct page` before 5.17) at the vmemmap address of its
//! PFN, and free lists, with every offset taken from the running kernel's BTF.
//!
//! Free pointers inside objects are decoded as mm/slub.c's `freelist_ptr()` does (6.1:
//! `ptr ^ s->random ^ swab(ptr_addr)` when CONFIG_SLAB_FREELIST_HARDENED gave the cache a
//! `random` field; the plain pointer otherwise). Every walk is bounded; a list that does not end
//! (it changed under us, or a decoding is wrong) stops with a note, never a hang.

use crate::error::{Error, Result};
use crate::kernel::{Btf, Field, Kallsyms, Kcore};
use crate::root::SysRoot;

/// The most kmem_caches a walk of `slab_caches` follows.
pub const MAX_CACHES: usize = 100_000;
/// The most objects one slab holds (`objects` is a 15-bit field).
pub const MAX_OBJECTS: u64 = 1 << 15;
/// The most struct pages read in one `pread` (64 bytes each: 256 KiB).
const HEAD_BATCH: usize = 4096;
/// x86-64's vmemmap base without CONFIG_DYNAMIC_MEMORY_LAYOUT (4-level paging).
const VMEMMAP_DEFAULT: u64 = 0xffff_ea00_0000_0000;

/// A bitfield (or a whole integer) inside a struct: offset in bits and width.
#[derive(Clone, Copy, Debug)]
struct Bits {
    bit: u64,
    width: u32,
}

impl Bits {
    fn of(f: &Field) -> Bits {
        Bits {
            bit: f.bit_offset,
            width: if f.bitfield_bits > 0 {
                f.bitfield_bits
            } else {
                (f.size.min(8) * 8) as u32
            },
        }
    }
    /// The value in `buf` (the struct's bytes); 0 when out of range.
    fn get(self, buf: &[u8]) -> u64 {
        let byte = (self.bit / 8) as usize;
        let mut w = [0u8; 16];
        let n = buf.len().saturating_sub(byte).min(16);
        if n == 0 {
            return 0;
        }
        w[..n].copy_from_slice(&buf[byte..byte + n]);
        let v = u128::from_le_bytes(w) >> (self.bit % 8);
        let mask = if self.width >= 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        (v as u64) & mask
    }
}

fn word(buf: &[u8], off: u64) -> u64 {
    let o = off as usize;
    buf.get(o..o + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(0)
}

/// Offsets of the fields used, from BTF.
struct Layout {
    kc_size: u64,
    kc_list: u64,
    kc_name: u64,
    kc_obj: Bits,
    kc_size_f: Bits,
    kc_offset: Bits,
    kc_flags: Bits,
    kc_oo: u64,
    kc_random: Option<u64>,
    kc_red_left_pad: Option<Bits>,
    kc_cpu_slab: u64,
    kc_node: u64,
    /// The slab head's type (`slab`, or `page` before 5.17) and its fields.
    head_size: u64,
    s_cache: u64,
    s_freelist: u64,
    s_inuse: Bits,
    s_objects: Bits,
    s_frozen: Bits,
    s_list: u64,
    s_next: Option<u64>,
    c_freelist: u64,
    c_slab: u64,
    c_partial: Option<u64>,
    n_size: u64,
    n_nr_partial: Bits,
    n_nr_slabs: Option<u64>,
    n_total_objects: Option<u64>,
    n_partial: u64,
}

/// One kmem_cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    /// Address of its struct kmem_cache.
    pub addr: u64,
    /// Its name.
    pub name: String,
    /// Bytes per object including metadata (the stride in a slab).
    pub size: u64,
    /// Bytes the user asked for.
    pub object_size: u64,
    /// Offset of the free pointer in a free object.
    pub offset: u64,
    /// SLAB_* flags.
    pub flags: u64,
    /// Page order of a slab (from `oo`).
    pub order: u32,
    /// Objects per slab of that order (from `oo`).
    pub objects_per_slab: u64,
    /// CONFIG_SLAB_FREELIST_HARDENED's per-cache key, when the kernel has it.
    pub random: Option<u64>,
    /// Red zone before each object (SLAB_RED_ZONE), bytes.
    pub red_left_pad: u64,
}

/// A slab's head (`struct slab`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabHead {
    /// Address of the head (in vmemmap).
    pub addr: u64,
    /// Its first PFN.
    pub pfn: u64,
    /// The kmem_cache it belongs to.
    pub cache: u64,
    /// First free object (not obfuscated: a plain pointer in the head).
    pub freelist: u64,
    /// Objects in use as the slab counts them (a CPU slab counts all as in use).
    pub inuse: u64,
    /// Objects in the slab.
    pub objects: u64,
    /// On a CPU (its free objects are on that CPU's freelist).
    pub frozen: bool,
    /// Next slab on a CPU partial list.
    pub next: u64,
}

/// Where a free list walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// A NULL pointer: the list ended.
    Null,
    /// A pointer outside the slab, or not at an object boundary.
    Outside(u64),
    /// More steps than objects: a cycle (the list changed under us).
    Cycle,
    /// Kernel memory could not be read there.
    Unreadable(u64),
}

/// The SLUB allocator of the running kernel.
pub struct Slub {
    /// Types.
    pub btf: Btf,
    /// Memory.
    pub kcore: Kcore,
    /// Symbols.
    pub syms: Kallsyms,
    l: Layout,
    vmemmap: u64,
    page_size: u64,
}

impl Slub {
    /// Open BTF, /proc/kcore and /proc/kallsyms of `root` (root only).
    pub fn open(root: &SysRoot) -> Result<Slub> {
        let btf = Btf::load(root)?;
        let kcore = Kcore::open(root)?;
        let syms = Kallsyms::load(root)?;
        let l = layout(&btf)?;
        let vmemmap = match syms.address_of("vmemmap_base") {
            Some(a) => kcore.read_u64(a)?,
            None => VMEMMAP_DEFAULT,
        };
        Ok(Slub {
            btf,
            kcore,
            syms,
            l,
            vmemmap,
            page_size: crate::page_size(),
        })
    }

    /// The page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The vmemmap address of `pfn`'s struct page.
    pub fn page_addr(&self, pfn: u64) -> u64 {
        self.vmemmap
            .wrapping_add(pfn.wrapping_mul(self.l.head_size))
    }

    /// The PFN of a struct page (or struct slab) address.
    pub fn pfn_of(&self, page: u64) -> Option<u64> {
        let d = page.checked_sub(self.vmemmap)?;
        d.is_multiple_of(self.l.head_size)
            .then_some(d / self.l.head_size)
    }

    /// Every kmem_cache, by walking `slab_caches`.
    pub fn caches(&self) -> Result<Vec<Cache>> {
        let head = self.syms.address_of("slab_caches").ok_or_else(|| {
            Error::NotFound(
                "no symbol slab_caches in /proc/kallsyms (kernel data symbols needed: CONFIG_KALLSYMS_ALL)"
                    .into(),
            )
        })?;
        let mut out = Vec::new();
        let mut cur = self.kcore.read_u64(head)?;
        while cur != head {
            if out.len() >= MAX_CACHES || cur == 0 {
                return Err(Error::NotFound(format!(
                    "the slab_caches list from {head:#x} did not end (it changed under us, or is damaged)"
                )));
            }
            let addr = cur.wrapping_sub(self.l.kc_list);
            out.push(self.read_cache(addr)?);
            cur = self.kcore.read_u64(cur)?;
        }
        Ok(out)
    }

    /// The kmem_cache called `name`.
    pub fn find_cache(&self, name: &str) -> Result<Cache> {
        let all = self.caches()?;
        if let Some(c) = all.iter().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        let mut near: Vec<&str> = all
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| n.contains(name) || name.contains(*n))
            .take(5)
            .collect();
        near.sort_unstable();
        Err(Error::NotFound(format!(
            "no slab cache {name:?} in the kernel's slab_caches list ({} caches{}; /proc/slabinfo lists them)",
            all.len(),
            if near.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", near.join(", "))
            }
        )))
    }

    /// The kmem_cache at `addr`.
    pub fn read_cache(&self, addr: u64) -> Result<Cache> {
        let l = &self.l;
        let mut b = vec![0u8; l.kc_size as usize];
        self.kcore.read_virt(addr, &mut b)?;
        let oo = word(&b, l.kc_oo) & 0xffff_ffff;
        Ok(Cache {
            addr,
            name: self.read_cstr(word(&b, l.kc_name), 64),
            size: l.kc_size_f.get(&b),
            object_size: l.kc_obj.get(&b),
            offset: l.kc_offset.get(&b),
            flags: l.kc_flags.get(&b),
            order: (oo >> 16) as u32,
            objects_per_slab: oo & 0xffff,
            random: l.kc_random.map(|o| word(&b, o)),
            red_left_pad: l.kc_red_left_pad.map_or(0, |f| f.get(&b)),
        })
    }

    /// A NUL-terminated string of at most `max` bytes at `addr` ("?" when unreadable).
    pub fn read_cstr(&self, addr: u64, max: usize) -> String {
        let mut s = vec![0u8; max];
        if self.kcore.read_virt(addr, &mut s).is_err() {
            return "?".into();
        }
        let end = s.iter().position(|&c| c == 0).unwrap_or(max);
        String::from_utf8_lossy(&s[..end]).into_owned()
    }

    fn parse_head(&self, addr: u64, b: &[u8]) -> SlabHead {
        let l = &self.l;
        SlabHead {
            addr,
            pfn: self.pfn_of(addr).unwrap_or(0),
            cache: word(b, l.s_cache),
            freelist: word(b, l.s_freelist),
            inuse: l.s_inuse.get(b),
            objects: l.s_objects.get(b),
            frozen: l.s_frozen.get(b) != 0,
            next: l.s_next.map_or(0, |o| word(b, o)),
        }
    }

    /// The slab head at `addr` (a `struct slab *` as the kernel's lists hold it).
    pub fn read_head(&self, addr: u64) -> Result<SlabHead> {
        let mut b = vec![0u8; self.l.head_size as usize];
        self.kcore.read_virt(addr, &mut b)?;
        Ok(self.parse_head(addr, &b))
    }

    /// The heads of the slabs starting at `pfns` (sorted ascending), consecutive PFNs read
    /// with one `pread`; `f` gets each head. Unreadable ones (memory hot-removed) are skipped.
    pub fn for_each_head(
        &self,
        pfns: &[u64],
        mut f: impl FnMut(SlabHead) -> Result<()>,
    ) -> Result<()> {
        let hs = self.l.head_size as usize;
        let mut buf = Vec::new();
        let mut i = 0;
        while i < pfns.len() {
            let mut j = i + 1;
            while j < pfns.len() && pfns[j] == pfns[j - 1] + 1 && j - i < HEAD_BATCH {
                j += 1;
            }
            buf.resize((j - i) * hs, 0);
            if self
                .kcore
                .read_virt(self.page_addr(pfns[i]), &mut buf)
                .is_ok()
            {
                for (k, pfn) in pfns[i..j].iter().enumerate() {
                    let h = self.parse_head(self.page_addr(*pfn), &buf[k * hs..(k + 1) * hs]);
                    f(h)?;
                }
            }
            i = j;
        }
        Ok(())
    }

    /// The direct-map address of the slab's first object, and the bytes the slab spans.
    pub fn slab_span(&self, cache: &Cache, head: &SlabHead) -> Option<(u64, u64)> {
        let base = self
            .kcore
            .phys_to_virt(head.pfn.checked_mul(self.page_size)?)?;
        let n = head.objects.min(MAX_OBJECTS);
        Some((
            base,
            n.checked_mul(cache.size)?.checked_add(cache.red_left_pad)?,
        ))
    }

    /// The free pointer stored at `ptr_addr`, decoded (mm/slub.c `freelist_ptr()`).
    pub fn decode(cache: &Cache, stored: u64, ptr_addr: u64) -> u64 {
        match cache.random {
            Some(r) => stored ^ r ^ ptr_addr.swap_bytes(),
            None => stored,
        }
    }

    /// Walk a free list from `first` through objects of the slab at `base` spanning `span`
    /// bytes (read into `mem`, the slab's bytes, when given; else from kcore): the free objects
    /// and how the walk ended.
    pub fn walk_free(
        &self,
        cache: &Cache,
        first: u64,
        base: u64,
        span: u64,
        mem: Option<&[u8]>,
    ) -> (Vec<u64>, WalkEnd) {
        let mut out = Vec::new();
        let mut cur = first;
        let start = base + cache.red_left_pad;
        let max = (span / cache.size.max(1)).min(MAX_OBJECTS);
        loop {
            if cur == 0 {
                return (out, WalkEnd::Null);
            }
            if cur < start
                || cur - start >= span
                || !(cur - start).is_multiple_of(cache.size.max(1))
            {
                return (out, WalkEnd::Outside(cur));
            }
            if out.len() as u64 >= max {
                return (out, WalkEnd::Cycle);
            }
            out.push(cur);
            let at = cur + cache.offset;
            let stored = match mem {
                Some(m) => {
                    let o = at - base;
                    if o + 8 > m.len() as u64 {
                        return (out, WalkEnd::Unreadable(at));
                    }
                    word(m, o)
                }
                None => match self.kcore.read_u64(at) {
                    Ok(v) => v,
                    Err(_) => return (out, WalkEnd::Unreadable(at)),
                },
            };
            cur = Slub::decode(cache, stored, at);
        }
    }

    /// The possible CPUs' per-cpu offsets (`__per_cpu_offset[0..nr_cpu_ids]`).
    pub fn percpu_offsets(&self) -> Result<Vec<u64>> {
        let need = |s: &str| {
            self.syms.address_of(s).ok_or_else(|| {
                Error::NotFound(format!(
                    "no symbol {s} in /proc/kallsyms (CONFIG_KALLSYMS_ALL)"
                ))
            })
        };
        let n = self.kcore.read_u32(need("nr_cpu_ids")?)?.clamp(1, 8192);
        let base = need("__per_cpu_offset")?;
        (0..u64::from(n))
            .map(|i| self.kcore.read_u64(base + 8 * i))
            .collect()
    }

    /// Each CPU's slab of `cache`: (freelist head, `struct slab *`, first CPU partial slab).
    pub fn cpu_slabs(&self, cache: &Cache) -> Result<Vec<(u64, u64, u64)>> {
        let l = &self.l;
        let pcp = self.kcore.read_u64(cache.addr + l.kc_cpu_slab)?;
        let mut out = Vec::new();
        for off in self.percpu_offsets()? {
            let c = pcp.wrapping_add(off);
            let fl = self.kcore.read_u64(c + l.c_freelist)?;
            let slab = self.kcore.read_u64(c + l.c_slab)?;
            let partial = match l.c_partial {
                Some(o) => self.kcore.read_u64(c + o)?,
                None => 0,
            };
            out.push((fl, slab, partial));
        }
        Ok(out)
    }

    /// Each node's `kmem_cache_node` of `cache` (NULL ones skipped): nr_partial, the
    /// SLUB_DEBUG counters when the kernel has them, and the slabs on its partial list
    /// (bounded by [`MAX_LIST`]).
    pub fn nodes(&self, cache: &Cache) -> Result<Vec<Node>> {
        let l = &self.l;
        let mut out = Vec::new();
        let nodes = self
            .syms
            .address_of("nr_node_ids")
            .map_or(Ok(1), |a| self.kcore.read_u32(a).map(|n| n.clamp(1, 1024)))?;
        for i in 0..nodes {
            let n = self
                .kcore
                .read_u64(cache.addr + l.kc_node + 8 * u64::from(i))?;
            if n == 0 {
                continue;
            }
            let mut b = vec![0u8; l.n_size as usize];
            self.kcore.read_virt(n, &mut b)?;
            let head = n + l.n_partial;
            let mut slabs = Vec::new();
            let mut cur = word(&b, l.n_partial);
            while cur != head && cur != 0 && slabs.len() < MAX_LIST {
                slabs.push(cur.wrapping_sub(l.s_list));
                cur = self.kcore.read_u64(cur)?;
            }
            out.push(Node {
                node: i,
                addr: n,
                nr_partial: l.n_nr_partial.get(&b),
                nr_slabs: l.n_nr_slabs.map(|o| word(&b, o)),
                total_objects: l.n_total_objects.map(|o| word(&b, o)),
                partial: slabs,
                list_ended: cur == head,
            });
        }
        Ok(out)
    }
}

/// The most entries of a slab list followed.
pub const MAX_LIST: usize = 1 << 22;

/// One NUMA node's part of a cache (`struct kmem_cache_node`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node number.
    pub node: u32,
    /// Address of its kmem_cache_node.
    pub addr: u64,
    /// Its count of partial slabs.
    pub nr_partial: u64,
    /// Slabs of the node (CONFIG_SLUB_DEBUG).
    pub nr_slabs: Option<u64>,
    /// Objects in them (CONFIG_SLUB_DEBUG).
    pub total_objects: Option<u64>,
    /// The partial list's slabs (`struct slab *`).
    pub partial: Vec<u64>,
    /// The list came back to its head (not cut short).
    pub list_ended: bool,
}

/// Check that `btf` has every SLUB field this module reads (an error names the first missing).
pub fn check_layout(btf: &Btf) -> Result<()> {
    layout(btf).map(|_| ())
}

fn layout(btf: &Btf) -> Result<Layout> {
    let kc = |f: &str| btf.field("kmem_cache", f);
    let head = if btf.find_struct("slab").is_some() {
        "slab"
    } else {
        "page"
    };
    let s = |f: &str| btf.field(head, f);
    let kcc = |f: &str| btf.field("kmem_cache_cpu", f);
    let slab_ptr = kcc("slab").or_else(|_| kcc("page"))?;
    Ok(Layout {
        kc_size: btf
            .size_of(btf.struct_id("kmem_cache")?)
            .unwrap_or(0)
            .min(1 << 16),
        kc_list: kc("list")?.offset(),
        kc_name: kc("name")?.offset(),
        kc_obj: Bits::of(&kc("object_size")?),
        kc_size_f: Bits::of(&kc("size")?),
        kc_offset: Bits::of(&kc("offset")?),
        kc_flags: Bits::of(&kc("flags")?),
        kc_oo: kc("oo")?.offset(),
        kc_random: kc("random").ok().map(|f| f.offset()),
        kc_red_left_pad: kc("red_left_pad").ok().map(|f| Bits::of(&f)),
        kc_cpu_slab: kc("cpu_slab")?.offset(),
        kc_node: kc("node")?.offset(),
        head_size: btf.size_of(btf.struct_id("page")?).unwrap_or(64).max(1),
        s_cache: s("slab_cache")?.offset(),
        s_freelist: s("freelist")?.offset(),
        s_inuse: Bits::of(&s("inuse")?),
        s_objects: Bits::of(&s("objects")?),
        s_frozen: Bits::of(&s("frozen")?),
        s_list: s("slab_list")?.offset(),
        s_next: s("next").ok().map(|f| f.offset()),
        c_freelist: kcc("freelist")?.offset(),
        c_slab: slab_ptr.offset(),
        c_partial: kcc("partial").ok().map(|f| f.offset()),
        n_size: btf
            .size_of(btf.struct_id("kmem_cache_node")?)
            .unwrap_or(64)
            .min(4096),
        n_nr_partial: Bits::of(&btf.field("kmem_cache_node", "nr_partial")?),
        n_nr_slabs: btf
            .field("kmem_cache_node", "nr_slabs")
            .ok()
            .map(|f| f.offset()),
        n_total_objects: btf
            .field("kmem_cache_node", "total_objects")
            .ok()
            .map(|f| f.offset()),
        n_partial: btf.field("kmem_cache_node", "partial")?.offset(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_extract_bitfields() {
        // inuse:16, objects:15, frozen:1 in one 32-bit word at byte 4
        let mut b = vec![0u8; 12];
        let w: u32 = 7 | (32 << 16) | (1 << 31);
        b[4..8].copy_from_slice(&w.to_le_bytes());
        let f = |bit, width| Bits { bit, width }.get(&b);
        assert_eq!(f(32, 16), 7);
        assert_eq!(f(48, 15), 32);
        assert_eq!(f(63, 1), 1);
        assert_eq!(f(200, 8), 0, "out of range reads 0");
    }

    #[test]
    fn hardened_pointer_round_trips() {
        let c = Cache {
            addr: 0,
            name: "x".into(),
            size: 64,
            object_size: 64,
            offset: 32,
            flags: 0,
            order: 0,
            objects_per_slab: 64,
            random: Some(0x1234_5678_9abc_def0),
            red_left_pad: 0,
        };
        let (ptr, at) = (0xffff_8880_0123_4540u64, 0xffff_8880_0123_4020u64);
        let stored = ptr ^ 0x1234_5678_9abc_def0 ^ at.swap_bytes();
        assert_eq!(Slub::decode(&c, stored, at), ptr);
        let plain = Cache { random: None, ..c };
        assert_eq!(Slub::decode(&plain, ptr, at), ptr);
    }
}
