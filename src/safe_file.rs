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
        Ok(m) if m.file_type().is_symlink() => Err(link_refused(path)),
        Ok(m) if !m.file_type().is_file() => Err(Error::Refused(format!(
            "{}: exists and is not a regular file; choose another path",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_error(path, e)),
    }
}

/// The error for a symbolic link where pgtool would write.
fn link_refused(path: &Path) -> Error {
    Error::Refused(format!(
        "{}: is a symbolic link; pgtool does not write through links it did not make \
         (remove it or choose another path)",
        path.display()
    ))
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

/// A directory opened for `*at` calls, so that the temporary file and the rename happen in
/// the same directory even if a component of its path is swapped meanwhile.
struct DirFd {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

fn cstring(path: &Path, name: &std::ffi::OsStr) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(name.as_bytes()).map_err(|_| {
        Error::Usage(format!(
            "{}: a file name cannot hold a NUL byte",
            path.display()
        ))
    })
}

impl DirFd {
    fn open(dir: &Path) -> Result<DirFd> {
        use std::os::fd::FromRawFd;
        let c = cstring(dir, dir.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated string; the returned fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(write_error(dir, io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by open(2) and nothing else owns it.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(DirFd {
            fd,
            path: dir.to_path_buf(),
        })
    }

    fn raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// `lstat` of `name` in this directory; `None` when it does not exist.
    fn lstat(&self, name: &std::ffi::OsStr) -> Result<Option<libc::stat>> {
        let c = cstring(&self.path.join(name), name)?;
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dir fd, valid C string, `st` is a valid out pointer.
        let r =
            unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 {
            return Ok(Some(st));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(write_error(&self.path.join(name), e))
        }
    }

    /// Create `name` here with O_CREAT|O_EXCL|O_NOFOLLOW and exactly `mode`.
    fn create_new(&self, name: &std::ffi::OsStr, mode: u32) -> Result<File> {
        use std::os::fd::FromRawFd;
        let path = self.path.join(name);
        let c = cstring(&path, name)?;
        // SAFETY: valid dir fd and C string; the returned fd is owned below.
        let fd = unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(write_error(&path, io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by openat(2) and nothing else owns it.
        let f = unsafe { File::from_raw_fd(fd) };
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| write_error(&path, e))?;
        Ok(f)
    }

    fn rename(&self, from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> io::Result<()> {
        let path = self.path.join(to);
        let (a, b) = match (cstring(&path, from), cstring(&path, to)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        // SAFETY: valid dir fd and C strings.
        let r = unsafe { libc::renameat(self.raw(), a.as_ptr(), self.raw(), b.as_ptr()) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn unlink(&self, name: &std::ffi::OsStr) {
        if let Ok(c) = cstring(&self.path, name) {
            // SAFETY: valid dir fd and C string; failure leaves a stray temporary, no more.
            unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) };
        }
    }

    /// fsync the directory, so a rename inside it survives a crash.
    fn sync(&self) {
        // SAFETY: valid fd; an error here is not worth failing a finished write for.
        unsafe { libc::fsync(self.raw()) };
    }
}

fn is_link_or_not_file(st: &libc::stat) -> Option<&'static str> {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFLNK => Some("link"),
        _ => Some("other"),
    }
}

/// Replace (or create) `path` atomically with `data`, with exactly `mode`: write a new,
/// randomly named temporary file beside it (O_CREAT|O_EXCL|O_NOFOLLOW, in the directory
/// opened once), fsync it, rename it over `path`, fsync the directory. A symbolic link or
/// non-regular file at `path` is refused, never followed; one planted after the check is
/// replaced by the rename, not written through.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", path.display())))?;
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    refuse_pseudo_fs(&dir_path)?;
    let dir = DirFd::open(&dir_path)?;
    if let Some(st) = dir.lstat(name)? {
        match is_link_or_not_file(&st) {
            Some("link") => return Err(link_refused(path)),
            Some(_) => {
                return Err(Error::Refused(format!(
                    "{}: exists and is not a regular file; choose another path",
                    path.display()
                )));
            }
            None => {}
        }
    }
    for _ in 0..16 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", random_suffix()));
        let mut f = match dir.create_new(&tmp_name, mode) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                continue;
            }
            // Name the file the user gave, not the temporary one beside it.
            Err(Error::Io { source, .. }) => return Err(write_error(path, source)),
            Err(e) => return Err(e),
        };
        let res = f
            .write_all(data)
            .and_then(|()| f.sync_all())
            .and_then(|()| dir.rename(&tmp_name, name))
            .map_err(|e| write_error(path, e));
        match res {
            Ok(()) => dir.sync(),
            Err(_) => dir.unlink(&tmp_name),
        }
        return res;
    }
    Err(Error::Refused(format!(
        "{}: could not create a temporary file beside it",
        path.display()
    )))
}

/// File system types pgtool never writes into: the kernel's own (writing there changes the
/// kernel, e.g. a `mkdir` in a cgroup hierarchy creates a cgroup).
const PSEUDO_FS: [(i64, &str); 6] = [
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
];

/// The kernel pseudo file system `path` lives on (`proc`, `sysfs`, `cgroup`, `cgroup2`,
/// `debugfs`, `tracefs`), or `None` for an ordinary one.
pub fn pseudo_fs(path: &Path) -> Result<Option<&'static str>> {
    let c = cstring(path, path.as_os_str())?;
    // SAFETY: an all-zero `statfs` is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(write_error(path, io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    let t = st.f_type as i64;
    Ok(PSEUDO_FS.iter().find(|(m, _)| *m == t).map(|(_, n)| *n))
}

/// Refuse to write into `dir` when it is on a kernel pseudo file system (see [`pseudo_fs`])
/// or, whatever its file system, under `/proc` or `/sys` (where e.g. a tmpfs holds the
/// cgroup v1 hierarchies' mount points).
pub fn refuse_pseudo_fs(dir: &Path) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::Refused(format!(
            "{}: is {what} (the kernel's own); pgtool does not write there, choose a \
             directory on a disk or tmpfs",
            dir.display()
        )))
    };
    if let Some(fs) = pseudo_fs(dir)? {
        return refuse(&format!("on a {fs} file system"));
    }
    let real = std::fs::canonicalize(dir).map_err(|e| write_error(dir, e))?;
    for top in ["/proc", "/sys"] {
        if real.starts_with(top) {
            return refuse(&format!("under {top}"));
        }
    }
    Ok(())
}

/// A new directory written in private and renamed into place: [`NewDir::create`] makes a
/// randomly named temporary directory (mode 0700) beside the destination, the caller writes
/// into [`NewDir::path`], and [`NewDir::commit`] renames it to the destination. Dropped
/// without a commit (an error on the way), it removes everything written.
#[derive(Debug)]
pub struct NewDir {
    parent: DirFd,
    dest: PathBuf,
    dest_name: std::ffi::OsString,
    tmp: PathBuf,
    tmp_name: std::ffi::OsString,
    /// The destination exists and is not empty: commit exchanges, then removes the old tree.
    replace: bool,
    done: bool,
}

impl std::fmt::Debug for DirFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirFd({})", self.path.display())
    }
}

impl NewDir {
    /// Check `dest` and create the temporary directory beside it. `dest` may be missing or an
    /// empty directory; a non-empty one is refused unless `replace` lists every name it holds
    /// (e.g. a previous snapshot's `proc`, `sys` ...), in which case commit replaces it. A
    /// symbolic link at `dest`, anything but a directory, and a parent on a kernel pseudo file
    /// system (see [`pseudo_fs`]) are refused.
    pub fn create(dest: &Path, replace: Option<&[&str]>) -> Result<NewDir> {
        let dest_name = dest
            .file_name()
            .filter(|n| *n != "." && *n != "..")
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: name a new directory (not `.`, `..` or `/`)",
                    dest.display()
                ))
            })?
            .to_os_string();
        let parent_path = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent_path.is_dir() {
            return Err(Error::Usage(format!(
                "{}: the parent directory {} does not exist (create it first)",
                dest.display(),
                parent_path.display()
            )));
        }
        refuse_pseudo_fs(&parent_path)?;
        let parent = DirFd::open(&parent_path)?;
        let mut replacing = false;
        if let Some(st) = parent.lstat(&dest_name)? {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {}
                libc::S_IFLNK => return Err(link_refused(dest)),
                _ => {
                    return Err(Error::Refused(format!(
                        "{}: exists and is not a directory; choose another path",
                        dest.display()
                    )));
                }
            }
            refuse_pseudo_fs(dest)?;
            let names = std::fs::read_dir(dest)
                .map_err(|e| Error::io(dest, e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
                .map_err(|e| Error::io(dest, e))?;
            if !names.is_empty() {
                let Some(known) = replace else {
                    return Err(Error::Refused(format!(
                        "{}: exists and is not empty; pgtool writes a fresh directory \
                         (choose a new path, or --force to replace a previous one)",
                        dest.display()
                    )));
                };
                if let Some(other) = names.iter().find(|n| !known.iter().any(|k| *n == *k)) {
                    return Err(Error::Refused(format!(
                        "{}: holds {}, which pgtool did not write; --force replaces only a \
                         previous pgtool directory (choose a new path)",
                        dest.display(),
                        crate::input::quote(&other.to_string_lossy())
                    )));
                }
                replacing = true;
            }
        }
        for _ in 0..16 {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(&dest_name);
            tmp_name.push(format!(".{}.tmp", random_suffix()));
            let tmp = parent_path.join(&tmp_name);
            match create_dir_new(&tmp, PRIVATE_DIR) {
                Ok(()) => {
                    return Ok(NewDir {
                        parent,
                        dest: dest.to_path_buf(),
                        dest_name,
                        tmp,
                        tmp_name,
                        replace: replacing,
                        done: false,
                    });
                }
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Refused(format!(
            "{}: could not create a temporary directory beside it",
            dest.display()
        )))
    }

    /// The temporary directory to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Rename the temporary directory to the destination (exchanging it with a previous tree
    /// being replaced, which is then removed without following any link inside it).
    pub fn commit(mut self) -> Result<()> {
        let dest = self.dest.clone();
        if self.replace {
            let a = cstring(&dest, &self.tmp_name)?;
            let b = cstring(&dest, &self.dest_name)?;
            let fd = self.parent.raw();
            // SAFETY: valid dir fd and C strings.
            let r =
                unsafe { libc::renameat2(fd, a.as_ptr(), fd, b.as_ptr(), libc::RENAME_EXCHANGE) };
            if r != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(write_error(&dest, e));
                }
                // No RENAME_EXCHANGE on this file system: move the old tree aside first.
                let mut old = self.tmp_name.clone();
                old.push(".old");
                self.parent
                    .rename(&self.dest_name, &old)
                    .map_err(|e| write_error(&dest, e))?;
                if let Err(e) = self.parent.rename(&self.tmp_name, &self.dest_name) {
                    let _ = self.parent.rename(&old, &self.dest_name);
                    return Err(write_error(&dest, e));
                }
                self.done = true;
                let _ = std::fs::remove_dir_all(self.parent.path.join(old));
                self.parent.sync();
                return Ok(());
            }
            // The old tree now lives at the temporary name: Drop removes it (remove_dir_all
            // never follows symbolic links).
            self.parent.sync();
            return Ok(());
        }
        self.parent
            .rename(&self.tmp_name, &self.dest_name)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) | Some(libc::ENOTDIR) => {
                    Error::Refused(format!(
                        "{}: something was created there meanwhile; nothing was replaced \
                         (choose a new path)",
                        dest.display()
                    ))
                }
                _ => write_error(&dest, e),
            })?;
        self.done = true;
        self.parent.sync();
        Ok(())
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
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
