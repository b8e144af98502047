//! `/proc/kcore` (CONFIG_PROC_KCORE): the kernel's memory as an ELF64 core file. Each PT_LOAD
//! program header maps a range of kernel virtual addresses (`p_vaddr`, `p_memsz`) to file
//! offsets (`p_offset`); the direct-map and kernel-text segments also carry the physical
//! address they start at (`p_paddr`; the kernel writes -1 for vmalloc, modules and vmemmap).
//! Reads are `pread`s of bounded length; an address no segment covers is an error.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The longest single read (a request longer than this is a usage error).
pub const MAX_READ: usize = 64 << 20;
/// ELF's PT_LOAD.
const PT_LOAD: u32 = 1;
/// The most program headers read (kcore has one per memory range, tens to hundreds).
const MAX_PHDRS: usize = 65_535;

/// One PT_LOAD segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First kernel virtual address.
    pub vaddr: u64,
    /// Physical address of `vaddr`, or `None` (vmalloc, modules, vmemmap).
    pub paddr: Option<u64>,
    /// Offset of `vaddr` in the file.
    pub offset: u64,
    /// Bytes of the segment present in the file.
    pub filesz: u64,
}

impl Segment {
    fn covers_virt(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.filesz
    }
    fn covers_phys(&self, phys: u64) -> bool {
        self.paddr
            .is_some_and(|p| phys >= p && phys - p < self.filesz)
    }
}

/// Parse an ELF64 little-endian core header and its program headers: the PT_LOAD segments.
/// `read_at(offset, buf)` reads the file; every count and offset is checked.
pub fn parse_segments(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> std::result::Result<Vec<Segment>, String> {
    let mut eh = [0u8; 64];
    let n = read_at(0, &mut eh).map_err(|e| e.to_string())?;
    if n < 64 {
        return Err(format!("{n} bytes is too short for an ELF64 header"));
    }
    if &eh[..4] != b"\x7fELF" {
        return Err("not an ELF file (bad magic)".into());
    }
    if eh[4] != 2 || eh[5] != 1 {
        return Err(format!(
            "ELF class {} data {}: only ELF64 little-endian is supported",
            eh[4], eh[5]
        ));
    }
    let u16_at = |o: usize| u16::from_le_bytes([eh[o], eh[o + 1]]);
    let phoff = u64::from_le_bytes(eh[32..40].try_into().unwrap_or_default());
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    if phentsize != 56 {
        return Err(format!("program header size {phentsize} (expected 56)"));
    }
    if phnum == 0 || phnum > MAX_PHDRS {
        return Err(format!("{phnum} program headers"));
    }
    let mut ph = vec![0u8; phnum * 56];
    let n = read_at(phoff, &mut ph).map_err(|e| e.to_string())?;
    if n < ph.len() {
        return Err(format!(
            "program headers at {phoff:#x} truncated ({n} of {} bytes)",
            ph.len()
        ));
    }
    let mut segs = Vec::new();
    for h in ph.chunks_exact(56) {
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or_default());
        if u32::from_le_bytes(h[..4].try_into().unwrap_or_default()) != PT_LOAD {
            continue;
        }
        let (offset, vaddr, paddr, filesz) = (u64_at(8), u64_at(16), u64_at(24), u64_at(32));
        if offset.checked_add(filesz).is_none() || vaddr.checked_add(filesz).is_none() {
            return Err(format!("segment at {vaddr:#x} overflows"));
        }
        segs.push(Segment {
            vaddr,
            paddr: (paddr != u64::MAX && paddr.checked_add(filesz).is_some()).then_some(paddr),
            offset,
            filesz,
        });
    }
    if segs.is_empty() {
        return Err("no PT_LOAD segment".into());
    }
    Ok(segs)
}

/// An open `/proc/kcore`.
pub struct Kcore {
    file: File,
    path: PathBuf,
    segments: Vec<Segment>,
}

impl Kcore {
    /// Open the running kernel's `/proc/kcore` (needs root: CAP_SYS_RAWIO).
    pub fn open(root: &SysRoot) -> Result<Kcore> {
        Kcore::open_path(&root.kcore())
    }

    /// Open a kcore-format file at `path`.
    pub fn open_path(path: &Path) -> Result<Kcore> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Unsupported {
                path: path.to_path_buf(),
                what: "kernel memory (/proc/kcore)".into(),
                hint: "the kernel needs CONFIG_PROC_KCORE=y".into(),
            },
            _ => Error::io(path, e),
        })?;
        let segments =
            parse_segments(|off, buf| read_full(&file, off, buf)).map_err(|msg| Error::Parse {
                path: path.to_path_buf(),
                line: 0,
                msg: format!("not a kcore file: {msg}"),
            })?;
        Ok(Kcore {
            file,
            path: path.to_path_buf(),
            segments,
        })
    }

    /// The PT_LOAD segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when some segment maps the kernel virtual address.
    pub fn is_mapped(&self, addr: u64) -> bool {
        self.segments.iter().any(|s| s.covers_virt(addr))
    }

    /// Read `buf.len()` bytes of kernel memory at virtual address `addr` (crossing segment
    /// boundaries where they are contiguous). Not mapped: [`Error::NotFound`].
    pub fn read_virt(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        if buf.len() > MAX_READ {
            return Err(Error::Usage(format!(
                "a read of {} bytes at {addr:#x} is over the {MAX_READ}-byte limit",
                buf.len()
            )));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr
                .checked_add(done as u64)
                .ok_or_else(|| self.unmapped(addr))?;
            let seg = self
                .segments
                .iter()
                .find(|s| s.covers_virt(a))
                .ok_or_else(|| self.unmapped(a))?;
            let in_seg = a - seg.vaddr;
            let n = ((seg.filesz - in_seg) as usize).min(buf.len() - done);
            let got = read_full(&self.file, seg.offset + in_seg, &mut buf[done..done + n])
                .map_err(|e| Error::io(&self.path, e))?;
            if got < n {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("short read at kernel address {a:#x}"),
                    ),
                    hint: None,
                });
            }
            done += n;
        }
        Ok(())
    }

    fn unmapped(&self, addr: u64) -> Error {
        Error::NotFound(format!(
            "kernel address {addr:#x} is not mapped in {} (outside every PT_LOAD segment)",
            self.path.display()
        ))
    }

    /// The little-endian u64 at kernel virtual address `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_virt(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The little-endian u32 at kernel virtual address `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_virt(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The kernel virtual address of physical address `phys` in the direct map (the segment
    /// with a physical address covering it; the lowest virtual address wins, which is the
    /// direct map rather than the kernel-text alias). `None` when no segment covers it.
    pub fn phys_to_virt(&self, phys: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.covers_phys(phys))
            .map(|s| s.vaddr + (phys - s.paddr.unwrap_or(0)))
            .min()
    }

    /// The physical address of kernel virtual address `addr`, when its segment has one.
    pub fn virt_to_phys(&self, addr: u64) -> Option<u64> {
        let s = self.segments.iter().find(|s| s.covers_virt(addr))?;
        Some(s.paddr? + (addr - s.vaddr))
    }

    /// Read `buf.len()` bytes at physical address `phys` (through the direct map).
    pub fn read_phys(&self, phys: u64, buf: &mut [u8]) -> Result<()> {
        let v = self.phys_to_virt(phys).ok_or_else(|| {
            Error::NotFound(format!(
                "physical address {phys:#x} is not in any direct-map segment of {}",
                self.path.display()
            ))
        })?;
        self.read_virt(v, buf)
    }
}

/// pread until `buf` is full or the file ends; the bytes read.
fn read_full(f: &File, off: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
