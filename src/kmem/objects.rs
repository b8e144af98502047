//! `pgtool slab --objects CACHE`: what a slab cache is full of. The leak hunt that crash's
//! `kmem -S` + `rd` does by hand: find the cache's slabs (kpageflags SLAB heads whose
//! `slab_cache` is the cache), read every allocated object, group objects that are identical
//! once pointer-like words are masked (list links, back pointers: they differ per object), and
//! report the biggest groups with a hexdump of one member and the kernel symbols inside it.
//!
//! Memory is bounded: kpageflags and slab heads are read in batches, objects slab by slab, and
//! at most [`MAX_GROUPS`] groups are kept (when full, the smallest groups are dropped, a
//! quarter of the table at once, and counted in `dropped_objects`: big groups survive, as the
//! leak hunt needs).

use super::slub::{Cache, SlabHead, Slub};
use crate::error::Result;
use crate::kpage::{BATCH, KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher};

/// The most groups kept at once.
pub const MAX_GROUPS: usize = 16_384;
/// Bytes of a sample object kept (and dumped).
pub const MAX_SAMPLE: usize = 1024;
/// Lowest kernel-image/module address on x86-64 (`__START_KERNEL_map`): pointers at or above it
/// name code and static data, the same in every object of a kind, so they stay in the key.
const IMAGE_START: u64 = 0xffff_ffff_8000_0000;
/// Lowest address of the kernel half that holds per-object pointers (direct map, vmalloc,
/// vmemmap; 5-level paging's direct map starts at 0xff11000000000000).
const KERNEL_HALF: u64 = 0xff00_0000_0000_0000;

/// True for a word that looks like a pointer to per-object kernel memory (masked when grouping).
pub fn is_object_pointer(v: u64) -> bool {
    (KERNEL_HALF..IMAGE_START).contains(&v)
}

/// One group of near-identical objects.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ObjectGroup {
    /// The cache.
    pub cache: String,
    /// 1 for the biggest group.
    pub rank: usize,
    /// Allocated objects in the group.
    pub objects: u64,
    /// Share of the cache's allocated objects scanned, percent.
    pub percent: f64,
    /// Address of the member dumped.
    pub sample_addr: u64,
    /// Words masked as per-object pointers (8-byte words of the object).
    pub pointer_words: u32,
    /// Words that resolve to kernel symbols: `+0xOFF name+0xoff/0xsize [module]`.
    pub symbols: Vec<String>,
    /// The member's bytes (at most [`MAX_SAMPLE`]), 16 a line: `0010: 00 11 .. |ascii|`.
    pub hexdump: Vec<String>,
    /// The group's key ([`object_key`]) as the scan computed it. Compare other objects with
    /// this, not with a fresh read of `sample_addr`: the member may have been freed and its
    /// memory reused since (`leak --similar` found a busy cache's groups mixed up that way).
    #[serde(skip)]
    pub key: u64,
}

impl Record for ObjectGroup {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "rank",
        "objects",
        "percent",
        "sample_addr",
        "pointer_words",
        "symbols",
    ];
}

/// What a scan saw, beside its groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The cache.
    pub cache: Option<Cache>,
    /// Slabs of the cache found.
    pub slabs: u64,
    /// Objects in them.
    pub objects: u64,
    /// Of which free (on a slab's or a CPU's free list).
    pub free: u64,
    /// Allocated objects grouped.
    pub allocated: u64,
    /// Objects whose group was dropped when the group table was full.
    pub dropped_objects: u64,
    /// Slabs whose free list did not end cleanly (changed while read).
    pub broken_freelists: u64,
    /// Slabs that could not be read.
    pub unreadable_slabs: u64,
    /// Objects in KFENCE's pool (counted in `objects`).
    pub kfence: u64,
    /// PFNs whose kpageflags were read.
    pub pfns: u64,
}

struct Group {
    count: u64,
    addr: u64,
    sample: Vec<u8>,
    masked: u32,
}

/// The objects on every CPU's free list of `cache` (they look allocated from their slab).
pub fn cpu_free_objects(slub: &Slub, cache: &Cache) -> HashSet<u64> {
    let mut out = HashSet::new();
    for (fl, slab, _) in slub.cpu_slabs(cache).unwrap_or_default() {
        if slab == 0 || fl == 0 {
            continue;
        }
        if let Ok(h) = slub.read_head(slab)
            && let Some((base, span)) = slub.slab_span(cache, &h)
        {
            out.extend(slub.walk_free(cache, fl, base, span, None).0);
        }
    }
    out
}

/// Call `f` with the head of every slab of `cache` (kpageflags SLAB heads whose `slab_cache`
/// is the cache; KFENCE's pool left out), streaming kpageflags in batches. The PFNs read.
pub fn for_each_slab(
    slub: &Slub,
    root: &SysRoot,
    cache: &Cache,
    kfence: &super::kfence::Pool,
    mut f: impl FnMut(&SlabHead) -> Result<()>,
) -> Result<u64> {
    let flags = U64File::open_kpage(root, KpageFile::Flags)?;
    let want = PageFlags::SLAB.bits();
    let tail = PageFlags::COMPOUND_TAIL.bits();
    let mut heads = Vec::new();
    flags.for_each_batch(0..u64::MAX, BATCH, |first, words| {
        heads.clear();
        heads.extend(
            words
                .iter()
                .enumerate()
                .filter(|(_, w)| *w & want != 0 && *w & tail == 0)
                .map(|(i, _)| first + i as u64),
        );
        slub.for_each_head(&heads, |h| {
            if h.cache == cache.addr && !kfence.pfns.contains(&h.pfn) {
                f(&h)?;
            }
            Ok(())
        })
    })
}

/// Scan `cache_name`'s objects; the `top` biggest groups (0: all) and a summary.
pub fn scan(
    slub: &Slub,
    root: &SysRoot,
    cache_name: &str,
    top: usize,
) -> Result<(Vec<ObjectGroup>, Summary)> {
    let cache = slub.find_cache(cache_name)?;
    let cpu_free = cpu_free_objects(slub, &cache);
    let kfence = super::kfence::pool(slub);
    let mut sum = Summary::default();
    let mut groups: HashMap<u64, Group> = HashMap::new();
    let mut mem = Vec::new();
    let pfns = for_each_slab(slub, root, &cache, &kfence, |h| {
        one_slab(slub, &cache, h, &cpu_free, &mut mem, &mut groups, &mut sum);
        Ok(())
    })?;
    sum.pfns = pfns;
    let osz = keyed_len(&cache);
    for k in kfence.objects.iter().filter(|k| k.cache == cache.addr) {
        mem.resize(osz.min(k.size as usize), 0);
        sum.objects += 1;
        sum.kfence += 1;
        if slub.kcore.read_virt(k.addr, &mut mem).is_ok() {
            add(&mut groups, &mut sum, k.addr, &mem);
        }
    }
    let mut list: Vec<(u64, Group)> = groups.into_iter().collect();
    list.sort_by(|(_, a), (_, b)| b.count.cmp(&a.count).then(a.addr.cmp(&b.addr)));
    if top > 0 {
        list.truncate(top);
    }
    let recs = list
        .into_iter()
        .enumerate()
        .map(|(i, (key, g))| ObjectGroup {
            cache: cache.name.clone(),
            rank: i + 1,
            objects: g.count,
            percent: if sum.allocated == 0 {
                0.0
            } else {
                (g.count as f64 * 1000.0 / sum.allocated as f64).round() / 10.0
            },
            sample_addr: g.addr,
            pointer_words: g.masked,
            symbols: symbols(slub, &g.sample),
            hexdump: hexdump(&g.sample),
            key,
        })
        .collect();
    sum.cache = Some(cache);
    Ok((recs, sum))
}

fn one_slab(
    slub: &Slub,
    cache: &Cache,
    h: &SlabHead,
    cpu_free: &HashSet<u64>,
    mem: &mut Vec<u8>,
    groups: &mut HashMap<u64, Group>,
    sum: &mut Summary,
) {
    sum.slabs += 1;
    let Some((base, span)) = slub.slab_span(cache, h) else {
        sum.unreadable_slabs += 1;
        return;
    };
    mem.resize(span as usize, 0);
    if slub.kcore.read_virt(base, mem).is_err() {
        sum.unreadable_slabs += 1;
        return;
    }
    let (free, end) = slub.walk_free(cache, h.freelist, base, span, Some(mem));
    if end != super::slub::WalkEnd::Null {
        sum.broken_freelists += 1;
    }
    let free: HashSet<u64> = free.into_iter().collect();
    let n = span.saturating_sub(cache.red_left_pad) / cache.size.max(1);
    let osz = keyed_len(cache);
    for i in 0..n {
        let off = cache.red_left_pad + i * cache.size;
        let addr = base + off;
        sum.objects += 1;
        if free.contains(&addr) || cpu_free.contains(&addr) {
            sum.free += 1;
            continue;
        }
        add(groups, sum, addr, &mem[off as usize..off as usize + osz]);
    }
}

/// The group key of an object's bytes (equal for objects alike but for per-object pointers),
/// and how many words were masked as such pointers.
pub fn object_key(obj: &[u8]) -> (u64, u32) {
    let mut hs = DefaultHasher::new();
    let mut masked = 0u32;
    for w in obj.chunks(8) {
        let v = if w.len() == 8 {
            u64::from_le_bytes(w.try_into().unwrap_or_default())
        } else {
            0
        };
        if w.len() == 8 && is_object_pointer(v) {
            masked += 1;
            hs.write_u8(0xa5);
        } else {
            hs.write(w);
        }
    }
    (hs.finish(), masked)
}

/// Bytes of an object of `cache` that are read and keyed (large objects are cut).
pub fn keyed_len(cache: &Cache) -> usize {
    (cache.object_size.min(cache.size) as usize).min(MAX_SAMPLE * 64)
}

/// Count one allocated object into its group.
fn add(groups: &mut HashMap<u64, Group>, sum: &mut Summary, addr: u64, obj: &[u8]) {
    sum.allocated += 1;
    let (key, masked) = object_key(obj);
    if let Some(g) = groups.get_mut(&key) {
        g.count += 1;
        return;
    }
    if groups.len() >= MAX_GROUPS {
        make_room(groups, sum);
    }
    groups.insert(
        key,
        Group {
            count: 1,
            addr,
            sample: obj[..obj.len().min(MAX_SAMPLE)].to_vec(),
            masked,
        },
    );
}

/// Free a quarter of the full group table at once: the groups seen once first, then those seen
/// at most 2, 4, 8... times, their objects counted in `dropped_objects`. Sweeping only the
/// singletons freed nothing once the table held groups of two or more (a cache of objects
/// that differ in bytes their users never wrote), and then every new object cost a sweep of
/// the whole table: minutes for a large cache in the qemu guest.
fn make_room(groups: &mut HashMap<u64, Group>, sum: &mut Summary) {
    let mut upto = 1;
    while groups.len() > MAX_GROUPS * 3 / 4 {
        let mut dropped = 0;
        groups.retain(|_, g| {
            let keep = g.count > upto;
            if !keep {
                dropped += g.count;
            }
            keep
        });
        sum.dropped_objects += dropped;
        upto = upto.saturating_mul(2);
    }
}

/// `+0xOFF symbol` for every aligned word of `obj` in the kernel image or modules.
fn symbols(slub: &Slub, obj: &[u8]) -> Vec<String> {
    obj.chunks_exact(8)
        .enumerate()
        .filter_map(|(i, w)| {
            let v = u64::from_le_bytes(w.try_into().unwrap_or_default());
            if v < IMAGE_START || v == u64::MAX {
                return None;
            }
            slub.syms.lookup(v).map(|l| format!("+{:#x} {l}", i * 8))
        })
        .collect()
}

/// A hexdump, 16 bytes a line, as `xxd` prints it.
pub fn hexdump(b: &[u8]) -> Vec<String> {
    b.chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let mut s = format!("{:04x}:", i * 16);
            for (j, x) in c.iter().enumerate() {
                if j % 8 == 0 {
                    s.push(' ');
                }
                s.push_str(&format!(" {x:02x}"));
            }
            for j in c.len()..16 {
                s.push_str(if j % 8 == 0 { "    " } else { "   " });
            }
            s.push_str("  |");
            s.extend(c.iter().map(|&x| {
                if x.is_ascii_graphic() || x == b' ' {
                    x as char
                } else {
                    '.'
                }
            }));
            s.push('|');
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_of_pairs_makes_room_and_keeps_the_count() {
        let obj = |i: u64| [i.to_le_bytes(), [0; 8]].concat();
        let (mut groups, mut sum) = (HashMap::new(), Summary::default());
        // one big group, then more pairs than the table holds, then singletons
        for _ in 0..500 {
            add(&mut groups, &mut sum, 0, &obj(u64::MAX));
        }
        for i in 0..MAX_GROUPS as u64 * 3 {
            add(&mut groups, &mut sum, 0, &obj(i));
            add(&mut groups, &mut sum, 0, &obj(i));
        }
        for i in 0..MAX_GROUPS as u64 * 4 {
            add(&mut groups, &mut sum, 0, &obj(1 << 40 | i));
        }
        assert!(groups.len() <= MAX_GROUPS);
        let kept: u64 = groups.values().map(|g| g.count).sum();
        assert_eq!(kept + sum.dropped_objects, sum.allocated);
        assert_eq!(
            sum.allocated,
            500 + 6 * MAX_GROUPS as u64 + 4 * MAX_GROUPS as u64
        );
        let big = object_key(&obj(u64::MAX)).0;
        assert_eq!(groups.get(&big).map(|g| g.count), Some(500));
        // room was made: the newest object has a group (a sweep of the singletons alone
        // freed nothing in a table of pairs, and dropped every new object)
        let last = object_key(&obj(1 << 40 | (MAX_GROUPS as u64 * 4 - 1))).0;
        assert_eq!(groups.get(&last).map(|g| g.count), Some(1));
    }

    #[test]
    fn pointers_masked_but_not_image_or_errors() {
        assert!(is_object_pointer(0xffff_8880_0123_4560));
        assert!(is_object_pointer(0xffff_c900_0000_1000));
        assert!(is_object_pointer(0xffff_ea00_0004_0000));
        assert!(
            !is_object_pointer(0xffff_ffff_8200_1000),
            "kernel image stays"
        );
        assert!(!is_object_pointer(0xffff_ffff_ffff_fff4), "-ENOMEM stays");
        assert!(!is_object_pointer(0x4142_4344_4546_4748), "payload stays");
    }

    #[test]
    fn hexdump_lines() {
        let d = hexdump(b"PGTOOL-KMEM-0123456789");
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0],
            "0000:  50 47 54 4f 4f 4c 2d 4b  4d 45 4d 2d 30 31 32 33  |PGTOOL-KMEM-0123|"
        );
        assert!(d[1].starts_with("0010:  34 35 36 37 38 39"), "{}", d[1]);
        assert!(d[1].ends_with("|456789|"), "{}", d[1]);
        assert_eq!(d[0].find('|'), d[1].find('|'), "the ASCII column lines up");
    }
}
