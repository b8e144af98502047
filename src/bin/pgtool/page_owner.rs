//! `pgtool page-owner` and the `page_owner_sort` drop-in (multi-call name).

use pgtool::page_owner::sort::{Options, SortKey, Sorter, Stop, filter, strtol_int};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

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

const USAGE: &str = "Usage: ./page_owner_sort [OPTIONS] <input> <output>\n\
-m\t\tSort by total memory.\n\
-s\t\tSort by the stack trace.\n\
-t\t\tSort by times (default).\n\
-p\t\tSort by pid.\n\
-P\t\tSort by tgid.\n\
-n\t\tSort by task command name.\n\
-a\t\tSort by memory allocate time.\n\
-r\t\tSort by memory release time.\n\
-f\t\tFilter out the information of blocks whose memory has been released.\n\
-d\t\tPrint debug information.\n\
--pid <pidlist>\tSelect by pid. This selects the information of blocks whose process ID numbers appear in <pidlist>.\n\
--tgid <tgidlist>\tSelect by tgid. This selects the information of blocks whose Thread Group ID numbers appear in <tgidlist>.\n\
--name <cmdlist>\n\t\tSelect by command name. This selects the information of blocks whose command name appears in <cmdlist>.\n\
--cull <rules>\tCull by user-defined rules.<rules> is a single argument in the form of a comma-separated list with some common fields predefined\n\
--sort <order>\tSpecify sort order as: [+|-]key[,[+|-]key[,...]]\n";

fn usage() {
    let mut o = io::stdout().lock();
    let _ = o.write_all(USAGE.as_bytes());
    let _ = o.flush();
}

fn err_line(parts: &[&[u8]]) {
    let mut e = io::stderr().lock();
    for p in parts {
        let _ = e.write_all(p);
    }
    let _ = e.write_all(b"\n");
}

const LONGOPTS: [&str; 5] = ["pid", "tgid", "name", "cull", "sort"];

/// Apply one option (getopt's return value) to `o`; Err(exit code) after printing an error.
fn apply(o: &mut Options, opt: u8, optarg: &[u8]) -> Result<(), i32> {
    match opt {
        b'a' => o.set_single(SortKey::AllocTs, 1),
        b'd' => o.debug = true,
        b'f' => o.filter |= filter::UNRELEASE,
        b'm' => o.set_single(SortKey::PageNum, -1),
        b'p' => o.set_single(SortKey::Pid, 1),
        b'r' => o.set_single(SortKey::FreeTs, 1),
        b's' => o.set_single(SortKey::Stacktrace, 1),
        b't' => o.set_single(SortKey::Num, -1),
        b'P' => o.set_single(SortKey::Tgid, 1),
        b'n' => o.set_single(SortKey::Comm, 1),
        1 | 2 => {
            let list: Option<Vec<i32>> = optarg.split(|&c| c == b',').map(strtol_int).collect();
            let what: &[u8] = if opt == 1 { b"pid" } else { b"tgid" };
            match list {
                Some(l) => {
                    if opt == 1 {
                        o.filter |= filter::PID;
                        o.pids = l;
                    } else {
                        o.filter |= filter::TGID;
                        o.tgids = l;
                    }
                }
                None => {
                    err_line(&[
                        b"wrong/invalid ",
                        what,
                        b" in from the command line:",
                        optarg,
                    ]);
                    return Err(1);
                }
            }
        }
        3 => {
            o.filter |= filter::COMM;
            o.comms = optarg.split(|&c| c == b',').map(<[u8]>::to_vec).collect();
        }
        4 => {
            if !o.parse_cull(optarg) {
                err_line(&[b"wrong argument after --cull option:", optarg]);
                return Err(1);
            }
        }
        5 => {
            if !o.parse_sort(optarg) {
                err_line(&[b"wrong argument after --sort option:", optarg]);
                return Err(1);
            }
        }
        _ => {
            usage();
            return Err(1);
        }
    }
    Ok(())
}

/// GNU getopt_long over page_owner_sort's options ("adfmnprstP" and five long options with
/// required arguments), with argument permutation (unless POSIXLY_CORRECT is set). Options
/// take effect in order, as the C switch does. Returns the operands.
fn parse_args(argv: &[Vec<u8>], o: &mut Options) -> Result<Vec<Vec<u8>>, i32> {
    let prog: &[u8] = argv.first().map_or(b"page_owner_sort", |a| a.as_slice());
    let posix = std::env::var_os("POSIXLY_CORRECT").is_some();
    let mut operands = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a.as_slice() == b"--" {
            operands.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix(b"--") {
            let (name, val) = match memchr::memchr(b'=', body) {
                Some(e) => (&body[..e], Some(&body[e + 1..])),
                None => (body, None),
            };
            let exact = LONGOPTS.iter().position(|l| l.as_bytes() == name);
            let found = exact.or_else(|| {
                let m: Vec<usize> = (0..LONGOPTS.len())
                    .filter(|&k| LONGOPTS[k].as_bytes().starts_with(name))
                    .collect();
                (m.len() == 1).then(|| m[0])
            });
            let Some(k) = found else {
                err_line(&[prog, b": unrecognized option '--", body, b"'"]);
                usage();
                return Err(1);
            };
            let arg: Vec<u8> = match val {
                Some(v) => v.to_vec(),
                None if i < argv.len() => {
                    i += 1;
                    argv[i - 1].clone()
                }
                None => {
                    err_line(&[
                        prog,
                        b": option '--",
                        LONGOPTS[k].as_bytes(),
                        b"' requires an argument",
                    ]);
                    usage();
                    return Err(1);
                }
            };
            apply(o, (k + 1) as u8, &arg)?;
            continue;
        }
        if a.len() > 1 && a[0] == b'-' {
            for &c in &a[1..] {
                if !b"adfmnprstP".contains(&c) {
                    err_line(&[prog, b": invalid option -- '", &[c], b"'"]);
                    usage();
                    return Err(1);
                }
                apply(o, c, &[])?;
            }
            continue;
        }
        operands.push(a.clone());
        if posix {
            operands.extend(argv[i..].iter().cloned());
            break;
        }
    }
    Ok(operands)
}

fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = e.to_string();
            // "No such file or directory (os error 2)" -> "No such file or directory"
            let suffix = format!(" (os error {n})");
            s.strip_suffix(&suffix).map_or(s.clone(), str::to_owned)
        }
        None => e.to_string(),
    }
}

/// Entry point when invoked as `page_owner_sort`: a drop-in for the kernel's
/// tools/vm/page_owner_sort (6.1): same options, output file bytes, messages and exit statuses.
pub fn page_owner_sort_main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<Vec<u8>> = argv.into_iter().map(OsStringExt::into_vec).collect();
    let mut o = Options::default();
    let operands = match parse_args(&argv, &mut o) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if operands.len() < 2 {
        usage();
        return 1;
    }
    let inp = std::path::Path::new(std::ffi::OsStr::from_bytes(&operands[0]));
    let outp = std::path::Path::new(std::ffi::OsStr::from_bytes(&operands[1]));
    let fin = File::open(inp);
    let fout = File::create(outp);
    let (fin, fout) = match (fin, fout) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            let e = match (b, a) {
                (Err(e), _) | (_, Err(e)) => e,
                _ => io::Error::other("open"),
            };
            usage();
            err_line(&[b"open: : ", strerror(&e).as_bytes()]);
            return 1;
        }
    };
    let size = fin.metadata().map(|m| m.len()).unwrap_or(0);
    let mut sorter = Sorter::new(o, size);
    let stdout = io::stdout();
    let mut so = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let stderr = io::stderr();
    let mut se = io::BufWriter::new(stderr.lock());
    let r = BufReader::with_capacity(1 << 20, fin);
    match sorter.read_all(r, &mut so, &mut se) {
        Ok(Ok(())) => {}
        Ok(Err(Stop::MaxSize)) => {
            let _ = so.flush();
            let _ = se.write_all(b"max_size too small??\n");
            let _ = se.flush();
            return 1;
        }
        Err(e) => {
            let _ = so.flush();
            let _ = se.flush();
            eprintln!("page_owner_sort: writing progress: {}", strerror(&e));
            return 1;
        }
    }
    let _ = se.flush();
    let mut out = io::BufWriter::with_capacity(1 << 20, fout);
    let res = sorter.finish(&mut so, &mut out);
    let _ = so.flush();
    if let Err(e) = res {
        // The C tool ignores write errors on its output; a drop-in that silently loses data
        // helps nobody, so this is the one deliberate difference.
        eprintln!(
            "page_owner_sort: {}: write failed: {}",
            outp.display(),
            strerror(&e)
        );
        return 1;
    }
    0
}
