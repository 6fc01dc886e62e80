//! A sandbox's processes, seen and signalled from the host.
//!
//! Why from the host: after a cell, everything inside the driver process is the cell's to
//! change (a cell can replace the driver's own clean-up through `sys._getframe`), so ending
//! what a cell left behind, and holding the session still between cells, cannot be left to
//! the driver. The sandbox has a PID namespace of its own, which no process inside can
//! leave or nest (no user namespaces, seccomp denies new namespaces), so "every process of
//! that namespace" is exactly the session's processes.
//!
//! Signals go through pidfds: a pid read from `/proc` may be reused by a host process by
//! the time it is signalled, a pidfd may not.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A process, by pidfd.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pub pid: u32,
}

impl Pidfd {
    pub fn open(pid: u32) -> std::io::Result<Pidfd> {
        // SAFETY: pidfd_open takes a pid and flags; the fd it returns is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Pidfd { fd, pid })
    }

    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: the pidfd is open; no siginfo is passed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The PID namespace of `pid` (the inode number of `/proc/<pid>/ns/pid`).
pub fn pid_namespace(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// State and parent of a process (`/proc/<pid>/stat`).
pub fn state_and_parent(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name may hold spaces and parentheses: the fields start after the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// The live processes (not zombies) of PID namespace `ns`, other than `except`.
pub fn in_namespace(ns: u64, except: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !except.contains(pid) && pid_namespace(*pid) == Some(ns))
        .filter(|pid| state_and_parent(*pid).is_some_and(|(s, _)| s != 'Z' && s != 'X'))
        .collect()
}

/// Kills every process of namespace `ns` but `keep` (its init and the driver) until none is
/// left. `false` when processes still appear at `deadline` (a chain of forks racing the
/// scan): the caller then ends the whole sandbox.
pub fn end_all_but(ns: u64, keep: &[u32], deadline: Instant) -> bool {
    loop {
        let strays = in_namespace(ns, keep);
        if strays.is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        for pid in strays {
            // Opened first, checked second: the pidfd pins the process the check saw.
            if let Ok(fd) = Pidfd::open(pid) {
                if pid_namespace(pid) == Some(ns) {
                    let _ = fd.signal(libc::SIGKILL);
                }
            }
        }
        // Killed processes take a moment to exit.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An in-memory file holding `content`, positioned at its start for whoever gets the fd
/// (bubblewrap's `--ro-bind-data` and `--add-seccomp-fd` read it to its end).
pub fn memfd(name: &str, content: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let name = CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: a valid C string; the fd it returns is owned below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(content)?;
    file.rewind()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memfd_reads_back_from_its_start() {
        use std::io::Read;
        let mut f = memfd("t", b"hello").unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn our_own_namespace_and_state_are_readable() {
        let me = std::process::id();
        assert!(pid_namespace(me).is_some());
        let (state, parent) = state_and_parent(me).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(parent > 0);
        let fd = Pidfd::open(me).unwrap();
        fd.signal(0).unwrap();
    }
}
