//! The `page_owner_sort` drop-in: golden vectors, differential tests against the reference C
//! tool (real qemu dump + proptest-generated dumps), and no-panic fuzzing of the reader.

use pgtool::page_owner::sort::{Options, Sorter};
use proptest::prelude::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// A temp dir holding a symlink named `page_owner_sort` to the pgtool binary.
fn drop_in() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let link = d.path().join("page_owner_sort");
    std::os::unix::fs::symlink(common::pgtool_bin(), &link).expect("symlink");
    (d, link)
}

/// What one run produced: exit status, stdout, stderr, output file (None if absent).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    result: Option<Vec<u8>>,
}

fn run(prog: &Path, args: &[String], input: &Path, out: Option<&Path>, cwd: &Path) -> Outcome {
    if let Some(o) = out {
        let _ = std::fs::remove_file(o);
    }
    let mut c = Command::new(prog);
    c.arg0("page_owner_sort")
        .args(args)
        .arg(input)
        .current_dir(cwd)
        .env_remove("POSIXLY_CORRECT")
        .env("LC_ALL", "C");
    if let Some(o) = out {
        c.arg(o);
    }
    let r = c.output().expect("spawn");
    let mut stderr = r.stderr;
    if let Some(o) = out {
        // check.sh replaces the output path by OUTFILE in stderr.
        let s = String::from_utf8_lossy(&stderr).replace(&o.display().to_string(), "OUTFILE");
        stderr = s.into_bytes();
    }
    Outcome {
        code: r.status.code(),
        stdout: r.stdout,
        stderr,
        result: out.and_then(|o| std::fs::read(o).ok()),
    }
}

mod common;

fn need_reference() -> Option<PathBuf> {
    common::need_reference("page_owner_sort")
}

#[test]
fn golden_vectors() {
    let dir = Path::new(MANIFEST).join("tests/vectors/page_owner_sort");
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    let (tmp, link) = drop_in();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in index.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.splitn(7, '\t').collect();
        assert_eq!(f.len(), 7, "bad index line {line}");
        let (id, rc, input, out, err, result, args) = (f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
        assert!(
            !args.contains(['\'', '"', '\\']),
            "quoted args not supported: {args}"
        );
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        let outfile = tmp.path().join("result");
        let with_out = !(result == "-" && id.starts_with("err-no-output"));
        let got = run(
            &link,
            &args,
            Path::new(input),
            with_out.then_some(outfile.as_path()),
            &dir,
        );
        let want_result = (result != "-").then(|| std::fs::read(dir.join(result)).expect("result"));
        let mut why = Vec::new();
        if got.code != Some(rc.parse().expect("rc")) {
            why.push(format!("exit {:?} want {rc}", got.code));
        }
        if got.stdout != std::fs::read(dir.join(out)).expect("out") {
            why.push("stdout differs".to_owned());
        }
        if got.stderr != std::fs::read(dir.join(err)).expect("err") {
            why.push(format!(
                "stderr differs: {}",
                String::from_utf8_lossy(&got.stderr)
            ));
        }
        if want_result.is_some() && got.result != want_result {
            why.push("result file differs".to_owned());
        }
        if !why.is_empty() {
            failures.push(format!("{id}: {}", why.join("; ")));
        }
        n += 1;
    }
    assert!(n >= 36, "only {n} vectors found");
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn gunzip(gz: &Path, to: &Path) {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .output()
        .expect("gzip -dc");
    assert!(out.status.success(), "gzip -dc {}", gz.display());
    std::fs::write(to, out.stdout).expect("write");
}

fn compare(reference: &Path, link: &Path, args: &[String], input: &Path, tmp: &Path) {
    let a = run(reference, args, input, Some(&tmp.join("ref.out")), tmp);
    let b = run(link, args, input, Some(&tmp.join("ref.out")), tmp);
    if a != b {
        let keep = tmp.join("failing-input");
        let _ = std::fs::copy(input, &keep);
        panic!(
            "page_owner_sort {args:?} differs from the reference (input kept at {}):\nref: code {:?} stdout {:?} stderr {:?} result {} bytes\nour: code {:?} stdout {:?} stderr {:?} result {} bytes",
            keep.display(),
            a.code,
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&a.stderr),
            a.result.as_ref().map_or(0, Vec::len),
            b.code,
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&b.stderr),
            b.result.as_ref().map_or(0, Vec::len),
        );
    }
}

const OPTION_SETS: &[&str] = &[
    "",
    "-m",
    "-t",
    "-a",
    "-r",
    "-p",
    "-P",
    "-n",
    "-s",
    "-f",
    "-d",
    "--cull=st",
    "--cull=st,p",
    "--cull=n,f -m",
    "--cull=ator --sort=ft",
    "--sort=-tg,+at,T",
    "--cull=p,tg,n,st,f,ator",
    "--pid 1,2 -m",
    "--tgid 1,76 --cull st",
    "--name swapper/0,exe --cull st",
    "--sort=at",
    "--sort=-ft,p",
    "--sort=-ator,st -f",
    "-mf --cu=tg --so=-n",
];

/// The real dump taken in the qemu kernel (page_owner=on) against the reference.
#[test]
fn real_qemu_dump_matches_reference() {
    let Some(reference) = need_reference() else {
        return;
    };
    let (tmp, link) = drop_in();
    let input = tmp.path().join("po.txt");
    gunzip(
        &Path::new(MANIFEST).join("tests/fixtures/page_owner/qemu-6.1-page_owner.txt.gz"),
        &input,
    );
    for set in OPTION_SETS {
        let args: Vec<String> = set.split_whitespace().map(str::to_owned).collect();
        compare(&reference, &link, &args, &input, tmp.path());
    }
}

// ---- synthetic 6.1 dumps -------------------------------------------------------------

const COMMS: &[&str] = &[
    "init",
    "bash",
    "kworker/0:1",
    "exe",
    "a b",
    "x),ts",
    "(sd-pam)",
    "",
];
const FRAMES: &[&str] = &[
    " get_page_from_freelist+0xc8b/0xf40",
    " __alloc_pages+0x1de/0x330",
    " alloc_pages+0x8a/0x110",
    " __vmalloc_node_range+0x3a1/0x5e0",
    " allocate_slab+0x23a/0x480",
    " pipe_write+0x3a4/0x6d0 [pipe_mod]",
    " do_syscall_64+0x34/0x90",
    " entry_SYSCALL_64_after_hwframe+0x6e/0xd8",
];
const PFN_TYPES: &[&str] = &["Movable", "Unmovable", "Reclaimable", "CMA"];
const FLAGS: &[&str] = &["uptodate|lru", "slab", "head|slab", "", "reserved"];
const OPTION_POOL: &[&str] = &[
    "-m",
    "-t",
    "-a",
    "-r",
    "-p",
    "-P",
    "-n",
    "-s",
    "-f",
    "--cull=st",
    "--cull=p",
    "--cull=tg",
    "--cull=n",
    "--cull=f",
    "--cull=ator",
    "--sort=at",
    "--sort=-ft",
    "--sort=T",
    "--sort=-p,n",
    "--sort=ator,+st",
    "--pid=1,2,3",
    "--tgid=2,3",
    "--name=bash,init,",
    "--cull=st,f,ator",
    "-d",
    "-d --pid=1",
    "-df",
];

#[derive(Debug, Clone)]
struct Rec {
    order: u8,
    pid: u8,
    tgid: u8,
    comm: u8,
    ts: u64,
    free_ts: u64,
    pfn_type: u8,
    flags: u8,
    frames: Vec<u8>,
    has_pfn: bool,
    extra: u8,
    repeat: u8,
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        (0u8..12, 0u8..5, 0u8..5, 0u8..COMMS.len() as u8),
        (
            prop_oneof![Just(0u64), 1u64..50, Just(u64::MAX)],
            prop_oneof![Just(0u64), 1u64..50],
        ),
        (0u8..PFN_TYPES.len() as u8, 0u8..FLAGS.len() as u8),
        proptest::collection::vec(0u8..FRAMES.len() as u8, 0..5),
        (any::<bool>(), 0u8..8, 0u8..4),
    )
        .prop_map(
            |(
                (order, pid, tgid, comm),
                (ts, free_ts),
                (pfn_type, flags),
                frames,
                (has_pfn, extra, repeat),
            )| Rec {
                order,
                pid,
                tgid,
                comm,
                ts,
                free_ts,
                pfn_type,
                flags,
                frames,
                has_pfn: has_pfn || extra > 1,
                extra,
                repeat,
            },
        )
}

fn render(recs: &[Rec], trailing: bool) -> Vec<u8> {
    let mut s = String::new();
    for (i, r) in recs.iter().enumerate() {
        for _ in 0..=r.repeat.saturating_sub(2) {
            let order = if r.order == 11 {
                "70".to_owned()
            } else {
                r.order.to_string()
            };
            let ts = if r.ts == u64::MAX {
                "99999999999999999999999".to_owned()
            } else {
                r.ts.to_string()
            };
            s += &format!(
                "Page allocated via order {order}, mask 0x152cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), pid {}, tgid {} ({}), ts {ts} ns, free_ts {} ns\n",
                r.pid, r.tgid, COMMS[r.comm as usize], r.free_ts
            );
            if r.has_pfn {
                s += &format!(
                    "PFN {} type {} Block {} type Movable Flags 0x1000(node=0|zone=1|{})\n",
                    4096 + i,
                    PFN_TYPES[r.pfn_type as usize],
                    (4096 + i) >> 9,
                    FLAGS[r.flags as usize]
                );
            }
            // __vmalloc_node_range as the first frame makes the C tool scan backwards past
            // the start of its buffer (undefined behaviour, it can crash): keep a frame before it.
            if r.frames.first() == Some(&3) {
                s += FRAMES[0];
                s.push('\n');
            }
            for &f in &r.frames {
                s += FRAMES[f as usize];
                s.push('\n');
            }
            match r.extra {
                2 => s += "Page has been migrated, last migrate reason: compaction\n",
                3 => s += "Charged to memcg user.slice\n",
                4 => s.push('\n'), // an extra empty line: an empty pseudo-record
                5 => s += "pid x, tgid , garbage\n",
                _ => {}
            }
            s.push('\n');
        }
    }
    if trailing {
        s += "Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (init), ts 1 ns, free_ts 0 ns\n unterminated+0x1/0x2\n";
    }
    s.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Synthetic 6.1 dumps (with duplicates, odd comms, bad numbers, empty records, vmalloc
    /// and slab/CMA blocks) and option sets: same output file, stdout, stderr and exit status.
    #[test]
    fn synthetic_dumps_match_reference(
        recs in proptest::collection::vec(rec(), 0..40),
        trailing in any::<bool>(),
        opts in proptest::collection::vec(0usize..OPTION_POOL.len(), 0..3),
        pad in 0usize..3,
    ) {
        let Some(reference) = need_reference() else { return Ok(()) };
        let (tmp, link) = drop_in();
        let input = tmp.path().join("po.txt");
        let mut data = render(&recs, trailing);
        // pad == 0 leaves small files whose file_size/100 capacity may be too small.
        if pad > 0 {
            let mut tail = vec![b' '; 150 * recs.len() * pad];
            tail.push(b'\n');
            data.extend_from_slice(b"padding");
            data.extend(tail);
        }
        std::fs::write(&input, &data).expect("write");
        let args: Vec<String> = opts
            .iter()
            .flat_map(|&i| OPTION_POOL[i].split_whitespace().map(str::to_owned))
            .collect();
        compare(&reference, &link, &args, &input, tmp.path());
    }

    /// Generated dumps (records, not noise), then damaged: a byte overwritten, a span cut out
    /// or duplicated, the text cut short, through the reader and every engine mode: no panic,
    /// and an undamaged dump lists its records.
    #[test]
    fn reader_never_panics(
        recs in proptest::collection::vec(rec(), 1..30),
        trailing in any::<bool>(),
        damage in proptest::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<u8>(), 0usize..200), 0..4),
        cull in 0u32..128,
        sort in 0usize..8,
    ) {
        let mut data = render(&recs, trailing);
        let clean = damage.is_empty();
        for (kind, at, byte, len) in &damage {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            let j = (i + len).min(data.len());
            match kind {
                0 => data[i] = *byte,
                1 => { data.drain(i..j); }
                2 => { let span = data[i..j].to_vec(); data.splice(i..i, span); }
                _ => data.truncate(i),
            }
        }
        let mut o = Options { cull: cull & !1, ..Options::default() };
        let keys = ["T", "n", "st", "at", "ft", "p", "tg", "ator"];
        assert!(o.parse_sort(keys[sort].as_bytes()));
        o.debug = cull % 3 == 0;
        let mut s = Sorter::new(o, data.len() as u64 * 100);
        let mut so = Vec::new();
        let mut se = Vec::new();
        let _ = s.read_all(&data[..], &mut so, &mut se).expect("in-memory io");
        let mut out = Vec::new();
        s.finish(&mut so, &mut out).expect("in-memory io");
        if clean && cull == 0 {
            // the generated text holds records, and no filter is set: the listing is not empty
            let headers = data.windows(18).filter(|w| w == b"Page allocated via").count();
            prop_assert!(headers > 0);
            prop_assert!(!out.is_empty(), "no output for {} records", headers);
        }
    }
}

/// Options and error paths against the reference (getopt messages, missing files).
#[test]
fn option_errors_match_reference() {
    let Some(reference) = need_reference() else {
        return;
    };
    let (tmp, link) = drop_in();
    // A copy: some cases shift the operands ("--" "-m" makes the input the OUTPUT operand).
    let input = tmp.path().join("po-basic.txt");
    std::fs::copy(
        Path::new(MANIFEST).join("tests/vectors/page_owner_sort/inputs/po-basic.txt"),
        &input,
    )
    .expect("copy");
    let cases: &[&[&str]] = &[
        &["--bogus"],
        &["--pid"],
        &["--pid=", "-m"],
        &["--pid", " +3,-4"],
        &["--tgid", "99999999999999999999"],
        &["--cull=p,bogus"],
        &["--sort="],
        &["--sort=-"],
        &["-x"],
        &["-mfx"],
        &["--", "-m"],
        &["--nam=init"],
    ];
    for c in cases {
        let args: Vec<String> = c.iter().map(|s| (*s).to_owned()).collect();
        std::fs::copy(
            Path::new(MANIFEST).join("tests/vectors/page_owner_sort/inputs/po-basic.txt"),
            &input,
        )
        .expect("copy");
        compare(&reference, &link, &args, &input, tmp.path());
    }
    // Missing input: OUTPUT is still created; a missing output directory.
    for (inp, out) in [
        ("/nonexistent/in", "o1"),
        (input.to_str().expect("utf8"), "/nonexistent/dir/o"),
    ] {
        let a = run(
            &reference,
            &[],
            Path::new(inp),
            Some(&tmp.path().join(out)),
            tmp.path(),
        );
        let b = run(
            &link,
            &[],
            Path::new(inp),
            Some(&tmp.path().join(out)),
            tmp.path(),
        );
        assert_eq!(a, b, "{inp} {out}");
    }
}

/// Framing edge cases against the reference: NUL bytes inside lines, CRLF, a block longer than
/// the 128 KiB buffer (which ends the reading), PFN lines longer than what is left of it.
#[test]
fn framing_edge_cases_match_reference() {
    let Some(reference) = need_reference() else {
        return;
    };
    let (tmp, link) = drop_in();
    let head = |pid: u32, ts: u32| {
        format!(
            "Page allocated via order 1, mask 0x0(), pid {pid}, tgid {pid} (c{pid}), ts {ts} ns, free_ts 0 ns\n"
        )
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // NUL inside a frame line and inside the header; CRLF lines.
    let mut a = Vec::new();
    a.extend_from_slice(head(1, 5).as_bytes());
    a.extend_from_slice(b" frame\0hidden+0x1/0x2\n\n");
    a.extend_from_slice(b"Page allocated via order 0, mask 0x0(), pid 2\0, tgid 2 (x), ts 1 ns, free_ts 0 ns\n f+1/2\n\n");
    a.extend_from_slice(b"Page allocated via order 0, mask 0x0(), pid 3, tgid 3 (y), ts 2 ns, free_ts 0 ns\r\n g+1/2\r\n\r\n\n");
    cases.push(a);
    // A block of more than 128 KiB between two normal ones.
    let mut b = Vec::new();
    b.extend_from_slice(head(1, 5).as_bytes());
    b.extend_from_slice(b" a+1/2\n\n");
    b.extend_from_slice(head(2, 6).as_bytes());
    for i in 0..6000 {
        b.extend_from_slice(format!(" frame_{i:08}+0x1/0x2\n").as_bytes());
    }
    b.extend_from_slice(b"\n");
    b.extend_from_slice(head(3, 7).as_bytes());
    b.extend_from_slice(b" c+1/2\n\n");
    cases.push(b);
    // A single line just under, at and over the buffer size; a PFN line after a long text.
    for n in [131_070usize, 131_071, 131_072, 140_000] {
        let mut c = Vec::new();
        c.extend_from_slice(head(1, 5).as_bytes());
        c.push(b' ');
        c.extend(std::iter::repeat_n(b'x', n - head(1, 5).len() - 2));
        c.extend_from_slice(b"\nPFN 12 type Movable Block 0 type Movable Flags 0x0(slab)\n\n");
        c.extend_from_slice(head(2, 6).as_bytes());
        c.extend_from_slice(b" d+1/2\n\n");
        cases.push(c);
    }
    for (i, data) in cases.iter().enumerate() {
        let input = tmp.path().join(format!("edge{i}.txt"));
        std::fs::write(&input, data).expect("write");
        for set in ["", "-d", "--cull=st,ator", "-s"] {
            let args: Vec<String> = set.split_whitespace().map(str::to_owned).collect();
            compare(&reference, &link, &args, &input, tmp.path());
        }
    }
}

/// The drop-in writes its output file as the C tool does (create or truncate), but never
/// through a symbolic link planted at the output path (issue 17): the link's target is kept.
#[test]
fn output_through_a_planted_link_is_refused() {
    let (d, prog) = drop_in();
    let input = d.path().join("in.txt");
    // a real dump (the C tool refuses inputs under 100 bytes a record: "max_size too small??")
    let dump = common::manifest_dir().join("tests/fixtures/page_owner/qemu-6.1-page_owner.txt.gz");
    let text = Command::new("gzip")
        .arg("-dc")
        .arg(&dump)
        .output()
        .expect("gzip")
        .stdout;
    assert!(!text.is_empty());
    std::fs::write(&input, text).expect("input");
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"keep").expect("victim");
    let out = d.path().join("out.txt");
    std::os::unix::fs::symlink(&victim, &out).expect("symlink");
    let sort = || {
        Command::new(&prog)
            .arg0("page_owner_sort")
            .arg(&input)
            .arg(&out)
            .output()
            .expect("spawn")
    };
    let r = sort();
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("open: : "),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
    std::fs::remove_file(&out).expect("rm link");
    let r = sort();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let written = std::fs::read_to_string(&out).expect("out");
    assert!(
        written.contains(" times, ") && written.contains(" pages"),
        "{}",
        &written[..written.len().min(300)]
    );
}
