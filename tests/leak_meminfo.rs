//! The meminfo arithmetic of `pgtool leak` (docs/meminfo.md) on real /proc/meminfo files of
//! several kernels (tests/fixtures/leak/meminfo-*.txt, copied from the running kernels), and
//! the kernel-format parsers of `pgtool leak` under fuzzing (meminfo, vmallocinfo, trace_pipe
//! lines): never a panic, errors name the file and line.

use pgtool::leak::meminfo::{Meminfo, breakdown};
use pgtool::leak::sample::parse_vmallocinfo;
use pgtool::leak::trace_parse::parse_line;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leak");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("meminfo-"))
        })
        .collect();
    v.sort();
    v
}

/// Unaccounted kB worked out by hand from each fixture's own numbers (docs/meminfo.md):
/// MemTotal - (MemFree + AnonPages + Buffers + Cached - Shmem + Shmem + SwapCached +
/// SReclaimable + SUnreclaim + KernelStack + PageTables + SecPageTables + VmallocUsed + Percpu
/// + Hugetlb + Zswap + Balloon).
const HAND: &[(&str, u64)] = &[
    // 24683652 - (20052616 + 243584 + 43580 + 3618892 + 0 + 325524 + 43164 + 1728 + 2944 + 0
    //             + 14540 + 736 + 0 + 0 + 0)
    ("meminfo-6.18-host.txt", 336_344),
    // 488088 - (449108 + 208 + 0 + 14612 + 0 + 3964 + 5264 + 688 + 64 + 0 + 2892 + 456 + 0
    //           + 0 + 0)   (no Zswap or Balloon line on this kernel)
    ("meminfo-6.1-qemu.txt", 10_832),
];

fn kb(m: &Meminfo, f: &str) -> u64 {
    m.get(f).unwrap_or_else(|| panic!("no {f}")) / 1024
}

#[test]
fn kernel_identities_hold_in_every_fixture() {
    let all = fixtures();
    assert!(!all.is_empty(), "no fixtures");
    for p in &all {
        let m = Meminfo::read(p).expect("parse");
        let n = p.display();
        assert_eq!(
            kb(&m, "Slab"),
            kb(&m, "SReclaimable") + kb(&m, "SUnreclaim"),
            "{n}"
        );
        assert_eq!(
            kb(&m, "Active"),
            kb(&m, "Active(anon)") + kb(&m, "Active(file)"),
            "{n}"
        );
        assert_eq!(
            kb(&m, "Inactive"),
            kb(&m, "Inactive(anon)") + kb(&m, "Inactive(file)"),
            "{n}"
        );
        assert!(
            kb(&m, "Shmem") <= kb(&m, "Cached"),
            "{n}: Shmem is inside Cached"
        );
        assert!(kb(&m, "KReclaimable") >= kb(&m, "SReclaimable"), "{n}");
        let b = breakdown(&m, None);
        let sum: u64 = b.parts.iter().map(|p| p.bytes).sum();
        assert_eq!(sum, b.total, "{n}: the parts add up to MemTotal");
        assert!(b.unaccounted >= 0, "{n}: {}", b.unaccounted);
        assert!(b.missing.is_empty(), "{n}: {:?}", b.missing);
    }
}

#[test]
fn unaccounted_matches_the_hand_arithmetic() {
    let all = fixtures();
    for (name, want) in HAND {
        let p = all
            .iter()
            .find(|p| p.ends_with(name))
            .unwrap_or_else(|| panic!("fixture {name}"));
        let b = breakdown(&Meminfo::read(p).expect("parse"), None);
        assert_eq!(b.unaccounted, (*want * 1024) as i64, "{name}");
    }
    // every fixture has its hand figure
    for p in &all {
        let n = p.file_name().expect("name").to_string_lossy();
        assert!(
            HAND.iter().any(|(h, _)| *h == n),
            "{n}: add its hand figure to HAND"
        );
    }
}

#[test]
fn vmalloc_stacks_are_not_counted_twice() {
    let p = &fixtures()[0];
    let m = Meminfo::read(p).expect("parse");
    let plain = breakdown(&m, None);
    let stacks = 1024 * 1024; // more than KernelStack: only KernelStack's worth is an overlap
    let b = breakdown(&m, Some(stacks));
    let ks = m.get("KernelStack").expect("KernelStack");
    assert_eq!(plain.bytes("vmalloc") - b.bytes("vmalloc"), ks.min(stacks));
    assert_eq!(b.unaccounted - plain.unaccounted, ks.min(stacks) as i64);
}

#[test]
fn missing_fields_are_named() {
    let m = Meminfo::parse("MemTotal: 100 kB\nMemFree: 60 kB\n", Path::new("m")).expect("parse");
    let b = breakdown(&m, None);
    assert!(b.missing.contains(&"SUnreclaim"), "{:?}", b.missing);
    assert_eq!(b.unaccounted, 40 * 1024);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn meminfo_parser_never_panics(s in "([A-Za-z_()]{0,12}:? {0,8}[0-9]{0,22}( kB| MB)?\n){0,12}") {
        match Meminfo::parse(&s, Path::new("/f/meminfo")) {
            Ok(m) => prop_assert!(m.get("MemTotal").is_some()),
            Err(e) => prop_assert!(e.to_string().starts_with("/f/meminfo:"), "{}", e),
        }
    }

    #[test]
    fn vmallocinfo_parser_never_panics(s in "(0x[0-9a-f]{1,4}-?0x[0-9a-f]{1,4} [0-9]{1,6} [a-z_+0-9/]{0,12} (pages=[0-9x]{0,4})? vmalloc\n){0,8}") {
        if let Err(e) = parse_vmallocinfo(&s, Path::new("/f/vmallocinfo"), 4096) {
            prop_assert!(e.to_string().starts_with("/f/vmallocinfo:"), "{}", e);
        }
    }

    #[test]
    fn trace_lines_never_panic(s in "[ -~]{0,40}( \\[[0-9]{0,4}\\] )?[ -~]{0,40}") {
        let _ = parse_line(&s);
    }

    #[test]
    fn trace_lines_roundtrip(comm in "[a-z<>/: -]{1,15}", pid in 0u32..4_000_000, cpu in 0u32..512,
                             ptr in any::<u64>(), bytes in 1u64..1_000_000) {
        let l = format!("{comm:>16}-{pid:<7} [{cpu:03}] ..... 12.5: kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req={bytes} bytes_alloc={bytes} gfp_flags=GFP_KERNEL node=-1 accounted=false");
        let e = parse_line(&l).expect("event");
        prop_assert_eq!(e.comm, comm.trim_start());
        prop_assert_eq!(e.pid, pid);
        prop_assert_eq!(e.num("ptr"), Some(ptr));
        prop_assert_eq!(e.num("bytes_alloc"), Some(bytes));
    }
}
