//! Sums into rows: sorted by PSS (largest first), the total last.

use super::By;
use super::procs::Target;
use super::records::{self, LibraryRow, MappingRow, MemcgRow, ProcessRow, Rows, UserRow};
use super::usage::Usage;
use super::usage::UsageBytes;
use super::users;
use crate::cgroup::CgroupIndex;
use crate::error::Result;
use crate::root::SysRoot;
use std::collections::HashMap;

/// Sums as the walk goes.
#[derive(Default)]
pub(super) struct Agg {
    pub(super) process: ProcAgg,
    pub(super) mapping: Vec<MappingRow>,
    pub(super) library: HashMap<String, (Usage, u64)>,
    pub(super) memcg: HashMap<u64, Usage>,
}

pub(super) fn finish(root: &SysRoot, by: By, agg: Agg) -> Result<Rows> {
    let live = root.is_live();
    Ok(match by {
        By::Process => Rows::Process(process_rows(live, agg.process)),
        By::User => Rows::User(user_rows(live, agg.process)),
        By::Mapping => {
            let mut v = agg.mapping;
            v.sort_by(|a, b| {
                b.usage
                    .pss_bytes
                    .cmp(&a.usage.pss_bytes)
                    .then(a.pid.cmp(&b.pid))
            });
            let total = records::sum(v.iter().map(|r| r.usage));
            v.push(MappingRow {
                pid: None,
                comm: None,
                mapping: None,
                vmas: v.iter().map(|r| r.vmas).sum(),
                usage: total,
                total: true,
            });
            Rows::Mapping(v)
        }
        By::Library => {
            let mut v: Vec<LibraryRow> = agg
                .library
                .into_iter()
                .map(|(path, (u, n))| LibraryRow {
                    path: Some(path),
                    processes: n,
                    usage: u.bytes(),
                    total: false,
                })
                .collect();
            v.sort_by(|a, b| {
                b.usage
                    .pss_bytes
                    .cmp(&a.usage.pss_bytes)
                    .then(a.path.cmp(&b.path))
            });
            let total = records::sum(v.iter().map(|r| r.usage));
            v.push(LibraryRow {
                path: None,
                processes: 0,
                usage: total,
                total: true,
            });
            Rows::Library(v)
        }
        By::Memcg => {
            let idx = CgroupIndex::build(root)?;
            let mut v: Vec<MemcgRow> = agg
                .memcg
                .into_iter()
                .map(|(ino, u)| MemcgRow {
                    memcg_ino: Some(ino),
                    memcg_path: idx.memcg(ino).map(|c| c.path.display().to_string()),
                    usage: u.bytes(),
                    total: false,
                })
                .collect();
            v.sort_by(|a, b| {
                b.usage
                    .pss_bytes
                    .cmp(&a.usage.pss_bytes)
                    .then(a.memcg_ino.cmp(&b.memcg_ino))
            });
            let total = records::sum(v.iter().map(|r| r.usage));
            v.push(MemcgRow {
                memcg_ino: None,
                memcg_path: None,
                usage: total,
                total: true,
            });
            Rows::Memcg(v)
        }
    })
}

pub(super) type ProcAgg = Vec<(Target, Usage, &'static str, Option<UsageBytes>)>;

pub(super) fn process_rows(live: bool, procs: ProcAgg) -> Vec<ProcessRow> {
    let names = users::names(procs.iter().filter_map(|p| p.0.uid), live);
    let mut v: Vec<ProcessRow> = procs
        .into_iter()
        .map(|(t, u, source, rolled)| ProcessRow {
            pid: Some(t.pid),
            user: t
                .uid
                .map(|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string())),
            comm: Some(t.comm),
            uid: t.uid,
            usage: rolled.unwrap_or_else(|| u.bytes()),
            mm_pids: t.also,
            source,
            total: false,
        })
        .collect();
    v.sort_by(|a, b| {
        b.usage
            .pss_bytes
            .cmp(&a.usage.pss_bytes)
            .then(a.pid.cmp(&b.pid))
    });
    let total = records::sum(v.iter().map(|r| r.usage));
    let source = match v
        .iter()
        .map(|r| r.source)
        .collect::<std::collections::BTreeSet<_>>()
    {
        s if s.len() == 1 => s.into_iter().next().unwrap_or("pages"),
        _ => "mixed",
    };
    v.push(ProcessRow {
        pid: None,
        comm: None,
        user: None,
        uid: None,
        usage: total,
        mm_pids: Vec::new(),
        source,
        total: true,
    });
    v
}

pub(super) fn user_rows(live: bool, procs: ProcAgg) -> Vec<UserRow> {
    let rows = process_rows(live, procs);
    let mut by: Vec<(Option<u32>, Option<String>, Vec<UsageBytes>)> = Vec::new();
    for r in rows.iter().filter(|r| !r.total) {
        match by.iter_mut().find(|(u, _, _)| *u == r.uid) {
            Some(e) => e.2.push(r.usage),
            None => by.push((r.uid, r.user.clone(), vec![r.usage])),
        }
    }
    let mut v: Vec<UserRow> = by
        .into_iter()
        .map(|(uid, user, us)| UserRow {
            uid,
            user,
            processes: us.len() as u64,
            usage: records::sum(us.into_iter()),
            total: false,
        })
        .collect();
    v.sort_by(|a, b| {
        b.usage
            .pss_bytes
            .cmp(&a.usage.pss_bytes)
            .then(a.uid.cmp(&b.uid))
    });
    let total = records::sum(v.iter().map(|r| r.usage));
    let n = v.iter().map(|r| r.processes).sum();
    v.push(UserRow {
        uid: None,
        user: None,
        processes: n,
        usage: total,
        total: true,
    });
    v
}
