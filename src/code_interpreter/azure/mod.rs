//! The Azure Container Apps dynamic sessions executor: a code-interpreter session pool
//! (`PythonLTS`), called over its management REST API with a managed-identity token.
//!
//! API version `2024-02-02-preview`, the one Microsoft Learn documents for code interpreter
//! pools (sessions-code-interpreter.md, session-pool.md) and the one LangChain, Semantic Kernel
//! and AutoGen use: `POST code/execute` (body wrapped in `properties`), `POST files/upload`
//! (multipart `file`), `GET files`, `GET files/content/{name}`. That version has no session
//! delete; `DELETE session` exists from `2025-10-02-preview` (as LangChain calls it), the only
//! call made with another version. A session is addressed by `identifier` (our `SessionId`)
//! and is created by the first call that names it. `identity`: the managed-identity
//! tokens those calls carry.
//!
//! ACA does not say whether an identifier maps to a fresh session; a marker file written when
//! we open a session tells us (a recycled session has no files). Every `execute` lists the
//! files first, which both checks the marker and gives the "before" picture for the files a
//! cell changed.
//!
//! Errors: 401 (after one token refresh) and 403 are `Auth`; 429, and 404 on session calls
//! (what a pool at `maxConcurrentSessions` answers), are retried honouring `Retry-After` and
//! then `Busy`; 413 is `FileTooLarge`; 5xx and connection failures are retried with back-off
//! and then `Transient`. `code/execute` is retried only when the code cannot have run
//! (429, 503, a refused connection): running a cell twice is worse than failing once.

pub mod identity;

use super::{
    check_upload_name, relative_segments, CellError, CellOutput, CodeExecutor, ExecError, FileInfo,
    SelfTestReport, SessionId, SessionOpen, MAX_CELL_TIMEOUT,
};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use identity::{Identity, TokenSource};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const API_VERSION: &str = "2024-02-02-preview";
pub const DELETE_SESSION_API_VERSION: &str = "2025-10-02-preview";
/// Written into every session we open; its absence means the session was recycled.
pub const MARKER_FILE: &str = ".assistants-session";
/// Documented upload limit of code interpreter pools.
pub const MAX_UPLOAD_BYTES: u64 = 128 << 20;

#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// The pool management endpoint, without a trailing slash.
    pub endpoint: String,
    pub identity: Identity,
    /// Tries of one call (1 = no retry).
    pub max_attempts: u32,
    /// First back-off; doubled per retry.
    pub retry_base: Duration,
    /// A longer `Retry-After` gives up at once (`Busy`).
    pub max_retry_wait: Duration,
    pub request_timeout: Duration,
    /// The session the self-test runs its probe in. A fixed one (derived from the session
    /// key) is reused by every instance's start-up and left to the pool's cooldown, so cold
    /// starts do not each allocate (and pay for) a session; `None`: a fresh one, deleted after.
    pub self_test_session: Option<SessionId>,
}

impl AzureConfig {
    pub fn new(endpoint: String, identity: Identity) -> AzureConfig {
        AzureConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            identity,
            max_attempts: 4,
            retry_base: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            self_test_session: None,
        }
    }
}

pub struct AzureExecutor {
    cfg: AzureConfig,
    http: reqwest::Client,
    tokens: TokenSource,
}

/// The calls, for the error mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Execute,
    Upload,
    List,
    Download,
    Delete,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Execute => "code/execute",
            Call::Upload => "files/upload",
            Call::List => "files",
            Call::Download => "files/content",
            Call::Delete => "session",
        }
    }
}

pub(crate) fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.chars().count() <= 300 {
        trimmed.to_string()
    } else {
        format!("{}…", trimmed.chars().take(300).collect::<String>())
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl AzureExecutor {
    pub fn new(cfg: AzureConfig) -> Result<AzureExecutor, ExecError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ExecError::Unavailable(format!("HTTP client: {e}")))?;
        reqwest::Url::parse(&cfg.endpoint).map_err(|e| {
            ExecError::Unavailable(format!("pool endpoint {:?}: {e}", cfg.endpoint))
        })?;
        Ok(AzureExecutor {
            tokens: TokenSource::new(cfg.identity.clone(), http.clone()),
            http,
            cfg,
        })
    }

    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ExecError> {
        let mut url = reqwest::Url::parse(&self.cfg.endpoint)
            .map_err(|e| ExecError::Unavailable(format!("pool endpoint: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ExecError::Unavailable("pool endpoint cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// One call with retries and the error mapping. `build` makes the request (it is called
    /// again for each try).
    async fn send(
        &self,
        call: Call,
        session: &SessionId,
        method: Method,
        segments: &[&str],
        timeout: Duration,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ExecError> {
        let url = self.url(segments)?;
        let version = if call == Call::Delete {
            DELETE_SESSION_API_VERSION
        } else {
            API_VERSION
        };
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.cfg.max_attempts;
            let backoff = self.cfg.retry_base * 2u32.saturating_pow(attempt - 1);
            let token = self.tokens.token().await?;
            let request = self
                .http
                .request(method.clone(), url.clone())
                .query(&[("api-version", version), ("identifier", session.as_str())])
                .bearer_auth(token)
                .timeout(timeout);
            let response = match build(request).send().await {
                Ok(r) => r,
                Err(e) => {
                    // Only a refused connection proves an execution did not start.
                    let safe = call != Call::Execute || e.is_connect();
                    if safe && !last {
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    return Err(ExecError::Transient(format!("{}: {e}", call.name())));
                }
            };
            let status = response.status();
            if status.is_success() || (call == Call::Delete && status == StatusCode::NOT_FOUND) {
                return Ok(response);
            }
            if call == Call::Download && status == StatusCode::NOT_FOUND {
                return Err(ExecError::NotFound(segments[2..].join("/")));
            }
            let wait = retry_after(&response);
            let body = response.text().await.unwrap_or_default();
            let detail = format!("{} answered {status}: {}", call.name(), snippet(&body));
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    // A token revoked or rotated early: fetch a new one once.
                    refreshed = true;
                    self.tokens.invalidate().await;
                    attempt -= 1;
                    continue;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(ExecError::Auth(detail))
                }
                StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ExecError::FileTooLarge(MAX_UPLOAD_BYTES))
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::NOT_FOUND => {
                    let wait = wait.unwrap_or(backoff);
                    if last || wait > self.cfg.max_retry_wait {
                        return Err(ExecError::Busy(detail));
                    }
                    tokio::time::sleep(wait).await;
                }
                s if s.is_server_error() => {
                    let safe = call != Call::Execute || s == StatusCode::SERVICE_UNAVAILABLE;
                    let wait = wait.unwrap_or(backoff);
                    if !safe || last || wait > self.cfg.max_retry_wait {
                        return Err(ExecError::Transient(detail));
                    }
                    tokio::time::sleep(wait).await;
                }
                s if s.is_client_error() => return Err(ExecError::InvalidInput(detail)),
                _ => return Err(ExecError::Transient(detail)),
            }
        }
    }

    async fn list_all(&self, session: &SessionId) -> Result<Vec<FileInfo>, ExecError> {
        let response = self
            .send(
                Call::List,
                session,
                Method::GET,
                &["files"],
                self.cfg.request_timeout,
                |r| r,
            )
            .await?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| ExecError::Transient(format!("files: unreadable answer: {e}")))?;
        Ok(parse_files(&body))
    }

    async fn upload_bytes(
        &self,
        session: &SessionId,
        name: &str,
        content: Bytes,
    ) -> Result<FileInfo, ExecError> {
        let response = self
            .send(
                Call::Upload,
                session,
                Method::POST,
                &["files", "upload"],
                self.cfg.request_timeout,
                |r| {
                    let part = || {
                        reqwest::multipart::Part::stream(content.clone())
                            .file_name(name.to_string())
                    };
                    let part = part()
                        .mime_str("application/octet-stream")
                        .unwrap_or_else(|_| part());
                    r.multipart(reqwest::multipart::Form::new().part("file", part))
                },
            )
            .await?;
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok(parse_files(&body)
            .into_iter()
            .find(|f| f.path == name)
            .unwrap_or(FileInfo {
                path: name.to_string(),
                bytes: content.len() as u64,
                modified: None,
            }))
    }

    async fn run(
        &self,
        session: &SessionId,
        code: &str,
        timeout: Duration,
    ) -> Result<CellOutput, ExecError> {
        let seconds = timeout.min(MAX_CELL_TIMEOUT).as_secs_f64().ceil().max(1.0) as u64;
        let body = json!({
            "properties": {
                "codeInputType": "inline",
                "executionType": "synchronous",
                "code": code,
                "timeoutInSeconds": seconds,
            }
        });
        // The HTTP wait covers the execution plus allocation and transfer.
        let http_timeout = Duration::from_secs(seconds) + Duration::from_secs(60);
        let response = self
            .send(
                Call::Execute,
                session,
                Method::POST,
                &["code", "execute"],
                http_timeout,
                |r| r.json(&body),
            )
            .await?;
        let value: Value = response
            .json()
            .await
            .map_err(|e| ExecError::Transient(format!("code/execute: unreadable answer: {e}")))?;
        Ok(parse_execution(&value))
    }
}

#[async_trait]
impl CodeExecutor for AzureExecutor {
    fn kind(&self) -> &'static str {
        "azure"
    }

    async fn open_session(&self, session: &SessionId) -> Result<SessionOpen, ExecError> {
        let files = self.list_all(session).await?;
        if files.iter().any(|f| f.path == MARKER_FILE) {
            return Ok(SessionOpen::Existing);
        }
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.upload_bytes(session, MARKER_FILE, Bytes::from(format!("{stamp}\n")))
            .await?;
        Ok(SessionOpen::Created)
    }

    async fn execute(
        &self,
        session: &SessionId,
        code: &str,
        timeout: Duration,
    ) -> Result<CellOutput, ExecError> {
        let started = Instant::now();
        let before = self.list_all(session).await?;
        if !before.iter().any(|f| f.path == MARKER_FILE) {
            return Err(ExecError::SessionLost(
                "the session expired or was recycled by the pool".into(),
            ));
        }
        let mut output = self.run(session, code, timeout).await?;
        let after = self.list_all(session).await?;
        output.files = changed_files(&before, &after);
        output.duration = started.elapsed();
        Ok(output)
    }

    async fn upload(
        &self,
        session: &SessionId,
        name: &str,
        content: Bytes,
    ) -> Result<FileInfo, ExecError> {
        check_upload_name(name)?;
        if name == MARKER_FILE {
            return Err(ExecError::InvalidInput(format!(
                "{name} is a reserved name"
            )));
        }
        if content.len() as u64 > MAX_UPLOAD_BYTES {
            return Err(ExecError::FileTooLarge(MAX_UPLOAD_BYTES));
        }
        self.upload_bytes(session, name, content).await
    }

    async fn list_files(&self, session: &SessionId) -> Result<Vec<FileInfo>, ExecError> {
        let mut files = self.list_all(session).await?;
        if !files.iter().any(|f| f.path == MARKER_FILE) {
            return Err(ExecError::SessionLost(
                "the session expired or was recycled by the pool".into(),
            ));
        }
        files.retain(|f| f.path != MARKER_FILE);
        Ok(files)
    }

    async fn download(
        &self,
        session: &SessionId,
        path: &str,
        max_bytes: u64,
    ) -> Result<Bytes, ExecError> {
        let segments = relative_segments(path)?;
        let mut all = vec!["files", "content"];
        all.extend(segments.iter().copied());
        let mut response = self
            .send(
                Call::Download,
                session,
                Method::GET,
                &all,
                self.cfg.request_timeout,
                |r| r,
            )
            .await?;
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Err(ExecError::FileTooLarge(max_bytes));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ExecError::Transient(format!("files/content: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Err(ExecError::FileTooLarge(max_bytes));
            }
        }
        Ok(Bytes::from(bytes))
    }

    async fn end_session(&self, session: &SessionId) -> Result<(), ExecError> {
        self.send(
            Call::Delete,
            session,
            Method::DELETE,
            &["session"],
            self.cfg.request_timeout,
            |r| r,
        )
        .await
        .map(|_| ())
    }

    async fn self_test(&self) -> Result<SelfTestReport, ExecError> {
        let fail = |m: String| ExecError::Unavailable(format!("self-test failed: {m}"));
        let mut checks = Vec::new();
        self.tokens.token().await?;
        checks.push(format!("managed identity token for {}", identity::RESOURCE));
        let url = reqwest::Url::parse(&self.cfg.endpoint).map_err(|e| fail(e.to_string()))?;
        let host = url.host_str().unwrap_or("localhost").to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        // The pool's own management host is the one address the session must not reach
        // that we know is ours to contact.
        let code = format!(
            "import json, platform, socket\n\
             r = {{'python': platform.python_version()}}\n\
             try:\n    socket.create_connection(({host:?}, {port}), timeout=5).close()\n    r['egress'] = 'connected'\n\
             except Exception as e:\n    r['egress'] = 'blocked: %s' % type(e).__name__\n\
             print(json.dumps(r))\n"
        );
        let (probe, reused) = match &self.cfg.self_test_session {
            Some(id) => (id.clone(), true),
            None => (SessionId::probe("selftest"), false),
        };
        let outcome = async {
            self.open_session(&probe).await?;
            self.execute(&probe, &code, Duration::from_secs(60)).await
        }
        .await;
        if !reused {
            let _ = self.end_session(&probe).await;
        }
        let output = outcome?;
        let line = output
            .logs
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or("");
        let findings: Value = serde_json::from_str(line).map_err(|_| {
            fail(format!(
                "unexpected probe output: {}",
                snippet(&output.logs)
            ))
        })?;
        let python = findings["python"].as_str().unwrap_or("?").to_string();
        checks.push(format!("the session pool runs code (Python {python})"));
        let egress = findings["egress"].as_str().unwrap_or("");
        if !egress.starts_with("blocked") {
            return Err(fail(format!(
                "code in a session reached {host}:{port}: the pool must have egress disabled"
            )));
        }
        checks.push(format!("no egress from a session ({host}:{port} {egress})"));
        Ok(SelfTestReport {
            checks,
            versions: format!("Python {python}"),
        })
    }
}

/// Files from a `GET files` or `files/upload` answer: `{"value": [{"properties": {filename,
/// size, lastModifiedTime}}]}` (2024-02-02-preview), also accepting the flat items of later
/// versions (`{name, sizeInBytes, lastModifiedAt}`) and a bare array.
fn parse_files(body: &Value) -> Vec<FileInfo> {
    let items = match body {
        Value::Array(items) => items.as_slice(),
        other => other
            .get("value")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
    };
    items
        .iter()
        .filter_map(|item| {
            let p = item.get("properties").unwrap_or(item);
            if p.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("directory"))
            {
                return None;
            }
            let name = p
                .get("filename")
                .or_else(|| p.get("name"))
                .and_then(Value::as_str)?
                .trim_start_matches("/mnt/data/")
                .to_string();
            let bytes = p
                .get("size")
                .or_else(|| p.get("sizeInBytes"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let modified = p
                .get("lastModifiedTime")
                .or_else(|| p.get("lastModifiedAt"))
                .and_then(Value::as_str)
                .and_then(parse_timestamp);
            Some(FileInfo {
                path: name,
                bytes,
                modified,
            })
        })
        .collect()
}

fn changed_files(before: &[FileInfo], after: &[FileInfo]) -> Vec<FileInfo> {
    after
        .iter()
        .filter(|f| f.path != MARKER_FILE)
        .filter(|f| {
            !before
                .iter()
                .any(|b| b.path == f.path && b.bytes == f.bytes && b.modified == f.modified)
        })
        .cloned()
        .collect()
}

/// A `code/execute` answer: `{"properties": {status, stdout, stderr, result |
/// executionResult, executionTimeInMilliseconds}}`, or the flat shape of later versions with
/// `result: {stdout, stderr, executionResult}` and `rawResult.error_*`. A failed cell's
/// traceback is in stderr (or `error_stack_trace`); an image shown with `plt.show()` comes
/// as `result: {"type": "image", "base64_data": ...}`.
fn parse_execution(value: &Value) -> CellOutput {
    let p = value.get("properties").unwrap_or(value);
    let nested = p.get("result").filter(|r| r.get("stdout").is_some());
    let field = |name: &str| {
        nested
            .and_then(|r| r.get(name))
            .or_else(|| p.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let stdout = field("stdout");
    let stderr = field("stderr");
    let result_value = match nested {
        Some(r) => r.get("executionResult"),
        None => p.get("result").or_else(|| p.get("executionResult")),
    };
    let raw = p.get("rawResult");
    let raw_str = |name: &str| {
        raw.and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let status = p.get("status").and_then(Value::as_str).unwrap_or("");
    let failed = status.to_ascii_lowercase().contains("fail") || raw_str("error_name").is_some();

    let mut images = Vec::new();
    let mut result = None;
    match result_value {
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("image") => {
            if let Some(data) = o.get("base64_data").and_then(Value::as_str) {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) {
                    images.push(Bytes::from(bytes));
                }
            }
        }
        Some(Value::String(s)) if !s.is_empty() => result = Some(s.clone()),
        Some(Value::Null) | Some(Value::String(_)) | None => {}
        Some(other) => result = Some(other.to_string()),
    }

    let error = failed.then(|| {
        let traceback = raw_str("error_stack_trace").unwrap_or_else(|| stderr.clone());
        // The last line of a Python traceback is "Name: message".
        let last = traceback
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let (name, message) = match last.split_once(": ") {
            Some((n, m)) if !n.contains(' ') => (n.to_string(), m.to_string()),
            _ => ("Error".to_string(), last.to_string()),
        };
        CellError {
            name: raw_str("error_name").unwrap_or(name),
            message: raw_str("error_message").unwrap_or(message),
            traceback,
        }
    });
    // A failed cell's stderr is its traceback, reported once (as the error).
    let mut logs = stdout;
    let stderr_is_traceback = error.as_ref().is_some_and(|e| e.traceback == stderr);
    if !stderr.is_empty() && !stderr_is_traceback {
        if !logs.is_empty() && !logs.ends_with('\n') {
            logs.push('\n');
        }
        logs.push_str(&stderr);
    }
    CellOutput {
        logs,
        result,
        error,
        images,
        files: Vec::new(),
        logs_truncated: false,
        duration: Duration::ZERO,
    }
}

/// Parses `2024-05-02T07:21:07.9922617Z` (RFC 3339 in UTC, as the sessions API writes it;
/// an offset other than `Z` is applied).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0i64)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let mut t = time.splitn(3, ':');
    let (hh, mm): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec = t.next()?;
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let ss: i64 = whole.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        format!("{digits:0<9}").parse().ok()?
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, day);
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Formats a time as `2024-05-02T07:21:07.992261700Z` (for the test stand-in of the API).
pub fn format_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2024-05-02T07:21:07.9922617Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_714_634_467, 992_261_700)
        );
        assert_eq!(format_timestamp(t), "2024-05-02T07:21:07.992261700Z");
        assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        assert_eq!(
            parse_timestamp("2024-05-02T09:21:07+02:00"),
            parse_timestamp("2024-05-02T07:21:07Z")
        );
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z")
                .map(format_timestamp)
                .unwrap(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn the_documented_shapes_parse() {
        let files = parse_files(&json!({"$id": "1", "value": [
            {"$id": "2", "properties": {"$id": "3", "filename": "test1.txt", "size": 16,
             "lastModifiedTime": "2024-05-02T07:21:07.9922617Z"}},
            {"name": "flat.csv", "sizeInBytes": 3, "lastModifiedAt": "2024-11-02T12:33:05Z", "type": "File"},
            {"name": "dir", "type": "directory"}
        ]}));
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].bytes), ("test1.txt", 16));
        assert!(files[0].modified.is_some());
        assert_eq!((files[1].path.as_str(), files[1].bytes), ("flat.csv", 3));

        let ok = parse_execution(&json!({"properties": {"$id": "x", "status": "Success",
            "stdout": "hi\n", "stderr": "", "result": "42", "executionTimeInMilliseconds": 9}}));
        assert_eq!(
            (ok.logs.as_str(), ok.result.as_deref()),
            ("hi\n", Some("42"))
        );
        assert!(ok.error.is_none());

        let tb = "Traceback (most recent call last):\n  File \"<cell>\", line 1\nZeroDivisionError: division by zero\n";
        let failed = parse_execution(&json!({"properties": {"status": "Failure",
            "stdout": "before\n", "stderr": tb, "result": ""}}));
        let e = failed.error.unwrap();
        assert_eq!(
            (e.name.as_str(), e.message.as_str()),
            ("ZeroDivisionError", "division by zero")
        );
        assert_eq!(failed.logs, "before\n");

        let flat = parse_execution(&json!({"status": "Failed",
            "result": {"stdout": "", "stderr": "", "executionResult": null},
            "rawResult": {"error_name": "NameError", "error_message": "x", "error_stack_trace": "tb"}}));
        assert_eq!(flat.error.unwrap().name, "NameError");

        let image = parse_execution(&json!({"properties": {"status": "Success", "stdout": "",
            "stderr": "", "result": {"type": "image", "format": "png", "base64_data": "iVBORw=="}}}));
        assert_eq!(image.images.len(), 1);
        assert!(image.result.is_none());
    }
}
