//! Request items, shared by the Conversations and Responses endpoints: `input` (a string or
//! an array of items) checked as OpenAI checks it and normalised to full items with fresh
//! ids; the `include[]` query. The items and their calls' fields are here; what a message is
//! made of, and the field checks every part uses, have files of their own:
//! - `parts`: messages (easy and full form), their content parts, reasoning's text parts;
//! - `fields`: OpenAI's errors of a field, and the reads and checks of fields that give them.
//! - `output_text`: the annotations and log probabilities of an output message's text given
//!   back, entry by entry.

mod fields;
mod output_text;
mod parts;

use super::pagination::Query;
use crate::error::{shown, ApiError};
use crate::ids::{new_id, Kind};
use fields::{length, opt_string, present, status_in, string};
use parts::{message, part, texts, INPUT_PARTS, ITEM_STATUSES};
use serde_json::{json, Map, Value};

pub(crate) use fields::{known_fields, missing, unknown, unsupported, wrong_type};

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

/// An item echoed back opaquely (reasoning, tool calls): kept as sent, with a fresh id.
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

    /// The param and message of the error `input` is.
    pub(super) fn bad(input: Value) -> (String, String) {
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
        assert!(parse_input(
            &json!([{"type": "function_call_output", "call_id": "0",
                                     "output": "", "status": null}]),
            "input"
        )
        .is_ok());
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
        // A function call's id and namespace are strings when given.
        for field in ["id", "namespace"] {
            let mut call = json!({"type": "function_call", "call_id": "c", "name": "f",
                                  "arguments": "{}"});
            call[field] = Value::Null;
            assert_eq!(bad(json!([call])).0, format!("input[0].{field}"));
        }
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
