//! `pgtool kfence`: KFENCE objects grouped by allocation stack.

use crate::Global;
use crate::output::{Format, FormatArgs, stdout_error, table, write_json_line};
use pgtool::Error;
use std::io::Write;
use std::path::PathBuf;

/// Group the objects of /sys/kernel/debug/kfence/objects by allocation stack.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A saved objects file (default: <debugfs>/kfence/objects).
    pub file: Option<PathBuf>,
    /// Include freed objects (default: allocated ones only).
    #[arg(long)]
    pub freed: bool,
    /// Show the N largest groups (0: all).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool kfence`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| root.debugfs().join("kfence/objects"));
    let bytes = std::fs::read(&path).map_err(|e| {
        let hint = args.file.is_none().then(|| {
            "needs CONFIG_KFENCE, debugfs mounted and root; kfence.sample_interval=N (ms) > 0 at boot".to_owned()
        });
        Error::Io { path: path.clone(), source: e, hint }
    })?;
    let objs = pgtool::kfence::parse(&String::from_utf8_lossy(&bytes));
    let groups = pgtool::kfence::group_by_stack(&objs, args.freed);
    let uptime: Option<f64> = if args.file.is_none() && root.is_live() {
        std::fs::read_to_string(root.proc().join("uptime"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
    } else {
        None
    };
    let shown = if args.top == 0 {
        groups.len()
    } else {
        args.top.min(groups.len())
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let caches = |g: &pgtool::kfence::StackGroup| -> String {
        g.caches
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match args.format.format() {
        Format::Json => {
            for g in &groups[..shown] {
                let mut v =
                    serde_json::to_value(g).map_err(|e| stdout_error(std::io::Error::other(e)))?;
                if let (Some(u), Some(o)) = (uptime, g.oldest_at) {
                    v["max_age_s"] = serde_json::json!(u - o);
                }
                write_json_line(&mut out, &v)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let e = |e: csv::Error| stdout_error(std::io::Error::other(e));
            w.write_record([
                "objects",
                "bytes",
                "freed",
                "caches",
                "oldest_at_s",
                "newest_at_s",
                "stack",
            ])
            .map_err(e)?;
            for g in &groups[..shown] {
                w.write_record([
                    g.objects.to_string(),
                    g.bytes.to_string(),
                    g.freed.to_string(),
                    caches(g),
                    g.oldest_at.map_or(String::new(), |x| x.to_string()),
                    g.newest_at.map_or(String::new(), |x| x.to_string()),
                    g.stack.join(";"),
                ])
                .map_err(e)?;
            }
            w.flush().map_err(stdout_error)?;
        }
        Format::Table => {
            let alive = objs.iter().filter(|o| !o.freed).count();
            writeln!(
                out,
                "{}: {} objects ({alive} allocated, {} freed), {} stacks{}",
                path.display(),
                objs.len(),
                objs.len() - alive,
                groups.len(),
                if args.freed {
                    ""
                } else {
                    " (allocated objects; --freed adds freed ones)"
                }
            )
            .map_err(stdout_error)?;
            let mut t = table();
            t.set_header(vec![
                "objects",
                "bytes",
                "caches",
                if uptime.is_some() {
                    "age s (max-min)"
                } else {
                    "allocated at s"
                },
                "allocation stack",
            ]);
            for g in &groups[..shown] {
                let age = match (g.oldest_at, g.newest_at, uptime) {
                    (Some(o), Some(n), Some(u)) => format!("{:.1}-{:.1}", u - o, u - n),
                    (Some(o), Some(n), None) => format!("{o:.3}-{n:.3}"),
                    _ => "?".to_owned(),
                };
                t.add_row(vec![
                    g.objects.to_string(),
                    g.bytes.to_string(),
                    caches(g),
                    age,
                    g.stack.join("\n"),
                ]);
            }
            writeln!(out, "{t}").map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(0)
}
