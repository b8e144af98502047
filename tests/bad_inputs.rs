//! The table of bad inputs: every `tests/bad_inputs/*.jsonl` file holds cases, one JSON object
//! per line, each run against the pgtool binary:
//!
//! `{"args": [...], "exit": 2, "stderr": "text", "stdin": "...", "stdin_path": "/dev/zero",
//!   "stdout_path": "/dev/full", "close_stdout": true, "ulimit_v_kib": 200000}`
//!
//! `stderr` must occur in the FIRST line of stderr (empty: stderr must be empty). Placeholders
//! in args: `{FIXTURES}` (tests/fixtures), `{TREE}` (a fresh copy of the synthetic proc tree of
//! tests/common), `{TMP}` (a fresh empty directory). Every case must end within 20 s, never
//! panic (exit 101 or "panicked" on stderr) and never be killed by a signal.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    args: Vec<String>,
    exit: i32,
    stderr: String,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    stdin_path: Option<String>,
    #[serde(default)]
    stdout_path: Option<String>,
    #[serde(default)]
    close_stdout: bool,
    #[serde(default)]
    ulimit_v_kib: Option<u64>,
    #[serde(default)]
    root_only: bool,
}

fn run_case(c: &Case, tmp: &Path) -> Result<(), String> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fresh = tmp.join("empty");
    std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
    let mut tree = None;
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| {
            let mut a = a.replace("{FIXTURES}", &fixtures.to_string_lossy());
            a = a.replace("{TMP}", &fresh.to_string_lossy());
            if a.contains("{TREE}") {
                let t = tree.get_or_insert_with(|| common::write_fixture(&tmp.join("tree")));
                a = a.replace("{TREE}", &t.to_string_lossy());
            }
            a
        })
        .collect();
    let mut cmd = match c.ulimit_v_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(common::pgtool_bin())
                .args(&args);
            sh
        }
        None => {
            let mut cmd = Command::new(common::pgtool_bin());
            cmd.args(&args);
            cmd
        }
    };
    cmd.stderr(Stdio::piped());
    match (&c.stdin, &c.stdin_path) {
        (Some(_), _) => cmd.stdin(Stdio::piped()),
        (None, Some(p)) => cmd.stdin(std::fs::File::open(p).map_err(|e| format!("{p}: {e}"))?),
        (None, None) => cmd.stdin(Stdio::null()),
    };
    let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    match &c.stdout_path {
        Some(p) => cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map_err(|e| format!("{p}: {e}"))?,
        ),
        None if c.close_stdout => {
            cmd.stdout(writer);
            drop(reader);
            &mut cmd
        }
        None => cmd.stdout(Stdio::null()),
    };
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    drop(cmd);
    if let (Some(text), Some(mut w)) = (&c.stdin, child.stdin.take()) {
        let _ = w.write_all(text.as_bytes());
    }
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.by_ref().take(1 << 20).read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("did not end within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = String::from_utf8_lossy(&t.join().unwrap_or_default()).into_owned();
    let first = stderr.lines().next().unwrap_or("");
    let code = status.code();
    if stderr.contains("panicked") || code == Some(101) {
        return Err(format!("panicked: {stderr}"));
    }
    if code.is_none() {
        return Err(format!("killed by a signal ({status}); stderr: {first}"));
    }
    if code != Some(c.exit) {
        return Err(format!(
            "exit {code:?}, expected {}; stderr: {first}",
            c.exit
        ));
    }
    let ok = if c.stderr.is_empty() {
        stderr.is_empty()
    } else {
        first.contains(&c.stderr)
    };
    if !ok {
        return Err(format!("stderr first line {first:?} lacks {:?}", c.stderr));
    }
    if first.len() > 600 {
        return Err(format!("error line of {} bytes", first.len()));
    }
    Ok(())
}

#[test]
fn bad_inputs_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/bad_inputs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let name = format!(
                "{}:{}",
                f.file_name().unwrap_or_default().to_string_lossy(),
                i + 1
            );
            let c: Case = match serde_json::from_str(line) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{name}: bad case: {e}"));
                    continue;
                }
            };
            if c.root_only && !common::is_root() {
                common::skip_or_fail(&name, "needs root");
                continue;
            }
            let tmp = tempfile::tempdir().expect("tmp");
            ran += 1;
            if let Err(e) = run_case(&c, tmp.path()) {
                failures.push(format!("{name}: pgtool {}: {e}", c.args.join(" ")));
            }
        }
    }
    println!("{ran} bad-input cases run from {} files", files.len());
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= 10, "only {ran} cases: the table is missing");
}
