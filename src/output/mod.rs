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

pub mod metrics;
pub mod picture;
mod table;

pub use table::terminal_width;

use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
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
    csv_keys: Option<Vec<String>>,
    table: table::Table,
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
            table: table::Table::new(width),
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
                // Serialize whole, so a closed pipe surfaces as a write error, not a serde one.
                let mut line =
                    serde_json::to_vec(rec).map_err(|e| stdout_error(io::Error::other(e)))?;
                line.push(b'\n');
                self.out.write_all(&line).map_err(stdout_error)
            }
            Format::Csv => {
                let fields = flatten(rec)?;
                if self.csv_keys.is_none() {
                    let keys: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
                    self.csv_line(keys.iter().map(String::as_str))?;
                    self.csv_keys = Some(keys);
                }
                // A nested object that is null in this record (a total row's `vma`) flattens to
                // one key: every header column is looked up by name, so nothing shifts.
                let keys = self.csv_keys.as_deref().unwrap_or_default();
                let cells: Vec<String> = if fields.len() == keys.len()
                    && fields.iter().zip(keys).all(|((k, _), h)| k == h)
                {
                    fields.iter().map(|(k, v)| cell(k, v, false)).collect()
                } else {
                    keys.iter()
                        .map(|h| {
                            fields
                                .iter()
                                .find(|(k, _)| k == h)
                                .map(|(k, v)| cell(k, v, false))
                                .unwrap_or_default()
                        })
                        .collect()
                };
                self.csv_line(cells.iter().map(String::as_str))
            }
            Format::Table => {
                let fields = flatten(rec)?;
                self.table.push::<R, W>(fields, &mut self.out)
            }
        }
    }

    fn csv_line<'a>(&mut self, cells: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(cells)
            .map_err(|e| stdout_error(io::Error::other(e)))?;
        let bytes = w
            .into_inner()
            .map_err(|e| stdout_error(io::Error::other(e.to_string())))?;
        self.out.write_all(&bytes).map_err(stdout_error)
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
}

/// The record as flattened `(key, value)` pairs in serde's field order.
pub fn flatten<R: Serialize>(rec: &R) -> Result<Vec<(String, Value)>> {
    let v = serde_json::to_value(rec).map_err(|e| stdout_error(io::Error::other(e)))?;
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten_into(k, v, &mut out);
            }
        }
        other => out.push(("value".to_string(), other)),
    }
    Ok(out)
}

fn flatten_into(key: String, v: Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten_into(format!("{key}_{k}"), v, out);
            }
        }
        other => out.push((key, other)),
    }
}

/// A flattened value as text: `human` is the table's rendering, else CSV's.
pub fn cell(key: &str, v: &Value, human: bool) -> String {
    match v {
        Value::Null => {
            if human {
                "-".into()
            } else {
                String::new()
            }
        }
        Value::Bool(b) => {
            if human {
                if *b { "yes" } else { "no" }.into()
            } else {
                b.to_string()
            }
        }
        Value::Number(n) => match n.as_u64() {
            Some(u) if is_hex_key(key) => format!("{u:#x}"),
            Some(u) if human && key.ends_with("_bytes") => human_bytes(u),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => cell(key, other, human),
            })
            .collect::<Vec<_>>()
            .join("|"),
        Value::Object(_) => v.to_string(),
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
        let v: Value = serde_json::from_str(out.trim()).expect("json");
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
