//! The errors of request items' fields, in OpenAI's words (an unsupported value, a missing,
//! unknown or mistyped parameter), and the reads and checks of fields that return them.

use crate::error::{shown, ApiError};
use serde_json::{Map, Value};

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: how OpenAI lists supported values.
pub(super) fn listed(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

pub(crate) fn unsupported(param: &str, value: &str, supported: &[&str]) -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "Invalid value: '{}'. Supported values are: {}.",
            shown(value),
            listed(supported)
        ),
        param: Some(param.to_string()),
        code: Some("invalid_value".into()),
    }
}

pub(crate) fn missing(param: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!("Missing required parameter: '{}'.", shown(param)),
        param: Some(param.to_string()),
        code: Some("missing_required_parameter".into()),
    }
}

pub(crate) fn unknown(param: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!("Unknown parameter: '{}'.", shown(param)),
        param: Some(param.to_string()),
        code: Some("unknown_parameter".into()),
    }
}

/// The JSON type of a value, as OpenAI's messages name it.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn wrong_type(param: &str, expected: &str, value: &Value) -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "Invalid type for '{}': expected {expected}, but got {} instead.",
            shown(param),
            type_name(value)
        ),
        param: Some(param.to_string()),
        code: Some("invalid_type".into()),
    }
}

/// Refuses fields other than `allowed`.
pub(crate) fn known_fields(
    obj: &Map<String, Value>,
    param: &str,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unknown(&format!("{param}.{k}"))),
        None => Ok(()),
    }
}

/// A required string field.
pub(super) fn string(
    obj: &Map<String, Value>,
    param: &str,
    field: &str,
) -> Result<String, ApiError> {
    let p = format!("{param}.{field}");
    match obj.get(field) {
        None | Some(Value::Null) => Err(missing(&p)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(&p, "a string", other)),
    }
}

/// An optional string field (`null` as absent).
pub(super) fn opt_string(
    obj: &Map<String, Value>,
    param: &str,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(&format!("{param}.{field}"), "a string", other)),
    }
}

/// A string of 1 to `max` characters.
pub(super) fn length(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n == 0 {
        return Err(ApiError::InvalidRequest {
            message: format!(
                "Invalid '{}': empty string. Expected a string with minimum length 1, but got an \
                 empty string instead.",
                shown(param)
            ),
            param: Some(param.to_string()),
            code: Some("empty_string".into()),
        });
    }
    if n > max {
        return Err(ApiError::InvalidRequest {
            message: format!(
                "Invalid '{}': string too long. Expected a string with maximum length {max}, \
                 but got a string with length {n} instead.",
                shown(param)
            ),
            param: Some(param.to_string()),
            code: Some("string_above_max_length".into()),
        });
    }
    Ok(())
}

/// An item's `status` is one of `statuses` (it must be there when `required`; it is never
/// null: the spec's call and reasoning items type it as a string).
pub(super) fn status_in(
    obj: &Map<String, Value>,
    param: &str,
    statuses: &[&str],
    required: bool,
) -> Result<(), ApiError> {
    let status = match obj.get("status") {
        None if !required => None,
        Some(v @ Value::Null) if !required => {
            return Err(wrong_type(&format!("{param}.status"), "a string", v))
        }
        _ => Some(string(obj, param, "status")?),
    };
    match status {
        Some(status) if !statuses.contains(&status.as_str()) => {
            Err(unsupported(&format!("{param}.status"), &status, statuses))
        }
        _ => Ok(()),
    }
}

/// Each of `fields` must be there (null counts, where the spec allows it).
pub(super) fn present(
    obj: &Map<String, Value>,
    param: &str,
    fields: &[&str],
) -> Result<(), ApiError> {
    match fields.iter().find(|f| !obj.contains_key(**f)) {
        Some(f) => Err(missing(&format!("{param}.{f}"))),
        None => Ok(()),
    }
}
