//! The rows `pgtool mem` prints, one record type per `--by`, each with the same usage fields
//! ([`UsageBytes`], flattened) and a `total` flag: the last record of a listing is the total,
//! its key fields null.

use super::usage::UsageBytes;
use crate::error::Result;
use crate::output::Record;
use crate::output::metrics::{Kind, Metrics};
use serde::Serialize;

/// Columns every table shows after the row's key columns.
macro_rules! usage_columns {
    ($($k:literal),*) => {
        &[$($k,)* "rss_bytes", "pss_bytes", "uss_bytes", "swap_bytes", "swap_pss_bytes"]
    };
}

/// `--by process`: one address space.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessRow {
    /// PID (the lowest of those sharing the address space); null in the total.
    pub pid: Option<u32>,
    /// Command name.
    pub comm: Option<String>,
    /// Owner (user name live, uid in a snapshot).
    pub user: Option<String>,
    /// Real uid.
    pub uid: Option<u32>,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageBytes,
    /// Other PIDs sharing this address space (shown once, here).
    pub mm_pids: Vec<u32>,
    /// `pages` (pagemap + kpage*) or `smaps_rollup`.
    pub source: &'static str,
    /// True for the total record.
    pub total: bool,
}
impl Record for ProcessRow {
    const TABLE_COLUMNS: &'static [&'static str] = usage_columns!("pid", "comm", "user");
}

/// `--by mapping`: one mapping name (path, `[heap]`, `[anon]`...) in one process.
#[derive(Clone, Debug, Serialize)]
pub struct MappingRow {
    /// PID; null in the total.
    pub pid: Option<u32>,
    /// Command name.
    pub comm: Option<String>,
    /// The mapping's name: its path, a bracketed name, or `[anon]`.
    pub mapping: Option<String>,
    /// VMAs with that name in the process.
    pub vmas: u64,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageBytes,
    /// True for the total record.
    pub total: bool,
}
impl Record for MappingRow {
    const TABLE_COLUMNS: &'static [&'static str] = usage_columns!("pid", "comm", "mapping");
}

/// `--by library`: one mapped file, summed over the processes mapping it (librank).
#[derive(Clone, Debug, Serialize)]
pub struct LibraryRow {
    /// The file's path as maps shows it.
    pub path: Option<String>,
    /// Processes mapping it.
    pub processes: u64,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageBytes,
    /// True for the total record.
    pub total: bool,
}
impl Record for LibraryRow {
    const TABLE_COLUMNS: &'static [&'static str] = usage_columns!("path", "processes");
}

/// `--by memcg`: pages by the memcg they are charged to (kpagecgroup).
#[derive(Clone, Debug, Serialize)]
pub struct MemcgRow {
    /// The memcg's inode (0: uncharged); null in the total.
    pub memcg_ino: Option<u64>,
    /// Its path, null when no mounted hierarchy has the inode (a removed memcg).
    pub memcg_path: Option<String>,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageBytes,
    /// True for the total record.
    pub total: bool,
}
impl Record for MemcgRow {
    const TABLE_COLUMNS: &'static [&'static str] = usage_columns!("memcg_ino", "memcg_path");
}

/// `--by user`: processes summed by real uid.
#[derive(Clone, Debug, Serialize)]
pub struct UserRow {
    /// Real uid; null in the total or when unreadable.
    pub uid: Option<u32>,
    /// User name (live) or uid.
    pub user: Option<String>,
    /// Address spaces summed.
    pub processes: u64,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageBytes,
    /// True for the total record.
    pub total: bool,
}
impl Record for UserRow {
    const TABLE_COLUMNS: &'static [&'static str] = usage_columns!("user", "processes");
}

/// The rows of one report, sorted by PSS (largest first).
#[derive(Clone, Debug)]
pub enum Rows {
    /// `--by process`
    Process(Vec<ProcessRow>),
    /// `--by mapping`
    Mapping(Vec<MappingRow>),
    /// `--by library`
    Library(Vec<LibraryRow>),
    /// `--by memcg`
    Memcg(Vec<MemcgRow>),
    /// `--by user`
    User(Vec<UserRow>),
}

impl Rows {
    /// Number of rows, the total included.
    pub fn len(&self) -> usize {
        match self {
            Rows::Process(v) => v.len(),
            Rows::Mapping(v) => v.len(),
            Rows::Library(v) => v.len(),
            Rows::Memcg(v) => v.len(),
            Rows::User(v) => v.len(),
        }
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sum of figures; an optional figure is null in the sum when any row lacks it.
pub fn sum(rows: impl Iterator<Item = UsageBytes>) -> UsageBytes {
    let mut t = UsageBytes {
        uss_bytes: Some(0),
        shared_bytes: Some(0),
        file_bytes: Some(0),
        shmem_bytes: Some(0),
        thp_bytes: Some(0),
        ksm_bytes: Some(0),
        zero_page_bytes: Some(0),
        dirty_bytes: Some(0),
        ..UsageBytes::default()
    };
    let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
    let addo = |a: &mut Option<u64>, b: Option<u64>| {
        *a = match (*a, b) {
            (Some(x), Some(y)) => Some(x.saturating_add(y)),
            _ => None,
        }
    };
    for u in rows {
        add(&mut t.rss_bytes, u.rss_bytes);
        add(&mut t.pss_bytes, u.pss_bytes);
        addo(&mut t.uss_bytes, u.uss_bytes);
        addo(&mut t.shared_bytes, u.shared_bytes);
        add(&mut t.swap_bytes, u.swap_bytes);
        add(&mut t.swap_pss_bytes, u.swap_pss_bytes);
        add(&mut t.anon_bytes, u.anon_bytes);
        addo(&mut t.file_bytes, u.file_bytes);
        addo(&mut t.shmem_bytes, u.shmem_bytes);
        add(&mut t.pss_anon_bytes, u.pss_anon_bytes);
        add(&mut t.pss_file_bytes, u.pss_file_bytes);
        add(&mut t.pss_shmem_bytes, u.pss_shmem_bytes);
        addo(&mut t.thp_bytes, u.thp_bytes);
        addo(&mut t.ksm_bytes, u.ksm_bytes);
        addo(&mut t.zero_page_bytes, u.zero_page_bytes);
        add(&mut t.hugetlb_bytes, u.hugetlb_bytes);
        addo(&mut t.dirty_bytes, u.dirty_bytes);
    }
    t
}

/// The Prometheus families of a report. Labels are bounded: `comm` and `user` for processes
/// (plus `pid` only when `with_pid`), `library`, `memcg`, `user`, or `comm` + `mapping`.
/// Rows with equal labels are summed.
pub fn metrics(rows: &Rows, with_pid: bool) -> Result<Metrics> {
    let mut m = Metrics::new();
    const FAMILIES: [(&str, &str); 5] = [
        ("rss_bytes", "Resident memory (smaps Rss)."),
        (
            "pss_bytes",
            "Proportional set size: each page divided by its map count (smaps Pss).",
        ),
        ("uss_bytes", "Unique set size: pages mapped only once."),
        ("swap_bytes", "Swapped-out memory (smaps Swap)."),
        (
            "swap_pss_bytes",
            "Proportional share of swap (smaps SwapPss).",
        ),
    ];
    let mut emit = |labels: &[(&str, &str)], u: &UsageBytes| -> Result<()> {
        let vals = [
            Some(u.rss_bytes),
            Some(u.pss_bytes),
            u.uss_bytes,
            Some(u.swap_bytes),
            Some(u.swap_pss_bytes),
        ];
        for ((name, help), v) in FAMILIES.iter().zip(vals) {
            if let Some(v) = v {
                m.family(&format!("pgtool_mem_{name}"), help, Kind::Gauge)?
                    .add(labels, v as f64);
            }
        }
        Ok(())
    };
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    match rows {
        Rows::Process(v) => {
            for r in v.iter().filter(|r| !r.total) {
                let (c, u, p) = (s(&r.comm), s(&r.user), r.pid.unwrap_or(0).to_string());
                let mut l: Vec<(&str, &str)> = vec![("comm", &c), ("user", &u)];
                if with_pid {
                    l.push(("pid", &p));
                }
                emit(&l, &r.usage)?;
            }
        }
        Rows::Mapping(v) => {
            for r in v.iter().filter(|r| !r.total) {
                let (c, mp, p) = (s(&r.comm), s(&r.mapping), r.pid.unwrap_or(0).to_string());
                let mut l: Vec<(&str, &str)> = vec![("comm", &c), ("mapping", &mp)];
                if with_pid {
                    l.push(("pid", &p));
                }
                emit(&l, &r.usage)?;
            }
        }
        Rows::Library(v) => {
            for r in v.iter().filter(|r| !r.total) {
                emit(&[("library", &s(&r.path))], &r.usage)?;
            }
        }
        Rows::Memcg(v) => {
            for r in v.iter().filter(|r| !r.total) {
                let path = r
                    .memcg_path
                    .clone()
                    .unwrap_or_else(|| format!("@{}", r.memcg_ino.unwrap_or(0)));
                emit(&[("memcg", &path)], &r.usage)?;
            }
        }
        Rows::User(v) => {
            for r in v.iter().filter(|r| !r.total) {
                emit(&[("user", &s(&r.user))], &r.usage)?;
            }
        }
    }
    Ok(m)
}
