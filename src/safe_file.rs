//! The one way pgtool writes files. pgtool runs as root, so every path it writes is a way in
//! for a local attacker who can create names in the target directory: nothing here follows a
//! symbolic link it did not make, new files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and
//! an exact mode (whatever the umask), and replaced files are written to a fresh, randomly
//! named temporary file and renamed into place (readers never see half a file).

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode for files that hold root-only data (PFNs, physical addresses): owner read/write only.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode for directories that hold root-only data.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode for files meant to be read by others (metrics for a collector).
pub const PUBLIC_FILE: u32 = 0o644;

/// Refuse `path` when it is a symbolic link or something other than a regular file; `Ok` when
/// it does not exist or is a regular file.
pub fn refuse_non_regular(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Refused(format!(
            "{}: is a symbolic link; pgtool does not write through links it did not make \
             (remove it or choose another path)",
            path.display()
        ))),
        Ok(m) if !m.file_type().is_file() => Err(Error::Refused(format!(
            "{}: exists and is not a regular file; choose another path",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_error(path, e)),
    }
}

/// An error writing `path`, with a hint that fits a write (not a read) failure.
pub fn write_error(path: &Path, e: io::Error) -> Error {
    let hint = match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            Some("cannot write here: check the directory's owner and permissions")
        }
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some("the file system is full"),
        Some(libc::EROFS) => Some("the file system is read-only"),
        Some(libc::ELOOP) => Some("a symbolic link is in the way; pgtool does not follow it"),
        Some(libc::EEXIST) => Some("something already exists at this path"),
        _ => None,
    };
    match hint {
        Some(h) => Error::io_hint(path, e, h),
        None => Error::Io {
            path: path.to_path_buf(),
            source: e,
            hint: None,
        },
    }
}

/// Create a new file that must not exist yet (not even as a dangling link), with exactly `mode`.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| write_error(path, e))?;
    // The umask may have cleared bits of `mode` (never added any): set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| write_error(path, e))?;
    Ok(f)
}

/// Create a new directory that must not exist yet, with exactly `mode`.
pub fn create_dir_new(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| write_error(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| write_error(path, e))
}

/// A random name part (16 hex digits) from the kernel's random source.
pub fn random_suffix() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let v = if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        // Never reached on Linux >= 3.17; the name is still created with O_EXCL.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    };
    format!("{v:016x}")
}

/// Replace (or create) `path` atomically with `data`, with exactly `mode`: write a new,
/// randomly named temporary file beside it, fsync it, then rename it over `path`. A symbolic
/// link or non-regular file at `path` is refused, never followed.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    refuse_non_regular(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for _ in 0..16 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", random_suffix()));
        let tmp = dir.join(tmp_name);
        let mut f = match create_new(&tmp, mode) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                continue;
            }
            Err(e) => return Err(e),
        };
        let res = f
            .write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| write_error(path, e))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| write_error(path, e)));
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return res;
    }
    Err(Error::Refused(format!(
        "{}: could not create a temporary file beside it",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pgtool-safe-{}", random_suffix()));
        create_dir_new(&d, PRIVATE_DIR).expect("mkdir");
        d
    }

    #[test]
    fn atomic_write_refuses_a_planted_link() {
        let d = tmpdir();
        let victim = d.join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        let dest = d.join("metrics.prom");
        std::os::unix::fs::symlink(&victim, &dest).expect("symlink");
        let e = write_atomic(&dest, b"x", PUBLIC_FILE).expect_err("must refuse");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
        std::fs::remove_file(&dest).expect("rm");
        write_atomic(&dest, b"new", PUBLIC_FILE).expect("write");
        assert_eq!(std::fs::read(&dest).expect("read"), b"new");
        let mode = std::fs::metadata(&dest).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, PUBLIC_FILE);
        // no temporary left behind
        assert_eq!(std::fs::read_dir(&d).expect("ls").count(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn create_new_does_not_follow_dangling_links() {
        let d = tmpdir();
        let target = d.join("would-be-created");
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(create_new(&link, PRIVATE_FILE).is_err());
        assert!(!target.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
