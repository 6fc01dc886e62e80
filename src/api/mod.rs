//! The operations of the Assistants API, independent of HTTP.
//!
//! `Backend` is the one seam between the HTTP layer and what serves the API: the stored
//! implementation (`stateful`) keeps everything in a `Store`; a proxy can forward instead.
//! - `operation`: the enum of every API operation with its path ids;
//! - `validate`, `pagination`, `types`: request parsing, list paging, shared value types
//!   (and the message request form threads, messages and runs take);
//! - `shapes`: the JSON types of every request field (from the spec), checked first;
//!   `schemas`: schema-only types for the OpenAPI document;
//! - `assistants`, `threads`, `messages`, `runs`, `files`: one module per resource; runs
//!   also have `run_options` (the run requests and their validation), `run_steps` and
//!   `tool_outputs`;
//! - `vector_stores`, `vector_store_files`, `file_batches`, `vector_search`: vector stores,
//!   their files, their file batches, and search;
//! - `conversations`: the Conversations API (a conversation is a thread); `items`: request
//!   items (`input`, a conversation's `items`) and `include[]`, shared with the Responses API;
//! - `events`: the bounded buffer between a stream's producer and its client;
//! - `stateful`: the stored backend's dispatch;
//! - `proxy`: the backend that forwards every call to an upstream Assistants server.

pub mod assistants;
pub mod conversations;
pub mod events;
pub mod file_batches;
pub mod files;
pub mod items;
pub mod messages;
pub mod operation;
pub mod pagination;
pub mod proxy;
pub mod responses;
pub mod run_options;
pub mod run_steps;
pub mod runs;
pub mod schemas;
pub mod shapes;
pub mod stateful;
pub mod threads;
pub mod tool_outputs;
pub mod types;
pub mod validate;
pub mod vector_search;
pub mod vector_store_files;
pub mod vector_stores;

use crate::error::ApiError;
use crate::ids::TypedId;
use async_trait::async_trait;
use bytes::Bytes;
pub use operation::Operation;

/// One API call, as the HTTP layer hands it over: the operation it routed to, and the
/// request as it came (a proxy forwards that as is).
#[derive(Debug)]
pub struct ApiRequest {
    pub operation: Operation,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    pub method: String,
    /// The path after `/v1`, as sent (e.g. `/threads/thread_x/runs`).
    pub path: String,
    /// The query string as sent (without `?`).
    pub raw_query: String,
    /// The request headers worth forwarding (content type, `OpenAI-Beta`, `Accept`).
    pub headers: Vec<(String, String)>,
    /// Uploads (`createFile`) arrive as a stream, never buffered whole; `body` is empty.
    pub upload: Option<Upload>,
}

/// A request body still on its way, read as it arrives.
pub struct Upload(pub futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>);

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upload(..)")
    }
}

impl ApiRequest {
    /// A request header the HTTP layer forwarded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub use events::StreamEvent;

/// A response body sent as it is read (a file download), never held whole.
pub struct BodyStream(pub futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>);

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream(..)")
    }
}

/// What an operation answers.
#[derive(Debug)]
pub enum Reply {
    /// A JSON object, status 200, with extra response headers.
    Json {
        body: serde_json::Value,
        headers: Vec<(&'static str, String)>,
    },
    /// A stream of Assistants events (`event`, `data`), written as Server-Sent Events and
    /// closed with `done` when the sender side is dropped.
    Events {
        events: events::EventReceiver,
        headers: Vec<(String, String)>,
        /// Ends with `done` / `[DONE]` (Assistants streams); Responses streams end after
        /// their terminal event.
        done: bool,
    },
    /// Any status and content type with a body streamed as it is read (file downloads, the
    /// proxy's passed-through ones): `length` becomes `Content-Length` when known.
    Stream {
        status: u16,
        content_type: String,
        length: Option<u64>,
        body: BodyStream,
        headers: Vec<(String, String)>,
    },
    /// Any status, content type and body, passed through as they are (the proxy).
    Raw {
        status: u16,
        content_type: String,
        body: Bytes,
        headers: Vec<(String, String)>,
    },
}

/// An object as the JSON an operation answers.
pub fn to_value<T: serde::Serialize>(object: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(object).map_err(ApiError::internal)
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Self {
        Reply::Json {
            body,
            headers: Vec::new(),
        }
    }
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn handle(&self, tenant: &str, request: ApiRequest) -> Result<Reply, ApiError>;
}

/// Parses an id taken from the path, once, where the request is dispatched: one of another
/// kind is a 400 (as OpenAI answered `Expected an ID that begins with 'thread'`); a malformed
/// one of the right kind can name nothing, so it is a 404. Handlers take the typed id, so only
/// ids that pass reach a storage key.
pub fn path_id<T: TypedId>(id: &str) -> Result<T, ApiError> {
    if let Some(typed) = T::parse(id) {
        return Ok(typed);
    }
    let kind = T::KIND;
    let stem = kind.prefix().trim_end_matches(['_', '-']);
    if !id.starts_with(stem) {
        return Err(ApiError::invalid_param(
            kind.param(),
            format!(
                "Invalid '{}': '{}'. Expected an ID that begins with '{stem}'.",
                kind.param(),
                crate::error::shown(id)
            ),
        ));
    }
    Err(ApiError::not_found(kind, id))
}

/// An id from a request body already checked for its prefix, or from a stored record,
/// typed: a malformed one names nothing, so it is the 404 of its kind (what looking it up
/// answered before ids were typed).
pub fn known_id<T: TypedId>(id: &str) -> Result<T, ApiError> {
    T::parse(id).ok_or_else(|| ApiError::not_found(T::KIND, id))
}
