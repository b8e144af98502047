//! The output contract (one tool, not eleven): every listing subcommand, in every format, on the
//! fixture `--root` tree and live where it can, obeys the same rules:
//! - `--json` prints JSON Lines: every line parses as an object;
//! - `--csv`'s header is the JSON keys, flattened with `_`, in the same order, and every row has
//!   as many cells as the header;
//! - shared concepts use the vocabulary's names and representations (`pfn`, `vaddr`,
//!   `phys_addr` are numbers in JSON and `0x` hex in CSV; `flags` is an array of names;
//!   `*_bytes` are numbers; `*_hex` are `0x` strings; no synonyms such as `memcg`, `ino`,
//!   `size`, `addr_hex`, `phys`);
//! - tables fit in 100 columns (stdout is not a terminal here and COLUMNS is unset).

mod common;

use serde_json::Value;
use std::path::Path;

/// Keys that name a shared concept the vocabulary spells otherwise.
const SYNONYMS: &[(&str, &str)] = &[
    ("memcg", "memcg_ino or memcg_path"),
    ("cgroup_ino", "memcg_ino"),
    ("ino", "memcg_ino"),
    ("inode", "memcg_ino"),
    ("cgroup_path", "memcg_path"),
    ("phys", "phys_addr"),
    ("paddr", "phys_addr"),
    ("physaddr", "phys_addr"),
    ("virt", "vaddr"),
    ("va", "vaddr"),
    ("address", "vaddr or phys_addr"),
    ("mapcount", "kpagecount"),
    ("page_count", "kpagecount"),
    ("size", "a name with _bytes"),
    ("bytes", "a name with _bytes"),
    ("raw_flags", "flags_raw"),
    ("flag_names", "flags"),
    ("process", "pid or comm"),
    ("command", "comm"),
];

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                if matches!(v, Value::Object(_)) {
                    flatten(&key, v, out);
                } else {
                    out.push((key, v.clone()));
                }
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn check_vocabulary(what: &str, rec: &Value, problems: &mut Vec<String>) {
    let mut fields = Vec::new();
    flatten("", rec, &mut fields);
    for (k, v) in &fields {
        let leaf = k.rsplit('_').next().unwrap_or(k);
        for (bad, good) in SYNONYMS {
            if k == bad {
                problems.push(format!("{what}: key {k:?}: the vocabulary says {good}"));
            }
        }
        let numeric = matches!(
            k.as_str(),
            "pfn" | "vaddr" | "phys_addr" | "pid" | "kpagecount"
        ) || k.ends_with("_bytes")
            || k.ends_with("_pfn");
        // a growth (`growth_bytes`) is signed; every other number is unsigned
        let signed = k.contains("growth") && v.is_i64();
        if numeric && !(v.is_u64() || signed || v.is_null()) {
            problems.push(format!("{what}: {k} = {v}: must be a number (or null)"));
        }
        if k.ends_with("_hex") && !(v.is_null() || v.as_str().is_some_and(|s| s.starts_with("0x")))
        {
            problems.push(format!("{what}: {k} = {v}: must be a 0x string"));
        }
        if (k == "flags" || k.ends_with("_flags"))
            && !(v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
        {
            problems.push(format!("{what}: {k} = {v}: must be an array of names"));
        }
        let _ = leaf;
    }
}

fn csv_split(line: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    r.records()
        .next()
        .and_then(|x| x.ok())
        .map(|rec| rec.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Run one listing in every format and check the contract; returns the number of records.
fn check(what: &str, args: &[&str], problems: &mut Vec<String>) -> usize {
    let mut with = |fmt: Option<&str>| {
        let mut a: Vec<&str> = args.to_vec();
        if let Some(f) = fmt {
            a.push(f);
        }
        let r = common::run_cmd(
            std::process::Command::new(common::pgtool_bin())
                .args(&a)
                .env_remove("COLUMNS"),
        );
        // hwpoison without --yes shows its plan and exits 2 ("nothing done"): still a listing.
        let expected = if a.contains(&"hwpoison") { 2 } else { 0 };
        if r.code != expected {
            problems.push(format!(
                "{what} {fmt:?}: exit {}: {}",
                r.code,
                r.stderr.trim()
            ));
        }
        r.stdout
    };
    let json = with(Some("--json"));
    let csv = with(Some("--csv"));
    let table = with(None);
    let mut records = Vec::new();
    for (i, line) in json.lines().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => records.push(v),
            Ok(_) => problems.push(format!("{what} --json line {}: not an object", i + 1)),
            Err(e) => problems.push(format!("{what} --json line {}: {e}: {line}", i + 1)),
        }
    }
    if records.is_empty() {
        problems.push(format!("{what}: no JSON records"));
        return 0;
    }
    for r in &records {
        check_vocabulary(what, r, problems);
    }
    let mut keys = Vec::new();
    flatten("", &records[0], &mut keys);
    let keys: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
    let mut lines = csv.lines();
    let header = csv_split(lines.next().unwrap_or(""));
    if header != keys {
        problems.push(format!(
            "{what}: CSV header {header:?} != JSON keys {keys:?}"
        ));
    }
    let pfn_col = header.iter().position(|h| h == "pfn");
    for (i, line) in lines.enumerate() {
        let cells = csv_split(line);
        if cells.len() != header.len() {
            problems.push(format!(
                "{what} --csv row {}: {} cells, header has {}",
                i + 1,
                cells.len(),
                header.len()
            ));
            break;
        }
        if let Some(c) = pfn_col
            && !(cells[c].is_empty() || cells[c].starts_with("0x"))
        {
            problems.push(format!(
                "{what} --csv row {}: pfn {:?} is not 0x hex",
                i + 1,
                cells[c]
            ));
            break;
        }
    }
    // `types` without a format is page-types' own byte-exact text, and `map` without one is
    // a picture (fitted to the width on its own): not pgtool tables.
    let classic = args.contains(&"types") || args.contains(&"map");
    for (i, line) in table.lines().enumerate().filter(|_| !classic) {
        let w = line.chars().count();
        if w > 100 {
            problems.push(format!("{what} table line {}: {w} columns: {line}", i + 1));
            break;
        }
    }
    records.len()
}

fn report(mut problems: Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    assert!(
        problems.is_empty(),
        "{} contract problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn fixture_listings_keep_the_contract() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = common::write_fixture(dir.path());
    // an idle bitmap for the fixture's PFNs (a word per 64 PFNs), every page idle
    let mm = root.join("sys/kernel/mm/page_idle");
    std::fs::create_dir_all(&mm).expect("mkdir");
    std::fs::write(
        mm.join("bitmap"),
        vec![0xffu8; (common::NPFNS.div_ceil(64) * 8) as usize],
    )
    .expect("bitmap");
    let root = root.to_str().expect("utf8");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fx = |p: &str| fixtures.join(p).to_str().expect("utf8").to_string();
    let (slab_root, page_owner, kfence) = (
        fx("slab/root"),
        fx("page_owner/small.txt"),
        fx("kfence/small-objects.txt"),
    );
    let mut problems = Vec::new();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "v2p range",
            vec!["--root", root, "v2p", "1234", "0x7f0000000000+16K"],
        ),
        (
            "v2p vma",
            vec!["--root", root, "v2p", "1234", "--vma", "[anon]"],
        ),
        ("who", vec!["--root", root, "who", "0x100-0x102"]),
        ("cgroup lookup", vec!["--root", root, "cgroup", "42"]),
        ("cgroup --pages", vec!["--root", root, "cgroup", "--pages"]),
        (
            "idle read",
            vec!["--root", root, "idle", "read", "--pid", "1234"],
        ),
        (
            "hwpoison plan",
            vec!["--root", root, "hwpoison", "inject", "0x101"],
        ),
        ("types", vec!["--root", root, "types"]),
        ("slab", vec!["--root", &slab_root, "slab", "--count", "1"]),
        ("page-owner", vec!["page-owner", &page_owner]),
        ("kfence", vec!["kfence", &kfence]),
        ("map", vec!["--root", root, "map"]),
        ("mem", vec!["--root", root, "mem"]),
        (
            "mem --by mapping",
            vec!["--root", root, "mem", "--by", "mapping"],
        ),
    ];
    for (what, args) in &cases {
        check(what, args, &mut problems);
    }
    report(problems);
}

#[test]
fn live_listings_keep_the_contract() {
    if !common::is_root() {
        common::skip("needs root (PFNs are hidden otherwise)");
        return;
    }
    let mut problems = Vec::new();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("v2p self stack", vec!["v2p", "self", "--vma", "[stack]"]),
        ("cgroup --pages", vec!["cgroup", "--pages"]),
        ("types", vec!["types"]),
        ("slab", vec!["slab", "--count", "1"]),
        ("who self", vec!["who", "--pid", "self", "--phys", "0x1000"]),
        ("map", vec!["map"]),
        ("mem", vec!["mem", "--top", "5"]),
        (
            "mem --by library",
            vec!["mem", "--by", "library", "--top", "5"],
        ),
        ("mem --by memcg", vec!["mem", "--by", "memcg", "--top", "5"]),
        ("kstruct page", vec!["kstruct", "page"]),
        ("ksym", vec!["ksym", "schedule", "do_exit"]),
        ("ksym --base", vec!["ksym", "--base"]),
        ("leak", vec!["leak", "--interval", "1", "--count", "2"]),
    ];
    for (what, args) in &cases {
        check(what, args, &mut problems);
    }
    report(problems);
}
