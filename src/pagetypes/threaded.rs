//! The threaded summary walk of a PFN range: chunks claimed in order by persistent workers
//! (each with its own descriptors), counted per thread and merged in chunk order, so the
//! summary's rows come out in the single pass's first-seen order.

use super::cerr::strerror;
use super::config::{Invocation, Stop};
use super::pfn::{BATCH, CHUNK};

use super::pipe::{Pipe, PipeOpts};
use super::read::{Sides, Src};
use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// What one chunk found: values in first-seen order with their counts, and how it ended.
struct ChunkOut {
    seen: Vec<(u64, u64)>,
    end: Option<Result<(), Stop>>, // None: full chunk; Some(Ok): end of file; Some(Err): fatal
}

/// Words per read in a worker (at most a page-types batch).
const READ_WORDS: usize = 8 << 10;
const _: () = assert!(READ_WORDS as u64 <= BATCH);

struct Shared {
    next: u64,
    done: std::collections::BTreeMap<u64, ChunkOut>,
    stop: bool,
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
    // words a read: a pread costs what ~9 words cost, so 8Ki words make the calls' share
    // noise while keeping each thread's buffer at 64 KiB
    let per_thread = READ_WORDS;
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
            .map_err(|e| Stop::Fatal(format!("{}: {}\n", src.name, strerror(&e)).into_bytes()))?;
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
    o: &PipeOpts,
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
    // one batch's counts, kept for the next batch (no allocation per batch)
    let mut batch = Local {
        seen: Vec::with_capacity(64),
        last: 0,
    };
    let mut index = cs;
    while index < ce {
        // one page-types batch, read in pieces; its pages count only if all of it reads
        let bstart = origin.wrapping_add((index.wrapping_sub(origin) / BATCH) * BATCH);
        let bend = bstart.wrapping_add(BATCH).min(ce);
        batch.seen.clear();
        batch.last = 0;
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
        for &(v, n) in &batch.seen {
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
