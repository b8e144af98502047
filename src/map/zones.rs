//! Zones and the pageblock size, from `/proc/zoneinfo` and `/proc/pagetypeinfo`.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use serde::Serialize;

/// Pageblock order used when the kernel does not say (x86-64: 9, i.e. 2 MiB blocks).
pub const DEFAULT_PAGEBLOCK_ORDER: u32 = 9;

/// One memory zone of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// NUMA node.
    pub node: u32,
    /// Zone name (DMA, DMA32, Normal, Movable, Device).
    pub zone: String,
    /// First PFN the zone spans.
    pub start_pfn: u64,
    /// Pages spanned (holes included).
    pub spanned_pages: u64,
}

impl Zone {
    /// True when `pfn` is inside the zone's span.
    pub fn contains(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn - self.start_pfn < self.spanned_pages
    }
}

/// Parse `/proc/zoneinfo`: the `Node N, zone NAME` headers with their `spanned` and
/// `start_pfn` lines. Zones that span nothing are left out.
pub fn parse_zoneinfo(text: &str) -> Vec<Zone> {
    let mut zones = Vec::new();
    let mut cur: Option<Zone> = None;
    let push = |z: Option<Zone>, zones: &mut Vec<Zone>| {
        if let Some(z) = z.filter(|z| z.spanned_pages > 0) {
            zones.push(z);
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Node ") {
            push(cur.take(), &mut zones);
            let mut parts = rest.splitn(2, ", zone");
            let node = parts.next().and_then(|n| n.trim().parse().ok());
            let name = parts.next().map(|z| z.trim().to_string());
            if let (Some(node), Some(zone)) = (node, name) {
                cur = Some(Zone {
                    node,
                    zone,
                    start_pfn: 0,
                    spanned_pages: 0,
                });
            }
        } else if let Some(z) = cur.as_mut() {
            let mut it = t.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
                (Some("spanned"), Some(v)) => z.spanned_pages = v,
                (Some("start_pfn:"), Some(v)) => z.start_pfn = v,
                _ => {}
            }
        }
    }
    push(cur.take(), &mut zones);
    zones
}

/// The zones of `root` (empty when `/proc/zoneinfo` is missing, e.g. an old snapshot).
pub fn read_zones(root: &SysRoot) -> Vec<Zone> {
    std::fs::read_to_string(root.proc().join("zoneinfo"))
        .map(|t| parse_zoneinfo(&t))
        .unwrap_or_default()
}

/// The pageblock order the kernel reports in `/proc/pagetypeinfo` ("Page block order: 9"),
/// `DEFAULT_PAGEBLOCK_ORDER` when it is not readable, and an error when it says nonsense.
pub fn pageblock_order(root: &SysRoot) -> Result<u32> {
    let path = root.proc().join("pagetypeinfo");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(DEFAULT_PAGEBLOCK_ORDER);
    };
    for line in text.lines().take(8) {
        if let Some(v) = line.strip_prefix("Page block order:") {
            return match v.trim().parse::<u32>() {
                Ok(o) if o <= 20 => Ok(o),
                _ => Err(Error::Parse {
                    path,
                    line: 1,
                    msg: format!("bad page block order {:?}", v.trim()),
                }),
            };
        }
    }
    Ok(DEFAULT_PAGEBLOCK_ORDER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoneinfo_spans() {
        let text = "Node 0, zone      DMA\n  per-node stats\n  pages free     3840\n        spanned  4095\n        present  3998\n  start_pfn:           1\nNode 0, zone   Normal\n        spanned  0\n  start_pfn:           0\nNode 1, zone    DMA32\n        spanned  100\n  start_pfn:           4096\n";
        let z = parse_zoneinfo(text);
        assert_eq!(z.len(), 2);
        assert_eq!(
            (
                z[0].node,
                z[0].zone.as_str(),
                z[0].start_pfn,
                z[0].spanned_pages
            ),
            (0, "DMA", 1, 4095)
        );
        assert_eq!(
            (z[1].node, z[1].zone.as_str(), z[1].start_pfn),
            (1, "DMA32", 4096)
        );
        assert!(z[1].contains(4195) && !z[1].contains(4196));
    }
}
