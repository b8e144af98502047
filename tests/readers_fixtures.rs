//! Fixture-tree tests of every reader and of `pgtool v2p` on a synthetic proc tree (no root).
//! Expected values come from what the fixture was built with (tests/common), not from pgtool.

mod common;

use common::*;
use pgtool::cgroup::CgroupIndex;
use pgtool::iomem::Iomem;
use pgtool::kpage::{KpageFile, U64File};
use pgtool::maps::{self, VmaKind};
use pgtool::pagemap::Pagemap;
use pgtool::{Error, SysRoot, VirtAddr};
use serde_json::{Value, json};

fn fixture() -> (tempfile::TempDir, SysRoot) {
    let d = tempfile::tempdir().expect("tmp");
    write_fixture(d.path());
    let r = SysRoot::at(d.path());
    (d, r)
}

#[test]
fn maps_reader_on_fixture() {
    let (_d, r) = fixture();
    let v = maps::read_maps(&r, PID).expect("maps");
    assert_eq!(v.len(), 4);
    assert_eq!(v[0].path, "/usr/bin/fixture");
    assert_eq!(v[0].inode, 1001);
    assert_eq!(v[1].kind, VmaKind::Anon);
    assert_eq!(v[3].kind, VmaKind::Stack);
    assert_eq!(
        maps::find(&v, VirtAddr(0x7f00_0020_1234)).map(|v| v.start.0),
        Some(0x7f00_0020_0000)
    );
    assert!(maps::find(&v, VirtAddr(0x10)).is_none());
    // malformed line: reported with file and line number
    let bad = format!("{MAPS}zz-10 rw-p 0 00:00 0\n");
    std::fs::write(r.pid_file(PID, "maps"), bad).expect("w");
    let e = maps::read_maps(&r, PID).expect_err("bad");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:5: bad start address \"zz\"",
            r.pid_file(PID, "maps").display()
        )
    );
    // truncated line (cut in the middle of the fields)
    std::fs::write(r.pid_file(PID, "maps"), "00400000-00402000 r-xp 000").expect("w");
    let e = maps::read_maps(&r, PID).expect_err("cut");
    assert!(e.to_string().ends_with(":1: missing device"), "{e}");
    // missing process dir
    assert!(matches!(
        maps::read_maps(&r, 999),
        Err(Error::NoSuchProcess { pid: 999 })
    ));
}

#[test]
fn pagemap_reader_on_fixture() {
    let (_d, r) = fixture();
    let pm = Pagemap::open(&r, PID).expect("open");
    for (addr, w) in pagemap_entries() {
        assert_eq!(
            pm.entry(VirtAddr(addr)).expect("entry").raw(),
            w,
            "{addr:#x}"
        );
    }
    let s = pm.entry(VirtAddr(0x7f00_0000_1000)).expect("swap");
    assert!(s.swapped() && !s.present());
    assert_eq!((s.swap_type(), s.swap_offset()), (Some(3), Some(0x1234)));
    assert!(pm.entry(VirtAddr(0x7f00_0000_3000)).expect("guard").guard());
    // batched over the THP range: 512 consecutive PFNs
    let mut pfns = Vec::new();
    pm.for_each_batch(
        VirtAddr(0x7f00_0020_0000)..VirtAddr(0x7f00_0040_0000),
        100,
        |_, es| {
            pfns.extend(es.iter().map(|e| e.pfn().map(|p| p.0)));
            Ok(())
        },
    )
    .expect("batch");
    assert_eq!(pfns.len(), 512);
    assert!(
        pfns.iter()
            .enumerate()
            .all(|(i, p)| *p == Some(0x200 + i as u64))
    );
    // past the end of the (sparse) file: empty entry
    assert_eq!(pm.entry(VirtAddr(0x7fff_0000_0000)).expect("eof").raw(), 0);
    // truncated in the middle of an entry
    let path = r.pid_file(PID, "pagemap");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(0x400000 / 4096 * 8 + 5))
        .expect("truncate");
    let e = pm.entry(VirtAddr(0x400000)).expect_err("truncated");
    assert!(
        matches!(e, Error::Truncated { len, index, .. } if len == 0x400 * 8 + 5 && index == 0x400),
        "{e:?}"
    );
    assert!(matches!(
        Pagemap::open(&r, 4321),
        Err(Error::NoSuchProcess { pid: 4321 })
    ));
}

#[test]
fn kpage_readers_on_fixture() {
    let (_d, r) = fixture();
    let flags = U64File::open_kpage(&r, KpageFile::Flags).expect("flags");
    let count = U64File::open_kpage(&r, KpageFile::Count).expect("count");
    let cg = U64File::open_kpage(&r, KpageFile::Cgroup).expect("cgroup");
    let pfns: Vec<u64> = kpage_words().iter().map(|w| w.0).collect();
    let f = flags.gather(&pfns).expect("gather");
    let c = count.gather(&pfns).expect("gather");
    let g = cg.gather(&pfns).expect("gather");
    for (i, (_, wf, wc, wg)) in kpage_words().into_iter().enumerate() {
        assert_eq!((f[i], c[i], g[i]), (Some(wf), Some(wc), Some(wg)));
    }
    assert_eq!(flags.get(NPFNS).expect("eof"), None);
    let mut n = 0;
    let total = flags
        .for_each_batch(0..u64::MAX, 64, |_, w| {
            n += w.iter().filter(|w| **w & K_TAIL != 0).count();
            Ok(())
        })
        .expect("stream");
    assert_eq!((total, n), (NPFNS, 511));
    // truncated file
    std::fs::write(r.kpagecount(), [0u8; 19]).expect("w");
    let count = U64File::open_kpage(&r, KpageFile::Count).expect("count");
    let e = count.get(2).expect_err("partial");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: truncated: 19 bytes is not a multiple of 8 (entry 2 is partial)",
            r.kpagecount().display()
        )
    );
    std::fs::remove_file(r.kpagecgroup()).expect("rm");
    let e = U64File::open_kpage(&r, KpageFile::Cgroup).expect_err("missing");
    assert_eq!(
        e.to_string(),
        format!("{}: No such file or directory", r.kpagecgroup().display())
    );
}

#[test]
fn iomem_reader_on_fixture() {
    let (_d, r) = fixture();
    let io = Iomem::read(&r).expect("iomem");
    assert_eq!(
        io.describe(0x100123).as_deref(),
        Some("System RAM > Kernel code")
    );
    assert_eq!(io.describe(0x200000).as_deref(), Some("System RAM"));
    assert_eq!(io.describe(0x480000).as_deref(), Some("PCI Bus 0000:00"));
    assert_eq!(io.describe(0x500000), None);
    assert_eq!(io.system_ram_pfns().len(), 1);
    assert!(!io.addresses_hidden());
    std::fs::write(
        r.iomem(),
        "00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n",
    )
    .expect("w");
    assert!(Iomem::read(&r).expect("hidden").addresses_hidden());
    std::fs::write(r.iomem(), "00000000-00000fff : Reserved\n0000100").expect("w");
    let e = Iomem::read(&r).expect_err("cut");
    assert_eq!(
        e.to_string(),
        format!("{}:2: expected \"START-END : NAME\"", r.iomem().display())
    );
    std::fs::write(r.iomem(), "fff-000 : x\n").expect("w");
    let e = Iomem::read(&r).expect_err("reversed");
    assert!(
        e.to_string().ends_with(":1: end 0x0 below start 0xfff"),
        "{e}"
    );
}

#[test]
fn cgroup_table_on_fixture() {
    let (d, r) = fixture();
    let idx = CgroupIndex::build(&r).expect("index");
    assert_eq!(
        idx.path_of(42),
        Some(std::path::Path::new("/sys/fs/cgroup/fixture.slice"))
    );
    assert_eq!(idx.path_of(43), None);
    assert_eq!(idx.to_table(), CGROUPS);
    std::fs::write(d.path().join("cgroup-inodes.tsv"), "42\tv3\t/x\n").expect("w");
    let e = CgroupIndex::build(&r).expect_err("bad");
    assert!(
        e.to_string()
            .ends_with("cgroup-inodes.tsv:1: expected INODE<TAB>v2|v1-memory<TAB>PATH"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("cgroup-inodes.tsv")).expect("rm");
    assert_eq!(CgroupIndex::build(&r).expect("empty").iter().count(), 0);
}

fn v2p_json(root: &std::path::Path, args: &[&str]) -> (Vec<Value>, Run) {
    let root = root.to_str().expect("utf8");
    let mut a = vec!["--root", root, "v2p", "1234", "--json", "--fields", "all"];
    a.extend_from_slice(args);
    let run = pgtool(&a);
    (json_lines(&run.stdout), run)
}

#[test]
fn v2p_on_fixture_every_field() {
    let (d, _r) = fixture();
    let (recs, run) = v2p_json(
        d.path(),
        &[
            "0x400010",
            "0x401000",
            "0x7f0000000abc",
            "0x7f0000001000",
            "0x7f0000002000",
            "0x7f0000003000",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(recs.len(), 6);
    let vma0 = json!({"start": 0x400000u64, "end": 0x402000u64, "perms": "r-xp", "path": "/usr/bin/fixture"});
    assert_eq!(
        recs[0],
        json!({
            "pid": 1234, "vaddr": 0x400010u64, "present": true, "swapped": false,
            "pfn": 0x100, "phys_addr": 0x100010u64, "soft_dirty": false, "exclusive": false,
            "uffd_wp": false, "file_shared": true, "guard": false, "swap_type": null,
            "swap_offset": null, "kpagecount": 3,
            // pagemap's file/shared-anon bit is named too (one decoding for every listing)
            "flags": ["referenced", "uptodate", "lru", "mmap", "mappedtodisk", "file"],
            "flags_raw": K_REFERENCED | K_UPTODATE | K_LRU | K_MMAP | K_MAPPEDTODISK,
            "flags_raw_hex": format!("{:#x}", K_REFERENCED | K_UPTODATE | K_LRU | K_MMAP | K_MAPPEDTODISK),
            "memcg_ino": 42, "memcg_path": "/sys/fs/cgroup/fixture.slice",
            "iomem": "System RAM > Kernel code", "head_pfn": null, "folio_pages": null,
            "pagemap_raw": PRESENT | FILE | 0x100,
            "pagemap_raw_hex": format!("{:#x}", PRESENT | FILE | 0x100), "vma": vma0,
        })
    );
    // never touched: everything physical is null
    let r1 = &recs[1];
    assert_eq!(
        (r1["present"].clone(), r1["swapped"].clone()),
        (json!(false), json!(false))
    );
    for k in [
        "pfn",
        "phys_addr",
        "kpagecount",
        "flags",
        "flags_raw",
        "memcg_ino",
        "iomem",
    ] {
        assert!(r1[k].is_null(), "{k}: {r1}");
    }
    // anon, soft-dirty, exclusive; flags: anon_exclusive is not set (no mappedtodisk)
    let r2 = &recs[2];
    assert_eq!(r2["pfn"], json!(0x101));
    assert_eq!(r2["phys_addr"], json!(0x101abcu64));
    assert_eq!(
        (r2["soft_dirty"].clone(), r2["exclusive"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        r2["flags"],
        json!([
            "uptodate",
            "lru",
            "mmap",
            "anonymous",
            "swapbacked",
            "softdirty",
            "mmap_exclusive"
        ])
    );
    assert_eq!(r2["vma"]["path"], json!(""));
    // swapped
    let r3 = &recs[3];
    assert_eq!(
        (
            r3["swapped"].clone(),
            r3["swap_type"].clone(),
            r3["swap_offset"].clone(),
            r3["pfn"].clone()
        ),
        (json!(true), json!(3), json!(0x1234), Value::Null)
    );
    // uffd-wp, memcg 0 -> no path
    assert_eq!(recs[4]["uffd_wp"], json!(true));
    assert_eq!(recs[4]["memcg_ino"], json!(0));
    assert!(recs[4]["memcg_path"].is_null());
    // guard
    assert_eq!(recs[5]["guard"], json!(true));
    assert_eq!(recs[5]["present"], json!(false));
}

#[test]
fn v2p_on_fixture_thp_folio_and_ranges() {
    let (d, _r) = fixture();
    // a range crossing into the THP: tail pages walk back to the head and count 512
    let (recs, run) = v2p_json(d.path(), &["0x7f0000300000+0x2000"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(recs.len(), 2);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["pfn"], json!(0x300 + i as u64));
        assert_eq!(r["head_pfn"], json!(0x200));
        assert_eq!(r["folio_pages"], json!(512));
    }
    // START-END: END exclusive, first page keeps the offset
    let (recs, _) = v2p_json(d.path(), &["0x7f0000200010-0x7f0000202000"]);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["vaddr"], json!(0x7f00_0020_0010u64));
    assert_eq!(recs[0]["head_pfn"], json!(0x200));
    assert_eq!(recs[1]["vaddr"], json!(0x7f00_0020_1000u64));
    // --vma for the whole anon mapping and the stack; stack PFN is past kpage* end
    let (recs, run) = v2p_json(d.path(), &["--vma", "[stack]"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["pfn"], json!(0x480));
    assert!(recs[0]["flags"].is_null() && recs[0]["kpagecount"].is_null());
    assert_eq!(recs[0]["iomem"], json!("PCI Bus 0000:00"));
    let (recs, _) = v2p_json(d.path(), &["--vma", "fixture"]);
    assert_eq!(recs.len(), 2);
    // a range spanning a hole: only mapped pages
    let (recs, run) = v2p_json(d.path(), &["0x401000-0x7f0000001000"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["vaddr"], json!(0x7f00_0000_0000u64));
}

#[test]
fn v2p_on_fixture_csv_and_table() {
    let (d, _r) = fixture();
    let root = d.path().to_str().expect("utf8");
    let run = pgtool(&[
        "--root",
        root,
        "v2p",
        "1234",
        "--csv",
        "--fields",
        "all",
        "0x400000",
        "0x7f0000001000",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    // The CSV header is the JSON keys; addresses, PFNs and raw words are 0x hex.
    assert_eq!(
        lines[0],
        "pid,vaddr,present,swapped,pfn,phys_addr,soft_dirty,exclusive,uffd_wp,file_shared,guard,\
swap_type,swap_offset,kpagecount,flags,flags_raw,flags_raw_hex,memcg_ino,memcg_path,iomem,\
head_pfn,folio_pages,pagemap_raw,pagemap_raw_hex,vma_start,vma_end,vma_perms,vma_path"
    );
    let fl = K_REFERENCED | K_UPTODATE | K_LRU | K_MMAP | K_MAPPEDTODISK;
    let pm = PRESENT | FILE | 0x100;
    assert_eq!(
        lines[1],
        format!(
            "1234,0x400000,true,false,0x100,0x100000,false,false,false,true,false,,,3,\
referenced|uptodate|lru|mmap|mappedtodisk|file,{fl:#x},{fl:#x},42,/sys/fs/cgroup/fixture.slice,\
System RAM > Kernel code,,,{pm:#x},{pm:#x},0x400000,0x402000,r-xp,/usr/bin/fixture"
        )
    );
    assert!(
        lines[2]
            .starts_with("1234,0x7f0000001000,false,true,,,false,false,false,false,false,3,4660,")
    );
    let run = pgtool(&["--root", root, "v2p", "1234", "0x400000"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("0x400000") && run.stdout.contains("0x100"));
    assert!(run.stdout.contains("System RAM > Kernel code"));
}

#[test]
fn v2p_on_fixture_with_hidden_pfns() {
    // What an unprivileged reader sees: present pages with the PFN field zeroed.
    let (d, r) = fixture();
    let pm = std::fs::File::options()
        .write(true)
        .open(r.pid_file(PID, "pagemap"))
        .expect("pm");
    use std::os::unix::fs::FileExt;
    pm.write_all_at(&(PRESENT | EXCL).to_ne_bytes(), 0x7f00_0000_0000 / 4096 * 8)
        .expect("w");
    let (recs, run) = v2p_json(d.path(), &["0x7f0000000000+0x1000"]);
    assert_eq!(run.code, 0);
    assert_eq!(recs[0]["present"], json!(true));
    assert!(recs[0]["pfn"].is_null() && recs[0]["flags"].is_null());
    assert_eq!(
        run.stderr,
        format!(
            "pgtool: note: {}: needs root or CAP_SYS_ADMIN: PFNs read as 0; pfn, flags, kpagecount, memcg and iomem are unknown\n",
            r.pid_file(PID, "pagemap").display()
        )
    );
}

#[test]
fn swap_decoding_on_fixture() {
    // This machine has no swap device, so swapped entries are only tested here.
    let (d, _r) = fixture();
    let (recs, _) = v2p_json(d.path(), &["0x7f0000001000"]);
    assert_eq!(recs[0]["pagemap_raw"], json!(SWAPPED | (0x1234 << 5) | 3));
    assert_eq!(recs[0]["swap_offset"], json!(0x1234));
    assert_eq!(recs[0]["swap_type"], json!(3));
    assert!(recs[0]["kpagecount"].is_null());
}

#[test]
fn v2p_on_fixture_top_of_address_space() {
    // a mapping ending at the very top: no overflow, pages past the pagemap's end read empty
    let (d, r) = fixture();
    std::fs::write(
        r.pid_file(PID, "maps"),
        format!("{MAPS}fffffffffffff000-ffffffffffffffff r--p 00000000 00:00 0 [top]\n"),
    )
    .expect("w");
    let (recs, run) = v2p_json(d.path(), &["0xfffffffffffff800", "--vma", "[top]"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(recs.len(), 2);
    // --vma mappings come first, then the addresses
    assert_eq!(recs[0]["vaddr"], json!(0xffff_ffff_ffff_f000u64));
    assert_eq!(recs[1]["vaddr"], json!(0xffff_ffff_ffff_f800u64));
    assert!(
        recs.iter()
            .all(|r| r["present"] == false && r["pagemap_raw"] == 0)
    );
}
