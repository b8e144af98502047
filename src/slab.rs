//! Slab caches: `/proc/slabinfo` (version 2.1, root only) and `/sys/kernel/slab/<cache>/`
//! (SLUB with CONFIG_SLUB_DEBUG), sampled over time to find caches that only grow, and the
//! `alloc_calls` / `alloc_traces` of a cache booted with `slub_debug=U`.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use crate::text_input::read_capped;
use std::collections::BTreeMap;
use std::path::Path;

/// One cache at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cache {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects allocated (in use + free in slabs).
    pub num_objs: u64,
    /// Object size in bytes.
    pub objsize: u64,
    /// Objects per slab.
    pub objperslab: u64,
    /// Pages per slab.
    pub pagesperslab: u64,
    /// Slabs (0 when the source does not say).
    pub num_slabs: u64,
}

impl Cache {
    /// Memory held by the cache's slabs, in bytes (num_slabs * pagesperslab pages, or
    /// num_objs * objsize when the slab count is unknown).
    pub fn bytes(&self, page_size: u64) -> u64 {
        if self.num_slabs > 0 && self.pagesperslab > 0 {
            self.num_slabs
                .saturating_mul(self.pagesperslab)
                .saturating_mul(page_size)
        } else {
            self.num_objs.saturating_mul(self.objsize)
        }
    }
}

/// The largest slabinfo read (a host has a few hundred caches: ~50 KiB).
pub const MAX_SLABINFO: u64 = 16 << 20;
/// The most caches read from slabinfo or sysfs.
pub const MAX_CACHES: usize = 100_000;
/// The largest sysfs attribute read (one page).
const MAX_ATTR: u64 = 4096;
/// The largest `alloc_calls` / `alloc_traces` read.
pub const MAX_ALLOC_CALLS: u64 = 64 << 20;

/// What slabinfo is, for error messages.
const SLABINFO: &str = "a slabinfo file (\"slabinfo - version: 2.1\" then one line per cache)";

/// Parse `/proc/slabinfo` text (version 2.x: the first line says so). Lines that do not parse
/// are errors naming the line.
pub fn parse_slabinfo(text: &str, path: &Path) -> Result<Vec<Cache>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |msg: &str| Error::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            msg: msg.to_owned(),
        };
        if i == 0 {
            if !line.starts_with("slabinfo - version: 2.") {
                return Err(bad(&format!(
                    "not {SLABINFO}: it starts with {}",
                    crate::input::quote(line)
                )));
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if out.len() >= MAX_CACHES {
            return Err(bad(&format!(
                "more than {MAX_CACHES} caches: not {SLABINFO}"
            )));
        }
        // " : ", not ':': a cache name may hold a colon.
        let (head, rest) = line.split_once(" : ").unwrap_or((line, ""));
        let f: Vec<&str> = head.split_whitespace().collect();
        if f.len() < 6 {
            return Err(bad(
                "expected: name active_objs num_objs objsize objperslab pagesperslab",
            ));
        }
        let n = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| bad(&format!("{} is not a number", crate::input::quote(s))))
        };
        let mut c = Cache {
            name: f[0].to_owned(),
            active_objs: n(f[1])?,
            num_objs: n(f[2])?,
            objsize: n(f[3])?,
            objperslab: n(f[4])?,
            pagesperslab: n(f[5])?,
            num_slabs: 0,
        };
        if let Some((_, sd)) = rest.split_once("slabdata") {
            let s: Vec<&str> = sd.split_whitespace().collect();
            if s.len() >= 2 {
                c.num_slabs = n(s[1])?;
            }
        }
        out.push(c);
    }
    Ok(out)
}

fn first_number(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// Read the caches from `/sys/kernel/slab/*/` (one entry per real cache: aliases, which are
/// symlinks to the same directory, are listed once under their first name).
pub fn read_sysfs(root: &SysRoot) -> Result<Vec<Cache>> {
    let dir = root.sys().join("kernel/slab");
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut seen = BTreeMap::new();
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .take(MAX_CACHES.saturating_mul(4))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(':'))
        .collect();
    names.truncate(MAX_CACHES);
    names.sort();
    let mut out = Vec::new();
    // The files are root-only: when no cache could be read, say why instead of listing none.
    let mut first_error: Option<(std::path::PathBuf, std::io::Error)> = None;
    for name in names {
        let p = dir.join(&name);
        let target = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(target, ()).is_some() {
            continue;
        }
        let rd = |f: &str| {
            read_capped(&p.join(f), MAX_ATTR, "a sysfs slab attribute")
                .ok()
                .and_then(|s| first_number(&s))
        };
        let (Some(active), Some(total)) = (rd("objects"), rd("total_objects")) else {
            if first_error.is_none()
                && let Err(e) = std::fs::read(p.join("objects"))
            {
                first_error = Some((p.join("objects"), e));
            }
            continue;
        };
        let order = rd("order").unwrap_or(0);
        out.push(Cache {
            name,
            active_objs: active,
            num_objs: total,
            objsize: rd("object_size").unwrap_or(0),
            objperslab: rd("objs_per_slab").unwrap_or(0),
            pagesperslab: 1u64 << order.min(20),
            num_slabs: rd("slabs").unwrap_or(0),
        });
    }
    match first_error {
        Some((path, e)) if out.is_empty() => Err(Error::io(path, e)),
        _ => Ok(out),
    }
}

/// Where samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// /proc/slabinfo.
    Slabinfo,
    /// /sys/kernel/slab.
    Sysfs,
}

/// One sample of every cache: /proc/slabinfo when readable, else /sys/kernel/slab.
pub fn sample(root: &SysRoot, prefer: Option<Source>) -> Result<(Source, Vec<Cache>)> {
    let path = root.proc().join("slabinfo");
    let mut slabinfo_error = None;
    if prefer != Some(Source::Sysfs) {
        match read_capped(&path, MAX_SLABINFO, SLABINFO) {
            Ok(t) => return Ok((Source::Slabinfo, parse_slabinfo(&t, &path)?)),
            Err(e) if prefer == Some(Source::Slabinfo) => return Err(e),
            Err(e @ Error::Io { .. }) => slabinfo_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    match (read_sysfs(root), slabinfo_error) {
        (Ok(c), _) => Ok((Source::Sysfs, c)),
        // Neither source: say why slabinfo failed when sysfs is simply absent.
        (Err(Error::Io { source, .. }), Some(e))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(e)
        }
        (Err(e), _) => Err(e),
    }
}

/// A cache over several samples.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trend {
    /// The last sample.
    pub last: Cache,
    /// Active objects in each sample (0 where the cache was absent).
    pub active: Vec<u64>,
    /// Active objects, last minus first.
    pub growth: i64,
    /// Active objects grew between every two consecutive samples (needs >= 2 samples).
    pub suspect: bool,
}

/// Combine samples (oldest first) into one trend per cache present in the last sample.
pub fn trends(samples: &[Vec<Cache>]) -> Vec<Trend> {
    let Some(last) = samples.last() else {
        return Vec::new();
    };
    let maps: Vec<BTreeMap<&str, &Cache>> = samples
        .iter()
        .map(|s| s.iter().map(|c| (c.name.as_str(), c)).collect())
        .collect();
    last.iter()
        .map(|c| {
            let active: Vec<u64> = maps
                .iter()
                .map(|m| m.get(c.name.as_str()).map_or(0, |x| x.active_objs))
                .collect();
            let (a, b) = (
                i128::from(*active.first().unwrap_or(&0)),
                i128::from(*active.last().unwrap_or(&0)),
            );
            let growth = i64::try_from(b - a).unwrap_or(if b > a { i64::MAX } else { i64::MIN });
            let suspect = active.len() >= 2 && active.windows(2).all(|w| w[1] > w[0]);
            Trend {
                last: c.clone(),
                active,
                growth,
                suspect,
            }
        })
        .collect()
}

/// One line of a cache's `alloc_calls` (sysfs) or `alloc_traces` (debugfs, 5.17+).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AllocCall {
    /// Objects allocated from this call site.
    pub count: u64,
    /// The call site (`symbol+off/size`).
    pub site: String,
    /// The rest of the line (age, pid, cpus, nodes).
    pub detail: String,
    /// For alloc_traces, the stack below the call site.
    pub stack: Vec<String>,
}

impl crate::output::Record for AllocCall {
    const TABLE_COLUMNS: &'static [&'static str] = &["count", "site", "detail"];
}

/// Parse `alloc_calls` / `alloc_traces` text, most objects first.
pub fn parse_alloc_calls(text: &str) -> Vec<AllocCall> {
    let mut out: Vec<AllocCall> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let mut it = t.splitn(3, char::is_whitespace);
        let (n, site) = (it.next(), it.next());
        match (n.and_then(|n| n.parse::<u64>().ok()), site) {
            (Some(count), Some(site)) => out.push(AllocCall {
                count,
                site: site.to_owned(),
                detail: it.next().unwrap_or("").trim().to_owned(),
                stack: Vec::new(),
            }),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.stack.push(t.to_owned());
                }
            }
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.count));
    out
}

/// A cache's allocation call sites: debugfs `slab/<cache>/alloc_traces` (5.17+) or sysfs
/// `kernel/slab/<cache>/alloc_calls`. Needs `slub_debug=U` (or `=U,<cache>`) at boot.
pub fn alloc_calls(root: &SysRoot, cache: &str) -> Result<Vec<AllocCall>> {
    let dbg = root.debugfs().join("slab").join(cache).join("alloc_traces");
    let sys = root
        .sys()
        .join("kernel/slab")
        .join(cache)
        .join("alloc_calls");
    let cache_dir = root.sys().join("kernel/slab").join(cache);
    if cache.is_empty() || cache.contains('/') || !cache_dir.exists() {
        return Err(Error::NotFound(format!(
            "no slab cache {cache:?} (the caches are the directories of {})",
            root.sys().join("kernel/slab").display()
        )));
    }
    for p in [&dbg, &sys] {
        match read_capped(p, MAX_ALLOC_CALLS, "an alloc_calls file") {
            Ok(t) => return Ok(parse_alloc_calls(&t)),
            Err(Error::Io { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Unsupported {
        path: sys,
        what: format!("alloc_calls of cache {cache}"),
        hint: format!(
            "boot with slub_debug=U,{cache} (SLUB with CONFIG_SLUB_DEBUG), run as root with debugfs mounted ({})",
            dbg.display()
        ),
    })
}

/// How `pgtool slab` orders caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// Bytes held, most first.
    Size,
    /// Active objects gained, last sample minus first, most first.
    Growth,
    /// Active objects, most first.
    Objects,
}

/// One line of the `pgtool slab` listing (JSON and CSV have the same fields).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlabRecord {
    /// The cache's name.
    pub cache: String,
    /// Object size.
    pub object_size_bytes: u64,
    /// Objects in use (last sample).
    pub active_objs: u64,
    /// Objects allocated, in use or free in slabs (last sample).
    pub num_objs: u64,
    /// Memory held by the cache's slabs (last sample).
    pub size_bytes: u64,
    /// Active objects, last sample minus first.
    pub growth: i64,
    /// Active objects grew between every two consecutive samples (a leak suspect).
    pub suspect: bool,
    /// Active objects in each sample, oldest first.
    pub active_samples: Vec<u64>,
    /// Where the figures come from: slabinfo or sysfs.
    pub source: Source,
}

impl crate::output::Record for SlabRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "cache",
        "object_size_bytes",
        "active_objs",
        "num_objs",
        "size_bytes",
        "growth",
        "suspect",
    ];
}

/// Order trends and make listing records (all of them; the caller cuts).
pub fn records(trends: &[Trend], sort: SortBy, source: Source, page_size: u64) -> Vec<SlabRecord> {
    let mut v: Vec<SlabRecord> = trends
        .iter()
        .map(|t| SlabRecord {
            cache: t.last.name.clone(),
            object_size_bytes: t.last.objsize,
            active_objs: t.last.active_objs,
            num_objs: t.last.num_objs,
            size_bytes: t.last.bytes(page_size),
            growth: t.growth,
            active_samples: t.active.clone(),
            suspect: t.suspect,
            source,
        })
        .collect();
    match sort {
        SortBy::Growth => v.sort_by_key(|r| std::cmp::Reverse(r.growth)),
        SortBy::Objects => v.sort_by_key(|r| std::cmp::Reverse(r.active_objs)),
        SortBy::Size => v.sort_by_key(|r| std::cmp::Reverse(r.size_bytes)),
    }
    v
}

/// The Prometheus families of a slab sampling: per cache (label `cache`, the only label, so
/// the series set is bounded by the kernel's caches) its bytes, objects, object size, growth
/// over the window and whether it is a leak suspect; and the window itself.
pub fn metrics(
    recs: &[SlabRecord],
    window: std::time::Duration,
) -> Result<crate::output::metrics::Metrics> {
    use crate::output::metrics::{Kind, Metrics};
    let mut m = Metrics::new();
    type Family = (&'static str, &'static str, fn(&SlabRecord) -> f64);
    let fams: [Family; 6] = [
        (
            "pgtool_slab_cache_bytes",
            "Memory held by the slab cache's slabs, in bytes (last sample).",
            |r| r.size_bytes as f64,
        ),
        (
            "pgtool_slab_cache_active_objects",
            "Objects in use in the slab cache (last sample).",
            |r| r.active_objs as f64,
        ),
        (
            "pgtool_slab_cache_objects",
            "Objects allocated in the slab cache, in use or free (last sample).",
            |r| r.num_objs as f64,
        ),
        (
            "pgtool_slab_cache_object_size_bytes",
            "Size of one object of the slab cache, in bytes.",
            |r| r.object_size_bytes as f64,
        ),
        (
            "pgtool_slab_cache_growth_objects",
            "Active objects gained over the sampling window (last sample minus first).",
            |r| r.growth as f64,
        ),
        (
            "pgtool_slab_cache_leak_suspect",
            "1 when the cache's active objects grew between every two samples of the window.",
            |r| f64::from(u8::from(r.suspect)),
        ),
    ];
    for (name, help, value) in fams {
        let f = m.family(name, help, Kind::Gauge)?;
        for r in recs {
            f.add(&[("cache", &r.cache)], value(r));
        }
    }
    m.family(
        "pgtool_slab_window_seconds",
        "Time between the first and the last sample behind the growth figures.",
        Kind::Gauge,
    )?
    .add(&[], window.as_secs_f64());
    Ok(m)
}
