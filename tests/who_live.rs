//! Live tests of `pgtool who` (root): a forked page, a THP tail, a shared file mapping,
//! processes exiting during the scan, CLONE_VM sharers. Every expected PFN is found here with
//! direct reads of /proc/PID/pagemap, /proc/kpagecount and /proc/kpageflags, not with the
//! library under test.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::Mutex;

/// Tests in this binary fork: a fork while another test holds a fresh mapping would make the
/// new child map that page too, so forking tests run one at a time.
static FORK_LOCK: Mutex<()> = Mutex::new(());

const PS: usize = 4096;

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip(reason: &str) -> bool {
    common::skip(reason)
}

fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root (pagemap PFNs and /proc/kpage* are root-only)");
    }
    if File::open("/proc/kpagecount").is_err() {
        return skip("/proc/kpagecount missing (CONFIG_PROC_PAGE_MONITOR)");
    }
    false
}

fn word(path: &str, index: u64) -> u64 {
    let f = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, index * 8)
        .unwrap_or_else(|e| panic!("{path} @ {index}: {e}"));
    u64::from_ne_bytes(b)
}

/// PFN of `vaddr` in `pid`, straight from pagemap.
fn pfn_of(pid: u32, vaddr: usize) -> Option<u64> {
    let w = word(&format!("/proc/{pid}/pagemap"), (vaddr / PS) as u64);
    (w >> 63 == 1)
        .then_some(w & ((1 << 55) - 1))
        .filter(|&p| p != 0)
}

fn kpagecount(pfn: u64) -> u64 {
    word("/proc/kpagecount", pfn)
}

fn kpageflags(pfn: u64) -> u64 {
    word("/proc/kpageflags", pfn)
}

/// A forked child that only pauses; killed and reaped on drop.
struct Child(libc::pid_t);

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: plain syscalls on our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// In a forked child of a multi-threaded process only async-signal-safe calls are allowed:
/// these helpers use raw syscalls only.
fn child_setup() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

fn child_pause() -> ! {
    loop {
        // SAFETY: pause has no preconditions.
        unsafe {
            libc::pause();
        }
    }
}

/// Fork a child that runs `f` (async-signal-safe code only) and then pauses forever.
fn fork_child(f: impl FnOnce()) -> Child {
    // SAFETY: the child only runs async-signal-safe code (raw syscalls) and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child_setup();
        f();
        child_pause();
    }
    Child(pid)
}

fn mmap_anon(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous private mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    p.cast()
}

fn pgtool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(args)
        .output()
        .expect("run pgtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn who_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["who", "--json"];
    a.extend_from_slice(args);
    let (rc, out, err) = pgtool(&a);
    assert_eq!(rc, 0, "pgtool {a:?} failed: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

fn recs_for(recs: &[serde_json::Value], pid: u32) -> Vec<&serde_json::Value> {
    recs.iter()
        .filter(|r| r["pid"].as_u64() == Some(u64::from(pid)))
        .collect()
}

#[test]
fn forked_page_reports_both_processes() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    let p = mmap_anon(PS);
    // SAFETY: p is a writable page we own.
    unsafe { p.write_volatile(0x5a) };
    let me = std::process::id();
    let child = fork_child(|| {});
    let cpid = child.0 as u32;
    let va = p as usize;
    let pfn = pfn_of(me, va).expect("parent page present");
    assert_eq!(
        pfn_of(cpid, va),
        Some(pfn),
        "child shares the page after fork"
    );
    assert_eq!(kpagecount(pfn), 2, "kpagecount of a page shared by a fork");

    let recs = who_json(&[&format!("{pfn:#x}")]);
    for pid in [me, cpid] {
        let r = recs_for(&recs, pid);
        assert_eq!(r.len(), 1, "one mapping for {pid}: {recs:?}");
        let r = r[0];
        assert_eq!(r["pfn"].as_u64(), Some(pfn));
        assert_eq!(r["vaddr"].as_u64(), Some(va as u64));
        assert_eq!(r["kpagecount"].as_u64(), Some(2));
        assert_eq!(r["exclusive"].as_bool(), Some(false));
        assert_eq!(r["vma"]["perms"].as_str(), Some("rw-p"));
        assert!(r["vma"]["start"].as_u64() <= Some(va as u64));
        assert!(
            r["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "anonymous"))
        );
        assert_eq!(r["note"], serde_json::Value::Null, "{r}");
    }
    assert_eq!(recs.len(), 2, "nobody else maps it: {recs:?}");
    // Restricting to one PID finds only that one, and says the other mapping is missing.
    let recs = who_json(&["--pid", &cpid.to_string(), &format!("{pfn:#x}")]);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["pid"].as_u64(), Some(u64::from(cpid)));
    assert!(
        recs[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("kpagecount 2 but 1"))
    );
    // Table output names both PIDs.
    let (rc, out, _) = pgtool(&["who", &pfn.to_string()]);
    assert_eq!(rc, 0);
    assert!(
        out.contains(&format!(" {me} ")) && out.contains(&format!(" {cpid} ")),
        "{out}"
    );
    drop(child);
    // SAFETY: unmapping our own page.
    unsafe { libc::munmap(p.cast(), PS) };
}

#[test]
fn thp_tail_reports_owner_and_subpage() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !(mode.contains("[always]") || mode.contains("[madvise]")) {
        skip(&format!("THP disabled: {}", mode.trim()));
        return;
    }
    const HPAGE: usize = 2 << 20;
    let raw = mmap_anon(2 * HPAGE);
    let base = (raw as usize).next_multiple_of(HPAGE);
    let huge = base as *mut u8;
    let me = std::process::id();
    // SAFETY: madvise/memset on a range inside our mapping.
    unsafe {
        libc::madvise(huge.cast(), HPAGE, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(huge, 1, HPAGE);
    }
    let head_pfn = pfn_of(me, base);
    let is_thp = |pfn: Option<u64>| {
        pfn.is_some_and(|p| kpageflags(p) & (1 << 15 | 1 << 22) == (1 << 15 | 1 << 22))
    };
    if !is_thp(head_pfn) {
        // Memory may be fragmented: try MADV_COLLAPSE (Linux >= 6.1).
        // SAFETY: as above.
        unsafe {
            libc::madvise(huge.cast(), HPAGE, 25 /* MADV_COLLAPSE */)
        };
    }
    let head = pfn_of(me, base);
    if !is_thp(head) {
        skip("could not get a THP for the test region (fragmented memory?)");
        // SAFETY: our mapping.
        unsafe { libc::munmap(raw.cast(), 2 * HPAGE) };
        return;
    }
    let head = head.expect("present");
    let tail = head + 5;
    assert_eq!(pfn_of(me, base + 5 * PS), Some(tail));
    assert_ne!(kpageflags(tail) & (1 << 16), 0, "tail flag on {tail:#x}");

    let recs = who_json(&[&format!("{tail:#x}")]);
    let mine = recs_for(&recs, me);
    assert_eq!(mine.len(), 1, "{recs:?}");
    let r = mine[0];
    assert_eq!(r["pfn"].as_u64(), Some(tail));
    assert_eq!(r["vaddr"].as_u64(), Some((base + 5 * PS) as u64));
    assert_eq!(r["subpage"].as_u64(), Some(5));
    assert_eq!(r["pages"].as_u64(), Some(512));
    assert_eq!(r["mapped_pfn"].as_u64(), Some(tail));
    assert!(
        r["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "compound_tail"))
    );
    // The head PFN finds the same mapping at subpage 0.
    let recs = who_json(&["--pid", &me.to_string(), &format!("{head:#x}")]);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["subpage"].as_u64(), Some(0));
    assert_eq!(recs[0]["vaddr"].as_u64(), Some(base as u64));
    // SAFETY: our mapping.
    unsafe { libc::munmap(raw.cast(), 2 * HPAGE) };
}

#[test]
fn shared_file_mapping_in_two_processes() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp")
        .or_else(|_| tempfile::tempdir())
        .expect("tmp");
    let path = dir.path().join("shared.dat");
    std::fs::write(&path, vec![7u8; PS]).expect("write");
    let file = File::open(&path).expect("open");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut pipe = [0i32; 2];
    // SAFETY: pipe fills two fds.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // The child maps the file itself (before the parent does, so it inherits nothing) and
    // sends its address back.
    let child = fork_child(move || {
        // SAFETY: raw syscalls only.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                PS,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            );
            let v = std::ptr::read_volatile(p.cast::<u8>());
            let a = (p as usize, v);
            libc::write(
                pipe[1],
                (&a as *const (usize, u8)).cast(),
                std::mem::size_of::<(usize, u8)>(),
            );
        }
    });
    let mut got = (0usize, 0u8);
    // SAFETY: reading the child's message into `got`.
    let n = unsafe {
        libc::read(
            pipe[0],
            (&mut got as *mut (usize, u8)).cast(),
            std::mem::size_of::<(usize, u8)>(),
        )
    };
    assert_eq!(n as usize, std::mem::size_of::<(usize, u8)>());
    let (cva, v) = got;
    assert_eq!(v, 7);
    // SAFETY: a shared read-only file mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PS,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: reading our mapping faults the page in.
    assert_eq!(unsafe { std::ptr::read_volatile(p.cast::<u8>()) }, 7);
    let me = std::process::id();
    let cpid = child.0 as u32;
    let pfn = pfn_of(me, p as usize).expect("parent maps the file page");
    assert_eq!(pfn_of(cpid, cva), Some(pfn), "same page cache page");
    assert_eq!(kpagecount(pfn), 2);

    let recs = who_json(&[&format!("{pfn:#x}")]);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let want_path = path.to_string_lossy().into_owned();
    for (pid, va) in [(me, p as usize), (cpid, cva)] {
        let r = recs_for(&recs, pid);
        assert_eq!(r.len(), 1, "{pid}: {recs:?}");
        assert_eq!(r[0]["vaddr"].as_u64(), Some(va as u64));
        assert_eq!(r[0]["vma"]["perms"].as_str(), Some("r--s"));
        assert_eq!(r[0]["vma"]["path"].as_str(), Some(want_path.as_str()));
        assert_eq!(r[0]["kpagecount"].as_u64(), Some(2));
    }
    drop(child);
    // SAFETY: cleanup of our own mapping and fds.
    unsafe {
        libc::munmap(p, PS);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
}

#[test]
fn clone_vm_sharers_are_read_once_and_both_reported() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    let p = mmap_anon(PS);
    // SAFETY: our page.
    unsafe { p.write_volatile(1) };
    let stack = mmap_anon(64 << 10);
    extern "C" fn child_fn(_: *mut libc::c_void) -> libc::c_int {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    // SAFETY: clone with CLONE_VM on a private stack; the child only calls pause().
    let pid = unsafe {
        libc::clone(
            child_fn,
            stack.add(64 << 10).cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    assert!(pid > 0, "clone failed");
    let child = Child(pid);
    let me = std::process::id();
    let pfn = pfn_of(me, p as usize).expect("present");
    assert_eq!(kpagecount(pfn), 1, "one mm, one mapping");
    let (rc, out, err) = pgtool(&["who", "--json", &format!("{pfn:#x}")]);
    assert_eq!(rc, 0, "{err}");
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let pids: Vec<u64> = recs.iter().filter_map(|r| r["pid"].as_u64()).collect();
    assert!(
        pids.contains(&u64::from(me)) && pids.contains(&(pid as u64)),
        "{recs:?}"
    );
    let lowest = u64::from(me.min(pid as u32));
    assert!(
        recs.iter().all(|r| r["mm"].as_u64() == Some(lowest)),
        "{recs:?}"
    );
    assert!(
        recs.iter().all(|r| r["note"].is_null()),
        "kpagecount 1 = 1 mm found: {recs:?}"
    );
    assert!(!err.contains(" 0 sharing an address space"), "{err}");
    drop(child);
}

#[test]
fn processes_exiting_during_the_scan_are_counted_not_fatal() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    let p = mmap_anon(PS);
    // SAFETY: our page.
    unsafe { p.write_volatile(3) };
    let me = std::process::id();
    let pfn = pfn_of(me, p as usize).expect("present");

    // A PID that is gone: counted, not an error.
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    let (rc, out, err) = pgtool(&[
        "who",
        "--json",
        "--pid",
        &format!("{dead_pid},{me}"),
        &format!("{pfn:#x}"),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("1 exited during the scan"), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // Many short-lived processes while who scans everything.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut exited_total = 0u64;
    std::thread::scope(|s| {
        let spawner = s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kids: Vec<_> = (0..8)
                    .filter_map(|_| Command::new("sleep").arg("0.01").spawn().ok())
                    .collect();
                for mut k in kids {
                    let _ = k.wait();
                    n += 1;
                }
            }
            n
        });
        for _ in 0..20 {
            let (rc, out, err) = pgtool(&["who", "--json", "--exhaustive", &format!("{pfn:#x}")]);
            assert_eq!(rc, 0, "who failed while processes come and go: {err}");
            assert!(
                out.lines().any(|l| l.contains(&format!("\"pid\":{me},"))),
                "{out}"
            );
            let n: u64 = err
                .split_once(" exited during the scan")
                .and_then(|(a, _)| a.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no exited count in {err:?}"));
            exited_total += n;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let spawned = spawner.join().expect("spawner");
        assert!(spawned > 0);
    });
    eprintln!("processes that exited during 20 scans: {exited_total}");
    // SAFETY: our page.
    unsafe { libc::munmap(p.cast(), PS) };
}

#[test]
fn unmapped_and_past_end_pfns() {
    if need_root() {
        return;
    }
    // The last PFN kpageflags has + far beyond: exit 1 for past the end.
    let len = std::fs::metadata("/proc/kpageflags")
        .map(|m| m.len())
        .unwrap_or(0);
    let _ = len; // procfs reports size 0; probe a PFN far past any RAM instead.
    let (rc, out, _) = pgtool(&["who", "0xfffffffffff"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("past the end of memory"), "{out}");
    // Find a free (buddy) PFN directly and check the explanation.
    let f = File::open("/proc/kpageflags").expect("open");
    let mut buf = vec![0u8; 8 * 4096];
    let mut found = None;
    'scan: for chunk in 0..64u64 {
        let off = (0x10000 + chunk * 4096) * 8;
        if f.read_exact_at(&mut buf, off).is_err() {
            break;
        }
        for (i, w) in buf.chunks_exact(8).enumerate() {
            let w = u64::from_ne_bytes(w.try_into().expect("8"));
            if w == 1 << 10 {
                found = Some(0x10000 + chunk * 4096 + i as u64);
                break 'scan;
            }
        }
    }
    let Some(free) = found else {
        eprintln!("no free buddy page found to check the explanation");
        return;
    };
    let (rc, out, err) = pgtool(&["who", "--json", &format!("{free:#x}")]);
    assert_eq!(rc, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    // It may have been allocated meanwhile; only check when still free.
    if kpageflags(free) == 1 << 10 {
        assert!(r["pid"].is_null());
        assert!(
            r["note"].as_str().is_some_and(|n| n.contains("free")),
            "{r}"
        );
    }
}

/// Restores /proc/sys/vm/nr_hugepages on drop.
struct HugepagesGuard(String);

impl Drop for HugepagesGuard {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/vm/nr_hugepages", &self.0);
    }
}

#[test]
fn hugetlb_tail_reports_owner_and_subpage() {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if need_root() {
        return;
    }
    const HPAGE: usize = 2 << 20;
    let Ok(before) = std::fs::read_to_string("/proc/sys/vm/nr_hugepages") else {
        skip("no /proc/sys/vm/nr_hugepages (CONFIG_HUGETLBFS)");
        return;
    };
    let before = before.trim().to_string();
    let n: u64 = before.parse().unwrap_or(0);
    let _restore = HugepagesGuard(before.clone());
    if std::fs::write("/proc/sys/vm/nr_hugepages", (n + 1).to_string()).is_err() {
        skip("cannot reserve a hugetlb page");
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
        skip("no free 2 MiB hugetlb page (memory fragmented?)");
        return;
    }
    let base = p as usize;
    // SAFETY: writing inside our mapping faults the huge page in.
    unsafe { std::ptr::write_bytes(p.cast::<u8>(), 9, 4096) };
    let me = std::process::id();
    let head = pfn_of(me, base).expect("hugetlb page present");
    let tail = pfn_of(me, base + 7 * PS).expect("tail present");
    assert_eq!(tail, head + 7);
    let f = kpageflags(tail);
    assert_ne!(f & (1 << 17), 0, "huge flag on {tail:#x}: {f:#x}");
    let recs = who_json(&["--pid", &me.to_string(), &format!("{tail:#x}")]);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["subpage"].as_u64(), Some(7));
    assert_eq!(recs[0]["vaddr"].as_u64(), Some((base + 7 * PS) as u64));
    assert_eq!(recs[0]["pages"].as_u64(), Some(512));
    // SAFETY: our mapping.
    unsafe { libc::munmap(p, HPAGE) };
}
