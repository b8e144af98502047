//! `pgtool page-owner` and the `page_owner_sort` drop-in (multi-call name).

use pgtool::page_owner::sort::{Options, SortKey, Sorter, Stop, filter, strtol_int};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

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
