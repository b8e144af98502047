//! The process walk (`-p`) in chunks of virtual pages, each read, looked up, counted and (for
//! `-L`) formatted by one worker thread from start to end, and merged in order: for a summary
//! or a page listing with no action on the pages, which is most `-p` runs. Every thread then
//! reads pagemap as well as kpageflags, where the in-order pipeline (`task`) left pagemap and
//! the per-page work to one thread; and memory is a batch per worker (plus, for `-L`, the
//! text of the chunks waiting their turn), not batches in flight between threads.

use super::batch::{Batch, Entry};
use super::config::{Config, Format, PipeOpts, Stop};
use super::lines::{Line, Symbols, push_line};
use super::ordered::{Tally, in_order};
use super::pipe::Pipe;
use super::read::{Sides, Src};
use crate::addr::page_size;
use crate::pagemap::PagemapEntry;
use std::sync::Mutex;

/// Virtual pages a chunk covers: a summary's chunks are one PAGEMAP_SCAN window; a listing's
/// hold the text of at most this many pages until their turn (~75 bytes a line).
const SUMMARY_CHUNK: u64 = 64 << 10;
const LISTING_CHUNK: u64 = 1 << 10;
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
    let size = if list { LISTING_CHUNK } else { SUMMARY_CHUNK };
    // the first chunk of each piece; chunk k is in the last piece starting at or before it
    let mut firsts = Vec::with_capacity(pieces.len());
    let mut n = 0u64;
    for &(s, e) in &pieces {
        firsts.push(n);
        n += (e - s).div_ceil(size);
    }
    if n == 0 {
        return Ok(());
    }
    let pm = Src::pagemap(pm)?;
    let o = pipe.o.clone();
    let workers = threads.clamp(1, 256).min(n.min(256) as usize);
    let states: Vec<Worker> = (0..workers).map(|_| Worker::new(sides)).collect();
    // a listing's finished chunks wait with their text: one per worker at most
    let window = if list { workers } else { 4 * workers };
    let texts: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let mut result = Ok(());
    let mut ended: Option<usize> = None;
    in_order(
        states,
        n,
        window,
        |w: &mut Worker, k| {
            let i = firsts.partition_point(|&f| f <= k) - 1;
            let (s, e) = pieces[i];
            let cs = s + (k - firsts[i]) * size;
            let text = match list {
                true => texts.lock().unwrap_or_else(|e| e.into_inner()).pop(),
                false => Some(Vec::new()),
            };
            let text = text.unwrap_or_else(|| Vec::with_capacity(size as usize * 80));
            let out = w.chunk(&pm, sides, &o, i, cs, (cs + size).min(e), text);
            let last = matches!(out.end, End::Failed(_));
            (out, last)
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
        let ps = page_size();
        let mut regions = std::mem::take(&mut self.regions);
        regions.clear();
        let scanned = !self.dense
            && self.scan_ok
            && from.checked_mul(ps).is_some()
            && to.checked_mul(ps).is_some()
            && matches!(
                crate::pagemap::scan(
                    &pm.file,
                    crate::VirtAddr(from * ps)..crate::VirtAddr(to * ps),
                    |r| regions.push((r.start.0 / ps, r.end.0.div_ceil(ps)))
                ),
                Ok(true)
            );
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
            for (k, &e) in self.buf[..n].iter().enumerate() {
                let pme = PagemapEntry::from_raw(e);
                if pme.pfn().is_some() || pme.swapped() {
                    self.batch.pending.push((from + k as u64, e));
                    *present += 1;
                }
            }
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
