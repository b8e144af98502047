//! page_owner report parser fuzzing with proptest (shrinking): the generators build RECORDS
//! (valid page_owner blocks as the 6.1 kernel prints them) and then mutate them (an order that
//! overflows, a byte deleted or inserted, a NUL, a cut, a line repeated), so the cases exercise
//! the parser's paths instead of being rejected on the first byte. Also the strict reader's
//! bounds on real-looking inputs.
//!
//! Executions: 4 properties x `CASES` cases each (see the report).

use pgtool::page_owner::report::{GroupKey, MAX_ORDER, Report};
use proptest::prelude::*;
use std::path::Path;

const CASES: u32 = 1500;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One generated record's facts, and its text.
#[derive(Debug, Clone)]
struct Rec {
    order: u32,
    pid: u32,
    stack: Vec<String>,
    text: String,
}

const SYMS: &[&str] = &[
    "get_page_from_freelist",
    "__alloc_pages",
    "alloc_pages",
    "pipe_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
    "__handle_mm_fault",
    "handle_mm_fault",
    "kmalloc_large",
    "allocate_slab",
];
const GFP: &[&str] = &[
    "GFP_KERNEL",
    "GFP_HIGHUSER_MOVABLE|__GFP_COMP",
    "GFP_NOWAIT|__GFP_NOWARN",
    "",
];

fn record() -> impl Strategy<Value = Rec> {
    (
        0u32..=10,
        any::<u32>(),
        1u32..100_000,
        1u32..100_000,
        "[a-z_ ()]{1,15}",
        (any::<u64>(), any::<u64>(), any::<bool>()),
        (0u64..1 << 30, any::<bool>()),
        prop::collection::vec((0..SYMS.len(), 0u32..0x400, any::<bool>()), 0..10),
        prop::option::of("[a-z./]{1,12}"),
    )
        .prop_map(
            |(order, mask, pid, tgid, comm, (ts, fts, freed), (pfn, has_pfn), frames, memcg)| {
                let gfp = GFP[mask as usize % GFP.len()];
                let fts = if freed { fts } else { 0 };
                let mut t = format!(
                    "Page allocated via order {order}, mask {mask:#x}({gfp}), pid {pid}, tgid {tgid} ({comm}), ts {ts} ns, free_ts {fts} ns\n"
                );
                if has_pfn {
                    t += &format!(
                        "PFN {pfn} type Movable Block {} type Movable Flags 0x0()\n",
                        pfn >> 9
                    );
                }
                let stack: Vec<String> = frames
                    .iter()
                    .map(|(s, off, m)| {
                        format!(
                            "{}+{off:#x}/0x400{}",
                            SYMS[*s],
                            if *m { " [pipe_mod]" } else { "" }
                        )
                    })
                    .collect();
                for f in &stack {
                    t += &format!(" {f}\n");
                }
                if let Some(m) = memcg {
                    t += &format!("Charged to memcg {m}\n");
                }
                t.push('\n');
                Rec {
                    order,
                    pid,
                    stack,
                    text: t,
                }
            },
        )
}

/// A mutation of a dump's text: (kind, position, byte).
fn mutate(text: &str, kind: u8, pos: usize, byte: u8) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    let p = if b.is_empty() { 0 } else { pos % b.len() };
    match kind % 6 {
        0 => {
            if !b.is_empty() {
                b.remove(p);
            }
        }
        1 => b.insert(p, byte),
        2 => b.truncate(p),
        3 => b.insert(p, 0),
        4 => {
            // repeat the line holding p
            let s = b[..p]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1);
            let e = b[p..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |i| p + i + 1);
            let line = b[s..e].to_vec();
            b.splice(e..e, line);
        }
        _ => b.insert(p, b'\n'),
    }
    b
}

fn read(keys: Vec<GroupKey>, data: &[u8]) -> (Report, pgtool::Result<()>) {
    let mut rep = Report::new(keys, None);
    let r = rep.read_dump(data, Path::new("<fuzz>"));
    (rep, r)
}

proptest! {
    #![proptest_config(cfg())]

    /// Valid dumps: every record counted, pages exact, one group per distinct stack.
    #[test]
    fn valid_dumps_are_counted_exactly(recs in prop::collection::vec(record(), 1..25)) {
        let text: String = recs.iter().map(|r| r.text.as_str()).collect();
        let (rep, res) = read(vec![GroupKey::Stack], text.as_bytes());
        prop_assert!(res.is_ok(), "{res:?}");
        prop_assert_eq!(rep.records, recs.len() as u64);
        prop_assert_eq!(rep.pages, recs.iter().map(|r| 1u64 << r.order).sum::<u64>());
        prop_assert_eq!(rep.bad_order + rep.malformed, 0);
        let stacks: std::collections::HashSet<&Vec<String>> = recs.iter().map(|r| &r.stack).collect();
        prop_assert_eq!(rep.groups.len(), stacks.len());
        let (by_pid, _) = read(vec![GroupKey::Pid], text.as_bytes());
        for g in &by_pid.groups {
            let pid: u32 = g.key[0].parse().expect("pid");
            let want: u64 = recs.iter().filter(|r| r.pid == pid).map(|r| 1u64 << r.order).sum();
            prop_assert_eq!(g.pages, want);
        }
    }

    /// An order that overflows (or is above MAX_ORDER) is flagged and left out, never one page.
    #[test]
    fn impossible_orders_are_flagged(
        recs in prop::collection::vec(record(), 1..10),
        which in any::<prop::sample::Index>(),
        order in prop_oneof![Just(63u64), (u64::from(MAX_ORDER) + 1)..u64::MAX, Just(u64::MAX)],
    ) {
        let i = which.index(recs.len());
        let text: String = recs
            .iter()
            .enumerate()
            .map(|(k, r)| {
                if k == i {
                    r.text.replacen(&format!("order {},", r.order), &format!("order {order},"), 1)
                } else {
                    r.text.clone()
                }
            })
            .collect();
        let (rep, res) = read(vec![GroupKey::Order], text.as_bytes());
        let good: u64 = recs.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, r)| 1u64 << r.order).sum();
        prop_assert!(res.is_ok(), "{res:?}");
        prop_assert_eq!(rep.bad_order, 1);
        prop_assert_eq!(rep.records, recs.len() as u64 - 1);
        prop_assert_eq!(rep.pages, good);
        prop_assert!(rep.notes().iter().any(|n| n.contains("impossible order")));
    }

    /// Mutated dumps: never a panic; either an error or books that balance.
    #[test]
    fn mutated_dumps_balance_or_fail(
        recs in prop::collection::vec(record(), 1..12),
        muts in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
        k in 0usize..4,
    ) {
        let mut data: Vec<u8> = recs.iter().map(|r| r.text.as_str()).collect::<String>().into_bytes();
        for (kind, pos, byte) in muts {
            data = mutate(&String::from_utf8_lossy(&data), kind, pos, byte);
        }
        let keys = [GroupKey::Stack, GroupKey::Order, GroupKey::Comm, GroupKey::Allocator];
        let (rep, res) = read(vec![keys[k], GroupKey::Gfp], &data);
        match res {
            Err(e) => {
                let m = e.to_string();
                prop_assert!(m.contains("not a page_owner dump"), "{m}");
            }
            Ok(()) => {
                prop_assert_eq!(rep.records + rep.bad_order + rep.malformed, rep.blocks);
                prop_assert_eq!(rep.groups.iter().map(|g| g.pages).sum::<u64>(), rep.pages);
                prop_assert_eq!(rep.groups.iter().map(|g| g.records).sum::<u64>(), rep.records);
                for g in &rep.groups {
                    prop_assert!(g.pages >= g.records && g.pages <= g.records << MAX_ORDER);
                }
            }
        }
        // The lenient reader (in-memory callers) never fails on content.
        let mut lenient = Report::new(vec![GroupKey::Stack], None);
        prop_assert!(lenient.read(&data[..]).is_ok());
    }

    /// A NUL byte anywhere in a dump is refused as binary data.
    #[test]
    fn a_nul_byte_is_refused(recs in prop::collection::vec(record(), 1..8), pos in any::<usize>()) {
        let text: String = recs.iter().map(|r| r.text.as_str()).collect();
        // Not inside the final empty line (after it, nothing more is read).
        let data = mutate(&text[..text.len() - 1], 3, pos, 0);
        let (_, res) = read(vec![GroupKey::Stack], &data);
        let e = res.expect_err("binary data must be refused").to_string();
        prop_assert!(e.contains("binary data"), "{e}");
    }
}

#[test]
fn a_block_without_an_end_is_refused_quickly() {
    let mut s = String::from(
        "Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (x), ts 1 ns, free_ts 0 ns\n",
    );
    while s.len() < 200_000 {
        s.push_str(" frame+0x1/0x2\n");
    }
    let (_, res) = read(vec![GroupKey::Stack], s.as_bytes());
    let e = res.expect_err("unterminated block").to_string();
    assert!(e.contains("a block longer than 131072 bytes"), "{e}");
}

#[test]
fn a_line_without_newline_is_refused_quickly() {
    let data = vec![b'P'; 1 << 20];
    let (_, res) = read(vec![GroupKey::Stack], &data);
    let e = res.expect_err("long line").to_string();
    assert!(e.contains("a line longer than 65536 bytes"), "{e}");
}

#[test]
fn a_truncated_last_record_is_counted_and_noted() {
    let t = "Page allocated via order 2, mask 0x0(), pid 1, tgid 1 (x), ts 1 ns, free_ts 0 ns\n f+0x1/0x2\n";
    let (rep, res) = read(vec![GroupKey::Order], t.as_bytes());
    assert!(res.is_ok(), "{res:?}");
    assert_eq!((rep.records, rep.pages), (1, 4));
    assert!(rep.truncated_last);
}

/// The CLI on the real dump piped through stdin: same totals as from the file.
#[test]
fn stdin_and_file_agree() {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/page_owner/qemu-6.1-page_owner.txt.gz");
    let dump = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .output()
        .expect("gzip")
        .stdout;
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("po.txt");
    std::fs::write(&f, &dump).expect("write");
    let bin = env!("CARGO_BIN_EXE_pgtool");
    let a = std::process::Command::new(bin)
        .args(["page-owner", "--by", "order", "--json", "--top", "0"])
        .arg(&f)
        .output()
        .expect("run");
    let b = std::process::Command::new(bin)
        .args(["page-owner", "--by", "order", "--json", "--top", "0", "-"])
        .stdin(std::fs::File::open(&f).expect("open"))
        .output()
        .expect("run");
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8_lossy(&dump);
    let want: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("Page allocated via order "))
        .map(|l| {
            1u64 << l
                .split(',')
                .next()
                .and_then(|o| o.parse::<u32>().ok())
                .expect("order")
        })
        .sum();
    let got: u64 = String::from_utf8_lossy(&a.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert!(v["order"].is_u64(), "{v}");
            v["pages"].as_u64().expect("pages")
        })
        .sum();
    assert_eq!(got, want);
}
