//! `pgtool peek PID ADDR [LEN]`: read a process's memory.

use crate::Global;
use crate::output::{Format, FormatArgs};
use pgtool::Error;
use pgtool::input::{parse_addr_range, parse_pid, parse_size, quote};
use pgtool::output::Sink;
use pgtool::output::stdout_error;
use std::io::Write;

/// Read a process's memory at an address (process_vm_readv, /proc/PID/mem as the fallback).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
ADDR: 0x hex (0x7ffc1000) or decimal, or a range ADDR+LEN / START-END (END exclusive) instead \
of LEN. LEN: bytes (default 256), 0x hex, or a size (4K, 1M); at most 64M.

Output: a hexdump (hexdump -C layout) by default; --raw the bytes unchanged; --json / --csv one \
record per page the read crosses: pid vaddr addr len method data_hex present swapped pfn \
file_shared exclusive soft_dirty pagemap_raw pagemap_raw_hex (addr and len: the bytes of that \
page; data_hex: those bytes, two hex digits each).

Exit status: 0 ok; 1 no such process, or the range reaches an unmapped address or a guard \
page (the message names the first such address); 2 usage or system error (ptrace denied, a \
write error on stdout).")]
pub struct Args {
    /// The process: a PID, or `self` (pgtool itself; live system only).
    #[arg(value_name = "PID")]
    pub pid: String,
    /// The address: 0xHEX or decimal; or ADDR+LEN / START-END.
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Bytes to read (default 256; sizes such as 4K, 1M).
    #[arg(value_name = "LEN")]
    pub len: Option<String>,
    /// The bytes unchanged on stdout.
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    pub raw: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool peek`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    if !root.is_live() {
        return Err(Error::Usage(
            "peek reads a live process's memory: a snapshot (--root) holds none".into(),
        ));
    }
    let pid = parse_pid(&args.pid, &root)?;
    let range = parse_addr_range(&args.addr)?;
    let (addr, len) = match (&args.len, range.single) {
        (Some(l), true) => (range.start, parse_size(l, "length")?),
        (None, true) => (range.start, 256),
        (None, false) => (range.start, range.end - range.start),
        (Some(l), false) => {
            return Err(Error::Usage(format!(
                "give the length once: {} is already a range, and LEN {} repeats it",
                quote(&args.addr),
                quote(l)
            )));
        }
    };
    if len == 0 {
        return Err(Error::Usage(
            "bad length 0: peek reads at least one byte".into(),
        ));
    }
    let (data, method) = pgtool::peek::read(&root, pid, addr, len)?;
    let format = args.format.format();
    if args.raw || format == Format::Table {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
        if args.raw {
            out.write_all(&data).map_err(stdout_error)?;
        } else {
            pgtool::peek::write_hexdump(&mut out, &data, addr).map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)?;
        return Ok(0);
    }
    let mut sink = Sink::stdout(format);
    for page in pgtool::peek::pages(&root, pid, addr, &data, method)? {
        sink.write(&page)?;
    }
    sink.finish()?;
    Ok(0)
}
