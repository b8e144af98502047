//! The kernel readers on fixtures built here (a tiny ELF64 core in kcore's layout, kallsyms
//! text, a hand-made BTF blob) and on this machine's live BTF, where the facts checked are C's
//! (a list_head is two pointers, comm is char[16]) rather than anything pgtool wrote.

mod common;

use pgtool::kernel::{Btf, Kallsyms, Kcore, Kind};
use pgtool::{Error, SysRoot};
use std::io::Cursor;
use std::path::Path;

/// An ELF64 core with the given PT_LOAD segments (vaddr, paddr or -1, bytes), in kcore's
/// layout: header, program headers (a PT_NOTE first, as kcore has), then the data.
pub fn elf_core(segs: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
    let phnum = segs.len() + 1;
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let mut data_off = 64 + 56 * phnum as u64;
    let mut ph = Vec::new();
    let mut note = [0u8; 56];
    note[..4].copy_from_slice(&4u32.to_le_bytes());
    ph.extend_from_slice(&note);
    for (vaddr, paddr, bytes) in segs {
        let mut h = [0u8; 56];
        h[..4].copy_from_slice(&1u32.to_le_bytes());
        h[4..8].copy_from_slice(&7u32.to_le_bytes());
        h[8..16].copy_from_slice(&data_off.to_le_bytes());
        h[16..24].copy_from_slice(&vaddr.to_le_bytes());
        h[24..32].copy_from_slice(&paddr.to_le_bytes());
        h[32..40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        h[40..48].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        ph.extend_from_slice(&h);
        data_off += bytes.len() as u64;
    }
    f.extend_from_slice(&ph);
    for (_, _, b) in segs {
        f.extend_from_slice(b);
    }
    f
}

const TEXT: u64 = 0xffff_ffff_9a00_0000;
const DIRECT: u64 = 0xffff_8880_0000_0000;

fn fixture_kcore(dir: &Path) -> Kcore {
    let direct: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let mut text = vec![0u8; 4096];
    text[16..24].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let vmalloc = vec![0xaa; 4096];
    let core = elf_core(&[
        (DIRECT, 0x10_0000, direct[..4096].to_vec()),
        (DIRECT + 4096, 0x10_1000, direct[4096..].to_vec()),
        (TEXT, 0x10_0000, text),
        (0xffff_c900_0000_0000, u64::MAX, vmalloc),
    ]);
    let p = dir.join("kcore");
    std::fs::write(&p, core).expect("fixture reads");
    Kcore::open_path(&p).expect("fixture reads")
}

#[test]
fn kcore_reads_virtual_and_physical_addresses() {
    let tmp = tempfile::tempdir().expect("fixture reads");
    let k = fixture_kcore(tmp.path());
    assert_eq!(k.segments().len(), 4);
    assert_eq!(
        k.read_u64(TEXT + 16).expect("fixture reads"),
        0x1122_3344_5566_7788
    );
    // a read across two contiguous segments
    let mut b = [0u8; 4];
    k.read_virt(DIRECT + 4094, &mut b).expect("fixture reads");
    assert_eq!(
        b,
        [
            (4094 % 251) as u8,
            (4095 % 251) as u8,
            (4096 % 251) as u8,
            (4097 % 251) as u8
        ]
    );
    // the direct map wins over the text alias of the same physical page
    assert_eq!(k.phys_to_virt(0x10_0010), Some(DIRECT + 16));
    assert_eq!(k.virt_to_phys(TEXT + 16), Some(0x10_0010));
    assert_eq!(k.virt_to_phys(0xffff_c900_0000_0000), None);
    k.read_phys(0x10_1000, &mut b).expect("fixture reads");
    assert_eq!(b[0], (4096 % 251) as u8);
    match k.read_u64(0xffff_ffff_ff00_0000) {
        Err(e @ Error::NotFound(_)) => {
            assert!(
                e.to_string().contains("0xffffffffff000000 is not mapped"),
                "{e}"
            )
        }
        r => panic!("unmapped read: {r:?}"),
    }
    // a read running off the end of the last mapped byte
    let mut big = vec![0u8; 8];
    assert!(k.read_virt(0xffff_c900_0000_0ffc, &mut big).is_err());
    assert!(k.read_phys(0x9_0000_0000, &mut b).is_err());
}

#[test]
fn kcore_missing_names_the_config() {
    let tmp = tempfile::tempdir().expect("fixture reads");
    let e = Kcore::open(&SysRoot::at(tmp.path()))
        .err()
        .expect("an error");
    assert!(e.to_string().contains("CONFIG_PROC_KCORE"), "{e}");
    let e = Btf::load(&SysRoot::at(tmp.path())).err().expect("an error");
    assert!(e.to_string().contains("CONFIG_DEBUG_INFO_BTF"), "{e}");
    std::fs::write(tmp.path().join("notelf"), b"hello").expect("fixture reads");
    let e = Kcore::open_path(&tmp.path().join("notelf"))
        .err()
        .expect("an error");
    assert!(e.to_string().contains("not a kcore file"), "{e}");
}

const KALLSYMS: &str = "\
0000000000000000 A fixed_percpu_data
ffffffff9a000000 T _text
ffffffff9a000000 T __pfx_startup_64
ffffffff9a000000 T startup_64
ffffffff9a000100 T do_thing
ffffffff9a000180 t helper
ffffffff9b000000 D init_task
ffffffff9b004000 B _end
ffffffffc0a00000 t mod_fn\t[mymod]
ffffffffc0a00040 t other_fn\t[mymod]
";

#[test]
fn kallsyms_lookup_both_ways_and_kaslr() {
    let s = Kallsyms::from_reader(Cursor::new(KALLSYMS), Path::new("kallsyms"), Some(0))
        .expect("fixture reads");
    assert_eq!(s.address_of("init_task"), Some(0xffff_ffff_9b00_0000));
    assert_eq!(s.address_of("mymod:mod_fn"), Some(0xffff_ffff_c0a0_0000));
    assert_eq!(s.address_of("nosuch"), None);
    assert_eq!(
        s.lookup(0xffff_ffff_9a00_0010)
            .expect("fixture reads")
            .to_string(),
        "startup_64+0x10/0x100"
    );
    assert_eq!(
        s.lookup(0xffff_ffff_9a00_0184)
            .expect("fixture reads")
            .to_string(),
        "helper+0x4/0xfffe80"
    );
    assert_eq!(
        s.lookup(0xffff_ffff_c0a0_0008)
            .expect("fixture reads")
            .to_string(),
        "mod_fn+0x8/0x40 [mymod]"
    );
    assert!(s.lookup(0x1000).is_none());
    assert!(
        s.lookup(0xffff_ffff_c0a0_0048).is_none(),
        "past the last symbol"
    );
    assert_eq!(s.kernel_base(), Some(0xffff_ffff_9a00_0000));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(s.kaslr_offset(), Some(0x1900_0000));
    }
    assert!(s.in_kernel_image(0xffff_ffff_9b00_0008));
    assert!(!s.in_kernel_image(0xffff_ffff_c0a0_0000));
}

#[test]
fn kallsyms_zero_addresses_name_kptr_restrict() {
    let text = "0000000000000000 T _text\n0000000000000000 D init_task\n";
    let e = Kallsyms::from_reader(Cursor::new(text), Path::new("kallsyms"), Some(2))
        .err()
        .expect("fixture reads");
    assert!(e.to_string().contains("kernel.kptr_restrict is 2"), "{e}");
    let e = Kallsyms::from_reader(Cursor::new("zz T x\n"), Path::new("ks"), None)
        .err()
        .expect("fixture reads");
    assert!(e.to_string().contains("ks:1:"), "{e}");
}

fn live_btf() -> Option<Btf> {
    let root = SysRoot::live();
    if !root.btf_vmlinux().exists() {
        common::skip("no /sys/kernel/btf/vmlinux (kernel without CONFIG_DEBUG_INFO_BTF)");
        return None;
    }
    Some(Btf::load(&root).expect("fixture reads"))
}

#[test]
fn live_btf_knows_c_facts() {
    let Some(btf) = live_btf() else { return };
    assert!(btf.len() > 10_000);
    let lh = btf.struct_id("list_head").expect("fixture reads");
    assert_eq!(btf.size_of(lh), Some(16));
    let rows = btf.layout(lh, false);
    let names: Vec<_> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.bit_offset, r.size))
        .collect();
    assert_eq!(names, [("next", 0, 8), ("prev", 64, 8)]);
    assert_eq!(rows[0].type_name, "struct list_head *");
    let comm = btf.field("task_struct", "comm").expect("fixture reads");
    assert_eq!((comm.size, comm.type_name.as_str()), (16, "char[16]"));
    let pid = btf.field("task_struct", "pid").expect("fixture reads");
    assert_eq!((pid.size, pid.type_name.as_str()), (4, "pid_t"));
    assert_eq!(btf.kind(pid.ty), Kind::Int { signed: true });
    let mm = btf.field("task_struct", "mm").expect("fixture reads");
    assert!(matches!(btf.kind(mm.ty), Kind::Ptr(_)));
    // a path through a named member and one through an anonymous union
    let tasks_next = btf
        .field("task_struct", "tasks.next")
        .expect("fixture reads");
    assert_eq!(
        tasks_next.bit_offset,
        btf.field("task_struct", "tasks")
            .expect("fixture reads")
            .bit_offset
    );
    let pgd = btf.field("struct mm_struct", "pgd").expect("fixture reads");
    assert_eq!(pgd.size, 8);
    assert!(btf.field("task_struct", "no_such_field").is_err());
    assert!(btf.field("no_such_type", "x").is_err());
    assert!(btf.field("task_struct", "pid.x").is_err());
}

/// A BTF blob from (name, kind, size_or_type, INT encoding, members) records; an ARRAY's one
/// "member" carries (elem type, nelems) in its last two fields.
type BtfRecord<'a> = (&'a str, u32, u32, u32, Vec<(&'a str, u32, u32)>);

fn btf_from(records: &[BtfRecord]) -> Vec<u8> {
    let mut strings = vec![0u8];
    let name_off = |n: &str, strings: &mut Vec<u8>| -> u32 {
        if n.is_empty() {
            return 0;
        }
        let off = strings.len() as u32;
        strings.extend_from_slice(n.as_bytes());
        strings.push(0);
        off
    };
    let mut t: Vec<u32> = Vec::new();
    for (name, kind, size_or_type, extra, members) in records {
        let n = name_off(name, &mut strings);
        let vlen = if *kind == 4 { members.len() as u32 } else { 0 };
        t.extend([n, (kind << 24) | vlen, *size_or_type]);
        match kind {
            1 => t.push(*extra),
            3 => t.extend([members[0].1, 1, members[0].2]),
            4 => {
                for (mn, ty, off) in members {
                    let o = name_off(mn, &mut strings);
                    t.extend([o, *ty, *off]);
                }
            }
            _ => {}
        }
    }
    let types: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend(0xeb9fu16.to_le_bytes());
    b.extend([1u8, 0]);
    for w in [
        24u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        b.extend(w.to_le_bytes());
    }
    b.extend(types);
    b.extend(strings);
    b
}

#[test]
fn find_task_walks_leaders_and_threads() {
    use pgtool::kernel::find_task;
    // 1 int, 2 char, 3 char[16], 4 list_head, 5 list_head *, 6 task_struct, 7 signal_struct,
    // 8 signal_struct *
    let recs = vec![
        ("int", 1, 4, (1 << 24) | 32, vec![]),
        ("char", 1, 1, 8, vec![]),
        ("", 3, 0, 0, vec![("", 2, 16)]),
        ("list_head", 4, 16, 0, vec![("next", 5, 0), ("prev", 5, 64)]),
        ("", 2, 4, 0, vec![]),
        (
            "task_struct",
            4,
            64,
            0,
            vec![
                ("tasks", 4, 0),
                ("pid", 1, 128),
                ("comm", 3, 160),
                ("thread_node", 4, 320),
                ("signal", 8, 448),
            ],
        ),
        ("signal_struct", 4, 16, 0, vec![("thread_head", 4, 0)]),
        ("", 2, 7, 0, vec![]),
    ];
    let blob = btf_from(&recs);
    let btf = Btf::from_bytes(&blob, Path::new("blob")).expect("hand-built BTF parses");
    assert_eq!(btf.field("task_struct", "comm").expect("comm").size, 16);
    assert_eq!(
        btf.field("task_struct", "thread_node")
            .expect("node")
            .offset(),
        40
    );

    const BASE: u64 = 0xffff_8880_0000_0000;
    let (init, a, b, sig) = (BASE, BASE + 0x100, BASE + 0x200, BASE + 0x300);
    let mut mem = vec![0u8; 0x400];
    let mut put = |addr: u64, v: &[u8]| {
        let o = (addr - BASE) as usize;
        mem[o..o + v.len()].copy_from_slice(v);
    };
    let task = |put: &mut dyn FnMut(u64, &[u8]), t: u64, pid: u32, comm: &str| {
        put(t + 16, &pid.to_le_bytes());
        put(t + 20, comm.as_bytes());
    };
    task(&mut put, init, 0, "swapper/0");
    task(&mut put, a, 10, "leader");
    task(&mut put, b, 11, "worker");
    // tasks: init -> a -> init
    put(init, &a.to_le_bytes());
    put(a, &init.to_le_bytes());
    // a's threads: sig.thread_head -> a.thread_node -> b.thread_node -> sig.thread_head
    put(a + 56, &sig.to_le_bytes());
    put(b + 56, &sig.to_le_bytes());
    put(sig, &(a + 40).to_le_bytes());
    put(a + 40, &(b + 40).to_le_bytes());
    put(b + 40, &sig.to_le_bytes());
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("kcore");
    std::fs::write(&p, elf_core(&[(BASE, 0, mem)])).expect("write kcore");
    let kcore = Kcore::open_path(&p).expect("fixture kcore opens");
    let syms = Kallsyms::from_reader(
        Cursor::new(format!("{init:016x} D init_task\n")),
        Path::new("kallsyms"),
        Some(0),
    )
    .expect("kallsyms");
    let found = |pid| find_task(&btf, &kcore, &syms, pid);
    let t = found(0).expect("pid 0");
    assert_eq!((t.addr, t.comm.as_str()), (init, "swapper/0"));
    let t = found(10).expect("the leader");
    assert_eq!((t.addr, t.pid, t.comm.as_str()), (a, 10, "leader"));
    let t = found(11).expect("a thread, through signal->thread_head");
    assert_eq!((t.addr, t.pid, t.comm.as_str()), (b, 11, "worker"));
    match found(99) {
        Err(Error::NoSuchProcess { pid: 99 }) => {}
        r => panic!("pid 99: {r:?}"),
    }
    // a list that loops without coming back to init_task: an error, not a hang
    let mut looped = std::fs::read(&p).expect("read kcore");
    let data = looped.len() - 0x400;
    looped[data + 0x100..data + 0x108].copy_from_slice(&(b).to_le_bytes());
    looped[data + 0x200..data + 0x208].copy_from_slice(&(a).to_le_bytes());
    std::fs::write(&p, looped).expect("write kcore");
    let kcore = Kcore::open_path(&p).expect("fixture kcore opens");
    let e = find_task(&btf, &kcore, &syms, 99).expect_err("a looping list");
    assert!(e.to_string().contains("loops without coming back"), "{e}");
}
