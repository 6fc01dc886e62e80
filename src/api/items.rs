//! Request items, shared by the Conversations and Responses endpoints: `input` (a string or
//! an array of items) checked as OpenAI checks it and normalised to full items with fresh
//! ids; the `include[]` query.

use super::output_text;
use super::pagination::Query;
use crate::error::{shown, ApiError};
use crate::ids::{new_id, Kind};
use serde_json::{json, Map, Value};

/// The values of `include` (the spec's `IncludeEnum`).
pub const INCLUDE_VALUES: [&str; 8] = [
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
];

const ROLES: [&str; 4] = ["user", "assistant", "system", "developer"];
const ASSISTANT_PARTS: [&str; 2] = ["output_text", "refusal"];
const INPUT_PARTS: [&str; 3] = ["input_text", "input_image", "input_file"];
const DETAILS: [&str; 4] = ["low", "high", "auto", "original"];
const FILE_DETAILS: [&str; 3] = ["auto", "low", "high"];
/// The statuses of messages and function calls (and their outputs).
const ITEM_STATUSES: [&str; 3] = ["in_progress", "completed", "incomplete"];

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: how OpenAI lists supported values.
fn listed(values: &[&str]) -> String {
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
fn type_name(value: &Value) -> &'static str {
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
fn known_fields(obj: &Map<String, Value>, param: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unknown(&format!("{param}.{k}"))),
        None => Ok(()),
    }
}

/// A required string field.
fn string(obj: &Map<String, Value>, param: &str, field: &str) -> Result<String, ApiError> {
    let p = format!("{param}.{field}");
    match obj.get(field) {
        None | Some(Value::Null) => Err(missing(&p)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(&p, "a string", other)),
    }
}

/// An optional string field (`null` as absent).
fn opt_string(
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

/// A file id in a part: checked for its shape only (whether the file exists is the
/// model's business when it reads it).
fn file_id(param: &str, id: &str) -> Result<(), ApiError> {
    if id.starts_with(Kind::File.prefix()) {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        param,
        format!(
            "Invalid '{}': '{}'. Expected an ID that begins with 'file'.",
            shown(param),
            shown(id)
        ),
    ))
}

/// A part's `prompt_cache_breakpoint` (accepted and ignored): null or `{"mode":
/// "explicit"}`.
fn cache_breakpoint(obj: &Map<String, Value>, param: &str) -> Result<(), ApiError> {
    let at = format!("{param}.prompt_cache_breakpoint");
    match obj.get("prompt_cache_breakpoint") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(b)) => {
            known_fields(b, &at, &["mode"])?;
            let mode = string(b, &at, "mode")?;
            if mode != "explicit" {
                return Err(unsupported(&format!("{at}.mode"), &mode, &["explicit"]));
            }
            Ok(())
        }
        Some(other) => Err(wrong_type(&at, "an object", other)),
    }
}

/// One content part of a message (or of a function call's output), normalised.
fn part(value: &Value, param: &str, allowed: &[&str]) -> Result<Value, ApiError> {
    let Value::Object(obj) = value else {
        return Err(wrong_type(param, "an object", value));
    };
    let kind = string(obj, param, "type")?;
    if !allowed.contains(&kind.as_str()) {
        return Err(unsupported(&format!("{param}.type"), &kind, allowed));
    }
    cache_breakpoint(obj, param)?;
    Ok(match kind.as_str() {
        "input_text" => {
            // `prompt_cache_breakpoint` (OpenAI's prompt cache) is accepted and ignored.
            known_fields(obj, param, &["type", "text", "prompt_cache_breakpoint"])?;
            json!({"type": "input_text", "text": string(obj, param, "text")?})
        }
        "output_text" => {
            known_fields(obj, param, &["type", "text", "annotations", "logprobs"])?;
            let text = string(obj, param, "text")?;
            let annotations =
                output_text::annotations(obj.get("annotations"), &format!("{param}.annotations"))?;
            let logprobs =
                output_text::logprobs(obj.get("logprobs"), &format!("{param}.logprobs"))?;
            json!({"type": "output_text", "text": text, "annotations": annotations,
                   "logprobs": logprobs})
        }
        "refusal" => {
            known_fields(obj, param, &["type", "refusal"])?;
            json!({"type": "refusal", "refusal": string(obj, param, "refusal")?})
        }
        "input_image" => {
            let fields = [
                "type",
                "image_url",
                "file_id",
                "detail",
                "prompt_cache_breakpoint",
            ];
            known_fields(obj, param, &fields)?;
            let image_url = opt_string(obj, param, "image_url")?;
            let file = opt_string(obj, param, "file_id")?;
            let detail = opt_string(obj, param, "detail")?.unwrap_or_else(|| "auto".into());
            if !DETAILS.contains(&detail.as_str()) {
                return Err(unsupported(&format!("{param}.detail"), &detail, &DETAILS));
            }
            let mut out = json!({"type": "input_image", "detail": detail});
            match (image_url, file) {
                (None, None) => {
                    return Err(ApiError::invalid_param(
                        param,
                        format!(
                            "Invalid '{param}': one of 'image_url' or 'file_id' must be provided."
                        ),
                    ))
                }
                (Some(url), None) => {
                    if !(url.starts_with("http://")
                        || url.starts_with("https://")
                        || url.starts_with("data:"))
                    {
                        return Err(ApiError::invalid_param(
                            &format!("{param}.image_url"),
                            format!("Invalid '{param}.image_url': expected a URL."),
                        ));
                    }
                    out["image_url"] = json!(url);
                }
                (None, Some(id)) => {
                    file_id(&format!("{param}.file_id"), &id)?;
                    out["file_id"] = json!(id);
                    out["image_url"] = Value::Null;
                }
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid_param(
                        param,
                        format!(
                            "Invalid '{param}': only one of 'image_url' or 'file_id' may be \
                             provided."
                        ),
                    ))
                }
            }
            out
        }
        "input_file" => {
            known_fields(
                obj,
                param,
                &[
                    "type",
                    "file_id",
                    "file_url",
                    "file_data",
                    "filename",
                    "detail",
                    "prompt_cache_breakpoint",
                ],
            )?;
            let mut out = json!({"type": "input_file"});
            // Not null, and no `original` (that is an image's).
            if let Some(detail) = obj.get("detail") {
                let at = format!("{param}.detail");
                let Value::String(detail) = detail else {
                    return Err(wrong_type(&at, "a string", detail));
                };
                if !FILE_DETAILS.contains(&detail.as_str()) {
                    return Err(unsupported(&at, detail, &FILE_DETAILS));
                }
                out["detail"] = json!(detail);
            }
            let mut any = false;
            for field in ["file_id", "file_url", "file_data", "filename"] {
                if let Some(v) = opt_string(obj, param, field)? {
                    if field == "file_id" {
                        file_id(&format!("{param}.file_id"), &v)?;
                    }
                    if field == "file_url"
                        && !(v.starts_with("http://") || v.starts_with("https://"))
                    {
                        return Err(ApiError::invalid_param(
                            &format!("{param}.file_url"),
                            format!("Invalid '{param}.file_url': expected a URL."),
                        ));
                    }
                    any |= field != "filename";
                    out[field] = json!(v);
                }
            }
            if !any {
                return Err(ApiError::invalid_param(
                    param,
                    format!(
                        "Invalid '{param}': one of 'file_id', 'file_url' or 'file_data' must be \
                         provided."
                    ),
                ));
            }
            out
        }
        _ => return Err(unsupported(&format!("{param}.type"), &kind, allowed)),
    })
}

/// A message item (easy or full form) normalised: `type: "message"`, content as parts.
fn message(obj: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
    known_fields(
        obj,
        param,
        &["type", "role", "content", "id", "status", "phase"],
    )?;
    let role = string(obj, param, "role")?;
    if !ROLES.contains(&role.as_str()) {
        return Err(unsupported(&format!("{param}.role"), &role, &ROLES));
    }
    status_in(obj, param, &ITEM_STATUSES, false)?;
    if obj.contains_key("id") {
        // Given back as listed; replaced by a fresh one.
        string(obj, param, "id")?;
    }
    if role == "assistant" && obj.contains_key("id") {
        // An assistant message with an id is an output message passed back (the spec's
        // `OutputMessage`): its type and status given.
        // (One with a status and no id is taken: the Agents SDK sends them.)
        string(obj, param, "type")?;
        status_in(obj, param, &ITEM_STATUSES, true)?;
    }
    if obj.contains_key("id") || obj.contains_key("status") {
        // A message with an id or a status is a whole message item (`InputMessage`,
        // `OutputMessage`), whose content is a list of parts; only the easy form takes a
        // string.
        if let Some(content @ Value::String(_)) = obj.get("content") {
            return Err(wrong_type(&format!("{param}.content"), "an array", content));
        }
    }
    if let Some(phase) = obj.get("phase").and_then(Value::as_str) {
        let phases = ["commentary", "final_answer"];
        if !phases.contains(&phase) {
            return Err(unsupported(&format!("{param}.phase"), phase, &phases));
        }
    }
    let assistant = role == "assistant";
    let allowed: &[&str] = if assistant {
        &ASSISTANT_PARTS
    } else {
        &INPUT_PARTS
    };
    let content_param = format!("{param}.content");
    let content = match obj.get("content") {
        None | Some(Value::Null) => return Err(missing(&content_param)),
        Some(Value::String(text)) if assistant => {
            vec![json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})]
        }
        Some(Value::String(text)) => vec![json!({"type": "input_text", "text": text})],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| part(p, &format!("{content_param}[{i}]"), allowed))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(wrong_type(
                &content_param,
                "one of a string or an array",
                other,
            ))
        }
    };
    let mut out = json!({
        "type": "message",
        "id": new_id(Kind::Message),
        "status": "completed",
        "role": role,
        "content": content,
    });
    if assistant {
        if let Some(phase) = opt_string(obj, param, "phase")? {
            out["phase"] = json!(phase);
        }
    }
    Ok(out)
}

/// An item echoed back opaquely (reasoning, tool calls): kept as sent, with a fresh id.
/// A code interpreter call's `outputs`: null, or logs (`{"type": "logs", "logs"}`) and images
/// (`{"type": "image", "url"}`), nothing else.
fn code_outputs(obj: &Map<String, Value>, param: &str) -> Result<(), ApiError> {
    let outputs = match obj.get("outputs") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(&format!("{param}.outputs"), "an array", other)),
    };
    for (i, output) in outputs.iter().enumerate() {
        let at = format!("{param}.outputs[{i}]");
        let Value::Object(o) = output else {
            return Err(wrong_type(&at, "an object", output));
        };
        let field = match o.get("type").and_then(Value::as_str) {
            Some("logs") => "logs",
            Some("image") => "url",
            _ => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
                return Err(unsupported(&format!("{at}.type"), kind, &["logs", "image"]));
            }
        };
        known_fields(o, &at, &["type", field])?;
        string(o, &at, field)?;
    }
    Ok(())
}

/// A file search call's `results`: null, or objects of the spec's fields, their
/// `attributes` those of a vector store file.
fn search_results(obj: &Map<String, Value>, param: &str) -> Result<(), ApiError> {
    let Some(Value::Array(results)) = obj.get("results") else {
        return Ok(());
    };
    for (i, result) in results.iter().enumerate() {
        let at = format!("{param}.results[{i}]");
        let Value::Object(r) = result else {
            return Err(wrong_type(&at, "an object", result));
        };
        let fields = ["file_id", "text", "filename", "attributes", "score"];
        known_fields(r, &at, &fields)?;
        if let Some(Value::Object(attributes)) = r.get("attributes") {
            super::vector_store_files::validate_attributes(
                &format!("{at}.attributes"),
                attributes,
            )?;
        }
    }
    Ok(())
}

/// A reasoning item's `summary` / `content`: an array (required or not) of `{type: kind,
/// text}` parts.
fn texts(
    obj: &Map<String, Value>,
    param: &str,
    field: &str,
    kind: &str,
    required: bool,
) -> Result<(), ApiError> {
    let at = format!("{param}.{field}");
    let list = match obj.get(field) {
        None | Some(Value::Null) if required => return Err(missing(&at)),
        None => return Ok(()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type(&at, "an array", other)),
    };
    for (i, part) in list.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let Value::Object(o) = part else {
            return Err(wrong_type(&at, "an object", part));
        };
        let given = string(o, &at, "type")?;
        if given != kind {
            return Err(unsupported(&format!("{at}.type"), &given, &[kind]));
        }
        known_fields(o, &at, &["type", "text"])?;
        string(o, &at, "text")?;
    }
    Ok(())
}

/// A tool call's (or its output's) `caller`: null, `{"type": "direct"}` or
/// `{"type": "program", "caller_id"}` (1 to 64 characters in an output, the spec's
/// `ToolCallCallerParam`).
fn caller(obj: &Map<String, Value>, param: &str, bounded: bool) -> Result<(), ApiError> {
    let at = format!("{param}.caller");
    let c = match obj.get("caller") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(c)) => c,
        Some(other) => return Err(wrong_type(&at, "an object", other)),
    };
    match string(c, &at, "type")?.as_str() {
        "direct" => known_fields(c, &at, &["type"]),
        "program" => {
            known_fields(c, &at, &["type", "caller_id"])?;
            let id = string(c, &at, "caller_id")?;
            if bounded {
                length(&format!("{at}.caller_id"), &id, 64)?;
            }
            Ok(())
        }
        other => Err(unsupported(
            &format!("{at}.type"),
            other,
            &["direct", "program"],
        )),
    }
}

/// A string of 1 to `max` characters.
fn length(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
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
fn status_in(
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
fn present(obj: &Map<String, Value>, param: &str, fields: &[&str]) -> Result<(), ApiError> {
    match fields.iter().find(|f| !obj.contains_key(**f)) {
        Some(f) => Err(missing(&format!("{param}.{f}"))),
        None => Ok(()),
    }
}

fn opaque(obj: &Map<String, Value>, kind: Kind) -> Value {
    let mut out = Value::Object(obj.clone());
    out["id"] = json!(new_id(kind));
    out["status"] = json!("completed");
    out
}

fn item(value: &Value, param: &str) -> Result<Value, ApiError> {
    let Value::Object(obj) = value else {
        return Err(wrong_type(param, "an object", value));
    };
    // Only an item reference's `type` may be null (the spec's `ItemReferenceParam`).
    let kind = match obj.get("type") {
        None if obj.contains_key("role") => "message".to_string(),
        Some(v @ Value::Null) if obj.contains_key("role") => {
            return Err(wrong_type(&format!("{param}.type"), "a string", v))
        }
        None | Some(Value::Null) if obj.contains_key("id") => "item_reference".to_string(),
        None | Some(Value::Null) => return Err(missing(&format!("{param}.role"))),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type(&format!("{param}.type"), "a string", other)),
    };
    Ok(match kind.as_str() {
        "message" => message(obj, param)?,
        "function_call" => {
            known_fields(
                obj,
                param,
                &[
                    "type",
                    "id",
                    "call_id",
                    "name",
                    "arguments",
                    "status",
                    "namespace",
                    "caller",
                ],
            )?;
            status_in(obj, param, &ITEM_STATUSES, false)?;
            caller(obj, param, false)?;
            // Optional, but strings (not null) when given.
            for field in ["id", "namespace"] {
                if obj.contains_key(field) {
                    string(obj, param, field)?;
                }
            }
            let mut out = json!({
                "type": "function_call",
                "id": new_id(Kind::FunctionCall),
                "status": "completed",
                "call_id": string(obj, param, "call_id")?,
                "name": string(obj, param, "name")?,
                "arguments": string(obj, param, "arguments")?,
            });
            if let Some(ns) = opt_string(obj, param, "namespace")? {
                out["namespace"] = json!(ns);
            }
            out
        }
        "function_call_output" => {
            let fields = [
                "type",
                "id",
                "call_id",
                "output",
                "status",
                "name",
                "namespace",
                "caller",
            ];
            known_fields(obj, param, &fields)?;
            // Its status may be null here (the spec's `FunctionCallOutputItemParam`).
            if obj.get("status").is_some_and(|s| !s.is_null()) {
                status_in(obj, param, &ITEM_STATUSES, false)?;
            }
            caller(obj, param, true)?;
            // The spec's bounds: `call_id` and `namespace` 1 to 64 characters (the
            // namespace a name's), `name` 1 to 128.
            for (field, max) in [("call_id", 64), ("name", 128), ("namespace", 64)] {
                if let Some(v) = opt_string(obj, param, field)? {
                    let at = format!("{param}.{field}");
                    length(&at, &v, max)?;
                    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
                    if field == "namespace" && !v.chars().all(word) {
                        return Err(ApiError::invalid_param(
                            &at,
                            format!(
                                "Invalid '{}': string does not match pattern. Expected a string \
                                 that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                                shown(&at)
                            ),
                        ));
                    }
                }
            }
            // The spec lets it out (null), and the item answered has one: "" then. A
            // response refuses an output that answers no call.
            let call_id = opt_string(obj, param, "call_id")?.unwrap_or_default();
            let output_param = format!("{param}.output");
            let output = match obj.get("output") {
                None | Some(Value::Null) => return Err(missing(&output_param)),
                Some(Value::String(s)) => json!(s),
                Some(Value::Array(parts)) => Value::Array(
                    parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| part(p, &format!("{output_param}[{i}]"), &INPUT_PARTS))
                        .collect::<Result<_, _>>()?,
                ),
                Some(other) => {
                    return Err(wrong_type(
                        &output_param,
                        "one of a string or an array",
                        other,
                    ))
                }
            };
            json!({
                "type": "function_call_output",
                "id": new_id(Kind::FunctionCallOutput),
                "status": "completed",
                "call_id": call_id,
                "output": output,
            })
        }
        "item_reference" => {
            known_fields(obj, param, &["type", "id"])?;
            json!({"type": "item_reference", "id": string(obj, param, "id")?})
        }
        "reasoning" => {
            let fields = [
                "type",
                "id",
                "encrypted_content",
                "summary",
                "content",
                "status",
            ];
            known_fields(obj, param, &fields)?;
            // The spec requires its id, a string (the stored one is the server's).
            string(obj, param, "id")?;
            texts(obj, param, "summary", "summary_text", true)?;
            texts(obj, param, "content", "reasoning_text", false)?;
            status_in(
                obj,
                param,
                &["in_progress", "completed", "incomplete"],
                false,
            )?;
            opaque(obj, Kind::Reasoning)
        }
        "file_search_call" => {
            known_fields(obj, param, &["type", "id", "status", "queries", "results"])?;
            present(obj, param, &["id", "status", "queries"])?;
            // Its id is a string (the stored one is the server's).
            string(obj, param, "id")?;
            search_results(obj, param)?;
            let statuses = [
                "in_progress",
                "searching",
                "completed",
                "incomplete",
                "failed",
            ];
            status_in(obj, param, &statuses, true)?;
            opaque(obj, Kind::FileSearchCall)
        }
        "code_interpreter_call" => {
            let fields = ["type", "id", "status", "container_id", "code", "outputs"];
            known_fields(obj, param, &fields)?;
            // The spec requires them all (`code` and `outputs` may be null, `id` and
            // `container_id` are strings); the stored id and status are the server's.
            present(
                obj,
                param,
                &["id", "status", "container_id", "code", "outputs"],
            )?;
            string(obj, param, "id")?;
            string(obj, param, "container_id")?;
            code_outputs(obj, param)?;
            let statuses = [
                "in_progress",
                "completed",
                "incomplete",
                "interpreting",
                "failed",
            ];
            status_in(obj, param, &statuses, true)?;
            opaque(obj, Kind::CodeInterpreterCall)
        }
        other => {
            return Err(unsupported(
                &format!("{param}.type"),
                other,
                &[
                    "message",
                    "function_call",
                    "function_call_output",
                    "item_reference",
                    "reasoning",
                    "file_search_call",
                    "code_interpreter_call",
                ],
            ))
        }
    })
}

/// `input` (or a conversation's `items`, named by `param`): a string (one user message with
/// one `input_text` part) or an array of items, each checked and normalised to its full form
/// with a fresh id of its kind and `status: "completed"` (`call_id`s are kept).
/// `item_reference` items are kept as they are, for the caller to resolve.
pub fn parse_input(value: &Value, param: &str) -> Result<Vec<Value>, ApiError> {
    match value {
        Value::String(text) => Ok(vec![json!({
            "type": "message",
            "id": new_id(Kind::Message),
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &format!("{param}[{i}]")))
            .collect(),
        Value::Null => Err(missing(param)),
        other => Err(wrong_type(param, "one of a string or an array", other)),
    }
}

/// `include[]=a&include[]=b` or `include=a&include=b`: each value in the spec's
/// `IncludeEnum`.
pub fn parse_include(query: &Query) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for (name, value) in query {
        if name != "include" && name != "include[]" {
            continue;
        }
        if !INCLUDE_VALUES.contains(&value.as_str()) {
            return Err(unsupported("include", value, &INCLUDE_VALUES));
        }
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(input: Value) -> (String, String) {
        let e = parse_input(&input, "input").unwrap_err();
        assert_eq!(e.status(), 400);
        (e.param().unwrap_or_default().to_string(), e.to_string())
    }

    #[test]
    fn a_string_is_one_user_message() {
        let items = parse_input(&json!("hi"), "input").unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(items[0]["role"], "user");
        assert_eq!(items[0]["status"], "completed");
        assert_eq!(
            items[0]["content"],
            json!([{"type": "input_text", "text": "hi"}])
        );
    }

    #[test]
    fn items_are_normalised_with_fresh_ids() {
        let items = parse_input(
            &json!([
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"type": "message", "role": "developer", "id": "msg_old", "status": "incomplete",
                 "content": [{"type": "input_text", "text": "d"}]},
                {"role": "user", "content": [
                    {"type": "input_image", "file_id": "file-1"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"},
                    {"type": "input_file", "file_id": "file-2"}]},
                {"type": "function_call", "id": "fc_given", "call_id": "call_1", "name": "f",
                 "arguments": "{\"a\":1}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                {"type": "function_call_output", "call_id": "call_2",
                 "output": [{"type": "input_text", "text": "x"}]},
                {"type": "reasoning", "id": "rs_old", "summary": []},
                {"type": "file_search_call", "id": "fs_old", "queries": ["q"], "status": "completed"},
                {"type": "code_interpreter_call", "id": "ci_old", "code": "1", "outputs": null,
                 "container_id": "cntr_1", "status": "completed"},
                {"type": "item_reference", "id": "msg_ref"},
            ]),
            "input",
        )
        .unwrap();
        let prefixes = [
            "msg_", "msg_", "msg_", "msg_", "fc_", "fco_", "fco_", "rs_", "fs_", "ci_",
        ];
        for (item, prefix) in items.iter().zip(prefixes) {
            let id = item["id"].as_str().unwrap();
            assert!(id.starts_with(prefix) && id.len() > 20, "{item}");
            assert_eq!(item["status"], "completed", "{item}");
        }
        assert_eq!(
            items[1]["content"],
            json!([{"type": "output_text", "text": "a", "annotations": [], "logprobs": []}])
        );
        assert_eq!(items[2]["role"], "developer");
        assert_eq!(items[3]["content"][0]["detail"], "auto");
        assert_eq!(items[3]["content"][0]["image_url"], Value::Null);
        assert_eq!(items[3]["content"][1]["detail"], "high");
        assert_eq!(items[4]["call_id"], "call_1");
        assert_eq!(items[4]["arguments"], "{\"a\":1}");
        assert_eq!(items[6]["output"][0]["text"], "x");
        assert_eq!(items[9]["container_id"], "cntr_1");
        assert_eq!(
            items[10],
            json!({"type": "item_reference", "id": "msg_ref"})
        );
    }

    #[test]
    fn bad_items_name_their_path() {
        let (p, m) =
            bad(json!([{"role": "user", "content": "x"}, {"role": "boss", "content": "x"}]));
        assert_eq!(p, "input[1].role");
        assert!(m.contains("Supported values are: 'user', 'assistant', 'system', and 'developer'"));
        let (p, m) =
            bad(json!([{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]));
        assert_eq!(p, "input[0].content[0].type");
        assert_eq!(
            m,
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."
        );
        let (p, _) =
            bad(json!([{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]));
        assert_eq!(p, "input[0].content[0].type");
        let (p, _) = bad(json!([{"role": "user", "content": [{"type": "input_image"}]}]));
        assert_eq!(p, "input[0].content[0]");
        let (p, _) = bad(json!([{"role": "user", "content": [
            {"type": "input_image", "file_id": "asst_1"}]}]));
        assert_eq!(p, "input[0].content[0].file_id");
        let (p, _) = bad(json!([{"role": "user", "content": [
            {"type": "input_image", "file_id": "file-1", "detail": "max"}]}]));
        assert_eq!(p, "input[0].content[0].detail");
        let (p, m) = bad(json!([{"type": "function_call", "call_id": "c", "name": "f"}]));
        assert_eq!(p, "input[0].arguments");
        assert_eq!(m, "Missing required parameter: 'input[0].arguments'.");
        let (p, _) = bad(
            json!([{"type": "function_call", "call_id": "c", "name": "f",
                                  "arguments": {}}]),
        );
        assert_eq!(p, "input[0].arguments");
        let (p, _) = bad(json!([{"type": "function_call_output", "call_id": "c", "output": 1}]));
        assert_eq!(p, "input[0].output");
        // A built-in call's id (and a code interpreter call's container) is a string.
        let (p, _) = bad(
            json!([{"type": "code_interpreter_call", "id": null, "code": null,
                                 "outputs": [], "container_id": "", "status": "failed"}]),
        );
        assert_eq!(p, "input[0].id");
        let (p, _) = bad(
            json!([{"type": "code_interpreter_call", "id": "ci_1", "code": null,
                                 "outputs": null, "container_id": null, "status": "failed"}]),
        );
        assert_eq!(p, "input[0].container_id");
        let (p, _) = bad(
            json!([{"type": "file_search_call", "id": null, "queries": [],
                                 "status": "completed"}]),
        );
        assert_eq!(p, "input[0].id");
        // A reasoning item has an id and a summary of `summary_text` parts.
        let (p, _) = bad(json!([{"type": "reasoning", "summary": [], "status": "completed"}]));
        assert_eq!(p, "input[0].id");
        let (p, _) = bad(json!([{"type": "reasoning", "id": "rs_1"}]));
        assert_eq!(p, "input[0].summary");
        let (p, _) = bad(json!([{"type": "reasoning", "id": "rs_1", "summary": [
            {"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b", "x": 1}]}]));
        assert_eq!(p, "input[0].summary[1].x");
        let (p, _) = bad(json!([{"type": "reasoning", "id": "rs_1", "summary": [],
                                 "content": [{"type": "summary_text", "text": "a"}]}]));
        assert_eq!(p, "input[0].content[0].type");
        let (p, _) = bad(json!([{"type": "reasoning", "id": "rs_1", "summary": [],
                                 "status": null}]));
        assert_eq!(p, "input[0].status");
        // Statuses are the spec's (a function call output's may be null).
        let (p, _) = bad(json!([{"type": "function_call_output", "call_id": "0",
                                 "output": "", "status": "AAA"}]));
        assert_eq!(p, "input[0].status");
        let (p, _) = bad(
            json!([{"type": "function_call", "call_id": "c", "name": "f",
                                 "arguments": "{}", "status": "done"}]),
        );
        assert_eq!(p, "input[0].status");
        let (p, _) = bad(json!([{"role": "user", "content": "x", "type": "message",
                                 "status": null}]));
        assert_eq!(p, "input[0].status");
        let (p, _) = bad(json!([{"role": "assistant", "content": "x", "phase": "later"}]));
        assert_eq!(p, "input[0].phase");
        assert!(parse_input(
            &json!([{"type": "function_call_output", "call_id": "0",
                                     "output": "", "status": null}]),
            "input"
        )
        .is_ok());
        // A file's detail is a string, and not an image's `original`.
        for detail in [json!(null), json!("original")] {
            let (p, _) = bad(json!([{"role": "user", "content": [
                {"type": "input_file", "file_id": "file-1", "detail": detail}]}]));
            assert_eq!(p, "input[0].content[0].detail");
        }
        // A file search call's results have the spec's fields.
        let results = |r: Value| {
            bad(
                json!([{"type": "file_search_call", "id": "fs_1", "queries": [],
                        "status": "completed", "results": [r]}]),
            )
            .0
        };
        assert_eq!(
            results(json!({"text": "", "x": 42})),
            "input[0].results[0].x"
        );
        assert_eq!(
            results(json!({"attributes": {"k": {}}})),
            "input[0].results[0].attributes.k"
        );
        // An assistant message with an id is a whole output message.
        let output = json!({"type": "message", "role": "assistant", "id": "msg_1",
                            "status": "completed", "content": []});
        assert!(parse_input(&json!([output.clone()]), "input").is_ok());
        for (field, value, at) in [
            ("status", None, "input[0].status"),
            ("type", None, "input[0].type"),
            ("id", Some(Value::Null), "input[0].id"),
            ("content", Some(json!("text")), "input[0].content"),
        ] {
            let mut item = output.clone();
            match value {
                Some(v) => item[field] = v,
                None => {
                    item.as_object_mut().map(|o| o.remove(field));
                }
            }
            assert_eq!(bad(json!([item])).0, at, "{field}");
        }
        // A file's URL is one.
        let (p, _) = bad(json!([{"role": "user", "content": [
            {"type": "input_file", "file_url": "AAA"}]}]));
        assert_eq!(p, "input[0].content[0].file_url");
        // A function call's id and namespace are strings when given.
        for field in ["id", "namespace"] {
            let mut call = json!({"type": "function_call", "call_id": "c", "name": "f",
                                  "arguments": "{}"});
            call[field] = Value::Null;
            assert_eq!(bad(json!([call])).0, format!("input[0].{field}"));
        }
        // A part's cache breakpoint.
        let part = |b: Value| {
            bad(json!([{"role": "user", "content": [
                {"type": "input_text", "text": "x", "prompt_cache_breakpoint": b}]}]))
            .0
        };
        let bp = "input[0].content[0].prompt_cache_breakpoint";
        assert_eq!(
            part(json!({"mode": "explicit", "x": 42})),
            format!("{bp}.x")
        );
        assert_eq!(part(json!({"mode": "implicit"})), format!("{bp}.mode"));
        assert_eq!(part(json!({})), format!("{bp}.mode"));
        // Callers, and an output's bounded strings.
        let out = |extra: Value| {
            let mut item = json!({"type": "function_call_output", "call_id": "c", "output": ""});
            for (k, v) in extra.as_object().into_iter().flatten() {
                item[k] = v.clone();
            }
            bad(json!([item])).0
        };
        let program = json!({"type": "program", "caller_id": "0", "x": 42});
        assert_eq!(out(json!({"caller": program})), "input[0].caller.x");
        assert_eq!(
            out(json!({"caller": {"type": "program"}})),
            "input[0].caller.caller_id"
        );
        assert_eq!(
            out(json!({"caller": {"type": "robot"}})),
            "input[0].caller.type"
        );
        assert_eq!(out(json!({"call_id": ""})), "input[0].call_id");
        assert_eq!(out(json!({"name": "n".repeat(129)})), "input[0].name");
        assert_eq!(out(json!({"namespace": "a b"})), "input[0].namespace");
        let (p, _) = bad(
            json!([{"type": "function_call", "call_id": "c", "name": "f",
                                 "arguments": "{}", "caller": {"type": "direct", "y": 1}}]),
        );
        assert_eq!(p, "input[0].caller.y");
        let (p, _) = bad(json!([{"type": "web_search_call", "id": "ws_1"}]));
        assert_eq!(p, "input[0].type");
        let (p, m) = bad(json!([{"role": "user", "content": "x", "colour": "red"}]));
        assert_eq!(p, "input[0].colour");
        assert_eq!(m, "Unknown parameter: 'input[0].colour'.");
        let (p, _) = bad(json!([{"content": "x"}]));
        assert_eq!(p, "input[0].role");
        let (p, _) = bad(json!(["x"]));
        assert_eq!(p, "input[0]");
        let (p, _) = bad(json!({"role": "user"}));
        assert_eq!(p, "input");
    }

    #[test]
    fn include_takes_both_spellings_and_only_known_values() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let got = parse_include(&q(&[
            ("include[]", "file_search_call.results"),
            ("include", "message.output_text.logprobs"),
            ("limit", "3"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec!["file_search_call.results", "message.output_text.logprobs"]
        );
        let e = parse_include(&q(&[("include[]", "everything")])).unwrap_err();
        assert_eq!(e.param(), Some("include"));
        assert!(e.to_string().contains("'everything'"), "{e}");
    }
}
