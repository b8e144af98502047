//! The working-set sampler behind `pgtool idle wss`: mark a process's pages idle (or clear its
//! referenced bits), wait an interval, count what was accessed per mapping, repeat.
//!
//! A library user drives it as the CLI does:
//!
//! ```no_run
//! use pgtool::idle::wss::{Sampler, WssLabels, WssRequest};
//! use pgtool::idle::Method;
//! let root = pgtool::SysRoot::live();
//! let req = WssRequest::new(1234, Method::Refs, std::time::Duration::from_secs(1));
//! let mut s = Sampler::start(&root, req)?;
//! eprintln!("{}", s.touches());
//! let sample = s.sample()?;
//! for r in sample.records(false) {
//!     eprintln!("{:?} {} accessed", r.vma, r.accessed_pages);
//! }
//! sample.metrics(WssLabels::default())?.write_textfile("/tmp/wss.prom".as_ref())?;
//! # Ok::<(), pgtool::Error>(())
//! ```
//!
//! Metrics stay bounded: series are labelled by the process's `comm` and the mapping's name
//! (`[heap]`, `[stack]`, `[anon]`, a file path), summed over the VMAs of one name, and carry the
//! PID and address range only when [`WssLabels`] asks (each restart or ASLR layout then makes
//! new series).

use super::IdleBitmap;
use super::pageset::{Counts, PageSet, count};
use super::refs::{self, Method};
use super::request::{VmaRecord, comm_of, describe_pid, process_vmas, select_vmas};
use crate::addr::page_size;
use crate::error::{Error, Result};
use crate::maps::Vma;
use crate::output::Record;
use crate::output::metrics::{Kind, Metrics};
use crate::root::SysRoot;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What to sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WssRequest {
    /// The process.
    pub pid: u32,
    /// Only mappings matching one of these names; empty: all.
    pub vma: Vec<String>,
    /// The method ([`refs::auto_method`] picks one).
    pub method: Method,
    /// Time between samples.
    pub interval: Duration,
}

impl WssRequest {
    /// Every mapping of `pid`, with `method`, every `interval`.
    pub fn new(pid: u32, method: Method, interval: Duration) -> WssRequest {
        WssRequest {
            pid,
            vma: Vec::new(),
            method,
            interval,
        }
    }
}

/// Which labels beside `comm` and `mapping` the metrics carry. Each multiplies the series:
/// `pid` makes new series at every restart, `vma` (the address range) at every ASLR layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WssLabels {
    /// Label by PID.
    pub pid: bool,
    /// Label by VMA address range (one series per VMA instead of one per mapping name).
    pub vma: bool,
}

/// One mapping's figures in one interval (or the process total, with a `vma` of nulls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WssRecord {
    /// The interval number, from 1.
    pub interval: u64,
    /// The process.
    pub pid: u32,
    /// The mapping; nulls on the process's total row.
    #[serde(serialize_with = "super::request::vma_or_nulls")]
    pub vma: Option<VmaRecord>,
    /// Resident pages.
    pub pages: u64,
    /// Pages accessed during the interval.
    pub accessed_pages: u64,
    /// Resident pages not accessed during the interval.
    pub idle_pages: u64,
    /// `accessed_pages` in bytes.
    pub accessed_bytes: u64,
}

impl Record for WssRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "vma_start",
        "vma_perms",
        "vma_path",
        "pages",
        "accessed_pages",
        "accessed_bytes",
    ];
    const TABLE_GROUP: Option<&'static str> = Some("interval");
}

/// One interval's sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The interval number, from 1.
    pub interval: u64,
    /// The process's `comm` (empty when unreadable).
    pub comm: String,
    /// Every selected mapping (resident or not), in address order.
    pub rows: Vec<WssRecord>,
    /// The process total over `rows`.
    pub total: WssRecord,
}

/// The name a mapping is labelled with: its path, or `[heap]`, `[stack]`, `[anon]`, ...
fn mapping_name(v: &VmaRecord) -> &str {
    if v.path.is_empty() { "[anon]" } else { &v.path }
}

impl Sample {
    /// The records to list: mappings with resident pages (every mapping when `all`), then the
    /// total.
    pub fn records(&self, all: bool) -> impl Iterator<Item = &WssRecord> {
        self.rows
            .iter()
            .filter(move |r| all || r.pages > 0)
            .chain(std::iter::once(&self.total))
    }

    /// The sample as Prometheus gauges, labelled by `comm` and `mapping` (summed over the
    /// VMAs of one name), plus `pid` / `vma` when `labels` asks. Every selected mapping is
    /// a series, resident or not, so consecutive samples of one workload have one set of
    /// series.
    pub fn metrics(&self, labels: WssLabels) -> Result<Metrics> {
        let mut m = Metrics::new();
        type Family = (&'static str, &'static str, fn(&WssRecord) -> u64);
        let families: [Family; 4] = [
            (
                "pgtool_wss_resident_pages",
                "Resident pages of the mapping when sampled.",
                |r| r.pages,
            ),
            (
                "pgtool_wss_accessed_pages",
                "Pages of the mapping accessed during the last sampling interval.",
                |r| r.accessed_pages,
            ),
            (
                "pgtool_wss_idle_pages",
                "Resident pages of the mapping not accessed during the last sampling interval.",
                |r| r.idle_pages,
            ),
            (
                "pgtool_wss_accessed_bytes",
                "Bytes of the mapping accessed during the last sampling interval.",
                |r| r.accessed_bytes,
            ),
        ];
        let pid = self.total.pid.to_string();
        for (name, help, value) in families {
            let f = m.family(name, help, Kind::Gauge)?;
            for r in &self.rows {
                let Some(v) = &r.vma else { continue };
                let range = format!("{:x}-{:x}", v.start, v.end);
                let mut l: Vec<(&str, &str)> =
                    vec![("comm", self.comm.as_str()), ("mapping", mapping_name(v))];
                if labels.pid {
                    l.push(("pid", &pid));
                }
                if labels.vma {
                    l.push(("vma", &range));
                }
                f.add(&l, value(r) as f64);
            }
        }
        Ok(m)
    }
}

/// A running working-set sampler (see the module docs).
#[derive(Debug)]
pub struct Sampler<'a> {
    root: &'a SysRoot,
    req: WssRequest,
    comm: String,
    bitmap: Option<IdleBitmap>,
    /// When the current interval began (the last mark or clear).
    began: Instant,
    done: u64,
    marked_pages: u64,
}

impl<'a> Sampler<'a> {
    /// Check the request, then start the first interval: mark the process's pages idle
    /// ([`Method::Idle`]) or clear its referenced bits ([`Method::Refs`]). Both write, so both
    /// refuse a snapshot root (`--root` is read-only) before reading anything.
    pub fn start(root: &'a SysRoot, req: WssRequest) -> Result<Sampler<'a>> {
        let bitmap = match req.method {
            Method::Idle => Some(IdleBitmap::open(root, true)?),
            Method::Refs => {
                if !root.is_live() {
                    return Err(refs::refused_under_root(
                        &root.pid_file(req.pid, "clear_refs"),
                    ));
                }
                None
            }
        };
        Sampler::begin(root, req, bitmap)
    }

    /// [`Sampler::start`] with the idle method on a bitmap the caller opened (a fixture file
    /// under a test root, say): the caller has chosen to write it.
    pub fn start_with_bitmap(
        root: &'a SysRoot,
        mut req: WssRequest,
        bitmap: IdleBitmap,
    ) -> Result<Sampler<'a>> {
        req.method = Method::Idle;
        Sampler::begin(root, req, Some(bitmap))
    }

    fn begin(
        root: &'a SysRoot,
        req: WssRequest,
        bitmap: Option<IdleBitmap>,
    ) -> Result<Sampler<'a>> {
        if req.interval.is_zero() {
            return Err(Error::Usage(
                "idle wss: the interval must be above 0".into(),
            ));
        }
        let comm = comm_of(root, req.pid).unwrap_or_default();
        let vmas = select_vmas(root, req.pid, process_vmas(root, req.pid)?, &req.vma)?;
        let mut s = Sampler {
            root,
            req,
            comm,
            bitmap,
            began: Instant::now(),
            done: 0,
            marked_pages: 0,
        };
        match &s.bitmap {
            Some(b) => {
                let set = PageSet::from_vmas(root, s.req.pid, vmas, None)?;
                s.marked_pages = set.len() as u64;
                set.mark(b)?;
            }
            None => refs::clear_refs(root, s.req.pid)?,
        }
        s.began = Instant::now();
        Ok(s)
    }

    /// What this sampler writes, for the user to read before the first interval ends.
    pub fn touches(&self) -> String {
        let who = describe_pid(self.root, self.req.pid);
        let every = format_duration(self.req.interval);
        match &self.bitmap {
            Some(b) => format!(
                "idle wss: marks the resident pages of {who} idle in {} every {every} ({} \
                 marked now); the process itself is left alone",
                b.path().display(),
                self.marked_pages
            ),
            None => format!(
                "idle wss: writes 1 to {} every {every}: this clears the referenced bits of \
                 {who}'s pages, which page reclaim also uses",
                self.root.pid_file(self.req.pid, "clear_refs").display()
            ),
        }
    }

    /// The method in use.
    pub fn method(&self) -> Method {
        if self.bitmap.is_some() {
            Method::Idle
        } else {
            Method::Refs
        }
    }

    /// True when the process has exited (gone, or a zombie): the natural end of a sampler
    /// started without a count.
    pub fn process_ended(&self) -> bool {
        let status = std::fs::read(self.root.pid_file(self.req.pid, "status"));
        match status {
            Err(_) => true,
            Ok(b) => String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.starts_with("State:") && l[6..].trim_start().starts_with('Z')),
        }
    }

    /// Intervals sampled so far.
    pub fn intervals(&self) -> u64 {
        self.done
    }

    /// Wait for the end of the current interval, count what was accessed, and start the next
    /// interval. A process that exited is [`Error::NoSuchProcess`].
    pub fn sample(&mut self) -> Result<Sample> {
        let spent = self.began.elapsed();
        if spent < self.req.interval {
            std::thread::sleep(self.req.interval - spent);
        }
        let (pid, ps) = (self.req.pid, page_size());
        let counted: Vec<(Vma, Counts)> = match &self.bitmap {
            Some(b) => {
                let vmas =
                    select_vmas(self.root, pid, process_vmas(self.root, pid)?, &self.req.vma)?;
                let set = PageSet::from_vmas(self.root, pid, vmas, None)?;
                let bits = set.read(b)?;
                self.began = Instant::now();
                set.mark(b)?;
                set.groups
                    .into_iter()
                    .zip(&bits)
                    .filter_map(|((v, _), bits)| v.map(|v| (v, count(bits))))
                    .collect()
            }
            None => {
                let s = refs::refs_sample(self.root, pid)?;
                if s.is_empty() {
                    // A zombie's smaps is empty and its clear_refs accepts writes: say why
                    // instead of sampling nothing forever.
                    process_vmas(self.root, pid)?;
                }
                self.began = Instant::now();
                refs::clear_refs(self.root, pid)?;
                let names = &self.req.vma;
                s.into_iter()
                    .filter(|x| names.is_empty() || names.iter().any(|n| x.vma.matches_name(n)))
                    .map(|x| {
                        let pages = x.rss / ps;
                        let acc = (x.referenced / ps).min(pages);
                        let c = Counts {
                            pages,
                            idle_pages: pages - acc,
                            accessed_pages: acc,
                        };
                        (x.vma, c)
                    })
                    .collect()
            }
        };
        self.done += 1;
        let interval = self.done;
        let rec = |vma: Option<VmaRecord>, c: &Counts| WssRecord {
            interval,
            pid,
            vma,
            pages: c.pages,
            accessed_pages: c.accessed_pages,
            idle_pages: c.idle_pages,
            accessed_bytes: c.accessed_pages.saturating_mul(ps),
        };
        let mut total = Counts::default();
        let rows = counted
            .iter()
            .map(|(v, c)| {
                total.pages += c.pages;
                total.idle_pages += c.idle_pages;
                total.accessed_pages += c.accessed_pages;
                rec(Some(VmaRecord::from(v)), c)
            })
            .collect();
        Ok(Sample {
            interval,
            comm: self.comm.clone(),
            rows,
            total: rec(None, &total),
        })
    }
}

/// `1s`, `500ms`, `1m30s`-free short form for messages.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start: u64, path: &str, pages: u64, acc: u64) -> WssRecord {
        WssRecord {
            interval: 1,
            pid: 42,
            vma: Some(VmaRecord {
                start,
                end: start + 0x1000,
                perms: "rw-p".into(),
                path: path.into(),
            }),
            pages,
            accessed_pages: acc,
            idle_pages: pages - acc,
            accessed_bytes: acc * 4096,
        }
    }

    #[test]
    fn metrics_sum_by_mapping_name_without_pid_or_address() {
        let s = Sample {
            interval: 1,
            comm: "app".into(),
            rows: vec![
                row(0x1000, "/usr/lib/libc.so.6", 4, 1),
                row(0x3000, "/usr/lib/libc.so.6", 6, 2),
                row(0x9000, "", 3, 3),
                row(0xa000, "[heap]", 0, 0),
            ],
            total: row(0, "", 13, 6),
        };
        let text = s.metrics(WssLabels::default()).expect("metrics").render();
        assert!(
            text.contains(
                "pgtool_wss_accessed_pages{comm=\"app\",mapping=\"/usr/lib/libc.so.6\"} 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("mapping=\"[anon]\"} 3\n"), "{text}");
        assert!(
            text.contains("mapping=\"[heap]\"} 0\n"),
            "a resident-less mapping stays a series"
        );
        assert!(!text.contains("pid=") && !text.contains("vma="), "{text}");
        assert!(!text.contains("_total"), "{text}");
        let with = s
            .metrics(WssLabels {
                pid: true,
                vma: true,
            })
            .expect("metrics")
            .render();
        assert!(with.contains("pid=\"42\",vma=\"3000-4000\"} 2\n"), "{with}");
    }
}
