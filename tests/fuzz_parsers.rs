//! Parser fuzzing with proptest: random and mutated input to the maps, iomem and mountinfo
//! parsers, the input grammar (addresses, ranges, PFN lists, durations, sizes, PIDs), the
//! kpage* files of a `--root` tree, and the pagemap decoder. None may panic; where a parser has an
//! inverse (formatting), parse(format(x)) == x.

use pgtool::input::{self, parse_addr_range as parse_spec};
use pgtool::iomem::{self, Iomem};
use pgtool::maps;
use pgtool::pagemap::PagemapEntry;
use proptest::prelude::*;
use std::path::Path;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

const MAPS_LINE: &str =
    "7f1c2a000000-7f1c2a021000 r-xp 00002000 fd:01 1835030    /usr/lib/ld linux.so (deleted)";
const IOMEM_TEXT: &str = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n  00001000-00001fff : Kernel code\n";

/// A valid line with one byte replaced, inserted or deleted.
fn mutate(base: &'static str) -> impl Strategy<Value = String> {
    (0..base.len(), any::<u8>(), 0..3u8).prop_map(move |(i, b, op)| {
        let mut v = base.as_bytes().to_vec();
        match op {
            0 => v[i] = b,
            1 => v.insert(i, b),
            _ => {
                v.remove(i);
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn maps_parse_line_never_panics(s in "\\PC*") {
        let _ = maps::parse_line(&s);
    }

    #[test]
    fn maps_parse_line_survives_mutation(s in mutate(MAPS_LINE)) {
        if let Ok(v) = maps::parse_line(&s) {
            prop_assert!(v.start <= v.end);
            prop_assert_eq!(v.perms.len(), 4);
        }
    }

    #[test]
    fn maps_whole_file_never_panics(lines in proptest::collection::vec("[0-9a-f:\\- rwxps/\\[\\]]{0,60}", 0..8)) {
        let text = lines.join("\n");
        let _ = maps::parse_maps(&text, Path::new("m"));
    }

    #[test]
    fn maps_round_trip(
        start in 0u64..(1 << 47), len in 0u64..(1 << 30),
        perms in "[r-][w-][x-][ps]", offset in any::<u64>(),
        major in 0u32..0xfff, minor in 0u32..0xfffff, inode in any::<u64>(),
        path in "(|/[a-z0-9 ._-]{1,30}|\\[(heap|stack|vdso|anon:foo)\\])",
    ) {
        let end = start + len;
        let line = format!("{start:08x}-{end:08x} {perms} {offset:08x} {major:02x}:{minor:02x} {inode} {path}");
        let v = maps::parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!((v.start.0, v.end.0, v.offset, v.inode), (start, end, offset, inode));
        prop_assert_eq!(&v.perms, &perms);
        prop_assert_eq!(v.dev, format!("{major:02x}:{minor:02x}"));
        prop_assert_eq!(v.path, path.trim_start().to_string());
    }

    #[test]
    fn iomem_parse_line_never_panics(s in "\\PC*") {
        let _ = iomem::parse_line(&s);
    }

    #[test]
    fn iomem_parse_survives_mutation(s in mutate(IOMEM_TEXT)) {
        if let Ok(io) = Iomem::parse(&s, Path::new("iomem")) {
            for r in &io.regions {
                prop_assert!(r.start <= r.end);
                if let Some(p) = r.parent {
                    prop_assert!(io.regions[p].depth + 1 == r.depth);
                }
            }
            let _ = io.describe(0x1800);
            let _ = io.system_ram_pfns();
        }
    }

    #[test]
    fn iomem_random_text_never_panics(lines in proptest::collection::vec("( {0,6})[0-9a-fA-F]{0,17}-?[0-9a-f]{0,17}( : )?[A-Za-z ]{0,10}", 0..10), addr in any::<u64>()) {
        if let Ok(io) = Iomem::parse(&lines.join("\n"), Path::new("iomem")) {
            let _ = io.describe(addr);
            let _ = io.lookup(addr);
            let _ = io.system_ram_pfns();
            let _ = io.addresses_hidden();
        }
    }

    #[test]
    fn iomem_round_trip(depth in 0usize..4, start in any::<u64>(), len in any::<u64>(), name in "[A-Za-z0-9 :._-]{1,20}") {
        let end = start.saturating_add(len);
        let line = format!("{}{start:08x}-{end:08x} : {name}", "  ".repeat(depth));
        let got = iomem::parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(got, (depth, start, end, name));
    }

    #[test]
    fn addr_spec_never_panics(s in "\\PC*") {
        let _ = parse_spec(&s);
        let _ = input::parse_number_for(&s, "address");
    }

    #[test]
    fn addr_spec_survives_near_misses(s in "(0[xX])?[0-9a-fA-F+\\- ]{0,40}") {
        if let Ok(spec) = parse_spec(&s) {
            prop_assert!(spec.start < spec.end);
        }
    }

    #[test]
    fn addr_spec_round_trip(start in any::<u64>(), len in 1u64..(1 << 40)) {
        let one = parse_spec(&format!("{start:#x}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!((one.start, one.single), (start, true));
        let dec = parse_spec(&start.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(dec.start, start);
        let plus = parse_spec(&format!("{start:#x}+{len:#x}"));
        let dash = parse_spec(&format!("{start:#x}-{:#x}", start.wrapping_add(len)));
        match start.checked_add(len) {
            Some(end) => {
                let p = plus.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let d = dash.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!((p.start, p.end, p.single), (start, end, false));
                prop_assert_eq!((d.start, d.end), (start, end));
            }
            None => prop_assert!(plus.is_err() && dash.is_err()),
        }
    }

    #[test]
    fn pagemap_decode_is_consistent(raw in any::<u64>()) {
        let e = PagemapEntry::from_raw(raw);
        prop_assert_eq!(e.raw(), raw);
        prop_assert_eq!(e.present(), raw >> 63 == 1);
        prop_assert_eq!(e.swapped(), raw >> 62 & 1 == 1);
        let field = raw & ((1 << 55) - 1);
        match e.pfn() {
            Some(p) => prop_assert!(e.present() && p.0 == field && field != 0),
            None => prop_assert!(!e.present() || field == 0),
        }
        prop_assert_eq!(e.pfn_hidden(), e.present() && field == 0);
        prop_assert_eq!(e.swap_type().is_some(), e.swapped());
        if let (Some(t), Some(o)) = (e.swap_type(), e.swap_offset()) {
            prop_assert_eq!(o << 5 | t, field);
        }
        prop_assert_eq!(e.is_none(), !e.present() && !e.swapped());
        // page-types' expansion never panics on any word pair
        let _ = pgtool::PageFlags::from_bits_retain(raw.rotate_left(7)).expand_overloaded(e).names().count();
    }

    #[test]
    fn pfn_ranges_hold_what_they_say(a in 0u64..(1 << 40), n in 1u64..5000, dash in any::<bool>()) {
        let tok = if dash { format!("{a:#x}-{}", a + n - 1) } else { format!("{a}+{n}") };
        let r = input::parse_pfn_range(&tok).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r, a..a + n);
    }

    #[test]
    fn grammar_never_panics(s in "\\PC{0,40}") {
        let _ = input::parse_pfn_range(&s);
        let _ = input::parse_duration(&s);
        let _ = input::parse_size(&s, "size");
        let _ = input::parse_pid(&s, &pgtool::SysRoot::live());
        let mut stdin = s.as_bytes();
        if let Ok(rs) = input::parse_pfn_args(&["-".to_string()], &mut stdin) {
            // merged, sorted, non-empty, disjoint
            for w in rs.windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            prop_assert!(rs.iter().all(|r| r.start < r.end));
        }
    }

    #[test]
    fn grammar_near_misses(s in "(0[xX])?[0-9a-fA-F.]{0,12}(ms|s|m|h|K|M|G|T|B|iB)?") {
        if let Ok(d) = input::parse_duration(&s) {
            prop_assert!(d.as_secs_f64() > 0.0 && d.as_secs_f64() < 1e7);
        }
        if let Some(v) = input::size(&s) {
            prop_assert!(v > 0 || s.trim_start_matches("0x").chars().all(|c| c == '0' || c.is_ascii_alphabetic()));
        }
    }

    #[test]
    fn durations_round_trip(ms in 1u64..10_000_000) {
        let d = input::parse_duration(&format!("{ms}ms")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.as_millis() as u64, ms);
    }

    #[test]
    fn mountinfo_never_panics(lines in proptest::collection::vec("[0-9]{1,3} [0-9]{1,3} [0-9:]{3,5} /[a-z/]{0,10} /[a-z/]{0,20} [a-z,]{0,12}( - | )[a-z0-9]{0,8} [a-z]{0,6} [a-z,=]{0,20}", 0..6)) {
        let _ = pgtool::cgroup::parse_mountinfo(&lines.join("\n"));
    }

    #[test]
    fn root_kpage_files_of_any_length(len in 0usize..200, idx in 0u64..40) {
        // A damaged --root tree: kpage files whose length is not a multiple of 8.
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let p = dir.path().join("kpageflags");
        std::fs::write(&p, vec![0xa5u8; len]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let f = pgtool::kpage::U64File::open(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = f.get(idx);
        let whole = (len / 8) as u64;
        match got {
            Ok(Some(_)) => prop_assert!(idx < whole),
            Ok(None) => prop_assert!(idx >= whole),
            Err(e) => prop_assert!(e.to_string().contains("kpageflags"), "{}", e),
        }
    }
}
