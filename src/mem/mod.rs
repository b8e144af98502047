//! Who uses the memory: RSS, PSS, USS, swap and SwapPss per process, mapping, library (librank),
//! memcg (where each page is charged, from kpagecgroup) or user, computed page by page from
//! pagemap, kpagecount and kpageflags with the kernel's own smaps rules (see [`usage`]).
//!
//! Where PFNs are hidden (not root) or a snapshot has no pagemap, per-process figures come from
//! `smaps_rollup` instead, and the report says so.
//!
//! ```no_run
//! use pgtool::mem::{self, By, Request};
//! let rep = mem::report(&pgtool::SysRoot::live(), &Request::default())?;
//! for n in &rep.notes { eprintln!("{n}"); }
//! # Ok::<(), pgtool::Error>(())
//! ```

mod backing;
mod build;
mod lookup;
mod notes;
mod part;
pub mod procs;
pub mod records;
pub mod rollup;
mod rows;
pub mod scan;
pub mod usage;
mod users;

pub use build::report;
pub use records::Rows;

/// What rows are summed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum By {
    /// One row per address space.
    #[default]
    Process,
    /// One row per mapping name per process (showmap).
    Mapping,
    /// One row per mapped file over all processes (librank).
    Library,
    /// One row per memcg the pages are charged to.
    Memcg,
    /// One row per user.
    User,
}

/// Where the figures came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// pagemap + kpagecount + kpageflags.
    Pages,
    /// `/proc/PID/smaps_rollup` (PFNs hidden, or a snapshot without pagemap).
    Rollup,
}

/// What to report.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Rows summed by.
    pub by: By,
    /// Only these PIDs (empty: all).
    pub pids: Vec<u32>,
    /// With `pids`: their descendants too.
    pub children: bool,
    /// Only processes with one of these command names (exact `comm`).
    pub comm: Vec<String>,
    /// Only processes in this cgroup (path or `@INODE`) or below it, in the memory
    /// controller's hierarchy.
    pub cgroup: Option<String>,
    /// Only mappings these select ([`crate::maps::Vma::matches_name`]: a path, a bracketed
    /// name, or part of a file name).
    pub paths: Vec<String>,
    /// Pagemap entries per read (0: [`scan::BATCH_PAGES`]).
    pub batch: usize,
    /// Threads one large address space may be read by (0: the CPUs this process may use,
    /// at most 8). Each has its own batch buffers.
    pub threads: usize,
    /// Use smaps_rollup even where pages can be read.
    pub rollup: bool,
    /// Count pages mapped once from pagemap alone where it tells all (see
    /// [`scan::Walker::lean`]): faster, every smaps figure exact, THP/KSM/dirty unknown.
    /// Ignored by `--by memcg`.
    pub lean: bool,
}

/// Counts of what the scan skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Address spaces read.
    pub read: u64,
    /// Processes that exited while being read (skipped).
    pub exited: u64,
    /// Processes that could not be read (permission, damaged snapshot file): skipped.
    pub unreadable: u64,
    /// Resident pages in large folios.
    pub large_folio_pages: u64,
    /// Processes merged because they share an address space.
    pub shared_mm: u64,
}

/// A finished report.
#[derive(Clone, Debug)]
pub struct Report {
    /// The rows, largest PSS first, the total last.
    pub rows: Rows,
    /// Where the figures came from.
    pub source: Source,
    /// What the figures mean here, and what was skipped.
    pub notes: Vec<String>,
    /// Counts.
    pub stats: Stats,
}
