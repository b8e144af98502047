//! A guard for PFN lists read from stdin: `input::parse_pfn_args` keeps at most one line's
//! cap in memory but reads a stream without newlines (`< /dev/zero`) to its end, which never
//! comes. [`LineCapped`] ends the stream once a line runs past the cap, so the parser reports
//! the long line at once. Remove it when the parser stops reading at its cap.

use std::io::{self, Read};

/// Longer than any line the PFN parser accepts (its cap is 4096 bytes).
const CAP: usize = 8192;

/// A reader that reports end-of-file once a line runs longer than [`CAP`] bytes.
pub struct LineCapped<R> {
    inner: R,
    run: usize,
}

impl<R: Read> LineCapped<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> LineCapped<R> {
        LineCapped { inner, run: 0 }
    }
}

impl<R: Read> Read for LineCapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.run > CAP {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        match memchr::memrchr(b'\n', &buf[..n]) {
            Some(i) => self.run = n - i - 1,
            None => self.run += n,
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_a_stream_without_newlines() {
        let mut r = LineCapped::new(io::repeat(0));
        let mut sink = Vec::new();
        let n = r.read_to_end(&mut sink).expect("read");
        assert!(n > CAP && n < 2 * CAP + 65536, "{n}");
        let mut ok = LineCapped::new(&b"1 2\n3\n"[..]);
        let mut s = String::new();
        ok.read_to_string(&mut s).expect("read");
        assert_eq!(s, "1 2\n3\n");
    }
}
