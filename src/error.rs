//! The one error type every client-visible failure becomes, and its OpenAI wire shape
//! `{"error":{"message","type","param","code"}}`.

use crate::ids::Kind;
use crate::store::StoreError;
use serde_json::json;
use std::borrow::Cow;

/// How much of one piece of client input an error message or a log line shows.
pub const SHOWN_CHARS: usize = 64;

/// Longest error message and `param` answered: a safety net behind `shown`, so that no
/// message built from client input can carry much of it.
const MAX_MESSAGE_CHARS: usize = 1024;
const MAX_PARAM_CHARS: usize = 256;

/// Client input as error messages and log lines show it: at most `SHOWN_CHARS`
/// characters (then `…`), control characters escaped, so a megabyte of input is never
/// echoed and a line break in it cannot forge a log line.
pub fn shown(input: &str) -> Cow<'_, str> {
    clip(input, SHOWN_CHARS)
}

/// `shown` with another length (paths in log lines are allowed more).
pub fn clip(input: &str, max_chars: usize) -> Cow<'_, str> {
    let short = input.chars().nth(max_chars).is_none();
    if short && !input.chars().any(char::is_control) {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len().min(max_chars * 2));
    for c in input.chars().take(max_chars) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if !short {
        out.push('…');
    }
    Cow::Owned(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a value the API does not accept; `param` names the field.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<String>,
    },
    /// 401: missing or wrong API key.
    #[error("{message}")]
    Unauthorized {
        message: String,
        code: Option<String>,
    },
    /// 404: an object that does not exist (or belongs to another tenant). The Assistants
    /// API words it `No thread found with id 'x'.`, the Responses and Conversations APIs
    /// `Conversation with id 'x' not found.`
    #[error("{}", not_found_message(*kind, id))]
    NotFound { kind: Kind, id: String },
    /// 404: no such route.
    #[error("Invalid URL ({method} {path})")]
    UnknownRoute { method: String, path: String },
    /// 405: the route exists, the method does not; `allowed` goes into `Allow`.
    #[error("Invalid method for URL ({method} {path})")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<&'static str>,
    },
    /// 409: a conflicting concurrent change that retrying cannot resolve right now.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is larger than the configured limit.
    #[error("Request body too large: the limit is {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    /// 501: an operation of the API that this server does not implement yet.
    #[error("{0} is not supported by this server yet.")]
    NotImplemented(&'static str),
    /// 502: the upstream server (proxy mode) could not be reached or answered nonsense.
    #[error("The upstream Assistants server could not be reached.")]
    BadGateway,
    /// 504: the upstream server (proxy mode) did not answer in time.
    #[error("The upstream Assistants server did not answer in time.")]
    GatewayTimeout,
    /// 503: storage (or another dependency) is unreachable; the client should retry.
    #[error("The service is temporarily unavailable. Please retry your request.")]
    Unavailable,
    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    #[error("The server had an error while processing your request. Sorry about that!")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: impl Into<Option<String>>) -> Self {
        let message = message.into();
        let param = param.into();
        ApiError::InvalidRequest {
            message: capped(message, MAX_MESSAGE_CHARS),
            param: param.map(|p| capped(p, MAX_PARAM_CHARS)),
            code: None,
        }
    }

    /// A 400 naming `param`.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::invalid(message, Some(param.to_string()))
    }

    pub fn not_found(kind: Kind, id: impl AsRef<str>) -> Self {
        let id = id.as_ref().to_string();
        ApiError::NotFound {
            kind,
            id: capped(id, SHOWN_CHARS),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest { .. } => 400,
            ApiError::Unauthorized { .. } => 401,
            ApiError::NotFound { .. } | ApiError::UnknownRoute { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Internal(_) => 500,
            ApiError::NotImplemented(_) => 501,
            ApiError::BadGateway => 502,
            ApiError::GatewayTimeout => 504,
            ApiError::Unavailable => 503,
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Internal(_)
            | ApiError::Unavailable
            | ApiError::BadGateway
            | ApiError::GatewayTimeout => "server_error",
            _ => "invalid_request_error",
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            ApiError::InvalidRequest { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::InvalidRequest { code, .. } | ApiError::Unauthorized { code, .. } => {
                code.as_deref()
            }
            ApiError::Unavailable => Some("service_unavailable"),
            _ => None,
        }
    }

    /// The error object (the value under `"error"`).
    pub fn to_error_object(&self) -> serde_json::Value {
        json!({
            "message": self.to_string(),
            "type": self.error_type(),
            "param": self.param(),
            "code": self.code(),
        })
    }

    pub fn to_body(&self) -> serde_json::Value {
        json!({ "error": self.to_error_object() })
    }
}

/// The message of a 404 in the words of the API the kind belongs to.
fn not_found_message(kind: Kind, id: &str) -> String {
    match kind {
        Kind::Response
        | Kind::Conversation
        | Kind::FunctionCall
        | Kind::FunctionCallOutput
        | Kind::FileSearchCall
        | Kind::CodeInterpreterCall
        | Kind::Reasoning
        | Kind::Item
        | Kind::Container => {
            let noun = kind.noun();
            let mut first = noun.chars();
            let capital: String = first
                .next()
                .map(|c| c.to_uppercase().chain(first).collect())
                .unwrap_or_default();
            format!("{capital} with id '{id}' not found.")
        }
        _ => format!("No {} found with id '{id}'.", kind.noun()),
    }
}

/// `message` cut to `max` characters (the usual case, a short one, is not copied).
fn capped(message: String, max: usize) -> String {
    if message.chars().nth(max).is_none() {
        message
    } else {
        clip(&message, max).into_owned()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                log::warn!("storage unavailable: {cause}");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_openai() {
        let e = ApiError::not_found(Kind::Assistant, "asst_x");
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.to_body(),
            json!({"error": {"message": "No assistant found with id 'asst_x'.",
                   "type": "invalid_request_error", "param": null, "code": null}})
        );
    }

    #[test]
    fn responses_and_conversations_word_their_404s_their_way() {
        let e = ApiError::not_found(Kind::Conversation, "conv_x");
        assert_eq!(e.to_string(), "Conversation with id 'conv_x' not found.");
        let e = ApiError::not_found(Kind::Item, "msg_x");
        assert_eq!(e.to_string(), "Item with id 'msg_x' not found.");
        let e = ApiError::not_found(Kind::Thread, "thread_x");
        assert_eq!(e.to_string(), "No thread found with id 'thread_x'.");
    }

    #[test]
    fn client_input_is_shown_short_and_on_one_line() {
        assert_eq!(shown("asst_abc"), "asst_abc");
        let long = "x".repeat(10_000);
        assert_eq!(shown(&long), format!("{}…", "x".repeat(SHOWN_CHARS)));
        assert_eq!(shown("a\nb\u{0}"), "a\\nb\\u{0}");
        let e = ApiError::invalid(format!("Invalid value: '{long}'."), Some(long.clone()));
        assert!(e.to_string().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(e.param().unwrap().chars().count() <= MAX_PARAM_CHARS + 1);
        let e = ApiError::not_found(Kind::File, long);
        assert!(e.to_string().len() < 120, "{e}");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal("blob https://secret.blob.core.windows.net failed");
        assert!(!e.to_body().to_string().contains("secret"));
        assert_eq!(e.status(), 500);
    }
}
