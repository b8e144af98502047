//! `pgtool who`: which processes map these physical pages.
//!
//! JSON Lines fields (one object per mapping; a PFN nobody maps gets one object with `pid`,
//! `comm`, `vaddr`, `vma`, `exclusive`, `subpage` null):
//! `pfn` (number), `pid`, `comm`, `vaddr` (number), `vma` {`start`, `end`, `perms`, `path`},
//! `exclusive` (pagemap bit 56), `subpage` (index of the mapped page in the PFN's folio, null
//! for a small page), `mapped_pfn` (the page mapped at `vaddr`: the PFN itself or another page
//! of its folio), `pages` (run of folio pages mapped from `vaddr`), `mm` (lowest PID sharing the
//! address space), `kpagecount`, `flags` (names), `flags_raw` (number), `memcg` (kpagecgroup
//! inode, null when unreadable), `note` (why mappings are missing or what an unmapped page is).
//! CSV has the same columns, `vma` flattened to `vma_start,vma_end,perms,path`, numbers that are
//! addresses or PFNs in 0x hex, `flags` joined with `,`.

use crate::Global;
use crate::output::{Format, FormatArgs, stdout_error, table, write_json_line};
use pgtool::cgroup::CgroupIndex;
use pgtool::rmap::{self, Mapping, Query, Report, Target};
use pgtool::{Error, Pfn, PhysAddr};
use serde::Serialize;
use std::io::{self, BufWriter, Read, Write};

/// Most PFNs one command looks up (ranges included).
const MAX_PFNS: u64 = 1 << 22;

/// Arguments of `pgtool who`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 every PFN was found mapped or explained; 1 a PFN is \
past the end of memory; 2 usage or system error.\n\nExamples:\n  pgtool who 0x1c20b\n  \
pgtool who 0x100000-0x100200 --comm postgres\n  pgtool who --phys 0x7d3f2000 --json\n  \
page-types -L -b hwpoison | awk 'NR>1{print \"0x\"$2}' | pgtool who -"
)]
pub struct Args {
    /// PFNs: hex with 0x or decimal; ranges A-B (inclusive) or A+N; `-` reads PFNs from stdin
    /// (whitespace separated, same forms).
    #[arg(value_name = "PFN")]
    pub pfns: Vec<String>,
    /// Physical addresses (hex with 0x or decimal, comma separated or repeated) to look up,
    /// by the page holding them.
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub phys: Vec<String>,
    /// Only search these processes (comma separated or repeated).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Only search processes with this command name (as in /proc/PID/comm).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Worker threads reading address spaces (0: one per CPU, at most 8).
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub jobs: usize,
    /// Read every process. By default, when every PFN is a small page, the search stops once
    /// it has found as many mappings of each PFN as its kpagecount.
    #[arg(long)]
    pub exhaustive: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

use pgtool::addr::parse_number as parse_num;

/// Parse `PFN`, `A-B` (inclusive) or `A+N` into `out`.
fn parse_spec(spec: &str, out: &mut Vec<Pfn>) -> Result<(), Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "bad PFN {spec:?}: {why} (give hex with 0x or decimal, A-B, A+N, or - for stdin)"
        ))
    };
    let (start, count) = if let Some((a, b)) = spec.split_once('-') {
        let a = parse_num(a).ok_or_else(|| bad("bad range start"))?;
        let b = parse_num(b).ok_or_else(|| bad("bad range end"))?;
        if b < a {
            return Err(bad("range end below its start"));
        }
        let count = (b - a)
            .checked_add(1)
            .ok_or_else(|| bad("range too large"))?;
        (a, count)
    } else if let Some((a, n)) = spec.split_once('+') {
        let a = parse_num(a).ok_or_else(|| bad("bad range start"))?;
        let n = parse_num(n).ok_or_else(|| bad("bad count"))?;
        if n == 0 {
            return Err(bad("empty range"));
        }
        (a, n)
    } else {
        (parse_num(spec).ok_or_else(|| bad("not a number"))?, 1)
    };
    if count > MAX_PFNS || out.len() as u64 + count > MAX_PFNS {
        return Err(Error::Usage(format!(
            "{spec}: too many PFNs (at most {MAX_PFNS} per command); split the range"
        )));
    }
    let end = start
        .checked_add(count)
        .ok_or_else(|| bad("range overflows"))?;
    out.extend((start..end).map(Pfn));
    Ok(())
}

/// The PFNs the arguments name.
fn collect_pfns(args: &Args) -> Result<Vec<Pfn>, Error> {
    let mut pfns = Vec::new();
    for s in &args.pfns {
        if s == "-" {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::io("<stdin>", e))?;
            for tok in text.split_whitespace() {
                parse_spec(tok, &mut pfns)?;
            }
        } else {
            parse_spec(s, &mut pfns)?;
        }
    }
    for a in &args.phys {
        let addr = parse_num(a).ok_or_else(|| {
            Error::Usage(format!(
                "bad physical address {a:?}: give hex with 0x or decimal"
            ))
        })?;
        pfns.push(PhysAddr(addr).pfn());
    }
    if pfns.is_empty() {
        return Err(Error::Usage(
            "no PFN given: pgtool who PFN... (or --phys ADDR, or - to read PFNs from stdin)".into(),
        ));
    }
    Ok(pfns)
}

#[derive(Serialize)]
struct VmaOut<'a> {
    start: u64,
    end: u64,
    perms: &'a str,
    path: &'a str,
}

#[derive(Serialize)]
struct Record<'a> {
    pfn: u64,
    pid: Option<u32>,
    comm: Option<&'a str>,
    vaddr: Option<u64>,
    vma: Option<VmaOut<'a>>,
    exclusive: Option<bool>,
    subpage: Option<u64>,
    mapped_pfn: Option<u64>,
    pages: Option<u64>,
    mm: Option<u32>,
    kpagecount: u64,
    flags: pgtool::PageFlags,
    flags_raw: u64,
    memcg: Option<u64>,
    note: Option<String>,
}

fn record<'a>(t: &'a Target, m: Option<&'a Mapping>, note: Option<String>) -> Record<'a> {
    Record {
        pfn: t.pfn.0,
        pid: m.map(|m| m.pid),
        comm: m.map(|m| m.comm.as_str()),
        vaddr: m.map(|m| m.vaddr.0),
        vma: m.and_then(|m| m.vma.as_ref()).map(|v| VmaOut {
            start: v.start.0,
            end: v.end.0,
            perms: &v.perms,
            path: v.display_name(),
        }),
        exclusive: m.map(|m| m.exclusive),
        subpage: m.and_then(|m| m.subpage),
        mapped_pfn: m.map(|m| m.mapped_pfn.0),
        pages: m.map(|m| m.pages),
        mm: m.map(|m| m.mm),
        kpagecount: t.count,
        flags: t.flags,
        flags_raw: t.flags.raw(),
        memcg: t.cgroup,
        note,
    }
}

/// The note for target `i`: why mappings are missing, or what an unmapped page is.
fn note_for(report: &Report, i: usize, cg: &mut Option<CgroupIndex>, g: &Global) -> Option<String> {
    let t = &report.targets[i];
    if t.past_end {
        return Some("past the end of memory: no such PFN".into());
    }
    let any = report.mappings_of(i).next().is_some();
    let found = report.found_mappings(i);
    let st = &report.stats;
    let mut notes = Vec::new();
    if !any {
        let mut s = if t.count == 0 {
            format!("not mapped by any process: {}", rmap::explain(t.flags))
        } else {
            format!(
                "kpagecount {} but no readable process maps it: {}",
                t.count,
                rmap::explain(t.flags)
            )
        };
        if let Some(ino) = t.cgroup.filter(|&c| c != 0) {
            let idx =
                cg.get_or_insert_with(|| CgroupIndex::build(&g.sysroot()).unwrap_or_default());
            match idx.memcg(ino) {
                Some(c) => s.push_str(&format!("; charged to memcg {}", c.path.display())),
                None => s.push_str(&format!(
                    "; charged to memcg inode {ino} (deleted or unknown)"
                )),
            }
        }
        notes.push(s);
    } else if found == 0 && t.folio.is_some() {
        notes.push(
            "this page itself is not mapped; the processes listed map other pages of its folio"
                .into(),
        );
    }
    if any && t.count > found {
        notes.push(format!(
            "kpagecount {} but {found} mapping(s) found: the rest belong to processes we could \
             not read ({} denied, {} exited during the scan, {} failed), processes left out by \
             --pid/--comm, other PID namespaces, or the kernel",
            t.count, st.denied, st.exited, st.failed
        ));
    } else if found > t.count && t.folio.is_none() {
        notes.push(format!(
            "found {found} mappings but kpagecount is {}: the page changed during the scan",
            t.count
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Run `pgtool who`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let pfns = collect_pfns(&args)?;
    let root = g.sysroot();
    let q = Query {
        pfns,
        pids: (!args.pid.is_empty()).then(|| args.pid.clone()),
        comm: args.comm.clone(),
        threads: args.jobs,
        exhaustive: args.exhaustive,
    };
    let report = rmap::who(&root, &q)?;
    let mut cg: Option<CgroupIndex> = None;
    let notes: Vec<Option<String>> = (0..report.targets.len())
        .map(|i| note_for(&report, i, &mut cg, g))
        .collect();

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format.format() {
        Format::Json => {
            for (i, t) in report.targets.iter().enumerate() {
                let mut any = false;
                for m in report.mappings_of(i) {
                    write_json_line(&mut out, &record(t, Some(m), notes[i].clone()))?;
                    any = true;
                }
                if !any {
                    write_json_line(&mut out, &record(t, None, notes[i].clone()))?;
                }
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let csv_err = |e: csv::Error| stdout_error(io::Error::other(e));
            w.write_record([
                "pfn",
                "pid",
                "comm",
                "vaddr",
                "vma_start",
                "vma_end",
                "perms",
                "path",
                "exclusive",
                "subpage",
                "mapped_pfn",
                "pages",
                "mm",
                "kpagecount",
                "flags",
                "flags_raw",
                "memcg",
                "note",
            ])
            .map_err(csv_err)?;
            // Per-target fields once; per-row numbers formatted into reused buffers.
            let mut f: [String; 11] = Default::default();
            for (i, t) in report.targets.iter().enumerate() {
                let pfn = format!("{:#x}", t.pfn.0);
                let count = t.count.to_string();
                let names = t.flags.long_names();
                let raw = format!("{:#x}", t.flags.raw());
                let memcg = t.cgroup.map(|v| v.to_string()).unwrap_or_default();
                let note = notes[i].as_deref().unwrap_or("");
                let ms: Vec<Option<&Mapping>> = {
                    let v: Vec<_> = report.mappings_of(i).map(Some).collect();
                    if v.is_empty() { vec![None] } else { v }
                };
                for m in ms {
                    for x in f.iter_mut() {
                        x.clear();
                    }
                    if let Some(m) = m {
                        use std::fmt::Write as _;
                        let _ = write!(f[0], "{}", m.pid);
                        let _ = write!(f[1], "{:#x}", m.vaddr.0);
                        if let Some(v) = &m.vma {
                            let _ = write!(f[2], "{:#x}", v.start.0);
                            let _ = write!(f[3], "{:#x}", v.end.0);
                        }
                        f[4].push_str(if m.exclusive { "true" } else { "false" });
                        if let Some(sp) = m.subpage {
                            let _ = write!(f[5], "{sp}");
                        }
                        let _ = write!(f[6], "{:#x}", m.mapped_pfn.0);
                        let _ = write!(f[7], "{}", m.pages);
                        let _ = write!(f[8], "{}", m.mm);
                    }
                    let vma = m.and_then(|m| m.vma.as_ref());
                    w.write_record([
                        pfn.as_str(),
                        &f[0],
                        m.map(|m| m.comm.as_str()).unwrap_or(""),
                        &f[1],
                        &f[2],
                        &f[3],
                        vma.map(|v| v.perms.as_str()).unwrap_or(""),
                        vma.map(|v| v.display_name()).unwrap_or(""),
                        &f[4],
                        &f[5],
                        &f[6],
                        &f[7],
                        &f[8],
                        &count,
                        &names,
                        &raw,
                        &memcg,
                        note,
                    ])
                    .map_err(csv_err)?;
                }
            }
            w.flush().map_err(stdout_error)?;
        }
        Format::Table => {
            let mut tb = table();
            tb.set_header([
                "PFN", "PID", "COMM", "VADDR", "SUB", "EXCL", "PERMS", "MAPPING", "COUNT", "FLAGS",
            ]);
            for (i, t) in report.targets.iter().enumerate() {
                for m in report.mappings_of(i) {
                    let (perms, path) = m
                        .vma
                        .as_ref()
                        .map(|v| (v.perms.clone(), v.display_name().to_string()))
                        .unwrap_or_else(|| ("?".into(), "?".into()));
                    let sub = match (m.subpage, t.folio) {
                        (Some(s), Some(f)) => format!("{s}/{}", f.pages),
                        _ => "-".into(),
                    };
                    tb.add_row([
                        format!("{:#x}", t.pfn.0),
                        m.pid.to_string(),
                        m.comm.clone(),
                        format!("{:#x}", m.vaddr.0),
                        sub,
                        if m.exclusive { "yes" } else { "no" }.into(),
                        perms,
                        path,
                        t.count.to_string(),
                        t.flags.long_names(),
                    ]);
                }
            }
            if !report.mappings.is_empty() {
                writeln!(out, "{tb}").map_err(stdout_error)?;
            }
            for (i, t) in report.targets.iter().enumerate() {
                if let Some(n) = &notes[i] {
                    let flags = t.flags.long_names();
                    writeln!(
                        out,
                        "{:#x}: {n} [kpagecount {}, flags {}]",
                        t.pfn.0,
                        t.count,
                        if flags.is_empty() { "none" } else { &flags }
                    )
                    .map_err(stdout_error)?;
                }
            }
        }
    }
    out.flush().map_err(stdout_error)?;
    drop(out);

    let st = &report.stats;
    eprintln!(
        "who: {} processes searched ({} address spaces read{}, {} kernel threads skipped, {} \
         sharing an address space); {} exited during the scan, {} permission denied, {} failed",
        st.processes,
        st.address_spaces,
        if st.pagemap_scan {
            " with PAGEMAP_SCAN"
        } else {
            ""
        },
        st.kernel_threads,
        st.shared_mm,
        st.exited,
        st.denied,
        st.failed
    );
    for e in &st.errors {
        eprintln!("who: {e}");
    }
    Ok(if report.targets.iter().any(|t| t.past_end) {
        1
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_specs() {
        let mut v = Vec::new();
        parse_spec("0x10", &mut v).expect("hex");
        parse_spec("20", &mut v).expect("dec");
        parse_spec("0x30-0x32", &mut v).expect("range");
        parse_spec("0x40+2", &mut v).expect("count");
        assert_eq!(
            v.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![0x10, 20, 0x30, 0x31, 0x32, 0x40, 0x41]
        );
        for bad in ["x", "0x", "5-3", "1+0", "0x1-zz", ""] {
            assert!(parse_spec(bad, &mut v).is_err(), "{bad}");
        }
        assert!(parse_spec("0+0x1000000", &mut v).is_err());
    }
}
