//! KFENCE's pool: its pages are slab pages (PG_slab, `slab_cache` set, `objects` 1) but each
//! holds one object at a page's left or right edge, not at the slab's start. A scan of slab
//! pages skips the pool and takes KFENCE's objects from `kfence_metadata` instead (6.1:
//! `state` KFENCE_OBJECT_ALLOCATED = 1, `addr` the object, `cache` its kmem_cache).

use super::slub::Slub;

/// The most metadata entries read (CONFIG_KFENCE_NUM_OBJECTS is 255 by default, 65,535 max).
const MAX_KFENCE_OBJECTS: u64 = 65_535;
/// enum kfence_object_state: KFENCE_OBJECT_ALLOCATED.
const ALLOCATED: u64 = 1;

/// One allocated KFENCE object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KfenceObject {
    /// Its address.
    pub addr: u64,
    /// Bytes allocated.
    pub size: u64,
    /// Its kmem_cache.
    pub cache: u64,
}

/// The pool's PFN range and allocated objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// PFNs of the pool (empty when the kernel has no KFENCE or it is off).
    pub pfns: std::ops::Range<u64>,
    /// Allocated objects.
    pub objects: Vec<KfenceObject>,
}

/// The KFENCE pool, or an empty one (no KFENCE, no BTF for it, or unreadable).
pub fn pool(slub: &Slub) -> Pool {
    read(slub).unwrap_or_default()
}

fn read(slub: &Slub) -> Option<Pool> {
    let btf = &slub.btf;
    let pool_sym = slub.syms.address_of("__kfence_pool")?;
    let meta = slub.syms.address_of("kfence_metadata")?;
    let start = slub.kcore.read_u64(pool_sym).ok()?;
    if start == 0 {
        return Some(Pool::default());
    }
    let id = btf.find_struct("kfence_metadata")?;
    let msize = btf.size_of(id)?.max(1);
    let f = |n: &str| {
        btf.field_of(id, n)
            .ok()
            .map(|f| (f.offset(), f.size.min(8)))
    };
    let (state, addr, size, cache) = (f("state")?, f("addr")?, f("size")?, f("cache")?);
    let n = (slub.syms.lookup(meta)?.size? / msize).min(MAX_KFENCE_OBJECTS);
    let ps = slub.page_size();
    let first = slub.kcore.virt_to_phys(start)? / ps;
    let mut buf = vec![0u8; (n * msize) as usize];
    slub.kcore.read_virt(meta, &mut buf).ok()?;
    let get = |e: &[u8], (o, sz): (u64, u64)| {
        let mut w = [0u8; 8];
        w[..sz as usize].copy_from_slice(&e[o as usize..(o + sz) as usize]);
        u64::from_le_bytes(w)
    };
    let objects = buf
        .chunks_exact(msize as usize)
        .filter(|e| get(e, state) == ALLOCATED)
        .map(|e| KfenceObject {
            addr: get(e, addr),
            size: get(e, size),
            cache: get(e, cache),
        })
        .collect();
    Some(Pool {
        // (CONFIG_KFENCE_NUM_OBJECTS + 1) * 2 pages
        pfns: first..first + (n + 1) * 2,
        objects,
    })
}
