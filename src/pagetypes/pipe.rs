//! The per-page pipeline (page-types' `add_page`, `walk_swap`, `show_page`,
//! `show_page_range`), the listing formats and the summary output.

use super::actions::Actions;
use super::batch::Entry;
pub use super::config::PipeOpts;
use super::config::{Format, Out, Stop};
use super::lines::{Line, Symbols, push_line};
use super::records::{Columns, FlagSet, PageRange, Run};
use super::table::{TABLE_FULL, Table, long_names, symbolic};
use crate::kpageflags::PageFlags;
use crate::output::{self, Record, Sink};
use crate::pagemap::PagemapEntry;
use std::io::Write;

/// Where listings and the summary go: page-types' text, or records through the sink.
enum Dest<'a> {
    Text(Out<'a>),
    Records {
        // boxed: a sink is much larger than page-types' text writer
        sink: Box<Sink<&'a mut dyn Write>>,
        strict: bool,
    },
    Done,
}

impl Dest<'_> {
    /// Text for the classic format (nothing in JSON/CSV, whose readers want records only).
    fn put(&mut self, b: &[u8]) -> Result<(), Stop> {
        match self {
            Dest::Text(o) => o.put(b),
            _ => Ok(()),
        }
    }

    fn record<R: Record>(&mut self, r: &R) -> Result<(), Stop> {
        match self {
            Dest::Records { sink, strict } => match sink.write(r) {
                Err(e) if *strict => Err(Stop::Error(e)),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// The pipeline: filters, actions, listing, counting.
pub struct Pipe<'a> {
    /// The options.
    pub o: PipeOpts,
    /// The hwpoison / idle files.
    pub actions: Actions,
    /// The summary table.
    pub table: Table,
    dest: Dest<'a>,
    warn: &'a mut dyn Write,
    pending: Run,
    line: Vec<u8>,
    sym: Symbols,
    /// The progress line, when enabled.
    pub progress: Option<Progress>,
}

/// A progress line on stderr for long PFN scans: shown only after the scan has run for a
/// second, redrawn at most 10 times a second, erased at the end.
pub struct Progress {
    start: std::time::Instant,
    last: std::time::Instant,
    total: u64,
    shown: bool,
}

impl Progress {
    /// A progress meter for a scan of about `total` PFNs (0 when unknown).
    pub fn new(total: u64) -> Progress {
        let now = std::time::Instant::now();
        Progress {
            start: now,
            last: now,
            total,
            shown: false,
        }
    }

    /// `done` PFNs have been scanned.
    pub fn tick(&mut self, done: u64, err: &mut dyn Write) {
        let now = std::time::Instant::now();
        if now.duration_since(self.start).as_millis() < 1000
            || now.duration_since(self.last).as_millis() < 100
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let gib = (done * crate::addr::page_size()) as f64 / f64::from(1u32 << 30);
        let line = if self.total > 0 {
            let pct = (done as f64 * 100.0 / self.total as f64).min(100.0);
            let width = 30usize;
            let fill = (pct / 100.0 * width as f64) as usize;
            format!(
                "\r[{}{}] {pct:5.1}%  {gib:.1} GiB scanned",
                "#".repeat(fill),
                " ".repeat(width - fill)
            )
        } else {
            format!("\r{gib:.1} GiB scanned")
        };
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    /// Erase the line if it was drawn.
    pub fn finish(&mut self, err: &mut dyn Write) {
        if self.shown {
            let _ = err.write_all(b"\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

/// True when the records of `a` and `b` would list the same flag names.
fn same_names(a: &Run, b: &Run) -> bool {
    let bits = |r: &Run| {
        PageFlags::from_bits_retain(r.raw)
            .expand_overloaded(PagemapEntry::from_raw(r.pme))
            .bits()
    };
    bits(a) == bits(b)
}

impl<'a> Pipe<'a> {
    /// A pipeline writing listings to `out` and warnings to `warn`.
    pub fn new(o: PipeOpts, actions: Actions, out: Out<'a>, warn: &'a mut dyn Write) -> Pipe<'a> {
        let dest = match o.format {
            Format::Classic => Dest::Text(out),
            f => {
                let strict = out.strict();
                let format = if f == Format::Json {
                    output::Format::Json
                } else {
                    output::Format::Csv
                };
                // the sink takes the writer itself; Out only carried the strictness
                let w: &'a mut dyn Write = out.into_writer();
                Dest::Records {
                    sink: Box::new(Sink::new(format, w, usize::MAX)),
                    strict,
                }
            }
        };
        Pipe {
            o,
            actions,
            table: Table::default(),
            dest,
            warn,
            pending: Run::default(),
            line: Vec::with_capacity(128),
            sym: Symbols::default(),
            progress: None,
        }
    }

    /// Write page-types text to stdout (nothing in JSON/CSV).
    pub fn put(&mut self, b: &[u8]) -> Result<(), Stop> {
        self.dest.put(b)
    }

    /// Flush stdout (the sink's last lines with JSON/CSV).
    pub fn finish(&mut self) -> Result<(), Stop> {
        match std::mem::replace(&mut self.dest, Dest::Done) {
            Dest::Text(mut o) => {
                let r = o.flush();
                self.dest = Dest::Text(o);
                r
            }
            Dest::Records { sink, strict } => match (*sink).finish() {
                Err(e) if strict => Err(Stop::Error(e)),
                _ => Ok(()),
            },
            Dest::Done => Ok(()),
        }
    }

    /// The stderr writer.
    pub fn warn(&mut self) -> &mut dyn Write {
        &mut *self.warn
    }

    /// page-types' final `mark_page_idle(0)` after a PFN or process walk.
    pub fn flush_idle(&mut self) {
        if self.actions.idle.is_some() {
            self.actions.mark_idle(0, &mut *self.warn);
        }
    }

    /// Advance the progress line (if any) to `done` PFNs.
    pub fn tick(&mut self, done: u64) {
        if let Some(p) = self.progress.as_mut() {
            p.tick(done, &mut *self.warn);
        }
    }

    /// Erase the progress line (if any).
    pub fn end_progress(&mut self) {
        if let Some(p) = self.progress.as_mut() {
            p.finish(&mut *self.warn);
        }
    }

    /// page-types' `add_page`.
    pub fn add_page(
        &mut self,
        voffset: u64,
        offset: u64,
        flags: u64,
        cgroup: u64,
        mapcnt: u64,
        pme: u64,
    ) -> Result<(), Stop> {
        let raw = flags;
        let Some(flags) = self.o.select(flags, cgroup, pme) else {
            return Ok(());
        };
        if self.actions.any() {
            self.actions.page(offset, &mut *self.warn);
        }
        if self.o.list != 0 {
            let run = Run {
                index: offset,
                count: 1,
                voffset,
                raw,
                pme,
                shown: flags,
                mapcnt,
                cgroup,
                swap: false,
            };
            self.list(run)?;
        }
        self.count(flags, 1)
    }

    /// One entry of a process's batch: `add_page` or `walk_swap`.
    pub(crate) fn entry(&mut self, e: Entry) -> Result<(), Stop> {
        match e {
            Entry::Page(p) => self.add_page(p.vpn, p.pfn, p.flags, p.cgroup, p.mapcnt, p.pme),
            Entry::Swap { vpn, pme } => self.swap(vpn, pme),
        }
    }

    /// Count `n` pages of (transformed) `flags` in the summary.
    pub fn count(&mut self, flags: u64, n: u64) -> Result<(), Stop> {
        self.table
            .add(flags, n)
            .ok_or_else(|| Stop::Fatal(TABLE_FULL.to_vec()))
    }

    /// page-types' `walk_swap`.
    pub fn swap(&mut self, voffset: u64, pme: u64) -> Result<(), Stop> {
        let Some(flags) = self.o.select_swap(pme) else {
            return Ok(());
        };
        let off = PagemapEntry::from_raw(pme).swap_offset().unwrap_or(0);
        if self.o.list != 0 {
            let run = Run {
                index: off,
                count: 1,
                voffset,
                pme,
                shown: flags,
                swap: true,
                ..Run::default()
            };
            self.list(run)?;
        }
        self.count(flags, 1)
    }

    /// Write one listing line; a flag bit without a name ends the walk after the line's
    /// prefix is written, as page-types printed it before failing.
    fn put_line(&mut self, l: &Line) -> Result<(), Stop> {
        self.line.clear();
        let r = push_line(&self.o, &mut self.line, &mut self.sym, l);
        self.dest.put(&self.line)?;
        r.map_err(Stop::Fatal)
    }

    /// One listed page (`-L`) or page for a run (`-l`).
    fn list(&mut self, run: Run) -> Result<(), Stop> {
        if self.o.list == 2 {
            return self.show_page(&run);
        }
        self.show_range(run)
    }

    fn columns(&self) -> Columns {
        Columns {
            vaddr: self.o.show_pid,
            file: self.o.show_file,
            mapcnt: self.o.list_mapcnt,
            cgroup: self.o.list_cgroup,
        }
    }

    fn record(&mut self, run: &Run) -> Result<(), Stop> {
        let rec = PageRange::of(run, self.columns(), crate::addr::page_size());
        self.dest.record(&rec)
    }

    fn show_page(&mut self, r: &Run) -> Result<(), Stop> {
        if self.o.format != Format::Classic {
            return self.record(r);
        }
        self.put_line(&Line {
            voffset: r.voffset,
            cgroup: r.cgroup,
            mapcnt: r.mapcnt,
            index: r.index,
            count: None,
            shown: r.shown,
        })
    }

    /// page-types' `show_page_range`. Runs of pages merge when page-types' flags, cgroup and
    /// map count agree and the offsets follow on; records also need the same raw word and
    /// pagemap bits, so that each record's `flags` are true of all its pages.
    fn show_range(&mut self, r: Run) -> Result<(), Stop> {
        let p = &mut self.pending;
        let records = self.o.format != Format::Classic;
        if r.shown == p.shown
            && r.cgroup == p.cgroup
            && r.mapcnt == p.mapcnt
            && r.index == p.index.wrapping_add(p.count)
            && r.count != 0
            && r.voffset == p.voffset.wrapping_add(p.count)
            && (!records || (r.raw, r.swap) == (p.raw, p.swap) && same_names(&r, p))
        {
            p.count += r.count;
            return Ok(());
        }
        if p.count != 0 {
            let p = *p;
            if records {
                self.record(&p)?;
            } else {
                self.put_line(&Line {
                    voffset: p.voffset,
                    cgroup: p.cgroup,
                    mapcnt: p.mapcnt,
                    index: p.index,
                    count: Some(p.count),
                    shown: p.shown,
                })?;
            }
        }
        self.pending = r;
        Ok(())
    }

    /// page-types' `flush_page_range`.
    pub fn flush_range(&mut self) -> Result<(), Stop> {
        self.show_range(Run::default())
    }

    /// The summary table in the selected format.
    pub fn summary(&mut self, page_size: u64) -> Result<(), Stop> {
        let mb = |n: u64| n.wrapping_mul(page_size) >> 20;
        let rows: Vec<(u64, u64)> = self.table.rows().collect();
        if self.o.format != Format::Classic {
            for (v, n) in rows {
                self.dest.record(&FlagSet::of(v, n, page_size))?;
            }
            return Ok(());
        }
        let mut text = Vec::with_capacity(128 * (rows.len() + 2));
        text.extend_from_slice(
            b"             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags\n",
        );
        for (v, n) in rows {
            let sym = match symbolic(v) {
                Ok(s) => s,
                Err(e) => {
                    self.dest.put(&text)?;
                    return Err(Stop::Fatal(e));
                }
            };
            let _ = writeln!(
                text,
                "0x{v:016x}\t{n:10} {:8}  {sym}\t{}",
                mb(n),
                long_names(v)
            );
        }
        let t = self.table.total;
        let _ = writeln!(text, "             total\t{t:10} {:8}", mb(t));
        self.dest.put(&text)
    }
}
