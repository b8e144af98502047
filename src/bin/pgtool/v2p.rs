//! `pgtool v2p PID ADDR...`: translate virtual addresses of a process to physical pages, with
//! every fact about each page. Thin: arguments -> [`pgtool::v2p::Translator`] -> the Sink.

use crate::Global;
use crate::output::{Format, FormatArgs};
use pgtool::Error;
use pgtool::input::{parse_addr_range, parse_pid};
use pgtool::output::{Sink, fields, hex};
use pgtool::v2p::{AddrSpec, Collapser, Fact, Field, Fields, PageRecord, Projected, Translator};

/// The most errors about individual ADDRs printed (the rest are counted).
const MAX_ERRORS: usize = 10;

/// Arguments of `pgtool v2p`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
ADDR: 0x hex (0x7ffc1000) or decimal; ADDR+LEN (LEN may be a size: 8K, 1G) or START-END (END \
exclusive) for every page of a range. Without CAP_SYS_ADMIN the kernel hides PFNs: pfn and \
everything found through it read as unknown (null), and pgtool says so.

Output streams whatever the range (memory is bounded by a batch of 4096 pages). The table \
shows one row per run of like pages: untouched pages with the same pagemap word, swapped pages \
at consecutive swap offsets, present pages at physically contiguous PFNs (either direction) \
with the same flags, kpagecount, memcg and folio size; the row is the run's first page, pages \
its length, last_pfn the PFN of its last page. --each prints one row per page. A single ADDR \
(no range) prints every fact of its page as field/value rows. JSON Lines and CSV print one \
record per page (what scripts expect: one record per page, as page-types -L) unless \
--collapse asks for the runs.

Fields (--fields, comma-separated, in the order given; `all` for the whole page record): pid vaddr pages state present swapped \
pfn last_pfn phys_addr soft_dirty exclusive uffd_wp file_shared guard swap_type swap_offset \
kpagecount flags flags_raw memcg_ino memcg_path iomem head_pfn folio_pages pagemap_raw \
vma{start,end,perms,path}. Default in JSON/CSV: what pagemap and kpageflags say (all but \
state pages last_pfn kpagecount memcg_ino memcg_path iomem); in the table: vaddr pages state pfn \
last_pfn kpagecount flags; a single ADDR's block: all. flags_raw and pagemap_raw bring flags_raw_hex and pagemap_raw_hex \
(strings: JSON readers round numbers above 2^53). Only the files the fields need are read: \
kpagecount, kpagecgroup (memcg_ino, memcg_path), iomem and the cgroup tree only when asked. \
CSV: vma_start vma_end vma_perms vma_path, flags joined by '|', addresses and PFNs in 0x hex.

Exit status: 0 ok; 1 an address is not mapped, no mapping matches --vma, or no such process; \
2 usage or system error (a kernel address, a truncated snapshot, a write error on stdout).")]
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
    /// The fields to print, in order (comma-separated); the files read follow from them.
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',', value_parser = field_parser(), hide_possible_values = true)]
    pub fields: Vec<FieldArg>,
    /// Table: one row per page instead of one per run of like pages.
    #[arg(long, conflicts_with = "collapse")]
    pub each: bool,
    /// JSON/CSV: one record per run of like pages (with pages and last_pfn) instead of one
    /// per page.
    #[arg(long)]
    pub collapse: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// One `--fields` value: a field, or `all`.
#[derive(Clone, Copy, Debug)]
pub enum FieldArg {
    /// Every field of the page record.
    All,
    /// One field.
    One(Field),
}

fn field_parser() -> impl clap::builder::TypedValueParser<Value = FieldArg> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = std::iter::once("all")
        .chain(Field::NAMES.iter().copied())
        .collect();
    clap::builder::PossibleValuesParser::new(names).try_map(|s: String| {
        if s == "all" {
            return Ok(FieldArg::All);
        }
        Field::from_name(&s)
            .map(FieldArg::One)
            .ok_or_else(|| format!("unknown field {s:?}"))
    })
}

fn chosen(args: &[FieldArg]) -> Fields {
    Fields::new(args.iter().flat_map(|a| match a {
        FieldArg::All => Fields::all().list().to_vec(),
        FieldArg::One(f) => vec![*f],
    }))
}

/// How the pages are laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One record per page.
    Each,
    /// One record per run.
    Runs,
    /// Field/value rows per page (table, single addresses).
    Block,
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
        .map(|a| parse_addr_range(a))
        .collect::<Result<_, _>>()?;
    let format = args.format.format();
    let table = format == Format::Table;
    let layout = match (table, args.each, args.collapse) {
        (_, true, _) => Layout::Each,
        (_, _, true) => Layout::Runs,
        (true, _, _) if specs.iter().all(|s| s.single) && args.vma.is_empty() => {
            if args.fields.is_empty() {
                Layout::Block
            } else {
                Layout::Each
            }
        }
        (true, _, _) => Layout::Runs,
        (false, _, _) => Layout::Each,
    };
    let mut fields = match (args.fields.is_empty(), table, layout) {
        (true, true, Layout::Block) => Fields::all(),
        (false, _, _) => chosen(&args.fields),
        (true, true, Layout::Runs) => Fields::table_runs(),
        (true, true, Layout::Each) => Fields::table_each(),
        (true, _, _) => Fields::page_default(),
    };
    if layout == Layout::Runs {
        fields = fields.with_run_fields();
    }
    if table && layout != Layout::Block {
        fields = fields.with_vma();
    }

    let mut t = Translator::new(&root, pid)?;
    t.set_needs(fields.needs());
    let mut all: Vec<AddrSpec> = Vec::new();
    for name in &args.vma {
        all.extend(t.vma_specs(name)?);
    }
    all.extend(specs);

    let mut sink = Sink::stdout(format);
    let mut code = 0;
    let mut errors: Vec<Error> = Vec::new();
    let mut more_errors = 0usize;
    for spec in &all {
        let mut collapser = Collapser::new();
        let put = |sink: &mut Sink<_>, rec: &PageRecord<'_>| {
            sink.write(&Projected {
                rec,
                fields: &fields,
                table,
            })
        };
        let res = t.translate(spec, |rec| match layout {
            Layout::Each => put(&mut sink, rec),
            Layout::Runs => collapser.push(rec, |r| put(&mut sink, r)),
            Layout::Block => block(&mut sink, rec),
        });
        let res = res.and_then(|()| collapser.finish(|r| put(&mut sink, r)));
        match res {
            Ok(()) => {}
            Err(e @ (Error::NotMapped { .. } | Error::Usage(_))) => {
                // Report and go on with the other addresses; the exit status says it.
                code = code.max(e.exit_code());
                if errors.len() < MAX_ERRORS {
                    errors.push(e);
                } else {
                    more_errors += 1;
                }
            }
            Err(e) => return Err(e),
        }
    }
    sink.finish()?;
    for note in t.notes() {
        eprintln!("pgtool: note: {note}");
    }
    for e in &errors {
        eprintln!("pgtool: {e}");
    }
    if more_errors > 0 {
        eprintln!("pgtool: ... and {more_errors} more addresses failed the same way");
    }
    Ok(code)
}

/// Every fact of one page as field/value rows under a header naming the page.
fn block<W: std::io::Write>(sink: &mut Sink<W>, rec: &PageRecord<'_>) -> Result<(), Error> {
    let page = format!("{} of pid {}", hex(rec.vaddr), rec.pid);
    let all =
        Fields::new(std::iter::once(Field::State).chain(Fields::all().list().iter().copied()));
    let projected = Projected {
        rec,
        fields: &all,
        table: true,
    };
    for f in fields(&projected, true)? {
        let value = match (f.key.as_str(), rec.pfn) {
            ("pfn", None) if rec.present() => "hidden (needs root or CAP_SYS_ADMIN)".into(),
            _ => f.text,
        };
        sink.write(&Fact {
            page: page.clone(),
            field: f.key,
            value,
        })?;
    }
    Ok(())
}
