//! Read a process's memory at an address: `process_vm_readv(2)` first, `/proc/PID/mem` as the
//! fallback, after checking the range against `/proc/PID/maps` so that unmapped addresses and
//! guard pages get a clear error instead of a bare EFAULT/EIO.

use crate::addr::{VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::maps::{Vma, find, read_maps};
use crate::pagemap::Pagemap;
use crate::root::SysRoot;
use std::io;

/// How the bytes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// process_vm_readv(2).
    ProcessVmReadv,
    /// pread on /proc/PID/mem.
    ProcPidMem,
}

/// The largest read `peek` accepts (64 MiB).
pub const MAX_LEN: u64 = 64 << 20;

/// The mappings covering `[addr, addr+len)`, or the error for the first byte that is not
/// readable: unmapped (Error::NotMapped) or a guard page / PROT_NONE mapping (Error::NotFound
/// with the mapping named).
pub fn check_range(vmas: &[Vma], pid: u32, addr: u64, len: u64) -> Result<Vec<Vma>> {
    let end = addr
        .checked_add(len)
        .ok_or_else(|| Error::Usage(format!("address {addr:#x} + length {len} overflows")))?;
    let mut out = Vec::new();
    let mut a = addr;
    while a < end || (len == 0 && out.is_empty()) {
        let Some(v) = find(vmas, VirtAddr(a)) else {
            return Err(Error::NotMapped { pid, addr: a });
        };
        if !v.perms.starts_with('r') {
            return Err(Error::NotFound(format!(
                "address {a:#x} of {pid} is in a mapping without read permission ({} {:#x}-{:#x} {}): a guard page or PROT_NONE region",
                v.perms,
                v.start.0,
                v.end.0,
                v.display_name()
            )));
        }
        out.push(v.clone());
        if len == 0 {
            break;
        }
        a = v.end.0;
    }
    Ok(out)
}

fn ptrace_hint(pid: u32) -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    format!(
        "ptrace access to {pid} denied: run as root or as its owner (kernel.yama.ptrace_scope={scope}; \
         0 lets an owner read any of its processes)"
    )
}

/// Read `len` bytes at `addr` in `pid`. The range must be mapped and readable
/// (see [`check_range`]).
pub fn read(root: &SysRoot, pid: u32, addr: u64, len: u64) -> Result<(Vec<u8>, Method)> {
    if len > MAX_LEN {
        return Err(Error::Usage(format!(
            "length {len} is above the {MAX_LEN}-byte limit"
        )));
    }
    let vmas = read_maps(root, pid)?;
    check_range(&vmas, pid, addr, len)?;
    let mut buf = vec![0u8; len as usize];
    if len == 0 {
        return Ok((buf, Method::ProcessVmReadv));
    }
    if root.is_live() {
        match vm_readv(pid, addr, &mut buf) {
            Ok(n) if n == buf.len() => return Ok((buf, Method::ProcessVmReadv)),
            Ok(_) | Err(_) => {} // partial or refused: try /proc/PID/mem, which reports why
        }
    }
    let path = root.pid_file(pid, "mem");
    let f = std::fs::File::open(&path).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::io_hint(&path, e, ptrace_hint(pid)),
        Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
        _ => Error::io(&path, e),
    })?;
    use std::os::unix::fs::FileExt;
    let mut done = 0usize;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], addr + done as u64) {
            Ok(0) => {
                return Err(Error::NotMapped {
                    pid,
                    addr: addr + done as u64,
                });
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::EIO) | Some(libc::EFAULT) => Error::NotMapped {
                        pid,
                        addr: addr + done as u64,
                    },
                    Some(libc::EACCES) | Some(libc::EPERM) => {
                        Error::io_hint(&path, e, ptrace_hint(pid))
                    }
                    Some(libc::ESRCH) => Error::NoSuchProcess { pid },
                    _ => Error::io(&path, e),
                });
            }
        }
    }
    Ok((buf, Method::ProcPidMem))
}

fn vm_readv(pid: u32, addr: u64, buf: &mut [u8]) -> nix::Result<usize> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let len = buf.len();
    let mut local = [io::IoSliceMut::new(buf)];
    let remote = [RemoteIoVec {
        base: addr as usize,
        len,
    }];
    process_vm_readv(nix::unistd::Pid::from_raw(pid as i32), &mut local, &remote)
}

/// One page the read crossed: its bytes and its pagemap facts (`pgtool peek --json/--csv`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeekPage {
    /// The process.
    pub pid: u32,
    /// Page-aligned virtual address of the page.
    pub vaddr: u64,
    /// The first byte read in this page.
    pub addr: u64,
    /// Bytes read in this page.
    pub len: u64,
    /// How the bytes were read.
    pub method: Method,
    /// The bytes read in this page, as lowercase hex digits (two per byte).
    pub data_hex: String,
    /// Present in RAM.
    pub present: bool,
    /// Swapped out.
    pub swapped: bool,
    /// The PFN (None when not present, or hidden from an unprivileged reader).
    pub pfn: Option<u64>,
    /// File-backed or shared anonymous.
    pub file_shared: bool,
    /// Mapped exclusively.
    pub exclusive: bool,
    /// Soft-dirty.
    pub soft_dirty: bool,
    /// The raw pagemap entry.
    pub pagemap_raw: u64,
    /// The same as a hex string (JSON readers round numbers above 2^53).
    pub pagemap_raw_hex: String,
}

impl crate::output::Record for PeekPage {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "vaddr", "addr", "len", "present", "pfn", "method", "data_hex",
    ];
}

/// The pages `[addr, addr + data.len())` crosses, each with its bytes of `data` (read at
/// `addr` by `method`) and its pagemap entry. Memory: one record per page of the read, which
/// is at most [`MAX_LEN`] bytes.
pub fn pages(
    root: &SysRoot,
    pid: u32,
    addr: u64,
    data: &[u8],
    method: Method,
) -> Result<Vec<PeekPage>> {
    let pm = Pagemap::open(root, pid)?;
    let ps = page_size();
    let len = data.len() as u64;
    let first = addr / ps * ps;
    let last = addr.saturating_add(len.max(1) - 1) / ps * ps;
    let mut out = Vec::new();
    let end = VirtAddr(last.saturating_add(ps));
    pm.for_each_batch(VirtAddr(first)..end, 4096, |base, entries| {
        for (i, e) in entries.iter().enumerate() {
            let vaddr = base.0 + i as u64 * ps;
            let from = vaddr.max(addr);
            let to = (vaddr + ps).min(addr + len);
            let bytes = data
                .get((from - addr) as usize..(to.max(from) - addr) as usize)
                .unwrap_or_default();
            out.push(PeekPage {
                pid,
                vaddr,
                addr: from,
                len: bytes.len() as u64,
                method,
                data_hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
                present: e.present(),
                swapped: e.swapped(),
                pfn: e.pfn().map(|p| p.0),
                file_shared: e.file_shared(),
                exclusive: e.exclusive(),
                soft_dirty: e.soft_dirty(),
                pagemap_raw: e.raw(),
                pagemap_raw_hex: crate::output::hex(e.raw()),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// A classic hexdump (`hexdump -C` layout) of `data`, with addresses starting at `base`.
pub fn hexdump(data: &[u8], base: u64) -> String {
    let mut v = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_hexdump(&mut v, data, base);
    String::from_utf8_lossy(&v).into_owned()
}

/// [`hexdump`] written line by line to `out` (no copy of the whole dump in memory).
pub fn write_hexdump(out: &mut impl io::Write, data: &[u8], base: u64) -> io::Result<()> {
    let mut s = String::with_capacity(80);
    for (i, chunk) in data.chunks(16).enumerate() {
        use std::fmt::Write as _;
        s.clear();
        let a = base.wrapping_add((i as u64) * 16);
        let _ = write!(s, "{a:016x}  ");
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if j == 7 {
                s.push(' ');
            }
        }
        s.push_str(" |");
        for &b in chunk {
            s.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        s.push_str("|\n");
        out.write_all(s.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_layout() {
        let d: Vec<u8> = (0x41..0x53).collect();
        let h = hexdump(&d, 0x1000);
        let mut l = h.lines();
        assert_eq!(
            l.next(),
            Some(
                "0000000000001000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|"
            )
        );
        assert_eq!(
            l.next(),
            Some("0000000000001010  51 52                                             |QR|")
        );
    }
}
