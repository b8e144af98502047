//! page-types' options, acted on in command-line order as its `getopt_long` loop does: from
//! argv through the getopt emulation (the drop-in), or already parsed by clap (`pgtool types`).

use super::cerr::strerror;
use super::config::{Config, Invocation, Mode, Opt, Out, Stop, os};
use super::{parse, pid, table};
use crate::getopt::{Event, Getopt, LongOpt};
use std::io::Write;

/// page-types' short options (its `opts` string).
pub const SHORTS: &[u8] = b"rp:f:a:b:d:c:CilLMNXxF:h";

const fn lo(name: &'static str, has_arg: bool, val: u8) -> LongOpt {
    LongOpt { name, has_arg, val }
}

/// page-types' long options.
pub const LONGS: &[LongOpt] = &[
    lo("raw", false, b'r'),
    lo("pid", true, b'p'),
    lo("file", true, b'f'),
    lo("addr", true, b'a'),
    lo("bits", true, b'b'),
    lo("cgroup", true, b'c'),
    lo("describe", true, b'd'),
    lo("mark-idle", false, b'i'),
    lo("list", false, b'l'),
    lo("list-each", false, b'L'),
    lo("list-cgroup", false, b'C'),
    lo("list-mapcnt", false, b'M'),
    lo("no-summary", false, b'N'),
    lo("hwpoison", false, b'X'),
    lo("unpoison", false, b'x'),
    // page-types declares it without an argument (its bug, kept: `--kpageflags=F` fails)
    lo("kpageflags", false, b'F'),
    lo("help", false, b'h'),
];

/// Act on every option of `inv` in order.
pub(crate) fn parse(
    inv: &Invocation,
    c: &mut Config,
    out: &mut Out<'_>,
    err: &mut dyn Write,
) -> Result<(), Stop> {
    if let Some(opts) = &inv.parsed {
        for o in opts {
            apply(inv, c, o.letter, o.value.clone(), out, err)?;
        }
        return Ok(());
    }
    let posixly = std::env::var_os("POSIXLY_CORRECT").is_some();
    for ev in Getopt::new(&inv.args, SHORTS, LONGS, posixly) {
        match ev {
            Event::Opt(o, a) => apply(inv, c, o, a, out, err)?,
            Event::Error(m) => {
                let _ = err.write_all(&inv.argv0);
                let _ = err.write_all(&m);
                out.put(table::usage().as_bytes())?;
                return Err(Stop::Exit(1));
            }
        }
    }
    Ok(())
}

/// One option, as page-types' `switch (c)` does it.
fn apply(
    inv: &Invocation,
    c: &mut Config,
    opt: u8,
    arg_opt: Option<Vec<u8>>,
    out: &mut Out<'_>,
    err: &mut dyn Write,
) -> Result<(), Stop> {
    let arg = arg_opt.clone().unwrap_or_default();
    if matches!(opt, b'X' | b'x' | b'i') && inv.mode == Mode::Pgtool && !inv.root.is_live() {
        // --root is read-only: these write to the kernel (debugfs, the page_idle bitmap)
        return Err(Stop::Error(crate::Error::Refused(format!(
            "types: -{} writes to the kernel and refuses to run under --root (a snapshot is read-only)",
            opt as char
        ))));
    }
    if opt == b'f' && inv.mode == Mode::Pgtool && !inv.root.is_live() {
        return Err(Stop::Error(crate::Error::Usage(
            "types: -f walks this host's page cache through pgtool's own pagemap; it cannot read a --root snapshot".into(),
        )));
    }
    match opt {
        b'r' => c.pipe.raw = true,
        b'p' => pid::parse_pid(inv, c, &arg, err)?,
        b'f' => c.file = Some(arg),
        b'a' => {
            let (off, size) = parse::parse_addr_range(&arg)?;
            if c.ranges.len() >= 1024 {
                return Err(Stop::Fatal(b"too many addr ranges\n".to_vec()));
            }
            c.ranges.push((off, size.min(u64::MAX - off)));
        }
        b'b' => {
            let f = parse::parse_bits_mask(&arg)?;
            if c.pipe.filters.len() >= 64 {
                return Err(Stop::Fatal(b"too much bit filters\n".to_vec()));
            }
            c.pipe.filters.push(f);
        }
        b'c' => c.pipe.cgroup = parse_cgroup(&arg)?,
        b'C' => c.pipe.list_cgroup = true,
        b'd' => {
            let v = parse::parse_flag_names(&arg, false)?;
            let sym = table::symbolic(v)?;
            let line = format!("0x{v:016x}\t{sym}\t{}\n", table::long_names(v));
            out.put(line.as_bytes())?;
            return Err(Stop::Exit(0));
        }
        b'i' => c.mark_idle = true,
        b'l' => c.pipe.list = 1,
        b'L' => c.pipe.list = 2,
        b'M' => c.pipe.list_mapcnt = true,
        b'N' => c.no_summary = true,
        b'X' | b'x' => {
            if opt == b'X' {
                c.hwpoison = true;
            } else {
                c.unpoison = true;
            }
            c.actions
                .prepare_hwpoison(&inv.root, c.hwpoison, c.unpoison)?;
        }
        b'F' => c.kpageflags = arg_opt,
        b'h' => {
            out.put(table::usage().as_bytes())?;
            return Err(Stop::Exit(0));
        }
        _ => return Err(Stop::Exit(1)),
    }
    Ok(())
}

fn parse_cgroup(arg: &[u8]) -> Result<u64, Stop> {
    if let Some(rest) = arg.strip_prefix(b"@") {
        return Ok(parse::parse_number(rest)?);
    }
    let path = os(arg);
    match std::fs::metadata(&path) {
        Err(e) => Err(Stop::Fatal(
            format!("stat failed: {}: {}\n", path.display(), strerror(&e)).into_bytes(),
        )),
        Ok(m) if !m.is_dir() => Err(Stop::Fatal(
            format!("cgroup supposed to be a directory: {}\n", path.display()).into_bytes(),
        )),
        Ok(m) => Ok(std::os::unix::fs::MetadataExt::ino(&m)),
    }
}

/// Build the ordered options of `pgtool types` from `(position, letter, value)` triples (the
/// positions clap reports), so they act in command-line order as page-types' would.
pub fn in_order(mut v: Vec<(usize, u8, Option<Vec<u8>>)>) -> Vec<Opt> {
    v.sort_by_key(|&(i, ..)| i);
    v.into_iter()
        .map(|(_, letter, value)| Opt { letter, value })
        .collect()
}
