//! Issue 20: every `--prometheus` file pgtool writes passes `promtool check metrics` and arrives
//! whole through a real node_exporter.
//!
//! A real `prometheus-node-exporter` (Debian package) is started on a free loopback port with
//! only the textfile collector, reading a temporary directory; each writer (a case) writes its
//! file there; `/metrics` is scraped over HTTP and every family, label set and value of the file
//! must be in the scrape, with `node_textfile_scrape_error 0`. Each writer runs twice: the two
//! samples must have the same set of series (no pid or address labels by default). A case
//! whose subcommand or flag this build lacks prints `SKIP ...` (and fails under CI). Without
//! node_exporter or promtool the test skips with the reason (fails under CI: `.ci/run` installs
//! them).

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// A series: metric name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// The samples of an exposition text (comments skipped; labels with empty values dropped).
fn parse_samples(text: &str) -> Result<BTreeMap<Series, f64>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(format!("no value: {line}")),
        };
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                // label name
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '=' || c == '}' || c == ',' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                match chars.next() {
                    Some((i, '}')) => {
                        end = i;
                        break;
                    }
                    Some((_, ',')) => continue,
                    Some((_, '=')) => {}
                    _ => return Err(format!("bad labels: {line}")),
                }
                if chars.next().map(|x| x.1) != Some('"') {
                    return Err(format!("unquoted label value: {line}"));
                }
                let mut val = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => val.push('\n'),
                            Some((_, c)) => val.push(c),
                            None => return Err(format!("bad escape: {line}")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => val.push(c),
                        None => return Err(format!("unterminated label value: {line}")),
                    }
                }
                // An empty value is the same as no label (node_exporter fills in the labels
                // one sample of a family lacks with empty values).
                if !val.is_empty() {
                    labels.push((key.trim().to_string(), val));
                }
            }
            rest = &r[end + 1..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| format!("no value: {line}"))?;
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|e| format!("value {v:?}: {e}: {line}"))?,
        };
        labels.sort();
        out.insert((name.to_string(), labels), v);
    }
    Ok(out)
}

/// `# TYPE name kind` lines.
fn types_of(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(
            head.lines().next().unwrap_or("").to_string(),
        ));
    }
    Ok(body.to_string())
}

/// node_exporter, killed on drop (also when an assertion fails).
struct Exporter {
    child: std::process::Child,
    port: u16,
}

impl Exporter {
    fn start(textfile_dir: &Path) -> Result<Exporter, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(NODE_EXPORTER)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--collector.disable-defaults")
                .arg("--collector.textfile")
                .arg(format!(
                    "--collector.textfile.directory={}",
                    textfile_dir.display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{NODE_EXPORTER}: {e}"))?;
            let mut ex = Exporter { child, port };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(st)) = ex.child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = ex.child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    last = format!("{NODE_EXPORTER} exited ({st}): {}", err.trim());
                    break;
                }
                if http_get(port, "/metrics").is_ok() {
                    return Ok(ex);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if last.is_empty() {
                last = format!("{NODE_EXPORTER} did not answer on port {port}");
            }
        }
        Err(last)
    }

    fn scrape(&self) -> BTreeMap<Series, f64> {
        let body = http_get(self.port, "/metrics").expect("scrape /metrics");
        parse_samples(&body).unwrap_or_else(|e| panic!("node_exporter's output: {e}"))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sleeping process to sample, killed on drop.
struct Sleeper(std::process::Child);
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The common fixture plus the slab, meminfo and per-process files other writers read.
fn fixture(dir: &Path) -> PathBuf {
    let root = write_fixture(dir);
    let slab = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/slab/host-6.18-slabinfo.txt"
    );
    std::fs::copy(slab, root.join("proc/slabinfo")).expect("slabinfo");
    for (f, text) in [
        (
            "proc/meminfo",
            "MemTotal:        4096 kB\nMemFree:         1024 kB\n",
        ),
        ("proc/1234/cmdline", "/usr/bin/fixture\0"),
        ("proc/1234/cgroup", "0::/fixture.slice\n"),
        ("proc/1234/smaps_rollup", "Rss:                2136 kB\n"),
    ] {
        std::fs::write(root.join(f), text).expect("write");
    }
    root
}

/// One writer: its name, argv (`FILE` is replaced by the textfile's path, `ROOT` by the
/// fixture, `PID` by a live process's pid), and the subcommand it exercises.
struct Case {
    name: &'static str,
    args: Vec<&'static str>,
    sub: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "types",
            args: vec!["--root", "ROOT", "types", "--prometheus", "FILE"],
            sub: "types",
        },
        Case {
            name: "idle_wss",
            args: vec![
                "idle",
                "wss",
                "--pid",
                "PID",
                "--method",
                "refs",
                "--count",
                "1",
                "--interval",
                "50ms",
                "--prometheus",
                "FILE",
            ],
            sub: "idle wss",
        },
        Case {
            name: "cgroup_pages",
            args: vec![
                "--root",
                "ROOT",
                "cgroup",
                "--pages",
                "--prometheus",
                "FILE",
            ],
            sub: "cgroup --pages",
        },
        Case {
            name: "slab",
            args: vec![
                "--root",
                "ROOT",
                "slab",
                "--count",
                "1",
                "--prometheus",
                "FILE",
            ],
            sub: "slab",
        },
        Case {
            name: "leak",
            args: vec![
                "--root",
                "ROOT",
                "leak",
                "--count",
                "3",
                "--interval",
                "20ms",
                "--prometheus",
                "FILE",
            ],
            sub: "leak",
        },
        Case {
            name: "mem",
            args: vec![
                "--root",
                "ROOT",
                "mem",
                "--pid",
                "1234",
                "--prometheus",
                "FILE",
            ],
            sub: "mem",
        },
        Case {
            name: "map",
            args: vec![
                "--root",
                "ROOT",
                "map",
                "--json",
                "--totals",
                "--prometheus",
                "FILE",
            ],
            sub: "map",
        },
    ]
}

/// True when the run failed because this build lacks the subcommand or its `--prometheus`
/// (clap's usage error, or the page-types parser's for `types`).
fn missing_in_build(r: &Run) -> bool {
    let e = &r.stderr;
    r.code == 2
        && (e.contains("unrecognized subcommand")
            || (e.contains("--prometheus")
                && (e.contains("unexpected argument")
                    || e.contains("unrecognized")
                    || e.contains("invalid option")
                    || e.contains("unknown option"))))
}

/// True for a label that grows without bound (pid, address range) and must not be there by
/// default.
fn unbounded_label(k: &str, v: &str) -> bool {
    let range = v.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.trim_start_matches("0x")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
            && b.trim_start_matches("0x")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
    });
    matches!(
        k,
        "pid" | "tgid" | "addr" | "address" | "vaddr" | "start" | "end"
    ) || range
}

fn promtool_check(file: &Path) -> Result<(), String> {
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?)
        .output()
        .map_err(|e| format!("promtool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics {}: exit {:?}: {}{}",
            file.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn tool_missing(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
}

/// Failure lines, each once.
#[derive(Default)]
struct Failures(Vec<String>);
impl Failures {
    fn push(&mut self, s: String) {
        if !self.0.contains(&s) {
            self.0.push(s);
        }
    }
}

#[test]
fn every_prometheus_writer_lints_and_arrives_through_node_exporter() {
    for tool in [NODE_EXPORTER, "promtool"] {
        if tool_missing(tool) {
            skip(&format!(
                "every_prometheus_writer_lints_and_arrives_through_node_exporter: {tool} is not \
                 installed (apt-get install prometheus-node-exporter prometheus)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = fixture(&tmp.path().join("root"));
    let textfiles = tmp.path().join("textfiles");
    std::fs::create_dir(&textfiles).expect("mkdir");
    let exporter = Exporter::start(&textfiles).unwrap_or_else(|e| panic!("{e}"));
    let sleeper = Sleeper(Command::new("sleep").arg("600").spawn().expect("sleep"));
    let pid = sleeper.0.id().to_string();

    // a set: one line per distinct problem, in order
    let mut failures = Failures::default();
    let mut skipped = Vec::new();
    for case in cases() {
        let file = textfiles.join(format!("pgtool_{}.prom", case.name));
        let argv: Vec<String> = case
            .args
            .iter()
            .map(|a| match *a {
                "FILE" => file.display().to_string(),
                "ROOT" => root.display().to_string(),
                "PID" => pid.clone(),
                a => a.to_string(),
            })
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut series_sets = Vec::new();
        let mut last = BTreeMap::new();
        let mut text = String::new();
        for round in 0..2 {
            let r = pgtool(&argv);
            if missing_in_build(&r) {
                let msg = format!(
                    "SKIP prometheus case {}: `pgtool {} --prometheus` is not in this build: {}",
                    case.name,
                    case.sub,
                    r.stderr.lines().next().unwrap_or("")
                );
                eprintln!("{msg}");
                skipped.push(msg);
                break;
            }
            if r.code != 0 {
                failures.push(format!(
                    "{}: round {round}: {argv:?}: exit {}: {}",
                    case.name,
                    r.code,
                    r.stderr.trim()
                ));
                break;
            }
            text = std::fs::read_to_string(&file).unwrap_or_default();
            match parse_samples(&text) {
                Ok(s) => {
                    series_sets.push(s.keys().cloned().collect::<BTreeSet<_>>());
                    last = s;
                }
                Err(e) => failures.push(format!("{}: unparsable file: {e}", case.name)),
            }
        }
        if series_sets.len() != 2 {
            continue;
        }
        if series_sets[0] != series_sets[1] {
            failures.push(format!(
                "{}: two consecutive samples have different series: {:?} vs {:?}",
                case.name,
                series_sets[0]
                    .symmetric_difference(&series_sets[1])
                    .collect::<Vec<_>>(),
                ""
            ));
        }
        if let Err(e) = promtool_check(&file) {
            failures.push(format!("{}: {e}", case.name));
        }
        if last.is_empty() {
            failures.push(format!("{}: no samples written", case.name));
        }
        let types = types_of(&text);
        for ((name, labels), _) in last.iter() {
            if !name.starts_with("pgtool_") {
                failures.push(format!(
                    "{}: metric {name} lacks the pgtool_ prefix",
                    case.name
                ));
            }
            if !types.contains_key(name) {
                failures.push(format!("{}: {name} has no # TYPE", case.name));
            }
            for (k, v) in labels {
                if unbounded_label(k, v) {
                    failures.push(format!(
                        "{}: {name}: unbounded label {k} by default (e.g. {k}=\"{v}\")",
                        case.name
                    ));
                    break;
                }
            }
        }
        if case.name == "types" {
            // the fixture has 0x401 pages: a pages gauge by flag set must add up to them
            let sums: BTreeMap<&str, f64> = last
                .iter()
                .filter(|((n, l), _)| n.ends_with("_pages") && !l.is_empty())
                .fold(BTreeMap::new(), |mut m, ((n, _), v)| {
                    *m.entry(n.as_str()).or_insert(0.0) += v;
                    m
                });
            if !sums.values().any(|s| *s == NPFNS as f64) {
                failures.push(format!(
                    "types: no _pages family by flag set adds up to the fixture's {NPFNS} pages: {sums:?}"
                ));
            }
        }
        // what the file says must be what node_exporter serves
        let scraped = exporter.scrape();
        for (series, v) in &last {
            match scraped.get(series) {
                Some(w) if w == v || (w.is_nan() && v.is_nan()) => {}
                Some(w) => {
                    failures.push(format!("{}: {series:?}: file {v}, scraped {w}", case.name))
                }
                None => failures.push(format!("{}: {series:?} not in the scrape", case.name)),
            }
        }
        let mtime_key = (
            "node_textfile_mtime_seconds".to_string(),
            vec![("file".to_string(), file.display().to_string())],
        );
        let mtime_alt = (
            "node_textfile_mtime_seconds".to_string(),
            vec![(
                "file".to_string(),
                file.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            )],
        );
        if !scraped.contains_key(&mtime_key) && !scraped.contains_key(&mtime_alt) {
            failures.push(format!(
                "{}: node_exporter did not read {}",
                case.name,
                file.display()
            ));
        }
    }
    let scraped = exporter.scrape();
    let err = scraped.get(&("node_textfile_scrape_error".to_string(), Vec::new()));
    if err != Some(&0.0) {
        failures.push(format!("node_textfile_scrape_error is {err:?}, not 0"));
    }
    drop(exporter);
    assert!(failures.0.is_empty(), "{}", failures.0.join("\n"));
    if !skipped.is_empty() && std::env::var_os("CI").is_some() {
        panic!("writers missing under CI:\n{}", skipped.join("\n"));
    }
}

#[test]
fn parser_reads_escaped_labels() {
    let s =
        parse_samples("# HELP a b\na{x=\"1\\\"2\",y=\"\\\\\",z=\"\"} 3\nb 4.5\n").expect("parse");
    assert_eq!(
        s.get(&(
            "a".to_string(),
            vec![("x".into(), "1\"2".into()), ("y".into(), "\\".into())]
        )),
        Some(&3.0)
    );
    assert_eq!(s.get(&("b".to_string(), vec![])), Some(&4.5));
    assert!(unbounded_label("vma", "56024db71000-56024db72000"));
    assert!(unbounded_label("pid", "1"));
    assert!(!unbounded_label("flags", "lru|anon"));
}
