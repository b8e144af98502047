//! One error type for the whole library. Every variant names the file and the PID/PFN/address
//! involved, and where there is something the user can do about it, says what.

use std::io;
use std::path::{Path, PathBuf};

/// Result with pgtool's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure pgtool reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file, with an optional hint on what to do.
    #[error("{}: {}{}", path.display(), strip_os_error(source), hint_suffix(hint))]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
        /// What to do about it, if anything.
        hint: Option<String>,
    },
    /// The process does not exist (or exited while it was being read).
    #[error("no such process {pid}")]
    NoSuchProcess {
        /// The PID asked for.
        pid: u32,
    },
    /// The address is not inside any mapping of the process.
    #[error("address {addr:#x} is not mapped in {pid}")]
    NotMapped {
        /// The process.
        pid: u32,
        /// The address asked for.
        addr: u64,
    },
    /// Something the user asked for does not exist (a PFN past the end of memory, a cgroup
    /// inode no hierarchy has, a VMA name no mapping matches...).
    #[error("{0}")]
    NotFound(String),
    /// A line of a text file (maps, iomem, ...) could not be parsed.
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        msg: String,
    },
    /// A binary per-page file ended in the middle of an entry.
    #[error("{}: truncated: {len} bytes is not a multiple of 8 (entry {index} is partial)", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The index of the partial entry.
        index: u64,
    },
    /// The kernel lacks a feature (page_idle, hwpoison injection, page_owner ...).
    #[error("{}: {what} is not available: {hint}", path.display())]
    Unsupported {
        /// The file that would provide it.
        path: PathBuf,
        /// The feature.
        what: String,
        /// How to get it (kernel config, module, boot option).
        hint: String,
    },
    /// Bad command-line input (an address spec, a PFN, a bits spec ...).
    #[error("{0}")]
    Usage(String),
    /// A destructive action was refused by a guard; the message says how to override it.
    #[error("{0}")]
    Refused(String),
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

/// `io::Error`'s Display appends " (os error N)"; users need the text, not the number.
fn strip_os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Hint for files only root can read.
pub const NEEDS_ROOT: &str = "needs root: the file is readable by root only";
/// Hint for pagemap without CAP_SYS_ADMIN.
pub const PFN_HIDDEN: &str = "needs root or CAP_SYS_ADMIN: PFNs read as 0";

impl Error {
    /// An I/O error on `path`, with a hint chosen from the errno.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        let hint = match source.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Some(permission_hint(&path).to_string()),
            _ => None,
        };
        Error::Io { path, source, hint }
    }

    /// An I/O error on a `/proc/PID/...` file: ENOENT and ESRCH mean the process is gone.
    pub fn pid_io(pid: u32, path: impl AsRef<Path>, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
            _ => Error::io(path, source),
        }
    }

    /// An I/O error with an explicit hint.
    pub fn io_hint(path: impl AsRef<Path>, source: io::Error, hint: impl Into<String>) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
            hint: Some(hint.into()),
        }
    }

    /// The process exit status for this error: 1 when something asked for was not found or
    /// not mapped, 2 for usage and system errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NoSuchProcess { .. } | Error::NotMapped { .. } | Error::NotFound(_) => 1,
            _ => 2,
        }
    }

    /// True for a write to a closed pipe (`pgtool ... | head`): the policy is a quiet exit 0.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// True when the error means the process went away (exited mid-walk).
    pub fn is_process_gone(&self) -> bool {
        match self {
            Error::NoSuchProcess { .. } => true,
            Error::Io { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::ESRCH) | Some(libc::ENOENT)
                )
            }
            _ => false,
        }
    }
}

fn permission_hint(path: &Path) -> &'static str {
    let s = path.to_string_lossy();
    if s.ends_with("/pagemap") || s.ends_with("/maps") || s.ends_with("/mem") {
        "needs root or ptrace access to the process (same user and not protected by yama ptrace_scope)"
    } else if s.contains("hwpoison") || s.contains("page_owner") || s.contains("debug") {
        "needs root (CAP_SYS_ADMIN) and a mounted debugfs"
    } else {
        NEEDS_ROOT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_hint() {
        let e = Error::io(
            "/proc/kpageflags",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(
            e.to_string(),
            "/proc/kpageflags: Permission denied (needs root: the file is readable by root only)"
        );
        assert_eq!(e.exit_code(), 2);
        let e = Error::pid_io(
            4242,
            "/proc/4242/maps",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(e.to_string(), "no such process 4242");
        assert_eq!(e.exit_code(), 1);
        assert!(e.is_process_gone());
        let e = Error::NotMapped {
            pid: 1234,
            addr: 0x10,
        };
        assert_eq!(e.to_string(), "address 0x10 is not mapped in 1234");
    }
}
