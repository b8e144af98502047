//! `pgtool map` on a fixture tree whose layout is known block by block, and live.
//!
//! Fixture: pageblock order 9 (512 pages), System RAM 0-12 MiB (blocks 0-5) and 16-20 MiB
//! (blocks 8-9) with a PCI hole between. Block 0 free (a buddy page, then flagless count-0
//! pages), 1 anon, 2 THP, 3 free but for one slab page, 4 reserved, 5 page cache, 8 kernel
//! (no flags, count 1), 9 anon with one hwpoison page.

mod common;

use std::path::{Path, PathBuf};

const BUDDY: u64 = 1 << 10;
const ANON: u64 = 1 << 12;
const LRU: u64 = 1 << 5;
const UPTODATE: u64 = 1 << 3;
const HEAD: u64 = 1 << 15;
const TAIL: u64 = 1 << 16;
const THP: u64 = 1 << 22;
const SLAB: u64 = 1 << 7;
const RESERVED: u64 = 1 << 32;
const HWPOISON: u64 = 1 << 19;

const EXPECTED: [(u64, &str); 8] = [
    (0, "free"),
    (512, "anon"),
    (1024, "thp"),
    (1536, "slab"),
    (2048, "reserved"),
    (2560, "file"),
    (4096, "kernel"),
    (4608, "hwpoison"),
];

/// The documented legend colours (`pgtool map --help`'s classes).
fn rgb(class: &str) -> [u8; 3] {
    match class {
        "free" => [0xe8, 0xe8, 0xe8],
        "anon" => [0x3c, 0xb0, 0x4c],
        "thp" => [0x1a, 0x6b, 0x2a],
        "slab" => [0xe0, 0x60, 0x20],
        "reserved" => [0x40, 0x40, 0x40],
        "file" => [0x4c, 0x9a, 0xe0],
        "kernel" => [0xc0, 0x20, 0x20],
        "hwpoison" => [0xff, 0x00, 0xff],
        other => panic!("no colour for {other}"),
    }
}

fn fixture(dir: &Path) -> PathBuf {
    let proc_ = dir.join("proc");
    std::fs::create_dir_all(&proc_).expect("mkdir");
    std::fs::create_dir_all(dir.join("sys")).expect("mkdir");
    let n = 5120usize;
    let mut flags = vec![0u64; n];
    let mut count = vec![0u64; n];
    flags[0] = BUDDY;
    flags[512..1024].fill(ANON | LRU);
    count[512..1024].fill(1);
    flags[1024] = HEAD | THP | ANON | LRU;
    flags[1025..1536].fill(TAIL | THP | ANON);
    flags[1536] = BUDDY; // a free run ...
    flags[1700] = SLAB; // ... broken by one slab page; the rest is free again
    flags[1701] = BUDDY;
    flags[1702..2048].fill(0);
    flags[2048..2560].fill(RESERVED);
    flags[2560..3072].fill(LRU | UPTODATE);
    count[2560..3072].fill(1);
    count[4096..4608].fill(1); // allocated, no flags: kernel
    flags[4608..5120].fill(ANON | LRU);
    count[4608..5120].fill(1);
    flags[4700] = HWPOISON;
    let bytes = |v: &[u64]| v.iter().flat_map(|w| w.to_ne_bytes()).collect::<Vec<u8>>();
    std::fs::write(proc_.join("kpageflags"), bytes(&flags)).expect("w");
    std::fs::write(proc_.join("kpagecount"), bytes(&count)).expect("w");
    std::fs::write(proc_.join("kpagecgroup"), bytes(&vec![0u64; n])).expect("w");
    std::fs::write(
        proc_.join("iomem"),
        "00000000-00bfffff : System RAM\n00c00000-00ffffff : PCI Bus 0000:00\n01000000-013fffff : System RAM\n",
    )
    .expect("w");
    std::fs::write(
        proc_.join("pagetypeinfo"),
        "Page block order: 9\nPages per block:  512\n",
    )
    .expect("w");
    std::fs::write(
        proc_.join("zoneinfo"),
        "Node 0, zone    DMA32\n        spanned  5120\n  start_pfn:           0\n",
    )
    .expect("w");
    dir.to_path_buf()
}

#[test]
fn fixture_blocks_have_their_known_classes() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = fixture(dir.path());
    let r = common::pgtool(&["--root", root.to_str().expect("utf8"), "map", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let blocks = common::json_lines(&r.stdout);
    let got: Vec<(u64, String)> = blocks
        .iter()
        .map(|b| {
            (
                b["start_pfn"].as_u64().expect("pfn"),
                b["class"].as_str().expect("class").to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String)> = EXPECTED.iter().map(|(p, c)| (*p, c.to_string())).collect();
    assert_eq!(got, want);
    assert_eq!(blocks[3]["slab_pages"], 1);
    assert_eq!(blocks[3]["free_pages"], 511);
    assert_eq!(blocks[6]["kernel_pages"], 512);
    assert_eq!(blocks[7]["hwpoison_pages"], 1);
    assert_eq!(blocks[7]["anon_pages"], 511);
    assert!(
        blocks
            .iter()
            .all(|b| b["zone"] == "DMA32" && b["node"] == 0 && b["pages"] == 512)
    );

    let r = common::pgtool(&[
        "--root",
        root.to_str().expect("utf8"),
        "map",
        "--json",
        "--totals",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let totals = common::json_lines(&r.stdout);
    let all = totals.last().expect("grand total");
    assert_eq!(all["blocks"], 8);
    assert_eq!(all["free_blocks"], 1);
    assert_eq!(
        all["blocked_by_unmovable_blocks"], 1,
        "block 3: free but for one slab page"
    );
}

#[test]
fn fixture_terminal_picture_matches_the_layout() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = fixture(dir.path());
    let r = common::pgtool(&[
        "--root",
        root.to_str().expect("utf8"),
        "map",
        "--color",
        "never",
        "--cols",
        "4",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Written from the layout: 4 blocks a row, letters . a T s R f k X.
    let want = "\
Physical memory, one cell per 2.0M block
System RAM 0x0-0xbfffff (12.0M)
0x000000000000 .aTs
0x000000800000 Rf
  ... skipped 0xc00000-0xffffff (4.0M): PCI Bus 0000:00
System RAM 0x1000000-0x13fffff (4.0M)
0x000001000000 kX
";
    assert!(r.stdout.starts_with(want), "got:\n{}", r.stdout);
    assert!(
        r.stdout
            .contains("all: 8 blocks of 2.0M: 1 entirely free, 1 free but for unmovable pages"),
        "{}",
        r.stdout
    );
}

fn decode_png(path: &Path) -> (u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("open png"),
    ));
    let mut reader = dec.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    // normalise to RGB
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, rgb)
}

/// Where the SVG put the block at `pfn`: the x and y of the rect whose hover title names it.
fn rect_origin(svg: &str, pfn: u64, class: &str) -> (u32, u32) {
    let needle = format!("pfn {pfn:#x} {class}");
    let at = svg
        .find(&needle)
        .unwrap_or_else(|| panic!("no title {needle:?}"));
    let rect = &svg[svg[..at].rfind("<rect ").expect("rect")..at];
    let attr = |name: &str| -> u32 {
        let k = format!("{name}=\"");
        let i = rect.find(&k).expect("attr") + k.len();
        rect[i..]
            .split('"')
            .next()
            .expect("value")
            .parse()
            .expect("number")
    };
    (attr("x"), attr("y"))
}

fn pixel(width: u32, rgb: &[u8], x: u32, y: u32) -> [u8; 3] {
    let o = ((y * width + x) * 3) as usize;
    [rgb[o], rgb[o + 1], rgb[o + 2]]
}

#[test]
fn fixture_png_has_the_class_colour_at_each_block() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = fixture(dir.path());
    let out = dir.path().join("map.png");
    let r = common::pgtool(&[
        "--root",
        root.to_str().expect("utf8"),
        "map",
        "--cols",
        "4",
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (w, px) = decode_png(&out);
    assert_eq!(w, 4 * 8, "4 cells of 8 px");
    // Section 0: blocks 0-5 in rows of 4 (8 px cells); an 8 px white gap; section 1.
    let origin = |i: usize| -> (u32, u32) {
        if i < 6 {
            ((i % 4) as u32 * 8, (i / 4) as u32 * 8)
        } else {
            ((i - 6) as u32 * 8, 2 * 8 + 8)
        }
    };
    for (i, (_, class)) in EXPECTED.iter().enumerate() {
        let (x, y) = origin(i);
        assert_eq!(
            pixel(w, &px, x + 4, y + 4),
            rgb(class),
            "block {i} ({class})"
        );
    }
}

#[test]
fn fixture_svg_renders_the_class_colour_at_each_block() {
    let Some(rsvg) = ["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        common::skip("rsvg-convert (Debian librsvg2-bin) is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let root = fixture(dir.path());
    let svg = dir.path().join("map.svg");
    let r = common::pgtool(&[
        "--root",
        root.to_str().expect("utf8"),
        "map",
        "--cols",
        "4",
        "-o",
        svg.to_str().expect("utf8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).expect("svg");
    let png = dir.path().join("svg.png");
    let st = std::process::Command::new(rsvg)
        .arg("-o")
        .arg(&png)
        .arg(&svg)
        .status()
        .expect("run rsvg-convert");
    assert!(st.success(), "rsvg-convert failed on pgtool's SVG");
    let (w, px) = decode_png(&png);
    for (pfn, class) in EXPECTED {
        // Find the block's rect by its hover title, then look at the rendered pixels there.
        let (x, y) = rect_origin(&text, pfn, class);
        assert_eq!(
            pixel(w, &px, x + 4, y + 4),
            rgb(class),
            "block at pfn {pfn:#x} ({class})"
        );
    }
    assert!(text.contains("PCI Bus 0000:00"), "the hole is named");
}

/// The SVG opens in a real browser: headless Chromium takes a screenshot of it, and the
/// screenshot shows each block's class colour where the SVG put the block.
#[test]
fn fixture_svg_opens_in_chromium() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        common::skip("chromium (Debian package chromium) is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let root = fixture(dir.path());
    let svg = dir.path().join("map.svg");
    let r = common::pgtool(&[
        "--root",
        root.to_str().expect("utf8"),
        "map",
        "--cols",
        "4",
        "-o",
        svg.to_str().expect("utf8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=800,600",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", svg.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && shot.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).expect("svg");
    let (w, px) = decode_png(&shot);
    for (pfn, class) in EXPECTED {
        let (x, y) = rect_origin(&text, pfn, class);
        assert_eq!(
            pixel(w, &px, x + 4, y + 4),
            rgb(class),
            "block at pfn {pfn:#x} ({class}) in the screenshot"
        );
    }
}

#[test]
fn bad_output_names_are_refused() {
    let r = common::pgtool(&["map", "-o", "/tmp/x.jpg"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("must end in .svg or .png"),
        "{}",
        r.stderr
    );
}

/// Live: a process holding 512 MiB of THP shows at least 256 THP blocks, and the PFNs of the
/// process's THP (from its pagemap) fall in blocks the map calls thp.
#[test]
fn live_thp_blocks_are_the_process_thp() {
    if !common::is_root() {
        common::skip("needs root (PFNs and /proc/kpageflags)");
        return;
    }
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[never]") || thp.is_empty() {
        common::skip(&format!("THP disabled ({})", thp.trim()));
        return;
    }
    const LEN: usize = 512 << 20;
    const HUGE: usize = 2 << 20;
    // Map with room to align to 2 MiB, madvise, touch.
    // SAFETY: a private anonymous mapping; only this test uses it, unmapped at the end.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN + HUGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    let aligned = ((base as usize + HUGE - 1) & !(HUGE - 1)) as *mut u8;
    // SAFETY: aligned..aligned+LEN lies inside the mapping made above.
    unsafe {
        libc::madvise(aligned.cast(), LEN, libc::MADV_HUGEPAGE);
        for off in (0..LEN).step_by(4096) {
            aligned.add(off).write_volatile(1);
        }
    }
    // The process's PFNs of the heads of its THPs, from pagemap.
    let pm = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
    let mut heads = Vec::new();
    for i in (0..LEN).step_by(HUGE) {
        let va = aligned as u64 + i as u64;
        let mut w = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&pm, &mut w, va / 4096 * 8).expect("pread");
        let e = u64::from_ne_bytes(w);
        if e >> 63 == 1 {
            heads.push(e & ((1 << 55) - 1));
        }
    }
    let r = common::pgtool(&["map", "--json"]);
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(base, LEN + HUGE) };
    assert_eq!(r.code, 0, "{}", r.stderr);
    let blocks = common::json_lines(&r.stdout);
    let thp_blocks: std::collections::HashSet<u64> = blocks
        .iter()
        .filter(|b| b["class"] == "thp")
        .map(|b| b["start_pfn"].as_u64().expect("pfn"))
        .collect();
    let ours = heads
        .iter()
        .filter(|h| thp_blocks.contains(&(*h & !511)))
        .count();
    // THP may be refused for some ranges under memory pressure: most must be THP.
    assert!(
        ours >= 200,
        "{ours} of {} heads in thp blocks; {} thp blocks in all",
        heads.len(),
        thp_blocks.len()
    );
    assert!(thp_blocks.len() >= ours);
}
