//! The start-up self-test: a probe session that tries what a hostile cell would, and must
//! fail at all of it, on this machine, with this kernel and these settings. The tool is
//! enabled only when every check holds.
//!
//! It also warms matplotlib's font list (seconds of work per session otherwise) and keeps
//! it (in memory) for every later session.

use super::super::{ExecError, SelfTestReport};
use super::Inner;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PROBE: &str = r#"
import ctypes, json, os, shutil, socket, glob
r = {}
def attempt(f):
    try:
        return "ok:%s" % (f(),)
    except BaseException as e:
        return "err:%s:%s" % (type(e).__name__, getattr(e, "errno", ""))
r["tcp_host_loopback"] = attempt(lambda: socket.create_connection(("127.0.0.1", __PORT__), timeout=3).close())
r["inet_socket"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
r["inet6_socket"] = attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
r["netlink_socket"] = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close())
with open("/proc/net/dev") as f:
    r["interfaces"] = sorted(l.split(":")[0].strip() for l in f.read().splitlines()[2:])
paths = __PATHS__
r["visible_paths"] = [p for p in paths if os.path.lexists(p)]
named = ""
for p in ["/proc/self/mountinfo", "/proc/1/cmdline", "/proc/self/cmdline", "/proc/self/cgroup"]:
    with open(p, "rb") as f:
        named += f.read().replace(b"\0", b" ").decode("utf-8", "replace") + "\n"
r["named_paths"] = [p for p in paths if p in named]
st = os.statvfs("/mnt/data")
r["mnt_data_bytes"] = st.f_blocks * st.f_frsize
import hashlib
deliberate = __DELIBERATE__
entries = set("%s=%s" % kv for kv in os.environ.items())
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                entries.update(e.decode("utf-8", "replace") for e in f.read().split(b"\0") if e)
        except OSError:
            pass
r["env_names"] = sorted(os.environ)
r["env_hashes"] = sorted(hashlib.sha256(e.encode()).hexdigest() for e in entries
                         if e.split("=", 1)[0] not in deliberate)
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.ptrace(0, 0, 0, 0)
r["ptrace"] = [rc, ctypes.get_errno()]
rc = libc.unshare(0x10000000)
r["unshare_user"] = [rc, ctypes.get_errno()]
with open("/proc/self/status") as f:
    status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
r["seccomp"] = status.get("Seccomp", "").strip()
r["cap_eff"] = status.get("CapEff", "").strip()
r["uid"] = os.getuid()
import numpy, pandas, matplotlib
import matplotlib.pyplot as plt
r["versions"] = "Python %s, numpy %s, pandas %s, matplotlib %s" % (
    __import__("platform").python_version(), numpy.__version__, pandas.__version__, matplotlib.__version__)
for f in glob.glob(os.path.join(matplotlib.get_cachedir(), "fontlist-*.json")):
    shutil.copyfile(f, os.path.join("/mnt/data", os.path.basename(f)))
# A process left behind by a cell that also switched off the driver's own clean-up: the
# host must end it (STRAYS checks that).
import subprocess, sys
sys._getframe(1).f_globals["_end_strays"] = lambda: None
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(json.dumps(r))
"#;

/// Run after PROBE: the processes left inside (zombies aside), which must be the
/// namespace's init and the driver only.
const STRAYS: &str = r#"
import os
def live(p):
    try:
        with open("/proc/%s/stat" % p) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and live(p))
"#;

/// Variables the sandbox is given on purpose (sandbox.rs; bwrap sets PWD for `--chdir`).
const DELIBERATE_ENV: [&str; 6] = ["PATH", "HOME", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "PWD"];

#[derive(Deserialize)]
struct Findings {
    tcp_host_loopback: String,
    inet_socket: String,
    inet6_socket: String,
    netlink_socket: String,
    interfaces: Vec<String>,
    visible_paths: Vec<String>,
    named_paths: Vec<String>,
    mnt_data_bytes: u64,
    env_names: Vec<String>,
    env_hashes: Vec<String>,
    ptrace: (i64, i64),
    unshare_user: (i64, i64),
    seccomp: String,
    cap_eff: String,
    uid: u32,
    versions: String,
}

/// Paths that exist inside by design, so a protected path under one of them cannot be
/// checked: host content bound read-only (`/usr` but not `/usr/local`, a few `/etc` files),
/// and the sandbox's own mounts. Under `/tmp` (a fresh tmpfs inside) only what the driver
/// makes there is excluded, so a DATA_DIR under /tmp is still checked.
fn visible_by_design(path: &Path) -> bool {
    const INSIDE: &[&str] = &[
        "/usr",
        "/proc",
        "/dev",
        "/mnt/data",
        "/opt/ci",
        "/etc/alternatives",
        "/etc/fonts",
        "/etc/matplotlibrc",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/lib",
        "/lib64",
        "/bin",
        "/sbin",
        "/tmp/matplotlib",
    ];
    if path.starts_with("/usr/local") {
        return false;
    }
    path == Path::new("/")
        || path == Path::new("/tmp")
        || path == Path::new("/mnt")
        || path == Path::new("/etc")
        || path == Path::new("/opt")
        || INSIDE.iter().any(|p| path.starts_with(p))
}

pub async fn run(inner: &Arc<Inner>) -> Result<SelfTestReport, ExecError> {
    let fail = |m: String| ExecError::Unavailable(m);
    // A host file the sandbox must not see: in DATA_DIR, beside (not in) its objects (the
    // last protected path: setup.rs lists DATA_DIR after its objects), or in the temporary
    // directory when there is no DATA_DIR yet.
    let canary = super::super::session::hex(&rand::random::<[u8; 16]>());
    let canary_dir = inner
        .cfg
        .protected_paths
        .iter()
        .rev()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(std::env::temp_dir);
    let canary_file = canary_dir.join(format!(".code-interpreter-canary-{canary}"));
    std::fs::write(&canary_file, b"secret").map_err(|e| {
        fail(format!(
            "cannot write a canary file in {}: {e}",
            canary_dir.display()
        ))
    })?;
    let canary_file = canary_file.canonicalize().unwrap_or(canary_file);

    let mut paths: Vec<PathBuf> = vec![
        canary_file.clone(),
        PathBuf::from("/etc/shadow"),
        PathBuf::from("/etc/passwd"),
        PathBuf::from("/root"),
        PathBuf::from("/home"),
        PathBuf::from("/usr/local/bin"),
    ];
    paths.extend(inner.cfg.protected_paths.iter().cloned());
    if let Ok(cwd) = std::env::current_dir() {
        paths.push(cwd);
    }
    let paths: Vec<String> = paths
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .filter(|p| !visible_by_design(p))
        .filter_map(|p| p.to_str().map(str::to_string))
        .collect();

    // A listener on the host's loopback: a sandbox sharing our network would reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(format!("loopback listener: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let accept_task = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let code = PROBE
        .replace("__PORT__", &port.to_string())
        .replace(
            "__PATHS__",
            &serde_json::to_string(&paths).unwrap_or_default(),
        )
        .replace(
            "__DELIBERATE__",
            &serde_json::to_string(&DELIBERATE_ENV).unwrap_or_default(),
        );
    let outcome = async {
        let mut kernel = inner.spawn().await?;
        let out = kernel
            .run_cell(&code, 1, Duration::from_secs(90), 1 << 20)
            .await;
        let stopped = driver_stopped(&kernel).await;
        let strays = match out {
            Ok(_) => kernel
                .run_cell(STRAYS, 2, Duration::from_secs(30), 1 << 20)
                .await
                .ok()
                .and_then(|o| o.result),
            Err(_) => None,
        };
        if let Some(data) = kernel.data() {
            keep_font_cache(&data, inner);
        }
        kernel.kill().await;
        match out {
            Ok(out) => Ok((out, stopped, strays)),
            Err(_) => Err(fail("the probe did not finish".into())),
        }
    }
    .await;
    accept_task.abort();
    let _ = std::fs::remove_file(&canary_file);
    let (output, stopped, strays) = outcome?;

    if let Some(error) = &output.error {
        return Err(fail(format!(
            "the probe raised {}: {} (are python3-numpy, python3-pandas and python3-matplotlib installed?)",
            error.name, error.message
        )));
    }
    let line = output.logs.lines().last().unwrap_or_default();
    let f: Findings = serde_json::from_str(line)
        .map_err(|e| fail(format!("unreadable probe output ({e}): {}", output.logs)))?;

    let mut checks = Vec::new();
    let mut require = |ok: bool, what: &str, detail: String| {
        if ok {
            checks.push(what.to_string());
            Ok(())
        } else {
            Err(fail(format!("{what}: {detail}")))
        }
    };
    let connections = accepted.load(Ordering::SeqCst);
    require(
        f.tcp_host_loopback.starts_with("err:") && connections == 0,
        "no connection to the host's loopback",
        format!("{} ({connections} accepted)", f.tcp_host_loopback),
    )?;
    let eafnosupport = format!("err:OSError:{}", libc::EAFNOSUPPORT);
    require(
        f.inet_socket == eafnosupport
            && f.inet6_socket == eafnosupport
            && f.netlink_socket == eafnosupport,
        "no IP or netlink sockets (seccomp)",
        format!(
            "{} / {} / {}",
            f.inet_socket, f.inet6_socket, f.netlink_socket
        ),
    )?;
    require(
        f.interfaces == ["lo"],
        "a network namespace with only its own loopback",
        format!("{:?}", f.interfaces),
    )?;
    require(
        f.visible_paths.is_empty(),
        "host files invisible (DATA_DIR, /etc/shadow, /etc/passwd, /root, the working directory)",
        format!("visible: {:?}", f.visible_paths),
    )?;
    require(
        f.named_paths.is_empty(),
        "no host path named inside (mount table, command lines)",
        format!("named: {:?}", f.named_paths),
    )?;
    require(
        f.mnt_data_bytes > 0 && f.mnt_data_bytes <= inner.cfg.disk_bytes,
        "/mnt/data is a tmpfs of the session's disk quota",
        format!(
            "{} bytes (quota {})",
            f.mnt_data_bytes, inner.cfg.disk_bytes
        ),
    )?;
    require(
        stopped && strays.as_deref() == Some("[1, 2]"),
        "nothing of a session runs between its cells (the host ends what a cell left behind)",
        format!("driver stopped: {stopped}; processes inside: {strays:?}"),
    )?;
    require(
        paths.contains(&canary_file.to_string_lossy().into_owned()),
        "the canary file was among the paths checked",
        format!(
            "{} is in a place the sandbox shows by design",
            canary_file.display()
        ),
    )?;
    // The sandbox reports hashes of every `NAME=value` it can see (its own environment and
    // every /proc/N/environ), so the check needs no secret to enter it.
    let ours: HashSet<String> = std::env::vars_os()
        .map(|(k, v)| {
            let entry = format!("{}={}", k.to_string_lossy(), v.to_string_lossy());
            super::super::session::hex(&Sha256::digest(entry.as_bytes()))
        })
        .collect();
    let leaked = f.env_hashes.iter().filter(|h| ours.contains(*h)).count();
    let foreign: Vec<&String> = f
        .env_names
        .iter()
        .filter(|n| !DELIBERATE_ENV.contains(&n.as_str()) && n.as_str() != "LC_CTYPE")
        .collect();
    require(
        leaked == 0 && foreign.is_empty(),
        "no variable of the service's environment inside",
        format!("{leaked} of the service's variables visible; unexpected names {foreign:?}"),
    )?;
    require(
        f.seccomp == "2" && f.ptrace == (-1, libc::EPERM as i64),
        "seccomp filter active (ptrace denied)",
        format!("Seccomp {} ptrace {:?}", f.seccomp, f.ptrace),
    )?;
    require(
        f.unshare_user.0 == -1,
        "no new user namespaces",
        format!("{:?}", f.unshare_user),
    )?;
    require(
        f.cap_eff.trim_start_matches('0').is_empty() && f.uid != 0,
        "no capabilities, not root",
        format!("CapEff {} uid {}", f.cap_eff, f.uid),
    )?;
    // Not a condition: without a writable cgroup, memory is bounded per process only.
    let groups = inner.cgroups.describe();
    checks.push(if groups.is_empty() {
        "no writable cgroup: memory is limited per process (RLIMIT_AS), not per session".into()
    } else {
        format!("per-session cgroup limits: {}", groups.join(", "))
    });
    Ok(SelfTestReport {
        checks,
        versions: f.versions,
    })
}

/// Whether the session's driver is stopped (between cells it must be), waiting a moment for
/// the signal to land.
async fn driver_stopped(kernel: &super::Kernel) -> bool {
    let Some(pid) = kernel.driver_pid() else {
        return false;
    };
    for _ in 0..50 {
        if super::procs::state_and_parent(pid).is_some_and(|(s, _)| s == 'T' || s == 't') {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Keeps the probe's matplotlib font list for later sessions (the driver copies it in).
fn keep_font_cache(data: &std::os::fd::OwnedFd, inner: &Inner) {
    let Ok(files) = super::files::list(data) else {
        return;
    };
    for file in files {
        let name = &file.path;
        if !(name.starts_with("fontlist-") && name.ends_with(".json")) || name.contains('/') {
            continue;
        }
        if let Ok(bytes) = super::files::read(data, name, 16 << 20) {
            *inner
                .runtime
                .font_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((name.clone(), bytes));
        }
    }
}
