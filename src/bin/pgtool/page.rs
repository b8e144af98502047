//! `pgtool page`: what the kernel's struct page says about each PFN.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::kmem::{Slub, page};
use pgtool::output::Sink;
use std::io;

/// Decode the kernel's struct page of each PFN: flags, node and zone, counts, mapping, memcg.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Reads /proc/kcore (CONFIG_PROC_KCORE, root), the running kernel's BTF (CONFIG_DEBUG_INFO_BTF),
/proc/kallsyms (data symbols: CONFIG_KALLSYMS_ALL) and /proc/kpageflags. A page can change
while it is read.

Fields (JSON/CSV, the same): pfn, page_addr, flags (kpageflags' names), page_flags_raw, node,
zone, refcount, mapcount (_mapcount + 1), mapping_raw, mapping_type (anon, ksm, movable, file),
anon_vma_addr, vma_start, vma_end, owner_pid, owner_comm (anon: the first VMA of its anon_vma
and the owner of that VMA's mm), file_ino, fs_type, file_path (file: the path inside its
filesystem, from the inode's dentry), index, private_raw, memcg_data_raw, memcg_addr, memcg_ino
(the inode kpagecgroup shows), memcg_path, slab_cache (slab pages), compound_head_pfn (tail
pages), compound_order (head pages).

Exit status: 0 listed; 1 a PFN past the end of memory or in a hole; 2 usage or system error
(no kcore or BTF, not root, kernel.kptr_restrict=2).")]
pub struct Args {
    /// PFNs: 0x1234, 4660, A+N, A-B (inclusive), or - to read them from stdin.
    #[arg(value_name = "PFN", required = true)]
    pub pfns: Vec<String>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// The most pages one `page` decodes (each costs a dozen kernel reads).
const MAX_PAGES: u64 = 1 << 20;

/// Run `pgtool page`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let ranges = pgtool::input::parse_pfn_args(&args.pfns, &mut io::stdin().lock())?;
    let n: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    if n == 0 {
        return Err(Error::Usage(
            "no PFN given (stdin held none): name PFNs as 0x1234, A+N or A-B".into(),
        ));
    }
    if n > MAX_PAGES {
        return Err(Error::Usage(format!(
            "too many PFNs: {n} (page decodes at most {MAX_PAGES} per command); split the range"
        )));
    }
    let root = g.sysroot();
    let slub = Slub::open(&root)?;
    let mut sink = Sink::stdout(args.format.format());
    page::pages(&slub, &root, &ranges, |r| sink.write(r))?;
    sink.finish()?;
    Ok(0)
}
