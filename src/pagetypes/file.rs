//! `-f FILE|DIR`: the page-cache walk. Resident pages (mincore) are populated with
//! MADV_POPULATE_READ instead of page-types' touching loop, which turns its SIGBUS handling into
//! an error return; then this process's pagemap gives each page's PFN.

use super::cerr::strerror;
use super::config::{Config, Invocation, Stop, os};
use super::pipe::Pipe;
use super::read::checked_open;
use super::read::{Sides, Src};
use crate::addr::page_size;
use crate::pagemap::PagemapEntry;
use std::fs::{File, Metadata};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const CHUNK: u64 = 64 << 10;

/// page-types' `walk_page_cache`; returns the stat of the top-level path for the file info.
pub(crate) fn walk_page_cache(
    inv: &Invocation,
    c: &mut Config,
    sides: &Sides,
    pipe: &mut Pipe<'_>,
    name: &[u8],
) -> Result<Metadata, Stop> {
    let selfpm = inv.root.proc().join("self/pagemap");
    let pm = checked_open(&selfpm, &selfpm.display().to_string())?;
    let path = os(name);
    let st = std::fs::metadata(&path)
        .map_err(|_| Stop::Fatal(format!("stat failed: {}\n", path.display()).into_bytes()))?;
    let mut w = FileWalk {
        pm,
        ranges: &mut c.ranges,
    };
    if st.is_file() {
        w.walk_file(sides, pipe, &path, &st)?;
    } else if st.is_dir() {
        let top = std::fs::symlink_metadata(&path).ok();
        if let Some(top) = top.filter(|m| m.is_dir()) {
            w.walk_tree(sides, pipe, &path, top.dev())?;
        }
    } else {
        return Err(Stop::Fatal(
            format!("unhandled file type: {}\n", path.display()).into_bytes(),
        ));
    }
    Ok(st)
}

struct FileWalk<'a> {
    pm: File,
    ranges: &'a mut Vec<(u64, u64)>,
}

impl FileWalk<'_> {
    fn walk_tree(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        dir: &Path,
        dev: u64,
    ) -> Result<(), Stop> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(_) => {
                let _ = writeln!(pipe.warn(), "cannot read dir: {}", dir.display());
                return Ok(());
            }
        };
        for ent in rd.flatten() {
            let p: PathBuf = if dir.as_os_str().as_bytes().ends_with(b"/") {
                PathBuf::from(std::ffi::OsStr::from_bytes(
                    &[dir.as_os_str().as_bytes(), ent.file_name().as_bytes()].concat(),
                ))
            } else {
                dir.join(ent.file_name())
            };
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                self.walk_tree(sides, pipe, &p, dev)?;
            } else if m.is_file() {
                self.walk_file(sides, pipe, &p, &m)?;
            }
        }
        Ok(())
    }

    fn walk_file(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        name: &Path,
        st: &Metadata,
    ) -> Result<(), Stop> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME | libc::O_NOFOLLOW)
            .open(name)
            .map_err(|e| {
                Stop::Fatal(format!("{}: {}\n", name.display(), strerror(&e)).into_bytes())
            })?;
        let ps = page_size();
        if self.ranges.is_empty() {
            self.ranges.push((0, st.len() / ps));
        }
        let ranges = self.ranges.clone();
        for (off, size) in ranges {
            self.walk_range(
                sides,
                pipe,
                name,
                &f,
                off.wrapping_mul(ps),
                off.wrapping_add(size).wrapping_mul(ps),
            )?;
        }
        Ok(())
    }

    fn walk_range(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        name: &Path,
        f: &File,
        mut off: u64,
        mut end: u64,
    ) -> Result<(), Stop> {
        let ps = page_size();
        let mut first = true;
        let mut vec = vec![0u8; CHUNK as usize];
        let mut buf = vec![0u64; CHUNK as usize];
        let nm = name.display().to_string();
        while off < end {
            let nr = (end - off).div_ceil(ps).min(CHUNK);
            let len = (nr * ps) as usize;
            // SAFETY: a fresh read-only shared mapping of `len` bytes of the open file; only
            // passed to mincore/madvise and unmapped below, never dereferenced here.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    f.as_raw_fd(),
                    off as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(Stop::Fatal(format!("mmap failed: {nm}").into_bytes()));
            }
            let unmap = |ptr| {
                // SAFETY: unmapping exactly the mapping made above.
                unsafe { libc::munmap(ptr, len) };
            };
            // SAFETY: ptr/len is our mapping; vec holds at least nr bytes.
            if unsafe { libc::mincore(ptr, len, vec.as_mut_ptr()) } != 0 {
                unmap(ptr);
                return Err(Stop::Fatal(format!("mincore failed: {nm}").into_bytes()));
            }
            // SAFETY: advice on our own mapping.
            if unsafe { libc::madvise(ptr, len, libc::MADV_RANDOM) } != 0 {
                unmap(ptr);
                return Err(Stop::Fatal(format!("madvice failed: {nm}").into_bytes()));
            }
            let mut i = 0usize;
            'touch: while i < nr as usize {
                if vec[i] & 1 == 0 {
                    i += 1;
                    continue;
                }
                let mut j = i;
                while j < nr as usize && vec[j] & 1 != 0 {
                    j += 1;
                }
                if !populate(ptr, i, j, ps as usize) {
                    for k in i..j {
                        if !populate(ptr, k, k + 1, ps as usize) {
                            end = k as u64 * ps;
                            let _ = writeln!(pipe.warn(), "got sigbus at offset {end}: {nm}");
                            break 'touch;
                        }
                    }
                }
                i = j;
            }
            // SAFETY: advice on our own mapping.
            if unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) } != 0 {
                unmap(ptr);
                return Err(Stop::Fatal(format!("madvice failed: {nm}").into_bytes()));
            }
            let vpn = ptr as u64 / ps;
            let pm = Src {
                file: self.pm.try_clone().map_err(|e| {
                    Stop::Fatal(format!("/proc/pid/pagemap: {}\n", strerror(&e)).into_bytes())
                })?,
                name: "/proc/pid/pagemap".into(),
            };
            let got = pm.read(&mut buf[..nr as usize], vpn);
            unmap(ptr);
            if got? != nr as usize {
                return Err(Stop::Fatal(b"cannot read pagemap".to_vec()));
            }
            for (i, &e) in buf[..nr as usize].iter().enumerate() {
                let Some(pfn) = PagemapEntry::from_raw(e).pfn().map(|p| p.0) else {
                    continue;
                };
                let mut w = [0u64; 1];
                if sides.flags.read(&mut w, pfn)? == 0 {
                    continue;
                }
                let flags = w[0];
                let mut cg = 0;
                if let Some(s) = &sides.cgroup {
                    if s.read(&mut w, pfn)? == 0 {
                        return Err(Stop::Fatal(b"kpagecgroup_read failed".to_vec()));
                    }
                    cg = w[0];
                }
                let mut ct = 0;
                if let Some(s) = &sides.count {
                    if s.read(&mut w, pfn)? == 0 {
                        return Err(Stop::Fatal(b"kpagecount_read failed".to_vec()));
                    }
                    ct = w[0];
                }
                if first && pipe.o.list != 0 {
                    first = false;
                    pipe.flush_range()?;
                }
                pipe.add_page(off / ps + i as u64, pfn, flags, cg, ct, e)?;
            }
            off = off.wrapping_add(len as u64);
        }
        Ok(())
    }
}

/// Populate the PTEs of resident pages `i..j` of the mapping; false where page-types' touch
/// would have raised SIGBUS.
fn populate(ptr: *mut libc::c_void, i: usize, j: usize, ps: usize) -> bool {
    const MADV_POPULATE_READ: libc::c_int = 22;
    // SAFETY: the range lies inside our own read-only mapping.
    let r = unsafe {
        libc::madvise(
            ptr.cast::<u8>().add(i * ps).cast(),
            (j - i) * ps,
            MADV_POPULATE_READ,
        )
    };
    if r == 0 {
        return true;
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        // kernels before 5.14: touch the pages as page-types does (no SIGBUS expected for
        // pages mincore just reported resident)
        for k in i..j {
            // SAFETY: reading one byte of a resident page of our PROT_READ mapping.
            unsafe { std::ptr::read_volatile(ptr.cast::<u8>().add(k * ps)) };
        }
        return true;
    }
    false
}

/// The file info block (without its trailing empty line).
pub(crate) fn show_file(name: &[u8], st: &Metadata) -> Vec<u8> {
    let mut out = Vec::new();
    let ps = page_size();
    let size = st.len();
    // SAFETY: time(NULL) has no preconditions.
    let now = unsafe { libc::time(std::ptr::null_mut()) } as i64;
    out.extend_from_slice(name);
    let _ = writeln!(
        out,
        "\tInode: {}\tSize: {} ({} pages)",
        st.ino() as u32,
        size,
        size.div_ceil(ps)
    );
    let _ = writeln!(
        out,
        "Modify: {} ({} seconds ago)",
        ctime(st.mtime()),
        now - st.mtime()
    );
    let _ = writeln!(
        out,
        "Access: {} ({} seconds ago)",
        ctime(st.atime()),
        now - st.atime()
    );
    out
}

/// strftime("%c", localtime(t)) in the C locale.
fn ctime(t: i64) -> String {
    let tt = t as libc::time_t;
    // SAFETY: zeroed tm is a valid out-parameter; localtime_r fills it from tt.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&tt, &mut tm) }.is_null() {
        return String::new();
    }
    let mut buf = [0u8; 64];
    // SAFETY: buf is 64 bytes, the format is NUL-terminated, tm is initialised.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c"%c".as_ptr(), &tm) };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
