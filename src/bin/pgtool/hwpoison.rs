//! `pgtool hwpoison`: inject, undo and soft-offline memory errors, guarded. What will be touched
//! is the library's ([`pgtool::hwpoison::plan`]); this file parses, prints the plan, and acts
//! only after the plan reached stdout.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::hwpoison::{self, Action, Aim, Injector, PlanRecord, soft_offline};
use pgtool::input::parse_pid;
use pgtool::output::{Format, Sink};
use pgtool::{Error, Pfn};
use std::io::{self, Write};

/// Most pages one hwpoison command acts on.
const MAX_PAGES: u64 = 1024;

/// Arguments of `pgtool hwpoison`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Numbers are 0x hex or decimal, as everywhere: --addr 139709858709504 and \
--addr 0x7f10bc800000 name the same address. Before acting pgtool shows each page as you \
named it and the PFN it resolves to (\"--addr 139709858709504 (0x7f10bc800000) in pid 42 -> \
PFN 0x1c20b\"), what the page is and who maps it; nothing is done without --yes (exit status \
2), nor when that listing cannot be written. Pages outside System RAM and kernel-owned pages \
(slab, reserved, page tables, offline, zero page, or pages with none of the lru/anon/mmap/\
swapbacked/swapcache/buddy flags) are refused unless --force. At most 1024 pages per command. \
Needs root and the live system (not --root); the injection files are \
<debugfs>/hwpoison/{corrupt-pfn,unpoison-pfn} (module hwpoison_inject; DEBUGFS_PATH is \
honoured, debugfs is mounted when needed).\n\nJSON Lines / CSV rows: step (plan, done), \
action, target (as typed), pid, vaddr, pfn, phys_addr, region, system_ram, kpagecount, flags, \
flags_raw, flags_raw_hex, folio{head_pfn,pages,order,kind}, mapped_by, refusal.\n\nExit \
status: 0 done; 1 the address has no page, or the process does not exist; 2 nothing done \
(no --yes, refused by a guard, usage or system error, or stdout not writable; a closed pipe \
ends quietly with 0 before anything is done)."
)]
pub struct Args {
    #[command(subcommand)]
    action: ActionArgs,
}

#[derive(clap::Subcommand, Debug)]
enum ActionArgs {
    /// Poison pages (software-simulated memory failure): mapping processes get SIGBUS on access.
    Inject(Target),
    /// Undo a software-injected poison.
    Unpoison(Target),
    /// Migrate the pages' contents away and take them offline.
    SoftOffline(Target),
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Page frame numbers (0x hex or decimal), ranges A-B (B included) or A+N, or `-` to read
    /// them from stdin.
    #[arg(value_name = "PFN")]
    pfns: Vec<String>,
    /// Target the page a process maps at --addr (translated to its PFN through pagemap): a PID
    /// or `self`.
    #[arg(long, requires = "addr", value_name = "PID")]
    pid: Option<String>,
    /// Virtual address in --pid: 0x hex or decimal.
    #[arg(long, requires = "pid", value_name = "ADDR")]
    addr: Option<String>,
    /// Really do it.
    #[arg(long)]
    yes: bool,
    /// Act even on pages the guards refuse (outside System RAM, kernel-owned).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    format: FormatArgs,
}

/// Run `pgtool hwpoison`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let (action, t) = match &args.action {
        ActionArgs::Inject(t) => (Action::Inject, t),
        ActionArgs::Unpoison(t) => (Action::Unpoison, t),
        ActionArgs::SoftOffline(t) => (Action::SoftOffline, t),
    };
    let mut aims: Vec<Aim> =
        hwpoison::aims_from_pfn_args(&t.pfns, &mut io::stdin().lock(), MAX_PAGES)?;
    if let (Some(pid), Some(a)) = (&t.pid, &t.addr) {
        let aim = hwpoison::aim_addr(&root, parse_pid(pid, &root)?, a)?;
        if !aims.iter().any(|x| x.pfn == aim.pfn) {
            aims.push(aim);
        }
    }
    if aims.is_empty() {
        return Err(Error::Usage(
            "no page given: name PFNs, or --pid PID --addr ADDR".into(),
        ));
    }
    if t.yes && !root.is_live() {
        return Err(Error::Usage(
            "--yes with --root: a snapshot is read-only and hwpoison acts on the running \
             kernel; drop --root (without --yes, --root shows what the pages were)"
                .into(),
        ));
    }
    for a in &aims {
        if a.pfn.phys_addr().is_none() {
            return Err(Error::Usage(format!(
                "{}: PFN {:#x} is beyond any physical address",
                a.target, a.pfn.0
            )));
        }
    }
    let (plan, owners_error) = hwpoison::plan(&root, &aims, action)?;

    // Unbuffered past each line: the plan must be out (or its write fail) before acting.
    let format = t.format.format();
    let mut sink = Sink::new(format, io::stdout(), 100);
    for r in &plan {
        sink.write(r)?;
    }
    for r in &plan {
        for line in r.describe(t.force) {
            sink.text(&line)?;
        }
    }
    if let Some(e) = &owners_error {
        sink.text(e)?;
    }
    if format != Format::Table {
        io::stdout().flush().map_err(pgtool::output::stdout_error)?;
    }
    let refused: Vec<&str> = plan.iter().filter_map(|r| r.refusal.as_deref()).collect();
    if !refused.is_empty() && !t.force {
        sink.finish()?;
        return Err(Error::Refused(format!(
            "refusing to {}: {}; use --force to override",
            action.verb(),
            refused.join("; ")
        )));
    }
    if !t.yes {
        sink.finish()?;
        return Err(Error::Refused(format!(
            "nothing done: rerun with --yes to {} {} page(s)",
            action.verb(),
            plan.len()
        )));
    }
    let injector = match action {
        Action::SoftOffline => None,
        _ => Some(Injector::open(&root)?),
    };
    for r in &plan {
        let pfn = Pfn(r.pfn);
        match (action, &injector) {
            (Action::Inject, Some(inj)) => inj.inject(pfn)?,
            (Action::Unpoison, Some(inj)) => inj.unpoison(pfn)?,
            _ => {
                let phys = pfn.phys_addr().ok_or_else(|| {
                    Error::Usage(format!("PFN {:#x} is beyond any physical address", pfn.0))
                })?;
                soft_offline(&root, phys)?
            }
        }
        let after: PlanRecord = r.after(&root)?;
        if format == Format::Table {
            sink.text(&format!(
                "done: {} -> PFN {:#x}: flags now {}",
                after.target,
                after.pfn,
                if after.flags.is_empty() {
                    "none".to_string()
                } else {
                    after.flags.join("|")
                }
            ))?;
        } else {
            sink.write(&after)?;
        }
    }
    sink.finish()?;
    Ok(0)
}
