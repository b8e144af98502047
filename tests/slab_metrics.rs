//! `pgtool slab --prometheus FILE` (issue 20): the families and values from the fixture
//! `--root` tree, labels bounded to `cache`, the same series set from two runs, `promtool check
//! metrics` clean, and a real `prometheus-node-exporter` serving the file with no scrape error.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pgtool");

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip(test: &str, reason: &str) {
    common::skip_or_fail(test, reason);
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slab/root")
}

fn write_metrics(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    let o = Command::new(BIN)
        .arg("--root")
        .arg(root())
        .args(["slab", "--count", "2", "--interval", "10ms", "--prometheus"])
        .arg(&p)
        .stdout(Stdio::null())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = std::fs::metadata(&p).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o644
    );
    std::fs::read_to_string(&p).expect("read")
}

/// (name, labels) of every sample line.
fn series(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let key = l.rsplit_once(' ').map_or(l, |x| x.0);
            match key.split_once('{') {
                Some((n, rest)) => (n.to_string(), rest.trim_end_matches('}').to_string()),
                None => (key.to_string(), String::new()),
            }
        })
        .collect()
}

fn value(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn families_values_and_bounded_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = write_metrics(dir.path(), "slab.prom");
    let slabinfo = std::fs::read_to_string(root().join("proc/slabinfo")).expect("slabinfo");
    let filp: Vec<u64> = slabinfo
        .lines()
        .find(|l| l.starts_with("filp "))
        .expect("filp")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let page = pgtool::page_size() as f64;
    let want_bytes = (filp[9] * filp[4]) as f64 * page;
    assert_eq!(
        value(&text, "pgtool_slab_cache_bytes{cache=\"filp\"} "),
        Some(want_bytes)
    );
    assert_eq!(
        value(&text, "pgtool_slab_cache_active_objects{cache=\"filp\"} "),
        Some(filp[0] as f64)
    );
    assert_eq!(
        value(
            &text,
            "pgtool_slab_cache_object_size_bytes{cache=\"filp\"} "
        ),
        Some(filp[2] as f64)
    );
    assert_eq!(
        value(&text, "pgtool_slab_cache_growth_objects{cache=\"filp\"} "),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "pgtool_slab_cache_leak_suspect{cache=\"filp\"} "),
        Some(0.0)
    );
    assert_eq!(value(&text, "pgtool_slab_window_seconds "), Some(0.01));
    let caches = slabinfo.lines().count() - 2;
    for fam in [
        "pgtool_slab_cache_bytes",
        "pgtool_slab_cache_active_objects",
        "pgtool_slab_cache_objects",
        "pgtool_slab_cache_object_size_bytes",
        "pgtool_slab_cache_growth_objects",
        "pgtool_slab_cache_leak_suspect",
    ] {
        assert!(text.contains(&format!("# TYPE {fam} gauge\n")), "{fam}");
        let n = text
            .lines()
            .filter(|l| l.starts_with(&format!("{fam}{{")))
            .count();
        assert_eq!(n, caches, "{fam}: one series per cache");
    }
    // Bounded labels: `cache` only, never pid or address.
    for (_, labels) in series(&text) {
        assert!(
            labels.is_empty() || (labels.starts_with("cache=\"") && !labels.contains(',')),
            "{labels}"
        );
    }
    // Two runs, the same series.
    let again = write_metrics(dir.path(), "slab2.prom");
    assert_eq!(series(&text), series(&again));
}

#[test]
fn promtool_accepts_the_file() {
    let Ok(st) = Command::new("promtool").arg("--version").output() else {
        return skip(
            "promtool_accepts_the_file",
            "promtool not installed (Debian package prometheus)",
        );
    };
    assert!(st.status.success());
    let dir = tempfile::tempdir().expect("tmp");
    let text = write_metrics(dir.path(), "slab.prom");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Kills the exporter on every exit path.
struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.0 200").then_some(body)
}

#[test]
fn node_exporter_serves_the_file() {
    let name = "node_exporter_serves_the_file";
    let exe = ["prometheus-node-exporter", "node_exporter"]
        .into_iter()
        .find(|e| Command::new(e).arg("--version").output().is_ok());
    let Some(exe) = exe else {
        return skip(name, "prometheus-node-exporter not installed");
    };
    let dir = tempfile::tempdir().expect("tmp");
    write_metrics(dir.path(), "pgtool_slab.prom");
    // A free loopback port: bind port 0, read it, release it for the exporter.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let _exp = Exporter(
        Command::new(exe)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                dir.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node exporter"),
    );
    let start = Instant::now();
    let body = loop {
        if let Some(b) = scrape(port) {
            break b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node exporter did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "scrape error: {}",
        body.lines()
            .filter(|l| l.contains("textfile"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let page = pgtool::page_size() as f64;
    let slabinfo = std::fs::read_to_string(root().join("proc/slabinfo")).expect("slabinfo");
    let filp: Vec<u64> = slabinfo
        .lines()
        .find(|l| l.starts_with("filp "))
        .expect("filp")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        value(&body, "pgtool_slab_cache_bytes{cache=\"filp\"} "),
        Some((filp[9] * filp[4]) as f64 * page),
        "{}",
        body.lines()
            .filter(|l| l.starts_with("pgtool_slab_cache_bytes"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for fam in [
        "pgtool_slab_cache_active_objects",
        "pgtool_slab_cache_growth_objects",
        "pgtool_slab_cache_leak_suspect",
        "pgtool_slab_window_seconds",
    ] {
        assert!(body.contains(&format!("# TYPE {fam} gauge")), "{fam}");
    }
}
