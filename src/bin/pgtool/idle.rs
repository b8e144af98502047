//! `pgtool idle`: mark pages idle, read them back, sample a process's working set.

use crate::Global;
use crate::output::{self, Format, FormatArgs, stdout_error, write_json_line};
use pgtool::idle::{self, Counts, IdleBitmap, Method, PageSet};
use pgtool::maps::Vma;
use pgtool::{Error, Pfn, SysRoot, VirtAddr, page_size};
use std::io::{self, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `pgtool idle`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Idle page tracking needs CONFIG_IDLE_PAGE_TRACKING \
(/sys/kernel/mm/page_idle/bitmap) and root. A page counts as accessed when its bit was cleared \
since it was marked, or when it cannot be tracked (not on an LRU list). Pages of a large folio \
(THP) share the bit of the folio's head page.")]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Mark pages idle.
    Mark(Source),
    /// Count the pages still idle and those accessed since they were marked.
    Read(ReadArgs),
    /// Sample a process's working set per VMA, every interval.
    Wss(WssArgs),
    /// Draw a process's working set over time: time x address, by accessed share.
    Heatmap(crate::heatmap::Args),
}

/// Which pages.
#[derive(clap::Args, Debug)]
struct Source {
    /// The present pages of this process.
    #[arg(long, conflicts_with_all = ["pfn", "cgroup"], required_unless_present_any = ["pfn", "cgroup"])]
    pid: Option<u32>,
    /// Only mappings with this name (path, file-name substring, [heap], [stack], [anon]);
    /// repeatable. With --pid.
    #[arg(long, requires = "pid")]
    vma: Vec<String>,
    /// Only this virtual address range: START-END, START+LEN or ADDR (hex). With --pid.
    #[arg(long, requires = "pid")]
    addr: Option<String>,
    /// A PFN range: FIRST-LAST or FIRST,LAST (both included, as in `pgtool who`), FIRST+COUNT,
    /// or one PFN; holes are skipped.
    #[arg(long, conflicts_with = "cgroup")]
    pfn: Option<String>,
    /// The pages charged to this memcg (a cgroup directory, e.g. /sys/fs/cgroup/system.slice).
    #[arg(long)]
    cgroup: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ReadArgs {
    #[command(flatten)]
    source: Source,
    /// List every page (address, PFN, head PFN, idle).
    #[arg(short = 'L', long)]
    list: bool,
    #[command(flatten)]
    format: FormatArgs,
}

#[derive(clap::Args, Debug)]
struct WssArgs {
    /// The process.
    #[arg(long)]
    pid: u32,
    /// Only mappings with this name (repeatable).
    #[arg(long)]
    vma: Vec<String>,
    /// Sampling interval: 1s, 500ms, 2.5 (seconds).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Stop after this many intervals (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// idle: the page_idle bitmap (leaves the process alone); refs: /proc/PID/clear_refs +
    /// smaps Referenced (clears the process's referenced bits, which reclaim also uses);
    /// auto: idle when the bitmap exists, else refs.
    #[arg(long, default_value = "auto", value_parser = ["idle", "refs", "auto"])]
    method: String,
    /// Also write the latest sample to FILE in OpenMetrics text format (written to FILE.tmp,
    /// then renamed), for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Print VMAs with no resident pages too.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: FormatArgs,
}

/// Run `pgtool idle`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    match args.action {
        Action::Mark(src) => {
            let bitmap = IdleBitmap::open(&root, true)?;
            let n = mark_source(&root, &bitmap, &src)?;
            eprintln!("marked {n} pages idle");
            Ok(0)
        }
        Action::Read(a) => read(&root, a),
        Action::Wss(a) => wss(&root, a),
        Action::Heatmap(a) => crate::heatmap::run(&root, a),
    }
}

/// A number: hex with 0x (or always hex when `hex` is true), else decimal.
pub fn parse_num(s: &str, hex: bool) -> Result<u64, Error> {
    let t = s.trim();
    let r = if hex && !t.starts_with("0x") && !t.starts_with("0X") {
        pgtool::addr::parse_hex(t)
    } else {
        pgtool::addr::parse_number(t)
    };
    r.ok_or_else(|| Error::Usage(format!("bad number {s:?}")))
}

/// A range: START-END, START,END, START+LEN, START,+LEN or a single value (`unit` long).
/// `inclusive`: END is the last element (PFN ranges, as in `pgtool who`); otherwise END is one
/// past the end (address ranges, as in `pgtool v2p`).
pub fn parse_range(s: &str, hex: bool, unit: u64, inclusive: bool) -> Result<Range<u64>, Error> {
    let (a, b, plus) = if let Some((a, b)) = s.split_once(",+") {
        (a, Some(b), true)
    } else if let Some((a, b)) = s.split_once('+') {
        (a, Some(b), true)
    } else if let Some((a, b)) = s.split_once(['-', ',']) {
        (a, Some(b), false)
    } else {
        (s, None, false)
    };
    let start = parse_num(a, hex)?;
    let end = match b {
        None => start.saturating_add(unit),
        Some(b) if plus => start.saturating_add(parse_num(b, hex)?),
        Some(b) => parse_num(b, hex)?
            .checked_add(u64::from(inclusive))
            .ok_or_else(|| Error::Usage(format!("range {s:?} ends past the largest number")))?,
    };
    if end <= start {
        return Err(Error::Usage(format!("empty range {s:?}")));
    }
    Ok(start..end)
}

/// PFN arguments: each a PFN or a range (as [`parse_range`]).
pub fn parse_pfn_list(args: &[String]) -> Result<Vec<Pfn>, Error> {
    let mut out = Vec::new();
    for a in args {
        let r = parse_range(a, false, 1, true)?;
        if r.end - r.start > 1 << 20 {
            return Err(Error::Usage(format!("range {a:?} too large")));
        }
        out.extend(r.map(Pfn));
    }
    Ok(out)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mul) = if let Some(v) = t.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('m') {
        (v, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 1s, 500ms, 2.5)"))?;
    if !(v > 0.0 && v * mul < 1e7) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

fn vma_selector(names: &[String]) -> impl Fn(&Vma) -> bool + '_ {
    move |v: &Vma| names.is_empty() || names.iter().any(|n| v.matches_name(n))
}

fn collect(root: &SysRoot, src: &Source) -> Result<PageSet, Error> {
    if let Some(pid) = src.pid {
        let range = match &src.addr {
            Some(a) => {
                let r = parse_range(a, true, page_size(), false)?;
                Some(VirtAddr(r.start)..VirtAddr(r.end))
            }
            None => None,
        };
        let sel = vma_selector(&src.vma);
        let set = PageSet::from_pid(root, pid, &sel, range)?;
        if !src.vma.is_empty() && set.groups.is_empty() {
            return Err(Error::NotFound(format!(
                "no mapping of pid {pid} matches {}",
                src.vma.join(", ")
            )));
        }
        Ok(set)
    } else if let Some(p) = &src.pfn {
        let r = parse_range(p, false, 1, true)?;
        PageSet::from_pfn_range(root, Pfn(r.start)..Pfn(r.end))
    } else if let Some(cg) = &src.cgroup {
        let ino = pgtool::cgroup::inode_of(cg)?;
        PageSet::from_cgroup(root, ino)
    } else {
        Err(Error::Usage(
            "name the pages: --pid, --pfn or --cgroup".into(),
        ))
    }
}

fn mark_source(root: &SysRoot, bitmap: &IdleBitmap, src: &Source) -> Result<usize, Error> {
    if let (Some(p), None) = (&src.pfn, src.pid) {
        // A PFN range: all-ones words over its RAM parts, no per-page list needed.
        let r = parse_range(p, false, 1, true)?;
        let mut n = 0;
        idle::drain_lru_batches();
        for ram in idle::ram_ranges(root)? {
            let (s, e) = (ram.start.0.max(r.start), ram.end.0.min(r.end));
            if s < e {
                bitmap.mark_range(Pfn(s)..Pfn(e))?;
                n += (e - s) as usize;
            }
        }
        return Ok(n);
    }
    let set = collect(root, src)?;
    set.mark(bitmap)?;
    Ok(set.len())
}

fn vma_label(v: &Option<Vma>) -> String {
    match v {
        Some(v) => format!(
            "{:x}-{:x} {} {}",
            v.start.0,
            v.end.0,
            v.perms,
            v.display_name()
        ),
        None => "(all)".into(),
    }
}

fn read(root: &SysRoot, a: ReadArgs) -> Result<i32, Error> {
    let bitmap = IdleBitmap::open(root, false)?;
    if let (Some(p), None, false) = (&a.source.pfn, a.source.pid, a.list) {
        // A PFN range can be all of memory: count it in chunks, never holding a page list.
        let r = parse_range(p, false, 1, true)?;
        let mut total = Counts::default();
        // Chunk only the RAM inside the range: a range such as 0-0xffffffffffffffff must not
        // walk the empty PFN space.
        for ram in idle::ram_ranges(root)? {
            let mut s = ram.start.0.max(r.start);
            let end = ram.end.0.min(r.end);
            while s < end {
                let e = end.min(s.saturating_add(1 << 18));
                let set = PageSet::from_pfn_range(root, Pfn(s)..Pfn(e))?;
                let c = idle::count(&set.read(&bitmap)?.concat());
                total.pages += c.pages;
                total.idle_pages += c.idle_pages;
                total.accessed_pages += c.accessed_pages;
                s = e;
            }
        }
        let set = PageSet {
            groups: vec![(None, Vec::new())],
        };
        return print_totals(a.format.format(), &set, &[Vec::new()], total);
    }
    let set = collect(root, &a.source)?;
    let bits = set.read(&bitmap)?;
    let out = io::stdout();
    let mut out = out.lock();
    let fmt = a.format.format();
    let total = idle::count(&bits.concat());
    if a.list {
        if fmt == Format::Csv {
            writeln!(out, "vaddr,pfn,head,idle").map_err(stdout_error)?;
        }
        let mut t = output::table();
        t.set_header(["vaddr", "pfn", "head", "state"]);
        for (g, b) in set.groups.iter().zip(&bits) {
            for (p, idle) in g.1.iter().zip(b) {
                let va = p.vaddr.map(|v| format!("{:#x}", v.0));
                match fmt {
                    Format::Json => write_json_line(
                        &mut out,
                        &serde_json::json!({"vaddr": p.vaddr.map(|v| v.0), "pfn": p.pfn.0,
                            "head": p.head.0, "idle": idle}),
                    )?,
                    Format::Csv => writeln!(
                        out,
                        "{},{:#x},{:#x},{}",
                        va.unwrap_or_default(),
                        p.pfn.0,
                        p.head.0,
                        u8::from(*idle)
                    )
                    .map_err(stdout_error)?,
                    Format::Table => {
                        t.add_row([
                            va.unwrap_or_else(|| "-".into()),
                            format!("{:#x}", p.pfn.0),
                            format!("{:#x}", p.head.0),
                            if *idle { "idle" } else { "accessed" }.into(),
                        ]);
                    }
                }
            }
        }
        if fmt == Format::Table {
            writeln!(out, "{t}").map_err(stdout_error)?;
            print_counts_line(&mut out, &total)?;
        }
        return Ok(0);
    }
    print_totals(fmt, &set, &bits, total)
}

fn print_totals(
    fmt: Format,
    set: &PageSet,
    bits: &[Vec<bool>],
    total: Counts,
) -> Result<i32, Error> {
    let out = io::stdout();
    let mut out = out.lock();
    match fmt {
        Format::Json => write_json_line(&mut out, &total)?,
        Format::Csv => {
            writeln!(out, "pages,idle_pages,accessed_pages").map_err(stdout_error)?;
            writeln!(
                out,
                "{},{},{}",
                total.pages, total.idle_pages, total.accessed_pages
            )
            .map_err(stdout_error)?;
        }
        Format::Table => {
            let mut t = output::table();
            t.set_header(["mapping", "pages", "idle", "accessed"]);
            if set.groups.len() > 1 {
                for (g, b) in set.groups.iter().zip(bits) {
                    if g.1.is_empty() {
                        continue;
                    }
                    let c = idle::count(b);
                    t.add_row([
                        vma_label(&g.0),
                        c.pages.to_string(),
                        c.idle_pages.to_string(),
                        c.accessed_pages.to_string(),
                    ]);
                }
            }
            t.add_row([
                "total".to_string(),
                total.pages.to_string(),
                total.idle_pages.to_string(),
                total.accessed_pages.to_string(),
            ]);
            writeln!(out, "{t}").map_err(stdout_error)?;
        }
    }
    Ok(0)
}

fn print_counts_line(out: &mut impl Write, c: &Counts) -> Result<(), Error> {
    writeln!(
        out,
        "pages {} idle {} accessed {}",
        c.pages, c.idle_pages, c.accessed_pages
    )
    .map_err(stdout_error)
}

/// One row of a wss sample.
struct Row {
    vma: Option<Vma>,
    counts: Counts,
}

fn wss(root: &SysRoot, a: WssArgs) -> Result<i32, Error> {
    let method = match a.method.as_str() {
        "idle" => Method::Idle,
        "refs" => Method::Refs,
        _ => idle::auto_method(root),
    };
    let bitmap = match method {
        Method::Idle => Some(IdleBitmap::open(root, true)?),
        Method::Refs => None,
    };
    let sel = vma_selector(&a.vma);
    let ps = page_size();
    let fmt = a.format.format();
    let out = io::stdout();
    let mut header_done = false;
    // Start: mark everything (or clear the referenced bits).
    let mut t0 = Instant::now();
    match &bitmap {
        Some(b) => PageSet::from_pid(root, a.pid, &sel, None)?.mark(b)?,
        None => idle::clear_refs(root, a.pid)?,
    }
    let mut interval = 0u64;
    loop {
        if let Some(c) = a.count
            && interval >= c
        {
            break;
        }
        interval += 1;
        let spent = t0.elapsed();
        if spent < a.interval {
            std::thread::sleep(a.interval - spent);
        }
        let rows: Vec<Row> = match &bitmap {
            Some(b) => {
                let set = PageSet::from_pid(root, a.pid, &sel, None)?;
                let bits = set.read(b)?;
                t0 = Instant::now();
                set.mark(b)?;
                set.groups
                    .iter()
                    .zip(&bits)
                    .map(|(g, bits)| Row {
                        vma: g.0.clone(),
                        counts: idle::count(bits),
                    })
                    .collect()
            }
            None => {
                let s = idle::refs_sample(root, a.pid)?;
                t0 = Instant::now();
                idle::clear_refs(root, a.pid)?;
                s.into_iter()
                    .filter(|x| sel(&x.vma))
                    .map(|x| {
                        let pages = x.rss / ps;
                        let acc = (x.referenced / ps).min(pages);
                        Row {
                            vma: Some(x.vma),
                            counts: Counts {
                                pages,
                                idle_pages: pages - acc,
                                accessed_pages: acc,
                            },
                        }
                    })
                    .collect()
            }
        };
        let mut total = Counts::default();
        for r in &rows {
            total.pages += r.counts.pages;
            total.idle_pages += r.counts.idle_pages;
            total.accessed_pages += r.counts.accessed_pages;
        }
        let shown: Vec<&Row> = rows
            .iter()
            .filter(|r| a.all || r.counts.pages > 0)
            .collect();
        let mut o = out.lock();
        emit(
            &mut o,
            fmt,
            interval,
            a.pid,
            &shown,
            &total,
            &mut header_done,
        )?;
        o.flush().map_err(stdout_error)?;
        drop(o);
        if let Some(p) = &a.prometheus {
            write_prometheus(p, a.pid, &shown, &total)?;
        }
    }
    Ok(0)
}

fn vma_json(v: &Option<Vma>) -> serde_json::Value {
    match v {
        Some(v) => serde_json::json!({"start": v.start.0, "end": v.end.0, "perms": v.perms,
            "path": v.path}),
        None => serde_json::Value::Null,
    }
}

fn emit(
    out: &mut impl Write,
    fmt: Format,
    interval: u64,
    pid: u32,
    rows: &[&Row],
    total: &Counts,
    header_done: &mut bool,
) -> Result<(), Error> {
    let ps = page_size();
    let all = Row {
        vma: None,
        counts: *total,
    };
    let every = rows.iter().copied().chain(std::iter::once(&all));
    match fmt {
        Format::Json => {
            for r in every {
                write_json_line(
                    out,
                    &serde_json::json!({
                        "interval": interval, "pid": pid, "vma": vma_json(&r.vma),
                        "pages": r.counts.pages, "accessed_pages": r.counts.accessed_pages,
                        "idle_pages": r.counts.idle_pages,
                        "accessed_bytes": r.counts.accessed_pages * ps,
                    }),
                )?;
            }
        }
        Format::Csv => {
            if !*header_done {
                writeln!(out, "interval,pid,vma_start,vma_end,perms,path,pages,accessed_pages,idle_pages,accessed_bytes")
                    .map_err(stdout_error)?;
                *header_done = true;
            }
            for r in every {
                let (s, e, perms, path) = match &r.vma {
                    Some(v) => (
                        format!("{:#x}", v.start.0),
                        format!("{:#x}", v.end.0),
                        v.perms.clone(),
                        csv_field(&v.path),
                    ),
                    None => Default::default(),
                };
                writeln!(
                    out,
                    "{interval},{pid},{s},{e},{perms},{path},{},{},{},{}",
                    r.counts.pages,
                    r.counts.accessed_pages,
                    r.counts.idle_pages,
                    r.counts.accessed_pages * ps
                )
                .map_err(stdout_error)?;
            }
        }
        Format::Table => {
            let mut t = output::table();
            t.set_header(["mapping", "pages", "accessed", "idle", "accessed MiB"]);
            for r in every {
                t.add_row([
                    match &r.vma {
                        Some(_) => vma_label(&r.vma),
                        None => format!("total (pid {pid})"),
                    },
                    r.counts.pages.to_string(),
                    r.counts.accessed_pages.to_string(),
                    r.counts.idle_pages.to_string(),
                    format!(
                        "{:.2}",
                        (r.counts.accessed_pages * ps) as f64 / (1 << 20) as f64
                    ),
                ]);
            }
            writeln!(out, "interval {interval}\n{t}").map_err(stdout_error)?;
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_prometheus(
    path: &std::path::Path,
    pid: u32,
    rows: &[&Row],
    total: &Counts,
) -> Result<(), Error> {
    let ps = page_size();
    let mut s = String::new();
    let metrics = [
        ("pgtool_wss_resident_pages", "Resident pages sampled."),
        (
            "pgtool_wss_accessed_pages",
            "Pages accessed during the last interval.",
        ),
        (
            "pgtool_wss_accessed_bytes",
            "Bytes accessed during the last interval.",
        ),
    ];
    for (name, help) in metrics {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        let value = |c: &Counts| match name {
            "pgtool_wss_resident_pages" => c.pages,
            "pgtool_wss_accessed_pages" => c.accessed_pages,
            _ => c.accessed_pages * ps,
        };
        for r in rows {
            if let Some(v) = &r.vma {
                s.push_str(&format!(
                    "{name}{{pid=\"{pid}\",vma=\"{:x}-{:x}\",perms=\"{}\",path=\"{}\"}} {}\n",
                    v.start.0,
                    v.end.0,
                    v.perms,
                    label_value(&v.path),
                    value(&r.counts)
                ));
            }
        }
        s.push_str(&format!(
            "{name}{{pid=\"{pid}\",vma=\"all\"}} {}\n",
            value(total)
        ));
    }
    s.push_str("# EOF\n");
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, s).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("10-20", false, 1, false).expect("test value"),
            10..20
        );
        // PFN ranges include their end, as in `pgtool who`
        assert_eq!(
            parse_range("10-20", false, 1, true).expect("test value"),
            10..21
        );
        assert_eq!(
            parse_range("7-7", false, 1, true).expect("test value"),
            7..8
        );
        assert_eq!(
            parse_range("0x10,+2", false, 1, true).expect("test value"),
            16..18
        );
        assert_eq!(
            parse_range("1000", true, 4096, false).expect("test value"),
            0x1000..0x2000
        );
        assert_eq!(
            parse_range("1000+1000", true, 1, false).expect("test value"),
            0x1000..0x2000
        );
        assert!(parse_range("20-10", false, 1, true).is_err());
        assert_eq!(
            parse_duration("500ms").expect("test value"),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("2").expect("test value"),
            Duration::from_secs(2)
        );
        assert!(parse_duration("x").is_err());
    }
}
