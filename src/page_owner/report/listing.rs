//! The `pgtool page-owner` listing record, built from a [`Report`].

use super::{GroupKey, Report};
use std::collections::BTreeMap;

/// One line of the `pgtool page-owner` listing: a group of records, with its key values as
/// fields named after the keys (`stack` is an array of frames; `order`, `pid`, `tgid` are
/// numbers or null).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OwnerGroup {
    /// Position by pages (1 = most).
    pub rank: u64,
    /// Pages (sum of 2^order).
    pub pages: u64,
    /// Records (blocks).
    pub records: u64,
    /// Records freed at least once before this allocation (free_ts != 0).
    pub released: u64,
    /// Oldest allocation timestamp (ns since boot).
    pub min_ts_ns: Option<u64>,
    /// Newest allocation timestamp (ns since boot).
    pub max_ts_ns: Option<u64>,
    /// The key values as one line of text (the stack as its first frames past the page
    /// allocator's own).
    pub group: String,
    /// The key values, one field per key.
    #[serde(flatten)]
    pub key: serde_json::Map<String, serde_json::Value>,
    /// What the group's pages are now (kpageflags join of each block's first page); null
    /// without the join.
    pub now: Option<NowPages>,
    /// The memcg holding most of the group's pages now (kpagecgroup join), null without it.
    pub memcg_path: Option<String>,
    /// Its inode.
    pub memcg_ino: Option<u64>,
    /// The group's pages in it.
    pub memcg_pages: Option<u64>,
}

impl crate::output::Record for OwnerGroup {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "rank",
        "pages",
        "records",
        "now_anon",
        "now_file",
        "now_slab",
        "now_free",
        "memcg_path",
        "group",
    ];
}

/// Pages of a group by what they are now ([`page_state`]'s classes).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NowPages {
    /// Free (buddy).
    pub free: u64,
    /// Slab.
    pub slab: u64,
    /// Anonymous.
    pub anon: u64,
    /// Page cache.
    pub file: u64,
    /// Page tables.
    pub pgtable: u64,
    /// Reserved.
    pub reserved: u64,
    /// Other parts of compound pages.
    pub compound: u64,
    /// No flags.
    pub none: u64,
    /// Anything else.
    pub other: u64,
    /// Past the end of kpageflags.
    pub beyond_memory: u64,
}

impl NowPages {
    fn from_states(m: &BTreeMap<&'static str, u64>) -> NowPages {
        let mut n = NowPages::default();
        for (k, v) in m {
            let slot = match *k {
                "free" => &mut n.free,
                "slab" => &mut n.slab,
                "anon" => &mut n.anon,
                "file" => &mut n.file,
                "pgtable" => &mut n.pgtable,
                "reserved" => &mut n.reserved,
                "compound" => &mut n.compound,
                "none" => &mut n.none,
                "beyond-end" => &mut n.beyond_memory,
                _ => &mut n.other,
            };
            *slot = slot.saturating_add(*v);
        }
        n
    }
}

/// Frames of the page allocator itself, skipped in [`OwnerGroup::group`]'s one-line stack.
const ALLOCATOR_FRAMES: &[&str] = &[
    "post_alloc_hook",
    "prep_new_page",
    "get_page_from_freelist",
    "__alloc_pages",
    "__alloc_pages_noprof",
    "alloc_pages",
    "alloc_pages_noprof",
    "__folio_alloc",
    "folio_alloc",
    "alloc_pages_mpol",
    "alloc_pages_vma",
    "__alloc_pages_bulk",
    "alloc_slab_page",
    "allocate_slab",
    "new_slab",
];

fn frame_symbol(f: &str) -> &str {
    f.split(['+', ' ']).next().unwrap_or(f)
}

impl Report {
    /// The `top` largest groups (0: all) as listing records. `memcg_path` names a kpagecgroup
    /// inode (None: unknown).
    pub fn records(
        &self,
        top: usize,
        memcg_path: impl Fn(u64) -> Option<String>,
    ) -> Vec<OwnerGroup> {
        let mut groups = self.top();
        if top > 0 {
            groups.truncate(top);
        }
        let joined = self.join.is_some();
        let has_cg = self.join.as_ref().is_some_and(|j| j.cgroup.is_some());
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut key = serde_json::Map::new();
                let mut text = Vec::new();
                for (k, v) in self.keys.iter().zip(&g.key) {
                    let name = k.name();
                    let val = match k {
                        GroupKey::Stack => serde_json::Value::from(
                            v.lines().map(str::to_owned).collect::<Vec<_>>(),
                        ),
                        GroupKey::Order | GroupKey::Pid | GroupKey::Tgid => v
                            .parse::<i64>()
                            .map_or(serde_json::Value::Null, serde_json::Value::from),
                        _ => serde_json::Value::from(v.as_str()),
                    };
                    if *k == GroupKey::Stack {
                        let frames: Vec<&str> = v
                            .lines()
                            .skip_while(|f| ALLOCATOR_FRAMES.contains(&frame_symbol(f)))
                            .map(frame_symbol)
                            .collect();
                        text.push(if frames.is_empty() {
                            "stack=(none)".to_string()
                        } else {
                            format!("stack={}", frames.join("<"))
                        });
                    } else {
                        text.push(format!("{name}={v}"));
                    }
                    key.insert(name.to_string(), val);
                }
                let now = joined.then(|| NowPages::from_states(&g.now));
                let best = if has_cg {
                    g.memcg_inode
                        .iter()
                        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                } else {
                    None
                };
                OwnerGroup {
                    rank: i as u64 + 1,
                    pages: g.pages,
                    records: g.records,
                    released: g.released,
                    min_ts_ns: g.min_ts,
                    max_ts_ns: g.max_ts,
                    group: text.join(" "),
                    key,
                    now,
                    memcg_path: best
                        .map(|(ino, _)| memcg_path(*ino).unwrap_or_else(|| format!("inode:{ino}"))),
                    memcg_ino: best.map(|(ino, _)| *ino),
                    memcg_pages: best.map(|(_, p)| *p),
                }
            })
            .collect()
    }
}

impl GroupKey {
    /// The key's name in listings (its JSON field).
    pub fn name(self) -> &'static str {
        match self {
            GroupKey::Stack => "stack",
            GroupKey::Order => "order",
            GroupKey::Gfp => "gfp",
            GroupKey::Module => "module",
            GroupKey::Pid => "pid",
            GroupKey::Tgid => "tgid",
            GroupKey::Comm => "comm",
            GroupKey::Memcg => "memcg",
            GroupKey::Free => "free",
            GroupKey::Allocator => "allocator",
        }
    }
}
