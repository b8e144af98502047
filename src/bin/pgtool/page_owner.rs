//! `pgtool page-owner` and the `page_owner_sort` drop-in (multi-call name).

use std::ffi::OsString;

pub use report_cli::{Args, run};

/// `pgtool page-owner`: the modern report.
mod report_cli {
    use crate::Global;
    use crate::output::{Format, FormatArgs, stdout_error, table, write_json_line};
    use pgtool::Error;
    use pgtool::cgroup::CgroupIndex;
    use pgtool::kpage::{KpageFile, U64File};
    use pgtool::page_owner::report::{GroupKey, Join, Report};
    use std::io::{BufReader, Write};
    use std::path::PathBuf;

    /// Top allocation stacks (or orders, gfp masks, modules, pids...) from a page_owner dump,
    /// with what their pages are now.
    #[derive(clap::Args, Debug)]
    pub struct Args {
        /// A saved dump (default: the live <debugfs>/page_owner; the kernel needs page_owner=on).
        pub file: Option<PathBuf>,
        /// Group by these keys (comma-separated): stack, order, gfp, module, pid, tgid, comm,
        /// memcg, free, allocator. page_owner_sort's --cull names (st, p, tg, n, f, ator) work too.
        #[arg(
            long,
            visible_alias = "cull",
            value_name = "KEYS",
            default_value = "stack"
        )]
        pub by: String,
        /// Show the N largest groups (0: all).
        #[arg(long, default_value_t = 10, value_name = "N")]
        pub top: usize,
        /// Leave out blocks freed after their allocation (page_owner_sort -f).
        #[arg(short = 'f', long)]
        pub unreleased: bool,
        /// Join each record's PFN with kpageflags/kpagecgroup (default: on for the live file,
        /// off for a saved dump, whose PFNs belong to another boot).
        #[arg(long, overrides_with = "no_join")]
        pub join: bool,
        /// Do not join with kpageflags.
        #[arg(long)]
        pub no_join: bool,
        #[command(flatten)]
        pub format: FormatArgs,
    }

    /// Run the report.
    pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
        let root = g.sysroot();
        let mut keys = Vec::new();
        for k in args.by.split(',') {
            match GroupKey::parse(k.trim()) {
                Some(key) => keys.push(key),
                None => {
                    return Err(Error::Usage(format!(
                        "--by: unknown key '{k}' (use stack, order, gfp, module, pid, tgid, comm, memcg, free, allocator)"
                    )));
                }
            }
        }
        let path = args
            .file
            .clone()
            .unwrap_or_else(|| root.debugfs().join("page_owner"));
        let f = std::fs::File::open(&path).map_err(|e| {
            let hint = if args.file.is_none() {
                Some(
                    "boot with page_owner=on, mount debugfs, run as root, or pass a saved dump"
                        .to_owned(),
                )
            } else {
                None
            };
            Error::Io {
                path: path.clone(),
                source: e,
                hint,
            }
        })?;
        let want_join = (args.join || args.file.is_none()) && !args.no_join;
        let join = if want_join {
            match U64File::open_kpage(&root, KpageFile::Flags) {
                Ok(flags) => Some(Join {
                    flags,
                    cgroup: U64File::open_kpage(&root, KpageFile::Cgroup).ok(),
                }),
                Err(e) => {
                    eprintln!("pgtool: page-owner: no kpageflags join: {e}");
                    None
                }
            }
        } else {
            None
        };
        let joined = join.is_some();
        let has_cg = join.as_ref().is_some_and(|j| j.cgroup.is_some());
        let mut rep = Report::new(keys, join);
        rep.only_unreleased = args.unreleased;
        rep.read(BufReader::with_capacity(1 << 20, f))
            .map_err(|e| match e {
                Error::Io { source, hint, .. } => Error::Io {
                    path: path.clone(),
                    source,
                    hint,
                },
                other => other,
            })?;
        let cg = if has_cg {
            CgroupIndex::build(&root).ok()
        } else {
            None
        };
        let memcg_name = |ino: u64| -> String {
            cg.as_ref()
                .and_then(|c| c.path_of(ino))
                .map_or_else(|| format!("inode:{ino}"), |p| p.display().to_string())
        };
        let mut top = rep.top();
        if args.top > 0 {
            top.truncate(args.top);
        }
        let names: Vec<String> = rep
            .keys()
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        let now_str = |g: &pgtool::page_owner::report::Group, sep: &str| -> String {
            let mut v: Vec<(&&str, &u64)> = g.now.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            v.iter()
                .map(|(k, n)| format!("{k}{sep}{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match args.format.format() {
            Format::Json => {
                for g in &top {
                    let mut key = serde_json::Map::new();
                    for (n, v) in names.iter().zip(&g.key) {
                        let val = if n == "stack" {
                            serde_json::Value::from(v.lines().collect::<Vec<_>>())
                        } else {
                            serde_json::Value::from(v.as_str())
                        };
                        key.insert(n.clone(), val);
                    }
                    let memcg: serde_json::Map<String, serde_json::Value> = g
                        .memcg_inode
                        .iter()
                        .map(|(i, p)| (memcg_name(*i), serde_json::Value::from(*p)))
                        .collect();
                    let v = serde_json::json!({
                        "pages": g.pages, "records": g.records, "released": g.released,
                        "min_ts_ns": g.min_ts, "max_ts_ns": g.max_ts,
                        "key": key, "now": g.now, "memcg": memcg,
                    });
                    write_json_line(&mut out, &v)?;
                }
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(&mut out);
                let mut head = vec![
                    "pages".to_owned(),
                    "records".to_owned(),
                    "released".to_owned(),
                ];
                head.extend(names.iter().cloned());
                head.extend(["now".to_owned(), "memcg".to_owned()]);
                w.write_record(&head)
                    .map_err(|e| stdout_error(std::io::Error::other(e)))?;
                for g in &top {
                    let mut row = vec![
                        g.pages.to_string(),
                        g.records.to_string(),
                        g.released.to_string(),
                    ];
                    row.extend(g.key.iter().cloned());
                    row.push(now_str(g, "="));
                    row.push(
                        g.memcg_inode
                            .iter()
                            .map(|(i, p)| format!("{}={p}", memcg_name(*i)))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    w.write_record(&row)
                        .map_err(|e| stdout_error(std::io::Error::other(e)))?;
                }
                w.flush().map_err(stdout_error)?;
            }
            Format::Table => {
                writeln!(
                    out,
                    "{}: {} records, {} pages, {} groups{}",
                    path.display(),
                    rep.records,
                    rep.pages,
                    rep.groups.len(),
                    if rep.filtered > 0 {
                        format!(", {} released records left out", rep.filtered)
                    } else {
                        String::new()
                    }
                )
                .map_err(stdout_error)?;
                let mut t = table();
                let mut head = vec!["pages".to_owned(), "records".to_owned()];
                head.extend(names.iter().cloned());
                if joined {
                    head.push("now".to_owned());
                    if has_cg {
                        head.push("memcg".to_owned());
                    }
                }
                t.set_header(head);
                for g in &top {
                    let mut row = vec![g.pages.to_string(), g.records.to_string()];
                    row.extend(g.key.iter().cloned());
                    if joined {
                        row.push(now_str(g, ":"));
                        if has_cg {
                            let best = g.memcg_inode.iter().max_by_key(|(_, p)| **p);
                            row.push(best.map_or_else(
                                || "-".to_owned(),
                                |(i, p)| format!("{} ({p})", memcg_name(*i)),
                            ));
                        }
                    }
                    t.add_row(row);
                }
                writeln!(out, "{t}").map_err(stdout_error)?;
            }
        }
        out.flush().map_err(stdout_error)?;
        Ok(0)
    }
}

/// Entry point when invoked as `page_owner_sort` (the drop-in lives in the library).
pub fn page_owner_sort_main(argv: Vec<OsString>) -> i32 {
    pgtool::page_owner::sort::cli::main(argv)
}
