//! `pgtool idle heatmap`: a process's working set over time, time x address.

use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::heatmap::{self, Axis, Cell, Request};
use pgtool::idle::Method;
use pgtool::output::picture::{Colors, Grid, Key, Painter, Png, Section, Svg, Terminal};
use pgtool::output::{Format, Sink};
use pgtool::root::SysRoot;
use std::path::PathBuf;

/// Arguments of `pgtool idle heatmap`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Samples the process every --interval for --count intervals and draws time (rows, downwards) x \
address (columns): the colour of a cell is the share of its resident pages accessed in that \
interval, from white (none) to dark red (all); grey cells hold no resident page. The address \
axis is the mapped VMAs that had resident pages when sampling began, end to end (the gaps \
between them squeezed out), cut into --cells buckets that never cross a VMA; the VMAs are \
listed under the picture with their columns.

Methods: idle (the page_idle bitmap: exact per page, does not disturb the process; needs \
CONFIG_IDLE_PAGE_TRACKING), refs (clear_refs + smaps Referenced: clears the process's \
referenced bits, which reclaim uses; its resolution is one VMA: every bucket of a VMA gets the \
VMA's referenced share), auto (idle when the bitmap exists). Both write to the kernel (idle \
bits, clear_refs): never under --root.

Output: the terminal picture row by row while sampling; -o FILE.svg|FILE.png at the end \
(--zoom auto keeps the columns from the first to the last accessed bucket, as damo does); \
--csv/--json: one record per cell: time (s), start, end, pages, accessed.

Exit status: 0 ok; 1 no such process or no resident pages; 2 usage or system error.")]
pub struct Args {
    /// The process: a PID or `self`.
    #[arg(long, value_name = "PID")]
    pub pid: String,
    /// Only mappings with this path or name (`[heap]`, `libc`, `[anon]`); may be repeated.
    #[arg(long, value_name = "PATH-OR-NAME")]
    pub vma: Vec<String>,
    /// Interval length: 250ms, 1s, 2s...
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub interval: String,
    /// Number of intervals.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub count: u64,
    /// Buckets on the address axis (about).
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cells: u64,
    /// How accesses are seen.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Columns of the picture file: all buckets, or the accessed range.
    #[arg(long, value_enum, default_value_t = Zoom::Auto)]
    pub zoom: Zoom,
    /// Write the picture to FILE.svg or FILE.png at the end.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// How accesses are seen.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    /// idle when /sys/kernel/mm/page_idle/bitmap exists, else refs.
    Auto,
    /// The page_idle bitmap.
    Idle,
    /// clear_refs + smaps Referenced.
    Refs,
}

/// Columns of the picture file.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zoom {
    /// From the first to the last bucket accessed in any interval.
    Auto,
    /// Every bucket.
    None,
}

/// Ten shades from white to dark red, then grey for cells without resident pages.
fn keys() -> Vec<Key> {
    let mut k: Vec<Key> = (0..=10u8)
        .map(|i| {
            let t = f64::from(i) / 10.0;
            let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            Key {
                name: format!("{}%", i * 10),
                describe: format!("about {}% of the pages accessed", i * 10),
                rgb: [lerp(255.0, 150.0), lerp(255.0, 0.0), lerp(255.0, 0.0)],
                letter: char::from_digit(u32::from(i.min(9)), 10).unwrap_or('9'),
            }
        })
        .collect();
    k[10].letter = '#';
    k.push(Key {
        name: "none".into(),
        describe: "no resident page".into(),
        rgb: [0xb0, 0xb0, 0xb0],
        letter: ' ',
    });
    k
}

fn key_of(c: &Cell) -> usize {
    if c.pages == 0 {
        11
    } else {
        (c.share() * 10.0).round() as usize
    }
}

fn grid(cols: std::ops::Range<usize>, rows: u64, interval: f64, pid: u32) -> Grid {
    let n = (cols.end - cols.start) as u64;
    Grid {
        title: format!("Working set of {pid}: time (rows, every {interval}s) x address (columns)"),
        cols: n.max(1),
        cell_step: 1,
        sections: vec![Section {
            label: String::new(),
            start: 0,
            cells: n * rows,
            gap_before: None,
        }],
        keys: keys(),
        time_rows: Some(interval),
    }
}

/// The VMAs under the picture, with their columns.
fn footer(axis: &Axis, cols: &std::ops::Range<usize>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut i = cols.start;
    let name = |b: usize| axis.vmas[axis.buckets[b].vma].display_name();
    while i < cols.end {
        // Consecutive columns of mappings of one name (a file's text, data, bss) share a line.
        let mut j = i;
        while j + 1 < cols.end && name(j + 1) == name(i) {
            j += 1;
        }
        let vma = &axis.vmas[axis.buckets[i].vma];
        lines.push(format!(
            "columns {}-{}: {} {:#x}-{:#x}",
            i - cols.start,
            j - cols.start,
            vma.display_name(),
            axis.buckets[i].start,
            axis.buckets[j].end
        ));
        i = j + 1;
    }
    if axis.dropped > 0 {
        lines.push(format!(
            "({} smaller mappings with resident pages not drawn; raise --cells)",
            axis.dropped
        ));
    }
    lines
}

/// Run `pgtool idle heatmap`.
pub fn run(root: &SysRoot, args: Args) -> Result<i32, Error> {
    let pid = pgtool::input::parse_pid(&args.pid, root)?;
    let interval = pgtool::input::parse_duration(&args.interval)?;
    let method = match args.method {
        MethodArg::Idle => Method::Idle,
        MethodArg::Refs => Method::Refs,
        MethodArg::Auto => pgtool::idle::auto_method(root),
    };
    let format = args.format.format();
    let file = match &args.output {
        None => None,
        Some(p) => match p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") | Some("png") => Some(p.clone()),
            _ => {
                return Err(Error::Usage(format!(
                    "-o {}: the file name must end in .svg or .png",
                    pgtool::input::quote(&p.to_string_lossy())
                )));
            }
        },
    };
    if !root.is_live() {
        return Err(Error::Refused(
            "idle heatmap marks pages idle or clears referenced bits: it runs on the live system only, not under --root"
                .into(),
        ));
    }
    let req = Request {
        pid,
        vma_names: args.vma.clone(),
        interval,
        count: args.count,
        cells: args.cells,
        method,
    };
    let axis = Axis::new(heatmap::resident_vmas(root, &req)?, args.cells);
    let all = 0..axis.buckets.len();
    let secs = interval.as_secs_f64();
    let mut sink = (format != Format::Table).then(|| Sink::stdout(format));
    let mut live: Option<Box<dyn Painter>> = None;
    if format == Format::Table && file.is_none() {
        use std::io::IsTerminal;
        let colors = if std::io::stdout().is_terminal() {
            Colors::from_env()
        } else {
            Colors::None
        };
        let out = std::io::BufWriter::new(std::io::stdout());
        live = Some(Box::new(Terminal::new(
            out,
            grid(all.clone(), args.count, secs, pid),
            colors,
        )?));
    }
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    heatmap::sample(root, &req, &axis, |cells| {
        if let Some(s) = sink.as_mut() {
            for c in cells {
                s.write(c)?;
            }
        }
        if let Some(p) = live.as_mut() {
            for c in cells {
                p.cell(key_of(c), "")?;
            }
        }
        if file.is_some() {
            rows.push(cells.to_vec());
        }
        Ok(())
    })?;
    if let Some(s) = sink {
        s.finish()?;
    }
    if let Some(p) = live {
        p.finish(&footer(&axis, &all))?;
    }
    if let Some(path) = file {
        let cols = match args.zoom {
            Zoom::Auto => heatmap::hot_range(&rows),
            Zoom::None => all.clone(),
        };
        let g = grid(cols.clone(), rows.len() as u64, secs, pid);
        let write = {
            let path = path.clone();
            move |bytes: &[u8]| {
                pgtool::safe_file::write_atomic(&path, bytes, pgtool::safe_file::PUBLIC_FILE)
            }
        };
        let mut p: Box<dyn Painter> = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
        {
            Box::new(Svg::new(g, write))
        } else {
            Box::new(Png::new(g, write))
        };
        for r in &rows {
            for c in &r[cols.clone()] {
                let title = format!(
                    "t={:.1}s {:#x}-{:#x}: {} of {} pages accessed",
                    c.time, c.start, c.end, c.accessed, c.pages
                );
                p.cell(key_of(c), &title)?;
            }
        }
        p.finish(&footer(&axis, &cols))?;
        eprintln!("pgtool: wrote {}", path.display());
    }
    Ok(0)
}
