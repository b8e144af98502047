//! Live tests (root): a child process maps and touches known pages; `pgtool v2p --json` on it is
//! compared field by field with this test's own direct reads of /proc/PID/pagemap and
//! /proc/kpage* (independent code: plain preads here, not the library).
//!
//! No swap device on the development machine: swapped entries are tested on fixtures
//! (tests/readers_fixtures.rs).

mod common;

use common::*;
use serde_json::{Value, json};
use std::os::unix::fs::{FileExt, MetadataExt};

const PS: u64 = 4096;

/// The child's body: runs only in the re-executed test binary.
#[test]
fn child_process() {
    if !in_child() {
        return;
    }
    // SAFETY (all blocks below): plain anonymous/file mmaps of fresh memory, touched within
    // their length; the process exits without unmapping.
    unsafe {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let anon = libc::mmap(
            std::ptr::null_mut(),
            4 * PS as usize,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        assert_ne!(anon as isize, -1);
        // keep it out of the fork below, so its pages stay exclusive (kpagecount 1)
        libc::madvise(anon.cast(), 4 * PS as usize, libc::MADV_DONTFORK);
        *anon = 1;
        *anon.add(PS as usize) = 2;
        tell(&format!("ADDR anon {:#x}", anon as u64 + 0x123));
        tell(&format!("ADDR anon2 {:#x}", anon as u64 + PS));
        tell(&format!("ADDR untouched {:#x}", anon as u64 + 2 * PS));

        let shm = libc::mmap(
            std::ptr::null_mut(),
            PS as usize,
            prot,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        *shm = 3;
        tell(&format!("ADDR shmem {:#x}", shm as u64));

        let path = std::env::temp_dir().join(format!("pgtool-v2p-live-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 2 * PS as usize]).expect("write file");
        let f = std::fs::File::open(&path).expect("open");
        use std::os::fd::AsRawFd;
        let fm = libc::mmap(
            std::ptr::null_mut(),
            2 * PS as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        ) as *const u8;
        assert_ne!(fm as isize, -1);
        let _ = std::ptr::read_volatile(fm);
        let _ = std::fs::remove_file(&path); // the mapping keeps it; path shows "(deleted)"
        tell(&format!("ADDR file {:#x}", fm as u64));
        tell(&format!("PATH file {} (deleted)", path.display()));

        let thp_on = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .map(|s| s.contains("[always]") || s.contains("[madvise]"))
            .unwrap_or(false);
        if thp_on {
            let raw = libc::mmap(
                std::ptr::null_mut(),
                4 << 20,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as u64;
            let base = (raw + (2 << 20) - 1) & !((2 << 20) - 1);
            libc::madvise(base as *mut _, 2 << 20, libc::MADV_HUGEPAGE);
            libc::madvise(raw as *mut _, 4 << 20, libc::MADV_DONTFORK);
            for off in (0..(2u64 << 20)).step_by(PS as usize) {
                *((base + off) as *mut u8) = 9;
            }
            tell(&format!("ADDR thp {base:#x}"));
        }

        // a guard region (MADV_GUARD_INSTALL, Linux >= 6.15): pagemap bit 58
        let g = libc::mmap(
            std::ptr::null_mut(),
            PS as usize,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        const MADV_GUARD_INSTALL: libc::c_int = 102;
        if libc::madvise(g, PS as usize, MADV_GUARD_INSTALL) == 0 {
            tell(&format!("ADDR guard {:#x}", g as u64));
        }

        // hugetlb, only for the test that asked (it makes sure a huge page is free)
        if std::env::var_os("PGTOOL_TEST_HUGETLB").is_some() {
            let h = libc::mmap(
                std::ptr::null_mut(),
                2 << 20,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
                -1,
                0,
            );
            if h != libc::MAP_FAILED {
                libc::madvise(h, 2 << 20, libc::MADV_DONTFORK);
                *(h as *mut u8) = 1;
                tell(&format!("ADDR hugetlb {:#x}", h as u64));
            }
        }

        let cow = libc::mmap(
            std::ptr::null_mut(),
            PS as usize,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        *cow = 5;
        tell(&format!("ADDR cow {:#x}", cow as u64));
        // After fork the page is mapped by two processes until one writes: kpagecount 2.
        let pid = libc::fork();
        if pid == 0 {
            wait_for_eof_and_exit();
        }
        tell(&format!("ADDR forkchild {pid:#x}"));
    }
    tell("READY");
    wait_for_eof_and_exit();
}

fn pread_u64(path: &str, index: u64) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, index * 8).ok()?;
    Some(u64::from_ne_bytes(b))
}

/// The test's own reading of one page.
struct Direct {
    pme: u64,
    pfn: Option<u64>,
    flags: Option<u64>,
    count: Option<u64>,
    cgroup: Option<u64>,
}

fn direct(pid: u32, vaddr: u64) -> Direct {
    let pme = pread_u64(&format!("/proc/{pid}/pagemap"), vaddr / PS).expect("pagemap");
    let pfn = (pme >> 63 == 1).then_some(pme & ((1 << 55) - 1));
    Direct {
        pme,
        pfn,
        flags: pfn.and_then(|p| pread_u64("/proc/kpageflags", p)),
        count: pfn.and_then(|p| pread_u64("/proc/kpagecount", p)),
        cgroup: pfn.and_then(|p| pread_u64("/proc/kpagecgroup", p)),
    }
}

fn maps_line(pid: u32, vaddr: u64) -> (u64, u64, String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let range = it.next().expect("range");
        let perms = it.next().expect("perms").to_string();
        let (s, e) = range.split_once('-').expect("-");
        let (s, e) = (
            u64::from_str_radix(s, 16).expect("hex"),
            u64::from_str_radix(e, 16).expect("hex"),
        );
        if s <= vaddr && vaddr < e {
            let path = l
                .splitn(6, ' ')
                .nth(5)
                .unwrap_or("")
                .trim_start()
                .to_string();
            return (s, e, perms, path);
        }
    }
    panic!("{vaddr:#x} not in maps");
}

/// kpageflags bits that do not flip on their own while the child sleeps (LRU, active,
/// referenced, idle... can).
const STABLE: u64 =
    (1 << 11) | (1 << 12) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 17) | (1 << 22);

fn check_against_direct(pid: u32, rec: &Value) -> Direct {
    let vaddr = rec["vaddr"].as_u64().expect("vaddr");
    let d = direct(pid, vaddr);
    let bit = |b: u32| json!(d.pme & (1 << b) != 0);
    assert_eq!(rec["pagemap_raw"], json!(d.pme), "{rec}");
    assert_eq!(rec["present"], bit(63));
    assert_eq!(rec["swapped"], bit(62));
    assert_eq!(rec["file_shared"], bit(61));
    assert_eq!(rec["guard"], bit(58));
    assert_eq!(rec["uffd_wp"], bit(57));
    assert_eq!(rec["exclusive"], bit(56));
    assert_eq!(rec["soft_dirty"], bit(55));
    assert_eq!(rec["pfn"], json!(d.pfn));
    assert_eq!(
        rec["phys_addr"],
        json!(d.pfn.map(|p| p * PS + (vaddr & (PS - 1))))
    );
    assert_eq!(rec["kpagecount"], json!(d.count), "{rec}");
    assert_eq!(rec["memcg_ino"], json!(d.cgroup), "{rec}");
    match (rec["flags_raw"].as_u64(), d.flags) {
        (Some(a), Some(b)) => assert_eq!(a & STABLE, b & STABLE, "{rec}"),
        (None, None) => {}
        other => panic!("flags differ: {other:?} {rec}"),
    }
    if let Some(p) = rec["memcg_path"].as_str() {
        let ino = std::fs::metadata(p).expect("memcg dir").ino();
        assert_eq!(json!(ino), rec["memcg_ino"]);
    }
    if d.pfn.is_some() {
        assert!(
            rec["iomem"]
                .as_str()
                .is_some_and(|s| s.starts_with("System RAM")),
            "{rec}"
        );
    }
    let (s, e, perms, path) = maps_line(pid, vaddr);
    assert_eq!(
        rec["vma"],
        json!({"start": s, "end": e, "perms": perms, "path": path})
    );
    d
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Raises vm.nr_hugepages by one when no 2 MiB huge page is free; puts it back on drop.
struct HugePageReservation(Option<u64>);

impl HugePageReservation {
    fn ensure_one_free() -> HugePageReservation {
        let free = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("HugePages_Free:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let size_2m = std::fs::read_to_string("/proc/meminfo")
            .is_ok_and(|m| m.contains("Hugepagesize:       2048 kB"));
        if free > 0 || !size_2m {
            return HugePageReservation(None);
        }
        let Some(old) = std::fs::read_to_string(NR_HUGEPAGES)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        else {
            return HugePageReservation(None);
        };
        let _ = std::fs::write(NR_HUGEPAGES, (old + 1).to_string());
        HugePageReservation(Some(old))
    }
}

impl Drop for HugePageReservation {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            let _ = std::fs::write(NR_HUGEPAGES, old.to_string());
        }
    }
}

fn has_flag(rec: &Value, name: &str) -> bool {
    rec["flags"]
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f == name))
}

#[test]
fn v2p_matches_direct_reads() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: PFNs and /proc/kpage* are hidden from other users");
        return;
    }
    let child = Child::spawn("child_process");
    let pid = child.pid.to_string();
    let names = ["anon", "anon2", "untouched", "shmem", "file", "cow"];
    let mut args = vec!["v2p", "--json", "--fields", "all", &pid];
    let addrs: Vec<String> = names
        .iter()
        .map(|n| format!("{:#x}", child.addr(n)))
        .collect();
    args.extend(addrs.iter().map(String::as_str));
    let run = pgtool(&args);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    let recs = json_lines(&run.stdout);
    assert_eq!(recs.len(), names.len());
    let by: std::collections::HashMap<&str, &Value> =
        names.iter().copied().zip(recs.iter()).collect();
    for (n, r) in &by {
        assert_eq!(r["pid"], json!(child.pid), "{n}");
        assert_eq!(r["vaddr"], json!(child.addr(n)), "{n}");
        check_against_direct(child.pid, r);
    }
    // what each page must be, by construction
    let anon = by["anon"];
    assert_eq!(anon["present"], json!(true));
    assert!(anon["pfn"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(anon["exclusive"], json!(true));
    assert_eq!(anon["file_shared"], json!(false));
    assert_eq!(anon["kpagecount"], json!(1));
    assert!(has_flag(anon, "anonymous") && has_flag(anon, "mmap"));
    assert_eq!(anon["phys_addr"].as_u64().map(|p| p & 0xfff), Some(0x123));
    let un = by["untouched"];
    assert_eq!(
        (un["present"].clone(), un["swapped"].clone()),
        (json!(false), json!(false))
    );
    assert!(un["pfn"].is_null() && un["kpagecount"].is_null() && un["flags"].is_null());
    let shm = by["shmem"];
    assert_eq!(shm["file_shared"], json!(true));
    assert!(has_flag(shm, "swapbacked") && !has_flag(shm, "anonymous"));
    let file = by["file"];
    assert_eq!(file["file_shared"], json!(true));
    assert_eq!(file["vma"]["path"], json!(child.paths["file"]));
    assert!(!has_flag(file, "anonymous"));
    let cow = by["cow"];
    assert_eq!(cow["kpagecount"], json!(2), "page shared after fork: {cow}");
    assert_eq!(cow["exclusive"], json!(false));
    assert!(has_flag(cow, "anonymous"));
    assert!(child.addr("forkchild") > 0);

    // --vma by file name: both pages of the 2-page file mapping, in order
    let name = child.paths["file"]
        .rsplit('/')
        .next()
        .and_then(|n| n.split(' ').next())
        .expect("name")
        .to_string();
    let run = pgtool(&["v2p", "--json", "--fields", "all", &pid, "--vma", &name]);
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    assert_eq!(recs.len(), 2, "{run:?}");
    assert_eq!(recs[0]["vaddr"], json!(child.addr("file")));
    assert_eq!(recs[1]["vaddr"], json!(child.addr("file") + PS));
    for r in &recs {
        check_against_direct(child.pid, r);
    }
}

#[test]
fn v2p_guard_region() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: reads another process's pagemap");
        return;
    }
    let child = Child::spawn("child_process");
    let Some(&g) = child.addrs.get("guard") else {
        skip("the kernel refused MADV_GUARD_INSTALL (needs Linux >= 6.15)");
        return;
    };
    let run = pgtool(&[
        "v2p",
        "--json",
        "--fields",
        "all",
        &child.pid.to_string(),
        &format!("{g:#x}"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    let d = check_against_direct(child.pid, &recs[0]);
    assert!(d.pme & (1 << 58) != 0, "kernel did not set pagemap bit 58");
    assert_eq!(recs[0]["guard"], json!(true));
    assert_eq!(recs[0]["present"], json!(false));
}

#[test]
fn v2p_hugetlb_head_and_size() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: PFNs and /proc/kpageflags are hidden from other users");
        return;
    }
    // Reserve one 2 MiB huge page for the test when none is free; restored afterwards.
    let _reserve = HugePageReservation::ensure_one_free();
    let child = Child::spawn_with("child_process", &[("PGTOOL_TEST_HUGETLB", "1")]);
    let Some(&h) = child.addrs.get("hugetlb") else {
        skip("could not map a hugetlb page (no free huge pages, and reserving one failed)");
        return;
    };
    let run = pgtool(&[
        "v2p",
        "--json",
        "--fields",
        "all",
        &child.pid.to_string(),
        &format!("{h:#x}"),
        &format!("{:#x}", h + 0x1ff000),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    let head = direct(child.pid, h).pfn.expect("hugetlb page present");
    for (r, off) in recs.iter().zip([0u64, 0x1ff]) {
        check_against_direct(child.pid, r);
        assert!(has_flag(r, "huge"), "{r}");
        assert_eq!(r["pfn"], json!(head + off));
        assert_eq!(r["head_pfn"], json!(head));
        assert_eq!(r["folio_pages"], json!(512));
    }
}

#[test]
fn v2p_thp_head_and_folio_size() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: PFNs and /proc/kpageflags are hidden from other users");
        return;
    }
    let child = Child::spawn("child_process");
    let Some(&base) = child.addrs.get("thp") else {
        skip("transparent hugepages are disabled (/sys/kernel/mm/transparent_hugepage/enabled)");
        return;
    };
    let d = direct(child.pid, base);
    let head_flags = d.flags.unwrap_or(0);
    if head_flags & (1 << 15) == 0 || head_flags & (1 << 22) == 0 {
        skip("the kernel did not back the madvised 2 MiB region with a THP (fragmented memory?)");
        return;
    }
    let run = pgtool(&[
        "v2p",
        "--json",
        "--fields",
        "all",
        &child.pid.to_string(),
        &format!("{base:#x}"),
        &format!("{:#x}+{:#x}", base + 0x1ff000, 0x1000),
        &format!("{:#x}", base + 0x1000),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    assert_eq!(recs.len(), 3);
    // the test's own forward count of tails after the head
    let head = d.pfn.expect("pfn");
    let mut pages = 1;
    while pread_u64("/proc/kpageflags", head + pages).is_some_and(|f| f & (1 << 16) != 0) {
        pages += 1;
    }
    assert_eq!(pages, 512, "a PMD THP is 512 base pages");
    for (i, r) in recs.iter().enumerate() {
        check_against_direct(child.pid, r);
        assert_eq!(r["head_pfn"], json!(head), "{r}");
        assert_eq!(r["folio_pages"], json!(pages));
        assert!(has_flag(r, "thp"));
        let off = [0u64, 0x1ff, 1][i];
        assert_eq!(r["pfn"], json!(head + off));
    }
}

#[test]
fn snapshot_gives_the_same_answers() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: snapshot copies /proc/kpage*, readable by root only");
        return;
    }
    let child = Child::spawn("child_process");
    let dir = tempfile::tempdir().expect("tmp");
    let snap = dir.path().join("snap");
    let snap_s = snap.to_str().expect("utf8");
    let pid = child.pid.to_string();
    let run = pgtool(&["snapshot", snap_s, "--pid", &pid]);
    assert_eq!(run.code, 0, "{run:?}");
    for f in [
        "proc/kpageflags",
        "proc/kpagecount",
        "proc/iomem",
        "cgroup-inodes.tsv",
    ] {
        assert!(snap.join(f).exists(), "{f}");
    }
    // the copy covers the live file exactly: its last word exists live, the next does not
    let words = std::fs::metadata(snap.join("proc/kpageflags"))
        .expect("meta")
        .len()
        / 8;
    assert!(words > 0);
    assert!(pread_u64("/proc/kpageflags", words - 1).is_some());
    assert!(pread_u64("/proc/kpageflags", words).is_none());
    let mut addrs: Vec<String> = ["anon", "anon2", "untouched", "shmem", "file", "cow"]
        .iter()
        .map(|n| format!("{:#x}", child.addr(n)))
        .collect();
    if let Some(t) = child.addrs.get("thp") {
        addrs.push(format!("{:#x}+0x3000", t + 0x100000));
    }
    let mut live_args = vec!["v2p", "--json", "--fields", "all", pid.as_str()];
    live_args.extend(addrs.iter().map(String::as_str));
    let mut snap_args = vec!["--root", snap_s];
    snap_args.extend(live_args.iter().copied());
    let live = json_lines(&pgtool(&live_args).stdout);
    let saved = pgtool(&snap_args);
    assert_eq!(saved.code, 0, "{saved:?}");
    let saved = json_lines(&saved.stdout);
    assert_eq!(live.len(), saved.len());
    assert!(live.len() >= 6);
    for (mut a, mut b) in live.into_iter().zip(saved) {
        // flags can flip between the two reads (LRU, referenced): compare the stable bits
        let fa = a["flags_raw"].as_u64().map(|f| f & STABLE);
        let fb = b["flags_raw"].as_u64().map(|f| f & STABLE);
        assert_eq!(fa, fb);
        for v in [&mut a, &mut b] {
            let o = v.as_object_mut().expect("object");
            o.remove("flags_raw");
            o.remove("flags_raw_hex");
            o.remove("flags");
        }
        assert_eq!(a, b);
    }
    // the snapshot's pagemap is sparse: far smaller on disk than its length
    let pm = std::fs::metadata(snap.join(format!("proc/{pid}/pagemap"))).expect("pm");
    assert!(
        pm.blocks() * 512 < pm.len() / 1000,
        "pagemap not sparse: {pm:?}"
    );
    // `self` is refused on a snapshot
    let r = pgtool(&["--root", snap_s, "v2p", "self", "0x1000"]);
    assert_eq!(r.code, 2);
}

/// The reference page-types, found the one way (`PGTOOL_REF_DIR`, tests/common).
fn page_types_bin() -> Option<std::path::PathBuf> {
    common::reference("page-types")
}

#[test]
fn v2p_agrees_with_reference_page_types() {
    if in_child() {
        return;
    }
    if !is_root() {
        skip("needs root: PFNs and /proc/kpageflags are hidden from other users");
        return;
    }
    let Some(pt) = page_types_bin() else {
        skip("reference page-types not built (run tools/build-reference.sh)");
        return;
    };
    let child = Child::spawn("child_process");
    let pid = child.pid.to_string();
    // page-types -p PID -L -N: "voffset offset flags" per present page (hex VPN and PFN)
    let out = std::process::Command::new(&pt)
        .args(["-p", &pid, "-L", "-N"])
        .output()
        .expect("run page-types");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut want: std::collections::HashMap<u64, (u64, String)> = Default::default();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        if let [v, p, flags] = f.as_slice() {
            let v = u64::from_str_radix(v, 16).expect("vpn");
            let p = u64::from_str_radix(p, 16).expect("pfn");
            want.insert(v, (p, flags.to_string()));
        }
    }
    let mut specs = vec![];
    for n in ["anon", "shmem", "file", "cow"] {
        specs.push(format!("{:#x}", child.addr(n)));
    }
    if let Some(t) = child.addrs.get("thp") {
        specs.push(format!("{t:#x}+0x200000"));
    }
    let mut args = vec!["v2p", "--json", "--fields", "all", pid.as_str()];
    args.extend(specs.iter().map(String::as_str));
    let run = pgtool(&args);
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    assert!(recs.len() >= 4);
    let mut compared = 0;
    for r in &recs {
        let vpn = r["vaddr"].as_u64().expect("vaddr") / PS;
        let Some((pfn, sym)) = want.get(&vpn) else {
            panic!("page-types does not list vpn {vpn:#x}: {r}");
        };
        assert_eq!(r["pfn"], json!(pfn), "{r}");
        // columns 0..=26 of page-types' letters are kpageflags bits 0..=26; compare the bits
        // that do not flip on their own (mmap, anonymous, swapbacked, head, tail, thp)
        let raw = r["flags_raw"].as_u64().expect("flags_raw");
        for bit in [11usize, 12, 14, 15, 16, 22] {
            let letter = sym.as_bytes()[bit] != b'_';
            // page-types' default view hides head/tail for THP (only `t` shows)
            let thp_compound = (bit == 15 || bit == 16) && raw & (1 << 17) == 0;
            if !thp_compound {
                assert_eq!(letter, raw & (1 << bit) != 0, "bit {bit}: {sym} vs {r}");
            }
        }
        compared += 1;
    }
    assert_eq!(compared, recs.len());
}
