//! A local stand-in for a Chat Completions server, speaking the real wire protocol over
//! HTTP (streamed chunks, tool calls, usage, errors), scripted per test. The service's tests
//! and benchmarks use it in place of a model, as a library (`StandIn`) or as a process (the
//! `llm-standin` binary, `run`). It is a crate of its own, a dev-dependency of the service,
//! so that none of it can be built into the service.
//!
//! - `POST /v1/chat/completions` (also Azure's `/openai/deployments/{d}/chat/completions`):
//!   answers with the next scripted response for the request's `model` (or the shared
//!   script), or, with none left, echoes the last user message.
//! - `POST /v1/embeddings`: a deterministic bag-of-words vector per input (`bag_of_words`).
//! - `POST /_script` `{"model"?: "...", "responses": [Response, ...]}` appends to a script.
//! - `GET /_requests` lists every request received (`?model=` filters), each with the
//!   path, query and key headers it came with (`_path`, `_query`, `_api_key`,
//!   `_authorization`); `DELETE` clears.
//!
//! A scripted `Response` is JSON with any of: `text`, `tool_calls` (`[{name, arguments,
//! id?}]`), `finish_reason`, `usage`, `chunk_delay_ms`, `first_chunk_delay_ms`,
//! `answer_delay_ms` (silence before the status line: a model that does not answer),
//! `stall_ms` (silence after the answer's content, before it finishes),
//! `error` (`{status, message, retry_after?}`), `cut_off` (end the stream without finishing),
//! `malformed` (send a chunk that is not JSON), `reset` (`"at_once"`: reset the TCP
//! connection instead of answering; `"mid_stream"`: stream the answer's chunks, then reset
//! it where the finish would be).
//!
//! Connections are served by hyper through `FaultIo`, which resets the connection (RST, by
//! closing with a zero linger) when the bytes about to be written carry `FAULT_MARKER`: a
//! response header for `at_once`, an SSE comment for `mid_stream`. Nothing of that write
//! reaches the client.

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warp::http::StatusCode;
use warp::sse::Event;
use warp::{Filter, Reply};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScriptedToolCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScriptedError {
    pub status: u16,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retry_after: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default)]
    pub chunk_delay_ms: u64,
    #[serde(default)]
    pub first_chunk_delay_ms: u64,
    #[serde(default)]
    pub error: Option<ScriptedError>,
    #[serde(default)]
    pub cut_off: bool,
    #[serde(default)]
    pub malformed: bool,
    #[serde(default)]
    pub answer_delay_ms: u64,
    #[serde(default)]
    pub stall_ms: u64,
    #[serde(default)]
    pub reset: Option<Reset>,
}

/// Where a scripted connection reset happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// Before any byte of the answer.
    AtOnce,
    /// After the answer's content chunks, before it finishes.
    MidStream,
}

/// Bytes that make `FaultIo` reset the connection instead of writing them.
const FAULT_MARKER: &str = "x-standin-fault: reset";

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Response>>,
    requests: Vec<Value>,
    /// Silence before each `/embeddings` answer (a slow embeddings endpoint).
    embeddings_delay: Duration,
}

#[derive(Clone, Default)]
pub struct StandIn {
    state: Arc<Mutex<State>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The stand-in's embedding: lowercase words hashed into 256 signed dimensions.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 256];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let sign = if h & 1 == 0 { 1.0 } else { -1.0 };
        v[((h >> 1) % 256) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

/// Words with their following spaces: the pieces a text is streamed in.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl StandIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds responses to the script of `model` (`None`: the shared script).
    pub fn script(&self, model: Option<&str>, responses: Vec<Response>) {
        if let Ok(mut s) = self.state.lock() {
            s.scripts
                .entry(model.unwrap_or("").to_string())
                .or_default()
                .extend(responses);
        }
    }

    /// Makes every `/embeddings` answer wait `delay` (after the request is recorded).
    pub fn delay_embeddings(&self, delay: Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.embeddings_delay = delay;
        }
    }

    /// Every request received so far (bodies, with `received_us`).
    pub fn requests(&self) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    fn next_response(
        &self,
        body: &Value,
        path: &str,
        query: &str,
        headers: &warp::http::HeaderMap,
    ) -> Response {
        let model = body["model"].as_str().unwrap_or("").to_string();
        let Ok(mut s) = self.state.lock() else {
            return Response::default();
        };
        let mut recorded = body.clone();
        recorded["received_us"] = json!(now_us());
        // Where and how it came, for tests of the Azure OpenAI and key settings.
        recorded["_path"] = json!(path);
        recorded["_query"] = json!(query);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        recorded["_api_key"] = json!(header("api-key"));
        recorded["_authorization"] = json!(header("authorization"));
        s.requests.push(recorded);
        if let Some(r) = s.scripts.get_mut(&model).and_then(VecDeque::pop_front) {
            return r;
        }
        if let Some(r) = s.scripts.get_mut("").and_then(VecDeque::pop_front) {
            return r;
        }
        let last_user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| match &m["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        Response {
            text: Some(format!("You said: {last_user}")),
            ..Response::default()
        }
    }

    /// The answer to one chat completion request: the next scripted response, after its
    /// `answer_delay_ms`.
    async fn answer(
        &self,
        body: Value,
        path: &str,
        query: &str,
        headers: &warp::http::HeaderMap,
    ) -> warp::reply::Response {
        let response = self.next_response(&body, path, query, headers);
        if response.answer_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(response.answer_delay_ms)).await;
        }
        Self::render(&response, &body)
    }

    fn render(response: &Response, body: &Value) -> warp::reply::Response {
        if response.reset == Some(Reset::AtOnce) {
            let mut reply = warp::reply().into_response();
            reply.headers_mut().insert(
                "x-standin-fault",
                warp::http::HeaderValue::from_static("reset"),
            );
            return reply;
        }
        if let Some(error) = &response.error {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut reply = warp::reply::with_status(
                warp::reply::json(&json!({"error": {
                    "message": error.message.clone().unwrap_or_else(|| "scripted error".into()),
                    "type": if error.status == 429 { "rate_limit_error" } else { "server_error" },
                    "param": null, "code": null,
                }})),
                status,
            )
            .into_response();
            if let Some(after) = error.retry_after {
                if let Ok(v) = warp::http::HeaderValue::from_str(&after.to_string()) {
                    reply.headers_mut().insert("retry-after", v);
                }
            }
            return reply;
        }
        let model = body["model"].as_str().unwrap_or("stand-in").to_string();
        let prompt_tokens = body["messages"].to_string().len() as u64 / 4;
        let text = response.text.clone().unwrap_or_default();
        let text_pieces = pieces(&text);
        let finish = response.finish_reason.clone().unwrap_or_else(|| {
            if response.tool_calls.is_empty() {
                "stop".into()
            } else {
                "tool_calls".into()
            }
        });
        let completion_tokens = (text_pieces.len() + response.tool_calls.len() * 8) as u64;
        let usage = response.usage.clone().unwrap_or_else(|| {
            json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens})
        });
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let calls: Vec<Value> = response
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"index": i, "id": c.id.clone().unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
                       "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        if body["stream"] != json!(true) {
            let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                message["tool_calls"] = json!(calls
                    .iter()
                    .map(|c| {
                        let mut c = c.clone();
                        if let Some(o) = c.as_object_mut() {
                            o.remove("index");
                        }
                        c
                    })
                    .collect::<Vec<_>>());
            }
            return warp::reply::json(&json!({
                "id": id, "object": "chat.completion", "created": now_us() / 1_000_000, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }))
            .into_response();
        }
        let chunk = move |delta: Value, finish: Option<&str>| {
            json!({"id": id, "object": "chat.completion.chunk", "created": now_us() / 1_000_000,
                   "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut chunks: Vec<String> =
            vec![chunk(json!({"role": "assistant", "content": ""}), None).to_string()];
        for piece in &text_pieces {
            chunks.push(chunk(json!({"content": piece}), None).to_string());
        }
        for call in &calls {
            // The call's head first, then its arguments in two pieces.
            let args = call["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let split = args
                .char_indices()
                .nth(args.chars().count() / 2)
                .map(|(i, _)| i)
                .unwrap_or(0);
            chunks.push(chunk(json!({"tool_calls": [{"index": call["index"], "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}]}), None).to_string());
            for part in [&args[..split], &args[split..]] {
                chunks.push(chunk(json!({"tool_calls": [{"index": call["index"], "function": {"arguments": part}}]}), None).to_string());
            }
        }
        if response.malformed {
            chunks.push("{\"choices\": [ this is not json".into());
        }
        let reset = response.reset == Some(Reset::MidStream);
        if !response.cut_off && !reset {
            chunks.push(chunk(json!({}), Some(&finish)).to_string());
            let mut usage_chunk = chunk(json!({}), None);
            usage_chunk["choices"] = json!([]);
            usage_chunk["usage"] = usage;
            chunks.push(usage_chunk.to_string());
            chunks.push("[DONE]".into());
        }
        let first_delay = Duration::from_millis(response.first_chunk_delay_ms);
        let delay = Duration::from_millis(response.chunk_delay_ms);
        // The chunk after the content (the finish, or the reset) comes after `stall_ms`.
        let stall_at = 1 + text_pieces.len() + 3 * calls.len() + usize::from(response.malformed);
        let stall = Duration::from_millis(response.stall_ms);
        let events = chunks.into_iter().map(|data| Event::default().data(data));
        // The reset comes a little after the last chunk, so that the chunks before it are
        // written (and read) on their own.
        let fault = reset.then(|| Event::default().comment(FAULT_MARKER));
        let stream = futures::stream::iter(events.chain(fault).enumerate()).then(
            move |(i, event)| async move {
                let wait = match i {
                    0 => first_delay,
                    _ => delay.max(if reset {
                        Duration::from_millis(20)
                    } else {
                        Duration::ZERO
                    }),
                };
                let wait = if i == stall_at { wait.max(stall) } else { wait };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok::<_, Infallible>(event)
            },
        );
        warp::sse::reply(stream).into_response()
    }

    /// `/embeddings`: a deterministic bag-of-words vector per input (words hashed into 256
    /// signed dimensions, normalised), so texts that share words are near each other.
    async fn embeddings(&self, body: &Value) -> warp::reply::Response {
        let inputs: Vec<String> = match &body["input"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        };
        let delay = match self.state.lock() {
            Ok(mut s) => {
                let mut recorded = body.clone();
                recorded["received_us"] = json!(now_us());
                recorded["_path"] = json!("embeddings");
                s.requests.push(recorded);
                s.embeddings_delay
            }
            Err(_) => Duration::ZERO,
        };
        tokio::time::sleep(delay).await;
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": bag_of_words(text)}))
            .collect();
        warp::reply::json(&json!({
            "object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
        }))
        .into_response()
    }

    /// The stand-in's routes.
    pub fn routes(
        &self,
    ) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
        let me = self.clone();
        let completions = warp::post()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .and_then(
                move |tail: warp::path::FullPath,
                      query: String,
                      headers: warp::http::HeaderMap,
                      body: Bytes| {
                    let me = me.clone();
                    async move {
                        if tail.as_str().ends_with("/embeddings") {
                            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            return Ok(me.embeddings(&body).await);
                        }
                        if !tail.as_str().ends_with("chat/completions") {
                            return Err(warp::reject::not_found());
                        }
                        let body: Value = match serde_json::from_slice(&body) {
                            Ok(v) => v,
                            Err(_) => {
                                return Ok(warp::reply::with_status(
                                    "bad json",
                                    StatusCode::BAD_REQUEST,
                                )
                                .into_response())
                            }
                        };
                        Ok(me.answer(body, tail.as_str(), &query, &headers).await)
                    }
                },
            );
        let me = self.clone();
        let script = warp::post()
            .and(warp::path("_script"))
            .and(warp::body::json())
            .map(move |body: Value| {
                let responses: Vec<Response> =
                    serde_json::from_value(body["responses"].clone()).unwrap_or_default();
                let count = responses.len();
                me.script(body["model"].as_str(), responses);
                warp::reply::json(&json!({"scripted": count})).into_response()
            });
        let me = self.clone();
        let requests = warp::get()
            .and(warp::path("_requests"))
            .and(warp::query::<HashMap<String, String>>())
            .map(move |q: HashMap<String, String>| {
                let all = me.requests();
                let filtered: Vec<Value> = match q.get("model") {
                    Some(m) => all.into_iter().filter(|r| r["model"] == json!(m)).collect(),
                    None => all,
                };
                warp::reply::json(&filtered).into_response()
            });
        let me = self.clone();
        let clear = warp::delete().and(warp::path("_requests")).map(move || {
            if let Ok(mut s) = me.state.lock() {
                s.requests.clear();
                s.scripts.clear();
            }
            warp::reply::json(&json!({"cleared": true})).into_response()
        });
        script
            .or(requests)
            .unify()
            .or(clear)
            .unify()
            .or(completions)
            .unify()
    }

    /// Serves on `addr` (port 0 picks one); returns the bound address.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = bind(addr)?;
        let bound = listener.local_addr()?;
        let service = hyper_util::service::TowerToHyperService::new(warp::service(self.routes()));
        tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors, most likely: let some connections end.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(FaultIo(stream));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(bound)
    }
}

/// A listener with `TCP_NODELAY` (accepted connections inherit it on Linux): the chunks of a
/// stream are small writes, and Nagle's algorithm would hold each one back until the client
/// acknowledged the previous one, tens of milliseconds with delayed ACKs (BENCHMARKS.md,
/// finding 1). The same as the service's `app::bind`, which this crate cannot name.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The stand-in as a process: serves on 127.0.0.1:`port` (0 picks one), prints `listening
/// on http://ADDR/v1` on stdout for whoever started it, and serves until SIGINT. Exit status 2
/// when it cannot listen.
pub async fn run(port: u16) -> std::process::ExitCode {
    match StandIn::new()
        .spawn(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
    {
        Ok(addr) => {
            println!("listening on http://{addr}/v1");
            let _ = tokio::signal::ctrl_c().await;
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm-standin: cannot listen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// A connection that resets itself (RST) instead of writing bytes that carry
/// `FAULT_MARKER`: the write fails, hyper drops the connection, and the zero linger turns
/// the close into a reset.
struct FaultIo(tokio::net::TcpStream);

impl tokio::io::AsyncRead for FaultIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for FaultIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let marker = FAULT_MARKER.as_bytes();
        if buf.windows(marker.len()).any(|w| w == marker) {
            let _ = self.0.set_zero_linger();
            return std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_acks() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is not set");
    }
}
