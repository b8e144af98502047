//! One line of a tracefs `trace_pipe` in the default text format, for the kmem events:
//!
//! ```text
//!             bash-29525   [000] .....  1412.471447: kmalloc: call_site=eventfs_set_attr+0x10d/0x140 ptr=0000000043ad0f35 bytes_req=60 bytes_alloc=64 gfp_flags=GFP_NOFS|__GFP_ZERO node=-1 accounted=false
//! ```
//!
//! `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: key=value ...`. The task's comm may hold spaces and
//! dashes, so the PID is the digits before the first `[CPU]`; `call_site` is `%pS`
//! (`symbol+off/size`, a ` [module]` after it for modules); `ptr` is `%p` (hashed unless the
//! hash-ptr option is off: the same pointer hashes the same, which is all pairing needs).

/// An event's fields, borrowed from the line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event<'a> {
    /// The task's comm.
    pub comm: &'a str,
    /// The task's PID.
    pub pid: u32,
    /// Seconds (trace clock).
    pub ts: f64,
    /// The event's name (`kmalloc`, `kfree`...).
    pub name: &'a str,
    /// `key=value` pairs in order.
    pub fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Event<'a> {
    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    /// A field as a number (decimal, or hex with `0x`, or bare hex for `ptr`/`page`).
    pub fn num(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        if let Some(h) = v.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else if key == "ptr" || key == "page" {
            u64::from_str_radix(v, 16).ok()
        } else {
            v.parse().ok()
        }
    }
}

/// Parse one line; `None` for what is not an event line (`CPU:3 [LOST 12 EVENTS]`, blank).
pub fn parse_line(line: &str) -> Option<Event<'_>> {
    let (task, rest) = split_cpu(line)?;
    let (comm, pid) = task.trim_start().rsplit_once('-')?;
    let pid: u32 = pid.trim_end().parse().ok()?;
    // FLAGS (irq-info) may be absent; the timestamp is the first token ending with ':'
    let mut it = rest.split_ascii_whitespace();
    let ts = loop {
        let tok = it.next()?;
        if let Some(t) = tok.strip_suffix(':') {
            break t.parse::<f64>().ok()?;
        }
    };
    let name = it.next()?.strip_suffix(':')?;
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(8);
    // `it` is a token iterator; values never hold spaces except " [module]" after a symbol,
    // which is dropped (the symbol+off/size names the site well enough within one boot)
    for tok in it {
        if let Some((k, v)) = tok.split_once('=') {
            fields.push((k, v));
        }
    }
    Some(Event {
        comm,
        pid,
        ts,
        name,
        fields,
    })
}

/// Split at the first ` [DIGITS] ` (the CPU field): the task before, the rest after.
fn split_cpu(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let mut from = 0;
    while let Some(i) = line[from..].find('[').map(|i| i + from) {
        let mut j = i + 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > i + 1 && j < b.len() && b[j] == b']' && i > 0 && b[i - 1] == b' ' {
            return Some((&line[..i], &line[j + 1..]));
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmalloc_line() {
        let l = "            bash-29525   [000] .....  1412.471447: kmalloc: call_site=eventfs_set_attr+0x10d/0x140 ptr=0000000043ad0f35 bytes_req=60 bytes_alloc=64 gfp_flags=GFP_NOFS|__GFP_ZERO node=-1 accounted=false";
        let e = parse_line(l).expect("event");
        assert_eq!((e.comm, e.pid, e.name), ("bash", 29525, "kmalloc"));
        assert!((e.ts - 1412.471447).abs() < 1e-9);
        assert_eq!(e.get("call_site"), Some("eventfs_set_attr+0x10d/0x140"));
        assert_eq!(e.num("ptr"), Some(0x43ad0f35));
        assert_eq!(e.num("bytes_alloc"), Some(64));
        assert_eq!(e.get("accounted"), Some("false"));
    }

    #[test]
    fn odd_comms_modules_and_no_flags() {
        let l = "  my-prog [x] 2-77     [003] 99.5: kfree: call_site=xfs_foo+0x1/0x2 [xfs] ptr=ffff888001234000";
        let e = parse_line(l).expect("event");
        assert_eq!((e.comm, e.pid, e.name), ("my-prog [x] 2", 77, "kfree"));
        assert_eq!(e.get("call_site"), Some("xfs_foo+0x1/0x2"));
        assert_eq!(e.num("ptr"), Some(0xffff_8880_0123_4000));
        let p = "<idle>-0 [001] d.h1. 5.000001: mm_page_free: page=00000000c0ffee00 pfn=0x1693be order=0";
        let e = parse_line(p).expect("page event");
        assert_eq!((e.comm, e.pid), ("<idle>", 0));
        assert_eq!(e.num("pfn"), Some(0x1693be));
        assert_eq!(e.num("order"), Some(0));
    }

    #[test]
    fn not_events() {
        for l in [
            "",
            "CPU:3 [LOST 12 EVENTS]",
            "garbage",
            "a-1 [00] x",
            "a-b [000] 1.0: kfree: x",
        ] {
            assert_eq!(parse_line(l), None, "{l:?}");
        }
    }
}
