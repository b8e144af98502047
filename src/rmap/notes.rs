//! Why mappings are missing, and what an unmapped page is: [`Report::notes`] per target and
//! [`Report::excluded_everything`] for the whole lookup, as data (the caller prints them).

use super::Report;
use crate::kpageflags::PageFlags;
use serde::Serialize;
use std::fmt;

/// A remark about one target PFN of a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// The PFN is past the end of memory (kpageflags has no entry for it).
    PastEnd,
    /// kpagecount is 0 and no process maps it: `what` the page is, from its flags.
    Unmapped {
        /// [`explain`] of its flags.
        what: &'static str,
    },
    /// kpagecount says it is mapped but none of the address spaces read maps it.
    NotFound {
        /// Its kpagecount.
        kpagecount: u64,
        /// Address spaces read.
        address_spaces: u64,
        /// A `pids`/`comm` filter limited the processes searched.
        filtered: bool,
        /// Processes we were not allowed to read.
        denied: u64,
        /// Processes that exited during the scan.
        exited: u64,
        /// Processes that failed otherwise.
        failed: u64,
    },
    /// The PFN itself is not mapped; the mappings listed map other pages of its folio.
    OtherFolioPages,
    /// Fewer mappings found than kpagecount counts.
    Missing {
        /// Its kpagecount.
        kpagecount: u64,
        /// Mappings found (one per address space).
        found: u64,
        /// A `pids`/`comm` filter limited the processes searched.
        filtered: bool,
        /// Processes we were not allowed to read.
        denied: u64,
        /// Processes that exited during the scan.
        exited: u64,
        /// Processes that failed otherwise.
        failed: u64,
    },
    /// More mappings found than kpagecount counts: the page changed during the scan.
    Surplus {
        /// Its kpagecount.
        kpagecount: u64,
        /// Mappings found.
        found: u64,
    },
}

/// The processes a count of missing mappings may belong to.
fn elsewhere(filtered: bool, denied: u64, exited: u64, failed: u64) -> String {
    let mut s = format!(
        "processes we could not read ({denied} denied, {exited} exited during the scan, \
         {failed} failed)"
    );
    if filtered {
        s.push_str(", processes left out by --pid/--comm");
    }
    s.push_str(", other PID namespaces, or the kernel");
    s
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::PastEnd => f.write_str("past the end of memory: no such PFN"),
            Note::Unmapped { what } => write!(f, "not mapped by any process: {what}"),
            Note::NotFound {
                kpagecount,
                address_spaces,
                filtered: true,
                ..
            } => write!(
                f,
                "not mapped by the processes selected with --pid/--comm ({address_spaces} \
                 address spaces read; kpagecount {kpagecount}: other processes map it)"
            ),
            Note::NotFound {
                kpagecount,
                address_spaces,
                filtered: false,
                denied,
                exited,
                failed,
            } => write!(
                f,
                "kpagecount {kpagecount} but none of the {address_spaces} address spaces read \
                 maps it: the mappings belong to {}",
                elsewhere(false, denied, exited, failed)
            ),
            Note::OtherFolioPages => f.write_str(
                "this page itself is not mapped; the processes listed map other pages of its folio",
            ),
            Note::Missing {
                kpagecount,
                found,
                filtered,
                denied,
                exited,
                failed,
            } => write!(
                f,
                "kpagecount {kpagecount} but {found} mapping(s) found: the rest belong to {}",
                elsewhere(filtered, denied, exited, failed)
            ),
            Note::Surplus { kpagecount, found } => write!(
                f,
                "found {found} mappings but kpagecount is {kpagecount}: the page changed during \
                 the scan"
            ),
        }
    }
}

impl Report {
    /// True when a `pids` or `comm` filter limited the processes searched.
    pub fn filtered(&self) -> bool {
        self.pids.is_some() || self.comm.is_some()
    }

    /// The remarks on target `i`: why mappings are missing, or what an unmapped page is.
    pub fn notes(&self, i: usize) -> Vec<Note> {
        let Some(t) = self.targets.get(i) else {
            return Vec::new();
        };
        if t.past_end {
            return vec![Note::PastEnd];
        }
        let any = self.mappings_of(i).next().is_some();
        let found = self.found_mappings(i);
        let st = &self.stats;
        let filtered = self.filtered();
        let mut notes = Vec::new();
        if !any {
            // A page kpagecount says is mapped is not blamed on its flags: its mappings are
            // somewhere we did not look.
            notes.push(if t.count == 0 {
                Note::Unmapped {
                    what: explain(t.flags),
                }
            } else {
                Note::NotFound {
                    kpagecount: t.count,
                    address_spaces: st.address_spaces,
                    filtered,
                    denied: st.denied,
                    exited: st.exited,
                    failed: st.failed,
                }
            });
        } else if found == 0 && t.folio.is_some() {
            notes.push(Note::OtherFolioPages);
        }
        if any && t.count > found {
            notes.push(Note::Missing {
                kpagecount: t.count,
                found,
                filtered,
                denied: st.denied,
                exited: st.exited,
                failed: st.failed,
            });
        } else if found > t.count && t.folio.is_none() {
            notes.push(Note::Surplus {
                kpagecount: t.count,
                found,
            });
        }
        notes
    }

    /// When the lookup could not find what it was asked because of what it searched (a filter
    /// that matches no process, a snapshot without the files it needs, no readable address
    /// space), what excluded everything. `None` when the result stands on its own.
    pub fn excluded_everything(&self) -> Option<String> {
        let st = &self.stats;
        let pid_list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        if self.filtered() && st.processes == 0 {
            let mut why = Vec::new();
            if let Some(p) = &self.pids {
                why.push(if st.missing_pids.len() == p.len() {
                    format!("--pid {}: no such process", pid_list(&st.missing_pids))
                } else {
                    format!("--pid {}", pid_list(p))
                });
            }
            if let Some(c) = &self.comm {
                why.push(format!("--comm {}", crate::input::quote(c)));
            }
            return Some(format!(
                "no process to search: {} matched no process",
                why.join(" with ")
            ));
        }
        // Targets whose mappings we should have found: mapped per kpagecount.
        let wanted: Vec<usize> = (0..self.targets.len())
            .filter(|&i| !self.targets[i].past_end && self.targets[i].count > 0)
            .collect();
        if wanted.is_empty() || !self.mappings.is_empty() {
            return None;
        }
        if st.processes == 0 {
            return Some(
                "no process to search (the proc directory lists none): cannot tell who maps \
                 the PFNs"
                    .into(),
            );
        }
        if st.address_spaces == 0 {
            let first = st
                .errors
                .first()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default();
            return Some(format!(
                "no address space could be read ({} processes: {} kernel threads, {} denied, {} \
                 exited, {} failed){first}",
                st.processes, st.kernel_threads, st.denied, st.exited, st.failed
            ));
        }
        if self.filtered() {
            return Some(format!(
                "the {} address space(s) selected with --pid/--comm map none of the PFNs \
                 (kpagecount says other processes do)",
                st.address_spaces
            ));
        }
        None
    }
}

/// What a page nobody maps is, from its flags (for a PFN with kpagecount 0, or one no readable
/// process maps).
pub fn explain(flags: PageFlags) -> &'static str {
    let has = |f: PageFlags| flags.contains(f);
    if flags.is_empty() {
        "no flags set: free memory inside a buddy block, or a page the kernel never initialised \
         or does not describe"
    } else if has(PageFlags::NOPAGE) {
        "no struct page: a hole in the physical address space"
    } else if has(PageFlags::HWPOISON) {
        "hardware-poisoned page, taken out of use"
    } else if has(PageFlags::OFFLINE) {
        "offline page (ballooned out or memory hot-unplug)"
    } else if has(PageFlags::BUDDY) {
        "free page (head of a free buddy block)"
    } else if has(PageFlags::SLAB) {
        "kernel slab page (kmalloc / kmem_cache objects)"
    } else if has(PageFlags::PGTABLE) {
        "page-table page"
    } else if has(PageFlags::ZERO_PAGE) {
        "the shared zero page"
    } else if has(PageFlags::HUGE) {
        "hugetlb page not mapped by any process (free in the hugetlb pool, or in a hugetlbfs \
         file nobody maps)"
    } else if has(PageFlags::RESERVED) {
        "reserved page (kernel image, firmware or early boot allocation)"
    } else if has(PageFlags::SWAPCACHE) {
        "swap cache page not mapped by any process"
    } else if has(PageFlags::ANON) {
        "anonymous page not mapped by any process (being freed, migrated or reclaimed)"
    } else if has(PageFlags::LRU) || has(PageFlags::UPTODATE) {
        "page cache (file data) not mapped by any process"
    } else if has(PageFlags::KSM) {
        "KSM page not mapped by any process"
    } else {
        "kernel allocation without page-cache or slab flags (vmalloc, kernel stack, driver or \
         network buffer...); drgn can identify it further"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations() {
        assert!(explain(PageFlags::BUDDY).starts_with("free"));
        assert!(explain(PageFlags::SLAB).contains("slab"));
        assert!(explain(PageFlags::LRU | PageFlags::UPTODATE).starts_with("page cache"));
        assert!(explain(PageFlags::empty()).starts_with("no flags"));
    }
}
