//! The rows of the `cgroup` listings ([`LookupRecord`], [`PagesRecord`]) and the metrics of
//! `cgroup --pages`, in the vocabulary of [`crate::output`].

use super::{CgroupIndex, MemcgPages, parse_inode};
use crate::error::Result;
use crate::output::Record;
use crate::output::metrics::{Kind, Metrics};
use serde::Serialize;
use std::path::Path;

/// One row of `pgtool cgroup INODE|PATH...`: a memcg inode and its path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LookupRecord {
    /// What was asked, as typed.
    pub query: String,
    /// The cgroup directory's inode (what kpagecgroup reports); `null` when not found.
    pub memcg_ino: Option<u64>,
    /// `v2` or `v1-memory`.
    pub hierarchy: Option<&'static str>,
    /// The cgroup directory.
    pub memcg_path: Option<String>,
    /// True when this hierarchy holds the memory controller, i.e. kpagecgroup inodes are
    /// inodes of this hierarchy.
    pub memory_controller: Option<bool>,
    /// Why nothing was found.
    pub error: Option<String>,
}

impl Record for LookupRecord {
    const TABLE_COLUMNS: &'static [&'static str] =
        &["memcg_ino", "hierarchy", "memory_controller", "memcg_path"];
}

/// `s` as an inode (a number, or `@` and a number) rather than a path.
fn as_inode(s: &str) -> Option<u64> {
    parse_inode(s.strip_prefix('@').unwrap_or(s))
}

/// Look up each query (a memcg inode, `@INODE`, or a cgroup path): one row per cgroup found
/// (an inode may name a directory in each hierarchy), one row with `error` per query that names
/// none.
pub fn lookup(idx: &CgroupIndex, queries: &[String]) -> Vec<LookupRecord> {
    let mut recs = Vec::new();
    let found = |q: &str, c: &super::Cgroup| LookupRecord {
        query: q.to_string(),
        memcg_ino: Some(c.inode),
        hierarchy: Some(c.hierarchy),
        memcg_path: Some(c.path.display().to_string()),
        memory_controller: Some(Some(c.hierarchy) == idx.memcg_hierarchy()),
        error: None,
    };
    let missing = |q: &str, ino: Option<u64>, why: String| LookupRecord {
        query: q.to_string(),
        memcg_ino: ino,
        hierarchy: None,
        memcg_path: None,
        memory_controller: None,
        error: Some(why),
    };
    for q in queries {
        if let Some(ino) = as_inode(q) {
            let cs = idx.by_inode(ino);
            if cs.is_empty() {
                recs.push(missing(
                    q,
                    Some(ino),
                    format!(
                        "inode {ino}: no cgroup in the mounted memory-cgroup hierarchies (a \
                         deleted memcg, or a hierarchy that is not mounted)"
                    ),
                ));
            }
            recs.extend(cs.iter().map(|c| found(q, c)));
        } else {
            match idx.lookup_path(Path::new(q)) {
                Ok(c) => recs.push(found(q, &c)),
                Err(e) => recs.push(missing(q, None, e.to_string())),
            }
        }
    }
    recs
}

/// One row of `pgtool cgroup --pages`: the pages in use charged to one memcg, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PagesRecord {
    /// The memcg inode from kpagecgroup (0: uncharged).
    pub memcg_ino: u64,
    /// Its directory (`null` when uncharged, deleted or in no mounted hierarchy).
    pub memcg_path: Option<String>,
    /// `online`, `uncharged` (inode 0) or `deleted` (no mounted hierarchy has the inode).
    pub state: &'static str,
    /// Pages in use charged to it.
    pub pages: u64,
    /// `pages` in bytes.
    pub resident_bytes: u64,
    /// Anonymous pages.
    pub anon_pages: u64,
    /// Page cache and shmem pages.
    pub file_pages: u64,
    /// Slab pages.
    pub slab_pages: u64,
    /// Anything else in use.
    pub other_pages: u64,
}

impl Record for PagesRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "pages",
        "resident_bytes",
        "anon_pages",
        "file_pages",
        "state",
        "memcg_path",
    ];
}

/// The rows for per-memcg counts (`rows` from [`super::pages_by_memcg`]), paths from `idx`.
pub fn pages_records(idx: &CgroupIndex, rows: &[MemcgPages], page_size: u64) -> Vec<PagesRecord> {
    rows.iter()
        .map(|r| {
            let c = idx.memcg(r.inode);
            PagesRecord {
                memcg_ino: r.inode,
                memcg_path: c.map(|c| c.path.display().to_string()),
                state: if r.inode == 0 {
                    "uncharged"
                } else if c.is_some() {
                    "online"
                } else {
                    "deleted"
                },
                pages: r.pages,
                resident_bytes: r.pages.saturating_mul(page_size),
                anon_pages: r.anon,
                file_pages: r.file,
                slab_pages: r.slab,
                other_pages: r.other,
            }
        })
        .collect()
}

/// The metric family `cgroup --pages --prometheus` writes.
pub const RESIDENT_PAGES: &str = "pgtool_memcg_resident_pages";

/// The Prometheus families for these rows: `pgtool_memcg_resident_pages{memcg, kind}`
/// (gauge). Labels stay bounded: `memcg` is the cgroup path; every deleted memcg is summed
/// under `<deleted>` and uncharged pages are `<uncharged>`; `kind` is anon, file, slab or other.
pub fn pages_metrics(recs: &[PagesRecord]) -> Result<Metrics> {
    let mut m = Metrics::new();
    let f = m.family(
        RESIDENT_PAGES,
        "Pages in use charged to each memory cgroup, by kind (from /proc/kpagecgroup and \
         /proc/kpageflags).",
        Kind::Gauge,
    )?;
    for r in recs {
        let memcg = match (&r.memcg_path, r.state) {
            (Some(p), _) => p.as_str(),
            (None, "uncharged") => "<uncharged>",
            _ => "<deleted>",
        };
        for (kind, v) in [
            ("anon", r.anon_pages),
            ("file", r.file_pages),
            ("slab", r.slab_pages),
            ("other", r.other_pages),
        ] {
            f.add(&[("memcg", memcg), ("kind", kind)], v as f64);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ino: u64, path: Option<&str>, state: &'static str, anon: u64) -> PagesRecord {
        PagesRecord {
            memcg_ino: ino,
            memcg_path: path.map(str::to_string),
            state,
            pages: anon,
            resident_bytes: anon * 4096,
            anon_pages: anon,
            file_pages: 0,
            slab_pages: 0,
            other_pages: 0,
        }
    }

    #[test]
    fn deleted_memcgs_share_one_series() {
        let m = pages_metrics(&[
            rec(42, Some("/sys/fs/cgroup/a"), "online", 5),
            rec(7, None, "deleted", 2),
            rec(8, None, "deleted", 3),
            rec(0, None, "uncharged", 1),
        ])
        .expect("metrics");
        let text = m.render();
        assert!(
            text.contains(
                "pgtool_memcg_resident_pages{memcg=\"/sys/fs/cgroup/a\",kind=\"anon\"} 5\n"
            )
        );
        assert!(
            text.contains("pgtool_memcg_resident_pages{memcg=\"<deleted>\",kind=\"anon\"} 5\n")
        );
        assert!(text.contains("{memcg=\"<uncharged>\",kind=\"anon\"} 1\n"));
        assert_eq!(text.matches("kind=\"anon\"").count(), 3, "{text}");
        assert!(text.contains("# TYPE pgtool_memcg_resident_pages gauge"));
    }
}
