//! `/proc/PID/smaps_rollup`: the kernel's own per-process sums, used where pages cannot be read
//! (not root: pagemap hides PFNs; a snapshot without pagemap). It has RSS, PSS and its split,
//! swap and SwapPss, private (USS-like) and dirty sizes, but no page flags: no THP, zero-page
//! or per-memcg attribution, no file/shmem RSS.

use super::usage::UsageBytes;
use std::collections::HashMap;

/// The `Key:   N kB` fields of smaps or smaps_rollup text, in bytes. Lines that are not such a
/// field (the header line, `VmFlags:`) are skipped.
pub fn parse_kb_fields(text: &str) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let Some(n) = v.trim().strip_suffix(" kB") else {
            continue;
        };
        if let Ok(n) = n.trim().parse::<u64>() {
            m.insert(k.to_string(), n.saturating_mul(1024));
        }
    }
    m
}

/// The figures smaps_rollup text gives, `None` when it has no `Rss:` field (not a rollup).
pub fn usage_from_rollup(text: &str) -> Option<UsageBytes> {
    let m = parse_kb_fields(text);
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    let rss = *m.get("Rss")?;
    let private = g("Private_Clean").saturating_add(g("Private_Dirty"));
    let opt = |k: &str| m.get(k).copied();
    Some(UsageBytes {
        rss_bytes: rss,
        pss_bytes: g("Pss"),
        uss_bytes: Some(private),
        shared_bytes: Some(g("Shared_Clean").saturating_add(g("Shared_Dirty"))),
        swap_bytes: g("Swap"),
        swap_pss_bytes: g("SwapPss"),
        anon_bytes: g("Anonymous"),
        file_bytes: None,
        shmem_bytes: None,
        pss_anon_bytes: g("Pss_Anon"),
        pss_file_bytes: g("Pss_File"),
        pss_shmem_bytes: g("Pss_Shmem"),
        thp_bytes: None,
        ksm_bytes: opt("KSM"),
        zero_page_bytes: None,
        hugetlb_bytes: g("Shared_Hugetlb").saturating_add(g("Private_Hugetlb")),
        dirty_bytes: Some(g("Private_Dirty").saturating_add(g("Shared_Dirty"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_fields() {
        let t = "55d0-7ffe ---p 00000000 00:00 0  [rollup]\nRss:  100 kB\nPss:  60 kB\n\
                 Pss_Anon: 40 kB\nPrivate_Clean: 8 kB\nPrivate_Dirty: 32 kB\nSwap: 4 kB\n\
                 SwapPss: 2 kB\nShared_Clean: 60 kB\n";
        let u = usage_from_rollup(t).expect("rollup");
        assert_eq!(u.rss_bytes, 100 << 10);
        assert_eq!(u.uss_bytes, Some(40 << 10));
        assert_eq!((u.swap_bytes, u.swap_pss_bytes), (4 << 10, 2 << 10));
        assert_eq!(u.thp_bytes, None);
        assert!(usage_from_rollup("garbage\n").is_none());
    }
}
