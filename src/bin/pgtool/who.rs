//! `pgtool who`: which processes map these physical pages. The lookup, its notes and its rows
//! are the library's ([`pgtool::rmap`]); this file parses arguments and prints.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::cgroup::CgroupIndex;
use pgtool::input::{parse_number_for, parse_pfn_args, parse_pid};
use pgtool::output::{Format, Sink};
use pgtool::rmap::{self, Query, Report};
use pgtool::{Error, Pfn, PhysAddr};
use std::io::{self, Write};

/// Arguments of `pgtool who`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Numbers are 0x hex or decimal. JSON Lines: one object per mapping (a PFN \
nobody maps gets one object whose pid, comm, vaddr... are null, with a note): pfn, pid, comm, \
vaddr, vma{start,end,perms,path}, exclusive, subpage, mapped_pfn, pages, mm, \
folio{head_pfn,pages,order,kind}, kpagecount, flags (names), flags_raw, flags_raw_hex, memcg_ino, \
memcg_path, note. CSV: the same keys, nested ones joined with _ (vma_start, folio_head_pfn), \
addresses and PFNs in 0x hex, flags joined with |.\n\nExit status: 0 every PFN was found mapped \
or explained; 1 a PFN is past the end of memory, or --pid/--comm or the snapshot left nothing \
to search (the message says what); 2 usage or system error, or a write error on stdout (a \
closed pipe ends quietly with 0).\n\nExamples:\n  pgtool who 0x1c20b\n  \
pgtool who 0x100000-0x100200 --comm postgres\n  pgtool who --phys 0x7d3f2000 --json\n  \
page-types -L -b hwpoison | awk 'NR>1{print \"0x\"$2}' | pgtool who -"
)]
pub struct Args {
    /// PFNs: 0x hex or decimal; ranges A-B (B included) or A+N; `-` reads them from stdin
    /// (whitespace separated, same forms).
    #[arg(value_name = "PFN")]
    pub pfns: Vec<String>,
    /// Physical addresses (0x hex or decimal, comma separated or repeated) to look up, by the
    /// page holding them.
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub phys: Vec<String>,
    /// Only search these processes (a PID or `self`; comma separated or repeated).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<String>,
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

/// Most PFNs one `who` looks up: below the grammar's bound, because each PFN costs about 100
/// bytes of lookup state.
const MAX_WHO_PFNS: u64 = 1 << 22;

/// The PFNs the arguments name (the input grammar's ranges, merged and bounded).
fn collect_pfns(args: &Args) -> Result<Vec<Pfn>, Error> {
    let ranges = parse_pfn_args(&args.pfns, &mut io::stdin().lock())?;
    let n: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    if n > MAX_WHO_PFNS {
        return Err(Error::Usage(format!(
            "too many PFNs: {n} (who looks up at most {MAX_WHO_PFNS} per command); split the range"
        )));
    }
    let mut pfns: Vec<Pfn> = Vec::new();
    pfns.try_reserve_exact(n as usize + args.phys.len())
        .map_err(|_| Error::Usage(format!("not enough memory for {n} PFNs; split the range")))?;
    pfns.extend(ranges.into_iter().flatten().map(Pfn));
    for a in &args.phys {
        pfns.push(PhysAddr(parse_number_for(a, "physical address")?).pfn());
    }
    if pfns.is_empty() {
        return Err(Error::Usage(
            "no PFN given: pgtool who PFN... (or --phys ADDR, or - to read PFNs from stdin)".into(),
        ));
    }
    Ok(pfns)
}

/// Run `pgtool who`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let pfns = collect_pfns(&args)?;
    let pids = args
        .pid
        .iter()
        .map(|p| parse_pid(p, &root))
        .collect::<Result<Vec<u32>, Error>>()?;
    let q = Query {
        pfns,
        pids: (!pids.is_empty()).then_some(pids),
        comm: args.comm.clone(),
        threads: args.jobs,
        exhaustive: args.exhaustive,
    };
    let report = rmap::who(&root, &q)?;
    // Paths of memcgs only when some page is charged to one, and only of those memcgs: the
    // walk of the hierarchies ends once each is found (a host may have thousands).
    let memcgs: Vec<u64> = report
        .targets
        .iter()
        .filter_map(|t| t.cgroup.filter(|&c| c != 0))
        .collect();
    let cgroups = (!memcgs.is_empty())
        .then(|| CgroupIndex::build_for(&root, &memcgs).ok())
        .flatten();

    let format = args.format.format();
    let mut sink = Sink::stdout(format);
    for i in 0..report.targets.len() {
        let facts = report.facts(i, cgroups.as_ref());
        for r in report.records(i, &facts) {
            // The table lists mappings; what is known of unmapped PFNs follows as notes.
            if format == Format::Table && r.pid.is_none() {
                continue;
            }
            sink.write(&r)?;
        }
    }
    if format == Format::Table {
        for (i, t) in report.targets.iter().enumerate() {
            let facts = report.facts(i, cgroups.as_ref());
            if let Some(n) = &facts.note {
                let flags = if facts.flags.is_empty() {
                    "none".to_string()
                } else {
                    facts.flags.join("|")
                };
                let count = if t.past_end {
                    String::new()
                } else {
                    format!(" [kpagecount {}, flags {flags}]", t.count)
                };
                sink.note(&format!("{:#x}: {n}{count}", t.pfn.0))?;
            }
        }
    }
    sink.finish()?;
    Ok(verdict(&report))
}

/// Report what excluded everything or what was not found (first on stderr), then the scan's
/// counts; the exit status.
fn verdict(report: &Report) -> i32 {
    let mut err = io::stderr().lock();
    let past: Vec<&rmap::Target> = report.targets.iter().filter(|t| t.past_end).collect();
    let code = if let Some(why) = report.excluded_everything() {
        let _ = writeln!(err, "pgtool: {why}");
        1
    } else if let Some(first) = past.first() {
        let _ = writeln!(
            err,
            "pgtool: {} PFN(s) past the end of memory (the first is {:#x})",
            past.len(),
            first.pfn.0
        );
        1
    } else {
        0
    };
    let st = &report.stats;
    let _ = writeln!(
        err,
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
        let _ = writeln!(err, "who: {e}");
    }
    code
}
