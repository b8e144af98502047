//! `pgtool hwpoison`: inject, undo and soft-offline memory errors, guarded.

use crate::Global;
use crate::idle::{parse_num, parse_pfn_list};
use pgtool::hwpoison::{Injector, PageInfo, soft_offline};
use pgtool::pagemap::Pagemap;
use pgtool::rmap::{self, Query};
use pgtool::{Error, Pfn, VirtAddr};

/// Arguments of `pgtool hwpoison`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Nothing is done without --yes: pgtool prints what the pages are and \
what it would do, and exits with status 2. Pages outside System RAM and kernel-owned pages \
(slab, reserved, page tables, offline, zero page, or pages with none of the lru/anon/mmap/\
swapbacked/swapcache/buddy flags) are refused unless --force. Needs root; the injection files \
are <debugfs>/hwpoison/{corrupt-pfn,unpoison-pfn} (module hwpoison_inject; DEBUGFS_PATH is \
honoured, debugfs is mounted when needed)."
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access.
    Inject(Target),
    /// Undo a software-injected poison.
    Unpoison(Target),
    /// Migrate the pages' contents away and take them offline.
    SoftOffline(Target),
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Page frame numbers (hex with 0x, else decimal), or ranges FIRST-LAST (both included, as in
    /// `pgtool who`) and FIRST+COUNT.
    #[arg(value_name = "PFN")]
    pfns: Vec<String>,
    /// Target the page a process maps at --addr (translated to its PFN through pagemap).
    #[arg(long, requires = "addr")]
    pid: Option<u32>,
    /// Virtual address in --pid (hex with or without 0x).
    #[arg(long, requires = "pid")]
    addr: Option<String>,
    /// Really do it.
    #[arg(long)]
    yes: bool,
    /// Act even on pages the guards refuse (outside System RAM, kernel-owned).
    #[arg(long)]
    force: bool,
}

/// The physical address of `pfn`, or a usage error for a PFN no address can hold.
fn phys_of(pfn: Pfn) -> Result<pgtool::PhysAddr, Error> {
    pfn.phys_addr()
        .ok_or_else(|| Error::Usage(format!("PFN {:#x} is beyond any physical address", pfn.0)))
}

/// Print the processes mapping `pfn` (or its folio), as `pgtool who` finds them.
fn print_owners(report: &rmap::Report, pfn: Pfn) {
    // report.targets is sorted by PFN, without duplicates
    let Ok(i) = report.targets.binary_search_by_key(&pfn, |t| t.pfn) else {
        return;
    };
    let mut any = false;
    for m in report.mappings_of(i) {
        any = true;
        let path = m.vma.as_ref().map(|v| v.display_name()).unwrap_or("?");
        println!(
            "  mapped by pid {} ({}) at {:#x} {path}",
            m.pid, m.comm, m.vaddr.0
        );
    }
    if !any {
        println!("  mapped by no process we can read");
    }
}

/// Run `pgtool hwpoison`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let (verb, t) = match &args.action {
        Action::Inject(t) => ("inject a memory error into", t),
        Action::Unpoison(t) => ("unpoison", t),
        Action::SoftOffline(t) => ("soft-offline", t),
    };
    let mut targets: Vec<(Pfn, Option<(u32, u64)>)> = Vec::new();
    for p in parse_pfn_list(&t.pfns)? {
        phys_of(p)?;
        targets.push((p, None));
    }
    if let (Some(pid), Some(a)) = (t.pid, &t.addr) {
        let addr = parse_num(a, true)?;
        let pm = Pagemap::open(&root, pid)?;
        let e = pm.entry(VirtAddr(addr))?;
        let pfn = match e.pfn() {
            Some(p) if p.0 != 0 => p,
            _ if e.pfn_hidden() => {
                return Err(Error::Usage(format!(
                    "{}: PFNs read as 0 (needs root or CAP_SYS_ADMIN)",
                    pm.path().display()
                )));
            }
            _ => {
                return Err(Error::NotFound(format!(
                    "address {addr:#x} of pid {pid} has no page in memory (not present); \
                     touch it first"
                )));
            }
        };
        targets.push((pfn, Some((pid, addr))));
    }
    if targets.is_empty() {
        return Err(Error::Usage(
            "no page given: name PFNs, or --pid PID --addr ADDR".into(),
        ));
    }
    let guarded = !matches!(args.action, Action::Unpoison(_));
    // Who maps these pages: the processes that would get SIGBUS. One pass over all processes
    // for all the PFNs (the same lookup as `pgtool who`); a failure only loses this detail.
    let owners = rmap::who(&root, &Query::pfns(targets.iter().map(|t| t.0).collect()));
    let mut refused = Vec::new();
    for (pfn, owner) in &targets {
        let info = PageInfo::read(&root, *pfn)?;
        let who = owner
            .map(|(pid, a)| format!("; mapped by pid {pid} at {a:#x}"))
            .unwrap_or_default();
        println!("{}{who}", info.describe());
        match &owners {
            Ok(report) => print_owners(report, *pfn),
            Err(e) => println!("  owners unknown: {e}"),
        }
        if guarded && let Some(why) = info.refusal() {
            if t.force {
                println!("  warning: {why} (--force given)");
            } else {
                refused.push(why);
            }
        }
    }
    if !refused.is_empty() {
        return Err(Error::Refused(format!(
            "refusing to {verb}: {}; use --force to override",
            refused.join("; ")
        )));
    }
    if !t.yes {
        println!(
            "would {verb} {} page(s); nothing done: rerun with --yes",
            targets.len()
        );
        return Ok(2);
    }
    let injector = match args.action {
        Action::SoftOffline(_) => None,
        _ => Some(Injector::open(&root)?),
    };
    for (pfn, _) in &targets {
        match (&args.action, &injector) {
            (Action::Inject(_), Some(inj)) => inj.inject(*pfn)?,
            (Action::Unpoison(_), Some(inj)) => inj.unpoison(*pfn)?,
            _ => soft_offline(&root, phys_of(*pfn)?)?,
        }
        let after = PageInfo::read(&root, *pfn)?;
        println!("done: now {}", after.describe());
    }
    Ok(0)
}
