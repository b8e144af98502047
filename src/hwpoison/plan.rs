//! What a hwpoison command will touch, said before it touches it: each page named in the units
//! the user typed (`--addr 139709858709504 (0x7f10bc800000) in pid 42`, `PFN 115211
//! (0x1c20b)`), the PFN it resolves to, what the page is, who maps it and why a guard refuses
//! it ([`PlanRecord`], rows of the output layer).

use super::PageInfo;
use crate::addr::{Pfn, VirtAddr};
use crate::error::{Error, PFN_HIDDEN, Result};
use crate::input::{parse_number_for, parse_pfn_args, quote};
use crate::maps;
use crate::output::{Record, hex};
use crate::pagemap::Pagemap;
use crate::rmap::{self, FolioRecord, Query};
use crate::root::SysRoot;
use serde::Serialize;
use std::io::BufRead;

/// What to do to the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Poison (`corrupt-pfn`).
    Inject,
    /// Undo a software poison (`unpoison-pfn`).
    Unpoison,
    /// Migrate away and take offline (`soft_offline_page`).
    SoftOffline,
}

impl Action {
    /// The verb for messages: "inject a memory error into".
    pub fn verb(self) -> &'static str {
        match self {
            Action::Inject => "inject a memory error into",
            Action::Unpoison => "unpoison",
            Action::SoftOffline => "soft-offline",
        }
    }

    /// Whether the guards of [`PageInfo::refusal`] apply (unpoisoning is always allowed).
    pub fn guarded(self) -> bool {
        self != Action::Unpoison
    }
}

/// One page to act on, as the user named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aim {
    /// How the user named it, in their units: `PFN 0x1c20b`, `PFN 115211 (0x1c20b)`,
    /// `PFN 0x1c20c (of 0x1c20b-0x1c20d)`, `--addr 139709858709504 (0x7f10bc800000) in pid 42`.
    pub target: String,
    /// The process, for an address.
    pub pid: Option<u32>,
    /// The virtual address, for an address.
    pub vaddr: Option<u64>,
    /// The page it resolves to.
    pub pfn: Pfn,
}

fn typed_hex(t: &str) -> bool {
    let t = t.trim();
    t.starts_with("0x") || t.starts_with("0X")
}

/// The pages PFN arguments name (the input grammar's PFN ranges, `-` for stdin), at most `max`
/// in all, each with the words the user typed.
pub fn aims_from_pfn_args(args: &[String], stdin: &mut dyn BufRead, max: u64) -> Result<Vec<Aim>> {
    let mut out: Vec<Aim> = Vec::new();
    for a in args {
        let ranges = parse_pfn_args(std::slice::from_ref(a), stdin)?;
        let n: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        if out.len() as u64 + n > max {
            return Err(Error::Usage(format!(
                "{}: too many pages: hwpoison acts on at most {max} pages per command",
                quote(a)
            )));
        }
        let single = n == 1 && a != "-" && !a.contains(['-', '+']);
        for pfn in ranges.into_iter().flatten() {
            let target = if a == "-" {
                format!("PFN {pfn:#x} (from stdin)")
            } else if single && typed_hex(a) {
                format!("PFN {}", a.trim())
            } else if single {
                format!("PFN {} ({pfn:#x})", a.trim())
            } else {
                format!("PFN {pfn:#x} (of {})", a.trim())
            };
            if !out.iter().any(|x| x.pfn.0 == pfn) {
                out.push(Aim {
                    target,
                    pid: None,
                    vaddr: None,
                    pfn: Pfn(pfn),
                });
            }
        }
    }
    Ok(out)
}

/// The page `pid` maps at the address `token` (0x hex or decimal, as everywhere), named in the
/// user's units; errors say which address of which process and why it has no page.
pub fn aim_addr(root: &SysRoot, pid: u32, token: &str) -> Result<Aim> {
    let addr = parse_number_for(token, "address")?;
    let shown = if typed_hex(token) {
        format!("--addr {}", token.trim())
    } else {
        format!("--addr {} ({addr:#x})", token.trim())
    };
    let target = format!("{shown} in pid {pid}");
    let pfn = pfn_at(root, pid, addr).map_err(|e| match e {
        Error::NotMapped { .. } => Error::NotFound(format!(
            "{target}: the address is in no mapping of the process (see /proc/{pid}/maps)"
        )),
        Error::NotFound(why) => Error::NotFound(format!("{target}: {why}")),
        other => other,
    })?;
    Ok(Aim {
        target,
        pid: Some(pid),
        vaddr: Some(addr),
        pfn,
    })
}

/// The PFN of the page `pid` maps at `addr` (through its maps and pagemap). [`Error::NotMapped`]
/// outside every mapping, [`Error::NotFound`] when no page is present there.
pub fn pfn_at(root: &SysRoot, pid: u32, addr: u64) -> Result<Pfn> {
    let vmas = maps::read_maps(root, pid)?;
    if maps::find(&vmas, VirtAddr(addr)).is_none() {
        return Err(Error::NotMapped { pid, addr });
    }
    let pm = Pagemap::open(root, pid)?;
    let e = pm.entry(VirtAddr(addr))?;
    match e.pfn() {
        Some(p) if p.0 != 0 => Ok(p),
        _ if e.pfn_hidden() => Err(Error::Usage(format!(
            "{}: {PFN_HIDDEN}",
            pm.path().display()
        ))),
        _ => Err(Error::NotFound(
            "no page in memory there (not present: never touched, or swapped out); touch it \
             first"
                .into(),
        )),
    }
}

/// Whether a row describes the page before or after the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Before: what will be touched.
    Plan,
    /// After the action.
    Done,
}

/// One page a hwpoison command touches.
#[derive(Clone, Debug, Serialize)]
pub struct PlanRecord {
    /// `plan` (before acting) or `done` (after).
    pub step: Step,
    /// `inject`, `unpoison` or `soft-offline`.
    pub action: Action,
    /// How the user named the page, in their units (see [`Aim::target`]).
    pub target: String,
    /// The process, when named by address.
    pub pid: Option<u32>,
    /// The virtual address, when named by address.
    pub vaddr: Option<u64>,
    /// The page.
    pub pfn: u64,
    /// Its physical address.
    pub phys_addr: Option<u64>,
    /// The innermost iomem region holding it.
    pub region: Option<String>,
    /// Inside System RAM (`null`: iomem addresses hidden).
    pub system_ram: Option<bool>,
    /// kpagecount.
    pub kpagecount: Option<u64>,
    /// Flag names ([`crate::kpageflags::PageFlags::listing_names`]).
    pub flags: Vec<String>,
    /// The kpageflags word.
    pub flags_raw: Option<u64>,
    /// `flags_raw` as a `0x` hex string.
    pub flags_raw_hex: Option<String>,
    /// The compound page holding it: the whole folio is affected.
    pub folio: FolioRecord,
    /// The processes mapping it (or its folio), `pid N (comm) at 0xVADDR path`: they get
    /// SIGBUS when they touch a poisoned page.
    pub mapped_by: Vec<String>,
    /// Why a guard refuses the page (`null`: nothing against it).
    pub refusal: Option<String>,
}

impl Record for PlanRecord {
    const TABLE_COLUMNS: &'static [&'static str] =
        &["step", "pfn", "phys_addr", "kpagecount", "region", "flags"];
}

impl PlanRecord {
    fn fill(&mut self, info: &PageInfo) {
        self.phys_addr = Pfn(self.pfn).phys_addr().map(|a| a.0);
        self.region = info.region.clone();
        self.system_ram = info.system_ram;
        self.kpagecount = info.count;
        self.flags = info
            .flags
            .map(|f| f.listing_names(None))
            .unwrap_or_default();
        self.flags_raw = info.flags.map(|f| f.raw());
        self.flags_raw_hex = info.flags.map(|f| hex(f.raw()));
        self.folio = info
            .folio
            .map(|f| FolioRecord {
                head_pfn: Some(f.head.0),
                pages: Some(f.pages),
                order: Some(f.order),
                kind: Some(f.kind),
            })
            .unwrap_or_default();
    }

    /// The row after the action: the page read again.
    pub fn after(&self, root: &SysRoot) -> Result<PlanRecord> {
        let mut r = self.clone();
        r.step = Step::Done;
        r.refusal = None;
        r.fill(&PageInfo::read(root, Pfn(self.pfn))?);
        Ok(r)
    }

    /// The lines people read before the action: what was typed, the PFN it hits, its folio,
    /// who maps it and what the guard says.
    pub fn describe(&self, force: bool) -> Vec<String> {
        let plain = format!("PFN {:#x}", self.pfn);
        let mut v = vec![if self.target == plain {
            plain
        } else {
            format!("{} -> {plain}", self.target)
        }];
        if let (Some(h), Some(n), Some(k)) =
            (self.folio.head_pfn, self.folio.pages, self.folio.kind)
        {
            let kind = serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            v.push(format!(
                "  part of a {n}-page {kind} folio at PFN {h:#x}: the whole folio is affected"
            ));
        }
        if self.mapped_by.is_empty() {
            v.push("  mapped by no process we can read".into());
        }
        v.extend(self.mapped_by.iter().map(|m| format!("  mapped by {m}")));
        if let Some(r) = &self.refusal {
            v.push(if force {
                format!("  warning: {r} (--force given)")
            } else {
                format!("  refused: {r}")
            });
        }
        v
    }
}

/// The rows of what `action` will touch, one per aim; the second value says why owners are
/// unknown when the reverse lookup failed (the rows then have no `mapped_by`).
pub fn plan(
    root: &SysRoot,
    aims: &[Aim],
    action: Action,
) -> Result<(Vec<PlanRecord>, Option<String>)> {
    // Who maps these pages: the processes that would get SIGBUS. One pass over the processes
    // for all the PFNs; a failure only loses this detail.
    let report = rmap::who(root, &Query::pfns(aims.iter().map(|a| a.pfn).collect()));
    let owners_error = report
        .as_ref()
        .err()
        .map(|e| format!("owners unknown: {e}"));
    let mut out = Vec::with_capacity(aims.len());
    for a in aims {
        let info = PageInfo::read(root, a.pfn)?;
        let mut mapped_by = Vec::new();
        if let Ok(rep) = &report
            && let Ok(i) = rep.targets.binary_search_by_key(&a.pfn, |t| t.pfn)
        {
            for m in rep.mappings_of(i) {
                let path = m.vma.as_ref().map(|v| v.display_name()).unwrap_or("?");
                mapped_by.push(format!(
                    "pid {} ({}) at {:#x} {path}",
                    m.pid, m.comm, m.vaddr.0
                ));
            }
        }
        let mut r = PlanRecord {
            step: Step::Plan,
            action,
            target: a.target.clone(),
            pid: a.pid,
            vaddr: a.vaddr,
            pfn: a.pfn.0,
            phys_addr: None,
            region: None,
            system_ram: None,
            kpagecount: None,
            flags: Vec::new(),
            flags_raw: None,
            flags_raw_hex: None,
            folio: FolioRecord::default(),
            mapped_by,
            refusal: if action.guarded() {
                info.refusal()
            } else {
                None
            },
        };
        r.fill(&info);
        out.push(r);
    }
    Ok((out, owners_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aims_keep_the_users_units() {
        let mut none: &[u8] = b"";
        let a = aims_from_pfn_args(
            &["115211".into(), "0x10".into(), "0x20-0x21".into()],
            &mut none,
            16,
        )
        .expect("parses");
        let t: Vec<&str> = a.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(
            t,
            [
                "PFN 115211 (0x1c20b)",
                "PFN 0x10",
                "PFN 0x20 (of 0x20-0x21)",
                "PFN 0x21 (of 0x20-0x21)"
            ]
        );
        let mut stdin: &[u8] = b"7\n";
        let a = aims_from_pfn_args(&["-".into()], &mut stdin, 16).expect("stdin");
        assert_eq!(a[0].target, "PFN 0x7 (from stdin)");
        let e = aims_from_pfn_args(&["0+17".into()], &mut none, 16).expect_err("cap");
        assert!(e.to_string().contains("at most 16 pages"), "{e}");
        assert!(aims_from_pfn_args(&["zz".into()], &mut none, 16).is_err());
    }
}
