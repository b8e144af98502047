//! page-types' listing lines (`-L` pages, `-l` ranges) in its classic text: the columns in
//! front (virtual address, file offset, memcg, map count), the PFN, and the symbolic flags.
//! Appended to a caller's buffer, so a worker thread can format its chunk of a listing.

use super::config::PipeOpts;
use super::table::symbolic;

/// Append `x` in lower-case hex without `0x`.
pub(crate) fn push_hex(v: &mut Vec<u8>, x: u64) {
    let mut tmp = [0u8; 16];
    let mut i = 16;
    let mut x = x;
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[(x & 15) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

/// Append `x` in decimal.
pub(crate) fn push_dec(v: &mut Vec<u8>, x: u64) {
    let mut tmp = [0u8; 20];
    let mut i = 20;
    let mut x = x;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

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

/// Append the columns page-types prints before the PFN.
pub(crate) fn push_prefix(o: &PipeOpts, out: &mut Vec<u8>, voffset: u64, cgroup: u64, mapcnt: u64) {
    if o.show_pid {
        push_hex(out, voffset);
        out.push(b'\t');
    }
    if o.show_file {
        push_hex(out, voffset);
        out.push(b'\t');
    }
    if o.list_cgroup {
        out.push(b'@');
        push_dec(out, cgroup);
        out.push(b'\t');
    }
    if o.list_mapcnt {
        push_dec(out, mapcnt);
        out.push(b'\t');
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
pub(crate) fn push_line(
    o: &PipeOpts,
    out: &mut Vec<u8>,
    sym: &mut Symbols,
    l: &Line,
) -> Result<(), Vec<u8>> {
    push_prefix(o, out, l.voffset, l.cgroup, l.mapcnt);
    let s = sym.of(l.shown)?;
    push_hex(out, l.index);
    out.push(b'\t');
    if let Some(n) = l.count {
        push_hex(out, n);
        out.push(b'\t');
    }
    out.extend_from_slice(s);
    out.push(b'\n');
    Ok(())
}
