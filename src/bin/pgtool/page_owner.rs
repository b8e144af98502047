//! `pgtool page-owner` and the `page_owner_sort` drop-in (multi-call name).

use pgtool::page_owner::sort::{Options, SortKey, Sorter, Stop, filter, strtol_int};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

#[path = "page_owner_report.rs"]
mod report_cli;
pub use report_cli::{Args, run};

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
