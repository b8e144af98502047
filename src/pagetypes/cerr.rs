//! page-types' error text: C's `strerror` and `perror`.

use std::io;
use std::path::Path;

/// strerror text without Rust's " (os error N)".
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// C `perror(name)`: `name: message`, or only the message when `name` is empty.
pub fn perror(name: &str, e: &io::Error) -> Vec<u8> {
    if name.is_empty() {
        format!("{}\n", strerror(e)).into_bytes()
    } else {
        format!("{name}: {}\n", strerror(e)).into_bytes()
    }
}

/// `perror(path)` for a failure on `path`.
pub fn perror_path(path: &Path, e: &io::Error) -> Vec<u8> {
    perror(&path.display().to_string(), e)
}
