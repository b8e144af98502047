//! `pgtool cgroup`: memcg inode <-> cgroup path, and resident pages per memcg. The lookups,
//! counts, rows and metrics are the library's ([`pgtool::cgroup`]).

use crate::Global;
use crate::output::FormatArgs;
use pgtool::cgroup::{self, CgroupIndex, MemcgPages};
use pgtool::output::{Format, Sink};
use pgtool::{Error, SysRoot, page_size};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `pgtool cgroup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Lookup rows (JSON Lines / CSV): query, memcg_ino, hierarchy (v1-memory or v2), \
memcg_path, memory_controller (true when kpagecgroup inodes refer to that hierarchy), error \
(why nothing was found). --pages rows: memcg_ino, memcg_path (null when unknown), state \
(online, uncharged for inode 0, deleted), pages, resident_bytes, anon_pages, file_pages, \
slab_pages, other_pages. --prometheus writes the gauge \
pgtool_memcg_resident_pages{memcg=\"PATH\",kind=\"anon|file|slab|other\"} (every deleted memcg \
summed under memcg=\"<deleted>\", uncharged pages under \"<uncharged>\"), atomically.\n\n\
Exit status: 0 everything asked for was found; 1 an inode or path names no cgroup, or the \
memcgs asked for with --pages hold no page; 2 usage or system error, or a write error (a \
closed pipe on stdout ends quietly with 0).\n\nExamples:\n  pgtool cgroup 3302\n  \
pgtool cgroup /sys/fs/cgroup/system.slice\n  pgtool cgroup --pages --top 10\n  \
pgtool cgroup --pages --prometheus /var/lib/node_exporter/textfile/pgtool_memcg.prom"
)]
pub struct Args {
    /// Memcg inodes (0x hex or decimal, or @INODE) to turn into paths, or cgroup paths
    /// (absolute, or relative to the hierarchy's mount point) to turn into inodes. With --pages:
    /// only show these memcgs.
    #[arg(value_name = "INODE|PATH")]
    pub items: Vec<String>,
    /// Scan /proc/kpagecgroup with /proc/kpageflags and list memcgs by resident pages, with an
    /// anon/file/slab/other breakdown (root only).
    #[arg(long)]
    pub pages: bool,
    /// With --pages: show only the N memcgs with the most pages.
    #[arg(long, value_name = "N", requires = "pages")]
    pub top: Option<usize>,
    /// With --pages: also write the counts to FILE as a Prometheus textfile (atomically), for
    /// node_exporter's textfile collector.
    #[arg(long, value_name = "FILE", requires = "pages")]
    pub prometheus: Option<PathBuf>,
    /// Worker threads for --pages (0: one per CPU, at most 8).
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool cgroup`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    if let Some(p) = &args.prometheus {
        refuse_inside_root(&root, p)?;
    }
    let idx = CgroupIndex::build(&root)?;
    if args.pages {
        return pages(&args, &root, &idx);
    }
    if args.items.is_empty() {
        return Err(Error::Usage(
            "nothing to do: give memcg inodes or cgroup paths, or --pages".into(),
        ));
    }
    let recs = cgroup::lookup(&idx, &args.items);
    let format = args.format.format();
    let mut sink = Sink::stdout(format);
    for r in &recs {
        // The table lists what was found; what was not goes to stderr below.
        if format == Format::Table && r.error.is_some() {
            continue;
        }
        sink.write(r)?;
    }
    sink.finish()?;
    let errors: Vec<&String> = recs.iter().filter_map(|r| r.error.as_ref()).collect();
    let mut err = std::io::stderr().lock();
    for e in &errors {
        let _ = writeln!(err, "pgtool: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// `--root DIR` is read-only: refuse a metrics file inside it.
fn refuse_inside_root(root: &SysRoot, file: &Path) -> Result<(), Error> {
    let Some(dir) = root.snapshot_dir() else {
        return Ok(());
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| abs(p));
    if canon(&parent).starts_with(canon(dir)) {
        return Err(Error::Usage(format!(
            "{}: inside the --root snapshot, which pgtool never writes to; choose a path outside \
             {}",
            file.display(),
            dir.display()
        )));
    }
    Ok(())
}

fn pages(args: &Args, root: &SysRoot, idx: &CgroupIndex) -> Result<i32, Error> {
    let mut want: Option<Vec<u64>> = None;
    for q in &args.items {
        let ino = match q.strip_prefix('@').and_then(cgroup::parse_inode) {
            Some(i) => i,
            None => match cgroup::parse_inode(q) {
                Some(i) => i,
                None => idx.lookup_path(Path::new(q))?.inode,
            },
        };
        want.get_or_insert_with(Vec::new).push(ino);
    }
    let mut rows: Vec<MemcgPages> = cgroup::pages_by_memcg(root, args.jobs)?;
    let mut empty = Vec::new();
    if let Some(w) = &want {
        // Asked-for memcgs with no pages still get a row (and exit 1).
        for &ino in w {
            if !rows.iter().any(|r| r.inode == ino) {
                empty.push(ino);
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
    let recs = cgroup::pages_records(idx, &rows, page_size());
    if let Some(p) = &args.prometheus {
        cgroup::pages_metrics(&recs)?.write_textfile(p)?;
    }
    let mut sink = Sink::stdout(args.format.format());
    for r in &recs {
        sink.write(r)?;
    }
    sink.finish()?;
    if let Some(first) = empty.first() {
        let _ = writeln!(
            std::io::stderr().lock(),
            "pgtool: {} memcg(s) asked for hold no page in use (the first is inode {first})",
            empty.len()
        );
        return Ok(1);
    }
    Ok(0)
}
