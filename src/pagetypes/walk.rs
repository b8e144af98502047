//! The walks: PFN ranges (sequential, or split over threads for summaries), a process's
//! address space (`-p`, with PAGEMAP_SCAN to skip unpopulated ranges and batched kpageflags
//! lookups) and files (`-f`).

use super::pipe::Pipe;
use super::read::{Gather, Src};
use super::table::Table;
use super::{Config, Format, Invocation, Stop, os};
use crate::addr::page_size;
use crate::iomem::Iomem;
use crate::kpageflags::PageFlags;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// strerror text without Rust's " (os error N)".
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// C `perror(name)`: `name: message`, or only the message when `name` is empty.
pub fn perror(name: &str, e: &io::Error) -> Vec<u8> {
    if name.is_empty() {
        format!("{}\n", strerror(e)).into_bytes()
    } else {
        format!("{name}: {}\n", strerror(e)).into_bytes()
    }
}

fn checked_open(path: &Path, name: &str) -> Result<File, Stop> {
    File::open(path).map_err(|e| Stop::Fatal(perror(name, &e)))
}

const BATCH: u64 = 64 << 10;
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;
const PFN_MASK: u64 = (1 << 55) - 1;

/// `-p PID` at parse time: open the pagemap and read the VMAs.
pub(super) fn parse_pid(
    inv: &Invocation,
    c: &mut Config,
    arg: &[u8],
    err: &mut dyn Write,
) -> Result<(), Stop> {
    let pid = super::parse::parse_number(arg)? as i32;
    c.pid = pid;
    let dir = inv.root.proc().join(pid.to_string());
    let pm = dir.join("pagemap");
    c.pagemap = Some(checked_open(&pm, &pm.display().to_string())?);
    let maps = dir.join("maps");
    let text = std::fs::read(&maps)
        .map_err(|e| Stop::Fatal(format!("{}: {}\n", maps.display(), strerror(&e)).into_bytes()))?;
    let ps = page_size();
    // fgets(buf, 5000): lines of at most 4999 bytes, a longer line continues in the next
    for line in fgets_lines(&text, 4999) {
        match scan_maps_line(line) {
            Some((s, e)) => {
                c.vmas.push((s / ps, e / ps));
                if c.vmas.len() >= 10240 {
                    let _ = err.write_all(b"too many VMAs\n");
                    break;
                }
            }
            None => {
                let _ = err.write_all(b"unexpected line: ");
                let _ = err.write_all(line);
                let _ = err.write_all(b"\n");
            }
        }
    }
    Ok(())
}

fn fgets_lines(text: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let lim = rest.len().min(max);
        let end = match rest[..lim].iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => lim,
        };
        let (line, r) = rest.split_at(end);
        rest = r;
        Some(line)
    })
}

/// `sscanf(line, "%lx-%lx %c%c%c%c %llx %x:%x %lu")` == 10: (start, end).
fn scan_maps_line(s: &[u8]) -> Option<(u64, u64)> {
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let num = |i: &mut usize, radix: u32| -> Option<u64> {
        ws(i);
        let neg = if *i < s.len() && (s[*i] == b'-' || s[*i] == b'+') {
            *i += 1;
            s[*i - 1] == b'-'
        } else {
            false
        };
        if radix == 16
            && s.get(*i) == Some(&b'0')
            && matches!(s.get(*i + 1), Some(b'x' | b'X'))
            && s.get(*i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            *i += 2;
        }
        let st = *i;
        let mut v: u64 = 0;
        while *i < s.len() && (s[*i] as char).is_digit(radix) {
            v = v
                .wrapping_mul(u64::from(radix))
                .wrapping_add(u64::from((s[*i] as char).to_digit(radix).unwrap_or(0)));
            *i += 1;
        }
        (*i > st).then_some(if neg { v.wrapping_neg() } else { v })
    };
    let lit = |i: &mut usize, c: u8| -> Option<()> { (s.get(*i) == Some(&c)).then(|| *i += 1) };
    let ch = |i: &mut usize| -> Option<()> { (*i < s.len()).then(|| *i += 1) };
    let start = num(&mut i, 16)?;
    lit(&mut i, b'-')?;
    let end = num(&mut i, 16)?;
    ws(&mut i);
    for _ in 0..4 {
        ch(&mut i)?;
    }
    num(&mut i, 16)?;
    num(&mut i, 16)?;
    lit(&mut i, b':')?;
    num(&mut i, 16)?;
    num(&mut i, 10)?;
    Some((start, end))
}

struct Sides {
    flags: Src,
    cgroup: Option<Src>,
    count: Option<Src>,
    flags_name: String,
}

/// After option parsing: open the side files, print the header, walk, print the summary.
pub(super) fn main(
    inv: &Invocation,
    mut c: Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Stop> {
    let root = &inv.root;
    let (flags_path, flags_name) = match &c.kpageflags {
        Some(f) => (os(f), String::from_utf8_lossy(f).into_owned()),
        None => (root.kpageflags(), root.kpageflags().display().to_string()),
    };
    let cgroup = if c.pipe.cgroup != 0 || c.pipe.list_cgroup {
        let p = root.kpagecgroup();
        Some(checked_open(&p, &p.display().to_string())?)
    } else {
        None
    };
    let count = if c.pipe.list != 0 && c.pipe.list_mapcnt {
        let p = root.kpagecount();
        Some(checked_open(&p, &p.display().to_string())?)
    } else {
        None
    };
    if c.mark_idle {
        c.actions.open_idle(&root.page_idle_bitmap())?;
    }
    let o = &c.pipe;
    if o.list != 0 && o.format == Format::Classic {
        let mut h = String::new();
        if c.pid != 0 {
            h.push_str("voffset\t");
        }
        if c.file.is_some() {
            h.push_str("foffset\t");
        }
        if o.list_cgroup {
            h.push_str("cgroup\t");
        }
        if o.list_mapcnt {
            h.push_str("map-cnt\t");
        }
        h.push_str(if o.list == 1 {
            "offset\tlen\tflags\n"
        } else {
            "offset\tflags\n"
        });
        let _ = out.write_all(h.as_bytes());
    }
    let mut opts = c.pipe.clone();
    opts.show_pid = c.pid != 0;
    opts.show_file = c.file.is_some();
    let actions = std::mem::take(&mut c.actions);
    let mut pipe = Pipe::new(opts, actions, out, err);
    let flags_file = checked_open(&flags_path, &flags_name)?;
    let sides = Sides {
        flags: Src {
            file: flags_file,
            name: flags_name.clone(),
        },
        cgroup: cgroup.map(|file| Src {
            file,
            name: flags_name.clone(),
        }),
        count: count.map(|file| Src {
            file,
            name: root.kpagecount().display().to_string(),
        }),
        flags_name,
    };
    let mut file_st = None;
    if let Some(f) = c.file.clone() {
        file_st = Some(super_file::walk_page_cache(
            inv, &mut c, &sides, &mut pipe, &f,
        )?);
    } else {
        walk_addr_ranges(inv, &mut c, &sides, &flags_path, &mut pipe)?;
    }
    if pipe.o.list == 1 {
        pipe.flush_range()?;
    }
    if c.no_summary {
        return Ok(());
    }
    if pipe.o.format != Format::Classic && pipe.o.list != 0 {
        return Ok(());
    }
    if pipe.o.list != 0 {
        let _ = pipe.out().write_all(b"\n\n");
    }
    if let (Some(st), Some(f)) = (file_st, c.file.as_ref())
        && pipe.o.format == Format::Classic
    {
        super_file::show_file(pipe.out(), f, &st);
        let _ = pipe.out().write_all(b"\n");
    }
    let ps = page_size();
    pipe.summary(ps)?;
    if let Some(p) = &inv.prometheus {
        write_prometheus(p, &pipe.table, ps)?;
    }
    Ok(())
}

fn write_prometheus(path: &Path, t: &Table, ps: u64) -> Result<(), Stop> {
    let mut s = String::from(
        "# HELP pgtool_pages Pages per page-types flag combination.\n# TYPE pgtool_pages gauge\n",
    );
    for (v, n) in t.rows() {
        let names = PageFlags::from_bits_retain(v)
            .names()
            .collect::<Vec<_>>()
            .join(",");
        s.push_str(&format!(
            "pgtool_pages{{flags=\"0x{v:016x}\",names=\"{names}\"}} {n}\n"
        ));
    }
    s.push_str("# HELP pgtool_pages_total Pages walked.\n# TYPE pgtool_pages_total gauge\n");
    s.push_str(&format!("pgtool_pages_total {}\n", t.total));
    s.push_str("# HELP pgtool_page_size_bytes Page size.\n# TYPE pgtool_page_size_bytes gauge\n");
    s.push_str(&format!("pgtool_page_size_bytes {ps}\n# EOF\n"));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let fail = |e: io::Error, p: &Path| {
        Stop::Fatal(
            format!(
                "{}: {} (writing the --prometheus file)\n",
                p.display(),
                strerror(&e)
            )
            .into_bytes(),
        )
    };
    std::fs::write(&tmp, s).map_err(|e| fail(e, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e, path)
    })
}

fn walk_addr_ranges(
    inv: &Invocation,
    c: &mut Config,
    sides: &Sides,
    flags_path: &Path,
    pipe: &mut Pipe<'_>,
) -> Result<(), Stop> {
    if c.ranges.is_empty() {
        c.ranges.push((0, u64::MAX));
    }
    let ram = if c.pid == 0 && c.kpageflags.is_none() && skippable(pipe) {
        Iomem::read(&inv.root)
            .ok()
            .filter(|io| !io.addresses_hidden())
            .map(|io| {
                io.system_ram_pfns()
                    .into_iter()
                    .map(|r| (r.start.0, r.end.0))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
    } else {
        None
    };
    let ranges = c.ranges.clone();
    if inv.progress && c.pid == 0 && pipe.o.list == 0 {
        let total = Iomem::read(&inv.root)
            .ok()
            .and_then(|io| io.system_ram_pfns().last().map(|r| r.end.0))
            .unwrap_or(0);
        pipe.progress = Some(super::pipe::Progress::new(total));
    }
    for (off, size) in ranges {
        if c.pid == 0 {
            let end = off.wrapping_add(size);
            match &ram {
                None => {
                    walk_pfn(inv, sides, flags_path, pipe, off, off, end)?;
                }
                Some(ram) => {
                    for &(rs, re) in ram {
                        let (s, e) = (rs.max(off), re.min(end));
                        if s < e && !walk_pfn(inv, sides, flags_path, pipe, off, s, e)? {
                            break;
                        }
                    }
                }
            }
        } else {
            walk_task(inv.threads, c, sides, pipe, off, size)?;
        }
    }
    pipe.end_progress();
    pipe.flush_idle();
    Ok(())
}

/// True when pages outside System RAM can be left unread: page-types would reject them all.
/// Such PFNs read as 0, reserved and/or nopage (no struct page, or one the kernel never
/// hands out); if the filters reject each of those, skipping them changes nothing.
fn skippable(pipe: &Pipe<'_>) -> bool {
    if pipe.o.cgroup != 0 {
        return true;
    }
    if pipe.o.filters.is_empty() {
        return false;
    }
    let (res, nopage) = (1u64 << 32, 1u64 << 20);
    [0, res, nopage, res | nopage]
        .iter()
        .all(|&v| !pipe.o.bits_ok(pipe.o.transform(v, 0)))
}

/// Walk PFNs `from..to` of the range that starts at `origin` (its 64Ki batches, and so the
/// voffsets page-types passes along, are counted from `origin`). Returns false at the end of
/// the file.
fn walk_pfn(
    inv: &Invocation,
    sides: &Sides,
    flags_path: &Path,
    pipe: &mut Pipe<'_>,
    origin: u64,
    from: u64,
    to: u64,
) -> Result<bool, Stop> {
    let parallel = inv.threads > 1
        && pipe.o.list == 0
        && !pipe.actions.any()
        && sides.count.is_none()
        && to.saturating_sub(from) > 2 * CHUNK
        && from < (1 << 58);
    if parallel {
        return parallel::walk(inv, sides, flags_path, pipe, origin, from, to);
    }
    let mut buf = vec![0u64; BATCH as usize];
    let mut cgi = vec![
        0u64;
        if sides.cgroup.is_some() {
            BATCH as usize
        } else {
            1
        }
    ];
    let mut cnt = vec![
        0u64;
        if sides.count.is_some() {
            BATCH as usize
        } else {
            1
        }
    ];
    let mut index = from;
    let fast = pipe.o.list == 0 && !pipe.actions.any();
    while index < to {
        let bstart = origin.wrapping_add((index.wrapping_sub(origin) / BATCH) * BATCH);
        let bend = bstart.wrapping_add(BATCH);
        let batch = (to - index).min(bend.wrapping_sub(index)).min(BATCH) as usize;
        let pages = sides.flags.read(&mut buf[..batch], index)?;
        if pages == 0 {
            return Ok(false);
        }
        if let Some(cg) = &sides.cgroup
            && cg.read(&mut cgi[..pages], index)? != pages
        {
            return Err(Stop::Fatal(
                b"kpagecgroup returned fewer pages than expected".to_vec(),
            ));
        }
        if let Some(ct) = &sides.count
            && ct.read(&mut cnt[..pages], index)? != pages
        {
            return Err(Stop::Fatal(
                b"kpagecount returned fewer pages than expected".to_vec(),
            ));
        }
        let voff = origin.wrapping_add(index - bstart);
        if fast {
            let cg = sides.cgroup.is_some().then(|| &cgi[..pages]);
            tally(pipe, &buf[..pages], cg)?;
        } else {
            for i in 0..pages {
                let cg = if sides.cgroup.is_some() { cgi[i] } else { 0 };
                let ct = if sides.count.is_some() { cnt[i] } else { 0 };
                pipe.add_page(
                    voff.wrapping_add(i as u64),
                    index + i as u64,
                    buf[i],
                    cg,
                    ct,
                    0,
                )?;
            }
        }
        index += pages as u64;
        pipe.tick(index - origin);
        if pages < batch {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Count runs of equal words at once (summary only: no listing, no actions).
fn tally(pipe: &mut Pipe<'_>, words: &[u64], cgroups: Option<&[u64]>) -> Result<(), Stop> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let cg = cgroups.map_or(0, |c| c[i]);
        let mut j = i + 1;
        while j < words.len() && words[j] == w && cgroups.is_none_or(|c| c[j] == cg) {
            j += 1;
        }
        let f = pipe.o.transform(w, 0);
        if pipe.o.bits_ok(f) && (pipe.o.cgroup == 0 || cg == pipe.o.cgroup) {
            pipe.count(f, (j - i) as u64)?;
        }
        i = j;
    }
    Ok(())
}

/// PFNs per unit of work in the threaded walk (a multiple of page-types' 64Ki batch).
const CHUNK: u64 = 4 * BATCH;

mod parallel {
    use super::*;

    /// What one chunk found: values in first-seen order with their counts, and how it ended.
    struct ChunkOut {
        seen: Vec<(u64, u64)>,
        end: Option<Result<(), Stop>>, // None: full chunk; Some(Ok): end of file; Some(Err): fatal
    }

    struct Shared {
        next: u64,
        done: std::collections::BTreeMap<u64, ChunkOut>,
        stop: bool,
    }

    /// The threaded summary walk of `from..to`: chunks are claimed in order, counted per
    /// thread, and merged in chunk order so the table's first-seen order (and so the row order)
    /// is the single pass's.
    pub(super) fn walk(
        inv: &Invocation,
        sides: &Sides,
        flags_path: &Path,
        pipe: &mut Pipe<'_>,
        origin: u64,
        from: u64,
        to: u64,
    ) -> Result<bool, Stop> {
        let threads = inv.threads.clamp(1, 256);
        let per_thread = ((1 << 20) / 8 / threads as u64).clamp(4096, BATCH) as usize;
        let nchunks = (to - from).div_ceil(CHUNK);
        let window = 4 * threads as u64;
        let state = Mutex::new(Shared {
            next: 0,
            done: Default::default(),
            stop: false,
        });
        let cv = Condvar::new();
        let o = pipe.o.clone();
        let cg_path = inv.root.kpagecgroup();
        let mut merged = 0u64;
        let mut result: Result<bool, Stop> = Ok(true);
        // separate descriptors per thread (fresh opens; a shared duplicate if that fails)
        let reopen = |path: &Path, src: &Src| -> Result<Src, Stop> {
            let file = File::open(path)
                .or_else(|_| src.file.try_clone())
                .map_err(|e| {
                    Stop::Fatal(format!("{}: {}\n", src.name, strerror(&e)).into_bytes())
                })?;
            Ok(Src {
                file,
                name: src.name.clone(),
            })
        };
        let mut files = Vec::with_capacity(threads);
        for _ in 0..threads {
            let flags = reopen(flags_path, &sides.flags)?;
            let cgroup = match &sides.cgroup {
                Some(c) => Some(reopen(&cg_path, c)?),
                None => None,
            };
            files.push((flags, cgroup));
        }
        std::thread::scope(|s| {
            for (flags, cgroup) in files {
                let (state, cv, o) = (&state, &cv, &o);
                s.spawn(move || {
                    let mut buf = vec![0u64; per_thread];
                    let mut cgi = vec![0u64; if cgroup.is_some() { per_thread } else { 0 }];
                    loop {
                        let k = {
                            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                            loop {
                                if st.stop || st.next >= nchunks {
                                    return;
                                }
                                if st.done.len() as u64 <= window {
                                    break;
                                }
                                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                            }
                            st.next += 1;
                            st.next - 1
                        };
                        let cs = from + k * CHUNK;
                        let ce = (cs + CHUNK).min(to);
                        let r = chunk(
                            o,
                            &flags,
                            cgroup.as_ref(),
                            origin,
                            cs,
                            ce,
                            &mut buf,
                            &mut cgi,
                        );
                        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                        if r.end.is_some() {
                            // nothing after an end of file or an error matters
                            st.next = st.next.max(nchunks);
                        }
                        st.done.insert(k, r);
                        cv.notify_all();
                    }
                });
            }
            // merge in chunk order
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            while merged < nchunks {
                match st.done.remove(&merged) {
                    Some(r) => {
                        cv.notify_all();
                        for (v, n) in r.seen {
                            if let Err(e) = pipe.count(v, n) {
                                result = Err(e);
                                break;
                            }
                        }
                        if result.is_err() {
                            break;
                        }
                        merged += 1;
                        pipe.tick(from - origin + merged * CHUNK);
                        match r.end {
                            None => {}
                            Some(Ok(())) => {
                                result = Ok(false);
                                break;
                            }
                            Some(Err(e)) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    None => {
                        if st.next >= nchunks && st.done.is_empty() && merged >= st.next {
                            break;
                        }
                        st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                }
            }
            st.stop = true;
            cv.notify_all();
        });
        result
    }

    struct Local {
        seen: Vec<(u64, u64)>,
        last: usize,
    }

    impl Local {
        fn add(&mut self, v: u64, n: u64) {
            if let Some(e) = self.seen.get_mut(self.last)
                && e.0 == v
            {
                e.1 += n;
                return;
            }
            match self.seen.iter().position(|e| e.0 == v) {
                Some(i) => {
                    self.seen[i].1 += n;
                    self.last = i;
                }
                None => {
                    self.seen.push((v, n));
                    self.last = self.seen.len() - 1;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chunk(
        o: &super::super::pipe::PipeOpts,
        flags: &Src,
        cgroup: Option<&Src>,
        origin: u64,
        cs: u64,
        ce: u64,
        buf: &mut [u64],
        cgi: &mut [u64],
    ) -> ChunkOut {
        let mut out = Local {
            seen: Vec::new(),
            last: 0,
        };
        let mut index = cs;
        while index < ce {
            // one page-types batch, read in pieces; its pages count only if all of it reads
            let bstart = origin.wrapping_add((index.wrapping_sub(origin) / BATCH) * BATCH);
            let bend = bstart.wrapping_add(BATCH).min(ce);
            let mut batch = Local {
                seen: Vec::new(),
                last: 0,
            };
            let mut at = index;
            let mut eof = false;
            while at < bend {
                let want = ((bend - at) as usize).min(buf.len());
                let pages = match flags.read(&mut buf[..want], at) {
                    Ok(n) => n,
                    Err(Stop::Fatal(m)) if m.starts_with(b"partial read: ") => {
                        let n: u64 = std::str::from_utf8(&m[14..])
                            .ok()
                            .and_then(|s| s.split(' ').next())
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        let bytes = n + (at - index) * 8;
                        return finish(
                            out,
                            Some(Err(Stop::Fatal(
                                format!("partial read: {bytes} bytes\n").into_bytes(),
                            ))),
                        );
                    }
                    Err(e) => return finish(out, Some(Err(e))),
                };
                if pages == 0 {
                    eof = true;
                    break;
                }
                if let Some(cg) = cgroup {
                    match cg.read(&mut cgi[..pages], at) {
                        Ok(n) if n == pages => {}
                        Ok(_) => {
                            return finish(
                                out,
                                Some(Err(Stop::Fatal(
                                    b"kpagecgroup returned fewer pages than expected".to_vec(),
                                ))),
                            );
                        }
                        Err(e) => return finish(out, Some(Err(e))),
                    }
                }
                let words = &buf[..pages];
                let mut i = 0;
                while i < pages {
                    let w = words[i];
                    let cg = if cgroup.is_some() { cgi[i] } else { 0 };
                    let mut j = i + 1;
                    while j < pages && words[j] == w && (cgroup.is_none() || cgi[j] == cg) {
                        j += 1;
                    }
                    let f = o.transform(w, 0);
                    if o.bits_ok(f) && (o.cgroup == 0 || cg == o.cgroup) {
                        batch.add(f, (j - i) as u64);
                    }
                    i = j;
                }
                at += pages as u64;
                if pages < want {
                    eof = true;
                    break;
                }
            }
            for (v, n) in batch.seen {
                out.add(v, n);
            }
            if eof {
                return finish(out, Some(Ok(())));
            }
            index = bend;
        }
        finish(out, None)
    }

    fn finish(l: Local, end: Option<Result<(), Stop>>) -> ChunkOut {
        ChunkOut { seen: l.seen, end }
    }
}

fn walk_task(
    threads: usize,
    c: &Config,
    sides: &Sides,
    pipe: &mut Pipe<'_>,
    mut index: u64,
    count: u64,
) -> Result<(), Stop> {
    let end = index.wrapping_add(count);
    let n = c.vmas.len();
    if n == 0 {
        return Ok(());
    }
    let Some(pm) = c.pagemap.as_ref() else {
        return Ok(());
    };
    let mut w = TaskWalk {
        pm: Src {
            file: pm.try_clone().map_err(|e| {
                Stop::Fatal(format!("/proc/pid/pagemap: {}\n", strerror(&e)).into_bytes())
            })?,
            name: "/proc/pid/pagemap".into(),
        },
        pending: Vec::new(),
        idle: Some(Job {
            pending: Vec::new(),
            keys: Vec::new(),
            gflags: Gather::default(),
            gcg: Gather::default(),
            gcnt: Gather::default(),
            flags: dup(&sides.flags)?,
            cgroup: sides.cgroup.as_ref().map(dup).transpose()?,
            count: sides.count.as_ref().map(dup).transpose()?,
            threads,
        }),
        inflight: None,
        threads,
        buf: vec![0; PM_BATCH as usize],
        scan_ok: true,
    };
    let mut i = 0;
    while index < end {
        while c.vmas[i].1 <= index {
            i += 1;
            if i >= n {
                return Ok(());
            }
        }
        if c.vmas[i].0 >= end {
            return Ok(());
        }
        let start = c.vmas[i].0.max(index);
        index = c.vmas[i].1.min(end);
        if start >= index {
            return Ok(());
        }
        let r = w.walk_vma(sides, pipe, start, index - start);
        let f = w.flush(sides, pipe);
        f?;
        r?;
    }
    Ok(())
}

const PM_BATCH: u64 = 16 << 10;
const SCAN_WINDOW: u64 = 64 << 10;

struct TaskWalk {
    pm: Src,
    pending: Vec<(u64, u64)>,
    /// The lookup state, when no batch is in flight.
    idle: Option<Job>,
    /// The batch whose kpageflags (and kpagecgroup, kpagecount) are being read by a worker
    /// while the main thread reads the next pagemap batch.
    inflight: Option<std::thread::JoinHandle<Option<Job>>>,
    threads: usize,
    buf: Vec<u64>,
    scan_ok: bool,
}

/// One batch of pagemap entries with its lookups, owned so a worker thread can fill it.
struct Job {
    pending: Vec<(u64, u64)>,
    keys: Vec<(u64, u32)>,
    gflags: Gather,
    gcg: Gather,
    gcnt: Gather,
    flags: Src,
    cgroup: Option<Src>,
    count: Option<Src>,
    threads: usize,
}

impl Job {
    fn run(mut self) -> Job {
        self.keys.clear();
        for (slot, &(_, e)) in self.pending.iter().enumerate() {
            if e & PM_PRESENT != 0 && e & PFN_MASK != 0 {
                self.keys.push((e & PFN_MASK, slot as u32));
            }
        }
        self.keys.sort_unstable();
        let slots = self.pending.len();
        self.gflags
            .load(&self.flags, &self.keys, slots, self.threads);
        if let Some(cg) = &self.cgroup {
            self.gcg.load(cg, &self.keys, slots, self.threads);
        }
        if let Some(ct) = &self.count {
            self.gcnt.load(ct, &self.keys, slots, self.threads);
        }
        self
    }

    /// page-types' per-entry work for the batch, in order.
    fn process(&self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        for (slot, &(vpn, e)) in self.pending.iter().enumerate() {
            let pfn = if e & PM_PRESENT != 0 { e & PFN_MASK } else { 0 };
            if pfn != 0
                && let Some(flags) = self
                    .gflags
                    .get(&sides.flags, &sides.flags_name, slot, pfn)?
            {
                let cg = match &sides.cgroup {
                    Some(s) => self
                        .gcg
                        .get(s, &sides.flags_name, slot, pfn)?
                        .ok_or_else(|| {
                            Stop::Fatal(b"kpagecgroup returned fewer pages than expected".to_vec())
                        })?,
                    None => 0,
                };
                let ct = match &sides.count {
                    Some(s) => self.gcnt.get(s, &s.name, slot, pfn)?.ok_or_else(|| {
                        Stop::Fatal(b"kpagecount returned fewer pages than expected".to_vec())
                    })?,
                    None => 0,
                };
                pipe.add_page(vpn, pfn, flags, cg, ct, e)?;
            }
            if e & PM_SWAP != 0 {
                pipe.swap(vpn, e)?;
            }
        }
        Ok(())
    }
}

impl TaskWalk {
    /// page-types' `walk_vma(index, count)`, visiting only populated pages when the kernel has
    /// PAGEMAP_SCAN (the other entries do nothing in page-types).
    fn walk_vma(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        index: u64,
        count: u64,
    ) -> Result<(), Stop> {
        let ps = page_size();
        let end = index + count;
        let mut w = index;
        while w < end {
            let we = (w + SCAN_WINDOW).min(end);
            let mut regions: Vec<(u64, u64)> = Vec::new();
            let scanned = self.scan_ok
                && w.checked_mul(ps).is_some()
                && we.checked_mul(ps).is_some()
                && matches!(
                    crate::pagemap::scan(
                        &self.pm.file,
                        crate::VirtAddr(w * ps)..crate::VirtAddr(we * ps),
                        |r| { regions.push((r.start.0 / ps, r.end.0.div_ceil(ps))) }
                    ),
                    Ok(true)
                );
            if !scanned {
                self.scan_ok = false;
                self.read_entries(sides, pipe, w, end)?;
                return Ok(());
            }
            for (rs, re) in regions {
                let (rs, re) = (rs.max(w), re.min(we));
                if rs < re && !self.read_entries(sides, pipe, rs, re)? {
                    return Ok(());
                }
            }
            w = we;
        }
        Ok(())
    }

    /// Read the pagemap for `from..to`; false when it read 0 entries (page-types ends the VMA).
    fn read_entries(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        mut from: u64,
        to: u64,
    ) -> Result<bool, Stop> {
        while from < to {
            let want = (to - from).min(PM_BATCH) as usize;
            let n = self.pm.read(&mut self.buf[..want], from)?;
            if n == 0 {
                return Ok(false);
            }
            for k in 0..n {
                let e = self.buf[k];
                if (e & PM_PRESENT != 0 && e & PFN_MASK != 0) || e & PM_SWAP != 0 {
                    self.pending.push((from + k as u64, e));
                }
            }
            if self.pending.len() >= PM_BATCH as usize {
                self.complete(sides, pipe)?;
                self.submit();
            }
            from += n as u64;
            if n < want {
                // a short read: page-types reads on and gets 0
                continue;
            }
        }
        Ok(true)
    }

    /// Hand the pending entries to a worker that reads their flags.
    fn submit(&mut self) {
        let Some(mut job) = self.idle.take() else {
            return;
        };
        std::mem::swap(&mut job.pending, &mut self.pending);
        if self.threads <= 1 {
            self.idle = Some(job.run());
            self.inflight = None;
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1);
        match std::thread::Builder::new().spawn(move || rx.recv().ok().map(Job::run)) {
            Ok(h) => match tx.send(job) {
                Ok(()) => self.inflight = Some(h),
                Err(e) => self.idle = Some(e.0.run()),
            },
            // no thread to be had: do it here
            Err(_) => self.idle = Some(job.run()),
        }
    }

    /// Wait for the batch in flight (if any) and process it.
    fn complete(&mut self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        if let Some(h) = self.inflight.take() {
            let job = h.join().ok().flatten().ok_or_else(|| {
                Stop::Fatal(b"pgtool: the kpageflags reader thread failed\n".to_vec())
            })?;
            self.idle = Some(job);
        }
        if let Some(job) = self.idle.as_mut()
            && !job.pending.is_empty()
        {
            let r = job.process(sides, pipe);
            job.pending.clear();
            r?;
        }
        Ok(())
    }

    /// Process everything read so far, in order.
    fn flush(&mut self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        self.complete(sides, pipe)?;
        if !self.pending.is_empty() {
            self.submit();
            self.complete(sides, pipe)?;
        }
        Ok(())
    }
}

fn dup(s: &Src) -> Result<Src, Stop> {
    let file = s
        .file
        .try_clone()
        .map_err(|e| Stop::Fatal(format!("{}: {}\n", s.name, strerror(&e)).into_bytes()))?;
    Ok(Src {
        file,
        name: s.name.clone(),
    })
}

#[path = "file.rs"]
mod super_file;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        assert_eq!(
            scan_maps_line(b"7f00-7f10 r-xp 00000000 08:01 1234 /bin/x\n"),
            Some((0x7f00, 0x7f10))
        );
        assert_eq!(scan_maps_line(b"nonsense\n"), None);
        assert_eq!(fgets_lines(b"ab\ncd", 4999).count(), 2);
        assert_eq!(
            fgets_lines(b"abcdef\n", 4).collect::<Vec<_>>(),
            vec![&b"abcd"[..], b"ef\n"]
        );
    }
}
