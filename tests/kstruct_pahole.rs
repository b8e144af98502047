//! Differential test: `pgtool kstruct TYPE --json` against `pahole -C TYPE` (Debian's dwarves)
//! on this machine's live /sys/kernel/btf/vmlinux. Every top-level member of each type must
//! agree on its name, byte offset and size, and bitfields on their bit offset and width.

mod common;

use std::path::Path;
use std::process::Command;

const BTF: &str = "/sys/kernel/btf/vmlinux";
const TYPES: &[&str] = &[
    "task_struct",
    "mm_struct",
    "page",
    "folio",
    "slab",
    "kmem_cache",
    "list_head",
    "vm_area_struct",
];

/// One top-level member as pahole prints it.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Member {
    name: String,
    offset: u64,
    size: u64,
    /// (bit offset from the start of the type, width) for a bitfield.
    bits: Option<(u64, u32)>,
}

/// The numbers of a `/* OFFSET SIZE */` or `/* OFFSET: BIT SIZE */` comment.
fn comment_numbers(line: &str) -> Option<(u64, Option<u64>, u64)> {
    let c = &line[line.rfind("/*")? + 2..line.rfind("*/")?];
    let (off, rest) = match c.split_once(':') {
        Some((o, r)) => (o.trim(), Some(r)),
        None => {
            let mut it = c.split_whitespace();
            let o = it.next()?;
            let s = it.next()?;
            return Some((o.parse().ok()?, None, s.parse().ok()?));
        }
    };
    let mut it = rest?.split_whitespace();
    let bit = it.next()?.parse().ok()?;
    let size = it.next()?.parse().ok()?;
    Some((off.parse().ok()?, Some(bit), size))
}

/// A declaration's member name: `struct list_head tasks;`, `char comm[16];`,
/// `void (*fn)(int);`, `unsigned int x:1;`, `} name;` (empty for an anonymous union).
fn decl_name(decl: &str) -> (String, Option<u32>) {
    let decl = decl.split(';').next().unwrap_or("").trim();
    let decl = match decl.find("__attribute__") {
        Some(i) => decl[..i].trim(),
        None => decl,
    };
    if let Some(i) = decl.find("(*") {
        let rest = &decl[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        return (rest[..end].trim().to_string(), None);
    }
    let (decl, width) = match decl.rsplit_once(':') {
        Some((d, w)) if w.trim().parse::<u32>().is_ok() => (d.trim(), w.trim().parse().ok()),
        _ => (decl, None),
    };
    let last = decl.rsplit([' ', '*', '}']).next().unwrap_or("");
    let name = last.split('[').next().unwrap_or("").to_string();
    (name, width)
}

/// pahole's top-level members (lines at one tab; a nested struct/union at one tab is one
/// member, read from its closing line).
fn pahole_members(text: &str) -> Vec<Member> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('\t') else {
            continue;
        };
        if rest.starts_with('\t') || rest.starts_with("/*") || rest.trim().is_empty() {
            continue;
        }
        let Some((off, bit, size)) = comment_numbers(rest) else {
            // opening `union {` lines, `:0` padding bitfields
            continue;
        };
        let (name, width) = decl_name(&rest[..rest.rfind("/*").unwrap_or(rest.len())]);
        out.push(Member {
            name,
            offset: off,
            size,
            bits: match (bit, width) {
                (Some(b), Some(w)) => Some((off * 8 + b, w)),
                _ => None,
            },
        });
    }
    out
}

fn pgtool_members(ty: &str) -> Vec<Member> {
    let r = common::pgtool(&["kstruct", ty, "--json"]);
    assert_eq!(r.code, 0, "pgtool kstruct {ty}: {}", r.stderr);
    common::json_lines(&r.stdout)
        .into_iter()
        .filter(|v| v["depth"] == 0)
        .map(|v| {
            let field = v["field"].as_str().expect("field is a string");
            Member {
                name: if field == "<anon>" {
                    String::new()
                } else {
                    field.to_string()
                },
                offset: v["offset"].as_u64().expect("offset is a number"),
                size: v["size_bytes"].as_u64().expect("size_bytes is a number"),
                bits: v["bit_offset"].as_u64().map(|b| {
                    (
                        b,
                        v["bitfield_bits"]
                            .as_u64()
                            .expect("a bitfield has bitfield_bits") as u32,
                    )
                }),
            }
        })
        .collect()
}

#[test]
fn kstruct_agrees_with_pahole() {
    if !Path::new(BTF).exists() {
        common::skip("no /sys/kernel/btf/vmlinux (kernel without CONFIG_DEBUG_INFO_BTF)");
        return;
    }
    let pahole = std::env::var("PAHOLE").unwrap_or_else(|_| "pahole".into());
    if Command::new(&pahole).arg("--version").output().is_err() {
        common::skip("pahole not installed (Debian: apt-get install dwarves)");
        return;
    }
    let mut bitfields = 0;
    for ty in TYPES {
        let out = Command::new(&pahole)
            .args(["-C", ty, BTF])
            .output()
            .expect("pahole runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.is_empty(),
            "pahole -C {ty} printed nothing"
        );
        let want = pahole_members(&text);
        let got = pgtool_members(ty);
        assert!(
            want.len() >= 2,
            "parsed too few pahole members of {ty}: {text}"
        );
        assert_eq!(
            got.len(),
            want.len(),
            "{ty}: member count\npgtool {got:#?}\npahole {want:#?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{ty}: member differs");
        }
        bitfields += want.iter().filter(|m| m.bits.is_some()).count();
    }
    assert!(
        bitfields > 0,
        "no bitfield compared (task_struct has several)"
    );
}

#[test]
fn pahole_comment_parser() {
    assert_eq!(
        comment_numbers("int x; /*   24     4 */"),
        Some((24, None, 4))
    );
    assert_eq!(
        comment_numbers("int x:1; /*  1188: 3  4 */"),
        Some((1188, Some(3), 4))
    );
    assert_eq!(
        decl_name("unsigned int  sched_reset_on_fork:1; "),
        ("sched_reset_on_fork".into(), Some(1))
    );
    assert_eq!(decl_name("char comm[16]; "), ("comm".into(), None));
    assert_eq!(decl_name("void (*fn)(struct x *); "), ("fn".into(), None));
    assert_eq!(
        decl_name("struct task_struct * last_wakee; "),
        ("last_wakee".into(), None)
    );
    assert_eq!(decl_name("}; "), (String::new(), None));
    assert_eq!(decl_name("} sigpending; "), ("sigpending".into(), None));
}
