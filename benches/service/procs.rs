//! Child processes of the harness (the service, the stand-in LLM, Azurite, the baseline
//! server), their memory as /proc reports it, and the file-descriptor limit.
//!
//! Every child gets PR_SET_PDEATHSIG, so none outlives the harness, and is killed (by its
//! own pid) when its handle drops.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub struct Proc {
    pub child: Child,
    /// Lines of its log that are warnings or errors.
    pub warnings: Arc<AtomicU64>,
    /// The first few of them.
    pub warning_lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn mem(&self) -> Mem {
        mem_of(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first (graceful), SIGKILL after 3 s.
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    unsafe {
        cmd.pre_exec(|| {
            // Die with the harness.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Raises the soft file-descriptor limit to the hard one (children inherit it); returns it.
pub fn raise_nofile() -> u64 {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let want = lim.rlim_max.min(1 << 20);
        if lim.rlim_cur < want {
            lim.rlim_cur = want;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
}

impl Mem {
    pub fn rss_mb(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }
    pub fn hwm_mb(&self) -> f64 {
        self.hwm_kb as f64 / 1024.0
    }
}

pub fn mem_of(pid: u32) -> Mem {
    let mut m = Mem::default();
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in s.lines() {
            let num = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                m.rss_kb = num(line);
            } else if line.starts_with("VmHWM:") {
                m.hwm_kb = num(line);
            } else if line.starts_with("Threads:") {
                m.threads = num(line);
            }
        }
    }
    m
}

/// Resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
pub fn reset_hwm(pid: u32) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/clear_refs"))
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// Reads the child's `stream` line by line on a thread: sends the first line that contains
/// `marker` (what follows it) on the channel, copies every line to `log`, counts warnings.
fn watch<R: std::io::Read + Send + 'static>(
    stream: R,
    marker: &'static str,
    log: Option<PathBuf>,
    warnings: Arc<AtomicU64>,
    warning_lines: Arc<std::sync::Mutex<Vec<String>>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut file = log.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let mut sent = false;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(i) = line.find(marker) {
                    let _ = tx.send(line[i + marker.len()..].to_string());
                    sent = true;
                }
            }
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                warnings.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut lines) = warning_lines.lock() {
                    if lines.len() < 5 {
                        lines.push(line.clone());
                    }
                }
            }
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    });
    rx
}

/// `http://127.0.0.1:PORT/...` (or `127.0.0.1:PORT...`) to an address.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let t = text.trim().trim_start_matches("http://");
    let end = t.find(['/', ' ']).unwrap_or(t.len());
    t[..end].parse().ok()
}

/// Starts the service with `env` (on top of a cleared-down environment: PATH, HOME kept)
/// and waits until it says where it listens. Returns it, its address and when exec began.
pub fn start_service(
    bin: &Path,
    env: &[(String, String)],
    log: Option<PathBuf>,
) -> Result<(Proc, SocketAddr, Instant), String> {
    let mut cmd = command(bin);
    cmd.env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
    let warnings = Arc::new(AtomicU64::new(0));
    let warning_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("piped");
    let rx = watch(
        stderr,
        "serving the Assistants API at ",
        log.clone(),
        warnings.clone(),
        warning_lines.clone(),
    );
    let proc = Proc {
        child,
        warnings,
        warning_lines,
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the service did not report its address within 20 s".to_string())?;
    let addr = parse_addr(&line).ok_or_else(|| format!("cannot parse address from {line:?}"))?;
    Ok((proc, addr, started))
}

/// The baseline server: this harness binary re-run with `--baseline-server`.
pub fn start_baseline(log: Option<PathBuf>) -> Result<(Proc, SocketAddr, Instant), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = command(&exe);
    cmd.arg("--baseline-server")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let warnings = Arc::new(AtomicU64::new(0));
    let warning_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rx = watch(
        child.stderr.take().expect("piped"),
        "baseline listening on ",
        log.clone(),
        warnings.clone(),
        warning_lines.clone(),
    );
    let proc = Proc {
        child,
        warnings,
        warning_lines,
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the baseline server did not start".to_string())?;
    let addr = parse_addr(&line).ok_or("baseline address")?;
    Ok((proc, addr, started))
}

/// The stand-in LLM: this harness binary re-run with `--standin`, which serves as
/// `llm-standin 0` does; returns it and its address.
pub fn start_standin(env: &[(String, String)]) -> Result<(Proc, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = command(&exe);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.arg("--standin")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", exe.display()))?;
    let warnings = Arc::new(AtomicU64::new(0));
    let warning_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rx = watch(
        child.stdout.take().expect("piped"),
        "listening on ",
        None,
        warnings.clone(),
        warning_lines.clone(),
    );
    let proc = Proc {
        child,
        warnings,
        warning_lines,
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the stand-in did not start".to_string())?;
    let addr = parse_addr(&line).ok_or("stand-in address")?;
    Ok((proc, addr))
}

pub struct Azurite {
    /// Held for its lifetime: dropping it stops Azurite.
    pub _proc: Proc,
    pub blob: SocketAddr,
    pub queue: SocketAddr,
    /// Azurite's working directory, removed when dropped.
    pub _dir: tempfile::TempDir,
}

fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Azurite as `scripts/azurite.sh` starts it (in memory, loopback, free ports).
pub fn start_azurite(repo: &Path) -> Result<Azurite, String> {
    let bin = repo.join("node_modules/.bin/azurite");
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `npm ci` in {} first",
            bin.display(),
            repo.display()
        ));
    }
    let ports = free_ports(3).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let log = dir.path().join("azurite.log");
    let mut cmd = command(&bin);
    cmd.current_dir(dir.path())
        .args([
            "--silent",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
        ])
        .args(["--blobPort", &ports[0].to_string()])
        .args(["--queuePort", &ports[1].to_string()])
        .args(["--tablePort", &ports[2].to_string()])
        .stdin(Stdio::null());
    match std::fs::File::create(&log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((out, err)) => cmd.stdout(out).stderr(err),
        Err(_) => cmd.stdout(Stdio::null()).stderr(Stdio::null()),
    };
    let child = cmd.spawn().map_err(|e| format!("azurite: {e}"))?;
    let mut proc = Proc {
        child,
        warnings: Arc::new(AtomicU64::new(0)),
        warning_lines: Arc::new(std::sync::Mutex::new(Vec::new())),
    };
    let blob = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let queue = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open =
            |a: &SocketAddr| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok();
        if open(&blob) && open(&queue) {
            break;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("azurite exited during start-up: {status}\n{text}"));
        }
        if Instant::now() > deadline {
            return Err("azurite did not open its ports within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Azurite {
        _proc: proc,
        blob,
        queue,
        _dir: dir,
    })
}

/// The CPU model, core count, memory and load, for the report.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_kb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    serde_json::json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "mem_total_gib": (mem_total_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
