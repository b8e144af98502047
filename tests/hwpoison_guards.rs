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
        out.contains("PFN 0x10 (phys 0x10000, System RAM): flags lru,mmap,anonymous"),
        "{out}"
    );
    assert!(out.contains("rerun with --yes"), "{out}");
    assert_eq!(injected(d.path()), "");
}

#[test]
fn yes_writes_hex_pfn_newline() {
    let d = fixture(true);
    let (rc, out) = pgtool(d.path(), &["inject", "--yes", "16"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(injected(d.path()), "0x10\n");
    let (rc, out) = pgtool(d.path(), &["unpoison", "--yes", "0x11"]);
    assert_eq!(rc, 0, "unpoison is not guarded by page kind: {out}");
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
        let (rc, out) = pgtool(d.path(), &["inject", "--yes", pfn]);
        assert_eq!(rc, 2, "{pfn}: {out}");
        assert!(out.contains(why) && out.contains("--force"), "{pfn}: {out}");
    }
    // soft-offline is guarded the same way
    let (rc, out) = pgtool(d.path(), &["soft-offline", "--yes", "0x11"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("slab"), "{out}");
    assert_eq!(injected(d.path()), "");
    let (rc, out) = pgtool(d.path(), &["inject", "--yes", "--force", "0x11"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("warning: PFN 0x11 is a slab page"), "{out}");
    assert_eq!(injected(d.path()), "0x11\n");
}

#[test]
fn missing_injector_says_modprobe() {
    let d = fixture(false);
    let (rc, out) = pgtool(d.path(), &["inject", "--yes", "0x10"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("modprobe hwpoison_inject"), "{out}");
    assert!(out.contains("debugfs/hwpoison/corrupt-pfn"), "{out}");
}

#[test]
fn no_target_is_a_usage_error() {
    let d = fixture(true);
    let (rc, out) = pgtool(d.path(), &["inject", "--yes"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("--pid PID --addr ADDR"), "{out}");
}
