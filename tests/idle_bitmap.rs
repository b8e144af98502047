//! IdleBitmap word I/O and PageSet marking against a fixture bitmap file (a plain file under a
//! snapshot root stands in for /sys/kernel/mm/page_idle/bitmap: same pread/pwrite offsets).

use pgtool::idle::{IdleBitmap, MAX_WORDS, PageSet, TrackedPage};
use pgtool::{Pfn, SysRoot};

fn fixture(words: usize) -> (tempfile::TempDir, SysRoot) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("sys/kernel/mm/page_idle");
    std::fs::create_dir_all(&p).expect("mkdir");
    std::fs::write(p.join("bitmap"), vec![0u8; words * 8]).expect("bitmap");
    std::fs::create_dir_all(dir.path().join("proc")).expect("proc");
    let root = SysRoot::at(dir.path());
    (dir, root)
}

#[test]
fn missing_bitmap_says_which_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = IdleBitmap::open(&SysRoot::at(dir.path()), false).expect_err("no bitmap");
    let msg = e.to_string();
    assert!(msg.contains("CONFIG_IDLE_PAGE_TRACKING"), "{msg}");
    assert!(msg.contains("page_idle/bitmap"), "{msg}");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn words_round_trip_across_batches() {
    let n = MAX_WORDS * 3 + 17;
    let (_d, root) = fixture(n);
    let bm = IdleBitmap::open_file(root.page_idle_bitmap(), true).expect("open");
    let words: Vec<u64> = (0..n as u64 - 5)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    bm.write_words(5, &words).expect("write");
    let mut back = vec![0u64; n + 10];
    let got = bm.read_words(0, &mut back).expect("read");
    assert_eq!(got, n, "reads stop at the end of the bitmap");
    assert_eq!(&back[5..n], &words[..]);
    assert_eq!(&back[..5], &[0; 5]);
}

#[test]
fn mark_range_sets_exactly_the_range() {
    let (_d, root) = fixture(64);
    let bm = IdleBitmap::open_file(root.page_idle_bitmap(), true).expect("open");
    bm.mark_range(Pfn(70)..Pfn(200)).expect("mark");
    let mut w = vec![0u64; 64];
    bm.read_words(0, &mut w).expect("read");
    for pfn in 0..64 * 64u64 {
        let set = w[(pfn / 64) as usize] >> (pfn % 64) & 1 == 1;
        assert_eq!(set, (70..200).contains(&pfn), "PFN {pfn}");
    }
}

#[test]
fn pageset_marks_heads_and_reads_them_for_tails() {
    let (_d, root) = fixture(4096);
    let bm = IdleBitmap::open_file(root.page_idle_bitmap(), true).expect("open");
    let page = |pfn: u64, head: u64| TrackedPage {
        vaddr: None,
        pfn: Pfn(pfn),
        head: Pfn(head),
    };
    // A 512-page folio at 0x200 (tails point at the head) plus scattered small pages far apart.
    let mut pages: Vec<TrackedPage> = (0x200..0x400).map(|p| page(p, 0x200)).collect();
    pages.extend([page(3, 3), page(100_000, 100_000), page(262_000, 262_000)]);
    let set = PageSet {
        groups: vec![(None, pages)],
    };
    set.mark(&bm).expect("mark");
    let mut w = vec![0u64; 4096];
    bm.read_words(0, &mut w).expect("read");
    let ones: u32 = w.iter().map(|x| x.count_ones()).sum();
    assert_eq!(
        ones, 4,
        "only the head and the three small pages carry bits"
    );
    let bits = set.read(&bm).expect("read");
    assert!(
        bits[0].iter().all(|b| *b),
        "every page of the folio reads its head's bit"
    );
    // The "kernel" clears the head's bit (the folio was accessed): all 512 pages read accessed.
    bm.write_words(0x200 / 64, &[0]).expect("clear");
    let bits = set.read(&bm).expect("read");
    let c = pgtool::idle::count(&bits[0]);
    assert_eq!((c.pages, c.accessed_pages, c.idle_pages), (515, 512, 3));
}
