//! The annotations and log probabilities of an `output_text` part given back as input (an
//! output message in a response's `input` or a conversation's `items`). They are stored
//! and shown again as they came, so each entry is checked field by field as the spec
//! types it (`Annotation`, `LogProb`, `TopLogProb`): no field missing, none unknown.

use super::fields::{missing, unknown, unsupported, wrong_type};
use crate::api::shapes::safe_integer;
use crate::error::ApiError;
use serde_json::Value;

/// What a field of an entry holds.
#[derive(Clone, Copy)]
enum Field {
    Text,
    /// An absolute URI (RFC 3986: a scheme, then only URI characters).
    Uri,
    Integer,
    Number,
    /// A list of integers (a token's bytes).
    Integers,
    /// A list of `TopLogProb` entries.
    TopLogprobs,
}

use Field::*;

/// The annotation types and their fields besides `type` (all required).
const ANNOTATIONS: [(&str, &[(&str, Field)]); 4] = [
    (
        "file_citation",
        &[("file_id", Text), ("filename", Text), ("index", Integer)],
    ),
    (
        "url_citation",
        &[
            ("url", Uri),
            ("title", Text),
            ("start_index", Integer),
            ("end_index", Integer),
        ],
    ),
    (
        "container_file_citation",
        &[
            ("container_id", Text),
            ("file_id", Text),
            ("filename", Text),
            ("start_index", Integer),
            ("end_index", Integer),
        ],
    ),
    ("file_path", &[("file_id", Text), ("index", Integer)]),
];

const LOGPROB: [(&str, Field); 4] = [
    ("token", Text),
    ("logprob", Number),
    ("bytes", Integers),
    ("top_logprobs", TopLogprobs),
];

const TOP_LOGPROB: [(&str, Field); 3] = [("token", Text), ("logprob", Number), ("bytes", Integers)];

/// A part's `annotations` (absent or null: none), checked.
pub(crate) fn annotations(value: Option<&Value>, param: &str) -> Result<Value, ApiError> {
    let entries = list(value, param)?;
    let types: Vec<&str> = ANNOTATIONS.iter().map(|(kind, _)| *kind).collect();
    for (n, entry) in entries.iter().enumerate() {
        let at = format!("{param}[{n}]");
        let Value::Object(obj) = entry else {
            return Err(wrong_type(&at, "an object", entry));
        };
        let kind = match obj.get("type") {
            None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
        };
        let Some((_, fields)) = ANNOTATIONS.iter().find(|(k, _)| *k == kind) else {
            return Err(unsupported(&format!("{at}.type"), kind, &types));
        };
        entry_fields(entry, &at, fields, &["type"])?;
    }
    Ok(Value::Array(entries.to_vec()))
}

/// A part's `logprobs` (absent or null: none), checked.
pub(crate) fn logprobs(value: Option<&Value>, param: &str) -> Result<Value, ApiError> {
    let entries = list(value, param)?;
    for (n, entry) in entries.iter().enumerate() {
        entry_fields(entry, &format!("{param}[{n}]"), &LOGPROB, &[])?;
    }
    Ok(Value::Array(entries.to_vec()))
}

fn list<'a>(value: Option<&'a Value>, param: &str) -> Result<&'a [Value], ApiError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(entries)) => Ok(entries),
        Some(other) => Err(wrong_type(param, "an array", other)),
    }
}

/// An object with exactly `fields` (each required) and the `also` fields checked elsewhere.
fn entry_fields(
    entry: &Value,
    at: &str,
    fields: &[(&str, Field)],
    also: &[&str],
) -> Result<(), ApiError> {
    let Value::Object(obj) = entry else {
        return Err(wrong_type(at, "an object", entry));
    };
    let known = |k: &str| also.contains(&k) || fields.iter().any(|(name, _)| *name == k);
    if let Some(k) = obj.keys().find(|k| !known(k)) {
        return Err(unknown(&format!("{at}.{k}")));
    }
    for (name, field) in fields {
        let p = format!("{at}.{name}");
        let value = match obj.get(*name) {
            None | Some(Value::Null) => return Err(missing(&p)),
            Some(value) => value,
        };
        match field {
            Text if !value.is_string() => return Err(wrong_type(&p, "a string", value)),
            Uri => match value.as_str() {
                Some(text) if is_uri(text) => {}
                Some(_) => return Err(invalid(&p, "expected an absolute URL")),
                None => return Err(wrong_type(&p, "a string", value)),
            },
            Integer => integer(value, &p)?,
            Number if !value.is_number() => return Err(wrong_type(&p, "a number", value)),
            Integers | TopLogprobs => {
                let Value::Array(items) = value else {
                    return Err(wrong_type(&p, "an array", value));
                };
                for (n, item) in items.iter().enumerate() {
                    let item_at = format!("{p}[{n}]");
                    match field {
                        TopLogprobs => entry_fields(item, &item_at, &TOP_LOGPROB, &[])?,
                        _ => integer(item, &item_at)?,
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn integer(value: &Value, at: &str) -> Result<(), ApiError> {
    if !(value.is_i64() || value.is_u64()) {
        return Err(wrong_type(at, "an integer", value));
    }
    safe_integer(value, at)
}

/// RFC 3986's absolute URI, as JSON Schema's `uri` format reads it: the URL parser finds
/// a scheme, and every character is one a URI may hold (no spaces, nothing beyond ASCII;
/// the parser alone would percent-encode those).
fn is_uri(text: &str) -> bool {
    let uri_char = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    text.chars().all(uri_char) && reqwest::Url::parse(text).is_ok()
}

fn invalid(at: &str, why: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!("Invalid '{at}': {why}."),
        param: Some(at.to_string()),
        code: Some("invalid_value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(result: Result<Value, ApiError>) -> String {
        match result {
            Err(ApiError::InvalidRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn absent_or_null_lists_are_empty() {
        assert_eq!(annotations(None, "a").ok(), Some(json!([])));
        assert_eq!(logprobs(Some(&Value::Null), "l").ok(), Some(json!([])));
    }

    #[test]
    fn whole_entries_pass_as_they_are() {
        let given = json!([
            {"type": "file_citation", "file_id": "file-1", "filename": "a.txt", "index": 3},
            {"type": "url_citation", "url": "https://x", "title": "X",
             "start_index": 0, "end_index": 4},
        ]);
        assert_eq!(annotations(Some(&given), "a").ok(), Some(given.clone()));
        let logs = json!([{"token": "Hi", "logprob": -0.5, "bytes": [72, 105],
                           "top_logprobs": [{"token": "Hi", "logprob": -0.5, "bytes": [72]}]}]);
        assert_eq!(logprobs(Some(&logs), "l").ok(), Some(logs.clone()));
    }

    #[test]
    fn entries_are_checked_field_by_field() {
        let unknown_field = json!([{"token": "t", "logprob": 0, "bytes": [], "top_logprobs": [],
                                    "extra": 42}]);
        assert_eq!(param_of(logprobs(Some(&unknown_field), "l")), "l[0].extra");
        let nested = json!([{"token": "t", "logprob": 0, "bytes": [],
                             "top_logprobs": [{"token": "t", "logprob": 0}]}]);
        assert_eq!(
            param_of(logprobs(Some(&nested), "l")),
            "l[0].top_logprobs[0].bytes"
        );
        let float_byte = json!([{"token": "t", "logprob": 0, "bytes": [1.5], "top_logprobs": []}]);
        assert_eq!(param_of(logprobs(Some(&float_byte), "l")), "l[0].bytes[0]");
        let huge = json!([{"type": "file_path", "file_id": "f", "index": 9007199254740992_u64}]);
        assert_eq!(param_of(annotations(Some(&huge), "a")), "a[0].index");
        let kind = json!([{"type": "quote", "file_id": "f"}]);
        assert_eq!(param_of(annotations(Some(&kind), "a")), "a[0].type");
        let missing_title = json!([{"type": "url_citation", "url": "https://u", "start_index": 0,
                                    "end_index": 1}]);
        assert_eq!(
            param_of(annotations(Some(&missing_title), "a")),
            "a[0].title"
        );
        assert_eq!(param_of(annotations(Some(&json!({})), "a")), "a");
        for url in [
            "",
            "no scheme",
            "https://a b",
            "https://é.example",
            "/relative",
        ] {
            let cite = json!([{"type": "url_citation", "url": url, "title": "t",
                               "start_index": 0, "end_index": 1}]);
            assert_eq!(
                param_of(annotations(Some(&cite), "a")),
                "a[0].url",
                "{url:?}"
            );
        }
    }
}
