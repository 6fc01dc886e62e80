//! A local stand-in for an Azure Container Apps code-interpreter session pool and for the
//! App Service managed-identity endpoint, speaking the documented shapes (api-version
//! 2024-02-02-preview: `code/execute`, `files/upload`, `files`, `files/content/{name}`;
//! `DELETE session` at 2025-10-02-preview; the identity endpoint at 2019-08-01 with
//! `X-IDENTITY-HEADER`). Code really runs: each identifier gets a session of a local
//! (bubblewrap) executor, created on first use as ACA does.
//!
//! It checks what a real pool checks (api-version, identifier, bearer token) and can be told
//! to answer with faults (401/403/404/413/429/5xx, with `Retry-After`), to revoke its tokens,
//! or to recycle a session, so the client's error mapping and retries are tested.
#![allow(dead_code)]

use assistants::code_interpreter::azure::{
    format_timestamp, API_VERSION, DELETE_SESSION_API_VERSION,
};
use assistants::code_interpreter::local::{LocalConfig, LocalExecutor};
use assistants::code_interpreter::{CodeExecutor, ExecError, FileInfo, SessionId, SessionKey};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use warp::http::{HeaderMap, Method, Response, StatusCode};
use warp::Filter;

pub const POOL_PATH: &str = "/subscriptions/sub-1/resourceGroups/rg-1/sessionPools/pool-1";
pub const IDENTITY_HEADER: &str = "identity-header-secret";

/// A scripted failure: the next matching request is answered with `status`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    /// Only requests whose pool-relative path starts with this (`code/execute`, `files`...).
    pub on: Option<&'static str>,
}

/// What a request to the pool looked like.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub api_version: String,
    pub identifier: String,
    pub status: u16,
}

struct State {
    executor: LocalExecutor,
    key: SessionKey,
    tokens: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    faults: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<Seen>>,
    upload_limit: usize,
}

pub struct AcaStandIn {
    pub base: String,
    pub pool_endpoint: String,
    pub identity_endpoint: String,
    state: Arc<State>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for AcaStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl AcaStandIn {
    pub async fn start() -> AcaStandIn {
        AcaStandIn::start_with_upload_limit(128 << 20).await
    }

    pub async fn start_with_upload_limit(upload_limit: usize) -> AcaStandIn {
        let dir = tempfile::tempdir().unwrap();
        let executor =
            LocalExecutor::new(LocalConfig::default()).expect("the stand-in's local executor");
        let state = Arc::new(State {
            executor,
            key: SessionKey::random(),
            tokens: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            faults: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            upload_limit,
        });
        let shared = state.clone();
        let routes = warp::method()
            .and(warp::path::full())
            .and(warp::query::<HashMap<String, String>>())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method, path: warp::path::FullPath, query, headers, body| {
                    let state = shared.clone();
                    async move {
                        handle(
                            state,
                            method,
                            path.as_str().to_string(),
                            query,
                            headers,
                            body,
                        )
                        .await
                    }
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(warp::serve(routes).incoming(listener).run());
        let base = format!("http://{addr}");
        AcaStandIn {
            pool_endpoint: format!("{base}{POOL_PATH}"),
            identity_endpoint: format!("{base}/msi/token"),
            base,
            state,
            _dir: dir,
            server,
        }
    }

    pub fn fail_next(
        &self,
        status: u16,
        times: usize,
        retry_after: Option<&'static str>,
        on: Option<&'static str>,
    ) {
        let mut faults = self.state.faults.lock().unwrap();
        for _ in 0..times {
            faults.push_back(Fault {
                status,
                retry_after,
                on,
            });
        }
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    /// Every token issued so far stops working (as after a key rotation).
    pub fn revoke_tokens(&self) {
        self.state.tokens.lock().unwrap().clear();
    }

    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn clear_seen(&self) {
        self.state.seen.lock().unwrap().clear();
    }

    /// Ends the session behind `identifier`, as the pool does after its cooldown.
    pub async fn recycle(&self, identifier: &str) {
        let id = self.state.key.session_id("aca", identifier);
        self.state.executor.end_session(&id).await.unwrap();
    }
}

fn json_reply(status: StatusCode, body: Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

fn error_reply(status: StatusCode, code: &str, message: &str) -> Response<Bytes> {
    json_reply(status, json!({"error": {"code": code, "message": message}}))
}

fn valid_identifier(id: &str) -> bool {
    (4..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "|-&^%$#(){}[];<>".contains(c))
}

fn file_entry(n: usize, f: &FileInfo) -> Value {
    json!({"$id": (n + 2).to_string(), "properties": {
        "$id": (n + 3).to_string(),
        "filename": f.path,
        "size": f.bytes,
        "lastModifiedTime": format_timestamp(f.modified.unwrap_or(SystemTime::UNIX_EPOCH)),
    }})
}

async fn handle(
    state: Arc<State>,
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    if path == "/msi/token" {
        return token(&state, &method, &query, &headers);
    }
    let Some(rest) = path
        .strip_prefix(POOL_PATH)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return error_reply(StatusCode::NOT_FOUND, "NotFound", "no such route");
    };
    let rest = rest.to_string();
    let api_version = query.get("api-version").cloned().unwrap_or_default();
    let identifier = query.get("identifier").cloned().unwrap_or_default();
    let reply = pool(
        &state,
        &method,
        &rest,
        &api_version,
        &identifier,
        &headers,
        body,
    )
    .await;
    state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: rest,
        api_version,
        identifier,
        status: reply.status().as_u16(),
    });
    reply
}

fn token(
    state: &State,
    method: &Method,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response<Bytes> {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    if method != Method::GET
        || query.get("api-version").map(String::as_str) != Some("2019-08-01")
        || query.get("resource").map(String::as_str) != Some("https://dynamicsessions.io")
    {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "resource and api-version are required",
        );
    }
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(IDENTITY_HEADER)
    {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "bad X-IDENTITY-HEADER",
        );
    }
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    state.tokens.lock().unwrap().insert(token.clone());
    let expires = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    json_reply(
        StatusCode::OK,
        json!({"access_token": token, "expires_on": expires.to_string(),
               "resource": "https://dynamicsessions.io", "token_type": "Bearer"}),
    )
}

async fn pool(
    state: &State,
    method: &Method,
    rest: &str,
    api_version: &str,
    identifier: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    let want_version = if rest == "session" {
        DELETE_SESSION_API_VERSION
    } else {
        API_VERSION
    };
    if api_version != want_version {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersion",
            "unsupported api-version",
        );
    }
    if !valid_identifier(identifier) {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidIdentifier",
            "bad identifier",
        );
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !state.tokens.lock().unwrap().contains(&bearer) {
        return error_reply(StatusCode::UNAUTHORIZED, "Unauthorized", "invalid token");
    }
    let fault = {
        let mut faults = state.faults.lock().unwrap();
        let matches = faults
            .front()
            .is_some_and(|f| f.on.is_none_or(|on| rest.starts_with(on)));
        if matches {
            faults.pop_front()
        } else {
            None
        }
    };
    if let Some(fault) = fault {
        let mut reply = error_reply(
            StatusCode::from_u16(fault.status).unwrap(),
            "Injected",
            "injected fault",
        );
        if let Some(secs) = fault.retry_after {
            reply
                .headers_mut()
                .insert("retry-after", secs.parse().unwrap());
        }
        return reply;
    }

    let id: SessionId = state.key.session_id("aca", identifier);
    // A call naming an identifier without a session allocates one.
    if let Err(e) = state.executor.open_session(&id).await {
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SessionError",
            &e.to_string(),
        );
    }
    match (method.as_str(), rest) {
        ("POST", "code/execute") => execute(state, &id, &body).await,
        ("POST", "files/upload") => upload(state, &id, headers, body).await,
        ("GET", "files") => match state.executor.list_files(&id).await {
            Ok(files) => json_reply(
                StatusCode::OK,
                json!({"$id": "1", "value": files.iter().enumerate().map(|(n, f)| file_entry(n * 2, f)).collect::<Vec<_>>()}),
            ),
            Err(e) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
        },
        ("GET", other) if other.starts_with("files/content/") => {
            let name = percent_decode(&other["files/content/".len()..]);
            match state.executor.download(&id, &name, u64::MAX).await {
                Ok(bytes) => Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/octet-stream")
                    .body(bytes)
                    .unwrap(),
                Err(ExecError::NotFound(_)) => {
                    error_reply(StatusCode::NOT_FOUND, "FileNotFound", "no such file")
                }
                Err(e) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
            }
        }
        ("DELETE", "session") => {
            state.executor.end_session(&id).await.unwrap();
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Bytes::new())
                .unwrap()
        }
        _ => error_reply(StatusCode::NOT_FOUND, "NotFound", "no such route"),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn execute(state: &State, id: &SessionId, body: &[u8]) -> Response<Bytes> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error_reply(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
    };
    let Some(p) = request.get("properties") else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "SessionPropertiesMissing",
            "properties are required",
        );
    };
    if p["codeInputType"] != "inline"
        || !p["executionType"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("synchronous"))
    {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "inline synchronous execution only",
        );
    }
    let Some(code) = p["code"].as_str() else {
        return error_reply(StatusCode::BAD_REQUEST, "BadRequest", "code is required");
    };
    let seconds = p["timeoutInSeconds"].as_u64().unwrap_or(100);
    if !(1..=220).contains(&seconds) {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "timeoutInSeconds must be 1-220",
        );
    }
    match state
        .executor
        .execute(id, code, Duration::from_secs(seconds))
        .await
    {
        Ok(out) => {
            let result = match out.images.first() {
                Some(png) => json!({"type": "image", "format": "png",
                    "base64_data": base64::engine::general_purpose::STANDARD.encode(png)}),
                None => json!(out.result.clone().unwrap_or_default()),
            };
            json_reply(
                StatusCode::ACCEPTED,
                json!({"properties": {
                    "$id": uuid::Uuid::new_v4().to_string(),
                    "status": if out.error.is_some() { "Failure" } else { "Success" },
                    "stdout": out.logs,
                    "stderr": out.error.as_ref().map(|e| e.traceback.clone()).unwrap_or_default(),
                    "result": result,
                    "executionTimeInMilliseconds": out.duration.as_millis() as u64,
                }}),
            )
        }
        Err(e) => error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ExecutionError",
            &e.to_string(),
        ),
    }
}

async fn upload(
    state: &State,
    id: &SessionId,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    if body.len() > state.upload_limit {
        return error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            "file too large",
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "multipart/form-data expected",
        );
    };
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut saved = Vec::new();
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() != Some("file") {
            continue;
        }
        let Some(name) = field.file_name().map(str::to_string) else {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the file needs a file name",
            );
        };
        let Ok(bytes) = field.bytes().await else {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "unreadable file part",
            );
        };
        match state.executor.upload(id, &name, bytes).await {
            Ok(info) => saved.push(info),
            Err(e) => return error_reply(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
        }
    }
    if saved.is_empty() {
        return error_reply(StatusCode::BAD_REQUEST, "BadRequest", "no file part");
    }
    json_reply(
        StatusCode::OK,
        json!({"$id": "1", "value": saved.iter().enumerate().map(|(n, f)| file_entry(n * 2, f)).collect::<Vec<_>>()}),
    )
}
