//! Bounded reading of user-supplied text inputs (page_owner dumps, KFENCE objects files,
//! slabinfo): the file type is checked up front, lines and totals are capped, binary data is
//! refused. Shared by [`crate::kfence`] and [`crate::slab`]; a candidate for `input.rs`.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Open `path` for streaming (`-` is stdin). Directories, character and block devices and
/// sockets are refused before anything is read; `expected` says what the file should be
/// (e.g. "a page_owner dump"). Regular files (debugfs and procfs files are regular files of
/// size 0) and pipes are accepted.
pub fn open(path: &Path, expected: &str) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(1 << 20, io::stdin())));
    }
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    check_type(&f, path, expected)?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

/// Refuse what cannot be a text file of the expected kind.
pub fn check_type(f: &File, path: &Path, expected: &str) -> Result<()> {
    let t = f.metadata().map_err(|e| Error::io(path, e))?.file_type();
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        return Ok(());
    };
    Err(Error::Usage(format!(
        "{}: is {what}, not {expected} (give a regular file, or - for stdin)",
        path.display()
    )))
}

/// Read all of a small text file (slabinfo, a sysfs attribute), refusing one larger than
/// `cap` bytes or holding a NUL byte.
pub fn read_capped(path: &Path, cap: u64, expected: &str) -> Result<String> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    check_type(&f, path, expected)?;
    let mut v = Vec::new();
    f.take(cap.saturating_add(1))
        .read_to_end(&mut v)
        .map_err(|e| Error::io(path, e))?;
    if v.len() as u64 > cap {
        return Err(Error::Usage(format!(
            "{}: larger than {cap} bytes, not {expected}",
            path.display()
        )));
    }
    if let Some(i) = memchr::memchr(0, &v) {
        return Err(Error::Usage(format!(
            "{}: binary data (a NUL byte at byte {i}), not {expected}",
            path.display()
        )));
    }
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// Lines of a stream, each at most `max_line` bytes, at most `max_bytes` in all, no NUL.
pub struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    max_line: usize,
    max_bytes: u64,
    /// Bytes read so far.
    pub offset: u64,
    /// Lines read so far (the number of the current one).
    pub line: u64,
}

impl<R: BufRead> Lines<R> {
    /// A line reader with these caps.
    pub fn new(r: R, max_line: usize, max_bytes: u64) -> Lines<R> {
        Lines {
            r,
            buf: Vec::new(),
            max_line,
            max_bytes,
            offset: 0,
            line: 0,
        }
    }

    /// The next line without its newline (lossily decoded), `None` at the end. `what`
    /// names the input for errors ("not {what}").
    pub fn next_line(&mut self, path: &Path, what: &str) -> Result<Option<String>> {
        self.buf.clear();
        let bad = |line: u64, msg: String| Error::Parse {
            path: path.to_path_buf(),
            line: line as usize,
            msg: format!("{msg}: not {what}"),
        };
        loop {
            let avail = match self.r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            if avail.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if memchr::memchr(0, &avail[..take]).is_some() {
                return Err(bad(self.line + 1, "binary data (a NUL byte)".into()));
            }
            if self.buf.len() + take > self.max_line + 1 {
                return Err(bad(
                    self.line + 1,
                    format!("line longer than {} bytes", self.max_line),
                ));
            }
            self.buf.extend_from_slice(&avail[..take]);
            self.r.consume(take);
            self.offset += take as u64;
            if self.offset > self.max_bytes {
                return Err(bad(
                    self.line + 1,
                    format!("larger than {} bytes", self.max_bytes),
                ));
            }
            if done {
                break;
            }
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&self.buf).into_owned()))
    }
}
