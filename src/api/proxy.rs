//! The proxy backend: every call forwarded to an upstream Assistants-compatible server,
//! request for request, behind this service's own keys. Statuses, bodies (JSON, file bytes,
//! error bodies) and the headers clients read come back as the upstream sent them; streams
//! are relayed event by event as they arrive.

use super::{ApiRequest, Backend, Reply, StreamEvent};
use crate::error::ApiError;
use crate::llm::sse::Decoder;
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

/// Response headers worth passing back: the ones SDKs read.
const PASSED_BACK: &[&str] = &[
    "x-request-id",
    "openai-poll-after-ms",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "openai-version",
    "content-disposition",
];

pub struct Proxy {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    tenant_keys: std::collections::HashMap<String, String>,
    /// Longest wait for the upstream's answer to begin (and between stream chunks).
    timeout: Duration,
    /// Bytes of events a relayed stream holds for a client that does not read them.
    sse_buffer_bytes: usize,
}

impl Proxy {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        tenant_keys: std::collections::HashMap<String, String>,
        timeout: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Proxy {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            tenant_keys,
            timeout,
            sse_buffer_bytes: 1 << 20,
        }
    }

    /// How many bytes of events a relayed stream may hold for a client that does not read.
    pub fn with_sse_buffer(mut self, bytes: usize) -> Self {
        self.sse_buffer_bytes = bytes;
        self
    }
}

fn passed_back(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    PASSED_BACK
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn transport_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::GatewayTimeout
    } else {
        log::warn!("upstream request failed: {}", e.without_url());
        ApiError::BadGateway
    }
}

#[async_trait]
impl Backend for Proxy {
    async fn handle(&self, tenant: &str, request: ApiRequest) -> Result<Reply, ApiError> {
        let mut url = format!("{}{}", self.base_url, request.path);
        if !request.raw_query.is_empty() {
            url.push('?');
            url.push_str(&request.raw_query);
        }
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).map_err(ApiError::internal)?;
        let mut upstream = self.http.request(method, url);
        for (name, value) in &request.headers {
            upstream = upstream.header(name.as_str(), value.as_str());
        }
        // Each tenant's own upstream key if it has one, so tenants stay apart upstream.
        if let Some(key) = self.tenant_keys.get(tenant).or(self.api_key.as_ref()) {
            upstream = upstream.bearer_auth(key);
        }
        if let Some(upload) = request.upload {
            upstream = upstream.body(reqwest::Body::wrap_stream(upload.0));
        } else if !request.body.is_empty() {
            upstream = upstream.body(request.body.clone());
        }
        let response = tokio::time::timeout(self.timeout, upstream.send())
            .await
            .map_err(|_| ApiError::GatewayTimeout)?
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = passed_back(response.headers());
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        if status == 200 && content_type.starts_with("text/event-stream") {
            return Ok(self.relay(response, headers, request.path.starts_with("/responses")));
        }
        if status == 200 && matches!(request.operation, super::Operation::DownloadFile { .. }) {
            // File bytes pass through as they arrive, never held whole (a file may be
            // hundreds of MB); a silent upstream ends the download.
            let length = response.content_length();
            let idle = self.timeout;
            let chunks =
                futures::stream::unfold(Some(response.bytes_stream()), move |body| async move {
                    let mut body = body?;
                    let item = match tokio::time::timeout(idle, body.next()).await {
                        Ok(Some(Ok(bytes))) => Ok(bytes),
                        Ok(Some(Err(e))) => Err(std::io::Error::other(e.without_url())),
                        Ok(None) => return None,
                        Err(_) => Err(std::io::Error::other("the upstream went silent")),
                    };
                    // After an error the stream ends.
                    let rest = item.is_ok().then_some(body);
                    Some((item, rest))
                })
                .boxed();
            return Ok(Reply::Stream {
                status,
                content_type,
                length,
                body: super::BodyStream(chunks),
                headers,
            });
        }
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .map_err(|_| ApiError::GatewayTimeout)?
            .map_err(transport_error)?;
        Ok(Reply::Raw {
            status,
            content_type,
            body,
            headers,
        })
    }
}

impl Proxy {
    /// Relays an upstream event stream as it arrives. Our own `done` closes the relayed
    /// stream, so the upstream's is dropped; a stream that breaks off ends with an `error`.
    fn relay(
        &self,
        mut response: reqwest::Response,
        headers: Vec<(String, String)>,
        responses: bool,
    ) -> Reply {
        let (tx, rx) = super::events::channel(self.sse_buffer_bytes, "a relayed stream");
        let idle = self.timeout;
        tokio::spawn(async move {
            let mut decoder = Decoder::default();
            loop {
                let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => return,
                    Ok(Err(_)) | Err(_) => {
                        let e = ApiError::BadGateway.to_error_object();
                        let mut payload = e.clone();
                        payload["error"] = e;
                        let _ = tx.send(StreamEvent {
                            name: Cow::Borrowed("error"),
                            data: payload.to_string(),
                        });
                        return;
                    }
                };
                for (event, data) in decoder.feed_events(&chunk) {
                    let name = event.unwrap_or_else(|| "message".into());
                    if name == "done" || data.trim() == "[DONE]" {
                        return;
                    }
                    // JSON data passes as it came; anything else as a JSON string.
                    let data = if serde_json::from_str::<serde::de::IgnoredAny>(&data).is_ok() {
                        data
                    } else {
                        Value::String(data).to_string()
                    };
                    // A client that went away or fell behind: stop reading the upstream.
                    if tx
                        .send(StreamEvent {
                            name: Cow::Owned(name),
                            data,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Reply::Events {
            events: rx,
            headers,
            // Responses streams have no `[DONE]`.
            done: !responses,
        }
    }
}
