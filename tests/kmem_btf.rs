//! The kmem decoders find every field they read in this machine's BTF (a kernel newer than the
//! qemu test kernel's 6.1, where struct slab, kmem_cache and struct page have moved fields), so
//! `slab --objects`, `kcache` and `page` fail on a layout change here, not silently in the field.

mod common;

use pgtool::SysRoot;
use pgtool::kernel::Btf;

#[test]
fn live_btf_has_every_field_kmem_reads() {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        common::skip("no /sys/kernel/btf/vmlinux (kernel without CONFIG_DEBUG_INFO_BTF)");
        return;
    }
    let btf = Btf::load(&SysRoot::live()).expect("BTF loads");
    if let Err(e) = pgtool::kmem::slub::check_layout(&btf) {
        panic!("SLUB layout on this kernel: {e}");
    }
    if let Err(e) = pgtool::kmem::page::check_layout(&btf) {
        panic!("struct page layout on this kernel: {e}");
    }
}
