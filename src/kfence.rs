//! KFENCE's `/sys/kernel/debug/kfence/objects`: parse the objects (allocated and freed, with
//! their stacks) and group them by allocation stack.
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

use std::collections::HashMap;

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
        .and_then(|t| t.parse().ok());
    (pid, at)
}

/// Parse the whole objects file. Never fails: lines it does not understand are skipped.
pub fn parse(text: &str) -> Vec<Object> {
    let mut out = Vec::new();
    let mut cur: Option<Object> = None;
    let mut section = 0u8; // 1 = alloc stack, 2 = free stack
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("kfence-#") {
            if let Some(o) = cur.take() {
                out.push(o);
            }
            let mut o = Object::default();
            let (idx, rest) = rest.split_once(':').unwrap_or((rest, ""));
            o.index = idx.trim().parse().unwrap_or(0);
            for part in rest.split(',') {
                let p = part.trim();
                if let Some(s) = p.strip_prefix("size=") {
                    o.size = s.parse().unwrap_or(0);
                } else if let Some(c) = p.strip_prefix("cache=") {
                    o.cache = c.to_owned();
                }
            }
            cur = Some(o);
            section = 0;
            continue;
        }
        let Some(o) = cur.as_mut() else { continue };
        if line.starts_with("allocated by task") {
            let (p, a) = task_line(line);
            o.alloc_pid = p;
            o.alloc_at = a;
            section = 1;
        } else if line.starts_with("freed by task") {
            let (_, a) = task_line(line);
            o.freed = true;
            o.free_at = a;
            section = 2;
        } else if line.starts_with("---") {
            section = 0;
        } else if let Some(f) = line.strip_prefix(' ') {
            match section {
                1 => o.alloc_stack.push(f.trim().to_owned()),
                2 => o.free_stack.push(f.trim().to_owned()),
                _ => {}
            }
        } else if line.trim().is_empty() {
            // blank line between sections
        }
    }
    if let Some(o) = cur {
        out.push(o);
    }
    out
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
    pub caches: std::collections::BTreeMap<String, u64>,
    /// Earliest allocation (seconds since boot).
    pub oldest_at: Option<f64>,
    /// Latest allocation.
    pub newest_at: Option<f64>,
    /// How many of them are freed.
    pub freed: u64,
}

/// Group objects by allocation stack (only allocated ones unless `include_freed`), largest
/// object count first.
pub fn group_by_stack(objs: &[Object], include_freed: bool) -> Vec<StackGroup> {
    let mut idx: HashMap<&[String], usize> = HashMap::new();
    let mut groups: Vec<StackGroup> = Vec::new();
    for o in objs {
        if o.freed && !include_freed {
            continue;
        }
        let i = *idx.entry(o.alloc_stack.as_slice()).or_insert_with(|| {
            groups.push(StackGroup {
                stack: o.alloc_stack.clone(),
                ..StackGroup::default()
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
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
    groups.sort_by(|a, b| b.objects.cmp(&a.objects).then(b.bytes.cmp(&a.bytes)));
    groups
}
