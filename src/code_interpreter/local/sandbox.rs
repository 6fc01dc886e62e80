//! The bubblewrap command line for one session, and what the child does between fork and
//! exec (rlimits, dropping root, the seccomp fds).
//!
//! What the sandbox sees: `/usr` read-only (with `/usr/local` hidden: host-installed tools
//! and packages are not part of the Debian Python), the few `/etc` files Python, fonts and
//! the BLAS alternatives need, the driver and the matplotlib font cache read-only under
//! `/opt/ci`, a private `/proc` and `/dev`, a size-capped `/tmp`, and a size-capped tmpfs
//! of its own as `/mnt/data` (the session's disk quota). Nothing else of the host: not
//! DATA_DIR, not `/etc/passwd`, not the service's environment (`--clearenv`, and bwrap
//! itself starts with an empty one). Every namespace is new (no network but a loopback of
//! its own; its own PIDs), user namespaces cannot be nested, all capabilities are dropped,
//! and the child dies with us.
//!
//! No host directory is bound in: the runtime files come in as file descriptors (bwrap
//! copies them, `--ro-bind-data`), and `/mnt/data` is a tmpfs the host reaches through the
//! sandbox's own root (kernel.rs). So the sandbox user needs no access to any host path
//! beyond `/usr` and those `/etc` files (a private DATA_DIR works as root: issue 18), and
//! neither the mount table nor the command lines inside name a host path or the session
//! (issue 17, item 14).

use super::LocalConfig;
use std::os::unix::process::CommandExt as _;
use tokio::process::Command;

/// Where the runtime files appear inside.
pub const DRIVER_INSIDE: &str = "/opt/ci/driver.py";
pub const MPL_CACHE_INSIDE: &str = "/opt/ci/mpl";

/// The descriptors a session is built from (open in this process; the child gets them as
/// fds 3 and up, in this order).
pub struct Inputs {
    /// The three seccomp filters (`seccomp::filters`).
    pub seccomp: [i32; 3],
    /// driver.py.
    pub driver: i32,
    /// Where bwrap writes the sandbox's pid and namespaces (`--info-fd`).
    pub info: i32,
    /// matplotlib's font list (its file name, e.g. `fontlist-v390.json`), once the self-test
    /// has made it.
    pub font_cache: Option<(i32, String)>,
}

impl Inputs {
    /// The fds in the order the child gets them (3, 4, ...).
    fn ordered(&self) -> Vec<i32> {
        let mut fds = self.seccomp.to_vec();
        fds.push(self.driver);
        fds.push(self.info);
        if let Some((fd, _)) = &self.font_cache {
            fds.push(*fd);
        }
        fds
    }
}

/// Read-only `/etc` entries, bound when the host has them: the dynamic loader's cache, the
/// BLAS/LAPACK alternatives numpy loads through, fonts and matplotlib's Debian config, and
/// the time zone.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/fonts",
    "/etc/matplotlibrc",
    "/etc/localtime",
];

/// The environment inside: nothing of ours.
const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("HOME", "/tmp"),
    ("LANG", "C.UTF-8"),
    ("MPLBACKEND", "Agg"),
    ("MPLCONFIGDIR", "/tmp/matplotlib"),
];

/// Builds the command. bwrap itself starts with an empty environment: its PID-namespace
/// init is visible inside, `/proc/1/environ` included.
pub fn command(
    cfg: &LocalConfig,
    inputs: &Inputs,
    drop_to: Option<(u32, u32)>,
    cgroup_procs: Vec<std::ffi::CString>,
) -> Command {
    let mut cmd = Command::new(&cfg.bwrap);
    // Its own name only: bwrap's command line is visible inside (its PID-namespace init).
    cmd.as_std_mut().arg0("bwrap");
    // Not our working directory, which the sandbox user may not be allowed to enter.
    cmd.current_dir("/");
    cmd.env_clear();
    cmd.args([
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]);
    for (k, v) in ENV {
        cmd.args(["--setenv", k, v]);
    }
    cmd.args(["--ro-bind", "/usr", "/usr", "--tmpfs", "/usr/local"]);
    for (link, target) in [
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
    ] {
        cmd.args(["--symlink", target, link]);
    }
    for path in ETC_FILES {
        cmd.args(["--ro-bind-try", path, path]);
    }
    // The child's fd numbers: the seccomp filters 3-5, the driver 6, the info pipe 7, the
    // font list 8.
    cmd.args(["--ro-bind-data", "6", DRIVER_INSIDE]);
    if let Some((_, name)) = &inputs.font_cache {
        cmd.args(["--ro-bind-data", "8"])
            .arg(format!("{MPL_CACHE_INSIDE}/{name}"));
    }
    cmd.args(["--proc", "/proc", "--dev", "/dev"]);
    cmd.arg("--size")
        .arg(cfg.tmp_bytes.to_string())
        .args(["--tmpfs", "/tmp"]);
    cmd.arg("--size")
        .arg(cfg.disk_bytes.to_string())
        .args(["--tmpfs", "/mnt/data"]);
    cmd.args(["--chdir", "/mnt/data", "--info-fd", "7"]);
    for fd in 3..6 {
        cmd.args(["--add-seccomp-fd", &fd.to_string()]);
    }
    cmd.arg("--").arg(&cfg.python);
    // -I: no PYTHON* variables, no user site, no script directory on sys.path; -B: nothing to
    // write bytecode to; -u: output reaches the log pipe as it is written.
    cmd.args(["-I", "-B", "-u", DRIVER_INSIDE]);
    cmd.arg(cfg.max_processes.to_string());

    let limits = Limits {
        address_space: cfg.memory_bytes,
        cpu_seconds: cfg.cpu_seconds,
        file_size: cfg.max_file_bytes,
    };
    let fds = inputs.ordered();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (fcntl, dup2, setrlimit, open, write, close, setpgid,
    // setgroups, setgid, setuid); it allocates nothing (the fd list and the paths were made
    // before the fork).
    unsafe {
        cmd.pre_exec(move || limits.apply(&fds, &cgroup_procs, drop_to));
    }
    cmd
}

#[derive(Clone, Copy)]
struct Limits {
    address_space: u64,
    cpu_seconds: u64,
    file_size: u64,
}

impl Limits {
    /// In the child: the inputs onto fds 3 and up, rlimits, the session's control groups, a
    /// process group of its own, and (when we are root) the sandbox user. RLIMIT_NPROC is set
    /// later by the driver, from inside the sandbox's user namespace (see driver.py).
    fn apply(
        self,
        fds: &[i32],
        cgroup_procs: &[std::ffi::CString],
        drop_to: Option<(u32, u32)>,
    ) -> std::io::Result<()> {
        let check = |rc: libc::c_int| {
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(rc)
            }
        };
        // SAFETY: plain syscalls on integers and static pointers.
        unsafe {
            // Move the fds out of the way first: a source may sit on a target number. (A
            // fixed array: no allocation after fork.)
            let mut high = [0; 8];
            for (slot, fd) in high.iter_mut().zip(fds) {
                *slot = check(libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 64))?;
            }
            let count = fds.len().min(high.len());
            for (target, fd) in (3..).zip(&high[..count]) {
                check(libc::dup2(*fd, target))?;
            }
            // Nothing else we hold goes in: descriptors this process inherited without
            // close-on-exec (from a supervisor, a shell) would otherwise reach the sandbox.
            let first = 3 + count as libc::c_uint;
            if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) < 0 {
                // Before Linux 5.9.
                for fd in first..65536 {
                    libc::close(fd as i32);
                }
            }
            let set = |resource, soft: u64, hard: u64| {
                let lim = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                check(libc::setrlimit(resource, &lim))
            };
            set(libc::RLIMIT_AS, self.address_space, self.address_space)?;
            // SIGXCPU at the soft limit, SIGKILL a few seconds later.
            set(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5)?;
            set(libc::RLIMIT_FSIZE, self.file_size, self.file_size)?;
            set(libc::RLIMIT_NOFILE, 1024, 1024)?;
            set(libc::RLIMIT_CORE, 0, 0)?;
            // Writing 0 to cgroup.procs moves the writer; while we are still root.
            for procs in cgroup_procs {
                let fd = check(libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            check(libc::setpgid(0, 0))?;
            if let Some((uid, gid)) = drop_to {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
        }
        Ok(())
    }
}
