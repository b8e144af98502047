//! `pgtool v2p PID ADDR...`: translate virtual addresses of a process to physical pages, with
//! every fact about each page.
//!
//! JSON Lines (`--json`), one object per page: `pid, vaddr, present, swapped, pfn, phys_addr,
//! soft_dirty, exclusive, uffd_wp, file_shared, guard, swap_type, swap_offset, kpagecount, flags
//! (array of names), flags_raw, memcg_ino, memcg_path, iomem, head_pfn, folio_pages,
//! pagemap_raw, vma {start, end, perms, path}`; numbers are numbers, `null` when unknown.
//! `--csv` has the same fields with `vma_start, vma_end, vma_perms, vma_path` and the flags
//! joined with `|`.

use crate::Global;
use crate::output::{self, Format, FormatArgs};
use pgtool::Error;
use pgtool::v2p::{AddrSpec, PageRecord, Translator, parse_pid, parse_spec};
use std::io::{self, Write};

/// Arguments of `pgtool v2p`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
ADDR: hex with 0x (0x7ffc1000) or decimal; ADDR+LEN or START-END (END exclusive) for every \
page of a range. Without CAP_SYS_ADMIN the kernel hides PFNs: pfn and everything found through \
it read as unknown (null), and pgtool says so.

JSON fields (one object per page): pid vaddr present swapped pfn phys_addr soft_dirty exclusive \
uffd_wp file_shared guard swap_type swap_offset kpagecount flags flags_raw memcg_ino memcg_path \
iomem head_pfn folio_pages pagemap_raw vma{start,end,perms,path}. CSV: the same, with vma_start \
vma_end vma_perms vma_path and flags joined by '|'.

Exit status: 0 ok; 1 an address is not mapped, no mapping matches --vma, or no such process; \
2 usage or system error (a kernel address is a usage error).")]
pub struct Args {
    /// The process: a PID, or `self` (pgtool itself; live system only).
    #[arg(value_name = "PID")]
    pub pid: String,
    /// Addresses: 0xHEX, decimal, ADDR+LEN or START-END.
    #[arg(value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// Every page of the mappings matching this path or name (`[stack]`, `[heap]`, `libc`,
    /// `[anon]`); may be repeated. These pages are printed before those of the ADDRs.
    #[arg(long, value_name = "PATH-OR-NAME")]
    pub vma: Vec<String>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool v2p`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let pid = parse_pid(&args.pid, &root)?;
    if args.addrs.is_empty() && args.vma.is_empty() {
        return Err(Error::Usage(
            "give at least one ADDR or --vma NAME (see pgtool v2p --help)".into(),
        ));
    }
    let specs: Vec<AddrSpec> = args
        .addrs
        .iter()
        .map(|a| parse_spec(a))
        .collect::<Result<_, _>>()?;
    let mut t = Translator::new(&root, pid)?;
    let mut all: Vec<AddrSpec> = Vec::new();
    for name in &args.vma {
        all.extend(t.vma_specs(name)?);
    }
    all.extend(specs);

    let format = args.format.format();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if format == Format::Csv {
        out.write_all(&csv_line(
            CSV_HEADER.iter().map(|s| s.to_string()).collect(),
        )?)
        .map_err(output::stdout_error)?;
    }
    let mut rows: Vec<PageRecord> = Vec::new();
    let mut code = 0;
    let mut first_err: Option<Error> = None;
    for spec in &all {
        let res = t.translate(spec, |rec| match format {
            Format::Json => {
                // Serialize first, so a closed pipe surfaces as BrokenPipe (a quiet exit).
                let mut line = serde_json::to_vec(rec)
                    .map_err(|e| output::stdout_error(io::Error::other(e)))?;
                line.push(b'\n');
                out.write_all(&line).map_err(output::stdout_error)
            }
            Format::Csv => out
                .write_all(&csv_line(csv_row(rec))?)
                .map_err(output::stdout_error),
            Format::Table => {
                rows.push(rec.clone());
                Ok(())
            }
        });
        match res {
            Ok(()) => {}
            Err(e @ (Error::NotMapped { .. } | Error::Usage(_))) => {
                // Report and go on with the other addresses; the exit status says it.
                code = code.max(e.exit_code());
                if first_err.is_none() {
                    first_err = Some(e);
                } else {
                    eprintln!("pgtool: {e}");
                }
            }
            Err(e) => return Err(e),
        }
    }
    if format == Format::Table && !rows.is_empty() {
        if all.iter().all(|s| s.single) {
            // a few single addresses: one field/value block per page reads best
            for r in &rows {
                writeln!(out, "{}", block_of(r)).map_err(output::stdout_error)?;
            }
        } else {
            writeln!(out, "{}", table_of(&rows)).map_err(output::stdout_error)?;
        }
    }
    out.flush().map_err(output::stdout_error)?;
    drop(out);
    for note in t.notes() {
        eprintln!("pgtool: note: {note}");
    }
    if let Some(e) = first_err {
        eprintln!("pgtool: {e}");
    }
    Ok(code)
}

const CSV_HEADER: [&str; 26] = [
    "pid",
    "vaddr",
    "present",
    "swapped",
    "pfn",
    "phys_addr",
    "soft_dirty",
    "exclusive",
    "uffd_wp",
    "file_shared",
    "guard",
    "swap_type",
    "swap_offset",
    "kpagecount",
    "flags",
    "flags_raw",
    "memcg_ino",
    "memcg_path",
    "iomem",
    "head_pfn",
    "folio_pages",
    "pagemap_raw",
    "vma_start",
    "vma_end",
    "vma_perms",
    "vma_path",
];

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_row(r: &PageRecord) -> Vec<String> {
    vec![
        r.pid.to_string(),
        r.vaddr.to_string(),
        r.present.to_string(),
        r.swapped.to_string(),
        opt(r.pfn),
        opt(r.phys_addr),
        r.soft_dirty.to_string(),
        r.exclusive.to_string(),
        r.uffd_wp.to_string(),
        r.file_shared.to_string(),
        r.guard.to_string(),
        opt(r.swap_type),
        opt(r.swap_offset),
        opt(r.kpagecount),
        r.flags.as_ref().map(|f| f.join("|")).unwrap_or_default(),
        opt(r.flags_raw),
        opt(r.memcg_ino),
        r.memcg_path.clone().unwrap_or_default(),
        r.iomem.clone().unwrap_or_default(),
        opt(r.head_pfn),
        opt(r.folio_pages),
        r.pagemap_raw.to_string(),
        r.vma.start.to_string(),
        r.vma.end.to_string(),
        r.vma.perms.clone(),
        r.vma.path.clone(),
    ]
}

fn csv_error(e: csv::Error) -> Error {
    output::stdout_error(io::Error::other(e))
}

/// One CSV record, quoted as needed, with its newline.
fn csv_line(fields: Vec<String>) -> Result<Vec<u8>, Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(&fields).map_err(csv_error)?;
    w.into_inner()
        .map_err(|e| output::stdout_error(io::Error::other(e.to_string())))
}

fn hex(v: Option<u64>) -> String {
    v.map(|v| format!("{v:#x}")).unwrap_or_else(|| "-".into())
}

/// pgtool's table look, without a rule between every row.
fn condensed() -> comfy_table::Table {
    let mut t = output::table();
    t.load_style(
        comfy_table::presets::UTF8_HORIZONTAL_ONLY.row_separator(comfy_table::LineStyle::none()),
    );
    t
}

fn state_of(r: &PageRecord) -> String {
    if r.present {
        "present".to_string()
    } else if r.swapped {
        format!(
            "swapped (type {}, offset {})",
            r.swap_type.unwrap_or(0),
            hex(r.swap_offset)
        )
    } else {
        "not present (never touched or dropped)".to_string()
    }
}

fn vma_of(r: &PageRecord) -> String {
    format!(
        "{:#x}-{:#x} {} {}",
        r.vma.start,
        r.vma.end,
        r.vma.perms,
        if r.vma.path.is_empty() {
            "[anon]"
        } else {
            &r.vma.path
        }
    )
}

/// One page as a two-column field/value table.
fn block_of(r: &PageRecord) -> comfy_table::Table {
    let mut t = condensed();
    t.set_header(vec![format!("pid {}", r.pid), format!("{:#x}", r.vaddr)]);
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let pfn = match (r.pfn, r.present) {
        (Some(p), _) => format!("{p:#x}"),
        (None, true) => "hidden (needs root or CAP_SYS_ADMIN)".into(),
        _ => "-".into(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("vma", vma_of(r)),
        ("state", state_of(r)),
        ("pfn", pfn),
        ("phys_addr", hex(r.phys_addr)),
        ("soft_dirty", yes(r.soft_dirty)),
        ("exclusive", yes(r.exclusive)),
        ("uffd_wp", yes(r.uffd_wp)),
        ("file_shared", yes(r.file_shared)),
        ("guard", yes(r.guard)),
        (
            "kpagecount",
            r.kpagecount.map(|c| c.to_string()).unwrap_or("-".into()),
        ),
        (
            "flags",
            r.flags.as_ref().map(|f| f.join(",")).unwrap_or("-".into()),
        ),
        ("flags_raw", hex(r.flags_raw)),
        (
            "folio",
            match (r.head_pfn, r.folio_pages) {
                (Some(h), Some(n)) => format!("{n} pages, head pfn {h:#x}"),
                _ => "-".into(),
            },
        ),
        (
            "memcg",
            match (r.memcg_ino, &r.memcg_path) {
                (Some(i), Some(p)) => format!("{p} (ino {i})"),
                (Some(0), None) => "none (ino 0)".into(),
                (Some(i), None) => format!("ino {i}"),
                _ => "-".into(),
            },
        ),
        ("iomem", r.iomem.clone().unwrap_or("-".into())),
        ("pagemap_raw", format!("{:#018x}", r.pagemap_raw)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    t
}

fn table_of(rows: &[PageRecord]) -> comfy_table::Table {
    let mut t = condensed();
    t.set_header(vec![
        "VADDR", "STATE", "PFN", "PHYS", "BITS", "COUNT", "FLAGS", "FOLIO", "MEMCG", "IOMEM", "VMA",
    ]);
    for r in rows {
        let state = if r.present {
            "present".to_string()
        } else if r.swapped {
            format!("swap {}:{}", r.swap_type.unwrap_or(0), hex(r.swap_offset))
        } else {
            "none".to_string()
        };
        let mut bits = Vec::new();
        for (on, name) in [
            (r.soft_dirty, "soft-dirty"),
            (r.exclusive, "exclusive"),
            (r.uffd_wp, "uffd-wp"),
            (r.file_shared, "file/shared"),
            (r.guard, "guard"),
        ] {
            if on {
                bits.push(name);
            }
        }
        let pfn = match (r.pfn, r.present) {
            (Some(p), _) => format!("{p:#x}"),
            (None, true) => "hidden".into(),
            _ => "-".into(),
        };
        let folio = match (r.head_pfn, r.folio_pages) {
            (Some(h), Some(n)) => format!("{n} pages @ {h:#x}"),
            _ => "-".into(),
        };
        let memcg = match (&r.memcg_path, r.memcg_ino) {
            (Some(p), _) => p.clone(),
            (None, Some(i)) if i != 0 => format!("ino {i}"),
            _ => "-".into(),
        };
        t.add_row(vec![
            format!("{:#x}", r.vaddr),
            state,
            pfn,
            hex(r.phys_addr),
            bits.join(","),
            r.kpagecount.map(|c| c.to_string()).unwrap_or("-".into()),
            r.flags.as_ref().map(|f| f.join(",")).unwrap_or("-".into()),
            folio,
            memcg,
            r.iomem.clone().unwrap_or("-".into()),
            vma_of(r),
        ]);
    }
    t
}
