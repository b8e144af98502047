//! `pgtool kstruct`: a kernel type's layout from BTF, or its values at a kernel address.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::kernel::{Btf, Kallsyms, Kcore, view};
use pgtool::output::Sink;

/// Show a kernel struct or union's layout (like pahole), or its fields' values at an address.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Types come from the running kernel's BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF);
values are read from /proc/kcore (CONFIG_PROC_KCORE, root), pointers into the kernel or a module
named from /proc/kallsyms.

Layout fields (JSON/CSV, the same): depth, field (the access path; an anonymous struct or union
is <anon>), member (the name indented by depth: the table's column), type, offset (bytes; of
the storage unit for a bitfield, as pahole), size_bytes, bit_offset and bitfield_bits
(bitfields only).
With ADDR: field, type, addr, size_bytes, value, value_raw, symbol.

Exit status: 0 listed; 1 no such type or field, or the address is not mapped; 2 usage or
system error (no BTF or kcore, not root).")]
pub struct Args {
    /// The type and optionally a field path: task_struct, mm_struct.pgd, task_struct.se.
    #[arg(value_name = "TYPE[.FIELD...]")]
    pub spec: String,
    /// The kernel address of a TYPE whose values to read.
    #[arg(value_name = "ADDR")]
    pub addr: Option<String>,
    /// Expand named struct and union members too (anonymous ones always are).
    #[arg(long)]
    pub expand: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool kstruct`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    // the address is checked before anything is read, so a typo is a usage error
    let addr = match &args.addr {
        Some(a) => Some(pgtool::input::parse_number_for(a, "kernel address")?),
        None => None,
    };
    let btf = Btf::load(&root)?;
    let mut sink = Sink::stdout(args.format.format());
    match addr {
        None => {
            for r in view::layout(&btf, &args.spec, args.expand)? {
                sink.write(&r)?;
            }
        }
        Some(addr) => {
            // validate the type first: a wrong name needs no kcore to say so
            view::fields(&btf, &args.spec, args.expand)?;
            let kcore = Kcore::open(&root)?;
            let syms = Kallsyms::load(&root).ok();
            for r in view::values(&btf, &kcore, syms.as_ref(), &args.spec, addr, args.expand)? {
                sink.write(&r)?;
            }
        }
    }
    sink.finish()?;
    Ok(0)
}
