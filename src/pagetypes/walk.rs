//! After option parsing: open the per-PFN files, print the listing header, walk (PFN ranges,
//! a process or files), print the summary and write the metrics.

use super::config::{Config, Format, Invocation, Mode, Out, Stop, os};
use super::pipe::{Pipe, Progress};
use super::read::{Sides, Src, checked_open};
use super::{file, metrics, pfn, task, task_chunks, threaded};
use crate::addr::page_size;
use crate::iomem::Iomem;
use std::io::Write;
use std::path::Path;

/// Open the side files, print the header, walk, print the summary.
pub(crate) fn main<'a>(
    inv: &Invocation,
    mut c: Config,
    out: Out<'a>,
    err: &'a mut dyn Write,
) -> Result<(), Stop> {
    let root = &inv.root;
    let (flags_path, flags_name) = match &c.kpageflags {
        Some(f) => (os(f), String::from_utf8_lossy(f).into_owned()),
        None => (root.kpageflags(), root.kpageflags().display().to_string()),
    };
    let cgroup = if c.pipe.cgroup != 0 || c.pipe.list_cgroup {
        let p = root.kpagecgroup();
        Some(checked_open(&p, &p.display().to_string())?)
    } else {
        None
    };
    let count = if c.pipe.list != 0 && c.pipe.list_mapcnt {
        let p = root.kpagecount();
        Some(checked_open(&p, &p.display().to_string())?)
    } else {
        None
    };
    if c.mark_idle {
        c.actions.open_idle(&root.page_idle_bitmap())?;
    }
    let mut opts = c.pipe.clone();
    opts.show_pid = c.pid != 0;
    opts.show_file = c.file.is_some();
    let actions = std::mem::take(&mut c.actions);
    let mut pipe = Pipe::new(opts, actions, out, err);
    if pipe.o.list != 0 && pipe.o.format == Format::Classic {
        pipe.put(header(&c).as_bytes())?;
    }
    let flags_file = checked_open(&flags_path, &flags_name)?;
    let sides = Sides {
        flags: Src {
            file: flags_file,
            name: flags_name.clone(),
        },
        cgroup: cgroup.map(|file| Src {
            file,
            name: flags_name.clone(),
        }),
        count: count.map(|file| Src {
            file,
            name: root.kpagecount().display().to_string(),
        }),
        flags_name,
    };
    let mut file_st = None;
    if let Some(f) = c.file.clone() {
        file_st = Some(file::walk_page_cache(inv, &mut c, &sides, &mut pipe, &f)?);
    } else {
        walk_addr_ranges(inv, &mut c, &sides, &flags_path, &mut pipe)?;
    }
    if pipe.o.list == 1 {
        pipe.flush_range()?;
    }
    let nothing = inv.mode == Mode::Pgtool && pipe.table.total == 0;
    // JSON/CSV with a listing print only the listing
    let listing_only = pipe.o.format != Format::Classic && pipe.o.list != 0;
    if !c.no_summary && !listing_only {
        if pipe.o.list != 0 {
            pipe.put(b"\n\n")?;
        }
        if let (Some(st), Some(f)) = (file_st, c.file.as_ref())
            && pipe.o.format == Format::Classic
        {
            let info = file::show_file(f, &st);
            pipe.put(&info)?;
            pipe.put(b"\n")?;
        }
        let ps = page_size();
        pipe.summary(ps)?;
        if let Some(p) = &inv.prometheus {
            metrics::write(p, &pipe.table, ps).map_err(Stop::Error)?;
        }
    }
    pipe.finish()?;
    if nothing {
        return Err(Stop::Error(crate::Error::NotFound(
            "types: no page was selected (check -a/-b/-c, the process of -p or the file of -f)"
                .into(),
        )));
    }
    Ok(())
}

/// The listing's header line.
fn header(c: &Config) -> String {
    let o = &c.pipe;
    let mut h = String::new();
    if c.pid != 0 {
        h.push_str("voffset\t");
    }
    if c.file.is_some() {
        h.push_str("foffset\t");
    }
    if o.list_cgroup {
        h.push_str("cgroup\t");
    }
    if o.list_mapcnt {
        h.push_str("map-cnt\t");
    }
    h.push_str(if o.list == 1 {
        "offset\tlen\tflags\n"
    } else {
        "offset\tflags\n"
    });
    h
}

fn walk_addr_ranges(
    inv: &Invocation,
    c: &mut Config,
    sides: &Sides,
    flags_path: &Path,
    pipe: &mut Pipe<'_>,
) -> Result<(), Stop> {
    if c.ranges.is_empty() {
        c.ranges.push((0, u64::MAX));
    }
    let ram = if c.pid == 0 && c.kpageflags.is_none() && skippable(pipe) {
        Iomem::read(&inv.root)
            .ok()
            .filter(|io| !io.addresses_hidden())
            .map(|io| {
                io.system_ram_pfns()
                    .into_iter()
                    .map(|r| (r.start.0, r.end.0))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
    } else {
        None
    };
    let ranges = c.ranges.clone();
    if inv.progress && c.pid == 0 && pipe.o.list == 0 {
        let total = Iomem::read(&inv.root)
            .ok()
            .and_then(|io| io.system_ram_pfns().last().map(|r| r.end.0))
            .unwrap_or(0);
        pipe.progress = Some(Progress::new(total));
    }
    for (off, size) in ranges {
        if c.pid == 0 {
            let end = off.wrapping_add(size);
            match &ram {
                None => {
                    walk_pfn(inv, sides, flags_path, pipe, off, off, end)?;
                }
                Some(ram) => {
                    for &(rs, re) in ram {
                        let (s, e) = (rs.max(off), re.min(end));
                        if s < e && !walk_pfn(inv, sides, flags_path, pipe, off, s, e)? {
                            break;
                        }
                    }
                }
            }
        } else {
            if task_chunks::fits(pipe) {
                task_chunks::walk(inv.threads, c, sides, pipe, off, size)?;
            } else {
                task::walk(inv.threads, c, sides, pipe, off, size)?;
            }
        }
    }
    pipe.end_progress();
    pipe.flush_idle();
    Ok(())
}

/// True when pages outside System RAM can be left unread: page-types would reject them all.
/// Such PFNs read as 0, reserved and/or nopage (no struct page, or one the kernel never
/// hands out); if the filters reject each of those, skipping them changes nothing.
fn skippable(pipe: &Pipe<'_>) -> bool {
    if pipe.o.cgroup != 0 {
        return true;
    }
    if pipe.o.filters.is_empty() {
        return false;
    }
    let (res, nopage) = (1u64 << 32, 1u64 << 20);
    [0, res, nopage, res | nopage]
        .iter()
        .all(|&v| !pipe.o.bits_ok(pipe.o.transform(v, 0)))
}

/// Walk PFNs `from..to` of the range that starts at `origin`, in threads for a summary of a
/// large range, else in one pass. False at the end of the file.
fn walk_pfn(
    inv: &Invocation,
    sides: &Sides,
    flags_path: &Path,
    pipe: &mut Pipe<'_>,
    origin: u64,
    from: u64,
    to: u64,
) -> Result<bool, Stop> {
    let parallel = inv.threads > 1
        && pipe.o.list == 0
        && !pipe.actions.any()
        && sides.count.is_none()
        && to.saturating_sub(from) > 2 * pfn::CHUNK
        && from < (1 << 58);
    if parallel {
        threaded::walk(inv, sides, flags_path, pipe, origin, from, to)
    } else {
        pfn::walk(sides, pipe, origin, from, to)
    }
}
