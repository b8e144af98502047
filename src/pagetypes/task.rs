//! The process walk (`-p`): each VMA's pagemap, with PAGEMAP_SCAN to skip unpopulated ranges,
//! and the kpageflags (kpagecgroup, kpagecount) of the present pages looked up in batches by a
//! worker while the next pagemap batch is read.

use super::cerr::strerror;
use super::config::{Config, Stop};
use super::pipe::Pipe;
use super::read::{Gather, Sides, Src};
use crate::addr::page_size;
use crate::pagemap::PagemapEntry;

pub(crate) fn walk(
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
            if let Some(pfn) = PagemapEntry::from_raw(e).pfn() {
                self.keys.push((pfn.0, slot as u32));
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
            let pme = PagemapEntry::from_raw(e);
            let pfn = pme.pfn().map_or(0, |p| p.0);
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
            if pme.swapped() {
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
                let pme = PagemapEntry::from_raw(e);
                if pme.pfn().is_some() || pme.swapped() {
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
