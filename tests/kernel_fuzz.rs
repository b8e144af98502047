//! Fuzzing of the kernel readers' parsers with proptest: BTF blobs (random, and a valid blob
//! mutated), kcore ELF headers (random, and a valid core mutated), kallsyms lines. None may
//! panic or allocate without bound; a valid input must keep parsing to the same result.

use pgtool::kernel::Btf;
use pgtool::kernel::kallsyms::parse_line;
use pgtool::kernel::kcore::parse_segments;
use proptest::prelude::*;
use std::path::Path;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

/// A small valid BTF blob: int, pointer, array, a struct with a bitfield (kind_flag), a union,
/// an enum, a typedef, const, a func_proto, a var, a datasec, a decl_tag and an enum64.
fn btf_blob() -> Vec<u8> {
    let strings = b"\0int\0s\0a\0b\0c\0u\0e\0X\0t\0v\0.data\0tag\0";
    let s = |name: &str| -> u32 {
        let mut off = 0;
        for part in strings.split(|&b| b == 0) {
            if part == name.as_bytes() {
                return off;
            }
            off += part.len() as u32 + 1;
        }
        0
    };
    let mut t: Vec<u32> = Vec::new();
    let info = |kind: u32, vlen: u32, kf: bool| (kind << 24) | vlen | ((kf as u32) << 31);
    // 1: int, 4 bytes, 32 bits, signed
    t.extend([s("int"), info(1, 0, false), 4, (1 << 24) | 32]);
    // 2: int *
    t.extend([0, info(2, 0, false), 1]);
    // 3: int[4]
    t.extend([0, info(3, 0, false), 0, 1, 1, 4]);
    // 4: struct s { int a; int b:3; int c[4]; } (kind_flag: bitfield sizes in offsets)
    t.extend([s("s"), info(4, 3, true), 24]);
    t.extend([s("a"), 1, 0, s("b"), 1, (3 << 24) | 32, s("c"), 3, 64]);
    // 5: union u { struct s a; int *b; }
    t.extend([s("u"), info(5, 2, false), 24, s("a"), 4, 0, s("b"), 2, 0]);
    // 6: enum e { X = 1 }
    t.extend([s("e"), info(6, 1, false), 4, s("X"), 1]);
    // 7: typedef struct s t; 8: const t
    t.extend([s("t"), info(8, 0, false), 4]);
    t.extend([0, info(10, 0, false), 7]);
    // 9: func_proto int (int)
    t.extend([0, info(13, 1, false), 1, 0, 1]);
    // 10: var v (type 1, linkage 1); 11: datasec .data { v }
    t.extend([s("v"), info(14, 0, false), 1, 1]);
    t.extend([s(".data"), info(15, 1, false), 4, 10, 0, 4]);
    // 12: decl_tag "tag" on struct s, member 0; 13: enum64
    t.extend([s("tag"), info(17, 0, false), 4, 0]);
    t.extend([s("e"), info(19, 1, false), 8, s("X"), 1, 0]);
    let types: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend(0xeb9fu16.to_le_bytes());
    b.extend([1u8, 0]);
    b.extend(24u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend((types.len() as u32).to_le_bytes());
    b.extend((types.len() as u32).to_le_bytes());
    b.extend((strings.len() as u32).to_le_bytes());
    b.extend(types);
    b.extend(strings);
    b
}

/// Everything the readers do with a parsed BTF, exercised: lookups, layouts, field paths.
fn exercise(btf: &Btf) {
    for name in ["s", "u", "t", "e", "nosuch", ""] {
        if let Some(id) = btf.find_struct(name) {
            let rows = btf.layout(id, true);
            for r in &rows {
                let _ = btf.field_of(id, &r.path);
                let _ = btf.size_of(r.ty);
                let _ = btf.kind(r.ty);
            }
        }
    }
    for id in 0..btf.len() as u32 + 2 {
        let _ = btf.type_name(id);
        let _ = btf.size_of(id);
        let _ = btf.layout(id, true);
    }
}

#[test]
fn valid_btf_blob_parses() {
    let btf = Btf::from_bytes(&btf_blob(), Path::new("blob")).expect("valid fixture");
    assert_eq!(btf.len(), 14);
    let s = btf.struct_id("s").expect("valid fixture");
    let rows = btf.layout(s, false);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.path.as_str(),
                r.bit_offset,
                r.size,
                r.bitfield_bits,
                r.type_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", 0, 4, 0, "int"),
            ("b", 32, 4, 3, "int"),
            ("c", 64, 16, 0, "int[4]")
        ]
    );
    assert_eq!(
        btf.find_struct("t"),
        Some(s),
        "a typedef of a struct is followed"
    );
    assert_eq!(btf.type_name(8), "const t");
    let ub = btf.field("union u", "a.c").expect("valid fixture");
    assert_eq!((ub.bit_offset, ub.size), (64, 16));
    exercise(&btf);
}

fn elf_header(phnum: u16, phoff: u64) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[32..40].copy_from_slice(&phoff.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&phnum.to_le_bytes());
    f
}

fn valid_core() -> Vec<u8> {
    let mut f = elf_header(2, 64);
    for (vaddr, paddr) in [
        (0xffff_8880_0000_0000u64, 0u64),
        (0xffff_ffff_8100_0000, u64::MAX),
    ] {
        let mut h = [0u8; 56];
        h[..4].copy_from_slice(&1u32.to_le_bytes());
        h[8..16].copy_from_slice(&4096u64.to_le_bytes());
        h[16..24].copy_from_slice(&vaddr.to_le_bytes());
        h[24..32].copy_from_slice(&paddr.to_le_bytes());
        h[32..40].copy_from_slice(&4096u64.to_le_bytes());
        f.extend_from_slice(&h);
    }
    f
}

fn segments_of(data: &[u8]) -> Result<Vec<pgtool::kernel::kcore::Segment>, String> {
    parse_segments(|off, buf| {
        let start = (off as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    })
}

#[test]
fn valid_core_parses() {
    let segs = segments_of(&valid_core()).expect("valid fixture");
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].paddr, Some(0));
    assert_eq!(segs[1].paddr, None);
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn btf_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(b) = Btf::from_bytes(&data, Path::new("fuzz")) {
            exercise(&b);
        }
    }

    #[test]
    fn btf_mutated(i in any::<prop::sample::Index>(), v in any::<u8>(), n in 1..4usize) {
        let mut data = btf_blob();
        for k in 0..n {
            let at = (i.index(data.len()) + k * 37) % data.len();
            data[at] = v.wrapping_add(k as u8);
        }
        if let Ok(b) = Btf::from_bytes(&data, Path::new("fuzz")) {
            exercise(&b);
        }
    }

    #[test]
    fn btf_truncated(len in 0..400usize) {
        let data = btf_blob();
        let data = &data[..len.min(data.len())];
        if let Ok(b) = Btf::from_bytes(data, Path::new("fuzz")) {
            exercise(&b);
        }
    }

    #[test]
    fn kcore_random_header(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = segments_of(&data);
    }

    #[test]
    fn kcore_mutated(i in any::<prop::sample::Index>(), v in any::<u8>()) {
        let mut data = valid_core();
        let at = i.index(data.len());
        data[at] = v;
        if let Ok(segs) = segments_of(&data) {
            for s in segs {
                prop_assert!(s.offset.checked_add(s.filesz).is_some());
            }
        }
    }

    #[test]
    fn kcore_huge_counts(phnum in any::<u16>(), phoff in any::<u64>()) {
        let _ = segments_of(&elf_header(phnum, phoff));
    }

    #[test]
    fn kallsyms_lines(s in "[0-9a-fA-Fx]{0,20}[ \t]{0,2}[A-Za-z?]{0,2}[ \t]{0,2}[a-z_.]{0,12}[ \t]{0,2}\\[?[a-z_]{0,6}\\]?[ ]?[a-z]{0,3}") {
        let _ = parse_line(&s);
    }

    #[test]
    fn kallsyms_roundtrip(addr in any::<u64>(), kind in "[tTdDbBrR]", name in "[a-z_][a-z0-9_.]{0,30}", module in proptest::option::of("[a-z_][a-z0-9_]{0,15}")) {
        let line = match &module {
            Some(m) => format!("{addr:016x} {kind} {name}\t[{m}]"),
            None => format!("{addr:016x} {kind} {name}"),
        };
        let sym = parse_line(&line).expect("valid fixture");
        prop_assert_eq!(sym.addr, addr);
        prop_assert_eq!(sym.kind.to_string(), kind);
        prop_assert_eq!(sym.name, name);
        prop_assert_eq!(sym.module, module);
    }
}
