//! Messages and content parts of request items: a message in its easy or full form, each
//! content part by its type (text, images, files, refusals, an output's text), and a
//! reasoning item's text parts.

use super::fields::{
    known_fields, missing, opt_string, status_in, string, unsupported, wrong_type,
};
use super::output_text;
use crate::error::{shown, ApiError};
use crate::ids::{new_id, Kind};
use serde_json::{json, Map, Value};

const ROLES: [&str; 4] = ["user", "assistant", "system", "developer"];
const ASSISTANT_PARTS: [&str; 2] = ["output_text", "refusal"];
pub(super) const INPUT_PARTS: [&str; 3] = ["input_text", "input_image", "input_file"];
const DETAILS: [&str; 4] = ["low", "high", "auto", "original"];
const FILE_DETAILS: [&str; 3] = ["auto", "low", "high"];
/// The statuses of messages and function calls (and their outputs).
pub(super) const ITEM_STATUSES: [&str; 3] = ["in_progress", "completed", "incomplete"];

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
pub(super) fn part(value: &Value, param: &str, allowed: &[&str]) -> Result<Value, ApiError> {
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
pub(super) fn message(obj: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
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

/// A reasoning item's `summary` / `content`: an array (required or not) of `{type: kind,
/// text}` parts.
pub(super) fn texts(
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

#[cfg(test)]
mod tests {
    use super::super::parse_input;
    use super::super::tests::bad;
    use serde_json::{json, Value};

    #[test]
    fn bad_messages_and_parts_name_their_path() {
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
        // A message's status is never null, and its phase is one of the spec's.
        let (p, _) = bad(json!([{"role": "user", "content": "x", "type": "message",
                                 "status": null}]));
        assert_eq!(p, "input[0].status");
        let (p, _) = bad(json!([{"role": "assistant", "content": "x", "phase": "later"}]));
        assert_eq!(p, "input[0].phase");
        // A file's detail is a string, and not an image's `original`.
        for detail in [json!(null), json!("original")] {
            let (p, _) = bad(json!([{"role": "user", "content": [
                {"type": "input_file", "file_id": "file-1", "detail": detail}]}]));
            assert_eq!(p, "input[0].content[0].detail");
        }
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
        let (p, m) = bad(json!([{"role": "user", "content": "x", "colour": "red"}]));
        assert_eq!(p, "input[0].colour");
        assert_eq!(m, "Unknown parameter: 'input[0].colour'.");
    }
}
