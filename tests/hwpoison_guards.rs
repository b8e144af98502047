//! `pgtool hwpoison` guards and the write format, on a fixture root (kpageflags, kpagecount,
//! iomem and a debugfs/hwpoison directory of plain files standing in for the kernel's).

use std::path::Path;
use std::process::Command;

const LRU_ANON: u64 = 1 << 5 | 1 << 11 | 1 << 12; // lru, mmap, anonymous
const SLAB: u64 = 1 << 7;

fn fixture(with_injector: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(&proc).expect("proc");
    // PFNs 0..64: 0x10 a user page, 0x11 slab, 0x12 no flags; RAM is 0x1000-0x3ffff
    let mut flags = vec![0u64; 64];
    flags[0x10] = LRU_ANON;
    flags[0x11] = SLAB;
    let bytes: Vec<u8> = flags.iter().flat_map(|f| f.to_le_bytes()).collect();
    std::fs::write(proc.join("kpageflags"), &bytes).expect("kpageflags");
    let counts: Vec<u8> = (0..64u64)
        .flat_map(|i| u64::from(i == 0x10).to_le_bytes())
        .collect();
    std::fs::write(proc.join("kpagecount"), counts).expect("kpagecount");
    std::fs::write(
        proc.join("iomem"),
        "00000000-00000fff : Reserved\n00001000-0003ffff : System RAM\n00040000-000fffff : PCI Bus 0000:00\n",
    )
    .expect("iomem");
    if with_injector {
        let h = dir.path().join("debugfs/hwpoison");
        std::fs::create_dir_all(&h).expect("debugfs");
        std::fs::write(h.join("corrupt-pfn"), "").expect("corrupt-pfn");
        std::fs::write(h.join("unpoison-pfn"), "").expect("unpoison-pfn");
    }
    dir
}

fn pgtool(root: &Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .arg("--root")
        .arg(root)
        .arg("hwpoison")
        .args(args)
        .output()
        .expect("run pgtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

fn injected(root: &Path) -> String {
    std::fs::read_to_string(root.join("debugfs/hwpoison/corrupt-pfn")).unwrap_or_default()
}

#[test]
fn without_yes_nothing_happens() {
    let d = fixture(true);
    let (rc, out) = pgtool(d.path(), &["inject", "0x10"]);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("plan  0x10    0x10000           1  System RAM  lru|mmap|anonymous"),
        "{out}"
    );
    assert!(out.contains("rerun with --yes"), "{out}");
    assert_eq!(injected(d.path()), "");
}

#[test]
fn the_plan_names_the_page_in_the_users_units() {
    let d = fixture(true);
    // A process mapping PFN 0x10 at 0x7f10bc800000 = 139709858709504.
    let p = d.path().join("proc/42");
    std::fs::create_dir_all(&p).expect("pid dir");
    std::fs::write(
        p.join("maps"),
        "7f10bc800000-7f10bc802000 rw-p 00000000 00:00 0 \n",
    )
    .expect("maps");
    std::fs::write(p.join("comm"), "victim\n").expect("comm");
    let pm = std::fs::File::create(p.join("pagemap")).expect("pagemap");
    use std::os::unix::fs::FileExt;
    pm.write_all_at(
        &(1u64 << 63 | 0x10).to_ne_bytes(),
        0x7f10_bc80_0000 / 4096 * 8,
    )
    .expect("pwrite");
    let (rc, out) = pgtool(
        d.path(),
        &["inject", "--pid", "42", "--addr", "139709858709504"],
    );
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("--addr 139709858709504 (0x7f10bc800000) in pid 42 -> PFN 0x10\n"),
        "{out}"
    );
    assert!(
        out.contains("mapped by pid 42 (victim) at 0x7f10bc800000 [anon]"),
        "{out}"
    );
    // Hex is hex, decimal is decimal: 0x-less digits are never read as hex.
    let (rc, out) = pgtool(
        d.path(),
        &[
            "inject",
            "--pid",
            "42",
            "--addr",
            "0x7f10bc800000",
            "--json",
        ],
    );
    assert_eq!(rc, 2, "{out}");
    let rec: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or("")).expect("json");
    assert_eq!(rec["target"], "--addr 0x7f10bc800000 in pid 42");
    assert_eq!(rec["vaddr"].as_u64(), Some(0x7f10_bc80_0000));
    assert_eq!(rec["pfn"].as_u64(), Some(0x10));
    assert_eq!(rec["step"], "plan");
    assert_eq!(rec["flags_raw_hex"], "0x1820");
    let (rc, out) = pgtool(
        d.path(),
        &["inject", "--pid", "42", "--addr", "7f10bc800000"],
    );
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("bad address \"7f10bc800000\""), "{out}");
    // A decimal PFN is shown as typed and in hex.
    let (rc, out) = pgtool(d.path(), &["inject", "16"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("PFN 16 (0x10) -> PFN 0x10"), "{out}");
}

#[test]
fn overloaded_flags_are_named_as_v2p_names_them() {
    let d = fixture(true);
    let mut flags = vec![0u64; 64];
    flags[0x10] = 0x4_0000_5828;
    let bytes: Vec<u8> = flags.iter().flat_map(|f| f.to_le_bytes()).collect();
    std::fs::write(d.path().join("proc/kpageflags"), bytes).expect("kpageflags");
    let (rc, out) = pgtool(d.path(), &["inject", "0x10", "--json"]);
    assert_eq!(rc, 2, "{out}");
    let rec: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or("")).expect("json");
    let names: Vec<&str> = rec["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(names.contains(&"anon_exclusive"), "{names:?}");
    assert!(!names.contains(&"mappedtodisk"), "{names:?}");
}

#[test]
fn yes_under_root_is_refused_and_the_injector_writes_hex_pfn_newline() {
    let d = fixture(true);
    // --root is read-only: hwpoison acts only on the running kernel.
    let (rc, out) = pgtool(d.path(), &["inject", "--yes", "16"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("--yes with --root"), "{out}");
    assert_eq!(injected(d.path()), "");
    // The library's write format, on the fixture's stand-in files.
    let root = pgtool::SysRoot::at(d.path());
    let inj = pgtool::hwpoison::Injector::open(&root).expect("injector");
    inj.inject(pgtool::Pfn(0x10)).expect("inject");
    assert_eq!(injected(d.path()), "0x10\n");
    inj.unpoison(pgtool::Pfn(0x11)).expect("unpoison");
    let un = std::fs::read_to_string(d.path().join("debugfs/hwpoison/unpoison-pfn")).expect("read");
    assert_eq!(un, "0x11\n");
}

#[test]
fn kernel_pages_and_non_ram_are_refused_without_force() {
    let d = fixture(true);
    for (pfn, why) in [
        ("0x11", "slab"),
        ("0x12", "kernel-owned"),
        ("0x0", "not System RAM"),
    ] {
        let (rc, out) = pgtool(d.path(), &["inject", pfn]);
        assert_eq!(rc, 2, "{pfn}: {out}");
        assert!(out.contains(why) && out.contains("--force"), "{pfn}: {out}");
    }
    // soft-offline is guarded the same way; unpoison is not.
    let (rc, out) = pgtool(d.path(), &["soft-offline", "0x11"]);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("refusing to soft-offline: PFN 0x11 is a slab page"),
        "{out}"
    );
    let (rc, out) = pgtool(d.path(), &["unpoison", "0x11"]);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("nothing done: rerun with --yes to unpoison"),
        "{out}"
    );
    let (rc, out) = pgtool(d.path(), &["inject", "--force", "0x11"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("warning: PFN 0x11 is a slab page"), "{out}");
    assert!(out.contains("(--force given)"), "{out}");
    assert!(out.contains("nothing done"), "{out}");
    assert_eq!(injected(d.path()), "");
}

#[test]
fn missing_injector_says_modprobe() {
    let d = fixture(false);
    let e = pgtool::hwpoison::Injector::open(&pgtool::SysRoot::at(d.path()))
        .expect_err("no injector")
        .to_string();
    assert!(e.contains("modprobe hwpoison_inject"), "{e}");
    assert!(e.contains("debugfs/hwpoison/corrupt-pfn"), "{e}");
}

#[test]
fn no_target_is_a_usage_error() {
    let d = fixture(true);
    let (rc, out) = pgtool(d.path(), &["inject", "--yes"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("--pid PID --addr ADDR"), "{out}");
}
