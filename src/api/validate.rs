//! Request parsing and the value rules shared by every resource, each failure a 400 naming
//! the field (`param`) in OpenAI's words.

use crate::error::ApiError;
use crate::ids::TypedId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Parses a JSON body into `T`. Unknown fields (which `T` denies) become "Unrecognized request
/// argument supplied", type errors name the field's path.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    // Every request body is a JSON object (serde would read an array positionally).
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid(
            "Invalid request body: expected a JSON object.",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            return unparsable();
        }
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            // serde puts the unknown field itself at the end of the path (a.b.field), or
            // only the enclosing value when a nested deserialiser reported it (tools[0]).
            let parent = match path.rsplit_once('.') {
                Some((parent, last)) if last == field => parent.to_string(),
                _ if path.ends_with(field) || path == "." => String::new(),
                _ => path.clone(),
            };
            let shown = if parent.is_empty() || parent == "." {
                field.to_string()
            } else {
                format!("{parent}.{field}")
            };
            return ApiError::invalid(
                format!(
                    "Unrecognized request argument supplied: {}",
                    crate::error::shown(&shown)
                ),
                None,
            );
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let full = if path == "." || path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::invalid(format!("Missing required parameter: '{full}'."), Some(full));
        }
        let mut param = if path == "." || path.is_empty() {
            None
        } else {
            Some(path.clone())
        };
        let mut message = shorten_quoted(&plain_types(strip_position(&message)));
        // A nested deserialiser names the field inside the value: "... (at 'a.b')".
        if let Some(start) = message.rfind(" (at '") {
            let inner = message[start + 6..].trim_end_matches("')").to_string();
            message.truncate(start);
            param = Some(match param {
                Some(p) => format!("{p}.{inner}"),
                None => inner,
            });
        }
        match &param {
            Some(p) => ApiError::invalid(
                format!(
                    "Invalid value for '{}': {message}.",
                    crate::error::clip(p, 128)
                ),
                param,
            ),
            None => ApiError::invalid(format!("Invalid request body: {message}."), None),
        }
    })?;
    // Text after the object (`{"model": "m"} garbage`) makes the body malformed JSON; serde
    // stops reading at the object's end, so it must be asked to check the rest.
    de.end().map_err(|_| unparsable())?;
    Ok(value)
}

fn unparsable() -> ApiError {
    ApiError::invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you \
         aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but \
         what was sent was not valid JSON.)",
        None,
    )
}

/// Like `parse_body`, for operations whose body the API requires (an empty one is a 400).
pub fn parse_required_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "We could not parse the JSON body of your request: this request needs a JSON object \
             body.",
            None,
        ));
    }
    parse_body(body)
}

/// serde's messages name Rust types; clients know JSON ones.
fn plain_types(message: &str) -> String {
    message
        .replace("expected f64", "expected a number")
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected an object")
        .replace("expected u64", "expected a non-negative integer")
}

/// serde quotes the values it complains about (`invalid type: string "…"`, ``unknown variant
/// `…` ``); each is shortened, so a megabyte of input is not echoed.
pub(crate) fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == c {
                closed = true;
                break;
            }
            inner.push(d);
            if d == '\\' {
                if let Some(escaped) = chars.next() {
                    inner.push(escaped);
                }
            }
        }
        out.push_str(&crate::error::shown(&inner));
        if closed {
            out.push(c);
        }
    }
    out
}

/// serde_json appends " at line 1 column 17": useless to an API client.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// A field that distinguishes absent (`None`) from an explicit `null` (`Some(None)`), for
/// modify requests where `null` clears a value.
pub fn nullable<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

use crate::model::values::Metadata;

/// Metadata: at most 16 pairs, keys up to 64 characters, values up to 512.
pub fn metadata(param: &str, value: &Metadata) -> Result<(), ApiError> {
    if value.len() > 16 {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': too many properties. Expected an object with at most 16 \
                 properties, but got an object with {} properties instead.",
                value.len()
            ),
        ));
    }
    for (k, v) in value {
        if k.chars().count() > 64 {
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "Invalid '{param}': metadata keys can be at most 64 characters long, but \
                     got a key of {} characters.",
                    k.chars().count()
                ),
            ));
        }
        if v.chars().count() > 512 {
            return Err(ApiError::invalid_param(
                &format!("{param}.{k}"),
                format!(
                    "Invalid '{param}.{k}': string too long. Expected a string with maximum \
                     length 512, but got a string with length {} instead.",
                    v.chars().count()
                ),
            ));
        }
    }
    Ok(())
}

pub fn max_chars(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len > max {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length \
                 {max}, but got a string with length {len} instead."
            ),
        ));
    }
    Ok(())
}

pub fn non_empty(param: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': empty string. Expected a string with minimum length 1, \
                 but got an empty string instead."
            ),
        ));
    }
    Ok(())
}

pub fn range(param: &str, value: f64, min: f64, max: f64) -> Result<(), ApiError> {
    if !(min..=max).contains(&value) || value.is_nan() {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': {value} is out of range. Expected a value between {min} \
                 and {max}."
            ),
        ));
    }
    Ok(())
}

pub fn max_items<T>(param: &str, items: &[T], max: usize) -> Result<(), ApiError> {
    if items.len() > max {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': array too long. Expected an array with maximum length \
                 {max}, but got an array with length {} instead.",
                items.len()
            ),
        ));
    }
    Ok(())
}

/// An id in a request body or query, parsed where the body is validated: it must have the
/// kind's prefix (a 400, as OpenAI answered). One with the prefix that is malformed can name
/// nothing: it is `None`, which the caller answers as a missing object (a 404) where it
/// would have looked the object up.
pub fn id<T: TypedId>(param: &str, value: &str) -> Result<Option<T>, ApiError> {
    let stem = T::KIND.prefix().trim_end_matches(['_', '-']);
    if !value.starts_with(stem) {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': '{}'. Expected an ID that begins with '{stem}'.",
                crate::error::shown(value),
            ),
        ));
    }
    Ok(T::parse(value))
}

/// An id in a request body that must name an object at once: a wrong prefix is a 400, a
/// malformed id the 404 of the object it cannot name.
pub fn existing_id<T: TypedId>(param: &str, value: &str) -> Result<T, ApiError> {
    id::<T>(param, value)?.ok_or_else(|| ApiError::not_found(T::KIND, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        model: String,
        temperature: Option<f64>,
    }

    fn error_of(body: &str) -> (String, Option<String>) {
        match parse_body::<Probe>(body.as_bytes()).unwrap_err() {
            ApiError::InvalidRequest { message, param, .. } => (message, param),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_unrecognized_arguments() {
        let (message, _) = error_of(r#"{"model":"m","bogus":1}"#);
        assert_eq!(message, "Unrecognized request argument supplied: bogus");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let (message, param) = error_of(r#"{"model":"m","temperature":"hot"}"#);
        assert_eq!(param.as_deref(), Some("temperature"));
        assert!(message.contains("temperature"), "{message}");
    }

    #[test]
    fn missing_fields_and_bad_json_are_400s() {
        let (message, param) = error_of(r#"{}"#);
        assert_eq!(param.as_deref(), Some("model"));
        assert!(message.contains("Missing required parameter"));
        let (message, _) = error_of(r#"{"model":"#);
        assert!(message.contains("could not parse the JSON body"));
    }

    #[test]
    fn values_in_messages_are_shortened() {
        let long = "v".repeat(100_000);
        let body = format!(r#"{{"model":"m","temperature":"{long}"}}"#);
        let (message, param) = error_of(&body);
        assert_eq!(param.as_deref(), Some("temperature"));
        assert!(message.len() < 200, "{message}");
        let body = format!(r#"{{"model":"m","{long}":1}}"#);
        let (message, _) = error_of(&body);
        assert!(message.len() < 200, "{message}");
        assert_eq!(
            shorten_quoted(r#"invalid type: string "a\"b", expected `x`"#),
            r#"invalid type: string "a\"b", expected `x`"#
        );
    }

    #[test]
    fn text_after_the_body_is_malformed_json() {
        for body in [
            r#"{"model":"m"} garbage"#,
            r#"{"model":"m"}}"#,
            r#"{"model":"m"}{}"#,
        ] {
            let (message, param) = error_of(body);
            assert!(message.contains("could not parse the JSON body"), "{body}");
            assert_eq!(param, None);
        }
        assert!(parse_body::<Probe>(b"{\"model\":\"m\"} \r\n").is_ok());
    }

    #[test]
    fn only_objects_are_bodies() {
        let (message, _) = error_of(r#"["m", 1.0]"#);
        assert!(message.contains("expected a JSON object"), "{message}");
        assert!(parse_required_body::<Probe>(b"  ").is_err());
    }

    #[test]
    fn metadata_limits() {
        let mut m = Metadata::new();
        for i in 0..16 {
            m.insert(format!("k{i}"), "v".into());
        }
        assert!(metadata("metadata", &m).is_ok());
        m.insert("k16".into(), "v".into());
        assert!(metadata("metadata", &m).is_err());
        let long_value: Metadata = [("k".to_string(), "x".repeat(513))].into();
        assert!(metadata("metadata", &long_value).is_err());
        let long_key: Metadata = [("k".repeat(65), "x".to_string())].into();
        assert!(metadata("metadata", &long_key).is_err());
    }
}
