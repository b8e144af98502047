//! `-p PID`: page-types opens the process's pagemap and reads its VMAs while parsing options
//! (so the order of errors is page-types'). `pgtool types` resolves `self` first and names a
//! process that does not exist in pgtool's terms.

use super::cerr::strerror;
use super::config::{Config, Invocation, Mode, Stop};
use super::read::checked_open;
use crate::addr::page_size;
use std::io::Write;

/// `-p PID` at parse time: open the pagemap and read the VMAs.
pub(crate) fn parse_pid(
    inv: &Invocation,
    c: &mut Config,
    arg: &[u8],
    err: &mut dyn Write,
) -> Result<(), Stop> {
    let pid = super::parse::parse_number(arg)? as i32;
    c.pid = pid;
    let dir = inv.root.proc().join(pid.to_string());
    let pm = dir.join("pagemap");
    let maps = dir.join("maps");
    // pgtool types: a PID that is gone is "not found" (exit 1), said the pgtool way
    let gone = |path: &std::path::Path, e: std::io::Error| match inv.mode {
        Mode::Pgtool => Stop::Error(crate::Error::pid_io(pid as u32, path, e)),
        Mode::PageTypes => {
            Stop::Fatal(format!("{}: {}\n", path.display(), strerror(&e)).into_bytes())
        }
    };
    c.pagemap = Some(match inv.mode {
        Mode::Pgtool => std::fs::File::open(&pm).map_err(|e| gone(&pm, e))?,
        Mode::PageTypes => checked_open(&pm, &pm.display().to_string())?,
    });
    let text = std::fs::read(&maps).map_err(|e| gone(&maps, e))?;
    let ps = page_size();
    // fgets(buf, 5000): lines of at most 4999 bytes, a longer line continues in the next
    for line in fgets_lines(&text, 4999) {
        match scan_maps_line(line) {
            Some((s, e)) => {
                c.vmas.push((s / ps, e / ps));
                if c.vmas.len() >= 10240 {
                    let _ = err.write_all(b"too many VMAs\n");
                    break;
                }
            }
            None => {
                let _ = err.write_all(b"unexpected line: ");
                let _ = err.write_all(line);
                let _ = err.write_all(b"\n");
            }
        }
    }
    Ok(())
}

fn fgets_lines(text: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let lim = rest.len().min(max);
        let end = match rest[..lim].iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => lim,
        };
        let (line, r) = rest.split_at(end);
        rest = r;
        Some(line)
    })
}

/// `sscanf(line, "%lx-%lx %c%c%c%c %llx %x:%x %lu")` == 10: (start, end).
fn scan_maps_line(s: &[u8]) -> Option<(u64, u64)> {
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let num = |i: &mut usize, radix: u32| -> Option<u64> {
        ws(i);
        let neg = if *i < s.len() && (s[*i] == b'-' || s[*i] == b'+') {
            *i += 1;
            s[*i - 1] == b'-'
        } else {
            false
        };
        if radix == 16
            && s.get(*i) == Some(&b'0')
            && matches!(s.get(*i + 1), Some(b'x' | b'X'))
            && s.get(*i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            *i += 2;
        }
        let st = *i;
        let mut v: u64 = 0;
        while *i < s.len() && (s[*i] as char).is_digit(radix) {
            v = v
                .wrapping_mul(u64::from(radix))
                .wrapping_add(u64::from((s[*i] as char).to_digit(radix).unwrap_or(0)));
            *i += 1;
        }
        (*i > st).then_some(if neg { v.wrapping_neg() } else { v })
    };
    let lit = |i: &mut usize, c: u8| -> Option<()> { (s.get(*i) == Some(&c)).then(|| *i += 1) };
    let ch = |i: &mut usize| -> Option<()> { (*i < s.len()).then(|| *i += 1) };
    let start = num(&mut i, 16)?;
    lit(&mut i, b'-')?;
    let end = num(&mut i, 16)?;
    ws(&mut i);
    for _ in 0..4 {
        ch(&mut i)?;
    }
    num(&mut i, 16)?;
    num(&mut i, 16)?;
    lit(&mut i, b':')?;
    num(&mut i, 16)?;
    num(&mut i, 10)?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        assert_eq!(
            scan_maps_line(b"7f00-7f10 r-xp 00000000 08:01 1234 /bin/x\n"),
            Some((0x7f00, 0x7f10))
        );
        assert_eq!(scan_maps_line(b"nonsense\n"), None);
        assert_eq!(fgets_lines(b"ab\ncd", 4999).count(), 2);
        assert_eq!(
            fgets_lines(b"abcdef\n", 4).collect::<Vec<_>>(),
            vec![&b"abcd"[..], b"ef\n"]
        );
    }
}
