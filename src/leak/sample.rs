//! One sample of everything `pgtool leak` watches: meminfo, slab caches (through
//! [`crate::slab::sample`]), vmalloc areas grouped by caller, per-process RSS from
//! `/proc/PID/status`, and per-memcg usage. What cannot be read (not root, no such file) is
//! left out of the sample and said once as a note.

use super::meminfo::Meminfo;
use crate::cgroup::CgroupIndex;
use crate::error::{Error, Result};
use crate::root::SysRoot;
use crate::slab::Cache;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The largest vmallocinfo read (a big machine's has ~100k lines of ~100 bytes).
pub const MAX_VMALLOCINFO: u64 = 256 << 20;
/// The most memcgs sampled (the rest are left out with a note).
pub const MAX_MEMCGS: usize = 20_000;
/// The caller of vmalloc'd kernel stacks (CONFIG_VMAP_STACK), also counted in KernelStack.
pub const STACK_CALLER: &str = "alloc_thread_stack_node";

/// vmalloc'd memory by caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vmalloc {
    /// Bytes of pages (the `pages=N` of each area) per caller function (offset dropped).
    pub by_caller: BTreeMap<String, u64>,
}

impl Vmalloc {
    /// Bytes of vmalloc'd kernel stacks.
    pub fn stacks(&self) -> u64 {
        self.by_caller.get(STACK_CALLER).copied().unwrap_or(0)
    }
    /// Every caller's bytes.
    pub fn total(&self) -> u64 {
        self.by_caller.values().sum()
    }
}

/// Parse `/proc/vmallocinfo`: `START-END SIZE CALLER+off/len pages=N ...`. Areas without
/// `pages=` (ioremap, vmap, unpurged) hold no vmalloc pages and are skipped, so the total
/// matches VmallocUsed.
pub fn parse_vmallocinfo(text: &str, path: &Path, page_size: u64) -> Result<Vmalloc> {
    let mut v = Vmalloc::default();
    for (i, line) in text.lines().enumerate() {
        let mut w = line.split_whitespace();
        let (Some(range), Some(_size)) = (w.next(), w.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(bad_vmalloc(path, i, line));
        };
        if !range.contains('-') {
            return Err(bad_vmalloc(path, i, line));
        }
        let rest: Vec<&str> = w.collect();
        let Some(pages) = rest.iter().find_map(|t| t.strip_prefix("pages=")) else {
            continue;
        };
        let pages: u64 = pages.parse().map_err(|_| bad_vmalloc(path, i, line))?;
        let caller = rest
            .first()
            .filter(|c| !c.starts_with("pages="))
            .map_or("?", |c| c.split('+').next().unwrap_or(c));
        *v.by_caller.entry(caller.to_string()).or_default() += pages.saturating_mul(page_size);
    }
    Ok(v)
}

fn bad_vmalloc(path: &Path, i: usize, line: &str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line: i + 1,
        msg: format!(
            "not a vmallocinfo line: {line:?} (expected \"0xSTART-0xEND SIZE caller pages=N ...\")"
        ),
    }
}

/// A process's memory from `/proc/PID/status`, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcMem {
    /// The PID.
    pub pid: u32,
    /// Its `Name:`.
    pub comm: String,
    /// RssAnon.
    pub anon: u64,
    /// RssFile.
    pub file: u64,
    /// RssShmem.
    pub shmem: u64,
}

/// Parse the fields of `/proc/PID/status` we use; `None` for a kernel thread (no VmRSS).
pub fn parse_status(pid: u32, text: &str) -> Option<ProcMem> {
    let mut p = ProcMem {
        pid,
        ..ProcMem::default()
    };
    let mut rss = false;
    let kb = |v: &str| {
        v.split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n.saturating_mul(1024))
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "Name" => p.comm = v.trim().to_string(),
            "VmRSS" => rss = true,
            "RssAnon" => p.anon = kb(v),
            "RssFile" => p.file = kb(v),
            "RssShmem" => p.shmem = kb(v),
            _ => {}
        }
    }
    rss.then_some(p)
}

/// One memcg's usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemcgUse {
    /// Its path.
    pub path: String,
    /// memory.current (v2) or memory.usage_in_bytes (v1).
    pub bytes: u64,
}

/// One sample.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Seconds since the first sample.
    pub t: f64,
    /// /proc/meminfo.
    pub meminfo: Meminfo,
    /// Slab caches, when readable.
    pub slab: Option<Vec<Cache>>,
    /// vmalloc by caller, when readable.
    pub vmalloc: Option<Vmalloc>,
    /// Processes with an address space.
    pub procs: Vec<ProcMem>,
    /// Memcgs.
    pub memcgs: Vec<MemcgUse>,
}

/// Takes samples and remembers what could not be read.
pub struct Sampler {
    root: SysRoot,
    start: std::time::Instant,
    memcgs: Option<CgroupIndex>,
    /// What could not be read, once each.
    pub notes: BTreeSet<String>,
}

impl Sampler {
    /// A sampler of `root`.
    pub fn new(root: &SysRoot) -> Sampler {
        let mut notes = BTreeSet::new();
        let memcgs = match CgroupIndex::build(root) {
            Ok(i) => Some(i),
            Err(e) => {
                notes.insert(format!("memcgs not sampled: {e}"));
                None
            }
        };
        Sampler {
            root: root.clone(),
            start: std::time::Instant::now(),
            memcgs,
            notes,
        }
    }

    /// Take one sample. Only an unreadable meminfo is an error.
    pub fn sample(&mut self) -> Result<Sample> {
        let t = self.start.elapsed().as_secs_f64();
        let meminfo = Meminfo::read(&self.root.meminfo())?;
        let slab = match crate::slab::sample(&self.root, None) {
            Ok((_, c)) => Some(c),
            Err(e) => {
                self.notes.insert(format!("slab caches not sampled: {e}"));
                None
            }
        };
        let vpath = self.root.vmallocinfo();
        let vmalloc = crate::text_input::read_capped(&vpath, MAX_VMALLOCINFO, "/proc/vmallocinfo")
            .and_then(|t| parse_vmallocinfo(&t, &vpath, crate::page_size()));
        let vmalloc = match vmalloc {
            Ok(v) => Some(v),
            Err(e) => {
                self.notes
                    .insert(format!("vmalloc callers not sampled: {e}"));
                None
            }
        };
        Ok(Sample {
            t,
            meminfo,
            slab,
            vmalloc,
            procs: self.procs(),
            memcgs: self.memcgs(),
        })
    }

    fn procs(&mut self) -> Vec<ProcMem> {
        let list = match crate::process::list(&self.root) {
            Ok(l) => l,
            Err(e) => {
                self.notes.insert(format!("processes not sampled: {e}"));
                return Vec::new();
            }
        };
        list.iter()
            .filter(|p| !p.kernel_thread)
            .filter_map(|p| {
                let t = std::fs::read_to_string(self.root.pid_file(p.pid, "status")).ok()?;
                parse_status(p.pid, &t)
            })
            .collect()
    }

    fn memcgs(&mut self) -> Vec<MemcgUse> {
        let Some(idx) = &self.memcgs else {
            return Vec::new();
        };
        let kind = idx.memcg_hierarchy();
        let mut out = Vec::new();
        let mut all: Vec<_> = idx.iter().filter(|c| Some(c.hierarchy) == kind).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        if all.len() > MAX_MEMCGS {
            self.notes.insert(format!(
                "{} memcgs: only the first {MAX_MEMCGS} by path are sampled",
                all.len()
            ));
            all.truncate(MAX_MEMCGS);
        }
        for c in all {
            let file = if c.hierarchy == "v2" {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            let Ok(t) = std::fs::read_to_string(c.path.join(file)) else {
                continue; // the v2 root has no memory.current; a memcg may go away
            };
            if let Ok(bytes) = t.trim().parse() {
                out.push(MemcgUse {
                    path: c.path.to_string_lossy().into_owned(),
                    bytes,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmallocinfo_groups_by_caller_and_skips_areas_without_pages() {
        let t = "\
0xffffc90000000000-0xffffc90000005000   20480 irq_init_percpu_irqstack+0xed/0x120 vmap
0xffffc90000010000-0xffffc90000015000   20480 alloc_thread_stack_node+0x9c/0x1b0 pages=4 vmalloc N0=4
0xffffc90000020000-0xffffc90000025000   20480 alloc_thread_stack_node+0x9c/0x1b0 pages=4 vmalloc N0=4
0xffffc90000030000-0xffffc90000033000   12288 bpf_prog_alloc+0x2b/0xc0 pages=2 vmalloc
0xffffc90000040000-0xffffc90000042000    8192 unpurged vm_area
";
        let v = parse_vmallocinfo(t, Path::new("v"), 4096).expect("parse");
        assert_eq!(v.stacks(), 8 * 4096);
        assert_eq!(v.by_caller.get("bpf_prog_alloc"), Some(&(2 * 4096)));
        assert_eq!(v.by_caller.len(), 2);
        assert_eq!(v.total(), 10 * 4096);
        let e = parse_vmallocinfo("garbage\n", Path::new("/p/vmallocinfo"), 4096)
            .expect_err("not vmallocinfo");
        assert!(e.to_string().contains("/p/vmallocinfo:1"), "{e}");
        let e = parse_vmallocinfo("0x1-0x2 4096 f+0/1 pages=x\n", Path::new("v"), 4096)
            .expect_err("bad pages");
        assert!(e.to_string().contains("pages=x"), "{e}");
    }

    #[test]
    fn status_fields() {
        let t = "Name:\tleak_msg\nVmRSS:\t    1200 kB\nRssAnon:\t     100 kB\nRssFile:\t    1000 kB\nRssShmem:\t     100 kB\n";
        let p = parse_status(7, t).expect("user process");
        assert_eq!((p.pid, p.comm.as_str()), (7, "leak_msg"));
        assert_eq!((p.anon, p.file, p.shmem), (102_400, 1_024_000, 102_400));
        assert_eq!(parse_status(2, "Name:\tkthreadd\nThreads:\t1\n"), None);
    }
}
