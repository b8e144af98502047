//! page-types' listing lines (`-L` pages, `-l` ranges) in its classic text: the columns in
//! front (virtual address, file offset, memcg, map count), the PFN, and the symbolic flags.
//! Appended to a caller's buffer, so a worker thread can format its chunk of a listing.

use super::config::PipeOpts;
use super::table::symbolic;

/// The symbolic string of the last flags formatted (consecutive pages mostly share them).
#[derive(Default)]
pub(crate) struct Symbols {
    flags: u64,
    text: Vec<u8>,
}

impl Symbols {
    /// The symbolic string of `flags`, or page-types' `unknown flag bit N` message.
    pub fn of(&mut self, flags: u64) -> Result<&[u8], Vec<u8>> {
        if self.flags != flags || self.text.is_empty() {
            self.text = symbolic(flags)?.into_bytes();
            self.flags = flags;
        }
        Ok(&self.text)
    }
}

/// What one listing line shows.
pub(crate) struct Line {
    pub voffset: u64,
    pub cgroup: u64,
    pub mapcnt: u64,
    /// The PFN (or swap offset) of the first page.
    pub index: u64,
    /// Pages in the range (`-l`); `None` for a page line (`-L`).
    pub count: Option<u64>,
    /// The flags shown (transformed).
    pub shown: u64,
}

/// Append one listing line. On a flag bit without a name, `out` ends with the prefix (which
/// page-types had printed before it failed) and its message comes back.
///
/// The line is put together on the stack and appended with one copy: a listing of a large
/// process is hundreds of thousands of lines, and a copy per column was a tenth of its time.
pub(crate) fn push_line(
    o: &PipeOpts,
    out: &mut Vec<u8>,
    sym: &mut Symbols,
    l: &Line,
) -> Result<(), Vec<u8>> {
    let mut line = Stack::default();
    if o.show_pid {
        line.hex(l.voffset);
        line.put(b'\t');
    }
    if o.show_file {
        line.hex(l.voffset);
        line.put(b'\t');
    }
    if o.list_cgroup {
        line.put(b'@');
        line.dec(l.cgroup);
        line.put(b'\t');
    }
    if o.list_mapcnt {
        line.dec(l.mapcnt);
        line.put(b'\t');
    }
    let s = match sym.of(l.shown) {
        Ok(s) => s,
        Err(e) => {
            out.extend_from_slice(line.bytes());
            return Err(e);
        }
    };
    line.hex(l.index);
    line.put(b'\t');
    if let Some(n) = l.count {
        line.hex(n);
        line.put(b'\t');
    }
    out.reserve(line.len + s.len() + 1);
    out.extend_from_slice(line.bytes());
    out.extend_from_slice(s);
    out.push(b'\n');
    Ok(())
}

/// A line's columns before the flags: at most two 16-digit hex, two 20-digit decimal, a
/// 16-digit PFN and a 16-digit count, with their separators.
struct Stack {
    b: [u8; 128],
    len: usize,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack {
            b: [0; 128],
            len: 0,
        }
    }
}

impl Stack {
    fn put(&mut self, c: u8) {
        self.b[self.len] = c;
        self.len += 1;
    }

    fn hex(&mut self, x: u64) {
        self.digits(crate::digits::hex, x);
    }

    fn dec(&mut self, x: u64) {
        self.digits(crate::digits::decimal, x);
    }

    fn digits(&mut self, f: fn(u64, &mut [u8; 20]) -> &[u8], x: u64) {
        let mut tmp = [0u8; 20];
        let d = f(x, &mut tmp);
        self.b[self.len..self.len + d.len()].copy_from_slice(d);
        self.len += d.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.b[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_match_rusts_formatting() {
        for x in [0u64, 1, 9, 0xf, 0x10, 0xabc, 0x7fff_ffff_f000, u64::MAX] {
            let mut s = Stack::default();
            s.hex(x);
            assert_eq!(s.bytes(), format!("{x:x}").as_bytes());
            let mut s = Stack::default();
            s.dec(x);
            assert_eq!(s.bytes(), format!("{x}").as_bytes());
        }
    }

    #[test]
    fn the_widest_line_fits() {
        let o = PipeOpts {
            show_pid: true,
            show_file: true,
            list_cgroup: true,
            list_mapcnt: true,
            ..PipeOpts::default()
        };
        let l = Line {
            voffset: u64::MAX,
            cgroup: u64::MAX,
            mapcnt: u64::MAX,
            index: u64::MAX,
            count: Some(u64::MAX),
            shown: 1,
        };
        let mut out = Vec::new();
        push_line(&o, &mut out, &mut Symbols::default(), &l).expect("known bit");
        let text = String::from_utf8(out).expect("ascii");
        let f: Vec<&str> = text.trim_end().split('\t').collect();
        assert_eq!(
            f[..6],
            [
                "ffffffffffffffff",
                "ffffffffffffffff",
                "@18446744073709551615",
                "18446744073709551615",
                "ffffffffffffffff",
                "ffffffffffffffff"
            ]
        );
        assert!(text.ends_with('\n'));
    }
}
