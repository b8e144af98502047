//! Pictures of a grid of cells: the terminal (Unicode half blocks in 256 or 24-bit colour, or
//! one letter per cell without colour), SVG (labels, legend, a hover title per cell) and PNG
//! (the pure-Rust `png` encoder). The cells arrive one at a time in row order; the grid's
//! shape (sections of cells, columns) is known up front.

use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::io::Write;

/// One entry of the legend: what a colour means.
#[derive(Clone, Debug)]
pub struct Key {
    /// Short name.
    pub name: String,
    /// What it means.
    pub describe: String,
    /// Colour.
    pub rgb: [u8; 3],
    /// Letter for colourless output.
    pub letter: char,
}

/// A run of cells drawn as consecutive rows under one label (a RAM range, a VMA).
#[derive(Clone, Debug)]
pub struct Section {
    /// Printed above the section.
    pub label: String,
    /// The address (or other coordinate) of the first cell.
    pub start: u64,
    /// Number of cells.
    pub cells: u64,
    /// A line printed before the section (a skipped hole).
    pub gap_before: Option<String>,
}

/// The shape of the picture.
#[derive(Clone, Debug)]
pub struct Grid {
    /// A title line.
    pub title: String,
    /// Cells per row.
    pub cols: u64,
    /// What one cell covers, added to a row's start for the next row's label.
    pub cell_step: u64,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// The legend.
    pub keys: Vec<Key>,
    /// Rows are time steps of this many seconds (a heatmap): rows are labelled with the time
    /// at their end and the terminal prints each row as it comes; `None`: rows are labelled
    /// with the address of their first cell.
    pub time_rows: Option<f64>,
}

/// The label of the row whose first cell is at `start` (see [`Grid::time_rows`]).
fn row_label(grid: &Grid, start: u64) -> String {
    match grid.time_rows {
        Some(step) => {
            let row = start / (grid.cols * grid.cell_step).max(1);
            format!("{:>13.1}s", (row + 1) as f64 * step)
        }
        None => format!("{start:#014x}"),
    }
}

impl Grid {
    /// Rows in all (each section starts a new row).
    pub fn rows(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| s.cells.div_ceil(self.cols))
            .sum()
    }
}

/// Colour depth of terminal output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colors {
    /// One letter per cell, no escape sequences (`NO_COLOR`, or not a terminal).
    None,
    /// xterm 256 colours.
    Ansi256,
    /// 24-bit colour.
    TrueColor,
}

impl Colors {
    /// What the environment asks for: none with `NO_COLOR`, 24-bit with
    /// `COLORTERM=truecolor|24bit`, else 256.
    pub fn from_env() -> Colors {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            Colors::None
        } else if std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit") {
            Colors::TrueColor
        } else {
            Colors::Ansi256
        }
    }
}

fn ansi256(rgb: [u8; 3]) -> u8 {
    let q = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            (v - 35) / 40
        }
    };
    16 + 36 * q(rgb[0]) + 6 * q(rgb[1]) + q(rgb[2])
}

/// Where cells go.
pub trait Painter {
    /// The next cell: its legend index and its hover text.
    fn cell(&mut self, key: usize, title: &str) -> Result<()>;
    /// Write the end (legend, totals lines) and flush.
    fn finish(self: Box<Self>, footer: &[String]) -> Result<()>;
}

/// Tracks where the next cell lands.
struct Cursor {
    section: usize,
    in_section: u64,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            section: 0,
            in_section: 0,
        }
    }
    /// Advance past one cell; true when the section ended.
    fn step(&mut self, grid: &Grid) -> bool {
        self.in_section += 1;
        let done = self.in_section >= grid.sections.get(self.section).map_or(0, |s| s.cells);
        if done {
            self.section += 1;
            self.in_section = 0;
        }
        done
    }
}

/// The terminal painter: rows of `cols` cells, two rows per line with half blocks.
pub struct Terminal<W: Write> {
    out: W,
    grid: Grid,
    colors: Colors,
    cur: Cursor,
    upper: Vec<usize>,
    row: Vec<usize>,
    row_start: u64,
    pending_start: u64,
}

impl<W: Write> Terminal<W> {
    /// A painter writing to `out`.
    pub fn new(out: W, grid: Grid, colors: Colors) -> Result<Terminal<W>> {
        let mut t = Terminal {
            out,
            grid,
            colors,
            cur: Cursor::new(),
            upper: Vec::new(),
            row: Vec::new(),
            row_start: 0,
            pending_start: 0,
        };
        let title = t.grid.title.clone();
        t.line(&title)?;
        t.section_header()?;
        Ok(t)
    }

    fn line(&mut self, s: &str) -> Result<()> {
        writeln!(self.out, "{s}").map_err(super::stdout_error)
    }

    fn section_header(&mut self) -> Result<()> {
        if let Some(s) = self.grid.sections.get(self.cur.section).cloned() {
            if let Some(g) = &s.gap_before {
                self.line(g)?;
            }
            self.line(&s.label)?;
            self.row_start = s.start;
        }
        Ok(())
    }

    fn emit(&mut self, lower: Option<Vec<usize>>, upper_start: u64) -> Result<()> {
        let upper = std::mem::take(&mut self.upper);
        let mut s = format!("{} ", row_label(&self.grid, upper_start));
        match self.colors {
            Colors::None => {
                for k in &upper {
                    s.push(self.grid.keys.get(*k).map_or('?', |k| k.letter));
                }
                writeln!(self.out, "{s}").map_err(super::stdout_error)?;
                if let Some(l) = lower {
                    let start = upper_start + self.grid.cols * self.grid.cell_step;
                    let mut s = format!("{} ", row_label(&self.grid, start));
                    for k in &l {
                        s.push(self.grid.keys.get(*k).map_or('?', |k| k.letter));
                    }
                    writeln!(self.out, "{s}").map_err(super::stdout_error)?;
                }
                return Ok(());
            }
            c => {
                for (i, k) in upper.iter().enumerate() {
                    let fg = self.grid.keys.get(*k).map_or([0, 0, 0], |k| k.rgb);
                    let bg = lower
                        .as_ref()
                        .and_then(|l| l.get(i))
                        .and_then(|k| self.grid.keys.get(*k))
                        .map(|k| k.rgb);
                    match (c, bg) {
                        (Colors::TrueColor, Some(b)) => {
                            let _ = write!(
                                s,
                                "\x1b[38;2;{};{};{};48;2;{};{};{}m▀",
                                fg[0], fg[1], fg[2], b[0], b[1], b[2]
                            );
                        }
                        (Colors::TrueColor, None) => {
                            let _ = write!(s, "\x1b[38;2;{};{};{}m\x1b[49m▀", fg[0], fg[1], fg[2]);
                        }
                        (_, Some(b)) => {
                            let _ = write!(s, "\x1b[38;5;{};48;5;{}m▀", ansi256(fg), ansi256(b));
                        }
                        (_, None) => {
                            let _ = write!(s, "\x1b[38;5;{}m\x1b[49m▀", ansi256(fg));
                        }
                    }
                }
                s.push_str("\x1b[0m");
            }
        }
        writeln!(self.out, "{s}").map_err(super::stdout_error)
    }

    fn end_row(&mut self, section_done: bool) -> Result<()> {
        let row = std::mem::take(&mut self.row);
        let start = self.row_start;
        self.row_start += self.grid.cols * self.grid.cell_step;
        if self.grid.time_rows.is_some() {
            self.upper = row;
            self.emit(None, start)?;
            return self.out.flush().map_err(super::stdout_error);
        }
        if self.upper.is_empty() {
            self.upper = row;
            self.pending_start = start;
            if section_done {
                let s = self.pending_start;
                self.emit(None, s)?;
            }
        } else {
            let s = self.pending_start;
            self.emit(Some(row), s)?;
        }
        Ok(())
    }
}

impl<W: Write> Painter for Terminal<W> {
    fn cell(&mut self, key: usize, _title: &str) -> Result<()> {
        self.row.push(key);
        let done = self.cur.step(&self.grid);
        if done || self.row.len() as u64 >= self.grid.cols {
            self.end_row(done)?;
        }
        if done {
            self.section_header()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &[String]) -> Result<()> {
        if !self.row.is_empty() {
            self.end_row(true)?;
        }
        if !self.upper.is_empty() {
            let s = self.pending_start;
            self.emit(None, s)?;
        }
        let keys = self.grid.keys.clone();
        for k in &keys {
            let swatch = match self.colors {
                Colors::None => k.letter.to_string(),
                Colors::TrueColor => {
                    format!("\x1b[38;2;{};{};{}m██\x1b[0m", k.rgb[0], k.rgb[1], k.rgb[2])
                }
                Colors::Ansi256 => format!("\x1b[38;5;{}m██\x1b[0m", ansi256(k.rgb)),
            };
            self.line(&format!("  {swatch} {:<9} {}", k.name, k.describe))?;
        }
        for f in footer {
            self.line(f)?;
        }
        self.out.flush().map_err(super::stdout_error)
    }
}

/// Geometry of SVG and PNG pictures.
const CELL_PX: u64 = 8;
const LABEL_PX: u64 = 150;
const SECTION_PX: u64 = 22;
const LEGEND_ROW_PX: u64 = 18;

fn hex_rgb(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG painter: the whole document is built in memory and handed to `sink` at the end.
pub struct Svg<F: FnOnce(&[u8]) -> Result<()>> {
    grid: Grid,
    cur: Cursor,
    body: String,
    y: u64,
    x: u64,
    sink: Option<F>,
}

impl<F: FnOnce(&[u8]) -> Result<()>> Svg<F> {
    /// A painter whose document goes to `sink` (e.g. a safe atomic write).
    pub fn new(grid: Grid, sink: F) -> Svg<F> {
        let mut s = Svg {
            grid,
            cur: Cursor::new(),
            body: String::new(),
            y: 30,
            x: 0,
            sink: Some(sink),
        };
        s.section_header();
        s
    }

    fn section_header(&mut self) {
        if let Some(sec) = self.grid.sections.get(self.cur.section).cloned() {
            if let Some(g) = &sec.gap_before {
                let _ = writeln!(
                    self.body,
                    "<text x=\"4\" y=\"{}\" class=\"gap\">{}</text>",
                    self.y + 14,
                    xml_escape(g)
                );
                self.y += SECTION_PX;
            }
            let _ = writeln!(
                self.body,
                "<text x=\"4\" y=\"{}\" class=\"sec\">{}</text>",
                self.y + 14,
                xml_escape(&sec.label)
            );
            self.y += SECTION_PX;
            self.x = 0;
        }
    }

    fn width(&self) -> u64 {
        LABEL_PX + self.grid.cols * CELL_PX + 10
    }
}

impl<F: FnOnce(&[u8]) -> Result<()>> Painter for Svg<F> {
    fn cell(&mut self, key: usize, title: &str) -> Result<()> {
        // A label every fourth row: labels are taller than one row of cells.
        if self.x == 0 && (self.cur.in_section / self.grid.cols).is_multiple_of(4) {
            let sec = self.grid.sections.get(self.cur.section);
            let addr = sec.map_or(0, |s| s.start + self.cur.in_section * self.grid.cell_step);
            let _ = writeln!(
                self.body,
                "<text x=\"4\" y=\"{}\" class=\"row\">{addr:#014x}</text>",
                self.y + CELL_PX
            );
        }
        let color = self.grid.keys.get(key).map_or([0, 0, 0], |k| k.rgb);
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{CELL_PX}\" height=\"{CELL_PX}\" fill=\"{}\"><title>{}</title></rect>",
            LABEL_PX + self.x * CELL_PX,
            self.y,
            hex_rgb(color),
            xml_escape(title)
        );
        self.x += 1;
        let done = self.cur.step(&self.grid);
        if done || self.x >= self.grid.cols {
            self.x = 0;
            self.y += CELL_PX;
        }
        if done {
            self.y += 4;
            self.section_header();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &[String]) -> Result<()> {
        let mut y = self.y + 10;
        let mut legend = String::new();
        for k in &self.grid.keys {
            let _ = writeln!(
                legend,
                "<rect x=\"4\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"22\" y=\"{}\">{} - {}</text>",
                hex_rgb(k.rgb),
                y + 11,
                xml_escape(&k.name),
                xml_escape(&k.describe)
            );
            y += LEGEND_ROW_PX;
        }
        for f in footer {
            let _ = writeln!(
                legend,
                "<text x=\"4\" y=\"{}\">{}</text>",
                y + 11,
                xml_escape(f)
            );
            y += LEGEND_ROW_PX;
        }
        let width = self.width().max(560);
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">\n<style>text{{font-family:monospace;font-size:12px;fill:#222}} .sec{{font-weight:bold}} .gap{{fill:#888;font-style:italic}} .row{{font-size:10px;fill:#555}}</style>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text x=\"4\" y=\"18\" class=\"sec\">{}</text>\n{}{}</svg>\n",
            y + 10,
            y + 10,
            xml_escape(&self.grid.title),
            self.body,
            legend
        );
        let sink = self
            .sink
            .take()
            .ok_or_else(|| Error::Usage("internal: SVG finished twice".into()))?;
        sink(doc.as_bytes())
    }
}

/// The PNG painter: `CELL_PX` square cells, a white band between sections, no text.
pub struct Png<F: FnOnce(&[u8]) -> Result<()>> {
    grid: Grid,
    cur: Cursor,
    /// One row of cells' keys, painted when complete.
    row: Vec<usize>,
    pixels: Vec<u8>,
    sink: Option<F>,
}

/// Pixel rows of white between sections in PNG pictures.
pub const PNG_SECTION_GAP: u64 = CELL_PX;

impl<F: FnOnce(&[u8]) -> Result<()>> Png<F> {
    /// A painter whose file goes to `sink`.
    pub fn new(grid: Grid, sink: F) -> Png<F> {
        Png {
            grid,
            cur: Cursor::new(),
            row: Vec::new(),
            pixels: Vec::new(),
            sink: Some(sink),
        }
    }

    /// The pixel width of the picture.
    pub fn width(grid: &Grid) -> u64 {
        grid.cols * CELL_PX
    }

    /// Where the cell `index` of section `section` lands: its top-left pixel.
    pub fn cell_origin(grid: &Grid, section: usize, index: u64) -> (u64, u64) {
        let mut y = 0;
        for s in grid.sections.iter().take(section) {
            y += s.cells.div_ceil(grid.cols) * CELL_PX + PNG_SECTION_GAP;
        }
        (
            (index % grid.cols) * CELL_PX,
            y + (index / grid.cols) * CELL_PX,
        )
    }

    fn paint_row(&mut self) {
        let w = Self::width(&self.grid) as usize;
        let mut line = vec![0xffu8; w * 3];
        for (i, k) in self.row.iter().enumerate() {
            let c = self.grid.keys.get(*k).map_or([0, 0, 0], |k| k.rgb);
            for px in 0..CELL_PX as usize {
                let o = (i * CELL_PX as usize + px) * 3;
                line[o..o + 3].copy_from_slice(&c);
            }
        }
        for _ in 0..CELL_PX {
            self.pixels.extend_from_slice(&line);
        }
        self.row.clear();
    }
}

impl<F: FnOnce(&[u8]) -> Result<()>> Painter for Png<F> {
    fn cell(&mut self, key: usize, _title: &str) -> Result<()> {
        self.row.push(key);
        let done = self.cur.step(&self.grid);
        if done || self.row.len() as u64 >= self.grid.cols {
            self.paint_row();
        }
        if done {
            let w = Self::width(&self.grid) as usize;
            self.pixels.extend(std::iter::repeat_n(
                0xffu8,
                w * 3 * PNG_SECTION_GAP as usize,
            ));
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, _footer: &[String]) -> Result<()> {
        if !self.row.is_empty() {
            self.paint_row();
        }
        let w = Self::width(&self.grid) as u32;
        let h = (self.pixels.len() / (w as usize * 3).max(1)) as u32;
        let mut buf = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut buf, w.max(1), h.max(1));
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let err = |e: png::EncodingError| Error::Usage(format!("PNG encoding failed: {e}"));
            let mut wr = enc.write_header().map_err(err)?;
            if h == 0 {
                self.pixels = vec![0xff; 3 * w.max(1) as usize];
            }
            wr.write_image_data(&self.pixels).map_err(err)?;
        }
        let sink = self
            .sink
            .take()
            .ok_or_else(|| Error::Usage("internal: PNG finished twice".into()))?;
        sink(&buf)
    }
}
