//! Per-session control groups, where the machine lets us make them: a memory limit for the
//! session as a whole (its processes and what it writes to its `/tmp`) and a process limit.
//!
//! Why on top of rlimits: RLIMIT_AS bounds each process, not the session, so sixty processes
//! of two gigabytes each would still exhaust the host; a memory cgroup bounds their sum and
//! OOM-kills inside the session only. Best effort: cgroup v1 `memory` and `pids` hierarchies
//! (writable by root), or a v2 hierarchy whose controllers are delegated to us. Where neither
//! is writable, sessions run with rlimits only and the self-test says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where this process may create session groups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    /// Our own directory in each writable hierarchy, created at start.
    bases: Vec<Base>,
}

#[derive(Debug, Clone)]
enum Base {
    V1Memory(PathBuf),
    V1Pids(PathBuf),
    V2(PathBuf),
}

impl Base {
    fn dir(&self) -> &Path {
        match self {
            Base::V1Memory(p) | Base::V1Pids(p) | Base::V2(p) => p,
        }
    }
}

/// One session's groups: remove them after the session's processes are gone.
#[derive(Debug)]
pub struct SessionCgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each, for the child to move itself in before exec.
    pub procs: Vec<CString>,
}

const PREFIX: &str = "assistants-ci-";

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

/// Removes the (empty) groups of executors whose process is gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.is_empty() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(entry.path()) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

impl Cgroups {
    /// Finds the hierarchies we can write to and makes `<ours>/assistants-ci-<pid>-<n>` in
    /// each (after removing what dead processes left).
    pub fn detect() -> Cgroups {
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            super::super::session::hex(&rand::random::<[u8; 4]>())
        );
        let tag = tag.as_str();
        let mut bases = Vec::new();
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
            return Cgroups { bases };
        };
        let root = Path::new("/sys/fs/cgroup");
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if id == "0" && controllers.is_empty() {
                // cgroup v2, when it is the hierarchy mounted at /sys/fs/cgroup.
                if !root.join("cgroup.controllers").exists() {
                    continue;
                }
                let base = root.join(rel).join(tag);
                remove_stale(root.join(rel).as_path());
                if std::fs::create_dir_all(&base).is_ok()
                    && write(&base.join("cgroup.subtree_control"), "+memory +pids").is_ok()
                {
                    bases.push(Base::V2(base));
                }
                continue;
            }
            for controller in controllers.split(',') {
                let make = match controller {
                    "memory" => Base::V1Memory as fn(PathBuf) -> Base,
                    "pids" => Base::V1Pids,
                    _ => continue,
                };
                let base = root.join(controller).join(rel).join(tag);
                remove_stale(&root.join(controller).join(rel));
                if std::fs::create_dir_all(&base).is_ok() && base.join("cgroup.procs").exists() {
                    bases.push(make(base));
                }
            }
        }
        Cgroups { bases }
    }

    /// What limits the groups give, for the self-test report (empty: none).
    pub fn describe(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for b in &self.bases {
            match b {
                Base::V1Memory(_) => out.push("memory (cgroup v1)"),
                Base::V1Pids(_) => out.push("processes (cgroup v1)"),
                Base::V2(_) => out.push("memory and processes (cgroup v2)"),
            }
        }
        out
    }

    pub fn bounds_memory(&self) -> bool {
        self.bases
            .iter()
            .any(|b| matches!(b, Base::V1Memory(_) | Base::V2(_)))
    }

    /// Makes the groups of one session with its limits. A hierarchy that refuses is left out
    /// (the rlimits still hold).
    pub fn create(&self, name: &str, memory_bytes: u64, max_processes: u32) -> SessionCgroup {
        let mut dirs = Vec::new();
        let mut procs = Vec::new();
        for base in &self.bases {
            let dir = base.dir().join(name);
            let _ = std::fs::remove_dir(&dir);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            let limited = match base {
                Base::V1Memory(_) => write(
                    &dir.join("memory.limit_in_bytes"),
                    &memory_bytes.to_string(),
                )
                .and_then(|()| {
                    // With swap accounting, swap must not extend the limit.
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &memory_bytes.to_string())
                    } else {
                        Ok(())
                    }
                }),
                Base::V1Pids(_) => write(&dir.join("pids.max"), &max_processes.to_string()),
                Base::V2(_) => write(&dir.join("memory.max"), &memory_bytes.to_string())
                    .and_then(|()| {
                        let swap = dir.join("memory.swap.max");
                        if swap.exists() {
                            write(&swap, "0")
                        } else {
                            Ok(())
                        }
                    })
                    .and_then(|()| write(&dir.join("pids.max"), &max_processes.to_string())),
            };
            match (
                limited,
                CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()),
            ) {
                (Ok(()), Ok(path)) => {
                    procs.push(path);
                    dirs.push(dir);
                }
                _ => {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        SessionCgroup { dirs, procs }
    }

    /// Removes our directories (at shutdown; they are empty by then).
    pub fn remove_all(&self) {
        for base in &self.bases {
            if let Ok(entries) = std::fs::read_dir(base.dir()) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(base.dir());
        }
    }
}

impl SessionCgroup {
    /// Removes the groups; their processes must be gone (a cgroup with members cannot be
    /// removed, and killed processes take a moment to leave).
    pub async fn remove(&self) {
        for dir in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
