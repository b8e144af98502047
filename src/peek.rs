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

/// The v2p facts of one page the read crossed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageFact {
    /// Page-aligned virtual address.
    pub vaddr: u64,
    /// The raw pagemap entry.
    pub pagemap: u64,
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
}

/// The pagemap entry of every page `[addr, addr+len)` touches.
pub fn page_facts(root: &SysRoot, pid: u32, addr: u64, len: u64) -> Result<Vec<PageFact>> {
    let pm = Pagemap::open(root, pid)?;
    let ps = page_size();
    let first = addr / ps * ps;
    let last = addr.saturating_add(len.max(1) - 1) / ps * ps;
    let mut out = Vec::new();
    let end = VirtAddr(last.saturating_add(ps));
    pm.for_each_batch(VirtAddr(first)..end, 4096, |base, entries| {
        for (i, e) in entries.iter().enumerate() {
            out.push(PageFact {
                vaddr: base.0 + i as u64 * ps,
                pagemap: e.raw(),
                present: e.present(),
                swapped: e.swapped(),
                pfn: e.pfn().map(|p| p.0),
                file_shared: e.file_shared(),
                exclusive: e.exclusive(),
                soft_dirty: e.soft_dirty(),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// A classic hexdump (`hexdump -C` layout) of `data`, with addresses starting at `base`.
pub fn hexdump(data: &[u8], base: u64) -> String {
    let mut s = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let a = base + (i as u64) * 16;
        s += &format!("{a:016x}  ");
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => s += &format!("{b:02x} "),
                None => s += "   ",
            }
            if j == 7 {
                s.push(' ');
            }
        }
        s += " |";
        for &b in chunk {
            s.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        s += "|\n";
    }
    s
}
