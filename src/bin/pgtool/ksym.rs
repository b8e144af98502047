//! `pgtool ksym`: kernel symbols both ways, and the kernel base with its KASLR offset.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::kernel::{Kallsyms, view};
use pgtool::output::Sink;

/// Resolve kernel addresses to symbols and symbol names to addresses (/proc/kallsyms).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each argument is an address (0x hex or decimal) to resolve, or a symbol name (name or
module:name) to look up. A symbol's size is the distance to the next symbol, as the kernel's
%pS computes it. /proc/kallsyms shows addresses to root only (kernel.kptr_restrict).

Fields (JSON/CSV, the same): addr, symbol, offset, size_bytes, kind (nm's letter), module,
location (name+0xoff/0xsize [module]). --base lists kernel_base_addr (_text), kaslr_offset
(_text minus x86-64's link-time 0xffffffff81000000), kaslr_offset_hex, kernel_end_addr (_end).

Exit status: 0 listed; 1 a name or address matched no symbol; 2 usage or system error.")]
pub struct Args {
    /// Addresses or symbol names.
    #[arg(value_name = "ADDR|NAME", required_unless_present = "base")]
    pub what: Vec<String>,
    /// Show the kernel base and KASLR offset instead.
    #[arg(long, conflicts_with = "what")]
    pub base: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool ksym`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let syms = Kallsyms::load(&g.sysroot())?;
    let mut sink = Sink::stdout(args.format.format());
    if args.base {
        sink.write(&view::base(&syms)?)?;
    } else {
        // resolve all first: one bad argument fails the command before anything is printed
        let rows = args
            .what
            .iter()
            .map(|w| view::ksym(&syms, w))
            .collect::<Result<Vec<_>, _>>()?;
        for r in &rows {
            sink.write(r)?;
        }
    }
    sink.finish()?;
    Ok(0)
}
