//! The one output layer. A listing is a stream of records, each one typed `Serialize` struct
//! implementing [`Record`]; a [`Sink`] renders them as a human table, JSON Lines or CSV, and
//! [`metrics`] writes the Prometheus textfile. Subcommands never format listings themselves.
//!
//! # The vocabulary
//! The representation of a field follows its name, the same in every command:
//! - JSON: the record as serde writes it: numbers are numbers, unknown is `null`, `flags` is an
//!   array of names, nested objects stay nested.
//! - CSV and tables: nested objects are flattened with `_` (`vma.start` -> `vma_start`); the
//!   CSV header is the JSON keys in the same order; arrays are joined with `|`; `null` is empty
//!   in CSV and `-` in tables. Addresses, PFNs and raw words ([`is_hex_key`]: `pfn`, `vaddr`,
//!   `addr`, `phys_addr`, `start`, `end`, and keys ending `_pfn`, `_addr`, `_vaddr`, `_start`,
//!   `_end`, `_raw`) are `0x` hex. Sizes (keys ending `_bytes`) are exact bytes in CSV and
//!   human (`4.0M`) in tables.
//! - 64-bit raw words (`flags_raw`, `pagemap_raw`) also come as a `_hex` string beside the
//!   number, because common JSON readers round integers above 2^53.

mod flat;
mod json;
pub mod metrics;
pub mod picture;
mod ser_error;
mod table;

pub use table::terminal_width;

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::{self, Write};

/// How a listing is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An aligned table for people, fitted to the terminal (100 columns when not a terminal).
    #[default]
    Table,
    /// JSON Lines: one object per record.
    Json,
    /// CSV with a header row.
    Csv,
}

/// One kind of listed thing. The JSON keys are the struct's serde field names.
pub trait Record: Serialize {
    /// Flattened keys the table shows, in order (JSON and CSV always have every key). Empty:
    /// every key.
    const TABLE_COLUMNS: &'static [&'static str] = &[];
    /// A key (or prefix of flattened keys, e.g. `vma`) whose value the table prints once as a
    /// group header line when it changes, instead of repeating it in a column.
    const TABLE_GROUP: Option<&'static str> = None;
}

/// True for keys whose numbers are addresses, PFNs or raw words: hex in CSV and tables.
pub fn is_hex_key(key: &str) -> bool {
    matches!(
        key,
        "pfn" | "vaddr" | "addr" | "phys_addr" | "start" | "end"
    ) || ["_pfn", "_addr", "_vaddr", "_start", "_end", "_raw"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// `0x` followed by the lowercase hex digits of `v`: the `_hex` companion of a raw word.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Bytes as people read them: `512`, `4.0K`, `1.5M`, `2.0G` (binary multiples).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if b < 1024 {
        return b.to_string();
    }
    let mut v = b as f64;
    let mut u = 0;
    v /= 1024.0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}

/// The error for a failed write to stdout: a closed pipe ends the program quietly (exit 0,
/// see [`Error::is_broken_pipe`]); anything else (a full disk) is an error, exit 2.
pub fn stdout_error(e: io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Renders records in one [`Format`] to a writer, streaming: memory stays bounded by one
/// record (JSON, CSV) or by the table's first batch, whatever the number of records.
pub struct Sink<W: Write> {
    format: Format,
    out: W,
    /// The CSV header's keys, and for each column whether its numbers are written in hex.
    csv_keys: Option<Vec<(String, bool)>>,
    /// A cell's text, reused from leaf to leaf and record to record.
    cell: String,
    table: table::Table,
    /// A line's bytes, reused from record to record.
    buf: Vec<u8>,
}

impl Sink<io::BufWriter<io::Stdout>> {
    /// A sink on stdout, the table fitted to the terminal's width.
    pub fn stdout(format: Format) -> Self {
        Sink::new(
            format,
            io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            table::terminal_width(),
        )
    }
}

impl<W: Write> Sink<W> {
    /// A sink on any writer; `width` is the most columns a table row may use.
    pub fn new(format: Format, out: W, width: usize) -> Self {
        Sink {
            format,
            out,
            csv_keys: None,
            cell: String::new(),
            table: table::Table::new(width),
            buf: Vec::new(),
        }
    }

    /// The format this sink renders.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Render one record.
    pub fn write<R: Record>(&mut self, rec: &R) -> Result<()> {
        match self.format {
            Format::Json => {
                // Serialize whole into a reused buffer, so a closed pipe surfaces as a write
                // error, not a serde one.
                self.buf.clear();
                json::write(&mut self.buf, rec).map_err(|e| stdout_error(io::Error::other(e)))?;
                self.buf.push(b'\n');
                self.out.write_all(&self.buf).map_err(stdout_error)
            }
            Format::Csv => self.write_csv(rec),
            Format::Table => self.table.push(rec, &mut self.out),
        }
    }

    fn write_csv<R: Record>(&mut self, rec: &R) -> Result<()> {
        if self.csv_keys.is_none() {
            let fields = fields(rec, false)?;
            let keys: Vec<(String, bool)> = fields
                .iter()
                .map(|f| (f.key.clone(), is_hex_key(&f.key)))
                .collect();
            self.buf.clear();
            for (i, (k, _)) in keys.iter().enumerate() {
                csv_cell(&mut self.buf, i, k);
            }
            self.buf.push(b'\n');
            self.csv_keys = Some(keys);
        }
        let keys = self.csv_keys.take().unwrap_or_default();
        // Fast path: the record's leaves come in the header's order (typed records do, unless a
        // nested object is null); each is rendered straight into the line, numbers and strings
        // without a copy (a listing is hundreds of thousands of rows: `render`'s formatting
        // machinery and a String per cell were most of a CSV row's cost).
        let mut line = std::mem::take(&mut self.buf);
        let mut text = std::mem::take(&mut self.cell);
        let header_len = line.len();
        let mut i = 0usize;
        let mut aligned = true;
        flat::walk(rec, &mut |k, leaf| {
            let Some((h, hex)) = keys.get(i).filter(|(h, _)| aligned && h == k) else {
                aligned = false;
                return;
            };
            match leaf {
                flat::Leaf::U64(u) => {
                    if i > 0 {
                        line.push(b',');
                    }
                    push_u64(&mut line, u, *hex);
                }
                flat::Leaf::Str(s) | flat::Leaf::Joined(s) => csv_cell(&mut line, i, s),
                _ => {
                    text.clear();
                    render(&mut text, h, &leaf, false);
                    csv_cell(&mut line, i, &text);
                }
            }
            i += 1;
        })
        .map_err(|e| stdout_error(io::Error::other(e)))?;
        self.cell = text;
        if !aligned || i != keys.len() {
            // A null nested object flattens to one key: look every column up by name.
            line.truncate(header_len);
            let fields = fields(rec, false)?;
            for (j, (h, _)) in keys.iter().enumerate() {
                let t = fields
                    .iter()
                    .find(|f| &f.key == h)
                    .map(|f| f.text.as_str())
                    .unwrap_or("");
                csv_cell(&mut line, j, t);
            }
        }
        line.push(b'\n');
        let r = self.out.write_all(&line).map_err(stdout_error);
        line.clear();
        self.buf = line;
        self.csv_keys = Some(keys);
        r
    }

    /// Print the table's last rows and flush everything to the writer. Call it once at the end
    /// (dropping a sink without it may lose the table's first batch).
    pub fn finish(mut self) -> Result<()> {
        self.table.flush(&mut self.out)?;
        self.out.flush().map_err(stdout_error)
    }

    /// Push what was written so far to the writer (a live sampler's interval).
    pub fn flush(&mut self) -> Result<()> {
        self.table.flush(&mut self.out)?;
        self.out.flush().map_err(stdout_error)
    }

    /// Print a line of text in table format only (a total, a heading); ignored in JSON and
    /// CSV, whose readers want records only.
    pub fn text(&mut self, line: &str) -> Result<()> {
        if self.format != Format::Table {
            return Ok(());
        }
        self.table.flush(&mut self.out)?;
        writeln!(self.out, "{line}").map_err(stdout_error)
    }

    /// A note under a table, cut at spaces to the table's width ([`wrap`]); nothing in JSON/CSV.
    /// (Lines that scripts parse keep [`Sink::text`], whole.)
    pub fn note(&mut self, text: &str) -> Result<()> {
        if self.format != Format::Table {
            return Ok(());
        }
        for part in wrap(text, self.table.width()) {
            self.text(&part)?;
        }
        Ok(())
    }
}

/// `text` cut at spaces into lines of at most `width` characters (a longer word stays whole),
/// continuation lines indented by three spaces, so that a table's notes fit its width.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let len = cur.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut cur, "   ".to_string()));
        }
        if !cur.is_empty() && !cur.ends_with("   ") {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    lines
}

/// One flattened leaf of a record, rendered.
#[derive(Clone, Debug)]
pub struct Field {
    /// The flattened key (`vma_start`).
    pub key: String,
    /// The text (the table's or CSV's rendering).
    pub text: String,
    /// A number or null (right-aligned in tables).
    pub number: bool,
}

/// The record's leaves in serde's field order, rendered for a table (`human`) or CSV.
pub fn fields<R: Serialize + ?Sized>(rec: &R, human: bool) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    flat::walk(rec, &mut |k, leaf| {
        let mut text = String::new();
        render(&mut text, k, &leaf, human);
        let number = matches!(
            leaf,
            flat::Leaf::Null | flat::Leaf::U64(_) | flat::Leaf::I64(_) | flat::Leaf::F64(_)
        );
        out.push(Field {
            key: k.to_string(),
            text,
            number,
        });
    })
    .map_err(|e| stdout_error(io::Error::other(e)))?;
    Ok(out)
}

/// A leaf as text by the vocabulary's rules: `human` is the table's rendering, else CSV's.
fn render(out: &mut String, key: &str, v: &flat::Leaf<'_>, human: bool) {
    use flat::Leaf;
    use std::fmt::Write;
    let _ = match v {
        Leaf::Null => {
            if human {
                out.push('-');
            }
            Ok(())
        }
        Leaf::Bool(b) if human => {
            out.push_str(if *b { "yes" } else { "no" });
            Ok(())
        }
        Leaf::Bool(b) => write!(out, "{b}"),
        Leaf::U64(u) if is_hex_key(key) => write!(out, "{u:#x}"),
        Leaf::U64(u) if human && key.ends_with("_bytes") => {
            out.push_str(&human_bytes(*u));
            Ok(())
        }
        Leaf::U64(u) => write!(out, "{u}"),
        Leaf::I64(i) => write!(out, "{i}"),
        Leaf::F64(f) => write!(out, "{f}"),
        Leaf::Str(s) | Leaf::Joined(s) => {
            out.push_str(s);
            Ok(())
        }
    };
}

/// Append `u` as `render` writes it: decimal, or `0x` and lowercase hex digits.
fn push_u64(line: &mut Vec<u8>, u: u64, hex: bool) {
    let mut tmp = [0u8; 20];
    if hex {
        line.extend_from_slice(b"0x");
        line.extend_from_slice(crate::digits::hex(u, &mut tmp));
    } else {
        line.extend_from_slice(crate::digits::decimal(u, &mut tmp));
    }
}

/// Append one CSV cell (the `i`th of its line), quoted when it must be (RFC 4180).
fn csv_cell(line: &mut Vec<u8>, i: usize, text: &str) {
    if i > 0 {
        line.push(b',');
    }
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || text.starts_with(' ')
        || text.ends_with(' ')
    {
        line.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Vma {
        start: u64,
        path: &'static str,
    }
    #[derive(Serialize)]
    struct Row {
        pid: u32,
        pfn: Option<u64>,
        flags: Vec<&'static str>,
        rss_bytes: u64,
        vma: Vma,
    }
    impl Record for Row {
        const TABLE_GROUP: Option<&'static str> = Some("vma");
    }

    fn row(pfn: Option<u64>, path: &'static str) -> Row {
        Row {
            pid: 7,
            pfn,
            flags: vec!["lru", "anonymous"],
            rss_bytes: 4096,
            vma: Vma {
                start: 0x1000,
                path,
            },
        }
    }

    fn render(format: Format, rows: &[Row]) -> String {
        let mut buf = Vec::new();
        let mut s = Sink::new(format, &mut buf, 100);
        for r in rows {
            s.write(r).expect("write");
        }
        s.finish().expect("finish");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn csv_numbers_are_renders_numbers() {
        for u in [0u64, 1, 9, 10, 15, 16, 255, 0x1c20b, u64::MAX] {
            for (key, hex) in [("pid", false), ("pfn", true)] {
                let (mut fast, mut slow) = (Vec::new(), String::new());
                push_u64(&mut fast, u, hex);
                super::render(&mut slow, key, &flat::Leaf::U64(u), false);
                assert_eq!(String::from_utf8(fast).expect("ascii"), slow, "{key} {u}");
            }
        }
    }

    #[test]
    fn csv_header_is_the_flattened_json_keys() {
        let out = render(
            Format::Csv,
            &[row(Some(0x1c20b), "/bin/x"), row(None, "/bin/x")],
        );
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("pid,pfn,flags,rss_bytes,vma_start,vma_path")
        );
        assert_eq!(
            lines.next(),
            Some("7,0x1c20b,lru|anonymous,4096,0x1000,/bin/x")
        );
        assert_eq!(lines.next(), Some("7,,lru|anonymous,4096,0x1000,/bin/x"));
    }

    #[derive(Serialize)]
    struct Total {
        pid: u32,
        vma: Option<Vma>,
        pages: u64,
    }
    impl Record for Total {}

    #[test]
    fn csv_rows_with_a_null_object_keep_their_columns() {
        let mut buf = Vec::new();
        let mut s = Sink::new(Format::Csv, &mut buf, 100);
        s.write(&Total {
            pid: 1,
            vma: Some(Vma {
                start: 16,
                path: "/x",
            }),
            pages: 3,
        })
        .expect("w");
        s.write(&Total {
            pid: 1,
            vma: None,
            pages: 9,
        })
        .expect("w");
        s.finish().expect("finish");
        let out = String::from_utf8(buf).expect("utf8");
        assert_eq!(out, "pid,vma_start,vma_path,pages\n1,0x10,/x,3\n1,,,9\n");
    }

    #[test]
    fn json_lines_keep_numbers_and_nesting() {
        let out = render(Format::Json, &[row(Some(5), "/bin/x")]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        assert_eq!(v["pfn"], 5);
        assert_eq!(v["vma"]["start"], 4096);
        assert_eq!(v["flags"][1], "anonymous");
    }

    #[test]
    fn table_groups_and_humanises() {
        let out = render(
            Format::Table,
            &[row(Some(5), "/a"), row(Some(6), "/a"), row(None, "/b")],
        );
        assert_eq!(out.matches("vma:").count(), 2, "{out}");
        assert!(out.contains("4.0K"), "{out}");
        assert!(out.contains("0x6"), "{out}");
        assert!(!out.contains("vma_start"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(1023), "1023");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(2 << 30), "2.0G");
    }
}
