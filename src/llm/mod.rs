//! The Chat Completions client: the only model API the service calls.
//!
//! Requests are always streamed (`stream: true`, `stream_options.include_usage`), so a run
//! can pass text on as it arrives; the answer is accumulated into a `Completion`. Backends:
//! any OpenAI-compatible base URL, or Azure OpenAI (deployment per model, `api-key` header).
//! Errors are classified for the engine: retryable (429, 5xx, network, cut-off streams) or
//! not (400-class: the prompt itself is refused). `sse`: the Server-Sent Events decoder.

pub mod sse;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Where chat completions go.
#[derive(Clone)]
pub enum LlmBackend {
    OpenAi {
        base_url: String,
        api_key: Option<String>,
    },
    Azure {
        endpoint: String,
        api_key: String,
        api_version: String,
        /// model name -> deployment name; a model not listed is used as the deployment name.
        deployments: HashMap<String, String>,
    },
}

impl std::fmt::Debug for LlmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmBackend::OpenAi { base_url, .. } => write!(f, "OpenAI-compatible at {base_url}"),
            LlmBackend::Azure { endpoint, .. } => write!(f, "Azure OpenAI at {endpoint}"),
        }
    }
}

/// A tool call as the model made it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Tokens used (of a run: summed over its model calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// The accumulated answer of one chat completion.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub text: String,
    pub refusal: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// What the engine is told while a completion streams in.
#[derive(Debug, Clone)]
pub enum Delta {
    /// The next piece of answer text.
    Text(String),
    /// A piece of tool call `index`: its id and name come with the first piece.
    ToolCall {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Worth retrying: rate limits, server errors, network trouble, cut-off streams.
    #[error("{message}")]
    Retryable {
        message: String,
        rate_limited: bool,
        retry_after: Option<Duration>,
    },
    /// The request itself is refused (400-class): retrying cannot help.
    #[error("{message}")]
    Rejected { message: String },
}

impl LlmError {
    /// The run's `last_error.code` for this failure.
    pub fn run_error_code(&self) -> &'static str {
        match self {
            LlmError::Retryable {
                rate_limited: true, ..
            } => "rate_limit_exceeded",
            LlmError::Retryable { .. } => "server_error",
            LlmError::Rejected { .. } => "invalid_prompt",
        }
    }
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    backend: LlmBackend,
    /// Longest silence tolerated between two chunks of a stream.
    idle_timeout: Duration,
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_millis(ms.max(0.0) as u64));
    }
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_millis((s.max(0.0) * 1000.0) as u64))
}

/// A non-200 answer of the model endpoint: worth retrying (rate limits, server errors) or not.
fn status_error(status: u16, retry_after: Option<Duration>, body: &str) -> LlmError {
    let message = error_message(status, body);
    match status {
        408 | 409 | 429 | 500..=599 => LlmError::Retryable {
            message,
            rate_limited: status == 429,
            retry_after,
        },
        _ => LlmError::Rejected { message },
    }
}

/// The message of an OpenAI-shaped error body, or a short excerpt of whatever came.
fn error_message(status: u16, body: &str) -> String {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    format!("The model endpoint answered {status}: {detail}")
}

impl LlmClient {
    pub fn new(backend: LlmBackend, idle_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        LlmClient {
            http,
            backend,
            idle_timeout,
        }
    }

    /// A POST to `operation` (`chat/completions`, `embeddings`) for `model`.
    fn request(&self, model: &str, operation: &str) -> reqwest::RequestBuilder {
        match &self.backend {
            LlmBackend::OpenAi { base_url, api_key } => {
                let r = self.http.post(format!("{base_url}/{operation}"));
                match api_key {
                    Some(k) => r.bearer_auth(k),
                    None => r,
                }
            }
            LlmBackend::Azure {
                endpoint,
                api_key,
                api_version,
                deployments,
            } => {
                let deployment = deployments.get(model).map(String::as_str).unwrap_or(model);
                self.http
                    .post(format!(
                        "{endpoint}/openai/deployments/{deployment}/{operation}"
                    ))
                    .query(&[("api-version", api_version)])
                    .header("api-key", api_key)
            }
        }
    }

    /// Streams one chat completion; `on_delta` sees text and tool-call pieces as they arrive.
    /// `body` is the request without `stream` (added here).
    pub async fn complete(
        &self,
        mut body: Value,
        on_delta: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<Completion, LlmError> {
        let model = body["model"].as_str().unwrap_or_default().to_string();
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let network = |e: reqwest::Error| LlmError::Retryable {
            message: format!(
                "The model endpoint could not be reached: {}",
                without_url(&e)
            ),
            rate_limited: false,
            retry_after: None,
        };
        let response = tokio::time::timeout(
            self.idle_timeout,
            self.request(&model, "chat/completions").json(&body).send(),
        )
        .await
        .map_err(|_| LlmError::Retryable {
            message: "The model endpoint did not answer in time.".into(),
            rate_limited: false,
            retry_after: None,
        })?
        .map_err(network)?;
        let status = response.status().as_u16();
        if status != 200 {
            let after = retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            return Err(status_error(status, after, &text));
        }
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            // A server that ignores `stream`: take the whole answer at once.
            let value: Value = response.json().await.map_err(|e| LlmError::Retryable {
                message: format!(
                    "The model endpoint sent an unreadable answer: {}",
                    without_url(&e)
                ),
                rate_limited: false,
                retry_after: None,
            })?;
            return Ok(completion_from_json(&value, on_delta));
        }
        let mut accumulator = Accumulator::default();
        let mut decoder = sse::Decoder::default();
        let mut response = response;
        loop {
            let chunk = tokio::time::timeout(self.idle_timeout, response.chunk())
                .await
                .map_err(|_| LlmError::Retryable {
                    message: "The model endpoint stopped sending in the middle of its answer."
                        .into(),
                    rate_limited: false,
                    retry_after: None,
                })?
                .map_err(|e| LlmError::Retryable {
                    message: format!("The model endpoint's stream broke off: {}", without_url(&e)),
                    rate_limited: false,
                    retry_after: None,
                })?;
            let Some(chunk) = chunk else {
                break;
            };
            for data in decoder.feed(&chunk) {
                if data.trim() == "[DONE]" {
                    return accumulator.finish();
                }
                let value: Value =
                    serde_json::from_str(&data).map_err(|_| LlmError::Retryable {
                        message: "The model endpoint sent a malformed stream chunk.".into(),
                        rate_limited: false,
                        retry_after: None,
                    })?;
                if let Some(err) = value.get("error") {
                    let message = err["message"].as_str().unwrap_or("unknown error");
                    return Err(LlmError::Retryable {
                        message: format!("The model endpoint reported an error: {message}"),
                        rate_limited: false,
                        retry_after: None,
                    });
                }
                accumulator.apply(&value, on_delta);
            }
        }
        // The stream ended without `[DONE]`: complete only if the model said it was done.
        accumulator.finish()
    }
}

impl LlmClient {
    /// Embeds `inputs` with `model`: one vector per input, in order.
    pub async fn embed(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let body = json!({"model": model, "input": inputs, "encoding_format": "float"});
        let response = tokio::time::timeout(
            self.idle_timeout,
            self.request(model, "embeddings").json(&body).send(),
        )
        .await
        .map_err(|_| LlmError::Retryable {
            message: "The embeddings endpoint did not answer in time.".into(),
            rate_limited: false,
            retry_after: None,
        })?
        .map_err(|e| LlmError::Retryable {
            message: format!(
                "The embeddings endpoint could not be reached: {}",
                without_url(&e)
            ),
            rate_limited: false,
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(status_error(status, after, &text));
        }
        let value: Value = serde_json::from_str(&text).map_err(|_| LlmError::Retryable {
            message: "The embeddings endpoint sent an unreadable answer.".into(),
            rate_limited: false,
            retry_after: None,
        })?;
        let mut rows: Vec<(usize, Vec<f32>)> = value["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let index = item["index"].as_u64().map(|n| n as usize).unwrap_or(i);
                        let vector = item["embedding"]
                            .as_array()
                            .map(|v| v.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect())
                            .unwrap_or_default();
                        (index, vector)
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by_key(|(i, _)| *i);
        if rows.len() != inputs.len() || rows.iter().any(|(_, v)| v.is_empty()) {
            return Err(LlmError::Retryable {
                message: format!(
                    "The embeddings endpoint answered {} vectors for {} inputs.",
                    rows.len(),
                    inputs.len()
                ),
                rate_limited: false,
                retry_after: None,
            });
        }
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}

/// reqwest errors print the URL; the URL may carry a key (Azure) or an internal host.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

fn usage_of(value: &Value) -> Option<Usage> {
    let u = value.get("usage").filter(|u| u.is_object())?;
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let completion = u["completion_tokens"].as_u64().unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: u["total_tokens"].as_u64().unwrap_or(prompt + completion),
    })
}

fn completion_from_json(value: &Value, on_delta: &mut (dyn FnMut(Delta) + Send)) -> Completion {
    let choice = &value["choices"][0];
    let message = &choice["message"];
    let text = message["content"].as_str().unwrap_or_default().to_string();
    if !text.is_empty() {
        on_delta(Delta::Text(text.clone()));
    }
    let tool_calls: Vec<ToolCall> = message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    name: c["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    arguments: c["function"]["arguments"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    for (index, call) in tool_calls.iter().enumerate() {
        on_delta(Delta::ToolCall {
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.clone(),
        });
    }
    Completion {
        text,
        refusal: message["refusal"].as_str().map(str::to_string),
        tool_calls,
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        usage: usage_of(value),
    }
}

/// Folds stream chunks into a completion.
#[derive(Default)]
struct Accumulator {
    completion: Completion,
    refusal: String,
}

impl Accumulator {
    fn apply(&mut self, chunk: &Value, on_delta: &mut (dyn FnMut(Delta) + Send)) {
        if let Some(usage) = usage_of(chunk) {
            self.completion.usage = Some(usage);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.completion.text.push_str(text);
            on_delta(Delta::Text(text.to_string()));
        }
        if let Some(refusal) = delta["refusal"].as_str() {
            self.refusal.push_str(refusal);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                let index = call["index"].as_u64().unwrap_or(0) as usize;
                while self.completion.tool_calls.len() <= index {
                    self.completion.tool_calls.push(ToolCall::default());
                }
                let slot = &mut self.completion.tool_calls[index];
                let id = call["id"].as_str().map(str::to_string);
                let name = call["function"]["name"].as_str().map(str::to_string);
                let arguments = call["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some(id) = &id {
                    slot.id = id.clone();
                }
                if let Some(name) = &name {
                    slot.name.push_str(name);
                }
                slot.arguments.push_str(&arguments);
                on_delta(Delta::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                });
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.completion.finish_reason = Some(reason.to_string());
        }
    }

    fn finish(mut self) -> Result<Completion, LlmError> {
        if self.completion.finish_reason.is_none() {
            return Err(LlmError::Retryable {
                message: "The model endpoint's stream ended before the answer was complete.".into(),
                rate_limited: false,
                retry_after: None,
            });
        }
        if !self.refusal.is_empty() {
            self.completion.refusal = Some(self.refusal);
        }
        Ok(self.completion)
    }
}
