//! `pgtool mem` against the kernel's own figures, on the live system (root):
//!
//! - every process: `pgtool mem --json` vs `/proc/PID/smaps_rollup` (Rss, Pss, Pss_Anon,
//!   Pss_File, Pss_Shmem, Swap, SwapPss, in kB), read while pgtool is still alive and blocked
//!   on its output (its own mappings of libc, ld.so and libgcc_s change other processes' PSS).
//!   A family the test starts (a copy of this binary on private copies of its libraries, so no
//!   other process shares its pages: anonymous, THP, shmem, file and zero-page memory, and a
//!   fork sharing part of a THP with different per-page map counts) is SIGSTOPped and must
//!   agree to the kB. Every other process is left running (stopping pgtool's ancestors or
//!   system daemons is unsafe): it is compared, to the kB, only when its rollup read before
//!   pgtool and twice while pgtool is blocked did not move; a mismatch must repeat in three
//!   whole runs to fail (a shell forking meanwhile changes the map counts of shared pages).
//! - `--by library` vs the sum of each file's per-mapping Pss in `/proc/PID/smaps`.
//!
//! `--by memcg` vs memory.stat is in tests/mem_memcg.rs.

mod common;

use common::{is_root, json_lines, skip};
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The live tests run one at a time: each spawns processes (families, pgtool) whose start and
/// exit move every other process's shared-library PSS while the other test compares.
static LIVE: Mutex<()> = Mutex::new(());

const FIELDS: [(&str, &str); 7] = [
    ("Rss", "rss_bytes"),
    ("Pss", "pss_bytes"),
    ("Pss_Anon", "pss_anon_bytes"),
    ("Pss_File", "pss_file_bytes"),
    ("Pss_Shmem", "pss_shmem_bytes"),
    ("Swap", "swap_bytes"),
    ("SwapPss", "swap_pss_bytes"),
];

/// `Key: N kB` fields of smaps_rollup, in kB; None when unreadable.
fn rollup(pid: u32) -> Option<HashMap<String, u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let mut m = HashMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.split_once(':')
            && let Some(n) = v.trim().strip_suffix(" kB")
            && let Ok(n) = n.trim().parse::<u64>()
        {
            m.insert(k.to_string(), n);
        }
    }
    m.contains_key("Rss").then_some(m)
}

fn ours_kb(row: &Value, key: &str) -> u64 {
    row[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {row}"))
        >> 10
}

/// The family: A (a copy of this test binary, executed: it shares no anonymous memory and no
/// text pages with this running test process) and its fork B. Killed on drop (B follows A by
/// PDEATHSIG).
struct Family {
    pids: Vec<i32>,
    a: std::process::Child,
}

impl Drop for Family {
    fn drop(&mut self) {
        let _ = self.a.kill();
        let _ = self.a.wait();
    }
}

fn mmap(len: usize, prot: i32, flags: i32, fd: i32) -> *mut u8 {
    // SAFETY: a fresh mapping; the callers touch it only within `len`.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap");
    p.cast()
}

/// In the child A: map anonymous (8 MiB), THP-advised (4 MiB, 2 MiB aligned), shared
/// anonymous (1 MiB), file (2 MiB, MAP_SHARED) and read-only zero-page (1 MiB) memory, and
/// 160 MiB of anonymous memory (so that `mem` splits each address space over threads: parts
/// of at least 64 MiB, copy-on-write pages shared by A and B in every part), then
/// fork B, which writes a page of the THP (the folio becomes partly shared, per-page map counts
/// differ) and half the anonymous memory. B runs raw syscalls only.
#[test]
fn family_child() {
    if !common::in_child() {
        return;
    }
    let file = std::env::var("MEM_DATA_FILE").expect("MEM_DATA_FILE");
    let cpath = CString::new(file).expect("path");
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let priv_anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let mut fds = [0i32; 2];
    // SAFETY: raw syscalls and writes inside the mappings made here.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        let anon = mmap(8 << 20, rw, priv_anon, -1);
        for i in (0..8 << 20).step_by(4096) {
            *anon.add(i) = 1;
        }
        let wide = mmap(160 << 20, rw, priv_anon, -1);
        for i in (0..160 << 20).step_by(4096) {
            *wide.add(i) = 3;
        }
        let big = mmap(8 << 20, rw, priv_anon, -1) as usize;
        let thp = ((big + (2 << 20) - 1) & !((2 << 20) - 1)) as *mut u8;
        libc::madvise(thp.cast(), 4 << 20, libc::MADV_HUGEPAGE);
        for i in (0..4 << 20).step_by(4096) {
            *thp.add(i) = 1;
        }
        let shm = mmap(1 << 20, rw, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1);
        for i in (0..1 << 20).step_by(4096) {
            *shm.add(i) = 1;
        }
        let fd = libc::open(cpath.as_ptr(), libc::O_RDONLY);
        assert!(fd >= 0, "open data file");
        let f = mmap(2 << 20, libc::PROT_READ, libc::MAP_SHARED, fd);
        let mut sum = 0u8;
        for i in (0..2 << 20).step_by(4096) {
            sum = sum.wrapping_add(std::ptr::read_volatile(f.add(i)));
        }
        let z = mmap(1 << 20, libc::PROT_READ, priv_anon, -1);
        for i in (0..1 << 20).step_by(4096) {
            sum = sum.wrapping_add(std::ptr::read_volatile(z.add(i)));
        }
        std::ptr::write_volatile(anon, sum);
        let b = libc::fork();
        if b == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            *thp = 2;
            for i in (0..4 << 20).step_by(4096) {
                *anon.add(i) = 2;
            }
            // fork copies no page tables of shared file mappings: fault them in again
            for i in (0..2 << 20).step_by(4096) {
                sum = sum.wrapping_add(std::ptr::read_volatile(f.add(i)));
            }
            std::ptr::write_volatile(anon.add(4096), sum);
            libc::write(fds[1], b"b".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
        let mut c = 0u8;
        libc::read(fds[0], (&mut c as *mut u8).cast(), 1);
        common::tell(&format!("ADDR b {b:#x}"));
    }
    common::tell("READY");
    common::wait_for_eof_and_exit();
}

fn spawn_family(file: &std::path::Path) -> Family {
    let dir = file.parent().expect("dir");
    let exe = dir.join("mem_family");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy test binary");
    // Private copies of the shared libraries and the dynamic loader too: pages of the
    // system's libc are mapped by every process, whose starts and exits (and pgtool's own
    // page faults while it prints) move their PSS between pgtool's read and the kernel's.
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let mut loader = None;
    for lib in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let p = std::path::Path::new(lib);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains(".so") && !dir.join(name).exists() {
            std::fs::copy(p, dir.join(name)).expect("copy library");
            if name.starts_with("ld-") {
                loader = Some(dir.join(name));
            }
        }
    }
    let loader = loader.expect("the dynamic loader is mapped");
    let mut a = Command::new(&loader)
        .arg("--library-path")
        .arg(dir)
        .arg(&exe)
        .args(["family_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("PGTOOL_TEST_CHILD", "1")
        .env("MEM_DATA_FILE", file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn family");
    let out = std::io::BufReader::new(a.stdout.take().expect("stdout"));
    let mut b = None;
    for line in std::io::BufRead::lines(out) {
        let line = line.expect("family output");
        if let Some(i) = line.find("ADDR b 0x") {
            b = i32::from_str_radix(line[i + 9..].trim(), 16).ok();
        }
        if line.contains("READY") {
            break;
        }
    }
    let b = b.expect("family reported B's pid");
    Family {
        pids: vec![a.id() as i32, b],
        a,
    }
}

fn stop(f: &Family, sig: i32) {
    for &p in &f.pids {
        // SAFETY: signalling our own children.
        unsafe { libc::kill(p, sig) };
    }
    if sig == libc::SIGSTOP {
        for &p in &f.pids {
            for _ in 0..400 {
                let st = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                if st
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('T'))
                {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

fn data_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("mapped.bin");
    std::fs::write(&p, vec![7u8; 2 << 20]).expect("write data file");
    p
}

/// Run pgtool and call `during` while it is still alive with every page already read: its
/// stdout is a 4 KiB pipe the test fills but one byte before pgtool starts, so pgtool blocks
/// on its first write (the report is complete by then) until `during` returns. The kernel's
/// figures are thus read in the same state, pgtool's own mappings (libc, ld.so, libgcc_s: they
/// change other processes' PSS of those pages) included, and as soon as the walk ends.
fn run_stalled<T>(args: &[&str], during: impl FnOnce() -> T) -> (i32, String, String, T) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe fills two fds, which the Files below then own.
    let (mut rd, mut wr) = unsafe {
        // O_CLOEXEC: processes other tests spawn meanwhile must not hold the write end.
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: fcntl on our own pipe.
    let size = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096, "F_SETPIPE_SZ");
    let filler = vec![b'#'; size as usize - 1];
    std::io::Write::write_all(&mut wr, &filler).expect("fill pipe");
    let mut child = Command::new(common::pgtool_bin())
        .args(args)
        .stdout(Stdio::from(wr.try_clone().expect("dup")))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgtool");
    drop(wr);
    // Wait until pgtool blocks writing (a write up to PIPE_BUF waits for room for all of it,
    // a longer one fills the last byte first), or exits without output.
    let wchan = format!("/proc/{}/wchan", child.id());
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes an int.
        unsafe { libc::ioctl(rd.as_raw_fd(), libc::FIONREAD, &mut n) };
        if n as usize > filler.len()
            || std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_write"))
            || child.try_wait().expect("try_wait").is_some()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let t = during();
    let alive = child.try_wait().expect("try_wait").is_none();
    let mut all = Vec::new();
    rd.read_to_end(&mut all).expect("read stdout");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    assert!(
        alive || code != 0,
        "pgtool exited before the kernel's figures were read"
    );
    let out = String::from_utf8_lossy(&all[filler.len().min(all.len())..]).into_owned();
    (code, out, err, t)
}

fn all_rollups(pids: &[u32]) -> HashMap<u32, HashMap<String, u64>> {
    pids.iter().filter_map(|&p| Some((p, rollup(p)?))).collect()
}

fn proc_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// One comparison over `args`' rows: (compared, moved, mismatching pids with messages).
///
/// R0 is every rollup read before pgtool starts, R1 and R2 two reads while pgtool is alive and
/// blocked on its output. A process is compared when R1 = R2 and R0 agrees with them on every
/// field but Pss and Pss_File: pgtool's own start maps libc and ld.so, and it keeps faulting
/// their pages in until it blocks, so every process sharing them sees its Pss_File fall from R0
/// to R1 while pgtool reads. Those two must lie between R1 and R0; the others are exact.
fn compare_once(args: &[&str], family: &[i32]) -> (usize, usize, HashMap<u32, Vec<String>>) {
    let pids = proc_pids();
    let r0 = all_rollups(&pids);
    let (code, stdout, stderr, (r1, r2)) =
        run_stalled(args, || (all_rollups(&pids), all_rollups(&pids)));
    assert_eq!(code, 0, "{stderr}");
    let rows = json_lines(&stdout);
    for p in family {
        assert!(
            rows.iter().any(|r| r["pid"] == *p),
            "process {p} missing:\n{stdout}"
        );
    }
    let shared_by_pgtool = |k: &str| matches!(k, "Pss" | "Pss_File");
    let (mut compared, mut moved) = (0, 0);
    let mut bad: HashMap<u32, Vec<String>> = HashMap::new();
    for row in rows.iter().filter(|r| r["total"] == false) {
        let pid = row["pid"].as_u64().expect("pid") as u32;
        assert_eq!(row["source"], "pages", "{row}");
        let (Some(z), Some(a), Some(b)) = (r0.get(&pid), r1.get(&pid), r2.get(&pid)) else {
            continue;
        };
        let stable = FIELDS.iter().all(|(k, _)| {
            a.get(*k) == b.get(*k) && (shared_by_pgtool(k) || z.get(*k) == a.get(*k))
        });
        if !stable {
            moved += 1;
            continue;
        }
        compared += 1;
        for (k, j) in FIELDS {
            let after = a.get(k).copied().unwrap_or(0);
            let before = if shared_by_pgtool(k) {
                z.get(k).copied().unwrap_or(0)
            } else {
                after
            };
            let ours = ours_kb(row, j);
            if ours < after.min(before) || ours > after.max(before) {
                bad.entry(pid).or_default().push(format!(
                    "pid {pid} {}: {k} {before}..{after} kB, pgtool {ours} kB",
                    row["comm"]
                ));
            }
        }
    }
    (compared, moved, bad)
}

#[test]
fn every_process_agrees_with_smaps_rollup() {
    if !is_root() && skip("mem_live: needs root to read PFNs") {
        return;
    }
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tmp");
    let fam = spawn_family(&data_file(tmp.path()));
    stop(&fam, libc::SIGSTOP);
    // The stopped family, alone (the walk takes milliseconds): its anonymous, THP, shmem and
    // zero-page memory is its own, but its libc pages are shared with every process, whose
    // starts and exits move its Pss_File; up to 5 runs for one where both reads agree.
    // `--fast` counts anonymous pages mapped once from pagemap alone: the same figures;
    // so must one thread and three (each address space read in parts, summed).
    let list = format!("{},{}", fam.pids[0], fam.pids[1]);
    for (fast, threads) in [(false, "1"), (false, "3"), (true, "1"), (true, "3")] {
        let mut args = vec!["mem", "--json", "--pid", &list, "--threads", threads];
        args.extend(fast.then_some("--fast"));
        let mut family_ok = false;
        for _ in 0..5 {
            let (compared, _, bad) = compare_once(&args, &fam.pids);
            if compared == 2 {
                assert!(bad.is_empty(), "fast {fast}, threads {threads}: {:?}", bad);
                family_ok = true;
                break;
            }
        }
        assert!(
            family_ok,
            "the family's figures moved in every run (fast {fast}, threads {threads})"
        );
    }
    let run = common::pgtool(&["mem", "--json", "--fast", "--pid", &list]);
    for r in json_lines(&run.stdout) {
        assert!(
            r["thp_bytes"].is_null() && r["ksm_bytes"].is_null() && r["dirty_bytes"].is_null(),
            "--fast does not read THP/KSM/dirty: {r}"
        );
    }
    let run = common::pgtool(&["mem", "--json", "--pid", &fam.pids[0].to_string()]);
    let a = &json_lines(&run.stdout)[0];
    assert!(
        a["zero_page_bytes"].as_u64() >= Some(1 << 20),
        "1 MiB read-only anon: {a}"
    );
    assert!(
        a["shmem_bytes"].as_u64() >= Some(1 << 20),
        "1 MiB shared anon: {a}"
    );
    assert!(
        a["uss_bytes"].as_u64() >= Some(4 << 20),
        "4 MiB B did not share: {a}"
    );
    if a["thp_bytes"].as_u64() < Some(2 << 20) {
        eprintln!("note: no THP was allocated for the family (fragmented memory?): {a}");
    } else if !run.stderr.contains("large folios") {
        panic!("THP pages but no note on large folios: {}", run.stderr);
    }
    // Every process: those whose figures did not move before, during and after pgtool, by
    // pages and with --fast.
    let mut all_bad = HashMap::new();
    let mut compared = usize::MAX;
    for args in [&["mem", "--json"][..], &["mem", "--json", "--fast"][..]] {
        let (n, moved, mut bad) = compare_once(args, &fam.pids);
        eprintln!(
            "{args:?}: compared {n} processes (to the kB; Pss, Pss_File within pgtool's own start); {moved} moved (skipped)"
        );
        // Pages another process mapped and unmapped between the reads: up to four more whole
        // runs; a process fails only when it disagrees, stable, in every one.
        for _ in 0..4 {
            if bad.is_empty() {
                break;
            }
            let (_, _, again) = compare_once(args, &fam.pids);
            bad.retain(|p, _| again.contains_key(p));
        }
        compared = compared.min(n);
        all_bad.extend(bad);
    }
    let bad = all_bad;
    stop(&fam, libc::SIGCONT);
    let msgs: Vec<String> = bad.into_values().flatten().collect();
    assert!(msgs.is_empty(), "{}", msgs.join("\n"));
    assert!(compared >= 3, "only {compared} processes compared");
}

/// Per-mapping Pss (kB) and VMA count of file mappings in /proc/PID/smaps, by path.
fn smaps_by_file(pid: i32, out: &mut HashMap<String, (u64, u64)>) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let mut path: Option<String> = None;
    for l in text.lines() {
        let first = l.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // a VMA header: start-end perms offset dev inode [path]
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            let p = f.get(5).map(|s| s.trim_start()).unwrap_or("");
            let inode = f.get(4).copied().unwrap_or("0");
            path = (inode != "0" && !p.is_empty() && !p.starts_with('[')).then(|| p.to_string());
        } else if let Some(v) = l.strip_prefix("Pss:")
            && let Some(p) = &path
        {
            let kb: u64 = v.trim().trim_end_matches(" kB").trim().parse().expect("kB");
            let e = out.entry(p.clone()).or_default();
            e.0 += kb;
            e.1 += 1;
        }
    }
}

#[test]
fn by_library_agrees_with_smaps_per_mapping_pss() {
    if !is_root() && skip("mem_live: needs root to read PFNs") {
        return;
    }
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tmp");
    let data = data_file(tmp.path());
    let fam = spawn_family(&data);
    stop(&fam, libc::SIGSTOP);
    let pid = fam.pids[0].to_string();
    let args = [
        "mem",
        "--by",
        "library",
        "--pid",
        &pid,
        "--children",
        "--json",
    ];
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (code, stdout, stderr, (before, after)) = run_stalled(&args, || {
            let mut before = HashMap::new();
            fam.pids.iter().for_each(|&p| smaps_by_file(p, &mut before));
            let mut after = HashMap::new();
            fam.pids.iter().for_each(|&p| smaps_by_file(p, &mut after));
            (before, after)
        });
        assert_eq!(code, 0, "{stderr}");
        let rows = json_lines(&stdout);
        let mut bad = Vec::new();
        for (path, &(kb, vmas)) in &after {
            let row = rows.iter().find(|r| r["path"] == path.as_str());
            let ours = row.map(|r| ours_kb(r, "pss_bytes")).unwrap_or(0);
            let b = before.get(path).map(|b| b.0).unwrap_or(kb);
            let (lo, hi) = (kb.min(b), kb.max(b));
            // smaps truncates each VMA's Pss to a kB; pgtool truncates the file's sum once.
            if ours < lo || ours > hi + vmas {
                bad.push(format!(
                    "{path}: smaps {lo}..{hi} kB over {vmas} VMAs, pgtool {ours} kB"
                ));
            }
        }
        for r in rows.iter().filter(|r| r["total"] == false) {
            let p = r["path"].as_str().expect("path");
            assert!(
                after.contains_key(p),
                "pgtool lists {p}, smaps has no file mapping of it"
            );
        }
        let row = rows
            .iter()
            .find(|r| r["path"] == data.to_str().expect("utf8"));
        let row = row.expect("the data file is listed");
        assert_eq!(row["processes"], 2, "mapped by A and B: {row}");
        assert_eq!(row["rss_bytes"], 4 << 20, "2 MiB in each of A and B: {row}");
        assert_eq!(row["pss_bytes"], 2 << 20, "2 MiB shared by 2: {row}");
        if bad.is_empty() {
            break;
        }
        assert!(attempts < 3, "{}", bad.join("\n"));
    }
    stop(&fam, libc::SIGCONT);
}
