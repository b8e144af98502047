//! Pair allocations with frees by address, in bounded memory, and group what stays outstanding
//! by call site.

use super::trace_parse::Event;
use hashbrown::HashMap;

/// The most distinct call sites kept; later ones are counted under [`OTHER_SITE`].
pub const MAX_SITES: usize = 65_536;
/// The site that stands for every site past [`MAX_SITES`].
pub const OTHER_SITE: &str = "(other call sites: too many)";

#[derive(Clone, Copy, Debug)]
struct Alloc {
    site: u32,
    bytes: u64,
    ts: f64,
}

#[derive(Clone, Debug, Default)]
struct Site {
    name: String,
    cache: String,
    allocs: u64,
}

/// One call site with allocations still outstanding at the end of the trace (JSON/CSV the same).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SiteRecord {
    /// `symbol+off/size` of the allocating call (for pages, which carry no call site:
    /// `pages: COMM order=N GFP`, the gfp flags telling user, slab and page-table pages apart).
    pub call_site: String,
    /// The cache (`kmalloc-cg-256`, a kmem_cache's name, `pages`); `?` when the event lacks it.
    pub cache: String,
    /// Allocations from this site not freed by the end of the trace.
    pub count: u64,
    /// Their bytes (bytes_alloc; pages: PAGE_SIZE << order).
    pub outstanding_bytes: u64,
    /// Age of the oldest of them at the end of the trace, seconds.
    pub oldest_age_s: f64,
    /// Allocations seen from this site (freed or not).
    pub allocs: u64,
}

impl crate::output::Record for SiteRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "call_site",
        "cache",
        "count",
        "outstanding_bytes",
        "oldest_age_s",
        "allocs",
    ];
}

/// What the tracker counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Event lines read.
    pub events: u64,
    /// Allocation events.
    pub allocs: u64,
    /// Free events.
    pub frees: u64,
    /// Frees of an address allocated during the trace.
    pub paired: u64,
    /// Allocations not tracked because [`Tracker`] was full (--max-events).
    pub dropped: u64,
    /// Lines that are not kmem events (lost-event markers, other text).
    pub other_lines: u64,
}

/// The pairing state.
pub struct Tracker {
    objs: HashMap<u64, Alloc>,
    pages: HashMap<u64, Alloc>,
    sites: Vec<Site>,
    index: HashMap<(String, String), u32>,
    max: usize,
    page_size: u64,
    /// What was counted.
    pub counts: Counts,
    /// The last event's timestamp.
    pub last_ts: f64,
    /// Allocation events from these PIDs only (None: all).
    pub only_pid: Option<u32>,
    /// Allocation events from this comm only.
    pub only_comm: Option<String>,
    /// Ignore allocation events of this PID (pgtool itself).
    pub ignore_pid: Option<u32>,
}

impl Tracker {
    /// A tracker holding at most `max` outstanding allocations.
    pub fn new(max: usize, page_size: u64) -> Tracker {
        Tracker {
            objs: HashMap::new(),
            pages: HashMap::new(),
            sites: Vec::new(),
            index: HashMap::new(),
            max,
            page_size,
            counts: Counts::default(),
            last_ts: 0.0,
            only_pid: None,
            only_comm: None,
            ignore_pid: None,
        }
    }

    fn site(&mut self, name: &str, cache: &str) -> u32 {
        if let Some(&i) = self.index.get(&(name.to_string(), cache.to_string())) {
            return i;
        }
        let (name, cache) = if self.sites.len() >= MAX_SITES {
            (OTHER_SITE, "?")
        } else {
            (name, cache)
        };
        let key = (name.to_string(), cache.to_string());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.sites.len() as u32;
        self.sites.push(Site {
            name: key.0.clone(),
            cache: key.1.clone(),
            allocs: 0,
        });
        self.index.insert(key, i);
        i
    }

    fn wanted(&self, e: &Event<'_>) -> bool {
        self.ignore_pid != Some(e.pid)
            && self.only_pid.is_none_or(|p| p == e.pid)
            && self.only_comm.as_deref().is_none_or(|c| c == e.comm)
    }

    /// Up to `max` addresses of objects still outstanding from `call_site` in `cache`.
    pub fn outstanding_objects(&self, call_site: &str, cache: &str, max: usize) -> Vec<u64> {
        let Some(&site) = self.index.get(&(call_site.to_string(), cache.to_string())) else {
            return Vec::new();
        };
        let mut v: Vec<u64> = self
            .objs
            .iter()
            .filter(|(_, a)| a.site == site)
            .map(|(&p, _)| p)
            .collect();
        // the same sample whatever the hash map's order
        v.sort_unstable();
        v.truncate(max);
        v
    }

    /// Take one event.
    pub fn add(&mut self, e: &Event<'_>) {
        self.counts.events += 1;
        self.last_ts = e.ts;
        match e.name {
            "kmalloc" | "kmalloc_node" | "kmem_cache_alloc" | "kmem_cache_alloc_node" => {
                self.counts.allocs += 1;
                let (Some(ptr), Some(site)) = (e.num("ptr"), e.get("call_site")) else {
                    return;
                };
                if ptr == 0 || !self.wanted(e) {
                    return; // a failed allocation, or not asked for
                }
                let bytes = e.num("bytes_alloc").unwrap_or(0);
                let cache = cache_of(e, bytes);
                let s = self.site(site, &cache);
                self.insert(false, ptr, s, bytes, e.ts);
            }
            "kfree" | "kmem_cache_free" => {
                self.counts.frees += 1;
                if let Some(ptr) = e.num("ptr")
                    && self.objs.remove(&ptr).is_some()
                {
                    self.counts.paired += 1;
                }
            }
            "mm_page_alloc" => {
                self.counts.allocs += 1;
                let (Some(pfn), Some(order)) = (e.num("pfn"), e.num("order")) else {
                    return;
                };
                if !self.wanted(e) || order > 20 {
                    return;
                }
                let gfp = e.get("gfp_flags").unwrap_or("?");
                let s = self.site(&format!("pages: {} order={order} {gfp}", e.comm), "pages");
                self.insert(true, pfn, s, self.page_size << order, e.ts);
            }
            "mm_page_free" | "mm_page_free_batched" => {
                self.counts.frees += 1;
                if let Some(pfn) = e.num("pfn")
                    && self.pages.remove(&pfn).is_some()
                {
                    self.counts.paired += 1;
                }
            }
            _ => self.counts.other_lines += 1,
        }
    }

    fn insert(&mut self, page: bool, key: u64, site: u32, bytes: u64, ts: f64) {
        if let Some(s) = self.sites.get_mut(site as usize) {
            s.allocs += 1;
        }
        let total = self.objs.len() + self.pages.len();
        let map = if page {
            &mut self.pages
        } else {
            &mut self.objs
        };
        // a re-used address whose free we missed replaces the old entry: no growth
        if total >= self.max && !map.contains_key(&key) {
            self.counts.dropped += 1;
            return;
        }
        map.insert(key, Alloc { site, bytes, ts });
    }

    /// Allocations tracked now.
    pub fn outstanding(&self) -> usize {
        self.objs.len() + self.pages.len()
    }

    /// Outstanding allocations grouped by call site, most first.
    pub fn report(&self) -> Vec<SiteRecord> {
        let mut by: Vec<(u64, u64, f64)> = vec![(0, 0, f64::INFINITY); self.sites.len()];
        for a in self.objs.values().chain(self.pages.values()) {
            let b = &mut by[a.site as usize];
            b.0 += 1;
            b.1 += a.bytes;
            b.2 = b.2.min(a.ts);
        }
        let mut v: Vec<SiteRecord> = by
            .iter()
            .zip(&self.sites)
            .filter(|(b, _)| b.0 > 0)
            .map(|(b, s)| SiteRecord {
                call_site: s.name.clone(),
                cache: s.cache.clone(),
                count: b.0,
                outstanding_bytes: b.1,
                oldest_age_s: ((self.last_ts - b.2).max(0.0) * 1000.0).round() / 1000.0,
                allocs: s.allocs,
            })
            .collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.outstanding_bytes.cmp(&a.outstanding_bytes))
                .then(a.call_site.cmp(&b.call_site))
        });
        v
    }
}

/// The cache an allocation event came from: the `name` field (kmem_cache_alloc on 6.2+),
/// `kmalloc[-cg]-N` for kmalloc (N = bytes_alloc; `-cg` for accounted allocations),
/// `kmalloc-large` above 8 KiB (those come from the page allocator), else `?`.
pub fn cache_of(e: &Event<'_>, bytes: u64) -> String {
    if let Some(n) = e.get("name") {
        return n.to_string();
    }
    if e.name.starts_with("kmalloc") {
        if bytes > 8192 {
            return "kmalloc-large".into();
        }
        let cg = e.get("accounted") == Some("true")
            || e.get("gfp_flags").is_some_and(|g| g.contains("ACCOUNT"));
        return format!("kmalloc-{}{bytes}", if cg { "cg-" } else { "" });
    }
    format!("? ({bytes}-byte objects)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::trace_parse::parse_line;

    fn feed(t: &mut Tracker, lines: &[&str]) {
        for l in lines {
            t.add(&parse_line(l).expect("event"));
        }
    }

    #[test]
    fn pairs_and_groups() {
        let mut t = Tracker::new(100, 4096);
        feed(
            &mut t,
            &[
                "p-1 [000] ..... 1.0: kmalloc: call_site=load_msg+0x5b/0x1e0 ptr=00000000000000a1 bytes_req=248 bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT node=-1 accounted=true",
                "p-1 [000] ..... 2.0: kmalloc: call_site=load_msg+0x5b/0x1e0 ptr=00000000000000a2 bytes_req=248 bytes_alloc=256 gfp_flags=GFP_KERNEL_ACCOUNT node=-1 accounted=true",
                "p-1 [000] ..... 2.5: kmalloc: call_site=other+0x1/0x2 ptr=00000000000000b1 bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false",
                "p-1 [000] ..... 2.6: kfree: call_site=x+0x1/0x2 ptr=00000000000000b1",
                "q-2 [001] ..... 3.0: kmem_cache_alloc: call_site=alloc_empty_file+0x3c/0x110 ptr=00000000000000c1 name=filp bytes_req=184 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true",
                "q-2 [001] ..... 3.5: mm_page_alloc: page=0000000000000001 pfn=0x100 order=1 migratetype=0 gfp_flags=GFP_KERNEL",
                "q-2 [001] ..... 3.6: mm_page_free: page=0000000000000001 pfn=0x100 order=1",
                "q-2 [001] ..... 4.0: kfree: call_site=x+0x1/0x2 ptr=00000000000000ff",
            ],
        );
        let r = t.report();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].call_site, "load_msg+0x5b/0x1e0");
        assert_eq!((r[0].cache.as_str(), r[0].count), ("kmalloc-cg-256", 2));
        assert_eq!((r[0].outstanding_bytes, r[0].oldest_age_s), (512, 3.0));
        assert_eq!((r[1].cache.as_str(), r[1].count), ("filp", 1));
        assert_eq!(t.counts.paired, 2);
        assert_eq!((t.counts.allocs, t.counts.frees), (5, 3));
    }

    #[test]
    fn bounded_and_filtered() {
        let mut t = Tracker::new(2, 4096);
        t.ignore_pid = Some(9);
        for i in 1..=5u64 {
            let l = format!(
                "p-1 [000] ..... 1.0: kmalloc: call_site=f+0x1/0x2 ptr={i:016x} bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false"
            );
            t.add(&parse_line(&l).expect("event"));
        }
        feed(
            &mut t,
            &[
                "me-9 [000] ..... 1.0: kmalloc: call_site=g+0x1/0x2 ptr=00000000000000aa bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            ],
        );
        feed(
            &mut t,
            &[
                "p-1 [000] ..... 1.0: mm_page_alloc: page=0000000000000001 pfn=0x100 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
            ],
        );
        assert_eq!(t.outstanding(), 2, "objects and pages share --max-events");
        assert_eq!(t.counts.dropped, 4);
        assert_eq!(t.report()[0].allocs, 5);
    }
}
