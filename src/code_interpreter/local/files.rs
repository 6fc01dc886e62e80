//! File access to a session's `/mnt/data` from the host, safe against what the sandbox
//! leaves there. Code in the sandbox owns the directory's contents: it can plant a symlink
//! (`data.csv -> /etc/shadow` means nothing inside, but would on the host), a FIFO, or swap a
//! directory for a symlink while we walk. So every step is relative to an open directory fd
//! with `O_NOFOLLOW`, starting from the fd of `/mnt/data` itself that the host opened before
//! any code ran (kernel.rs), files must be regular (`fstat`), and listings read
//! `/proc/self/fd/N`, which names the directory the fd holds rather than re-resolving a path.

use super::super::{relative_segments, ExecError, FileInfo};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Listing bounds: a cell that writes a million files still gets a bounded answer.
const MAX_ENTRIES: usize = 10_000;
const MAX_DEPTH: usize = 16;

fn io_err(what: &str, e: std::io::Error) -> ExecError {
    ExecError::Transient(format!("{what}: {e}"))
}

fn cstring(name: &str) -> Result<CString, ExecError> {
    CString::new(name).map_err(|_| ExecError::InvalidInput(format!("{name:?} contains NUL")))
}

/// Opens a directory (the last component must not be a symlink).
pub fn open_dir(path: &Path) -> Result<OwnedFd, ExecError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ExecError::InvalidInput("path contains NUL".into()))?;
    // SAFETY: a valid C string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io_err(
            "open session directory",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: &OwnedFd, name: &str, flags: i32, mode: libc::c_uint) -> std::io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: dir is an open directory fd, c a valid C string.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter; fd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

fn modified(st: &libc::stat) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(st.st_mtime).ok()?;
    let nanos = u32::try_from(st.st_mtime_nsec).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
}

/// The regular files under the directory `root`, recursively, without following symlinks.
pub fn list(root: &OwnedFd) -> Result<Vec<FileInfo>, ExecError> {
    let mut out = Vec::new();
    walk(root, "", 0, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    dir: &OwnedFd,
    prefix: &str,
    depth: usize,
    out: &mut Vec<FileInfo>,
) -> Result<(), ExecError> {
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|e| io_err("list /mnt/data", e))?;
    for entry in listing {
        if out.len() >= MAX_ENTRIES {
            return Ok(());
        }
        let Ok(entry) = entry else { continue };
        // Names that are not UTF-8 could not be named back to us: skip them.
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if kind.is_dir() {
            if depth + 1 < MAX_DEPTH {
                if let Ok(sub) = openat(dir, &name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                    walk(&sub, &path, depth + 1, out)?;
                }
            }
        } else if kind.is_file() {
            // fstat through an O_NOFOLLOW|O_NONBLOCK open: what we report is what a download
            // would read (and a FIFO swapped in meanwhile does not block us).
            let Ok(fd) = openat(dir, &name, libc::O_RDONLY | libc::O_NONBLOCK, 0) else {
                continue;
            };
            let Ok(st) = fstat(&fd) else { continue };
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                out.push(FileInfo {
                    path,
                    bytes: st.st_size as u64,
                    modified: modified(&st),
                });
            }
        }
    }
    Ok(())
}

/// Reads the regular file at `path` (relative, `/`-separated) under the directory `root`.
pub fn read(root: &OwnedFd, path: &str, max_bytes: u64) -> Result<Vec<u8>, ExecError> {
    let segments = relative_segments(path)?;
    let not_found = || ExecError::NotFound(path.to_string());
    let mut below: Option<OwnedFd> = None;
    for segment in &segments[..segments.len() - 1] {
        let at = below.as_ref().unwrap_or(root);
        below = Some(
            openat(at, segment, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(|_| not_found())?,
        );
    }
    let last = segments[segments.len() - 1];
    let fd = openat(
        below.as_ref().unwrap_or(root),
        last,
        libc::O_RDONLY | libc::O_NONBLOCK,
        0,
    )
    .map_err(|_| not_found())?;
    let st = fstat(&fd).map_err(|e| io_err("stat", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(not_found());
    }
    if st.st_size as u64 > max_bytes {
        return Err(ExecError::FileTooLarge(max_bytes));
    }
    let mut file = File::from(fd);
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    // take(): the file may grow while we read; never return more than the limit.
    (&mut file)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("read", e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ExecError::FileTooLarge(max_bytes));
    }
    Ok(bytes)
}

/// Writes `name` (one segment, checked by the caller) into the directory `root`: a new
/// temporary file, then a rename over the name, so a symlink planted under that name is
/// replaced, not followed. `owner` makes the file the sandbox user's, so code can change or
/// delete it. A full filesystem is `NoSpace(disk_bytes)`.
pub fn write(
    root: &OwnedFd,
    name: &str,
    content: &[u8],
    owner: Option<(u32, u32)>,
    disk_bytes: u64,
) -> Result<FileInfo, ExecError> {
    let target = cstring(name)?;
    let dir_fd = root;
    let tmp_name = format!(
        ".upload-{}",
        super::super::session::hex(&rand::random::<[u8; 8]>())
    );
    let tmp = cstring(&tmp_name)?;
    // Done as the sandbox user: the file is then theirs, and a tmpfs mounted inside the
    // sandbox's user namespace takes no new name from an owner it cannot map (root).
    let _as_owner = owner.map(|(uid, gid)| FsIds::switch(uid, gid));
    let fd = openat(
        dir_fd,
        &tmp_name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o644,
    )
    .map_err(|e| io_err("create upload", e))?;
    let result = (|| {
        let mut file = File::from(fd);
        file.write_all(content).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                ExecError::NoSpace(disk_bytes)
            } else {
                io_err("write upload", e)
            }
        })?;
        let st = fstat(&OwnedFd::from(file)).map_err(|e| io_err("stat upload", e))?;
        // SAFETY: both names are valid C strings relative to the open dir fd.
        let renamed = unsafe {
            libc::renameat(
                dir_fd.as_raw_fd(),
                tmp.as_ptr(),
                dir_fd.as_raw_fd(),
                target.as_ptr(),
            )
        };
        if renamed < 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EISDIR) {
                ExecError::InvalidInput(format!("/mnt/data/{name} is a directory"))
            } else {
                io_err("rename upload", e)
            });
        }
        Ok(FileInfo {
            path: name.to_string(),
            bytes: content.len() as u64,
            modified: modified(&st),
        })
    })();
    if result.is_err() {
        // SAFETY: valid C string relative to the open dir fd.
        unsafe { libc::unlinkat(dir_fd.as_raw_fd(), tmp.as_ptr(), 0) };
    }
    result
}

/// This thread's filesystem uid and gid switched to another user's until dropped
/// (`setfsuid` is per thread: the rest of the process keeps its own).
struct FsIds {
    uid: u32,
    gid: u32,
}

impl FsIds {
    fn switch(uid: u32, gid: u32) -> FsIds {
        // SAFETY: plain syscalls; each returns the previous id.
        unsafe {
            let old_gid = libc::setfsgid(gid) as u32;
            let old_uid = libc::setfsuid(uid) as u32;
            FsIds {
                uid: old_uid,
                gid: old_gid,
            }
        }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        // SAFETY: plain syscalls restoring the ids saved in `switch`.
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
    }
}

/// Files created or changed between two listings.
pub fn changed(before: &[FileInfo], after: &[FileInfo]) -> Vec<FileInfo> {
    let old: std::collections::HashMap<&str, &FileInfo> =
        before.iter().map(|f| (f.path.as_str(), f)).collect();
    after
        .iter()
        .filter(|f| {
            old.get(f.path.as_str())
                .is_none_or(|o| o.bytes != f.bytes || o.modified != f.modified)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_fifos_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
        std::fs::write(dir.path().join("ok.txt"), b"hello").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("link.txt")).unwrap();
        symlink(outside.path(), dir.path().join("linkdir")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/inner.csv"), b"a,b").unwrap();
        let fifo = CString::new(dir.path().join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

        let root = open_dir(dir.path()).unwrap();
        let names: Vec<String> = list(&root).unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(names, ["ok.txt", "sub/inner.csv"]);

        assert_eq!(read(&root, "ok.txt", 100).unwrap(), b"hello");
        assert_eq!(read(&root, "sub/inner.csv", 100).unwrap(), b"a,b");
        for path in ["link.txt", "linkdir/secret", "pipe", "missing", "sub"] {
            assert!(
                matches!(read(&root, path, 100), Err(ExecError::NotFound(_))),
                "{path}"
            );
        }
        assert!(matches!(
            read(&root, "../x", 100),
            Err(ExecError::InvalidInput(_))
        ));
        assert!(matches!(
            read(&root, "ok.txt", 2),
            Err(ExecError::FileTooLarge(2))
        ));

        // An upload over a planted symlink replaces the link; the target is untouched.
        write(&root, "link.txt", b"uploaded", None, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"host secret"
        );
        assert_eq!(read(&root, "link.txt", 100).unwrap(), b"uploaded");
        assert!(matches!(
            write(&root, "sub", b"x", None, 1 << 20),
            Err(ExecError::InvalidInput(_))
        ));
        // No temporary file is left behind by the refused upload.
        assert!(!list(&root)
            .unwrap()
            .iter()
            .any(|f| f.path.starts_with(".upload-")));
    }

    #[test]
    fn changes_are_new_or_different_files() {
        let f = |p: &str, b: u64| FileInfo {
            path: p.into(),
            bytes: b,
            modified: None,
        };
        let before = [f("a", 1), f("b", 2)];
        let after = [f("a", 1), f("b", 3), f("c", 0)];
        let names: Vec<String> = changed(&before, &after)
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(names, ["b", "c"]);
    }
}
