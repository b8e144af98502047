//! The per-page pipeline (page-types' `add_page`, `walk_swap`, `show_page`,
//! `show_page_range`), the listing formats and the summary output.

use super::actions::Actions;
use super::parse::ALL_BITS;
use super::table::{TABLE_FULL, Table, long_names, symbolic};
use super::{Format, Stop};
use crate::kpageflags::PageFlags;
use crate::pagemap::PagemapEntry;
use std::io::Write;

/// Options the pipeline needs.
#[derive(Clone, Debug, Default)]
pub struct PipeOpts {
    /// `-r`
    pub raw: bool,
    /// `-b` filters (mask, bits).
    pub filters: Vec<(u64, u64)>,
    /// `-c` inode (0 = none).
    pub cgroup: u64,
    /// 0 none, 1 `-l`, 2 `-L`.
    pub list: u8,
    /// `-p` given: voffset column.
    pub show_pid: bool,
    /// `-f` given: a second voffset column.
    pub show_file: bool,
    /// `-C`
    pub list_cgroup: bool,
    /// `-M`
    pub list_mapcnt: bool,
    /// Output format.
    pub format: Format,
}

impl PipeOpts {
    /// page-types' flag transformation (A.7).
    pub fn transform(&self, flags: u64, pme: u64) -> u64 {
        let f = PageFlags::from_bits_retain(flags);
        if self.raw {
            f.expand_overloaded(PagemapEntry::from_raw(pme)).bits()
        } else {
            f.well_known().bits()
        }
    }

    /// All `-b` filters pass.
    pub fn bits_ok(&self, flags: u64) -> bool {
        self.filters.iter().all(|&(mask, bits)| {
            if bits == ALL_BITS {
                flags & mask != 0
            } else {
                flags & mask == bits
            }
        })
    }
}

#[derive(Default)]
struct Pending {
    flags: u64,
    cgroup: u64,
    mapcnt: u64,
    voff: u64,
    index: u64,
    count: u64,
}

/// The pipeline: filters, actions, listing, counting.
pub struct Pipe<'a> {
    /// The options.
    pub o: PipeOpts,
    /// The hwpoison / idle files.
    pub actions: Actions,
    /// The summary table.
    pub table: Table,
    out: &'a mut dyn Write,
    warn: &'a mut dyn Write,
    pending: Pending,
    csv_header: bool,
    line: Vec<u8>,
    sym_cache: (u64, Vec<u8>),
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

fn push_hex(v: &mut Vec<u8>, x: u64) {
    let mut tmp = [0u8; 16];
    let mut i = 16;
    let mut x = x;
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[(x & 15) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

fn push_dec(v: &mut Vec<u8>, x: u64) {
    let mut tmp = [0u8; 20];
    let mut i = 20;
    let mut x = x;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

impl<'a> Pipe<'a> {
    /// A pipeline writing listings to `out` and warnings to `warn`.
    pub fn new(
        o: PipeOpts,
        actions: Actions,
        out: &'a mut dyn Write,
        warn: &'a mut dyn Write,
    ) -> Pipe<'a> {
        Pipe {
            o,
            actions,
            table: Table::default(),
            out,
            warn,
            pending: Pending::default(),
            csv_header: false,
            line: Vec::with_capacity(128),
            sym_cache: (0, Vec::new()),
            progress: None,
        }
    }

    /// The stdout writer.
    pub fn out(&mut self) -> &mut dyn Write {
        &mut *self.out
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
        let flags = self.o.transform(flags, pme);
        if !self.o.bits_ok(flags) {
            return Ok(());
        }
        if self.o.cgroup != 0 && cgroup != self.o.cgroup {
            return Ok(());
        }
        if self.actions.any() {
            self.actions.page(offset, &mut *self.warn);
        }
        match self.o.list {
            1 => self.show_range(voffset, offset, 1, flags, cgroup, mapcnt)?,
            2 => self.show_page(voffset, offset, flags, cgroup, mapcnt)?,
            _ => {}
        }
        self.count(flags, 1)
    }

    /// Count `n` pages of (transformed) `flags` in the summary.
    pub fn count(&mut self, flags: u64, n: u64) -> Result<(), Stop> {
        self.table
            .add(flags, n)
            .ok_or_else(|| Stop::Fatal(TABLE_FULL.to_vec()))
    }

    /// page-types' `walk_swap`.
    pub fn swap(&mut self, voffset: u64, pme: u64) -> Result<(), Stop> {
        let flags = self.o.transform(0, pme);
        if !self.o.bits_ok(flags) || self.o.cgroup != 0 {
            return Ok(());
        }
        let off = PagemapEntry::from_raw(pme).swap_offset().unwrap_or(0);
        match self.o.list {
            1 => self.show_range(voffset, off, 1, flags, 0, 0)?,
            2 => self.show_page(voffset, off, flags, 0, 0)?,
            _ => {}
        }
        self.count(flags, 1)
    }

    /// The prefix columns of a listing line into `self.line` (cleared first).
    fn prefix(&mut self, voffset: u64, cgroup: u64, mapcnt: u64) {
        self.line.clear();
        if self.o.show_pid {
            push_hex(&mut self.line, voffset);
            self.line.push(b'\t');
        }
        if self.o.show_file {
            push_hex(&mut self.line, voffset);
            self.line.push(b'\t');
        }
        if self.o.list_cgroup {
            self.line.push(b'@');
            push_dec(&mut self.line, cgroup);
            self.line.push(b'\t');
        }
        if self.o.list_mapcnt {
            push_dec(&mut self.line, mapcnt);
            self.line.push(b'\t');
        }
    }

    /// The symbolic string of `flags`, cached for the last value; on an unknown bit the
    /// prefix already formatted reaches stdout (page-types printed it before failing).
    fn symbolic_or_fail(&mut self, flags: u64) -> Result<(), Stop> {
        if self.sym_cache.0 != flags || self.sym_cache.1.is_empty() {
            match symbolic(flags) {
                Ok(s) => self.sym_cache = (flags, s.into_bytes()),
                Err(e) => {
                    let _ = self.out.write_all(&self.line);
                    return Err(Stop::Fatal(e));
                }
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        voffset: u64,
        offset: u64,
        count: u64,
        flags: u64,
        cgroup: u64,
        mapcnt: u64,
    ) {
        let f = PageFlags::from_bits_retain(flags);
        let names: Vec<String> = f.names().map(|n| n.into_owned()).collect();
        let sym = f.symbolic();
        if self.o.format == Format::Json {
            let mut m = serde_json::Map::new();
            m.insert("pfn".into(), offset.into());
            m.insert("count".into(), count.into());
            m.insert("flags_raw".into(), flags.into());
            m.insert("flags".into(), names.into());
            m.insert("symbolic".into(), sym.into());
            if self.o.show_pid || self.o.show_file {
                m.insert("voffset".into(), voffset.into());
            }
            if self.o.list_mapcnt {
                m.insert("kpagecount".into(), mapcnt.into());
            }
            if self.o.list_cgroup {
                m.insert("memcg_ino".into(), cgroup.into());
            }
            let _ = writeln!(self.out, "{}", serde_json::Value::Object(m));
        } else {
            if !self.csv_header {
                self.csv_header = true;
                let _ = writeln!(
                    self.out,
                    "pfn,count,flags_raw,flags,symbolic,voffset,kpagecount,memcg_ino"
                );
            }
            let opt = |on: bool, v: u64| if on { v.to_string() } else { String::new() };
            let _ = writeln!(
                self.out,
                "{offset},{count},{flags},\"{}\",{sym},{},{},{}",
                names.join(","),
                opt(self.o.show_pid || self.o.show_file, voffset),
                opt(self.o.list_mapcnt, mapcnt),
                opt(self.o.list_cgroup, cgroup)
            );
        }
    }

    fn show_page(
        &mut self,
        voffset: u64,
        offset: u64,
        flags: u64,
        cgroup: u64,
        mapcnt: u64,
    ) -> Result<(), Stop> {
        if self.o.format != Format::Classic {
            self.record(voffset, offset, 1, flags, cgroup, mapcnt);
            return Ok(());
        }
        self.prefix(voffset, cgroup, mapcnt);
        self.symbolic_or_fail(flags)?;
        push_hex(&mut self.line, offset);
        self.line.push(b'\t');
        self.line.extend_from_slice(&self.sym_cache.1);
        self.line.push(b'\n');
        let _ = self.out.write_all(&self.line);
        Ok(())
    }

    /// page-types' `show_page_range`.
    pub fn show_range(
        &mut self,
        voffset: u64,
        offset: u64,
        size: u64,
        flags: u64,
        cgroup: u64,
        mapcnt: u64,
    ) -> Result<(), Stop> {
        let p = &mut self.pending;
        if flags == p.flags
            && cgroup == p.cgroup
            && mapcnt == p.mapcnt
            && offset == p.index.wrapping_add(p.count)
            && size != 0
            && voffset == p.voff.wrapping_add(p.count)
        {
            p.count += size;
            return Ok(());
        }
        if p.count != 0 {
            let (voff, index, count, f, c, m) =
                (p.voff, p.index, p.count, p.flags, p.cgroup, p.mapcnt);
            if self.o.format != Format::Classic {
                self.record(voff, index, count, f, c, m);
            } else {
                self.prefix(voff, c, m);
                self.symbolic_or_fail(f)?;
                push_hex(&mut self.line, index);
                self.line.push(b'\t');
                push_hex(&mut self.line, count);
                self.line.push(b'\t');
                self.line.extend_from_slice(&self.sym_cache.1);
                self.line.push(b'\n');
                let _ = self.out.write_all(&self.line);
            }
        }
        self.pending = Pending {
            flags,
            cgroup,
            mapcnt,
            voff: voffset,
            index: offset,
            count: size,
        };
        Ok(())
    }

    /// page-types' `flush_page_range`.
    pub fn flush_range(&mut self) -> Result<(), Stop> {
        self.show_range(0, 0, 0, 0, 0, 0)
    }

    /// The summary table in the selected format.
    pub fn summary(&mut self, page_size: u64) -> Result<(), Stop> {
        let mb = |n: u64| n.wrapping_mul(page_size) >> 20;
        let rows: Vec<(u64, u64)> = self.table.rows().collect();
        match self.o.format {
            Format::Classic => {
                let _ = self.out.write_all(
                    b"             flags\tpage-count       MB  symbolic-flags\t\t\tlong-symbolic-flags\n",
                );
                for (v, n) in rows {
                    let sym = symbolic(v)?;
                    let _ = writeln!(
                        self.out,
                        "0x{v:016x}\t{n:10} {:8}  {sym}\t{}",
                        mb(n),
                        long_names(v)
                    );
                }
                let t = self.table.total;
                let _ = writeln!(self.out, "             total\t{t:10} {:8}", mb(t));
            }
            Format::Json => {
                for (v, n) in rows {
                    let f = PageFlags::from_bits_retain(v);
                    let j = serde_json::json!({
                        "flags_raw": v,
                        "flags": f.names().collect::<Vec<_>>(),
                        "symbolic": f.symbolic(),
                        "pages": n,
                        "mb": mb(n),
                    });
                    let _ = writeln!(self.out, "{j}");
                }
            }
            Format::Csv => {
                let _ = writeln!(self.out, "flags_raw,flags,symbolic,pages,mb");
                for (v, n) in rows {
                    let f = PageFlags::from_bits_retain(v);
                    let _ = writeln!(
                        self.out,
                        "{v},\"{}\",{},{n},{}",
                        f.names().collect::<Vec<_>>().join(","),
                        f.symbolic(),
                        mb(n)
                    );
                }
            }
        }
        Ok(())
    }
}
