//! Building a [`Report`]: select the address spaces, choose the source (pages or
//! smaps_rollup), walk, and sum into rows.

use super::backing::Backing;
use super::lookup::SharedCache;
use super::notes::{hidden_note, large_folio_note, swap_in_use};
use super::procs::{self, Target};
use super::records::{MappingRow, Rows};
use super::rollup;
use super::rows::{Agg, ProcAgg, finish, process_rows, user_rows};
use super::scan::{self, PageFiles, Walker};
use super::usage::{Usage, UsageBytes};
use super::{By, Report, Request, Source, Stats};
use crate::cgroup::CgroupIndex;
use crate::error::{Error, Result};
use crate::maps::{self, Vma, VmaKind};
use crate::root::SysRoot;
use std::collections::HashMap;
use std::path::Path;

/// Build the report `req` asks for.
pub fn report(root: &SysRoot, req: &Request) -> Result<Report> {
    let (all, gone) = procs::list_targets(root)?;
    let targets = select(root, &all, req)?;
    // Processes that vanished while listing matter only when every process was asked for.
    let gone = if req.pids.is_empty() && req.comm.is_empty() {
        gone
    } else {
        0
    };
    let mut stats = Stats {
        exited: gone,
        shared_mm: targets.iter().map(|t| t.also.len() as u64).sum(),
        ..Stats::default()
    };
    let mut notes = Vec::new();
    let files = if req.rollup {
        None
    } else {
        open_files(root, req.by == By::Memcg)?
    };
    let (rows, source) = match files {
        Some(files) => match by_pages(root, req, &all, &targets, &files, &mut stats, &mut notes)? {
            Some(rows) => (rows, Source::Pages),
            None => {
                notes.clear();
                stats = Stats {
                    exited: gone,
                    shared_mm: stats.shared_mm,
                    ..Stats::default()
                };
                notes.push(hidden_note(root));
                (
                    by_rollup(root, req, &targets, &mut stats, &mut notes)?,
                    Source::Rollup,
                )
            }
        },
        None => {
            if !req.rollup {
                notes.push(hidden_note(root));
            }
            (
                by_rollup(root, req, &targets, &mut stats, &mut notes)?,
                Source::Rollup,
            )
        }
    };
    if stats.exited > 0 {
        notes.push(format!(
            "{} process(es) exited while being read: skipped",
            stats.exited
        ));
    }
    if stats.read == 0 {
        return Err(Error::NotFound(
            "no process could be read (every selected process exited or was unreadable)".into(),
        ));
    }
    Ok(Report {
        rows,
        source,
        notes,
        stats,
    })
}

/// kpageflags + kpagecount (+ kpagecgroup), or `None` when they cannot be read for lack of
/// privilege (live) or are not in the snapshot.
fn open_files(root: &SysRoot, memcg: bool) -> Result<Option<PageFiles>> {
    match PageFiles::open(root, memcg) {
        Ok(f) => Ok(Some(f)),
        Err(Error::Io { source, .. })
            if matches!(
                source.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM)
            ) =>
        {
            Ok(None)
        }
        Err(Error::Io { source, path, .. })
            if !root.is_live()
                && source.kind() == std::io::ErrorKind::NotFound
                && (path == root.kpagecount() || path == root.kpageflags()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Apply `--pid` (with `--children`), `--comm` and `--cgroup`.
fn select(root: &SysRoot, all: &[Target], req: &Request) -> Result<Vec<Target>> {
    let mut v: Vec<Target> = all.to_vec();
    if !req.pids.is_empty() {
        for &p in &req.pids {
            if !all.iter().any(|t| t.pid == p || t.also.contains(&p)) {
                return Err(Error::NoSuchProcess { pid: p });
            }
        }
        let want = if req.children {
            procs::with_descendants(all, &req.pids)
        } else {
            req.pids.iter().copied().collect()
        };
        v.retain(|t| want.contains(&t.pid) || t.also.iter().any(|p| want.contains(p)));
    }
    if !req.comm.is_empty() {
        v.retain(|t| req.comm.contains(&t.comm));
        if v.is_empty() {
            return Err(Error::NotFound(format!(
                "no process named {} (as in /proc/PID/comm, at most 15 bytes)",
                req.comm
                    .iter()
                    .map(|c| crate::input::quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if let Some(spec) = &req.cgroup {
        let (kind, rel) = cgroup_filter(root, spec)?;
        v.retain(|t| {
            procs::cgroup_of(root, t.pid, kind).is_some_and(|p| procs::cgroup_within(&p, &rel))
        });
        if v.is_empty() {
            return Err(Error::NotFound(format!(
                "no selected process is in cgroup {} or below it",
                crate::input::quote(spec)
            )));
        }
    }
    Ok(v)
}

/// The hierarchy and the path relative to its mount that `--cgroup SPEC` names.
fn cgroup_filter(root: &SysRoot, spec: &str) -> Result<(&'static str, String)> {
    let idx = CgroupIndex::build(root)?;
    let cg = if let Some(n) = spec.strip_prefix('@') {
        let ino = crate::cgroup::parse_inode(n).ok_or_else(|| {
            Error::Usage(format!(
                "bad cgroup {}: expected a path or @INODE (0x hex or decimal)",
                crate::input::quote(spec)
            ))
        })?;
        idx.memcg(ino)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no memory cgroup has inode {ino} (@{n})")))?
    } else if spec.is_empty() {
        return Err(Error::Usage(
            "empty --cgroup: give a cgroup path or @INODE".into(),
        ));
    } else {
        idx.lookup_path(Path::new(spec))?
    };
    let mount = idx
        .hierarchies()
        .iter()
        .find(|h| h.kind == cg.hierarchy)
        .map(|h| h.mount.clone())
        .unwrap_or_default();
    let rel = cg.path.strip_prefix(&mount).unwrap_or(&cg.path);
    Ok((cg.hierarchy, format!("/{}", rel.display())))
}

/// Per-page report; `Ok(None)` when PFNs turn out to be hidden (fall back to smaps_rollup).
fn by_pages(
    root: &SysRoot,
    req: &Request,
    all: &[Target],
    targets: &[Target],
    files: &PageFiles,
    stats: &mut Stats,
    notes: &mut Vec<String>,
) -> Result<Option<Rows>> {
    let swap_refs = if swap_in_use(root) {
        let pids: Vec<u32> = all.iter().map(|t| t.pid).collect();
        scan::count_swap_refs(root, &pids)
    } else {
        HashMap::new()
    };
    let batch = if req.batch == 0 {
        scan::BATCH_PAGES
    } else {
        req.batch
    };
    let mut walker = Walker {
        files,
        swap_refs: &swap_refs,
        batch,
        cache: SharedCache::new(batch),
        // kpagecgroup is per page: a memcg report reads every page's words.
        lean: req.lean && req.by != By::Memcg,
        backing: Backing::default(),
        scratch: Default::default(),
        threads: crate::threads::pick(req.threads, 8),
    };
    let mut agg = Agg::default();
    let mut first_err: Option<Error> = None;
    let mut unreadable = 0u64;
    let mut precise = false;
    for t in targets {
        let vmas = match maps::read_maps(root, t.pid) {
            Ok(v) => v,
            Err(e) if e.is_process_gone() && root.is_live() => {
                stats.exited += 1;
                continue;
            }
            Err(e) => {
                unreadable += 1;
                first_err.get_or_insert(e);
                continue;
            }
        };
        let vmas: Vec<Vma> = vmas.into_iter().filter(|v| selected(v, req)).collect();
        let mut parts: Vec<(usize, u64, Usage)> = Vec::new();
        let lean = walker.lean;
        let walked = walker.walk(root, t.pid, &vmas, |i, cg, u| {
            // Lean: THP, KSM and dirty unknown in every row alike, not only where skipped.
            let u = Usage {
                flags_unknown: u.flags_unknown || lean,
                ..*u
            };
            parts.push((i, cg, u))
        });
        let ws = match walked {
            Ok(ws) => ws,
            Err(e) if e.is_process_gone() && root.is_live() => {
                stats.exited += 1;
                continue;
            }
            Err(e) => {
                if !root.is_live()
                    && !root.pid_file(t.pid, "pagemap").exists()
                    && matches!(req.by, By::Process | By::User)
                    && let Some(u) = read_rollup(root, t.pid)
                {
                    agg.process
                        .push((t.clone(), Usage::default(), "smaps_rollup", Some(u)));
                    stats.read += 1;
                    continue;
                }
                unreadable += 1;
                first_err.get_or_insert(e);
                continue;
            }
        };
        if ws.hidden > 0 {
            return Ok(None);
        }
        if root.is_live() && procs::read_status(root, t.pid).is_none_or(|s| s.dead) {
            stats.exited += 1; // exited during the walk: its figures are partial
            continue;
        }
        stats.read += 1;
        stats.large_folio_pages += ws.large_folio_pages;
        precise |= ws.folio_counts_differ;
        add_process(&mut agg, req.by, t, &vmas, &parts);
    }
    if unreadable > 0 {
        if stats.read == 0
            && !req.pids.is_empty()
            && let Some(e) = first_err
        {
            return Err(e); // the process asked for could not be read: say why
        }
        let first = first_err.map(|e| e.to_string()).unwrap_or_default();
        notes.push(format!(
            "{unreadable} process(es) could not be read: skipped (first: {first})"
        ));
    }
    stats.unreadable = unreadable;
    if walker.lean {
        notes.push(
            "--fast: pages mapped once were counted from pagemap alone: thp, ksm and dirty are \
             not known (null)"
                .into(),
        );
    }
    if stats.large_folio_pages > 0 {
        let mut n = large_folio_note(root, stats.large_folio_pages, precise);
        if walker.lean {
            n.push_str(
                " (--fast: among pages whose flags were read; pages mapped once not checked)",
            );
        }
        notes.push(n);
    }
    if !swap_refs.is_empty() {
        notes.push(
            "SwapPss divides each swap slot by the page-table references pgtool counted over \
             every process; the kernel divides by the slot's swap count, which also counts \
             shmem and swap-cache references (SwapPss may read higher here); shmem pages in \
             swap are not seen"
                .into(),
        );
    }
    finish(root, req.by, agg).map(Some)
}

/// Does `--path` (and `--by library`: file mappings only) select this mapping?
fn selected(v: &Vma, req: &Request) -> bool {
    (req.by != By::Library || v.kind == VmaKind::File)
        && (req.paths.is_empty() || req.paths.iter().any(|p| v.matches_name(p)))
}

fn add_process(agg: &mut Agg, by: By, t: &Target, vmas: &[Vma], parts: &[(usize, u64, Usage)]) {
    match by {
        By::Process | By::User => {
            let mut u = Usage::default();
            parts.iter().for_each(|(_, _, p)| u.merge(p));
            agg.process.push((t.clone(), u, "pages", None));
        }
        By::Mapping => {
            let mut by_name: Vec<(String, Usage, u64)> = Vec::new();
            let mut last_vma = usize::MAX;
            for (i, _, u) in parts {
                let name = vmas[*i].display_name();
                let e = match by_name.iter().position(|(n, _, _)| n == name) {
                    Some(k) => &mut by_name[k],
                    None => {
                        by_name.push((name.to_string(), Usage::default(), 0));
                        let k = by_name.len() - 1;
                        &mut by_name[k]
                    }
                };
                e.1.merge(u);
                if *i != last_vma {
                    e.2 += 1;
                    last_vma = *i;
                }
            }
            for (name, u, n) in by_name {
                agg.mapping.push(MappingRow {
                    pid: Some(t.pid),
                    comm: Some(t.comm.clone()),
                    mapping: Some(name),
                    vmas: n,
                    usage: u.bytes(),
                    total: false,
                });
            }
        }
        By::Library => {
            let mut seen: Vec<&str> = Vec::new();
            for (i, _, u) in parts {
                let path = vmas[*i].path.as_str();
                let e = agg.library.entry(path.to_string()).or_default();
                e.0.merge(u);
                if !seen.contains(&path) {
                    seen.push(path);
                    e.1 += 1;
                }
            }
        }
        By::Memcg => {
            for (_, cg, u) in parts.iter().filter(|(_, _, u)| !u.is_empty()) {
                agg.memcg.entry(*cg).or_default().merge(u);
            }
        }
    }
}

fn read_rollup(root: &SysRoot, pid: u32) -> Option<UsageBytes> {
    let text = std::fs::read_to_string(root.pid_file(pid, "smaps_rollup")).ok()?;
    rollup::usage_from_rollup(&text)
}

/// Per-process figures from smaps_rollup (`--by process` and `--by user` only).
fn by_rollup(
    root: &SysRoot,
    req: &Request,
    targets: &[Target],
    stats: &mut Stats,
    notes: &mut Vec<String>,
) -> Result<Rows> {
    if !matches!(req.by, By::Process | By::User) || !req.paths.is_empty() {
        return Err(Error::Unsupported {
            path: root.kpagecount(),
            what: "per-page accounting (--by mapping/library/memcg, --path)".into(),
            hint: "needs root (CAP_SYS_ADMIN) to read PFNs, or a snapshot with kpagecount".into(),
        });
    }
    let mut procs: ProcAgg = Vec::new();
    let mut unreadable = 0u64;
    let mut first: Option<Error> = None;
    for t in targets {
        let path = root.pid_file(t.pid, "smaps_rollup");
        match std::fs::read_to_string(&path) {
            Ok(text) => match rollup::usage_from_rollup(&text) {
                Some(u) => {
                    procs.push((t.clone(), Usage::default(), "smaps_rollup", Some(u)));
                    stats.read += 1;
                }
                None if text.is_empty() && root.is_live() => stats.exited += 1,
                None => {
                    unreadable += 1;
                    first.get_or_insert(Error::Parse {
                        path: path.clone(),
                        line: 1,
                        msg: "no Rss: field (not a smaps_rollup file)".into(),
                    });
                }
            },
            Err(e)
                if root.is_live()
                    && matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) =>
            {
                stats.exited += 1
            }
            Err(e) => {
                unreadable += 1;
                first.get_or_insert(Error::pid_io(t.pid, &path, e));
            }
        }
    }
    if unreadable > 0 {
        if stats.read == 0
            && !req.pids.is_empty()
            && let Some(e) = first
        {
            return Err(e);
        }
        let first = first.map(|e| e.to_string()).unwrap_or_default();
        notes.push(format!(
            "{unreadable} process(es) could not be read: skipped (first: {first})"
        ));
    }
    stats.unreadable = unreadable;
    let live = root.is_live();
    Ok(match req.by {
        By::User => Rows::User(user_rows(live, procs)),
        _ => Rows::Process(process_rows(live, procs)),
    })
}
