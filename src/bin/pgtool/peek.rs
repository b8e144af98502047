//! `pgtool peek PID ADDR [LEN]`: read a process's memory.

use crate::Global;
use crate::output::{stdout_error, write_json_line};
use pgtool::Error;
use std::io::Write;

/// Read a process's memory at an address (process_vm_readv, /proc/PID/mem as the fallback).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process.
    pub pid: u32,
    /// The address (hex with 0x, or decimal).
    pub addr: String,
    /// Bytes to read (default 256; suffixes k/K and m/M).
    pub len: Option<String>,
    /// The bytes unchanged on stdout.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// One JSON object: the bytes (hex), how they were read, and the pagemap facts of each page.
    #[arg(long)]
    pub json: bool,
}

fn parse_num(s: &str, what: &str) -> Result<u64, Error> {
    let t = s.trim();
    let (t, mul) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1024),
        Some(b'm' | b'M') if !t.starts_with("0x") => (&t[..t.len() - 1], 1 << 20),
        _ => (t, 1),
    };
    pgtool::addr::parse_number(t)
        .and_then(|v| v.checked_mul(mul))
        .ok_or_else(|| Error::Usage(format!("{what}: '{s}' is not a number (use 0x... for hex)")))
}

/// Run `pgtool peek`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let addr = parse_num(&args.addr, "ADDR")?;
    let len = match &args.len {
        Some(l) => parse_num(l, "LEN")?,
        None => 256,
    };
    let (data, method) = pgtool::peek::read(&root, args.pid, addr, len)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.raw {
        out.write_all(&data).map_err(stdout_error)?;
    } else if args.json {
        let facts = pgtool::peek::page_facts(&root, args.pid, addr, len)?;
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let v = serde_json::json!({
            "pid": args.pid, "addr": addr, "len": len,
            "method": method, "hex": hex, "pages": facts,
        });
        write_json_line(&mut out, &v)?;
    } else {
        out.write_all(pgtool::peek::hexdump(&data, addr).as_bytes())
            .map_err(stdout_error)?;
    }
    out.flush().map_err(stdout_error)?;
    Ok(0)
}
