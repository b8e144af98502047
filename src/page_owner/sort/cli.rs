//! The `page_owner_sort` drop-in's front end: the kernel's tools/mm/page_owner_sort (6.1)
//! argv handling (through the one getopt emulation, [`crate::getopt`]), messages and exit
//! statuses. Like the C tool it ignores write errors on stdout and stderr (a full disk) and
//! dies of SIGPIPE on a closed pipe; unlike it, it says so when the output file cannot be
//! written and exits 1 (the C tool silently loses the data).

use super::{Options, SortKey, Sorter, Stop, filter, strtol_int};
use crate::getopt::{Event, Getopt, LongOpt};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

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
    let mut o = CStdio(io::stdout().lock());
    let _ = o.write_all(USAGE.as_bytes());
    let _ = o.flush();
}

fn err_line(parts: &[&[u8]]) {
    let mut e = CStdio(io::stderr().lock());
    for p in parts {
        let _ = e.write_all(p);
    }
    let _ = e.write_all(b"\n");
}

const fn lo(name: &'static str, val: u8) -> LongOpt {
    LongOpt {
        name,
        has_arg: true,
        val,
    }
}

/// page_owner_sort's long options; each takes an argument and returns 1..=5.
const LONGOPTS: &[LongOpt] = &[
    lo("pid", 1),
    lo("tgid", 2),
    lo("name", 3),
    lo("cull", 4),
    lo("sort", 5),
];

/// page_owner_sort's short options.
const SHORTS: &[u8] = b"adfmnprstP";

/// stdout/stderr as C's stdio treats them here: write errors are ignored (the C tool never
/// checks printf), so `> /dev/full` changes nothing; a closed pipe raises SIGPIPE.
struct CStdio<W: Write>(W);

impl<W: Write> Write for CStdio<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self.0.write(b) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(_) => Ok(b.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

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

/// glibc getopt_long over page_owner_sort's options, acting on each in order as the C
/// `switch` does. Returns the operands.
fn parse_args(argv: &[OsString], o: &mut Options) -> Result<Vec<Vec<u8>>, i32> {
    let prog: &[u8] = argv.first().map_or(b"page_owner_sort", |a| a.as_bytes());
    let rest = argv.get(1..).unwrap_or_default();
    let posix = std::env::var_os("POSIXLY_CORRECT").is_some();
    let mut g = Getopt::new(rest, SHORTS, LONGOPTS, posix);
    for ev in g.by_ref() {
        match ev {
            Event::Opt(c, arg) => apply(o, c, arg.as_deref().unwrap_or_default())?,
            Event::Error(m) => {
                err_line(&[prog, m.strip_suffix(b"\n").unwrap_or(&m)]);
                usage();
                return Err(1);
            }
        }
    }
    Ok(g.operands().to_vec())
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
/// tools/mm/page_owner_sort (6.1): same options, output file bytes, messages and exit
/// statuses. Restores the default SIGPIPE action, as a C program has.
pub fn main(argv: Vec<OsString>) -> i32 {
    // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    // As the C tool's fopen("w") (create or truncate, 0666 & ~umask), but never through a
    // symbolic link at the output path: run as root, a planted link would clobber its target.
    let fout = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(outp);
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
    let mut so = io::BufWriter::with_capacity(1 << 16, CStdio(io::stdout().lock()));
    let mut se = io::BufWriter::new(CStdio(io::stderr().lock()));
    let r = BufReader::with_capacity(1 << 20, fin);
    // stdout and stderr never fail (CStdio), so an error here is the input's
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
            let _ = writeln!(se, "page_owner_sort: {}: {}", inp.display(), strerror(&e));
            let _ = se.flush();
            return 1;
        }
    }
    let _ = se.flush();
    let mut out = io::BufWriter::with_capacity(1 << 20, fout);
    let res = sorter.finish(&mut so, &mut out);
    let _ = so.flush();
    if let Err(e) = res {
        // The only failing writer is the output file: the C tool ignores that and loses the
        // data; a drop-in that does so silently helps nobody, so this is the one deliberate
        // difference.
        let _ = writeln!(
            se,
            "page_owner_sort: {}: write failed: {}",
            outp.display(),
            strerror(&e)
        );
        let _ = se.flush();
        return 1;
    }
    0
}
