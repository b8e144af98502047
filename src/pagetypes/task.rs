//! The in-order process walk (`-p`), for runs that act on pages in page order (`-X`, `-x`,
//! `-i`), join ranges (`-l`) or write records (JSON/CSV); `task_chunks` does the others. Each
//! VMA's pagemap (PAGEMAP_SCAN skips unpopulated ranges where pagemap is sparse, and is left
//! out where it is dense), and the kpageflags (kpagecgroup, kpagecount) of the present pages
//! looked up in batches by persistent workers while the main thread reads the next pagemap
//! batch and processes finished batches in order.

use super::batch::{Batch, scan_populated};
use super::config::{Config, Stop};
use super::pipe::Pipe;
use super::read::{Sides, Src};
use std::sync::{Mutex, mpsc};

pub(crate) fn walk(
    threads: usize,
    c: &Config,
    sides: &Sides,
    pipe: &mut Pipe<'_>,
    index: u64,
    count: u64,
) -> Result<(), Stop> {
    let end = index.wrapping_add(count);
    if c.vmas.is_empty() {
        return Ok(());
    }
    let Some(pm) = c.pagemap.as_ref() else {
        return Ok(());
    };
    // workers from the work: a process of one batch or less is looked up here, in one thread
    let span: u64 = c
        .vmas
        .iter()
        .map(|&(s, e)| e.min(end).saturating_sub(s.max(index)))
        .fold(0u64, u64::saturating_add);
    // the main thread reads pagemap, processes batches in order, and looks up a batch itself
    // while it would wait: one worker fewer than the threads keeps every CPU busy
    let workers = if threads <= 1 || span <= PM_BATCH {
        0
    } else {
        (threads - 1)
            .min(span.div_ceil(PM_BATCH) as usize)
            .min(MAX_WORKERS)
    };
    let pm = Src::pagemap(pm)?;
    std::thread::scope(|s| {
        let pool = (workers > 0).then(|| {
            let (tx, rx) = mpsc::channel::<Batch>();
            let (done_tx, done_rx) = mpsc::channel::<Batch>();
            let rx = std::sync::Arc::new(Mutex::new(rx));
            for _ in 0..workers {
                let (rx, done_tx) = (rx.clone(), done_tx.clone());
                let spawned = std::thread::Builder::new()
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(s, move || {
                        loop {
                            let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            let Ok(mut job) = job else { return };
                            job.run(sides);
                            if done_tx.send(job).is_err() {
                                return;
                            }
                        }
                    });
                if spawned.is_err() {
                    break; // fewer workers; with none, the jobs come back unrun below
                }
            }
            Pool {
                tx,
                queue: rx,
                done: done_rx,
                jobs: workers + 2,
            }
        });
        let mut w = TaskWalk {
            pm,
            cur: Batch::new(sides, 2 * PM_BATCH as usize),
            free: Vec::new(),
            made: 1,
            pool,
            sent: 0,
            next: 0,
            ready: Vec::new(),
            failed: false,
            buf: vec![0; PM_BATCH as usize],
            regions: Vec::new(),
            scan_ok: true,
            present: 0,
        };
        w.walk(c, sides, pipe, index, end)
        // dropping `w` closes the job channel: the workers end and the scope joins them
    })
}

/// Pagemap entries read at once, and present entries per lookup batch.
const PM_BATCH: u64 = 16 << 10;
/// Pages per PAGEMAP_SCAN window.
const SCAN_WINDOW: u64 = 64 << 10;
/// More lookup workers than this gain nothing: the kernel's kpageflags reads scale with CPUs
/// but the main thread's in-order processing does not.
const MAX_WORKERS: usize = 8;
/// A worker's stack: it runs only [`Batch::run`] (no recursion, small frames).
const WORKER_STACK: usize = 64 << 10;

struct Pool {
    tx: mpsc::Sender<Batch>,
    /// The workers' queue: the main thread takes a batch no worker has started rather than
    /// wait (on a busy machine a worker may not get a CPU for milliseconds).
    queue: std::sync::Arc<Mutex<mpsc::Receiver<Batch>>>,
    done: mpsc::Receiver<Batch>,
    /// Batches in circulation at most: one per worker, one queued that the main thread can
    /// look up itself while it waits, and the one being filled. (With one per worker only, a
    /// single worker's lookups never overlapped the main thread's: 2 threads ran as 1.15 CPUs.)
    jobs: usize,
}

struct TaskWalk {
    pm: Src,
    /// The batch being filled.
    cur: Batch,
    /// Batches done with, for reuse.
    free: Vec<Batch>,
    /// Batches allocated so far.
    made: usize,
    pool: Option<Pool>,
    /// Sequence numbers: of the next batch sent, of the next to process.
    sent: u64,
    next: u64,
    /// Batches back from the workers out of order.
    ready: Vec<Batch>,
    /// A batch's processing failed: nothing after it may be processed.
    failed: bool,
    buf: Vec<u64>,
    regions: Vec<(u64, u64)>,
    scan_ok: bool,
    /// Populated pagemap entries read (a window's share tells dense from sparse).
    present: u64,
}

impl TaskWalk {
    /// page-types' `walk_task(index, count)` over the VMAs, ending at `end`.
    fn walk(
        &mut self,
        c: &Config,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        mut index: u64,
        end: u64,
    ) -> Result<(), Stop> {
        let n = c.vmas.len();
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
            // what was read before an error is processed first, as page-types would have
            let r = self.walk_vma(sides, pipe, start, index - start);
            let f = self.flush(sides, pipe);
            f?;
            r?;
        }
        Ok(())
    }

    /// page-types' `walk_vma(index, count)`, visiting only populated pages when the kernel has
    /// PAGEMAP_SCAN (the other entries do nothing in page-types). Where a window turns out
    /// mostly populated the next is read without the scan (it would only cost time); where a
    /// window read so is mostly empty, scanning resumes.
    fn walk_vma(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        index: u64,
        count: u64,
    ) -> Result<(), Stop> {
        let end = index + count;
        let mut w = index;
        let mut dense = false;
        while w < end {
            let we = (w + SCAN_WINDOW).min(end);
            if dense {
                let before = self.present;
                if !self.read_entries(sides, pipe, w, we)? {
                    return Ok(());
                }
                dense = (self.present - before) * 2 >= we - w;
                w = we;
                continue;
            }
            let mut regions = std::mem::take(&mut self.regions);
            let scanned = self.scan_ok && scan_populated(&self.pm, w, we, &mut regions);
            if !scanned {
                self.regions = regions;
                self.scan_ok = false;
                self.read_entries(sides, pipe, w, end)?;
                return Ok(());
            }
            let mut populated = 0;
            let mut r = Ok(true);
            for &(rs, re) in &regions {
                let (rs, re) = (rs.max(w), re.min(we));
                if rs < re {
                    populated += re - rs;
                    r = self.read_entries(sides, pipe, rs, re);
                    if !matches!(r, Ok(true)) {
                        break;
                    }
                }
            }
            self.regions = regions;
            if !r? {
                return Ok(());
            }
            dense = populated * 2 >= we - w;
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
            self.present += self.cur.push(from, &self.buf[..n]);
            if self.cur.pending.len() >= PM_BATCH as usize {
                self.submit(sides, pipe)?;
            }
            from += n as u64;
            // a short read: page-types reads on and gets 0
        }
        Ok(true)
    }

    /// Hand the batch being filled to a worker (or look it up here without one), and take
    /// an empty one to fill, processing finished batches in order while none is free.
    fn submit(&mut self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        if self.cur.pending.is_empty() {
            return Ok(());
        }
        let Some(jobs) = self.pool.as_ref().map(|p| p.jobs) else {
            self.cur.run(sides);
            let r = self.process(sides, pipe, None);
            self.cur.pending.clear();
            return r;
        };
        let mut job = match self.free.pop() {
            Some(j) => j,
            None if self.made < jobs => {
                self.made += 1;
                Batch::new(sides, 2 * PM_BATCH as usize)
            }
            None => {
                self.complete_one(sides, pipe)?;
                self.free
                    .pop()
                    .unwrap_or_else(|| Batch::new(sides, 2 * PM_BATCH as usize))
            }
        };
        std::mem::swap(&mut job, &mut self.cur);
        job.seq = self.sent;
        self.sent += 1;
        let pool = self.pool.as_ref().expect("checked above");
        if let Err(mpsc::SendError(mut job)) = pool.tx.send(job) {
            // no worker left: look it up here, in its turn
            job.run(sides);
            self.ready.push(job);
        }
        Ok(())
    }

    /// Wait for the next batch in order from the workers and process it and every batch
    /// after it that is back.
    fn complete_one(&mut self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        while !self.ready.iter().any(|j| j.seq == self.next) {
            let pool = self.pool.as_ref().expect("complete_one without a pool");
            let job = match pool.done.try_recv() {
                Ok(job) => job,
                Err(_) => {
                    let unstarted = match pool.queue.try_lock() {
                        Ok(q) => q.try_recv().ok(),
                        Err(_) => None,
                    };
                    match unstarted {
                        Some(mut job) => {
                            job.run(sides);
                            job
                        }
                        None => pool.done.recv().map_err(|_| {
                            Stop::Fatal(b"pgtool: the kpageflags reader threads failed\n".to_vec())
                        })?,
                    }
                }
            };
            self.ready.push(job);
        }
        while let Some(i) = self.ready.iter().position(|j| j.seq == self.next) {
            let mut job = self.ready.swap_remove(i);
            self.next += 1;
            let r = self.process(sides, pipe, Some(&job));
            job.pending.clear();
            self.free.push(job);
            r?;
        }
        Ok(())
    }

    /// Process `job` (or the batch being filled) unless an earlier batch failed.
    fn process(
        &mut self,
        sides: &Sides,
        pipe: &mut Pipe<'_>,
        job: Option<&Batch>,
    ) -> Result<(), Stop> {
        if self.failed {
            return Ok(());
        }
        let r = job.unwrap_or(&self.cur).each(sides, |e| pipe.entry(e));
        self.failed = r.is_err();
        r
    }

    /// Process everything read so far, in order.
    fn flush(&mut self, sides: &Sides, pipe: &mut Pipe<'_>) -> Result<(), Stop> {
        self.submit(sides, pipe)?;
        while self.next < self.sent {
            self.complete_one(sides, pipe)?;
        }
        Ok(())
    }
}
