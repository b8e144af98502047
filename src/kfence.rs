//! KFENCE's `/sys/kernel/debug/kfence/objects`: parse the objects (allocated and freed, with
//! their stacks), streaming and bounded, and group them by allocation stack.
//!
//! The 6.1 format, one object per entry, entries separated by a line of dashes:
//! ```text
//! kfence-#1: 0x0000000063871b1d-0x000000004c30e22e, size=192, cache=dentry
//!
//! allocated by task 75 on cpu 0 at 1.087633s:
//!  __d_alloc+0x24/0x1d0
//!  ...
//!
//! freed by task 75 on cpu 0 at 1.2s:
//!  ...
//! ---------------------------------
//! ```
//! A file whose first line is not an object header, that holds binary data, a line over
//! [`MAX_LINE`] bytes, more than [`MAX_OBJECTS`] objects or [`MAX_BYTES`] bytes, or an object
//! header without a numeric `size=`, is an error naming the file and line.

use crate::error::{Error, Result};
use crate::text_input::Lines;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

/// What a KFENCE objects file is, for error messages.
pub const EXPECTED: &str = "a KFENCE objects file (entries starting \"kfence-#N: 0x...-0x..., size=N, cache=NAME\", as in /sys/kernel/debug/kfence/objects)";
/// The longest line accepted (real lines are under 200 bytes).
pub const MAX_LINE: usize = 4096;
/// The largest file read (65,535 objects, CONFIG_KFENCE_NUM_OBJECTS' ceiling, take ~130 MiB).
pub const MAX_BYTES: u64 = 256 << 20;
/// The most objects read.
pub const MAX_OBJECTS: u64 = 1 << 17;
/// The most frames in one stack (the kernel records at most 64).
pub const MAX_FRAMES: usize = 256;

/// One KFENCE object.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Object {
    /// The slot number (`kfence-#N`).
    pub index: u64,
    /// Object size in bytes.
    pub size: u64,
    /// The slab cache (`cache=`), empty if none was printed.
    pub cache: String,
    /// Allocating task.
    pub alloc_pid: Option<u64>,
    /// Allocation time, seconds since boot.
    pub alloc_at: Option<f64>,
    /// Allocation stack (frames, leading space stripped).
    pub alloc_stack: Vec<String>,
    /// Freed (a `freed by` section is present).
    pub freed: bool,
    /// Free time, seconds since boot.
    pub free_at: Option<f64>,
    /// Free stack.
    pub free_stack: Vec<String>,
}

fn task_line(l: &str) -> (Option<u64>, Option<f64>) {
    // "allocated by task 75 on cpu 0 at 1.087633s:" (newer kernels add " (1.2s ago):")
    let pid = l
        .split_once("by task ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|p| p.parse().ok());
    let at = l
        .split_once(" at ")
        .and_then(|(_, r)| r.split(['s', ' ']).next())
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite());
    (pid, at)
}

/// Parse an object header's text after `kfence-#`, or say what is wrong with it.
fn header(rest: &str) -> std::result::Result<Object, String> {
    let mut o = Object::default();
    let (idx, rest) = rest.split_once(':').unwrap_or((rest, ""));
    o.index = idx
        .trim()
        .parse()
        .map_err(|_| format!("bad object number {}", crate::input::quote(idx)))?;
    let mut size = None;
    for part in rest.split(',') {
        let p = part.trim();
        if let Some(s) = p.strip_prefix("size=") {
            size = Some(
                s.parse::<u64>()
                    .map_err(|_| format!("bad size {}", crate::input::quote(s)))?,
            );
        } else if let Some(c) = p.strip_prefix("cache=") {
            o.cache = c.to_owned();
        }
    }
    o.size = size.ok_or("no size= in the object header")?;
    Ok(o)
}

/// Read the objects of a KFENCE objects file from `r` (named `path` in errors), streaming:
/// `each` gets every object in file order. Returns the number of objects.
pub fn read_objects<R: BufRead>(
    r: R,
    path: &Path,
    mut each: impl FnMut(Object) -> Result<()>,
) -> Result<u64> {
    let mut lines = Lines::new(r, MAX_LINE, MAX_BYTES);
    let bad = |line: u64, msg: String| Error::Parse {
        path: path.to_path_buf(),
        line: line as usize,
        msg,
    };
    let mut cur: Option<Object> = None;
    let mut section = 0u8; // 1 = alloc stack, 2 = free stack
    let mut count = 0u64;
    let mut seen_header = false;
    while let Some(line) = lines.next_line(path, EXPECTED)? {
        let n = lines.line;
        if let Some(rest) = line.strip_prefix("kfence-#") {
            if let Some(o) = cur.take() {
                each(o)?;
            }
            // The kernel prints "kfence-#N unused" for a slot never allocated: no object.
            if let Some(idx) = rest.trim_end().strip_suffix(" unused")
                && idx.trim().parse::<u64>().is_ok()
            {
                seen_header = true;
                section = 0;
                continue;
            }
            count += 1;
            if count > MAX_OBJECTS {
                return Err(bad(n, format!("more than {MAX_OBJECTS} objects")));
            }
            let o = header(rest).map_err(|m| bad(n, m))?;
            seen_header = true;
            cur = Some(o);
            section = 0;
            continue;
        }
        if !seen_header {
            if line.trim().is_empty() {
                continue;
            }
            return Err(bad(
                n,
                format!(
                    "not {EXPECTED}: it starts with {}",
                    crate::input::quote(&line)
                ),
            ));
        }
        let Some(o) = cur.as_mut() else { continue };
        if line.starts_with("allocated by task") {
            let (p, a) = task_line(&line);
            o.alloc_pid = p;
            o.alloc_at = a;
            section = 1;
        } else if line.starts_with("freed by task") {
            let (_, a) = task_line(&line);
            o.freed = true;
            o.free_at = a;
            section = 2;
        } else if line.starts_with("---") {
            section = 0;
        } else if let Some(f) = line.strip_prefix(' ') {
            let stack = match section {
                1 => &mut o.alloc_stack,
                2 => &mut o.free_stack,
                _ => continue,
            };
            if stack.len() >= MAX_FRAMES {
                return Err(bad(
                    n,
                    format!("more than {MAX_FRAMES} frames in one stack"),
                ));
            }
            stack.push(f.trim().to_owned());
        }
    }
    if let Some(o) = cur {
        each(o)?;
    }
    Ok(count)
}

/// Parse a whole objects file held in memory (see [`read_objects`]).
pub fn parse(text: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    read_objects(text.as_bytes(), Path::new("<text>"), |o| {
        out.push(o);
        Ok(())
    })?;
    Ok(out)
}

/// Objects sharing one allocation stack.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StackGroup {
    /// The allocation stack.
    pub stack: Vec<String>,
    /// Objects.
    pub objects: u64,
    /// Bytes (sum of sizes).
    pub bytes: u64,
    /// Objects per cache.
    pub caches: BTreeMap<String, u64>,
    /// Earliest allocation (seconds since boot).
    pub oldest_at: Option<f64>,
    /// Latest allocation.
    pub newest_at: Option<f64>,
    /// How many of them are freed.
    pub freed: u64,
}

/// Groups objects by allocation stack as they are read.
#[derive(Debug, Default)]
pub struct Grouper {
    idx: HashMap<Vec<String>, usize>,
    groups: Vec<StackGroup>,
    include_freed: bool,
    /// Objects seen.
    pub objects: u64,
    /// Of them, freed.
    pub freed: u64,
}

impl Grouper {
    /// A grouper of allocated objects, or of every object with `include_freed`.
    pub fn new(include_freed: bool) -> Grouper {
        Grouper {
            include_freed,
            ..Grouper::default()
        }
    }

    /// Count one object.
    pub fn add(&mut self, o: &Object) {
        self.objects += 1;
        if o.freed {
            self.freed += 1;
            if !self.include_freed {
                return;
            }
        }
        let i = match self.idx.get(&o.alloc_stack) {
            Some(&i) => i,
            None => {
                self.groups.push(StackGroup {
                    stack: o.alloc_stack.clone(),
                    ..StackGroup::default()
                });
                self.idx
                    .insert(o.alloc_stack.clone(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        g.objects += 1;
        g.bytes = g.bytes.saturating_add(o.size);
        if o.freed {
            g.freed += 1;
        }
        *g.caches.entry(o.cache.clone()).or_default() += 1;
        if let Some(a) = o.alloc_at {
            g.oldest_at = Some(g.oldest_at.map_or(a, |m| m.min(a)));
            g.newest_at = Some(g.newest_at.map_or(a, |m| m.max(a)));
        }
    }

    /// The groups, most objects first (then most bytes).
    pub fn finish(self) -> Vec<StackGroup> {
        let mut groups = self.groups;
        groups.sort_by(|a, b| b.objects.cmp(&a.objects).then(b.bytes.cmp(&a.bytes)));
        groups
    }
}

/// Group objects by allocation stack (only allocated ones unless `include_freed`), largest
/// object count first.
pub fn group_by_stack(objs: &[Object], include_freed: bool) -> Vec<StackGroup> {
    let mut g = Grouper::new(include_freed);
    for o in objs {
        g.add(o);
    }
    g.finish()
}

/// One line of the `pgtool kfence` listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KfenceGroup {
    /// Position (1 = most objects).
    pub rank: u64,
    /// Objects with this allocation stack.
    pub objects: u64,
    /// Their sizes, summed.
    pub size_bytes: u64,
    /// Of them, freed (only with freed objects included).
    pub freed: u64,
    /// Objects per cache, `cache:objects`, most first.
    pub caches: Vec<String>,
    /// Earliest allocation, seconds since boot.
    pub oldest_at_s: Option<f64>,
    /// Latest allocation, seconds since boot.
    pub newest_at_s: Option<f64>,
    /// Age of the oldest object now (live file only).
    pub max_age_s: Option<f64>,
    /// The allocation stack.
    pub stack: Vec<String>,
}

impl crate::output::Record for KfenceGroup {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "rank",
        "objects",
        "size_bytes",
        "freed",
        "caches",
        "oldest_at_s",
        "max_age_s",
        "stack",
    ];
}

/// The `top` first groups (0: all) as listing records; `uptime` (seconds since boot, for the
/// live file) gives their ages.
pub fn records(groups: &[StackGroup], top: usize, uptime: Option<f64>) -> Vec<KfenceGroup> {
    let n = if top == 0 {
        groups.len()
    } else {
        top.min(groups.len())
    };
    groups[..n]
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut caches: Vec<(&String, &u64)> = g.caches.iter().collect();
            caches.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            KfenceGroup {
                rank: i as u64 + 1,
                objects: g.objects,
                size_bytes: g.bytes,
                freed: g.freed,
                caches: caches.iter().map(|(c, n)| format!("{c}:{n}")).collect(),
                oldest_at_s: g.oldest_at,
                newest_at_s: g.newest_at,
                max_age_s: uptime
                    .zip(g.oldest_at)
                    .map(|(u, o)| ((u - o) * 1000.0).round() / 1000.0),
                stack: g.stack.clone(),
            }
        })
        .collect()
}
