//! `--prometheus FILE`: the summary as a textfile for node_exporter's textfile collector,
//! through the one metrics writer. One series per flag set (bounded: page-types' table holds
//! at most a few thousand sets, a live system a few hundred), named with their unit.

use super::table::Table;
use crate::error::Result;
use crate::kpageflags::PageFlags;
use crate::output::metrics::{Kind, Metrics};
use std::path::Path;

/// The metrics of a summary: `pgtool_types_pages{flags="..."}` and
/// `pgtool_types_page_size_bytes`.
pub fn of_table(t: &Table, page_size: u64) -> Result<Metrics> {
    let mut m = Metrics::new();
    let pages = m.family(
        "pgtool_types_pages",
        "Pages per page-types flag set (flag names joined with |, \"none\" for no flag; \
         well-known flags only unless -r), as selected by the run's -a/-b/-c/-p/-f.",
        Kind::Gauge,
    )?;
    for (v, n) in t.rows() {
        let names: Vec<_> = PageFlags::from_bits_retain(v).names().collect();
        let label = if names.is_empty() {
            "none".to_string()
        } else {
            names.join("|")
        };
        pages.add(&[("flags", &label)], n as f64);
    }
    m.family(
        "pgtool_types_page_size_bytes",
        "The page size the pages are counted in.",
        Kind::Gauge,
    )?
    .add(&[], page_size as f64);
    Ok(m)
}

/// Write the summary's metrics to `path` (atomically, through the safe write path).
pub fn write(path: &Path, t: &Table, page_size: u64) -> Result<()> {
    of_table(t, page_size)?.write_textfile(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_flag_set() {
        let mut t = Table::default();
        t.add(0x28, 3).expect("add");
        t.add(0, 2).expect("add");
        let text = of_table(&t, 4096).expect("metrics").render();
        assert!(
            text.contains("pgtool_types_pages{flags=\"uptodate|lru\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("pgtool_types_pages{flags=\"none\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE pgtool_types_pages gauge\n"), "{text}");
        assert!(
            text.contains("pgtool_types_page_size_bytes 4096\n"),
            "{text}"
        );
        assert!(!text.contains("_total"), "{text}");
    }
}
