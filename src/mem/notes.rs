//! What the figures mean on this system and source, said as notes.

use super::rollup;
use crate::root::SysRoot;

pub(super) fn hidden_note(root: &SysRoot) -> String {
    if root.is_live() {
        "PFNs are hidden (pgtool is not root / lacks CAP_SYS_ADMIN, or kpagecount is unreadable): \
         RSS, PSS, swap and SwapPss come from each /proc/PID/smaps_rollup; uss is its \
         Private_Clean+Private_Dirty; THP, zero-page and file/shmem RSS are unknown (null)"
            .into()
    } else {
        "the snapshot has no kpageflags/kpagecount: figures come from its smaps_rollup files; THP, \
         zero-page and file/shmem RSS are unknown (null)"
            .into()
    }
}

/// Swap is in use (meminfo SwapTotal > SwapFree): SwapPss needs every slot's references.
pub(super) fn swap_in_use(root: &SysRoot) -> bool {
    let Ok(text) = std::fs::read_to_string(root.proc().join("meminfo")) else {
        return false;
    };
    let m = rollup::parse_kb_fields(&text);
    m.get("SwapTotal").copied().unwrap_or(0) > m.get("SwapFree").copied().unwrap_or(0)
}

pub(super) fn large_folio_note(root: &SysRoot, pages: u64, precise: bool) -> String {
    let head = format!(
        "{} KiB in large folios (THP/mTHP): PSS divides each page by its kpagecount",
        pages * crate::addr::page_size() / 1024
    );
    match (precise, kernel_config_no_page_mapcount(root)) {
        (true, _) | (_, Some(false)) => format!(
            "{head}, here the per-page map count smaps uses (CONFIG_NO_PAGE_MAPCOUNT off): exact"
        ),
        (_, Some(true)) => format!(
            "{head}, here the folio's average map count (CONFIG_NO_PAGE_MAPCOUNT), as smaps \
             uses: it agrees with smaps_rollup but is an average over each folio"
        ),
        _ => format!(
            "{head}: the per-page map count smaps uses, or with CONFIG_NO_PAGE_MAPCOUNT \
             (Linux >= 6.15) the folio's average, as smaps then uses: it agrees with \
             smaps_rollup but may be an average over each folio"
        ),
    }
}

/// `Some(true/false)` when the kernel's config is known (a `/boot/config-RELEASE` file, or a
/// kernel older than 6.15, which always counts per page); `None` otherwise.
fn kernel_config_no_page_mapcount(root: &SysRoot) -> Option<bool> {
    let rel = std::fs::read_to_string(root.proc().join("sys/kernel/osrelease")).ok()?;
    let rel = rel.trim();
    let mut nums = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (maj, min) = (nums.next()?, nums.next()?);
    if (maj, min) < (6, 15) {
        return Some(false);
    }
    if !root.is_live() {
        return None;
    }
    let cfg = std::fs::read_to_string(format!("/boot/config-{rel}")).ok()?;
    Some(cfg.lines().any(|l| l == "CONFIG_NO_PAGE_MAPCOUNT=y"))
}
