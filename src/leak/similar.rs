//! Issue #13's step 3, sysAK's "similarity": are the objects a call site left outstanding alike
//! the cache's most numerous objects? A leak fills its cache with objects of one shape (the
//! same contents once per-object pointers such as list links are masked), so the call site
//! whose outstanding objects have the shape of the cache's biggest group is the likely leaker.
//!
//! `pgtool leak --trace --similar`. Needs kernel memory (/proc/kcore, BTF, kallsyms:
//! [`crate::kmem::Slub`]) and real object addresses in the trace: with `--similar` our tracing
//! instance turns its `hash-ptr` option off (an option of the instance alone); where the kernel
//! still prints hashed pointers the step is skipped and says so.

use super::pairing::{SiteRecord, Tracker};
use crate::kmem::Slub;
use crate::kmem::objects::{ObjectGroup, Summary};
use crate::kmem::objects::{is_object_pointer, keyed_len, object_key, scan};
use crate::root::SysRoot;
use std::collections::HashMap;

/// A cache's biggest groups and what its scan saw.
type Scan = (Vec<ObjectGroup>, Summary);

/// Call sites compared (the most outstanding first).
const SITES: usize = 3;
/// Outstanding objects of a site read and compared.
const SAMPLES: usize = 64;
/// Biggest groups of the cache compared with.
const GROUPS: usize = 3;

/// One note per compared call site (or one saying why the step was skipped).
pub fn compare(root: &SysRoot, t: &Tracker, sites: &[SiteRecord]) -> Vec<String> {
    let candidates: Vec<&SiteRecord> = sites
        .iter()
        .filter(|s| {
            // "?": kmem_cache_alloc on 6.1 names no cache
            s.count >= 2
                && !s.cache.starts_with('?')
                && !matches!(s.cache.as_str(), "pages" | "kmalloc-large")
        })
        .take(SITES)
        .collect();
    if candidates.is_empty() {
        return vec!["similarity: no slab call site with outstanding objects to compare".into()];
    }
    let slub = match Slub::open(root) {
        Ok(s) => s,
        Err(e) => return vec![format!("similarity (issue #13 step 3) skipped: {e}")],
    };
    let mut notes = Vec::new();
    // two call sites in one cache (kmalloc-N) share its scan
    let mut scans: HashMap<String, Scan> = HashMap::new();
    for site in candidates {
        notes.push(match one(&slub, root, t, site, &mut scans) {
            Ok(n) => n,
            Err(e) => format!(
                "similarity of {} ({}): skipped: {e}",
                site.call_site, site.cache
            ),
        });
    }
    notes
}

/// The note for one call site.
fn one(
    slub: &Slub,
    root: &SysRoot,
    t: &Tracker,
    site: &SiteRecord,
    scans: &mut HashMap<String, Scan>,
) -> crate::Result<String> {
    let addrs = t.outstanding_objects(&site.call_site, &site.cache, SAMPLES);
    if !addrs.iter().all(|&a| is_object_pointer(a)) {
        return Ok(format!(
            "similarity of {} ({}): skipped: the trace holds hashed pointers (this kernel \
             ignores the instance's hash-ptr option)",
            site.call_site, site.cache
        ));
    }
    if !scans.contains_key(&site.cache) {
        let found = scan(slub, root, &site.cache, GROUPS)?;
        scans.insert(site.cache.clone(), found);
    }
    let (groups, sum) = &scans[&site.cache];
    let len = sum.cache.as_ref().map(keyed_len).unwrap_or(0);
    let mut buf = vec![0u8; len];
    let key_at = |addr: u64, buf: &mut Vec<u8>| -> Option<u64> {
        slub.kcore
            .read_virt(addr, buf)
            .ok()
            .map(|()| object_key(buf).0)
    };
    // The keys the scan grouped by: a group's sample object may have been freed and its
    // memory reused since (a leaking cache is busy), so it is not read again.
    let group_keys: Vec<(usize, u64, u64)> =
        groups.iter().map(|g| (g.rank, g.objects, g.key)).collect();
    let (mut read, mut like) = (0usize, vec![0usize; group_keys.len()]);
    for &a in &addrs {
        let Some(k) = key_at(a, &mut buf) else {
            continue;
        };
        read += 1;
        for (i, g) in group_keys.iter().enumerate() {
            if g.2 == k {
                like[i] += 1;
            }
        }
    }
    let best = like
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| **n > 0);
    Ok(match best {
        Some((i, &n)) => {
            let (rank, objects, _) = group_keys[i];
            let verdict = if n * 2 > read && rank == 1 {
                ": the likely leaker"
            } else {
                ""
            };
            format!(
                "similarity of {} ({}): {n} of {read} outstanding objects read are alike group \
                 {rank} of the cache ({objects} of its {} allocated objects){verdict}",
                site.call_site, site.cache, sum.allocated
            )
        }
        None => format!(
            "similarity of {} ({}): none of {read} outstanding objects read is alike the \
             cache's {} biggest groups ({} allocated objects)",
            site.call_site,
            site.cache,
            group_keys.len(),
            sum.allocated
        ),
    })
}
