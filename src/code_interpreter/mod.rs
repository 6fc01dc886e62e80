//! The `code_interpreter` tool's executors: where the Python a model writes is run.
//!
//! A run engine holds one `Arc<dyn CodeExecutor>` and one session per thread (its id is an
//! HMAC of tenant and thread, `SessionKey::session_id`). The executor is a *sandbox*: code runs
//! with no network, no host files beyond a read-only Python, only the session's own
//! `/mnt/data`, and limits on time, memory and processes. Two real implementations:
//!
//! - `local`: bubblewrap on this machine, one long-lived Python per session (the embedded
//!   default and the tests);
//! - `azure`: Azure Container Apps dynamic sessions, a code-interpreter session pool, over
//!   its REST API with a managed-identity token (production on Azure Functions).
//!
//! Children:
//! - `session`: session ids (HMAC-SHA256 of tenant and thread with a secret key);
//! - `local`: the bubblewrap executor (sandbox command line, seccomp filter, safe file access,
//!   the Python driver);
//! - `azure`: the dynamic-sessions executor and its managed-identity token source;
//! - `setup`: the executor from settings, enabled only when its self-test passes;
//! - `prompt`: the function tool offered to the model and the text of a cell's result.

pub mod azure;
pub mod local;
pub mod prompt;
pub mod session;
pub mod setup;

pub use session::{SessionId, SessionKey};
pub use setup::{CodeInterpreter, ExportLimits, SharedCodeInterpreter};

use async_trait::async_trait;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// Runs Python cells in per-thread sessions. Object-safe: held as `Arc<dyn CodeExecutor>`.
///
/// Session life: `open_session` before use (it says whether the session is new, so the caller
/// knows to upload files and, for a session it had used before, to tell the model its
/// variables are gone). `execute`, `upload`, `list_files` and `download` on a session that is
/// not open (never opened, expired, killed) fail with `SessionLost`; the caller opens it again.
/// Calls on one session are meant to come one at a time (the engine runs one run per thread);
/// concurrent `execute`s on one session wait for each other.
#[async_trait]
pub trait CodeExecutor: Send + Sync {
    /// Backend name for logs: `"local"` or `"azure"`.
    fn kind(&self) -> &'static str;

    /// Makes sure the session exists: `Created` when it had to be made (first use, or the
    /// previous one expired or was killed), `Existing` when it is the one used before.
    async fn open_session(&self, session: &SessionId) -> Result<SessionOpen, ExecError>;

    /// Runs one cell with a wall-clock limit. A cell that raises is a normal result
    /// (`CellOutput::error`); `Err` is for the executor's own faults. A cell that overruns is
    /// interrupted inside Python first (`TimeoutError` in its result; the session lives on);
    /// if it does not stop, the sandbox is killed and the answer is `Err(Timeout)`.
    async fn execute(
        &self,
        session: &SessionId,
        code: &str,
        timeout: Duration,
    ) -> Result<CellOutput, ExecError>;

    /// Writes a file into the session's `/mnt/data` (a plain name, no directories),
    /// replacing one of the same name.
    async fn upload(
        &self,
        session: &SessionId,
        name: &str,
        content: Bytes,
    ) -> Result<FileInfo, ExecError>;

    /// The regular files under `/mnt/data`, with paths relative to it.
    async fn list_files(&self, session: &SessionId) -> Result<Vec<FileInfo>, ExecError>;

    /// A file's bytes (`path` relative to `/mnt/data`, as `list_files` gives it);
    /// `FileTooLarge` beyond `max_bytes`.
    async fn download(
        &self,
        session: &SessionId,
        path: &str,
        max_bytes: u64,
    ) -> Result<Bytes, ExecError>;

    /// Ends the session and deletes its files. Ending a session that is not open is fine.
    async fn end_session(&self, session: &SessionId) -> Result<(), ExecError>;

    /// The start-up check that the sandbox holds: code inside cannot reach the network or
    /// read host files or the service's settings. The tool is enabled only when it passes.
    async fn self_test(&self) -> Result<SelfTestReport, ExecError>;

    /// Sessions open now, where the executor keeps them itself (local); `None` when it
    /// cannot know (a pool).
    fn sessions_open(&self) -> Option<usize> {
        None
    }
}

/// What `open_session` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOpen {
    /// A new, empty session: no variables, no files.
    Created,
    /// The session used before, with its variables and files.
    Existing,
}

/// The outcome of one cell.
#[derive(Debug, Clone, Default)]
pub struct CellOutput {
    /// What the cell printed. Local: stdout and stderr interleaved as written (subprocesses
    /// included). Azure: stdout, then stderr.
    pub logs: String,
    /// The `repr` of the cell's last expression, as a notebook shows it (none if the cell
    /// ended with a statement or the value was `None`).
    pub result: Option<String>,
    /// The exception the cell raised, if any.
    pub error: Option<CellError>,
    /// Figures the cell produced, as PNG bytes (matplotlib figures shown or left open).
    pub images: Vec<Bytes>,
    /// Files in `/mnt/data` created or changed by the cell.
    pub files: Vec<FileInfo>,
    /// Output beyond the executor's cap was dropped from `logs`.
    pub logs_truncated: bool,
    pub duration: Duration,
}

/// An exception raised by a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// The exception's class name, e.g. `ZeroDivisionError`.
    pub name: String,
    pub message: String,
    /// The formatted traceback, starting at the cell's code.
    pub traceback: String,
}

/// A file in a session's `/mnt/data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative to `/mnt/data`, `/`-separated (`out/plot.png`).
    pub path: String,
    pub bytes: u64,
    pub modified: Option<SystemTime>,
}

/// What the self-test checked, for the start-up log.
#[derive(Debug, Clone, Default)]
pub struct SelfTestReport {
    /// One line per check that held.
    pub checks: Vec<String>,
    /// Versions seen inside (Python and the scientific stack).
    pub versions: String,
}

/// The executor's own faults (a cell that raises is not one of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The session is gone (expired, killed, crashed, never opened): open it again and
    /// upload its files again.
    #[error("the Python session was lost: {0}")]
    SessionLost(String),
    /// The cell did not stop within its limit; the sandbox was killed and the session is gone.
    #[error("the code ran longer than {} seconds and its session was stopped", .0.as_secs())]
    Timeout(Duration),
    /// No session can be had now (too many sessions busy, pool full, throttled after retries).
    #[error("no Python session is available now: {0}")]
    Busy(String),
    /// The executor's credentials were refused (401/403) or could not be obtained.
    #[error("code interpreter authorization failed: {0}")]
    Auth(String),
    /// A file is over the executor's size limit.
    #[error("the file is larger than the code interpreter's limit of {0} bytes")]
    FileTooLarge(u64),
    /// The session's `/mnt/data` is full (it holds this many bytes in all).
    #[error("/mnt/data is full (a session may keep {0} bytes there in all)")]
    NoSpace(u64),
    /// The named file is not in the session.
    #[error("no such file in /mnt/data: {0}")]
    NotFound(String),
    /// A bad file name or path.
    #[error("{0}")]
    InvalidInput(String),
    /// A fault that persisted through the retries (5xx, connection failures).
    #[error("the code interpreter failed: {0}")]
    Transient(String),
    /// The executor cannot work here (not installed, misconfigured, self-test failed).
    #[error("the code interpreter is unavailable: {0}")]
    Unavailable(String),
}

/// The longest cell timeout ACA accepts; also the cap for the local executor's setting.
pub const MAX_CELL_TIMEOUT: Duration = Duration::from_secs(220);

/// Rejects names that could leave `/mnt/data` or that no backend can store: an upload name is
/// one path segment.
pub fn check_upload_name(name: &str) -> Result<(), ExecError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.chars().any(char::is_control);
    if bad {
        return Err(ExecError::InvalidInput(format!(
            "{name:?} is not a valid file name for /mnt/data"
        )));
    }
    Ok(())
}

/// Splits a path relative to `/mnt/data` into its segments, refusing `..`, empty segments
/// and absolute paths (an absolute `/mnt/data/...` is accepted and made relative).
pub fn relative_segments(path: &str) -> Result<Vec<&str>, ExecError> {
    let rel = path.strip_prefix("/mnt/data/").unwrap_or(path);
    let segments: Vec<&str> = rel.split('/').collect();
    if rel.is_empty()
        || rel.starts_with('/')
        || segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == ".." || s.chars().any(char::is_control))
    {
        return Err(ExecError::InvalidInput(format!(
            "{path:?} is not a path inside /mnt/data"
        )));
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_single_segments() {
        assert!(check_upload_name("data.csv").is_ok());
        assert!(check_upload_name("my file (1).csv").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\nb"] {
            assert!(check_upload_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_stay_inside_mnt_data() {
        assert_eq!(
            relative_segments("out/plot.png").unwrap(),
            ["out", "plot.png"]
        );
        assert_eq!(relative_segments("/mnt/data/x.csv").unwrap(), ["x.csv"]);
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "../x",
            "a//b",
            "./a",
            "/mnt/data/",
        ] {
            assert!(relative_segments(bad).is_err(), "{bad:?}");
        }
    }
}
