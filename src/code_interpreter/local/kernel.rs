//! One running driver: the sandboxed process and the protocol with it (see driver.py).
//!
//! Two reader tasks own the pipes, so waiting in `select!` never loses half a line: replies
//! (stdout, JSON lines) and logs (stderr, the user's interleaved output) arrive on channels.
//! A cell's output ends at a random marker the driver writes to the log pipe just before its
//! reply, so everything the cell printed is in its logs, and nothing of the next cell.

use super::super::session::hex;
use super::super::{CellError, CellOutput, ExecError};
use super::cgroup::SessionCgroup;
use super::sandbox::{self, Paths};
use super::LocalConfig;
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
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

impl Kernel {
    pub async fn start(
        cfg: &LocalConfig,
        paths: &Paths<'_>,
        drop_to: Option<(u32, u32)>,
        cgroup: SessionCgroup,
    ) -> Result<Kernel, ExecError> {
        let mut filters = Vec::with_capacity(3);
        for path in paths.seccomp {
            filters.push(std::fs::File::open(path).map_err(|e| {
                ExecError::Unavailable(format!("seccomp filter {}: {e}", path.display()))
            })?);
        }
        let fds = [
            filters[0].as_raw_fd(),
            filters[1].as_raw_fd(),
            filters[2].as_raw_fd(),
        ];
        let mut cmd = sandbox::command(cfg, paths, fds, drop_to, cgroup.procs.clone());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                cgroup.remove().await;
                return Err(ExecError::Unavailable(format!(
                    "cannot run {}: {e}",
                    cfg.bwrap.display()
                )));
            }
        };
        drop(filters);
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
        };
        let ready = timeout(START_TIMEOUT, kernel.replies.recv()).await;
        let ok = matches!(
            &ready,
            Ok(Some(Ok(line))) if serde_json::from_slice::<Ready>(line).is_ok_and(|r| r.ready)
        );
        if ok {
            return Ok(kernel);
        }
        // bwrap's own complaint ("Creating new namespace failed", a missing path) is on the
        // log pipe.
        let mut said = Vec::new();
        while let Ok(Some(chunk)) = timeout(Duration::from_millis(500), kernel.logs.recv()).await {
            said.extend_from_slice(&chunk);
            if said.len() > 4096 {
                break;
            }
        }
        kernel.kill().await;
        let said = String::from_utf8_lossy(&said);
        Err(ExecError::Unavailable(format!(
            "the sandbox did not start{}",
            if said.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", said.trim())
            }
        )))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
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
        let (logs, logs_truncated) = log.finish();
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
