//! v2p, who and idle agree on the folio of a TAIL page (issue 10): a THP (madvise
//! MADV_HUGEPAGE on a 2 MiB-aligned anonymous region) and, when the kernel allows one, a
//! hugetlb page (vm.nr_hugepages raised by one, restored). The expected head PFN comes from
//! this process's own pagemap and /proc/kpageflags, not from pgtool.
//!
//! JSON fields read: v2p `head_pfn` and `folio_pages` (or `folio.head_pfn` / `folio.pages` /
//! `folio.order` if v2p nests them); who `folio.head_pfn`, `folio.pages`, `folio.order`; idle
//! `read -L --json` `head` (or `head_pfn` / `folio.head_pfn`), which has no order.

mod common;

use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PS: usize = 4096;
const HPAGE: usize = 2 << 20;
const KPF_HEAD: u64 = 1 << 15;
const KPF_TAIL: u64 = 1 << 16;
const KPF_HUGE: u64 = 1 << 17;
const KPF_THP: u64 = 1 << 22;

fn word(path: &str, index: u64) -> u64 {
    let f = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, index * 8)
        .unwrap_or_else(|e| panic!("{path} @ {index}: {e}"));
    u64::from_ne_bytes(b)
}

fn pfn_of(vaddr: usize) -> Option<u64> {
    let w = word("/proc/self/pagemap", (vaddr / PS) as u64);
    (w >> 63 == 1)
        .then_some(w & ((1 << 55) - 1))
        .filter(|&p| p != 0)
}

fn kpageflags(pfn: u64) -> u64 {
    word("/proc/kpageflags", pfn)
}

fn need_root(test: &str) -> bool {
    if !common::is_root() || File::open("/proc/kpageflags").is_err() {
        common::skip(&format!(
            "{test}: needs root and /proc/kpageflags (PFNs are hidden otherwise)"
        ));
        return true;
    }
    false
}

fn json(args: &[&str]) -> Result<Vec<Value>, String> {
    let r = common::pgtool(args);
    if r.code != 0 {
        return Err(format!(
            "pgtool {args:?}: exit {}: {}",
            r.code,
            r.stderr.trim()
        ));
    }
    Ok(common::json_lines(&r.stdout))
}

/// A number at `keys` (tried in order: a plain key, or `a.b` for a nested one).
fn num(v: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| {
        let mut x = v;
        for part in k.split('.') {
            x = x.get(part)?;
        }
        x.as_u64()
    })
}

/// Checks that every tool reports `head` and `order` for `tail`, mapped at `vaddr` here.
fn agree(what: &str, vaddr: usize, tail: u64, head: u64, order: u32) {
    let me = std::process::id().to_string();
    let va = format!("{vaddr:#x}");
    // v2p
    let v = json(&["v2p", &me, &va, "--json"]).expect("v2p");
    let r = v
        .iter()
        .find(|r| r["pfn"].as_u64() == Some(tail))
        .unwrap_or_else(|| panic!("{what}: v2p has no row for PFN {tail:#x}: {v:?}"));
    assert_eq!(
        num(r, &["head_pfn", "folio.head_pfn"]),
        Some(head),
        "{what}: v2p head: {r}"
    );
    let pages = num(r, &["folio_pages", "folio.pages"]);
    assert_eq!(pages, Some(1 << order), "{what}: v2p folio pages: {r}");
    if let Some(o) = num(r, &["folio_order", "folio.order"]) {
        assert_eq!(o, u64::from(order), "{what}: v2p order: {r}");
    }
    // who
    let w = json(&["who", "--json", "--pid", &me, &format!("{tail:#x}")]).expect("who");
    assert_eq!(w.len(), 1, "{what}: who: {w:?}");
    assert_eq!(
        num(&w[0], &["folio.head_pfn"]),
        Some(head),
        "{what}: who: {}",
        w[0]
    );
    assert_eq!(
        num(&w[0], &["folio.pages"]),
        Some(1 << order),
        "{what}: who: {}",
        w[0]
    );
    assert_eq!(
        num(&w[0], &["folio.order"]),
        Some(u64::from(order)),
        "{what}: who"
    );
    assert_eq!(
        num(&w[0], &["vaddr"]),
        Some(vaddr as u64),
        "{what}: who: {}",
        w[0]
    );
    // idle (needs CONFIG_IDLE_PAGE_TRACKING); it shows the head, not the order. Without the
    // bitmap here, the qemu kernel checks the same agreement (tests/kernel/guest/60-folio.sh).
    if File::open("/sys/kernel/mm/page_idle/bitmap").is_err() {
        eprintln!(
            "{what}: idle's head is checked in the qemu kernel (guest/60-folio.sh): no page_idle here"
        );
        return;
    }
    let range = format!("{vaddr:#x}+0x1000");
    let i = json(&[
        "idle", "read", "--pid", &me, "--addr", &range, "-L", "--json",
    ])
    .expect("idle");
    let r = i
        .iter()
        .find(|r| r["pfn"].as_u64() == Some(tail))
        .unwrap_or_else(|| panic!("{what}: idle has no row for PFN {tail:#x}: {i:?}"));
    assert_eq!(
        num(r, &["head", "head_pfn", "folio.head_pfn"]),
        Some(head),
        "{what}: idle head: {r}"
    );
}

#[test]
fn thp_tail_folio_agrees() {
    if need_root("thp_tail_folio_agrees") {
        return;
    }
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !(mode.contains("[always]") || mode.contains("[madvise]")) {
        common::skip(&format!(
            "thp_tail_folio_agrees: THP disabled: {}",
            mode.trim()
        ));
        return;
    }
    // SAFETY: a fresh private anonymous mapping, twice the huge page size for alignment.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * HPAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(raw, libc::MAP_FAILED);
    let base = (raw as usize).next_multiple_of(HPAGE);
    let is_thp = |p: Option<u64>| {
        p.is_some_and(|p| kpageflags(p) & (KPF_HEAD | KPF_THP) == KPF_HEAD | KPF_THP)
    };
    // SAFETY: madvise and writes inside our mapping.
    unsafe {
        libc::madvise(base as *mut libc::c_void, HPAGE, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(base as *mut u8, 1, HPAGE);
        if !is_thp(pfn_of(base)) {
            libc::madvise(
                base as *mut libc::c_void,
                HPAGE,
                25, /* MADV_COLLAPSE */
            );
        }
    }
    let Some(head) = pfn_of(base).filter(|&p| is_thp(Some(p))) else {
        common::skip("thp_tail_folio_agrees: no THP for the region (fragmented memory?)");
        // SAFETY: our mapping.
        unsafe { libc::munmap(raw, 2 * HPAGE) };
        return;
    };
    let tail = head + 5;
    assert_eq!(pfn_of(base + 5 * PS), Some(tail));
    assert_ne!(kpageflags(tail) & KPF_TAIL, 0, "tail flag on {tail:#x}");
    agree("THP", base + 5 * PS, tail, head, 9);
    // SAFETY: our mapping.
    unsafe { libc::munmap(raw, 2 * HPAGE) };
}

/// Restores vm.nr_hugepages on drop.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/vm/nr_hugepages", &self.0);
    }
}

#[test]
fn hugetlb_tail_folio_agrees() {
    if need_root("hugetlb_tail_folio_agrees") {
        return;
    }
    let Ok(before) = std::fs::read_to_string("/proc/sys/vm/nr_hugepages") else {
        common::skip("hugetlb_tail_folio_agrees: no /proc/sys/vm/nr_hugepages (CONFIG_HUGETLBFS)");
        return;
    };
    let before = before.trim().to_string();
    let n: u64 = before.parse().unwrap_or(0);
    let _restore = Restore(before);
    if std::fs::write("/proc/sys/vm/nr_hugepages", (n + 1).to_string()).is_err() {
        common::skip("hugetlb_tail_folio_agrees: cannot raise vm.nr_hugepages");
        return;
    }
    // SAFETY: a fresh private hugetlb mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            HPAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        common::skip("hugetlb_tail_folio_agrees: no free 2 MiB hugetlb page (memory fragmented?)");
        return;
    }
    let base = p as usize;
    // SAFETY: writing inside our mapping faults the huge page in.
    unsafe { std::ptr::write_bytes(p.cast::<u8>(), 9, PS) };
    let head = pfn_of(base).expect("hugetlb page present");
    let tail = pfn_of(base + 7 * PS).expect("tail present");
    assert_eq!(tail, head + 7);
    assert_ne!(kpageflags(tail) & KPF_HUGE, 0, "huge flag on {tail:#x}");
    agree("hugetlb", base + 7 * PS, tail, head, 9);
    // SAFETY: our mapping.
    unsafe { libc::munmap(p, HPAGE) };
}
