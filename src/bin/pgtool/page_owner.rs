//! `pgtool page-owner` and the `page_owner_sort` drop-in (multi-call name).

use std::ffi::OsString;

pub use report_cli::{Args, cut, run, write_stack};

/// `pgtool page-owner`: the modern report.
mod report_cli {
    use crate::Global;
    use crate::output::FormatArgs;
    use pgtool::Error;
    use pgtool::cgroup::CgroupIndex;
    use pgtool::kpage::{KpageFile, U64File};
    use pgtool::output::Sink;
    use pgtool::page_owner::report::{EXPECTED, GroupKey, Join, Report};
    use pgtool::text_input;
    use std::path::PathBuf;

    /// Top allocation stacks (or orders, gfp masks, modules, pids...) from a page_owner dump,
    /// with what their pages are now.
    #[derive(clap::Args, Debug)]
    #[command(after_help = "\
Input: the live <debugfs>/page_owner (boot with page_owner=on; root), a saved dump, or - for
stdin. A file that is not a page_owner dump (binary data, a line over 64 KiB, a first block that
is not a record) is refused; directories and devices are refused before reading. Records with a
missing or impossible order (above 20) are left out and counted in a note on stderr.

Fields (JSON/CSV): rank, pages, records, released, min_ts_ns, max_ts_ns, group (the key as text),
one field per --by key (stack is an array of frames; order, pid, tgid are numbers), now (with the
join: pages by what they are now: free, slab, anon, file, pgtable, reserved, compound, none,
other, beyond_memory; CSV now_anon...), memcg_path, memcg_ino, memcg_pages (the memcg holding most
of the group's pages now). The table shows the full stacks below it.

Exit status: 0 listed; 1 no records (an empty dump, or -f left out every record); 2 usage error,
unreadable input or not a page_owner dump.")]
    pub struct Args {
        /// A saved dump, or - for stdin (default: the live <debugfs>/page_owner; the kernel needs
        /// page_owner=on).
        pub file: Option<PathBuf>,
        /// Group by these keys (comma-separated). page_owner_sort's --cull names (st, p, tg, n,
        /// f, ator) work too.
        #[arg(
            long,
            visible_alias = "cull",
            value_name = "KEYS",
            value_enum,
            value_delimiter = ',',
            default_value = "stack"
        )]
        pub by: Vec<GroupKey>,
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
        let mut keys: Vec<GroupKey> = Vec::new();
        for k in args.by {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let live = args.file.is_none();
        let path = args
            .file
            .clone()
            .unwrap_or_else(|| root.debugfs().join("page_owner"));
        let input = text_input::open(&path, "a page_owner dump").map_err(|e| match e {
            Error::Io { path, source, .. } if live => Error::Io {
                path,
                source,
                hint: Some(
                    "boot with page_owner=on, mount debugfs, run as root, or pass a saved dump"
                        .to_owned(),
                ),
            },
            other => other,
        })?;
        let shown_path = if path.as_os_str() == "-" {
            PathBuf::from("<stdin>")
        } else {
            path.clone()
        };
        let want_join = (args.join || live) && !args.no_join;
        let mut notes = Vec::new();
        let join = if want_join {
            match U64File::open_kpage(&root, KpageFile::Flags) {
                Ok(flags) => Some(Join {
                    flags,
                    cgroup: U64File::open_kpage(&root, KpageFile::Cgroup).ok(),
                }),
                Err(e) => {
                    notes.push(format!("no kpageflags join: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let has_cg = join.as_ref().is_some_and(|j| j.cgroup.is_some());
        let mut rep = Report::new(keys, join);
        rep.only_unreleased = args.unreleased;
        rep.read_dump(input, &shown_path)?;
        notes.extend(rep.notes());
        for n in &notes {
            eprintln!("pgtool: page-owner: {}: {n}", shown_path.display());
        }
        if rep.records == 0 {
            return Err(if rep.filtered > 0 {
                Error::NotFound(format!(
                    "{}: -f left out all {} records (every block was freed after its allocation)",
                    shown_path.display(),
                    rep.filtered
                ))
            } else if rep.blocks > 0 {
                Error::Usage(format!(
                    "{}: no usable record in {} block(s): not {EXPECTED}",
                    shown_path.display(),
                    rep.blocks
                ))
            } else {
                Error::NotFound(format!(
                    "{}: no page_owner records (an empty dump)",
                    shown_path.display()
                ))
            });
        }
        let cg = if has_cg {
            CgroupIndex::build(&root).ok()
        } else {
            None
        };
        let records = rep.records(args.top, |ino| {
            cg.as_ref()
                .and_then(|c| c.path_of(ino))
                .map(|p| p.display().to_string())
        });
        let mut sink = Sink::stdout(args.format.format());
        let head = format!(
            "{}: {} records, {} pages, {} groups{}",
            shown_path.display(),
            rep.records,
            rep.pages,
            rep.groups.len(),
            if rep.filtered > 0 {
                format!(", {} released records left out", rep.filtered)
            } else {
                String::new()
            }
        );
        sink.text(&cut(&head, 100))?;
        for r in &records {
            sink.write(r)?;
        }
        if rep.keys().contains(&GroupKey::Stack) {
            for r in &records {
                let frames: Vec<&str> = match r.key.get("stack") {
                    Some(serde_json::Value::Array(f)) => {
                        f.iter().filter_map(|v| v.as_str()).collect()
                    }
                    _ => Vec::new(),
                };
                let title = format!("#{} ({} pages, {} records):", r.rank, r.pages, r.records);
                write_stack(&mut sink, &title, &frames)?;
            }
        }
        sink.finish()?;
        Ok(0)
    }

    /// The table's stack section: an empty line, `title`, the frames indented, each line cut
    /// to 100 columns (kfence's too).
    pub fn write_stack<W: std::io::Write>(
        sink: &mut Sink<W>,
        title: &str,
        frames: &[&str],
    ) -> Result<(), Error> {
        sink.text("")?;
        sink.text(&cut(title, 100))?;
        for f in frames {
            sink.text(&format!("  {}", cut(f, 98)))?;
        }
        Ok(())
    }

    /// `s` cut to at most `n` characters.
    pub fn cut(s: &str, n: usize) -> String {
        if s.chars().count() <= n {
            s.to_string()
        } else {
            let mut t: String = s.chars().take(n - 1).collect();
            t.push('…');
            t
        }
    }
}

/// Entry point when invoked as `page_owner_sort` (the drop-in lives in the library).
pub fn page_owner_sort_main(argv: Vec<OsString>) -> i32 {
    pgtool::page_owner::sort::cli::main(argv)
}
