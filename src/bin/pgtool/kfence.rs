//! `pgtool kfence`: KFENCE objects grouped by allocation stack.

use crate::Global;
use crate::output::FormatArgs;
use crate::page_owner::{cut, write_stack};
use pgtool::Error;
use pgtool::kfence::{Grouper, read_objects, records};
use pgtool::output::Sink;
use pgtool::text_input;
use std::path::PathBuf;

/// Group the objects of /sys/kernel/debug/kfence/objects by allocation stack.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Input: the live <debugfs>/kfence/objects (CONFIG_KFENCE, debugfs, root), a saved copy, or - for
stdin. A file that is not a KFENCE objects file (binary data, a line over 4 KiB, a first line that
is not a kfence-# header, a header without a numeric size=) is refused; directories and devices
are refused before reading.

Fields (JSON/CSV): rank, objects, size_bytes, freed, caches (cache:objects), oldest_at_s,
newest_at_s (seconds since boot), max_age_s (live file only), stack (frames). The table shows
the full stacks below it.

Exit status: 0 listed; 1 no objects (or only freed ones without --freed); 2 usage error,
unreadable input or not a KFENCE objects file.")]
pub struct Args {
    /// A saved objects file, or - for stdin (default: <debugfs>/kfence/objects).
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
    let live = args.file.is_none();
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| root.debugfs().join("kfence/objects"));
    let input = text_input::open(&path, "a KFENCE objects file").map_err(|e| match e {
        Error::Io { path, source, .. } if live => Error::Io {
            path,
            source,
            hint: Some(
                "needs CONFIG_KFENCE, debugfs mounted and root; kfence.sample_interval=N (ms) > 0 at boot"
                    .to_owned(),
            ),
        },
        other => other,
    })?;
    let shown = if path.as_os_str() == "-" {
        PathBuf::from("<stdin>")
    } else {
        path.clone()
    };
    let mut grouper = Grouper::new(args.freed);
    read_objects(input, &shown, |o| {
        grouper.add(&o);
        Ok(())
    })?;
    let (total, freed) = (grouper.objects, grouper.freed);
    let groups = grouper.finish();
    if groups.is_empty() {
        return Err(Error::NotFound(if total == 0 {
            format!("{}: no KFENCE objects", shown.display())
        } else {
            format!(
                "{}: no allocated objects ({freed} freed ones: --freed lists them)",
                shown.display()
            )
        }));
    }
    let uptime: Option<f64> = if live && root.is_live() {
        std::fs::read_to_string(root.proc().join("uptime"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
    } else {
        None
    };
    let recs = records(&groups, args.top, uptime);
    let mut sink = Sink::stdout(args.format.format());
    let head = format!(
        "{}: {total} objects ({} allocated, {freed} freed), {} stacks{}",
        shown.display(),
        total - freed,
        groups.len(),
        if args.freed {
            ""
        } else {
            " (allocated objects; --freed adds freed ones)"
        }
    );
    sink.text(&cut(&head, 100))?;
    for r in &recs {
        sink.write(r)?;
    }
    for r in &recs {
        let title = format!(
            "#{} ({} objects, {}):",
            r.rank,
            r.objects,
            r.caches.join(" ")
        );
        let frames: Vec<&str> = r.stack.iter().map(String::as_str).collect();
        write_stack(&mut sink, &title, &frames)?;
    }
    sink.finish()?;
    Ok(0)
}
