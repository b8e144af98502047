//! Drawing the map: the grid's shape from the RAM layout (holes between RAM ranges skipped and
//! labelled with what iomem says is there), the legend, and the totals per zone.

use super::{Block, CLASSES, Class, Layout, ScanOptions, ZoneTotals, scan};
use crate::error::Result;
use crate::iomem::Iomem;
use crate::output::human_bytes;
use crate::output::picture::{Grid, Key, Painter, Section};
use crate::root::SysRoot;

/// The legend of the class map, in [`CLASSES`] order (a block's key index is its class's).
pub fn class_keys() -> Vec<Key> {
    CLASSES
        .iter()
        .map(|c| Key {
            name: c.name().into(),
            describe: c.describe().into(),
            rgb: c.rgb(),
            letter: c.letter(),
        })
        .collect()
}

/// Colours for memcgs, most blocks first.
const MEMCG_RGB: [[u8; 3]; 12] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
    [0x39, 0x3b, 0x79],
    [0x63, 0x79, 0x39],
    [0x84, 0x3c, 0x39],
];

/// The grid for `layout` with `cols` cells per row.
pub fn grid(root: &SysRoot, layout: &Layout, cols: u64, keys: Vec<Key>, title: String) -> Grid {
    let iomem = Iomem::read(root).ok();
    let ps = crate::addr::page_size();
    let mut sections = Vec::new();
    let mut prev_end: Option<u64> = None;
    for r in &layout.ram {
        let blocks = layout.blocks_of(r);
        let start = blocks.start * layout.block_pages * ps;
        let gap_before = prev_end.filter(|&e| e < r.start).map(|e| {
            let (a, b) = (e * ps, r.start * ps);
            let names: Vec<String> = iomem
                .as_ref()
                .map(|io| {
                    let mut v: Vec<String> = io
                        .regions
                        .iter()
                        .filter(|x| x.depth == 0 && x.start < b && x.end >= a)
                        .map(|x| x.name.clone())
                        .collect();
                    v.dedup();
                    v.truncate(4);
                    v
                })
                .unwrap_or_default();
            let what = if names.is_empty() {
                "not RAM".to_string()
            } else {
                names.join(", ")
            };
            format!(
                "  ... skipped {a:#x}-{:#x} ({}): {what}",
                b - 1,
                human_bytes(b - a)
            )
        });
        sections.push(Section {
            label: format!(
                "System RAM {:#x}-{:#x} ({})",
                r.start * ps,
                r.end * ps - 1,
                human_bytes((r.end - r.start) * ps)
            ),
            start,
            cells: blocks.end - blocks.start,
            gap_before,
        });
        prev_end = Some(r.end);
    }
    Grid {
        title,
        cols,
        cell_step: layout.block_bytes(),
        sections,
        keys,
        time_rows: None,
    }
}

/// The hover text of a block.
pub fn block_title(b: &Block) -> String {
    let mut s = format!(
        "{:#x} pfn {:#x} {}",
        b.phys_addr,
        b.start_pfn,
        b.class.name()
    );
    if let Some(z) = &b.zone {
        s.push_str(&format!(" node {} {z}", b.node.unwrap_or(0)));
    }
    for c in CLASSES {
        let n = b.count(c);
        if n > 0 {
            s.push_str(&format!(" {}={n}", c.name()));
        }
    }
    s
}

/// Totals per zone (in the order zones are met) and over everything (last, zone null).
#[derive(Debug, Default)]
pub struct Totals {
    /// Per zone.
    pub zones: Vec<ZoneTotals>,
    /// Everything.
    pub all: ZoneTotals,
}

impl Totals {
    /// Count a block.
    pub fn add(&mut self, b: &Block) {
        self.all.add(b);
        match self
            .zones
            .iter_mut()
            .find(|z| z.node == b.node && z.zone == b.zone)
        {
            Some(z) => z.add(b),
            None => {
                let mut z = ZoneTotals {
                    node: b.node,
                    zone: b.zone.clone(),
                    ..ZoneTotals::default()
                };
                z.add(b);
                self.zones.push(z);
            }
        }
    }

    /// Lines for a picture's footer.
    pub fn lines(&self, block_bytes: u64) -> Vec<String> {
        let bs = human_bytes(block_bytes);
        let mut v = Vec::new();
        let line = |name: &str, t: &ZoneTotals| {
            format!(
                "{name}: {} blocks of {bs}: {} entirely free, {} free but for unmovable pages; {} of {} pages free",
                t.blocks, t.free_blocks, t.blocked_by_unmovable_blocks, t.free_pages, t.pages
            )
        };
        for z in &self.zones {
            let name = match (&z.zone, z.node) {
                (Some(zn), Some(n)) => format!("node {n} {zn}"),
                _ => "outside every zone".to_string(),
            };
            v.push(line(&name, z));
        }
        v.push(line("all", &self.all));
        v
    }
}

/// The totals as Prometheus families: blocks by worst class, entirely free blocks and blocks
/// free but for unmovable pages, per node and zone (bounded labels: node, zone, class).
pub fn metrics(totals: &Totals, block_bytes: u64) -> Result<crate::output::metrics::Metrics> {
    use crate::output::metrics::{Kind, Metrics};
    let mut m = Metrics::new();
    m.family(
        "pgtool_map_block_size_bytes",
        "Bytes per pageblock (one cell of the map).",
        Kind::Gauge,
    )?
    .add(&[], block_bytes as f64);
    let label = |z: &ZoneTotals| {
        (
            z.node.map_or_else(|| "none".to_string(), |n| n.to_string()),
            z.zone.clone().unwrap_or_else(|| "none".to_string()),
        )
    };
    for z in &totals.zones {
        let (node, zone) = label(z);
        let l = [("node", node.as_str()), ("zone", zone.as_str())];
        for (c, n) in CLASSES.iter().zip(z.blocks_by_class.0) {
            m.family(
                "pgtool_map_blocks",
                "Pageblocks by their worst page for compaction (free < noflags < file < anon < thp < hugetlb < pgtable < slab < kernel < reserved < hwpoison).",
                Kind::Gauge,
            )?
            .add(&[l[0], l[1], ("class", c.name())], n as f64);
        }
        m.family(
            "pgtool_map_free_blocks",
            "Pageblocks whose every page is free.",
            Kind::Gauge,
        )?
        .add(&l, z.free_blocks as f64);
        m.family(
            "pgtool_map_unmovable_blocked_blocks",
            "Pageblocks free but for unmovable pages: compaction cannot free them.",
            Kind::Gauge,
        )?
        .add(&l, z.blocked_by_unmovable_blocks as f64);
        m.family(
            "pgtool_map_free_pages",
            "Free pages (buddy, and count-0 pages without flags).",
            Kind::Gauge,
        )?
        .add(&l, z.free_pages as f64);
    }
    Ok(m)
}

/// Scan and paint by class; returns the totals.
pub fn draw_by_class(
    root: &SysRoot,
    layout: &Layout,
    opts: ScanOptions,
    painter: &mut dyn Painter,
) -> Result<Totals> {
    let mut totals = Totals::default();
    scan(root, layout, opts, |b| {
        totals.add(b);
        let key = CLASSES.iter().position(|c| *c == b.class).unwrap_or(0);
        painter.cell(key, &block_title(b))
    })?;
    Ok(totals)
}

/// Scan, then paint by memcg: the blocks' (memcg, class) are kept (16 bytes a block) to
/// choose the legend's memcgs (the most blocks first) before painting.
pub fn draw_by_memcg(
    root: &SysRoot,
    layout: &Layout,
    opts: ScanOptions,
    make_painter: impl FnOnce(Vec<Key>) -> Result<Box<dyn Painter>>,
) -> Result<(Totals, Box<dyn Painter>)> {
    let mut totals = Totals::default();
    let mut cells: Vec<(Option<u64>, Class)> = Vec::new();
    scan(
        root,
        layout,
        ScanOptions {
            memcg: true,
            ..opts
        },
        |b| {
            totals.add(b);
            cells.push((b.memcg_ino, b.class));
            Ok(())
        },
    )?;
    let mut counts: hashbrown::HashMap<u64, u64> = hashbrown::HashMap::new();
    for (m, _) in &cells {
        if let Some(m) = m {
            *counts.entry(*m).or_insert(0) += 1;
        }
    }
    let mut top: Vec<(u64, u64)> = counts.into_iter().collect();
    top.sort_by_key(|&(ino, n)| (std::cmp::Reverse(n), ino));
    top.truncate(MEMCG_RGB.len());
    let index = crate::cgroup::CgroupIndex::build(root).ok();
    let mut keys = vec![
        Key {
            name: "free".into(),
            describe: "free (no memcg)".into(),
            rgb: Class::Free.rgb(),
            letter: '.',
        },
        Key {
            name: "kernel".into(),
            describe: "allocated, charged to no memcg".into(),
            rgb: [0x60, 0x60, 0x60],
            letter: 'k',
        },
        Key {
            name: "other".into(),
            describe: "a memcg not in this legend".into(),
            rgb: [0xa0, 0xa0, 0x60],
            letter: 'o',
        },
    ];
    for (i, (ino, n)) in top.iter().enumerate() {
        let path = index
            .as_ref()
            .and_then(|x| x.path_of(*ino))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("memcg inode {ino}"));
        let letter = char::from_digit(i as u32, 36).unwrap_or('?');
        keys.push(Key {
            name: format!("memcg{i}"),
            describe: format!("{path} ({n} blocks)"),
            rgb: MEMCG_RGB[i],
            letter,
        });
    }
    let mut painter = make_painter(keys)?;
    // Hover titles of the memcg map name the memcg; the counts are in the class map's.
    for (m, class) in &cells {
        let key = match m {
            None if class.free() => 0,
            None => 1,
            Some(ino) => top.iter().position(|(t, _)| t == ino).map_or(2, |i| 3 + i),
        };
        let title = match m {
            Some(ino) => format!("memcg inode {ino}, worst page {}", class.name()),
            None => class.name().to_string(),
        };
        painter.cell(key, &title)?;
    }
    Ok((totals, painter))
}
