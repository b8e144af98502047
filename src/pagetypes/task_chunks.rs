//! The process walk (`-p`) in chunks of virtual pages, each read, looked up, counted and (for
//! `-L`) formatted by one worker thread from start to end, and merged in order: for a summary
//! or a page listing with no action on the pages, which is most `-p` runs. Every thread then
//! reads pagemap as well as kpageflags, where the in-order pipeline (`task`) left pagemap and
//! the per-page work to one thread; and memory is a batch per worker (plus, for `-L`, the
//! text of the chunks waiting their turn), not batches in flight between threads.

use super::batch::{Batch, Entry, scan_populated};
use super::config::{Config, Format, PipeOpts, Stop};
use super::lines::{Line, Symbols, push_line};
use super::ordered::{Tally, in_order};
use super::pipe::Pipe;
use super::read::{Sides, Src};
use crate::pagemap::PagemapEntry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Virtual pages a chunk covers: a summary's at most one PAGEMAP_SCAN window; a listing's hold
/// the text of at most this many pages until their turn (~75 bytes a line).
const SUMMARY_CHUNK: u64 = 64 << 10;
const LISTING_CHUNK: u64 = 1 << 10;
/// A summary's chunk size for `span` virtual pages and `threads` workers: small enough that
/// each worker gets several chunks (the last chunks finish unevenly: with 8 chunks of a 2 GiB
/// process on 2 threads, one thread ran alone for most of a chunk), large enough that a sparse
/// mapping costs few PAGEMAP_SCAN calls (a 256 GiB mapping: 1,024 chunks).
fn summary_chunk(span: u64, threads: usize) -> u64 {
    let per = span / (CHUNKS_PER_THREAD * threads.max(1) as u64);
    per.clamp(MIN_SUMMARY_CHUNK, SUMMARY_CHUNK)
}
const CHUNKS_PER_THREAD: u64 = 8;

/// The next listing chunk's size after a chunk of `pages` pages that listed `lines`: back to
/// [`LISTING_CHUNK`] after a chunk at least a quarter populated, else twice as large, up to
/// [`LISTING_CHUNK_MAX`] (a sparse range takes few PAGEMAP_SCAN calls, and a dense range
/// after a sparse one gets at most one large chunk of text).
fn next_listing_chunk(pages: u64, lines: u64) -> u64 {
    if lines * 4 >= pages {
        LISTING_CHUNK
    } else {
        (pages * 2).clamp(LISTING_CHUNK, LISTING_CHUNK_MAX)
    }
}
/// The most pages of a listing chunk: its text stays under ~330 KB if a chunk sized for
/// sparse pages turns out dense.
const LISTING_CHUNK_MAX: u64 = 4 << 10;
const MIN_SUMMARY_CHUNK: u64 = 4 << 10;

/// Present entries looked up at once (sorted, read in coalesced spans).
const SUB_BATCH: usize = 4 << 10;

/// True when the chunked walk gives page-types' output: nothing is done to the pages
/// (`-X`, `-x`, `-i` act in page order) and the listing, if any, is of pages in page-types'
/// text (`-l` ranges join across chunks; records go through one sink).
pub(crate) fn fits(pipe: &Pipe<'_>) -> bool {
    !pipe.actions.any()
        && (pipe.o.list == 0 || (pipe.o.list == 2 && pipe.o.format == Format::Classic))
}

/// How a chunk ended.
enum End {
    /// Read to its end.
    Full,
    /// A pagemap read gave 0 entries: page-types ends the VMA there.
    Vma,
    /// A fatal error, after what the chunk had counted and printed.
    Failed(Stop),
}

struct ChunkOut {
    piece: usize,
    tally: Tally,
    text: Vec<u8>,
    end: End,
}

/// page-types' `walk_task(index, count)` in chunks, with `threads` workers.
pub(crate) fn walk(
    threads: usize,
    c: &Config,
    sides: &Sides,
    pipe: &mut Pipe<'_>,
    index: u64,
    count: u64,
) -> Result<(), Stop> {
    let Some(pm) = c.pagemap.as_ref() else {
        return Ok(());
    };
    let pieces = pieces(&c.vmas, index, index.wrapping_add(count));
    let list = pipe.o.list == 2;
    let span: u64 = pieces.iter().map(|&(s, e)| e - s).sum();
    if span == 0 {
        return Ok(());
    }
    let size = summary_chunk(span, threads);
    let pm = Src::pagemap(pm)?;
    let o = pipe.o.clone();
    let smallest = if list { LISTING_CHUNK } else { size };
    let workers = threads
        .clamp(1, 256)
        .min(span.div_ceil(smallest).min(256) as usize);
    let states: Vec<Worker> = (0..workers).map(|_| Worker::new(sides)).collect();
    // a summary's finished chunks are a few values each; a listing's hold their text: at most
    // ~64 KiB of it per worker waits (see the weight below)
    let window = if list { 16 * workers } else { 4 * workers };
    let texts: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    // the size of the next listing chunk (see next_listing_chunk)
    let listing_size = AtomicU64::new(LISTING_CHUNK);
    let mut cursor = (0usize, pieces[0].0);
    let chunks = || {
        while let Some(&(_, e)) = pieces.get(cursor.0) {
            let at = cursor.1;
            if at >= e {
                cursor.0 += 1;
                cursor.1 = pieces.get(cursor.0).map_or(0, |p| p.0);
                continue;
            }
            let size = match list {
                true => listing_size.load(Ordering::Relaxed),
                false => size,
            };
            cursor.1 = e.min(at.saturating_add(size));
            return Some((cursor.0, at, cursor.1));
        }
        None
    };
    let mut result = Ok(());
    let mut ended: Option<usize> = None;
    in_order(
        states,
        chunks,
        window,
        |w: &mut Worker, (i, from, to): (usize, u64, u64)| {
            let text = match list {
                true => texts.lock().unwrap_or_else(|e| e.into_inner()).pop(),
                false => Some(Vec::new()),
            };
            let text = text.unwrap_or_else(|| Vec::with_capacity(LISTING_CHUNK as usize * 80));
            let out = w.chunk(&pm, sides, &o, i, from, to, text);
            if list {
                let lines = out.tally.seen.iter().map(|t| t.1).sum::<u64>();
                listing_size.store(next_listing_chunk(to - from, lines), Ordering::Relaxed);
            }
            let last = matches!(out.end, End::Failed(_));
            // a listing's chunk weighs its text in pages: many sparse chunks may wait, and
            // about one dense one per worker
            let weight = 1 + out.text.len() / 4096;
            (out, weight, last)
        },
        |out: ChunkOut| {
            if ended == Some(out.piece) {
                return true; // after the end of its VMA: page-types read no further
            }
            let r = merge(pipe, &out);
            if list {
                let mut text = out.text;
                text.clear();
                texts.lock().unwrap_or_else(|e| e.into_inner()).push(text);
            }
            match (r, out.end) {
                (Err(e), _) | (Ok(()), End::Failed(e)) => {
                    result = Err(e);
                    false
                }
                (Ok(()), End::Vma) => {
                    ended = Some(out.piece);
                    true
                }
                (Ok(()), End::Full) => true,
            }
        },
    );
    result
}

/// Count a chunk's pages and print its text; if the summary table fills up, print the text
/// only to the line of the first page that did not fit (where page-types stopped).
fn merge(pipe: &mut Pipe<'_>, out: &ChunkOut) -> Result<(), Stop> {
    for &(v, n, mark) in &out.tally.seen {
        if let Err(e) = pipe.count(v, n) {
            pipe.put(&out.text[..mark])?;
            return Err(e);
        }
    }
    pipe.put(&out.text)
}

/// The VMAs' parts inside `index..end`, in page-types' `walk_task` order.
fn pieces(vmas: &[(u64, u64)], mut index: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while index < end && i < vmas.len() {
        if vmas[i].1 <= index {
            i += 1;
            continue;
        }
        if vmas[i].0 >= end {
            break;
        }
        let start = vmas[i].0.max(index);
        index = vmas[i].1.min(end);
        if start >= index {
            break;
        }
        out.push((start, index));
    }
    out
}

/// A worker's buffers, kept for all its chunks.
struct Worker {
    batch: Batch,
    buf: Vec<u64>,
    regions: Vec<(u64, u64)>,
    /// PAGEMAP_SCAN works here (false after it failed once).
    scan_ok: bool,
    /// This worker's last chunk was at least half populated: read the next one without
    /// PAGEMAP_SCAN (it would only cost time).
    dense: bool,
    sym: Symbols,
}

impl Worker {
    fn new(sides: &Sides) -> Worker {
        Worker {
            batch: Batch::new(sides, SUB_BATCH),
            buf: vec![0; SUB_BATCH],
            regions: Vec::new(),
            scan_ok: true,
            dense: false,
            sym: Symbols::default(),
        }
    }

    /// Read, look up, count and format the pages of `from..to` (in piece `piece`).
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &mut self,
        pm: &Src,
        sides: &Sides,
        o: &PipeOpts,
        piece: usize,
        from: u64,
        to: u64,
        text: Vec<u8>,
    ) -> ChunkOut {
        let mut out = ChunkOut {
            piece,
            tally: Tally::default(),
            text,
            end: End::Full,
        };
        self.batch.pending.clear();
        // what was read before an error counts first, as page-types had counted it
        let read = self.read_chunk(pm, sides, o, &mut out, from, to);
        let r = self.process(sides, o, &mut out).and(read);
        out.end = match r {
            Ok(true) => End::Full,
            Ok(false) => End::Vma,
            Err(e) => End::Failed(e),
        };
        out
    }

    /// page-types' `walk_vma` over `from..to`: populated ranges only where PAGEMAP_SCAN
    /// works and the last chunk was sparse. False when a read gave 0 entries.
    fn read_chunk(
        &mut self,
        pm: &Src,
        sides: &Sides,
        o: &PipeOpts,
        out: &mut ChunkOut,
        from: u64,
        to: u64,
    ) -> Result<bool, Stop> {
        let mut regions = std::mem::take(&mut self.regions);
        let scanned = !self.dense && self.scan_ok && scan_populated(pm, from, to, &mut regions);
        if !scanned {
            if !self.dense {
                self.scan_ok = false;
            }
            regions.clear();
            regions.push((from, to));
        }
        let mut present = 0;
        let mut populated = 0;
        let mut r = Ok(true);
        for &(rs, re) in &regions {
            let (rs, re) = (rs.max(from), re.min(to));
            if rs < re {
                populated += re - rs;
                r = self.read_entries(pm, sides, o, out, rs, re, &mut present);
                if !matches!(r, Ok(true)) {
                    break;
                }
            }
        }
        self.regions = regions;
        let covered = if scanned { populated } else { present };
        self.dense = covered * 2 >= to - from;
        r
    }

    /// Read the pagemap of `from..to` into the batch, looking it up whenever it is full.
    #[allow(clippy::too_many_arguments)]
    fn read_entries(
        &mut self,
        pm: &Src,
        sides: &Sides,
        o: &PipeOpts,
        out: &mut ChunkOut,
        mut from: u64,
        to: u64,
        present: &mut u64,
    ) -> Result<bool, Stop> {
        while from < to {
            // no more than the batch has room for: it never grows past SUB_BATCH entries
            let room = SUB_BATCH - self.batch.pending.len();
            let want = (to - from).min(room as u64) as usize;
            let n = pm.read(&mut self.buf[..want], from)?;
            if n == 0 {
                return Ok(false);
            }
            *present += self.batch.push(from, &self.buf[..n]);
            if self.batch.pending.len() >= SUB_BATCH {
                self.process(sides, o, out)?;
            }
            from += n as u64;
        }
        Ok(true)
    }

    /// Look up the batch and count (and format) its pages as page-types' `add_page` and
    /// `walk_swap` would.
    fn process(&mut self, sides: &Sides, o: &PipeOpts, out: &mut ChunkOut) -> Result<(), Stop> {
        if self.batch.pending.is_empty() {
            return Ok(());
        }
        self.batch.run(sides);
        let list = o.list == 2;
        let (tally, text, sym) = (&mut out.tally, &mut out.text, &mut self.sym);
        let r = self.batch.each(sides, |e| {
            let (line, shown) = match e {
                Entry::Page(p) => {
                    let Some(shown) = o.select(p.flags, p.cgroup, p.pme) else {
                        return Ok(());
                    };
                    let line = Line {
                        voffset: p.vpn,
                        cgroup: p.cgroup,
                        mapcnt: p.mapcnt,
                        index: p.pfn,
                        count: None,
                        shown,
                    };
                    (line, shown)
                }
                Entry::Swap { vpn, pme } => {
                    let Some(shown) = o.select_swap(pme) else {
                        return Ok(());
                    };
                    let index = PagemapEntry::from_raw(pme).swap_offset().unwrap_or(0);
                    let line = Line {
                        voffset: vpn,
                        cgroup: 0,
                        mapcnt: 0,
                        index,
                        count: None,
                        shown,
                    };
                    (line, shown)
                }
            };
            if list {
                push_line(o, text, sym, &line).map_err(Stop::Fatal)?;
            }
            tally.add(shown, 1, text.len());
            Ok(())
        });
        self.batch.pending.clear();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagetypes::actions::Actions;
    use crate::pagetypes::config::{Mode, Out};
    use crate::pagetypes::table::{HASH_SIZE, TABLE_FULL};

    /// page-types prints a page's line, then counts it, and dies when the table is full: the
    /// merge of a chunk must print its text only to the end of the first page that did not
    /// fit.
    #[test]
    fn a_full_table_cuts_the_text_after_the_first_page_that_does_not_fit() {
        let (mut stdout, mut warn) = (Vec::new(), Vec::new());
        let o = PipeOpts {
            list: 2,
            ..PipeOpts::default()
        };
        let out = Out::new(&mut stdout, Mode::PageTypes);
        let mut pipe = Pipe::new(o, Actions::default(), out, &mut warn);
        // 8191 values fill every slot but 0 (kept for the value 0)
        for v in 1..HASH_SIZE as u64 {
            pipe.count(v << 16, 1).expect("room");
        }
        let mut tally = Tally::default();
        tally.add(1 << 16, 1, 10); // already in the table
        tally.add(0xfff1, 2, 20); // the first that does not fit: its line ends at 20
        tally.add(0xfff2, 1, 30);
        let chunk = ChunkOut {
            piece: 0,
            tally,
            text: (0..40u8).collect(),
            end: End::Full,
        };
        match merge(&mut pipe, &chunk) {
            Err(Stop::Fatal(m)) => assert_eq!(m, TABLE_FULL),
            _ => panic!("no table-full error"),
        }
        pipe.finish().expect("flush");
        drop(pipe);
        assert_eq!(stdout, (0..20u8).collect::<Vec<_>>());
    }

    #[test]
    fn listing_chunks_grow_over_sparse_ranges_and_shrink_at_dense_ones() {
        assert_eq!(
            next_listing_chunk(LISTING_CHUNK, LISTING_CHUNK),
            LISTING_CHUNK
        );
        assert_eq!(next_listing_chunk(1024, 256), LISTING_CHUNK);
        assert_eq!(next_listing_chunk(1024, 255), 2048);
        assert_eq!(next_listing_chunk(2048, 3), 4096);
        assert_eq!(next_listing_chunk(LISTING_CHUNK_MAX, 0), LISTING_CHUNK_MAX);
        // a chunk cut short by its VMA's end starts no smaller than the smallest
        assert_eq!(next_listing_chunk(3, 0), LISTING_CHUNK);
        assert_eq!(next_listing_chunk(4096, 4096), LISTING_CHUNK);
    }

    #[test]
    fn pieces_follow_walk_task() {
        let vmas = [(10, 20), (30, 40), (40, 50), (60, 70)];
        assert_eq!(
            pieces(&vmas, 0, u64::MAX),
            vec![(10, 20), (30, 40), (40, 50), (60, 70)]
        );
        assert_eq!(pieces(&vmas, 15, 45), vec![(15, 20), (30, 40), (40, 45)]);
        assert_eq!(pieces(&vmas, 20, 30), vec![]);
        assert_eq!(pieces(&vmas, 65, 100), vec![(65, 70)]);
        assert_eq!(pieces(&vmas, 100, 200), vec![]);
    }
}
