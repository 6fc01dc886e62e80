//! The bubblewrap command line for one session, and what the child does between fork and
//! exec (rlimits, dropping root, the seccomp fds).
//!
//! What the sandbox sees: `/usr` read-only (with `/usr/local` hidden: host-installed tools
//! and packages are not part of the Debian Python), the few `/etc` files Python, fonts and
//! the BLAS alternatives need, the driver and the matplotlib font cache read-only under
//! `/opt/ci`, a private `/proc` and `/dev`, a size-capped `/tmp`, and the session's own
//! directory as `/mnt/data`. Nothing else of the host: not DATA_DIR, not `/etc/passwd`, not
//! the service's environment (`--clearenv`, and bwrap itself starts with an empty one).
//! Every namespace is new (no network but a loopback of its own; its own PIDs), user
//! namespaces cannot be nested, all capabilities are dropped, and the child dies with us.

use super::LocalConfig;
use std::path::Path;
use tokio::process::Command;

/// Where the runtime files appear inside.
pub const DRIVER_INSIDE: &str = "/opt/ci/driver.py";
pub const MPL_CACHE_INSIDE: &str = "/opt/ci/mpl";

/// Host paths a session is built from.
pub struct Paths<'a> {
    pub session_dir: &'a Path,
    pub driver: &'a Path,
    pub mpl_cache: &'a Path,
    /// The three seccomp filter files (`seccomp::filters`).
    pub seccomp: [&'a Path; 3],
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
    paths: &Paths<'_>,
    seccomp_fds: [i32; 3],
    drop_to: Option<(u32, u32)>,
    cgroup_procs: Vec<std::ffi::CString>,
) -> Command {
    let mut cmd = Command::new(&cfg.bwrap);
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
    cmd.arg("--ro-bind").arg(paths.driver).arg(DRIVER_INSIDE);
    cmd.arg("--ro-bind")
        .arg(paths.mpl_cache)
        .arg(MPL_CACHE_INSIDE);
    cmd.args(["--proc", "/proc", "--dev", "/dev"]);
    cmd.arg("--size")
        .arg(cfg.tmp_bytes.to_string())
        .args(["--tmpfs", "/tmp"]);
    cmd.arg("--bind").arg(paths.session_dir).arg("/mnt/data");
    cmd.args(["--chdir", "/mnt/data"]);
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
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (fcntl, dup2, setrlimit, open, write, close, setpgid,
    // setgroups, setgid, setuid); it allocates nothing (the paths were made before the fork).
    unsafe {
        cmd.pre_exec(move || limits.apply(seccomp_fds, &cgroup_procs, drop_to));
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
    /// In the child: the seccomp files onto fds 3-5, rlimits, the session's control groups, a
    /// process group of its own, and (when we are root) the sandbox user. RLIMIT_NPROC is set
    /// later by the driver, from inside the sandbox's user namespace (see driver.py).
    fn apply(
        self,
        seccomp_fds: [i32; 3],
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
            // Move the filter fds out of the way first: a source may sit on a target number.
            let mut high = [0; 3];
            for (slot, fd) in high.iter_mut().zip(seccomp_fds) {
                *slot = check(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10))?;
            }
            for (target, fd) in (3..).zip(high) {
                check(libc::dup2(fd, target))?;
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
