//! The threaded summary walk of a PFN range: chunks claimed in order by persistent workers
//! (each with its own descriptors), counted per thread and merged in chunk order
//! ([`in_order`]), so the summary's rows come out in the single pass's first-seen order.

use super::cerr::strerror;
use super::config::{Invocation, Stop};
use super::ordered::{Tally, in_order};
use super::pfn::{BATCH, CHUNK};

use super::pipe::{Pipe, PipeOpts};
use super::read::{Sides, Src};
use std::fs::File;
use std::path::Path;

/// What one chunk found: values in first-seen order with their counts, and how it ended.
struct ChunkOut {
    tally: Tally,
    end: Option<Result<(), Stop>>, // None: full chunk; Some(Ok): end of file; Some(Err): fatal
}

/// Words per read in a worker (at most a page-types batch).
const READ_WORDS: usize = 8 << 10;
const _: () = assert!(READ_WORDS as u64 <= BATCH);

/// A worker's files and buffers.
struct Worker {
    flags: Src,
    cgroup: Option<Src>,
    buf: Vec<u64>,
    cgi: Vec<u64>,
}

/// The threaded summary walk of `from..to`: chunks are claimed in order, counted per
/// thread, and merged in chunk order so the table's first-seen order (and so the row order)
/// is the single pass's.
pub(crate) fn walk(
    inv: &Invocation,
    sides: &Sides,
    flags_path: &Path,
    pipe: &mut Pipe<'_>,
    origin: u64,
    from: u64,
    to: u64,
) -> Result<bool, Stop> {
    let threads = inv.threads.clamp(1, 256);
    let nchunks = (to - from).div_ceil(CHUNK);
    let o = pipe.o.clone();
    let cg_path = inv.root.kpagecgroup();
    // separate descriptors per thread (fresh opens; a shared duplicate if that fails)
    let reopen = |path: &Path, src: &Src| -> Result<Src, Stop> {
        let file = File::open(path)
            .or_else(|_| src.file.try_clone())
            .map_err(|e| Stop::Fatal(format!("{}: {}\n", src.name, strerror(&e)).into_bytes()))?;
        Ok(Src {
            file,
            name: src.name.clone(),
        })
    };
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let cgroup = match &sides.cgroup {
            Some(c) => Some(reopen(&cg_path, c)?),
            None => None,
        };
        // words a read: a pread costs what ~9 words cost, so 8Ki words make the calls'
        // share noise while keeping each thread's buffer at 64 KiB
        workers.push(Worker {
            flags: reopen(flags_path, &sides.flags)?,
            buf: vec![0u64; READ_WORDS],
            cgi: vec![0u64; if cgroup.is_some() { READ_WORDS } else { 0 }],
            cgroup,
        });
    }
    let mut merged = 0u64;
    let mut result: Result<bool, Stop> = Ok(true);
    let mut next = 0u64;
    in_order(
        workers,
        || (next < nchunks).then(|| (next, next += 1).0),
        4 * threads,
        |w: &mut Worker, k| {
            let cs = from + k * CHUNK;
            let ce = (cs + CHUNK).min(to);
            let r = chunk(&o, w, origin, cs, ce);
            let last = r.end.is_some();
            (r, 1, last)
        },
        |r: ChunkOut| {
            for &(v, n, _) in &r.tally.seen {
                if let Err(e) = pipe.count(v, n) {
                    result = Err(e);
                    return false;
                }
            }
            merged += 1;
            pipe.tick(from - origin + merged * CHUNK);
            match r.end {
                None => true,
                Some(Ok(())) => {
                    result = Ok(false);
                    false
                }
                Some(Err(e)) => {
                    result = Err(e);
                    false
                }
            }
        },
    );
    result
}

fn chunk(o: &PipeOpts, w: &mut Worker, origin: u64, cs: u64, ce: u64) -> ChunkOut {
    let (flags, cgroup, buf, cgi) = (&w.flags, w.cgroup.as_ref(), &mut w.buf, &mut w.cgi);
    let mut out = Tally::default();
    // one batch's counts, kept for the next batch (no allocation per batch)
    let mut batch = Tally::default();
    let mut index = cs;
    while index < ce {
        // one page-types batch, read in pieces; its pages count only if all of it reads
        let bstart = origin.wrapping_add((index.wrapping_sub(origin) / BATCH) * BATCH);
        let bend = bstart.wrapping_add(BATCH).min(ce);
        batch.clear();
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
                    batch.add(f, (j - i) as u64, 0);
                }
                i = j;
            }
            at += pages as u64;
            if pages < want {
                eof = true;
                break;
            }
        }
        for &(v, n, _) in &batch.seen {
            out.add(v, n, 0);
        }
        if eof {
            return finish(out, Some(Ok(())));
        }
        index = bend;
    }
    finish(out, None)
}

fn finish(tally: Tally, end: Option<Result<(), Stop>>) -> ChunkOut {
    ChunkOut { tally, end }
}
