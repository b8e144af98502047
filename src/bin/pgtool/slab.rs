//! `pgtool slab`: sample slab caches, sort by size or growth, flag leak suspects.

use crate::Global;
use crate::output::{Format, FormatArgs, stdout_error, table, write_json_line};
use pgtool::Error;
use pgtool::slab::{Source, Trend, alloc_calls, sample, trends};
use std::io::Write;

/// Sample /proc/slabinfo (or /sys/kernel/slab) and list caches by size and growth.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,
    /// Number of samples (leak suspects need at least 2: active objects grow in every one).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub count: usize,
    /// Order: size (bytes held), growth (active objects, last minus first), objects.
    #[arg(long, default_value = "size", value_parser = ["size", "growth", "objects"])]
    pub sort: String,
    /// Show the N first caches (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Only the leak suspects.
    #[arg(long)]
    pub suspects: bool,
    /// Read /sys/kernel/slab even when /proc/slabinfo is readable.
    #[arg(long)]
    pub sysfs: bool,
    /// Show the top alloc_calls of this cache (needs slub_debug=U at boot).
    #[arg(long, value_name = "CACHE")]
    pub alloc_calls: Option<String>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool slab`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(cache) = &args.alloc_calls {
        let calls = alloc_calls(&root, cache)?;
        match args.format.format() {
            Format::Json => {
                for c in calls
                    .iter()
                    .take(if args.top == 0 { usize::MAX } else { args.top })
                {
                    write_json_line(&mut out, c)?;
                }
            }
            _ => {
                let mut t = table();
                t.set_header(vec!["count", "site", "detail"]);
                for c in calls
                    .iter()
                    .take(if args.top == 0 { usize::MAX } else { args.top })
                {
                    t.add_row(vec![c.count.to_string(), c.site.clone(), c.detail.clone()]);
                }
                writeln!(out, "{t}").map_err(stdout_error)?;
            }
        }
        return Ok(0);
    }
    let interval = std::time::Duration::try_from_secs_f64(args.interval)
        .map_err(|_| Error::Usage("--interval must be a non-negative number of seconds".into()))?;
    let count = args.count.max(1);
    let mut samples = Vec::with_capacity(count);
    let mut source = Source::Slabinfo;
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let (s, caches) = sample(&root, args.sysfs.then_some(Source::Sysfs))?;
        source = s;
        samples.push(caches);
    }
    let ps = pgtool::page_size();
    let mut tr: Vec<Trend> = trends(&samples);
    match args.sort.as_str() {
        "growth" => tr.sort_by_key(|t| std::cmp::Reverse(t.growth)),
        "objects" => tr.sort_by_key(|t| std::cmp::Reverse(t.last.active_objs)),
        _ => tr.sort_by_key(|t| std::cmp::Reverse(t.last.bytes(ps))),
    }
    if args.suspects {
        tr.retain(|t| t.suspect);
    }
    let suspects: Vec<&str> = tr
        .iter()
        .filter(|t| t.suspect)
        .map(|t| t.last.name.as_str())
        .collect();
    let shown = if args.top == 0 {
        tr.len()
    } else {
        args.top.min(tr.len())
    };
    match args.format.format() {
        Format::Json => {
            for t in &tr[..shown] {
                let v = serde_json::json!({
                    "name": t.last.name, "objsize": t.last.objsize,
                    "active_objs": t.last.active_objs, "num_objs": t.last.num_objs,
                    "bytes": t.last.bytes(ps), "growth": t.growth, "active_samples": t.active,
                    "suspect": t.suspect, "source": source,
                });
                write_json_line(&mut out, &v)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let e = |e: csv::Error| stdout_error(std::io::Error::other(e));
            w.write_record([
                "name",
                "objsize",
                "active_objs",
                "num_objs",
                "bytes",
                "growth",
                "suspect",
            ])
            .map_err(e)?;
            for t in &tr[..shown] {
                w.write_record([
                    t.last.name.clone(),
                    t.last.objsize.to_string(),
                    t.last.active_objs.to_string(),
                    t.last.num_objs.to_string(),
                    t.last.bytes(ps).to_string(),
                    t.growth.to_string(),
                    t.suspect.to_string(),
                ])
                .map_err(e)?;
            }
            w.flush().map_err(stdout_error)?;
        }
        Format::Table => {
            let mut t = table();
            t.set_header(vec![
                "cache", "objsize", "active", "total", "KiB", "growth", "suspect",
            ]);
            for x in &tr[..shown] {
                t.add_row(vec![
                    x.last.name.clone(),
                    x.last.objsize.to_string(),
                    x.last.active_objs.to_string(),
                    x.last.num_objs.to_string(),
                    (x.last.bytes(ps) / 1024).to_string(),
                    format!("{:+}", x.growth),
                    if x.suspect {
                        "LEAK?".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            writeln!(out, "{t}").map_err(stdout_error)?;
            let src = match source {
                Source::Slabinfo => "/proc/slabinfo",
                Source::Sysfs => "/sys/kernel/slab",
            };
            writeln!(
                out,
                "{count} samples {}s apart from {src}; leak suspects (active objects grew in every sample): {}",
                args.interval,
                if suspects.is_empty() { "none".to_owned() } else { suspects.join(", ") }
            ).map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(0)
}
