//! `pgtool leak --trace`: enable the kmem tracepoints in a tracefs instance of our own
//! (`instances/pgtool-leak-PID`), read its `trace_pipe` for a while, pair allocations with frees
//! ([`super::pairing`]) and report what is still outstanding by call site.
//!
//! Safe on production: only the instance is written (never the global tracer's files), the
//! instance is removed on every exit path (return, error, SIGINT/SIGTERM/SIGHUP through
//! [`stop_flag`], and [`crate::tracefs::Instance`]'s drop on a panic), memory is bounded by
//! `max_events` outstanding allocations, and the reader sleeps when the pipe is empty.

use super::pairing::{Counts, SiteRecord, Tracker};
use super::trace_parse::parse_line;
use crate::error::{Error, Result};
use crate::root::SysRoot;
use crate::tracefs::{Instance, MOUNT_HINT};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Allocation events, probed in this order: kernels before 6.1 have the `_node` variants.
pub const ALLOC_EVENTS: &[&str] = &[
    "kmalloc",
    "kmalloc_node",
    "kmem_cache_alloc",
    "kmem_cache_alloc_node",
    "mm_page_alloc",
];
/// Free events.
pub const FREE_EVENTS: &[&str] = &[
    "kfree",
    "kmem_cache_free",
    "mm_page_free",
    "mm_page_free_batched",
];
/// Memory per tracked allocation, measured: a hashbrown entry plus the table's growth steps
/// (RSS 11 MiB at 116k tracked, 31 MiB at 282k, release build on x86-64).
pub const BYTES_PER_TRACKED: u64 = 120;
/// Per-CPU ring buffer of our instance, KiB.
pub const BUFFER_KB: u32 = 8192;
/// The read buffer.
const CHUNK: usize = 256 * 1024;
/// A line longer than this is not a kmem event (it is skipped).
const MAX_LINE: usize = 64 * 1024;

/// Test-only fault injection: `PGTOOL_LEAK_TRACE_FAIL=setup` fails after the instance is set
/// up, `=read` after the first read, so tests can check the cleanup of the error path.
pub const FAIL_ENV: &str = "PGTOOL_LEAK_TRACE_FAIL";

/// What to trace.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long.
    pub duration: Duration,
    /// Only allocations by this PID.
    pub pid: Option<u32>,
    /// Only allocations by tasks with this comm.
    pub comm: Option<String>,
    /// Only this slab cache (`kmalloc-256`, `kmalloc-cg-256`, `filp`...).
    pub cache: Option<String>,
    /// The most outstanding allocations tracked.
    pub max_events: u64,
    /// Compare outstanding objects with their cache's groups (kcore; see [`super::similar`]).
    pub similar: bool,
}

/// The result of a trace.
#[derive(Clone, Debug, Default)]
pub struct TraceReport {
    /// Outstanding allocations by call site, most first.
    pub sites: Vec<SiteRecord>,
    /// What was counted.
    pub counts: Counts,
    /// Seconds traced.
    pub seconds: f64,
    /// Events the kernel lost (ring buffer overrun) by its per-CPU stats.
    pub lost: u64,
    /// Events enabled.
    pub events: Vec<String>,
    /// Observations: overhead, drops, what was skipped.
    pub notes: Vec<String>,
    /// Ended by a signal.
    pub interrupted: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// A flag set by SIGINT, SIGTERM and SIGHUP (handlers installed on first call), so that a
/// sampling or a trace ends cleanly, removing its tracing instance.
pub fn stop_flag() -> Result<&'static AtomicBool> {
    let r = INSTALLED.get_or_init(|| {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let act = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { sigaction(s, &act) }.map_err(|e| format!("sigaction {s}: {e}"))?;
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(&STOP),
        Err(e) => Err(Error::Usage(format!("cannot handle Ctrl-C: {e}"))),
    }
}

fn fail_point(at: &str) -> Result<()> {
    if std::env::var(FAIL_ENV).is_ok_and(|v| v == at) {
        return Err(Error::Usage(format!(
            "injected failure at {at} ({FAIL_ENV}, for tests)"
        )));
    }
    Ok(())
}

/// Quote a filter string value for tracefs.
fn quoted(s: &str) -> Result<String> {
    if s.contains(['"', '\n', '\\']) {
        return Err(Error::Usage(format!(
            "bad filter value {s:?}: quotes, backslashes and newlines are not allowed"
        )));
    }
    Ok(format!("\"{s}\""))
}

/// The kmalloc size of a `kmalloc-N`, `kmalloc-cg-N`, `kmalloc-rcl-N` cache name.
fn kmalloc_size(cache: &str) -> Option<u64> {
    let rest = cache.strip_prefix("kmalloc-")?;
    let n = rest
        .strip_prefix("cg-")
        .or_else(|| rest.strip_prefix("rcl-"))
        .or_else(|| rest.strip_prefix("dma-"))
        .unwrap_or(rest);
    let (num, mul) = match n.strip_suffix('k') {
        Some(k) => (k, 1024),
        None => (n, 1),
    };
    num.parse::<u64>().ok().map(|v| v * mul)
}

/// Trace for `opts.duration` (or until `stop`) and report.
pub fn run(root: &SysRoot, opts: &Options, stop: &AtomicBool) -> Result<TraceReport> {
    root.require_live("leak --trace (creates a tracing instance)")?;
    if let Some(pid) = opts.pid
        && !root.pid_dir(pid).exists()
    {
        return Err(Error::NoSuchProcess { pid });
    }
    let tracefs = root.tracefs();
    let me = std::process::id();
    let global_kb = || std::fs::read_to_string(tracefs.join("buffer_size_kb")).ok();
    let kb_before = global_kb();
    let inst = Instance::create(&tracefs, &format!("pgtool-leak-{me}"))?;
    let mut rep = TraceReport::default();
    let res = setup(&inst, opts, &mut rep).and_then(|()| {
        // On 6.1 resizing any instance sets the one global "expanded" flag without growing the
        // global buffer (__tracing_resize_ring_buffer), leaving the global tracer a 7 KiB
        // buffer for good: resize ours only once the global one is expanded (on 6.1, enabling
        // our events just did that; newer kernels keep the flag per instance and leave the
        // global one alone, so ours keeps the default size there).
        if global_kb().is_some_and(|t| !t.contains("expanded")) {
            let _ = inst.write("buffer_size_kb", &BUFFER_KB.to_string());
        }
        fail_point("setup")?;
        read(root, &inst, opts, stop, &mut rep)
    });
    // events off and instance removed on every path; an error of the trace wins
    let removed = inst.remove();
    res?;
    removed?;
    let kb_after = global_kb();
    if kb_after != kb_before {
        // 6.1's tracing_update_buffers() expands the global buffer once, when any event is enabled
        rep.notes.push(format!(
            "the kernel expanded the global ring buffer when our instance enabled its events \
             (buffer_size_kb {} -> {}: 6.1's tracing_update_buffers() does this once per boot; it cannot be undone)",
            kb_before.as_deref().unwrap_or("?").trim(),
            kb_after.as_deref().unwrap_or("?").trim()
        ));
    }
    Ok(rep)
}

fn setup(inst: &Instance, opts: &Options, rep: &mut TraceReport) -> Result<()> {
    let kmalloc = opts.cache.as_deref().and_then(kmalloc_size);
    let mut alloc_filter = vec![format!("common_pid != {}", std::process::id())];
    if let Some(p) = opts.pid {
        alloc_filter.push(format!("common_pid == {p}"));
    }
    if let Some(c) = &opts.comm {
        alloc_filter.push(format!("comm == {}", quoted(c)?));
    }
    // Real object addresses for --similar: hash-ptr is an option of our instance alone (not a
    // top-level flag); a kernel without it keeps hashing and the step says so. Only then: 6.1
    // prints the page events' gfp_flags empty without it (its %p -> %px rewrite of the format).
    if opts.similar && inst.dir().join("options/hash-ptr").exists() {
        inst.write("options/hash-ptr", "0")?;
    }
    let mut enabled = Vec::new();
    for ev in ALLOC_EVENTS.iter().chain(FREE_EVENTS) {
        if !inst.has_event("kmem", ev) {
            continue;
        }
        let is_alloc = ALLOC_EVENTS.contains(ev);
        let mut f: Vec<String> = if is_alloc {
            alloc_filter.clone()
        } else {
            Vec::new()
        };
        if let Some(cache) = &opts.cache {
            let has_name = inst
                .event_format("kmem", ev)
                .is_ok_and(|t| t.contains(" name;"));
            match (
                ev.starts_with("kmalloc"),
                ev.starts_with("mm_page"),
                kmalloc,
            ) {
                (_, true, _) => continue, // pages are not a slab cache
                (true, _, Some(n)) if is_alloc => f.push(format!("bytes_alloc == {n}")),
                (true, _, None) => continue,
                (false, _, Some(_)) if ev.starts_with("kmem_cache_alloc") => continue,
                _ if has_name => f.push(format!("name == {}", quoted(cache)?)),
                _ => {}
            }
        }
        if !f.is_empty() {
            let text = f.join(" && ");
            inst.write(&format!("events/kmem/{ev}/filter"), &text)
                .map_err(|e| Error::Usage(format!("event filter {text:?} refused: {e}")))?;
        }
        inst.write(&format!("events/kmem/{ev}/enable"), "1")?;
        enabled.push(ev.to_string());
    }
    if !enabled.iter().any(|e| ALLOC_EVENTS.contains(&e.as_str())) {
        return Err(Error::Unsupported {
            path: inst.dir().join("events/kmem"),
            what: "the kmem allocation tracepoints".into(),
            hint: MOUNT_HINT.into(),
        });
    }
    if opts.cache.is_some() && kmalloc.is_none() {
        rep.notes.push(
            "--cache: kfree and kmem_cache_alloc events without a name field are not filtered \
             by the kernel; frees of other caches simply pair with nothing"
                .into(),
        );
    }
    rep.events = enabled;
    inst.write("tracing_on", "1")
}

fn read(
    root: &SysRoot,
    inst: &Instance,
    opts: &Options,
    stop: &AtomicBool,
    rep: &mut TraceReport,
) -> Result<()> {
    let path = inst.dir().join("trace_pipe");
    let mut pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let max = usize::try_from(opts.max_events).unwrap_or(usize::MAX);
    let mut t = Tracker::new(max, crate::page_size());
    t.ignore_pid = Some(std::process::id());
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let mut draining = false;
    let mut first = true;
    loop {
        if !draining && (Instant::now() >= deadline || stop.load(Ordering::Relaxed)) {
            // stop producing, then read what the buffer still holds
            inst.write("tracing_on", "0")?;
            rep.interrupted = stop.load(Ordering::Relaxed);
            rep.seconds = start.elapsed().as_secs_f64();
            draining = true;
        }
        match pipe.read(&mut buf) {
            Ok(0) => {
                if draining {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(n) => {
                feed(&mut t, &mut carry, &buf[..n]);
                if first {
                    first = false;
                    fail_point("read")?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if draining {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    drop(pipe);
    rep.lost = lost_events(inst);
    let cpu = cpu_seconds() - cpu0;
    rep.counts = t.counts;
    rep.sites = t.report();
    let secs = rep.seconds.max(1e-6);
    rep.notes.push(format!(
        "traced {:.1}s{}: {} events ({:.0}/s), {} allocations, {} frees ({} paired with an \
         allocation of the window); events: {}",
        rep.seconds,
        if rep.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        t.counts.events,
        t.counts.events as f64 / secs,
        t.counts.allocs,
        t.counts.frees,
        t.counts.paired,
        rep.events.join(" ")
    ));
    rep.notes.push(format!(
        "overhead: pgtool used {:.1}% of one CPU ({cpu:.2}s) to read them; {} allocations \
         outstanding, at most {} tracked (--max-events, ~{} MiB)",
        100.0 * cpu / secs,
        t.outstanding(),
        opts.max_events,
        (opts.max_events * BYTES_PER_TRACKED) >> 20
    ));
    if t.counts.dropped > 0 {
        rep.notes.push(format!(
            "{} allocations dropped: more than --max-events {} outstanding",
            t.counts.dropped, opts.max_events
        ));
    }
    if rep.lost > 0 {
        rep.notes.push(format!(
            "the kernel lost {} events (ring buffer overrun): some frees were missed, so some \
             outstanding counts are too high; trace fewer events (--pid/--comm/--cache)",
            rep.lost
        ));
    }
    if opts.similar {
        rep.notes
            .extend(super::similar::compare(root, &t, &rep.sites));
    } else {
        rep.notes.push(
            "--similar compares the objects each top call site left outstanding with its \
             cache's biggest groups of alike objects and names the likely leaker (reads them \
             through /proc/kcore)"
                .into(),
        );
    }
    Ok(())
}

/// Split `data` (after `carry`) into lines and feed the complete ones.
fn feed(t: &mut Tracker, carry: &mut Vec<u8>, data: &[u8]) {
    let mut rest = data;
    if !carry.is_empty() {
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                carry.extend_from_slice(&rest[..i]);
                line(t, carry);
                carry.clear();
                rest = &rest[i + 1..];
            }
            None => {
                if carry.len() + rest.len() <= MAX_LINE {
                    carry.extend_from_slice(rest);
                }
                return;
            }
        }
    }
    while let Some(i) = memchr::memchr(b'\n', rest) {
        line(t, &rest[..i]);
        rest = &rest[i + 1..];
    }
    if rest.len() <= MAX_LINE {
        carry.extend_from_slice(rest);
    }
}

fn line(t: &mut Tracker, l: &[u8]) {
    match std::str::from_utf8(l).ok().and_then(parse_line) {
        Some(e) => t.add(&e),
        None => t.counts.other_lines += 1,
    }
}

/// Overruns plus dropped events over the instance's per-CPU stats.
fn lost_events(inst: &Instance) -> u64 {
    let Ok(rd) = std::fs::read_dir(inst.dir().join("per_cpu")) else {
        return 0;
    };
    let mut lost = 0;
    for d in rd.flatten() {
        if let Ok(s) = std::fs::read_to_string(d.path().join("stats")) {
            for l in s.lines() {
                if let Some(v) = l
                    .strip_prefix("overrun:")
                    .or_else(|| l.strip_prefix("dropped events:"))
                {
                    lost += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    lost
}

/// CPU time (user + system) of this process, seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmalloc_sizes() {
        assert_eq!(kmalloc_size("kmalloc-256"), Some(256));
        assert_eq!(kmalloc_size("kmalloc-cg-1k"), Some(1024));
        assert_eq!(kmalloc_size("kmalloc-rcl-96"), Some(96));
        assert_eq!(kmalloc_size("filp"), None);
        assert_eq!(kmalloc_size("kmalloc-x"), None);
    }

    #[test]
    fn lines_split_across_reads() {
        let mut t = Tracker::new(10, 4096);
        let mut carry = Vec::new();
        let l = b"p-1 [000] ..... 1.0: kmalloc: call_site=f+0x1/0x2 ptr=00000000000000a1 bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false\n";
        let (a, b) = l.split_at(40);
        feed(&mut t, &mut carry, a);
        assert_eq!(t.counts.events, 0);
        feed(&mut t, &mut carry, b);
        assert_eq!((t.counts.events, t.outstanding()), (1, 1));
        feed(&mut t, &mut carry, b"CPU:1 [LOST 3 EVENTS]\n");
        assert_eq!(t.counts.other_lines, 1);
    }

    #[test]
    fn filter_values() {
        assert_eq!(quoted("leak_msg").expect("ok"), "\"leak_msg\"");
        assert!(quoted("a\"b").is_err());
    }
}
