//! The field checks of a `POST /responses` body, for `request` and `tools`: the
//! error of a bad value (with its code where OpenAI gives one), and each JSON type read
//! from an object with OpenAI's message for a wrong one.

use crate::api::items::{unsupported, wrong_type};
use crate::error::ApiError;
use serde_json::{Map, Value};

pub(super) fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(param, message)
}

pub(super) fn coded(param: Option<&str>, message: impl Into<String>, code: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: message.into(),
        param: param.map(str::to_string),
        code: Some(code.to_string()),
    }
}

/// `value` must be one of `allowed`.
pub(super) fn one_of(param: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(unsupported(param, value, allowed))
}

/// The field `name` of `body`, `None` when absent or null.
pub(super) fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

pub(super) fn string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

pub(super) fn boolean(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(name, "a boolean", other)),
    }
}

pub(super) fn number(
    body: &Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    let Some(v) = field(body, name) else {
        return Ok(None);
    };
    let Some(n) = v.as_f64() else {
        return Err(wrong_type(name, "a decimal", v));
    };
    if n < min {
        return Err(coded(
            Some(name),
            format!("Invalid '{name}': decimal below minimum value. Expected a value >= {min}, but got {n} instead."),
            "decimal_below_min_value",
        ));
    }
    if n > max {
        return Err(coded(
            Some(name),
            format!("Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but got {n} instead."),
            "decimal_above_max_value",
        ));
    }
    Ok(Some(n))
}

pub(super) fn integer(
    body: &Map<String, Value>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    let Some(v) = field(body, name) else {
        return Ok(None);
    };
    let Some(n) = v.as_i64() else {
        return Err(wrong_type(name, "an integer", v));
    };
    if n < min as i64 {
        return Err(coded(
            Some(name),
            format!("Invalid '{name}': integer below minimum value. Expected a value >= {min}, but got {n} instead."),
            "integer_below_min_value",
        ));
    }
    if n as u64 > max {
        return Err(coded(
            Some(name),
            format!("Invalid '{name}': integer above maximum value. Expected a value <= {max}, but got {n} instead."),
            "integer_above_max_value",
        ));
    }
    Ok(Some(n as u64))
}
