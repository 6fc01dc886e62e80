//! One running driver: the sandboxed process and the protocol with it (see driver.py).
//!
//! Two reader tasks own the pipes, so waiting in `select!` never loses half a line: replies
//! (stdout, JSON lines) and logs (stderr, the user's interleaved output) arrive on channels.
//! A cell's output ends at a random marker the driver writes to the log pipe just before its
//! reply, so everything the cell printed is in its logs, and nothing of the next cell.
//!
//! Between cells the session does not run at all: the driver is stopped (SIGSTOP) and every
//! other process of the sandbox's PID namespace is killed from here (`procs`), whatever the
//! cell did to the driver's own clean-up; the next cell continues the driver (SIGCONT).
//! Threads a cell started inside the driver stop with it.

use super::super::session::hex;
use super::super::{CellError, CellOutput, ExecError};
use super::cgroup::SessionCgroup;
use super::procs::{self, Pidfd};
use super::sandbox;
use super::{LocalConfig, Runtime};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

/// How long after its limit a cell that ignores the in-Python timeout is killed.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for the end-of-cell marker after the reply (only a cell that redirected
/// the log pipe can make it go missing).
const MARKER_GRACE: Duration = Duration::from_millis(1500);
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the host keeps killing what a cell left behind before it ends the session.
const STRAYS_DEADLINE: Duration = Duration::from_secs(2);
/// A reply carries base64 images; beyond this the driver is misbehaving.
const MAX_REPLY_BYTES: usize = 64 << 20;
const MAX_IMAGES: usize = 16;

pub struct Kernel {
    child: Child,
    requests: ChildStdin,
    replies: mpsc::Receiver<Result<Vec<u8>, String>>,
    logs: mpsc::Receiver<Vec<u8>>,
    logs_open: bool,
    /// Output that arrived after the previous cell's marker (a background thread, say).
    pending: Vec<u8>,
    /// The session's control groups, removed once its processes are gone.
    cgroup: SessionCgroup,
    /// The sandbox seen from the host, known once the driver said it is ready (always there
    /// on a `Kernel` that `start` returned).
    inside: Option<Inside>,
}

/// What the host holds of a running sandbox.
struct Inside {
    /// Host pid of the namespace's init (bwrap's), which no code inside can stop or kill.
    init: u32,
    /// The sandbox's PID namespace: every process in it is the session's.
    pid_ns: u64,
    driver: Pidfd,
    /// The sandbox's `/mnt/data` (a tmpfs inside it), opened before any cell ran: the host
    /// reads and writes session files relative to this fd only.
    data: Arc<OwnedFd>,
}

pub enum CellFailure {
    /// The cell overran its limit and the grace period.
    Timeout,
    /// The process died or broke the protocol; the reason is for the model and the logs.
    Lost(String),
}

#[derive(Deserialize)]
struct Reply {
    result: Option<String>,
    error: Option<WireError>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    marker_written: bool,
}

#[derive(Deserialize)]
struct WireError {
    name: String,
    message: String,
    traceback: String,
}

#[derive(Deserialize)]
struct Ready {
    ready: bool,
}

/// What bwrap writes to `--info-fd`.
#[derive(Deserialize)]
struct Info {
    #[serde(rename = "child-pid")]
    child_pid: u32,
    #[serde(rename = "pid-namespace")]
    pid_namespace: u64,
}

fn pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just made and are owned by nobody else.
    unsafe {
        Ok((
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

impl Kernel {
    /// Starts a sandbox and waits until its driver is ready; then, before any cell runs,
    /// opens its `/mnt/data` for the host's file access, finds the driver among the
    /// namespace's processes and stops it.
    pub async fn start(
        cfg: &LocalConfig,
        runtime: &Runtime,
        drop_to: Option<(u32, u32)>,
        cgroup: SessionCgroup,
    ) -> Result<Kernel, ExecError> {
        let unavailable = |what: &str, e: std::io::Error| {
            ExecError::Unavailable(format!("cannot prepare the sandbox's {what}: {e}"))
        };
        // The runtime files go in as descriptors (bwrap copies them): no host path of ours
        // needs to be reachable by the sandbox user.
        let mut filters = Vec::with_capacity(3);
        for (i, filter) in runtime.seccomp.iter().enumerate() {
            filters.push(
                procs::memfd(&format!("seccomp-{i}"), filter)
                    .map_err(|e| unavailable("seccomp filter", e))?,
            );
        }
        let driver = procs::memfd("driver.py", runtime.driver.as_bytes())
            .map_err(|e| unavailable("driver", e))?;
        let font = match runtime.font_cache() {
            Some((name, bytes)) => Some((
                procs::memfd(&name, &bytes).map_err(|e| unavailable("font cache", e))?,
                name,
            )),
            None => None,
        };
        let (info_read, info_write) = pipe().map_err(|e| unavailable("info pipe", e))?;
        let inputs = sandbox::Inputs {
            seccomp: [
                filters[0].as_raw_fd(),
                filters[1].as_raw_fd(),
                filters[2].as_raw_fd(),
            ],
            driver: driver.as_raw_fd(),
            info: info_write.as_raw_fd(),
            font_cache: font.as_ref().map(|(f, n)| (f.as_raw_fd(), n.clone())),
        };
        let mut cmd = sandbox::command(cfg, &inputs, drop_to, cgroup.procs.clone());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = cmd.spawn();
        // Only bwrap holds the info pipe's write end now: the pipe ends when bwrap has
        // written to it (or is gone).
        drop((filters, driver, font, info_write));
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                cgroup.remove().await;
                return Err(ExecError::Unavailable(format!(
                    "cannot run {}: {e}",
                    cfg.bwrap.display()
                )));
            }
        };
        let (Some(requests), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExecError::Unavailable(
                "the sandbox's pipes are missing".into(),
            ));
        };

        let (reply_tx, replies) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(1 << 16, stdout);
            loop {
                let item = match read_line_limited(&mut reader, MAX_REPLY_BYTES).await {
                    Ok(Some(line)) => Ok(line),
                    Ok(None) => return,
                    Err(e) => Err(e.to_string()),
                };
                let failed = item.is_err();
                if reply_tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let (log_tx, logs) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if log_tx.send(buf[..n].to_vec()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });

        let mut kernel = Kernel {
            child,
            requests,
            replies,
            logs,
            logs_open: true,
            pending: Vec::new(),
            cgroup,
            inside: None,
        };
        let ready = timeout(START_TIMEOUT, kernel.replies.recv()).await;
        let ok = matches!(
            &ready,
            Ok(Some(Ok(line))) if serde_json::from_slice::<Ready>(line).is_ok_and(|r| r.ready)
        );
        if !ok {
            // bwrap's own complaint ("Creating new namespace failed", a missing path) is on
            // the log pipe.
            let mut said = Vec::new();
            while let Ok(Some(chunk)) =
                timeout(Duration::from_millis(500), kernel.logs.recv()).await
            {
                said.extend_from_slice(&chunk);
                if said.len() > 4096 {
                    break;
                }
            }
            kernel.kill().await;
            let said = String::from_utf8_lossy(&said);
            return Err(ExecError::Unavailable(format!(
                "the sandbox did not start{}{}",
                if said.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", said.trim())
                },
                remedy(&said)
            )));
        }
        let attached = tokio::task::spawn_blocking(move || attach(info_read))
            .await
            .unwrap_or_else(|e| Err(format!("the start-up task failed: {e}")));
        match attached {
            Ok(inside) => {
                kernel.inside = Some(inside);
                Ok(kernel)
            }
            Err(reason) => {
                kernel.kill().await;
                Err(ExecError::Unavailable(format!(
                    "the sandbox started but cannot be managed from the host: {reason}"
                )))
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The host pid of the session's driver (tests).
    pub fn driver_pid(&self) -> Option<u32> {
        self.inside.as_ref().map(|i| i.driver.pid)
    }

    /// The sandbox's `/mnt/data`, for the host's file access.
    pub fn data(&self) -> Option<Arc<OwnedFd>> {
        self.inside.as_ref().map(|i| i.data.clone())
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the whole sandbox: bwrap's PID-namespace init dies with it (`--die-with-parent`),
    /// and the kernel then kills every process in the namespace.
    pub async fn kill(&mut self) {
        if let Some(pid) = self.child.id() {
            // The process group of bwrap (its own, from pre_exec).
            // SAFETY: kill has no memory preconditions; the child is not reaped yet (id()).
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
        }
        let _ = self.child.start_kill();
        let _ = timeout(Duration::from_secs(5), self.child.wait()).await;
        self.cgroup.remove().await;
    }

    /// Ends the time between cells: the driver stopped, everything else of the namespace
    /// killed. `false` when that could not be done (the caller ends the session).
    async fn hold(&self) -> bool {
        let Some(inside) = &self.inside else {
            return false;
        };
        if inside.driver.signal(libc::SIGSTOP).is_err() {
            return false;
        }
        let (ns, keep) = (inside.pid_ns, [inside.init, inside.driver.pid]);
        let deadline = std::time::Instant::now() + STRAYS_DEADLINE;
        let ended = tokio::task::spawn_blocking(move || procs::end_all_but(ns, &keep, deadline))
            .await
            .unwrap_or(false);
        // Again: a process killed just now may have continued the driver before it died.
        ended && inside.driver.signal(libc::SIGSTOP).is_ok()
    }

    pub async fn run_cell(
        &mut self,
        code: &str,
        cell: u64,
        limit: Duration,
        max_log_bytes: usize,
    ) -> Result<CellOutput, CellFailure> {
        // A zero interval would switch the driver's alarm off.
        let limit = limit.max(Duration::from_millis(100));
        let marker = format!("\x1e{}\x1e", hex(&rand::random::<[u8; 16]>()));
        let request = serde_json::json!({
            "code": code,
            "timeout": limit.as_secs_f64(),
            "marker": marker,
            "cell": cell,
        });
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        if let Some(inside) = &self.inside {
            if inside.driver.signal(libc::SIGCONT).is_err() {
                return Err(CellFailure::Lost(self.describe_exit("").await));
            }
        }
        let hard_deadline = Instant::now() + limit + KILL_GRACE;
        match tokio::time::timeout_at(hard_deadline, async {
            self.requests.write_all(&line).await?;
            self.requests.flush().await
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(CellFailure::Lost(self.describe_exit("").await)),
            Err(_) => return Err(CellFailure::Timeout),
        }

        let mut log = CellLog::new(max_log_bytes, marker.into_bytes());
        let leftover = std::mem::take(&mut self.pending);
        if let Some(rest) = log.push(&leftover) {
            self.pending = rest;
        }
        let mut reply: Option<Reply> = None;
        let mut marker_deadline: Option<Instant> = None;
        loop {
            if reply.is_some() && log.found {
                break;
            }
            tokio::select! {
                r = self.replies.recv(), if reply.is_none() => match r {
                    Some(Ok(bytes)) => match serde_json::from_slice::<Reply>(&bytes) {
                        Ok(r) => {
                            if !r.marker_written {
                                reply = Some(r);
                                break;
                            }
                            reply = Some(r);
                            marker_deadline = Some(Instant::now() + MARKER_GRACE);
                        }
                        Err(_) => {
                            return Err(CellFailure::Lost(
                                "the session's Python process broke its protocol".into(),
                            ))
                        }
                    },
                    Some(Err(_)) | None => {
                        let tail = log.tail(2000);
                        return Err(CellFailure::Lost(self.describe_exit(&tail).await));
                    }
                },
                chunk = self.logs.recv(), if self.logs_open && !log.found => match chunk {
                    Some(bytes) => {
                        if let Some(rest) = log.push(&bytes) {
                            self.pending = rest;
                        }
                    }
                    None => self.logs_open = false,
                },
                _ = sleep_until(marker_deadline.unwrap_or(hard_deadline)), if marker_deadline.is_some() => break,
                _ = sleep_until(hard_deadline) => return Err(CellFailure::Timeout),
            }
        }
        let Some(reply) = reply else {
            return Err(CellFailure::Lost("no reply from the session".into()));
        };
        let (mut logs, logs_truncated) = log.finish();
        if !self.hold().await {
            // Its variables must go too: the next call finds the session lost.
            self.kill().await;
            logs.push_str(
                "\n[The Python session was ended: processes this code started could not be stopped.]\n",
            );
        }
        let images = reply
            .images
            .iter()
            .take(MAX_IMAGES)
            .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(Bytes::from)
            .collect();
        Ok(CellOutput {
            logs,
            result: reply.result,
            error: reply.error.map(|e| CellError {
                name: e.name,
                message: e.message,
                traceback: e.traceback,
            }),
            images,
            files: Vec::new(),
            logs_truncated,
            duration: Duration::ZERO,
        })
    }

    /// Why the process is gone, in words for the model, with the end of its output.
    async fn describe_exit(&mut self, output_tail: &str) -> String {
        let status = timeout(Duration::from_secs(2), self.child.wait()).await;
        let what = match status {
            // bwrap exits with 128 + the signal that killed the program it ran.
            Ok(Ok(s)) => match (s.code(), s.signal()) {
                (Some(code), _) if code > 128 => signal_words(code - 128),
                (Some(code), _) => format!("the Python process exited with status {code}"),
                (None, Some(sig)) => signal_words(sig),
                (None, None) => "the Python process ended".into(),
            },
            _ => "the Python process stopped answering".into(),
        };
        if output_tail.trim().is_empty() {
            what
        } else {
            format!("{what}; its last output was:\n{}", output_tail.trim_end())
        }
    }
}

/// Finds the sandbox from the host once its driver is ready (so before any cell ran, and
/// nothing inside was planted yet): its init and PID namespace (from bwrap's `--info-fd`),
/// the driver (the init's only child), and its `/mnt/data`. Leaves the driver stopped.
fn attach(mut info: std::fs::File) -> Result<Inside, String> {
    // bwrap wrote this and closed it right after it made the namespaces, long before the
    // driver was ready; non-blocking all the same, so a bwrap that kept it open cannot
    // hang us.
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(info.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(info.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut text = Vec::new();
    let _ = (&mut info).take(64 << 10).read_to_end(&mut text);
    let info: Info = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "bwrap's --info-fd gave {:?} ({e})",
            String::from_utf8_lossy(&text)
        )
    })?;
    let (init, ns) = (info.child_pid, info.pid_namespace);
    let init_fd = Pidfd::open(init).map_err(|e| format!("the sandbox's init: {e}"))?;
    if procs::pid_namespace(init) != Some(ns) {
        return Err(format!(
            "/proc/{init}/ns/pid is not readable or not the sandbox's (is /proc mounted with hidepid?)"
        ));
    }
    let children: Vec<u32> = procs::in_namespace(ns, &[init])
        .into_iter()
        .filter(|pid| procs::state_and_parent(*pid).is_some_and(|(_, parent)| parent == init))
        .collect();
    let [driver_pid] = children[..] else {
        return Err(format!(
            "expected one process under the sandbox's init, found {children:?}"
        ));
    };
    let driver = Pidfd::open(driver_pid).map_err(|e| format!("the driver: {e}"))?;
    if procs::pid_namespace(driver_pid) != Some(ns) {
        return Err("the driver left before it could be attached".into());
    }
    let data = super::files::open_dir(std::path::Path::new(&format!("/proc/{init}/root/mnt/data")))
        .map_err(|e| format!("the sandbox's /mnt/data: {e}"))?;
    // Still the same init (its pid not reused while the path was resolved through it), and
    // the directory is the sandbox's own tmpfs.
    init_fd
        .signal(0)
        .map_err(|e| format!("the sandbox's init ended: {e}"))?;
    if !is_tmpfs(&data) {
        return Err("the sandbox's /mnt/data is not its tmpfs".into());
    }
    driver
        .signal(libc::SIGSTOP)
        .map_err(|e| format!("cannot stop the driver: {e}"))?;
    Ok(Inside {
        init,
        pid_ns: ns,
        driver,
        data: Arc::new(data),
    })
}

/// What to change, for the complaints of bwrap that a machine's set-up causes.
fn remedy(said: &str) -> &'static str {
    if said.contains("new namespace") || said.contains("setting up uid map") {
        " (this kernel does not let this user make user namespaces: allow them, e.g. \
         `sysctl kernel.unprivileged_userns_clone=1`, or on Ubuntu 24.04 \
         `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; in a container, run it \
         with user namespaces allowed, e.g. docker's `--security-opt seccomp=unconfined`)"
    } else if said.contains("Permission denied") {
        " (the sandbox runs as CODE_INTERPRETER_SANDBOX_UID when the service runs as root: \
         that uid must be able to read /usr and the /etc files it binds, or choose another \
         uid)"
    } else {
        ""
    }
}

/// Whether `fd` is on a tmpfs.
// The statfs field and the constant have different integer types on different targets.
#[allow(clippy::useless_conversion)]
fn is_tmpfs(fd: &OwnedFd) -> bool {
    // SAFETY: a zeroed statfs is a valid out-parameter; fd is open.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut fs) };
    rc == 0 && i64::from(fs.f_type) == i64::from(libc::TMPFS_MAGIC)
}

fn signal_words(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "the Python process was killed (SIGKILL)".into(),
        libc::SIGXCPU => "the Python process used up its CPU time limit".into(),
        libc::SIGSEGV => "the Python process crashed (segmentation fault)".into(),
        libc::SIGABRT => "the Python process aborted".into(),
        other => format!("the Python process was killed by signal {other}"),
    }
}

/// One cell's output: kept up to a cap, scanned for the end marker. The last
/// `marker.len() - 1` bytes are held back until more arrive, so a marker split across two
/// reads is still found and never leaks into the logs.
struct CellLog {
    kept: Vec<u8>,
    held: Vec<u8>,
    dropped: usize,
    cap: usize,
    marker: Vec<u8>,
    found: bool,
}

impl CellLog {
    fn new(cap: usize, marker: Vec<u8>) -> CellLog {
        CellLog {
            kept: Vec::new(),
            held: Vec::new(),
            dropped: 0,
            cap,
            marker,
            found: false,
        }
    }

    /// Adds output; returns what followed the marker once it is found.
    fn push(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.found || bytes.is_empty() {
            return None;
        }
        self.held.extend_from_slice(bytes);
        if let Some(pos) = find(&self.held, &self.marker) {
            let rest = self.held.split_off(pos + self.marker.len());
            self.held.truncate(pos);
            let before = std::mem::take(&mut self.held);
            self.commit(&before);
            self.found = true;
            return Some(rest);
        }
        let keep = self.marker.len().saturating_sub(1);
        if self.held.len() > keep {
            let tail = self.held.split_off(self.held.len() - keep);
            let head = std::mem::replace(&mut self.held, tail);
            self.commit(&head);
        }
        None
    }

    fn commit(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.kept.len());
        let take = room.min(bytes.len());
        self.kept.extend_from_slice(&bytes[..take]);
        self.dropped += bytes.len() - take;
    }

    fn tail(&self, chars: usize) -> String {
        let mut all = self.kept.clone();
        all.extend_from_slice(&self.held);
        let text = String::from_utf8_lossy(&all);
        let skip = text.chars().count().saturating_sub(chars);
        text.chars().skip(skip).collect()
    }

    fn finish(mut self) -> (String, bool) {
        let held = std::mem::take(&mut self.held);
        self.commit(&held);
        (
            String::from_utf8_lossy(&self.kept).into_owned(),
            self.dropped > 0,
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A line without its newline; `None` at a clean end of stream; an error beyond `max`.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "reply cut short",
                ))
            };
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            reader.consume(i + 1);
            return Ok(Some(line));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        reader.consume(n);
        if line.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "reply too long",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_across_reads_and_kept_out_of_the_logs() {
        let marker = b"\x1eabc\x1e".to_vec();
        let mut log = CellLog::new(100, marker);
        assert!(log.push(b"hello \x1ea").is_none());
        let rest = log.push(b"bc\x1etrailing").unwrap();
        assert_eq!(rest, b"trailing");
        assert!(log.found);
        assert_eq!(log.finish(), ("hello ".to_string(), false));
    }

    #[test]
    fn output_beyond_the_cap_is_dropped_but_the_marker_still_found() {
        let mut log = CellLog::new(4, b"#END#".to_vec());
        assert!(log.push(b"0123456789").is_none());
        assert_eq!(log.push(b"xx#END#").unwrap(), b"");
        assert_eq!(log.finish(), ("0123".to_string(), true));
    }
}
