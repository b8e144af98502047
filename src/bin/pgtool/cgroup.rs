//! `pgtool cgroup`: memcg inode <-> cgroup path, and resident pages per memcg.
//!
//! Lookup records (JSON Lines / CSV): `query`, `inode`, `hierarchy` (`v1-memory` or `v2`),
//! `path`, `memcg` (true when that hierarchy holds the memory controller, i.e. kpagecgroup
//! inodes refer to it); an unknown query has `inode`/`hierarchy`/`path` null and an `error`.
//!
//! `--pages` records: `inode` (kpagecgroup value), `path` (null when unknown), `state`
//! (`online`, `uncharged` for inode 0, `deleted` for an inode no mounted hierarchy has),
//! `pages`, `bytes`, `anon`, `file`, `slab`, `other` (pages).

use crate::Global;
use crate::output::{Format, FormatArgs, stdout_error, table, write_json_line};
use pgtool::cgroup::{self, CgroupIndex, MemcgPages};
use pgtool::{Error, page_size};
use serde::Serialize;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Arguments of `pgtool cgroup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 everything asked for was found; 1 an inode or path \
names no cgroup; 2 usage or system error.\n\nExamples:\n  pgtool cgroup 3302\n  \
pgtool cgroup /sys/fs/cgroup/memory/system.slice\n  pgtool cgroup --pages --top 10"
)]
pub struct Args {
    /// Memcg inodes (decimal, 0x hex, or @INODE) to turn into paths, or cgroup paths (absolute,
    /// or relative to the hierarchy's mount point) to turn into inodes. With --pages: only
    /// show these memcgs.
    #[arg(value_name = "INODE|PATH")]
    pub items: Vec<String>,
    /// Scan /proc/kpagecgroup with /proc/kpageflags and list memcgs by resident pages, with an
    /// anon/file/slab/other breakdown (root only).
    #[arg(long)]
    pub pages: bool,
    /// With --pages: show only the N memcgs with the most pages.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Worker threads for --pages (0: one per CPU, at most 8).
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Serialize)]
struct LookupRec<'a> {
    query: &'a str,
    inode: Option<u64>,
    hierarchy: Option<&'a str>,
    path: Option<String>,
    memcg: Option<bool>,
    error: Option<String>,
}

#[derive(Serialize)]
struct PagesRec {
    inode: u64,
    path: Option<String>,
    state: &'static str,
    pages: u64,
    bytes: u64,
    anon: u64,
    file: u64,
    slab: u64,
    other: u64,
}

/// Is `s` an inode (number or @number) rather than a path?
fn as_inode(s: &str) -> Option<u64> {
    cgroup::parse_inode(s.strip_prefix('@').unwrap_or(s))
}

/// Run `pgtool cgroup`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let idx = CgroupIndex::build(&root)?;
    if args.pages {
        return pages(&args, g, &idx);
    }
    if args.items.is_empty() {
        return Err(Error::Usage(
            "nothing to do: give memcg inodes or cgroup paths, or --pages".into(),
        ));
    }
    let mut recs: Vec<LookupRec> = Vec::new();
    let mut missing = 0;
    for q in &args.items {
        if let Some(ino) = as_inode(q) {
            let found = idx.by_inode(ino);
            if found.is_empty() {
                missing += 1;
                recs.push(LookupRec {
                    query: q,
                    inode: Some(ino),
                    hierarchy: None,
                    path: None,
                    memcg: None,
                    error: Some(format!(
                        "inode {ino}: no cgroup in the mounted memory-cgroup hierarchies (a \
                         deleted memcg, or a hierarchy that is not mounted)"
                    )),
                });
            }
            for c in found {
                recs.push(LookupRec {
                    query: q,
                    inode: Some(c.inode),
                    hierarchy: Some(c.hierarchy),
                    path: Some(c.path.display().to_string()),
                    memcg: Some(Some(c.hierarchy) == idx.memcg_hierarchy()),
                    error: None,
                });
            }
        } else {
            match idx.lookup_path(Path::new(q)) {
                Ok(c) => recs.push(LookupRec {
                    query: q,
                    inode: Some(c.inode),
                    hierarchy: Some(c.hierarchy),
                    path: Some(c.path.display().to_string()),
                    memcg: Some(Some(c.hierarchy) == idx.memcg_hierarchy()),
                    error: None,
                }),
                Err(e) => {
                    missing += 1;
                    recs.push(LookupRec {
                        query: q,
                        inode: None,
                        hierarchy: None,
                        path: None,
                        memcg: None,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format.format() {
        Format::Json => {
            for r in &recs {
                write_json_line(&mut out, r)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let ce = |e: csv::Error| stdout_error(io::Error::other(e));
            w.write_record(["query", "inode", "hierarchy", "path", "memcg", "error"])
                .map_err(ce)?;
            for r in &recs {
                w.write_record([
                    r.query.to_string(),
                    r.inode.map(|v| v.to_string()).unwrap_or_default(),
                    r.hierarchy.unwrap_or("").to_string(),
                    r.path.clone().unwrap_or_default(),
                    r.memcg.map(|v| v.to_string()).unwrap_or_default(),
                    r.error.clone().unwrap_or_default(),
                ])
                .map_err(ce)?;
            }
            w.flush().map_err(stdout_error)?;
        }
        Format::Table => {
            let mut t = table();
            t.set_header(["INODE", "HIERARCHY", "PATH"]);
            let mut any = false;
            for r in recs.iter().filter(|r| r.error.is_none()) {
                any = true;
                let h = match (r.hierarchy, r.memcg) {
                    (Some(h), Some(true)) => format!("{h} (memcg)"),
                    (Some(h), _) => h.to_string(),
                    _ => String::new(),
                };
                t.add_row([
                    r.inode.map(|v| v.to_string()).unwrap_or_default(),
                    h,
                    r.path.clone().unwrap_or_default(),
                ]);
            }
            if any {
                writeln!(out, "{t}").map_err(stdout_error)?;
            }
        }
    }
    out.flush().map_err(stdout_error)?;
    if args.format.format() == Format::Table {
        for r in recs.iter().filter_map(|r| r.error.as_ref()) {
            eprintln!("pgtool: {r}");
        }
    }
    Ok(if missing > 0 { 1 } else { 0 })
}

fn pages(args: &Args, g: &Global, idx: &CgroupIndex) -> Result<i32, Error> {
    let mut want: Option<Vec<u64>> = None;
    for q in &args.items {
        let ino = match as_inode(q) {
            Some(i) => i,
            None => idx.lookup_path(Path::new(q))?.inode,
        };
        want.get_or_insert_with(Vec::new).push(ino);
    }
    let mut rows: Vec<MemcgPages> = cgroup::pages_by_memcg(&g.sysroot(), args.jobs)?;
    if let Some(w) = &want {
        // Asked-for memcgs with no pages still get a row.
        for &ino in w {
            if !rows.iter().any(|r| r.inode == ino) {
                rows.push(MemcgPages {
                    inode: ino,
                    ..MemcgPages::default()
                });
            }
        }
        rows.retain(|r| w.contains(&r.inode));
    }
    if let Some(n) = args.top {
        rows.truncate(n);
    }
    let ps = page_size();
    let recs: Vec<PagesRec> = rows
        .iter()
        .map(|r| {
            let c = idx.memcg(r.inode);
            PagesRec {
                inode: r.inode,
                path: c.map(|c| c.path.display().to_string()),
                state: if r.inode == 0 {
                    "uncharged"
                } else if c.is_some() {
                    "online"
                } else {
                    "deleted"
                },
                pages: r.pages,
                bytes: r.pages * ps,
                anon: r.anon,
                file: r.file,
                slab: r.slab,
                other: r.other,
            }
        })
        .collect();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format.format() {
        Format::Json => {
            for r in &recs {
                write_json_line(&mut out, r)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let ce = |e: csv::Error| stdout_error(io::Error::other(e));
            w.write_record([
                "inode", "path", "state", "pages", "bytes", "anon", "file", "slab", "other",
            ])
            .map_err(ce)?;
            for r in &recs {
                w.write_record([
                    r.inode.to_string(),
                    r.path.clone().unwrap_or_default(),
                    r.state.to_string(),
                    r.pages.to_string(),
                    r.bytes.to_string(),
                    r.anon.to_string(),
                    r.file.to_string(),
                    r.slab.to_string(),
                    r.other.to_string(),
                ])
                .map_err(ce)?;
            }
            w.flush().map_err(stdout_error)?;
        }
        Format::Table => {
            let mut t = table();
            t.set_header([
                "PAGES", "MiB", "ANON", "FILE", "SLAB", "OTHER", "INODE", "MEMCG",
            ]);
            for r in &recs {
                let name = match (&r.path, r.state) {
                    (Some(p), _) => p.clone(),
                    (None, "uncharged") => "<uncharged/root>".into(),
                    _ => "<deleted or unknown memcg>".into(),
                };
                t.add_row([
                    r.pages.to_string(),
                    format!("{:.1}", r.bytes as f64 / (1024.0 * 1024.0)),
                    r.anon.to_string(),
                    r.file.to_string(),
                    r.slab.to_string(),
                    r.other.to_string(),
                    r.inode.to_string(),
                    name,
                ]);
            }
            writeln!(out, "{t}").map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(0)
}
