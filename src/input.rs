//! The one input grammar: every subcommand parses PIDs, addresses, address ranges, PFNs, PFN
//! ranges, durations and sizes here, so the same token means the same thing everywhere and the
//! same mistake gets the same message.
//!
//! | what | forms |
//! |---|---|
//! | number, address, PFN | `0x` hex (`0x7ffc1000`) or decimal (`4096`); never bare hex |
//! | PID | a positive number, or `self` (pgtool itself; live system only) |
//! | address range | `ADDR`, `ADDR+LEN`, `START-END` (END exclusive); LEN may be a size (`8K`) |
//! | PFN range | `PFN`, `A+N` (N pages), `A-B` (B inclusive); `-` reads them from stdin |
//! | duration | `250ms`, `2s`, `1.5s`, `1m`, `1h`; a bare number is seconds |
//! | size | bytes, or with `K`/`M`/`G`/`T` (binary: 1K = 1024), optional `B`/`iB` |
//!
//! Errors are [`Error::Usage`] and quote at most [`TOKEN_ECHO`] bytes of the bad token.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::io::BufRead;
use std::ops::Range;
use std::time::Duration;

/// The most bytes of a bad token an error message repeats.
pub const TOKEN_ECHO: usize = 80;

/// The most PFNs one command takes (ranges included): 2^24 = 64 GiB of 4 KiB pages.
pub const MAX_PFNS: u64 = 1 << 24;

/// The longest line read from stdin for a PFN list.
const MAX_STDIN_LINE: usize = 4096;

/// `s` quoted for an error message, cut to [`TOKEN_ECHO`] bytes (on a char boundary).
pub fn quote(s: &str) -> String {
    if s.len() <= TOKEN_ECHO {
        return format!("{s:?}");
    }
    let mut end = TOKEN_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

fn usage(what: &str, s: &str, expected: &str) -> Error {
    Error::Usage(format!("bad {what} {}: expected {expected}", quote(s)))
}

const NUMBER_FORMS: &str = "hex with 0x (0x7ffc1000) or decimal (4096)";

/// A number: `0x` hex or decimal, surrounding whitespace ignored, `None` on anything else.
pub fn number(s: &str) -> Option<u64> {
    crate::addr::parse_number(s)
}

/// A thread count (`--threads`): 1 to 1024.
pub fn parse_thread_count(s: &str) -> Result<usize> {
    match parse_number_for(s, "thread count")? {
        n @ 1..=1024 => Ok(n as usize),
        _ => Err(Error::Usage(format!(
            "bad thread count {}: give 1 to 1024",
            quote(s)
        ))),
    }
}

/// A number for `what` (e.g. "address", "PFN"), with the grammar's message when it is not one.
pub fn parse_number_for(s: &str, what: &str) -> Result<u64> {
    number(s).ok_or_else(|| {
        if size(s).is_some() {
            usage(
                what,
                s,
                &format!("{NUMBER_FORMS}; sizes such as 8K are for lengths"),
            )
        } else {
            usage(what, s, NUMBER_FORMS)
        }
    })
}

/// A PID: a positive number, or `self` (this process, on the live system only).
pub fn parse_pid(s: &str, root: &SysRoot) -> Result<u32> {
    if s.trim() == "self" {
        if !root.is_live() {
            return Err(Error::Usage(
                "`self` names the live pgtool process; with --root give a PID saved in the snapshot"
                    .into(),
            ));
        }
        return Ok(std::process::id());
    }
    match number(s).map(u32::try_from) {
        Some(Ok(p)) if p > 0 => Ok(p),
        _ => Err(usage("PID", s, "a positive number or `self`")),
    }
}

/// A virtual address range: `ADDR` (one byte), `ADDR+LEN`, `START-END` (END exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// True when a single address was given (not a range).
    pub single: bool,
}

const RANGE_FORMS: &str = "ADDR, ADDR+LEN or START-END (END exclusive), each 0x hex or decimal";

/// Parse an address range.
///
/// ```
/// use pgtool::input::parse_addr_range;
/// let r = parse_addr_range("0x1000+8K")?;
/// assert_eq!((r.start, r.end, r.single), (0x1000, 0x3000, false));
/// assert_eq!(parse_addr_range("4096")?.end, 4097);
/// assert!(parse_addr_range("0x2000-0x1000").is_err());
/// # Ok::<(), pgtool::Error>(())
/// ```
pub fn parse_addr_range(s: &str) -> Result<AddrRange> {
    let t = s.trim();
    let bad = || usage("address", s, RANGE_FORMS);
    if let Some((a, l)) = t.split_once('+') {
        let start = number(a).ok_or_else(bad)?;
        let len = length(l).ok_or_else(bad)?;
        if len == 0 {
            return Err(Error::Usage(format!("bad range {}: length is 0", quote(s))));
        }
        let end = start.checked_add(len).ok_or_else(|| {
            Error::Usage(format!(
                "bad range {}: runs past the end of the address space",
                quote(s)
            ))
        })?;
        return Ok(AddrRange {
            start,
            end,
            single: false,
        });
    }
    if let Some((a, b)) = t.split_once('-') {
        let start = number(a).ok_or_else(bad)?;
        let end = number(b).ok_or_else(bad)?;
        if end <= start {
            return Err(Error::Usage(format!(
                "bad range {}: end {end:#x} is not above start {start:#x} (END is exclusive)",
                quote(s)
            )));
        }
        return Ok(AddrRange {
            start,
            end,
            single: false,
        });
    }
    let start = number(t).ok_or_else(bad)?;
    Ok(AddrRange {
        start,
        end: start.saturating_add(1),
        single: true,
    })
}

/// A length after `+`: a number or a size (`8K`).
fn length(s: &str) -> Option<u64> {
    number(s).or_else(|| size(s))
}

const PFN_FORMS: &str = "a PFN (0x hex or decimal), A+N or A-B (B inclusive), or - for stdin";

/// One PFN range: `PFN`, `A+N` (N pages) or `A-B` (B inclusive), as a half-open range.
pub fn parse_pfn_range(s: &str) -> Result<Range<u64>> {
    let t = s.trim();
    let bad = || usage("PFN", s, PFN_FORMS);
    let r = if let Some((a, n)) = t.split_once('+') {
        let a = number(a).ok_or_else(bad)?;
        let n = number(n).ok_or_else(bad)?;
        if n == 0 {
            return Err(Error::Usage(format!(
                "bad PFN range {}: it is empty",
                quote(s)
            )));
        }
        a..a.checked_add(n).ok_or_else(bad)?
    } else if let Some((a, b)) = t.split_once('-') {
        let a = number(a).ok_or_else(bad)?;
        let b = number(b).ok_or_else(bad)?;
        if b < a {
            return Err(Error::Usage(format!(
                "bad PFN range {}: end {b:#x} is below start {a:#x}",
                quote(s)
            )));
        }
        a..b.checked_add(1).ok_or_else(bad)?
    } else {
        let a = number(t).ok_or_else(bad)?;
        a..a + u64::from(a < u64::MAX)
    };
    if r.is_empty() {
        return Err(bad());
    }
    Ok(r)
}

/// PFN arguments (each a PFN range, or `-` for whitespace-separated ranges on `stdin`), as
/// sorted, merged half-open ranges holding at most [`MAX_PFNS`] PFNs in all.
pub fn parse_pfn_args(args: &[String], stdin: &mut dyn BufRead) -> Result<Vec<Range<u64>>> {
    let mut ranges = Vec::new();
    let mut total = 0u64;
    let mut add = |r: Range<u64>, tok: &str| -> Result<()> {
        total = total.saturating_add(r.end - r.start);
        if total > MAX_PFNS {
            return Err(Error::Usage(format!(
                "{}: too many PFNs (at most {MAX_PFNS} per command); split the range",
                quote(tok)
            )));
        }
        ranges.push(r);
        Ok(())
    };
    let mut read_stdin = false;
    for a in args {
        if a == "-" {
            if read_stdin {
                continue;
            }
            read_stdin = true;
            let mut line = Vec::new();
            let mut lineno = 0usize;
            loop {
                line.clear();
                let n = read_line_bounded(stdin, &mut line)?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                if line.len() > MAX_STDIN_LINE {
                    return Err(Error::Usage(format!(
                        "<stdin>:{lineno}: line longer than {MAX_STDIN_LINE} bytes; give PFNs as whitespace-separated tokens"
                    )));
                }
                let text = String::from_utf8_lossy(&line);
                for tok in text.split_whitespace() {
                    add(parse_pfn_range(tok)?, tok)?;
                }
            }
        } else {
            add(parse_pfn_range(a)?, a)?;
        }
    }
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Ok(merged)
}

/// Read one line into `buf`; stops as soon as the line is longer than `MAX_STDIN_LINE`
/// (the caller refuses it), so a stream without newlines (`/dev/zero`) cannot grow memory or
/// run forever.
fn read_line_bounded(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> Result<usize> {
    let mut total = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("<stdin>", e)),
        };
        if avail.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let room = (MAX_STDIN_LINE + 1).saturating_sub(buf.len());
        let chunk_len = chunk.len();
        let take = chunk_len.min(room);
        buf.extend_from_slice(&chunk[..take]);
        total += take;
        r.consume(take);
        if done && take == chunk_len {
            return Ok(total);
        }
        if buf.len() > MAX_STDIN_LINE {
            return Ok(total);
        }
    }
}

const DURATION_FORMS: &str =
    "a duration such as 250ms, 2s, 1.5s, 1m or 1h (bare numbers are seconds)";

/// A duration: `250ms`, `2s`, `1.5s`, `1m`, `1h`, or bare seconds; above 0 and below 10^7 s.
///
/// ```
/// use pgtool::input::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
/// assert_eq!(parse_duration("2")?, Duration::from_secs(2));
/// assert!(parse_duration("0s").is_err());
/// # Ok::<(), pgtool::Error>(())
/// ```
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, mul) = if let Some(v) = t.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('m') {
        (v, 60.0)
    } else if let Some(v) = t.strip_suffix('h') {
        (v, 3600.0)
    } else {
        (t, 1.0)
    };
    let ok = !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let v: f64 = if ok {
        num.parse()
            .map_err(|_| usage("duration", s, DURATION_FORMS))?
    } else {
        return Err(usage("duration", s, DURATION_FORMS));
    };
    let secs = v * mul;
    if !(secs > 0.0 && secs < 1e7) {
        return Err(Error::Usage(format!(
            "bad duration {}: must be above 0 and below 10000000 s",
            quote(s)
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size in bytes: a number, or digits with `K`, `M`, `G`, `T` (binary multiples), optionally
/// followed by `B` or `iB`; `None` when it is not one or overflows.
pub fn size(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(n) = number(t) {
        return Some(n);
    }
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.as_bytes().last()? {
        b'K' | b'k' => (&t[..t.len() - 1], 10),
        b'M' | b'm' => (&t[..t.len() - 1], 20),
        b'G' | b'g' => (&t[..t.len() - 1], 30),
        b'T' | b't' => (&t[..t.len() - 1], 40),
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// A size for `what`, with the grammar's message when it is not one.
///
/// ```
/// use pgtool::input::parse_size;
/// assert_eq!(parse_size("64M", "length")?, 64 << 20);
/// assert_eq!(parse_size("0x1000", "length")?, 4096);
/// assert!(parse_size("1Q", "length").is_err());
/// # Ok::<(), pgtool::Error>(())
/// ```
pub fn parse_size(s: &str, what: &str) -> Result<u64> {
    size(s).ok_or_else(|| usage(what, s, "a size: bytes (4096, 0x1000) or 8K, 64M, 2G, 1T"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_ranges_are_inclusive_and_merged() {
        let mut empty: &[u8] = b"";
        let r = parse_pfn_args(
            &["0x10-0x11".into(), "5+2".into(), "0x11".into()],
            &mut empty,
        )
        .expect("parses");
        assert_eq!(r, vec![5..7, 0x10..0x12]);
        let mut input: &[u8] = b"1 2\n3-4\n";
        let r = parse_pfn_args(&["-".into()], &mut input).expect("parses");
        assert_eq!(r, vec![1..5]);
    }

    #[test]
    fn bad_tokens_are_cut_in_messages() {
        let long = "z".repeat(10_000);
        let e = parse_pfn_range(&long).expect_err("bad").to_string();
        assert!(e.len() < 300, "{e}");
        assert!(e.contains("(10000 bytes)"), "{e}");
    }

    #[test]
    fn stdin_without_newlines_is_bounded() {
        let data = vec![b'1'; 1 << 20];
        let mut r: &[u8] = &data;
        let e = parse_pfn_args(&["-".into()], &mut r).expect_err("too long");
        assert!(e.to_string().contains("longer than"), "{e}");
    }

    #[test]
    fn address_ranges() {
        assert_eq!(parse_number_for("0x10", "address").ok(), Some(16));
        assert_eq!(parse_number_for("10", "address").ok(), Some(10));
        assert!(parse_number_for("0x", "address").is_err());
        assert!(parse_number_for("-1", "address").is_err());
        let r = parse_addr_range("0x1000-0x3000").expect("range");
        assert_eq!((r.start, r.end, r.single), (0x1000, 0x3000, false));
        assert!(parse_addr_range("0x3000-0x1000").is_err());
        assert!(parse_addr_range("0x1000+0").is_err());
        assert!(parse_addr_range("0xffffffffffffffff+2").is_err());
        assert_eq!(
            parse_addr_range("0x1000+8K").map(|r| r.end).ok(),
            Some(0x3000)
        );
    }

    #[test]
    fn sizes_and_numbers() {
        assert_eq!(size("8K"), Some(8192));
        assert_eq!(size("2GiB"), Some(2 << 30));
        assert_eq!(size("1G"), Some(1 << 30));
        assert_eq!(size("99999999999T"), None);
        let e = parse_number_for("1G", "address").expect_err("not an address");
        assert!(
            e.to_string().contains("sizes such as 8K are for lengths"),
            "{e}"
        );
        let root = SysRoot::live();
        assert_eq!(parse_pid("self", &root).expect("self"), std::process::id());
        assert_eq!(parse_pid("0x10", &root).expect("hex pid"), 16);
        assert!(parse_pid("0", &root).is_err());
        assert!(parse_pid("-1", &root).is_err());
    }
}
