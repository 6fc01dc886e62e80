//! The HTTP layer: one warp filter that takes every request, authenticates it, routes it to
//! an `Operation`, reads the body within the limit, calls the `Backend`, and writes the
//! answer or the OpenAI-shaped error with the headers SDKs read.
//! - `router`: method + path to operation;
//! - `auth`: bearer keys and tenants;
//! - `openapi`: the OpenAPI document of the API; `docs`: it and Swagger UI, served;
//!   `playground`: the web page for trying the API (static files, hooked in by `docs`);
//! - `server`: hyper serving the filter, with timeouts and a cap on connections.

pub mod auth;
pub mod docs;
pub mod openapi;
pub mod playground;
pub mod router;
pub mod server;

use crate::api::{ApiRequest, Backend, Operation, Reply};
use crate::error::{clip, shown, ApiError};
use auth::Auth;
use bytes::{Buf, Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};
use router::RouteError;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply as _};

/// What every request handler shares.
pub struct HttpState {
    pub backend: Arc<dyn Backend>,
    pub auth: Auth,
    pub max_body_bytes: usize,
    pub sse_keep_alive: std::time::Duration,
    /// Set when running under the Functions host: queue-trigger invocations arrive here.
    pub functions: Option<FunctionsHost>,
}

pub use crate::functions::FunctionsHost;

/// The filter that serves the whole API. It answers every request itself (errors included);
/// none of its parts rejects.
pub fn routes(
    state: Arc<HttpState>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body| {
                let state = state.clone();
                async move {
                    if let Some(functions) = state.functions.as_ref().filter(|_| {
                        method == Method::POST && FunctionsHost::is_trigger(path.as_str())
                    }) {
                        return work_invocation(
                            functions,
                            path.as_str(),
                            body,
                            state.max_body_bytes,
                        )
                        .await;
                    }
                    let started = Instant::now();
                    let request_id = format!("req_{}", uuid::Uuid::new_v4().simple());
                    let path = path.as_str().to_string();
                    // What the log lines show of it (a URL may be 64 kB).
                    let logged_path = clip(&path, 256).into_owned();
                    // A panic is a bug; it must still answer (500), never drop the connection.
                    let outcome =
                        AssertUnwindSafe(handle(&state, &method, &path, &query, &headers, body))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| Err(ApiError::internal("handler panicked")));
                    finish(
                        outcome,
                        &method,
                        &logged_path,
                        &request_id,
                        started,
                        state.sse_keep_alive,
                    )
                }
            },
        )
}

/// A queue-trigger invocation from the Functions host (`POST /work`, `/work-poison`).
async fn work_invocation(
    functions: &FunctionsHost,
    path: &str,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    limit: usize,
) -> Response {
    let (status, envelope) = match read_body(body, &HeaderMap::new(), limit).await {
        Ok(bytes) => {
            AssertUnwindSafe(functions.invoke(path, &bytes))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| (500, serde_json::json!({"Outputs": {}, "Logs": ["handler panicked"], "ReturnValue": null})))
        }
        Err(_) => (413, serde_json::json!({"Outputs": {}, "Logs": ["invocation too large"], "ReturnValue": null})),
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &envelope,
    )
}

/// The path after `/v1` as segments; the Functions host's default `/api` prefix is allowed.
fn api_segments(path: &str) -> Option<Vec<&str>> {
    let path = path
        .strip_prefix("/api")
        .filter(|p| p.starts_with("/v1"))
        .unwrap_or(path);
    let rest = path.strip_prefix("/v1")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

async fn handle(
    state: &HttpState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: impl Stream<Item = Result<impl Buf + Send + 'static, warp::Error>> + Unpin + Send + 'static,
) -> Result<Reply, ApiError> {
    // `/` (the Functions host polls it for readiness; people land there too) and the API
    // documentation: static, the same for everyone, so no key is asked for. Only exact paths
    // outside `/v1` match, so no API route is served without the key check below.
    if let Some(reply) = docs::reply(method, path, headers) {
        return Ok(reply);
    }
    let unknown = || ApiError::UnknownRoute {
        method: shown(method.as_str()).into_owned(),
        path: shown(path).into_owned(),
    };
    let segments = api_segments(path).ok_or_else(unknown)?;
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let tenant = state.auth.authenticate(authorization)?;
    check_beta_header(headers)?;
    let operation = match router::route(method.as_str(), &segments) {
        Ok(op) => op,
        Err(RouteError::NotFound) => return Err(unknown()),
        Err(RouteError::MethodNotAllowed(allowed)) => {
            return Err(ApiError::MethodNotAllowed {
                method: shown(method.as_str()).into_owned(),
                path: shown(path).into_owned(),
                allowed,
            })
        }
    };
    // Uploads stream through to the store; everything else is read whole, within the limit.
    let (body, upload) = if matches!(operation, Operation::CreateFile) {
        let stream = body.map(|chunk| {
            chunk
                .map(|mut buf| buf.copy_to_bytes(buf.remaining()))
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        (Bytes::new(), Some(crate::api::Upload(Box::pin(stream))))
    } else {
        (read_body(body, headers, state.max_body_bytes).await?, None)
    };
    check_content_type(&operation, headers, &body)?;
    let parsed: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::invalid("The query string could not be parsed.", None))?;
    let forwarded = ["content-type", "openai-beta", "accept"]
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let api_path = path
        .strip_prefix("/api")
        .filter(|p| p.starts_with("/v1"))
        .unwrap_or(path)
        .trim_start_matches("/v1")
        .to_string();
    state
        .backend
        .handle(
            &tenant,
            ApiRequest {
                operation,
                query: parsed,
                body,
                method: method.to_string(),
                path: api_path,
                raw_query: query.to_string(),
                headers: forwarded,
                upload,
            },
        )
        .await
}

/// `OpenAI-Beta: assistants=v1` asks for an API this server does not speak.
fn check_beta_header(headers: &HeaderMap) -> Result<(), ApiError> {
    let beta = headers
        .get_all("openai-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|v| v.starts_with("assistants="));
    match beta {
        Some(v) if v != "assistants=v2" => Err(ApiError::InvalidRequest {
            message: format!(
                "Invalid 'OpenAI-Beta' header '{}': this server implements the Assistants API \
                 v2 only. Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
                shown(v)
            ),
            param: None,
            code: Some("invalid_beta".into()),
        }),
        _ => Ok(()),
    }
}

/// A JSON operation's non-empty body must be declared JSON (or left undeclared).
fn check_content_type(
    operation: &Operation,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    if body.is_empty() || matches!(operation, Operation::CreateFile) {
        return Ok(());
    }
    let Some(content_type) = headers.get("content-type") else {
        return Ok(());
    };
    let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!(
                "Invalid Content-Type header ({}), expected application/json for this \
                 request.",
                shown(essence)
            ),
            None,
        ))
    }
}

async fn read_body(
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|_| ApiError::invalid("The request body could not be read.", None))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

fn finish(
    outcome: Result<Reply, ApiError>,
    method: &Method,
    path: &str,
    request_id: &str,
    started: Instant,
    keep_alive: std::time::Duration,
) -> Response {
    let (status, body, extra) = match outcome {
        Ok(Reply::Json { body, headers }) => (StatusCode::OK, body, headers),
        Ok(Reply::Events {
            events,
            headers,
            done,
        }) => {
            let mut response = sse_response(events, keep_alive, done);
            if let Ok(v) = HeaderValue::from_str(request_id) {
                response.headers_mut().insert("x-request-id", v);
            }
            copy_headers(&mut response, &headers);
            log::debug!("{request_id} {method} {path} 200 (stream)");
            return response;
        }
        Ok(Reply::Raw {
            status,
            content_type,
            body,
            headers,
        }) => {
            let mut response = warp::http::Response::new(body).into_response();
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert("content-type", v);
            }
            if let Ok(v) = HeaderValue::from_str(request_id) {
                response.headers_mut().insert("x-request-id", v);
            }
            response.headers_mut().insert(
                "openai-processing-ms",
                HeaderValue::from(started.elapsed().as_millis() as u64),
            );
            copy_headers(&mut response, &headers);
            log::debug!("{request_id} {method} {path} {status} (passed through)");
            return response;
        }
        Ok(Reply::Stream {
            status,
            content_type,
            length,
            body,
            headers,
        }) => {
            // Written as the client takes it: hyper asks for the next chunk only when it
            // has room, so a slow client slows the reading down instead of filling memory.
            let body = sync_wrapper::SyncStream::new(body.0);
            let mut response = warp::reply::stream(body).into_response();
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                h.insert("content-type", v);
            }
            if let Some(length) = length {
                h.insert("content-length", HeaderValue::from(length));
            }
            if let Ok(v) = HeaderValue::from_str(request_id) {
                h.insert("x-request-id", v);
            }
            h.insert(
                "openai-processing-ms",
                HeaderValue::from(started.elapsed().as_millis() as u64),
            );
            copy_headers(&mut response, &headers);
            log::debug!("{request_id} {method} {path} {status} (streamed)");
            return response;
        }
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match &e {
                ApiError::Internal(cause) => {
                    log::warn!("{request_id} {method} {path}: 500: {cause}")
                }
                _ if status.is_server_error() => {
                    log::warn!("{request_id} {method} {path}: {}: {e}", status.as_u16())
                }
                _ => log::info!("{request_id} {method} {path}: {}: {e}", status.as_u16()),
            }
            let extra = match &e {
                ApiError::MethodNotAllowed { allowed, .. } => vec![("allow", allowed.join(", "))],
                _ => Vec::new(),
            };
            (status, e.to_body(), extra)
        }
    };
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert(
        "openai-processing-ms",
        HeaderValue::from(started.elapsed().as_millis() as u64),
    );
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY {
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::BAD_REQUEST {
        // Deterministic: a retry cannot succeed.
        headers.insert("x-should-retry", HeaderValue::from_static("false"));
    }
    log::debug!(
        "{request_id} {method} {path} {} {}ms",
        status.as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// Adds headers a backend passed on (e.g. the upstream's `x-request-id` in proxy mode).
fn copy_headers(response: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            warp::http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
}

/// Server-Sent Events: each Assistants event as `event:`/`data:`, comment keep-alives while
/// nothing happens (idle proxies would close the stream), and `done` / `[DONE]` at the end
/// (Assistants streams only: a Responses stream ends after its terminal event).
/// A stream dropped because its client stopped reading ends with an error instead of
/// `done`: the connection is cut, so the client cannot take it for a complete one.
fn sse_response(
    events: crate::api::events::EventReceiver,
    interval: std::time::Duration,
    done: bool,
) -> Response {
    use crate::api::events::Overflow;
    use warp::sse::Event;
    let end = done.then(|| Ok::<_, Overflow>(Event::default().event("done").data("[DONE]")));
    let stream = events
        .map(|event| event.map(|event| Event::default().event(event.name).data(event.data)))
        .chain(futures::stream::iter(end));
    let keep_alive = warp::sse::keep_alive()
        .interval(interval)
        .text("keep-alive");
    warp::sse::reply(keep_alive.stream(stream)).into_response()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = warp::http::Response::new(Bytes::from(bytes)).into_response();
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_prefixes() {
        assert_eq!(api_segments("/v1/assistants"), Some(vec!["assistants"]));
        assert_eq!(
            api_segments("/api/v1/assistants/"),
            Some(vec!["assistants"])
        );
        assert_eq!(api_segments("/v1"), Some(vec![]));
        assert_eq!(api_segments("/v10/assistants"), None);
        assert_eq!(api_segments("/assistants"), None);
    }
}
