//! The `tools` and `tool_choice` of a `POST /responses` request: each tool type's spec
//! fields checked, the tools in the engine's terms (a function, `file_search` with its
//! stores and filter, `code_interpreter` with its container's files), and the engine's tool
//! choice.

use super::fields::{bad, coded, one_of};
use crate::api::items::{known_fields, unsupported, wrong_type};
use crate::api::types::valid_function_name;
use crate::error::ApiError;
use crate::model::values::{FileSearchOptions, FunctionDef, RankingOptions, Tool};
use serde_json::{json, Map, Value};

/// The fields of each tool type the server runs (the spec's `FunctionTool`,
/// `FileSearchTool`, `CodeInterpreterTool`).
const TOOL_FIELDS: [(&str, &[&str]); 3] = [
    (
        "function",
        &[
            "type",
            "name",
            "description",
            "parameters",
            "output_schema",
            "strict",
            "defer_loading",
            "allowed_callers",
        ],
    ),
    (
        "file_search",
        &[
            "type",
            "vector_store_ids",
            "max_num_results",
            "ranking_options",
            "filters",
        ],
    ),
    (
        "code_interpreter",
        &["type", "container", "allowed_callers"],
    ),
];

/// A tool's `allowed_callers`: null, or `direct` / `programmatic` (at least one where
/// `non_empty`).
fn callers(o: &Map<String, Value>, param: &str, non_empty: bool) -> Result<(), ApiError> {
    let Some(Value::Array(list)) = o.get("allowed_callers") else {
        return Ok(());
    };
    let param = format!("{param}.allowed_callers");
    if non_empty && list.is_empty() {
        return Err(coded(
            Some(&param),
            format!("Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead."),
            "empty_array",
        ));
    }
    for (j, caller) in list.iter().enumerate() {
        if let Some(c) = caller.as_str() {
            one_of(&format!("{param}[{j}]"), c, &["direct", "programmatic"])?;
        }
    }
    Ok(())
}

/// A file search tool's `ranking_options`: its fields, a known `ranker`, and both weights
/// of a `hybrid_search`.
fn ranking_fields(r: &Value, param: &str) -> Result<(), ApiError> {
    let Value::Object(r) = r else {
        return Err(wrong_type(param, "an object", r));
    };
    known_fields(r, param, &["ranker", "score_threshold", "hybrid_search"])?;
    if let Some(Value::String(ranker)) = r.get("ranker") {
        one_of(
            &format!("{param}.ranker"),
            ranker,
            &["auto", "default-2024-11-15"],
        )?;
    }
    if let Some(Value::Object(h)) = r.get("hybrid_search") {
        let at = format!("{param}.hybrid_search");
        known_fields(h, &at, &["embedding_weight", "text_weight"])?;
        required(h, &at, &["embedding_weight", "text_weight"])?;
    }
    Ok(())
}

/// Each of `fields` is in `o` and not null.
fn required(o: &Map<String, Value>, param: &str, fields: &[&str]) -> Result<(), ApiError> {
    match fields
        .iter()
        .find(|f| o.get(**f).is_none_or(Value::is_null))
    {
        Some(f) => Err(coded(
            Some(&format!("{param}.{f}")),
            format!("Missing required parameter: '{param}.{f}'."),
            "missing_required_parameter",
        )),
        None => Ok(()),
    }
}

/// An `auto` code interpreter container: its fields, at most 50 files, a known memory
/// limit, and a network policy of its type's fields (the container's network is the
/// server's sandbox's, whatever the policy says).
fn container_fields(c: &Map<String, Value>, param: &str) -> Result<(), ApiError> {
    known_fields(
        c,
        param,
        &["type", "file_ids", "memory_limit", "network_policy"],
    )?;
    if let Some(Value::Array(files)) = c.get("file_ids") {
        if files.len() > 50 {
            return Err(coded(
                Some(&format!("{param}.file_ids")),
                format!("Invalid '{param}.file_ids': array too long. Expected an array with maximum length 50, but got an array with length {} instead.", files.len()),
                "array_above_max_length",
            ));
        }
    }
    if let Some(Value::String(limit)) = c.get("memory_limit") {
        one_of(
            &format!("{param}.memory_limit"),
            limit,
            &["1g", "4g", "16g", "64g"],
        )?;
    }
    let Some(Value::Object(policy)) = c.get("network_policy") else {
        return Ok(());
    };
    let at = format!("{param}.network_policy");
    let kind = policy.get("type").and_then(Value::as_str);
    match kind {
        Some("disabled") => known_fields(policy, &at, &["type"]),
        Some("allowlist") => {
            known_fields(policy, &at, &["type", "allowed_domains", "domain_secrets"])?;
            required(policy, &at, &["allowed_domains"])?;
            for field in ["allowed_domains", "domain_secrets"] {
                if let Some(Value::Array(list)) = policy.get(field) {
                    if list.is_empty() {
                        return Err(coded(
                            Some(&format!("{at}.{field}")),
                            format!("Invalid '{at}.{field}': empty array. Expected an array with minimum length 1, but got an empty array instead."),
                            "empty_array",
                        ));
                    }
                }
            }
            let secrets = policy.get("domain_secrets").and_then(Value::as_array);
            for (j, secret) in secrets.into_iter().flatten().enumerate() {
                let p = format!("{at}.domain_secrets[{j}]");
                let Value::Object(secret) = secret else {
                    return Err(wrong_type(&p, "an object", secret));
                };
                let fields = ["domain", "name", "value"];
                known_fields(secret, &p, &fields)?;
                required(secret, &p, &fields)?;
                if let Some(f) = fields.iter().find(|f| secret[**f] == "") {
                    return Err(bad(
                        &format!("{p}.{f}"),
                        format!("Invalid '{p}.{f}': empty string."),
                    ));
                }
            }
            Ok(())
        }
        None => Err(coded(
            Some(&format!("{at}.type")),
            format!("Missing required parameter: '{at}.type'."),
            "missing_required_parameter",
        )),
        Some(other) => Err(unsupported(
            &format!("{at}.type"),
            other,
            &["disabled", "allowlist"],
        )),
    }
}

/// The request's tools: the engine's, and what the response echoes and the run takes of them.
pub(super) struct Tools {
    pub(super) tools: Vec<Tool>,
    /// The tools as the response echoes them.
    pub(super) echo: Vec<Value>,
    pub(super) vector_store_ids: Vec<String>,
    pub(super) filters: Option<Value>,
    pub(super) container_file_ids: Vec<String>,
}

/// The request's tools in the engine's terms. Function names follow Chat Completions'
/// rule (the model behind is one), and are unique.
pub(super) fn tools(given: &[Value]) -> Result<Tools, ApiError> {
    let mut out = Tools {
        tools: Vec::new(),
        echo: Vec::new(),
        vector_store_ids: Vec::new(),
        filters: None,
        container_file_ids: Vec::new(),
    };
    for (i, t) in given.iter().enumerate() {
        let at = |f: &str| format!("tools[{i}].{f}");
        let Some(o) = t.as_object() else {
            return Err(wrong_type(&format!("tools[{i}]"), "an object", t));
        };
        let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(fields) = TOOL_FIELDS.iter().find(|(k, _)| *k == kind).map(|(_, f)| f) {
            known_fields(o, &format!("tools[{i}]"), fields)?;
            callers(o, &format!("tools[{i}]"), kind == "code_interpreter")?;
        }
        match kind {
            "function" => {
                let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                    coded(
                        Some(&at("name")),
                        format!("Missing required parameter: '{}'.", at("name")),
                        "missing_required_parameter",
                    )
                })?;
                if !valid_function_name(name) {
                    return Err(coded(
                        Some(&at("name")),
                        format!(
                            "Invalid '{}': string does not match pattern. Expected a string \
                             that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'.",
                            at("name")
                        ),
                        "invalid_value",
                    ));
                }
                let duplicate = out
                    .tools
                    .iter()
                    .any(|t| matches!(t, Tool::Function { function } if function.name == name));
                if duplicate {
                    return Err(bad(
                        &at("name"),
                        format!("Duplicate function name '{name}' in 'tools'."),
                    ));
                }
                // Required, and may be null (the spec's `FunctionTool`, the SDKs' types).
                let parameters = match o.get("parameters") {
                    None => {
                        return Err(coded(
                            Some(&at("parameters")),
                            format!("Missing required parameter: '{}'.", at("parameters")),
                            "missing_required_parameter",
                        ))
                    }
                    Some(Value::Null) => None,
                    Some(p @ Value::Object(_)) => Some(p.clone()),
                    Some(other) => return Err(wrong_type(&at("parameters"), "an object", other)),
                };
                let strict = match o.get("strict") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(other) => return Err(wrong_type(&at("strict"), "a boolean", other)),
                };
                let description = o
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                out.tools.push(Tool::Function {
                    function: FunctionDef {
                        name: name.to_string(),
                        description: description.clone(),
                        parameters: parameters.clone(),
                        strict,
                    },
                });
                out.echo.push(json!({
                    "type": "function", "name": name, "description": description,
                    "parameters": parameters, "strict": strict.unwrap_or(true),
                }));
            }
            "file_search" => {
                let ids = match o.get("vector_store_ids") {
                    Some(Value::Array(ids)) => ids,
                    _ => {
                        return Err(coded(
                            Some(&at("vector_store_ids")),
                            format!("Missing required parameter: '{}'.", at("vector_store_ids")),
                            "missing_required_parameter",
                        ))
                    }
                };
                for (j, id) in ids.iter().enumerate() {
                    let param = format!("tools[{i}].vector_store_ids[{j}]");
                    let Some(id) = id.as_str() else {
                        return Err(wrong_type(&param, "a string", id));
                    };
                    out.vector_store_ids.push(id.to_string());
                }
                let max = match o.get("max_num_results") {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_i64() {
                        Some(n @ 1..=50) => Some(n),
                        _ => {
                            return Err(bad(
                                &at("max_num_results"),
                                format!(
                                    "Invalid '{}': expected an integer between 1 and 50.",
                                    at("max_num_results")
                                ),
                            ))
                        }
                    },
                };
                let ranking = o.get("ranking_options").filter(|v| !v.is_null());
                let ranking_options = match ranking {
                    None => None,
                    Some(r) => {
                        ranking_fields(r, &at("ranking_options"))?;
                        let threshold = r["score_threshold"].as_f64().unwrap_or(0.0);
                        if !(0.0..=1.0).contains(&threshold) {
                            return Err(bad(
                                &at("ranking_options.score_threshold"),
                                "Invalid 'score_threshold': expected a number between 0 and 1.",
                            ));
                        }
                        Some(RankingOptions {
                            ranker: r["ranker"].as_str().map(str::to_string),
                            score_threshold: threshold,
                        })
                    }
                };
                out.filters = o.get("filters").filter(|v| !v.is_null()).cloned();
                if let Some(f) = &out.filters {
                    crate::api::vector_search::validate_filter(f, &at("filters"))?;
                }
                out.tools.push(Tool::FileSearch {
                    file_search: Some(FileSearchOptions {
                        max_num_results: max,
                        ranking_options,
                    }),
                });
                out.echo.push(t.clone());
            }
            "code_interpreter" => {
                match o.get("container") {
                    Some(Value::Object(c)) => {
                        let auto = c.get("type").and_then(Value::as_str) == Some("auto");
                        if !auto {
                            return Err(bad(
                                &at("container.type"),
                                "Only containers of type 'auto' are supported by this server.",
                            ));
                        }
                        container_fields(c, &at("container"))?;
                        if let Some(Value::Array(files)) = c.get("file_ids") {
                            for f in files.iter().filter_map(Value::as_str) {
                                out.container_file_ids.push(f.to_string());
                            }
                        }
                    }
                    Some(Value::String(_)) => {
                        return Err(bad(
                            &at("container"),
                            "Named containers are not supported by this server: use \
                             {\"type\": \"auto\"}.",
                        ))
                    }
                    _ => {
                        return Err(coded(
                            Some(&at("container")),
                            format!("Missing required parameter: '{}'.", at("container")),
                            "missing_required_parameter",
                        ))
                    }
                }
                out.tools.push(Tool::CodeInterpreter {});
                out.echo.push(t.clone());
            }
            other => {
                return Err(coded(
                    Some(&at("type")),
                    format!(
                        "Invalid value: '{}'. This server supports the tool types 'function', \
                         'file_search' and 'code_interpreter'.",
                        crate::error::shown(other)
                    ),
                    "invalid_value",
                ))
            }
        }
    }
    Ok(out)
}

/// Whether an `allowed_tools` entry (`{"type": "function", "name"}`, `{"type":
/// "file_search"}`...) names `tool`.
pub(super) fn names(entry: &Value, tool: &Tool) -> bool {
    match tool {
        Tool::Function { function } => {
            entry["type"] == "function" && entry["name"] == function.name.as_str()
        }
        Tool::FileSearch { .. } => entry["type"] == "file_search",
        Tool::CodeInterpreter {} => entry["type"] == "code_interpreter",
    }
}

/// The engine's tool choice for the request's `tool_choice`.
pub(super) fn tool_choice(given: &Value, tools: &[Tool]) -> Result<Value, ApiError> {
    match given {
        Value::String(s) => {
            one_of("tool_choice", s, &["none", "auto", "required"])?;
            Ok(given.clone())
        }
        Value::Object(o) => {
            let fields: &[&str] = match o.get("type").and_then(Value::as_str) {
                Some("function") => &["type", "name"],
                Some("allowed_tools") => &["type", "mode", "tools"],
                _ => &["type"],
            };
            if let Some(k) = o.keys().find(|k| !fields.contains(&k.as_str())) {
                return Err(crate::api::items::unknown(&format!("tool_choice.{k}")));
            }
            tool_choice_object(o, tools)
        }
        other => Err(wrong_type("tool_choice", "a string or an object", other)),
    }
}

/// The engine's tool choice for an object `tool_choice`.
fn tool_choice_object(
    o: &serde_json::Map<String, Value>,
    tools: &[Tool],
) -> Result<Value, ApiError> {
    match o.get("type").and_then(Value::as_str) {
        Some("function") => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
            let known = tools
                .iter()
                .any(|t| matches!(t, Tool::Function { function } if function.name == name));
            if !known {
                return Err(bad(
                    "tool_choice",
                    format!(
                        "Tool choice '{}' not found in 'tools' parameter.",
                        crate::error::shown(name)
                    ),
                ));
            }
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        Some(t @ ("file_search" | "code_interpreter")) => Ok(json!({ "type": t })),
        Some("allowed_tools") => {
            for field in ["mode", "tools"] {
                if o.get(field).is_none_or(Value::is_null) {
                    let param = format!("tool_choice.{field}");
                    return Err(coded(
                        Some(&param),
                        format!("Missing required parameter: '{param}'."),
                        "missing_required_parameter",
                    ));
                }
            }
            if let Some(tools) = o.get("tools").filter(|t| !t.is_array()) {
                return Err(wrong_type("tool_choice.tools", "an array", tools));
            }
            let mode = o.get("mode").and_then(Value::as_str).unwrap_or("auto");
            one_of("tool_choice.mode", mode, &["auto", "required"])?;
            Ok(json!(mode))
        }
        _ => Err(bad(
            "tool_choice.type",
            "Invalid 'tool_choice.type': expected 'function', 'file_search', \
                 'code_interpreter' or 'allowed_tools'.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::parsed;
    use super::*;

    #[test]
    fn tools_take_their_spec_fields() {
        let ok = parsed(json!({"model": "m", "input": "x", "tools": [
            {"type": "function", "name": "f", "parameters": null, "strict": null,
             "allowed_callers": [], "defer_loading": false, "output_schema": null},
            {"type": "file_search", "vector_store_ids": [], "ranking_options": {
                "ranker": "auto", "hybrid_search": {"embedding_weight": 1, "text_weight": 1}}},
            {"type": "code_interpreter", "allowed_callers": ["direct"], "container": {
                "type": "auto", "memory_limit": "1g", "network_policy": {
                    "type": "allowlist", "allowed_domains": ["a.example"],
                    "domain_secrets": [{"domain": "a.example", "name": "n", "value": "v"}]}}},
        ]}));
        assert!(ok.is_ok(), "{ok:?}");
        let code = |container: Value| json!({"type": "code_interpreter", "container": container});
        for (tool, param) in [
            (
                json!({"type": "function", "name": "f", "parameters": null, "x": 1}),
                "tools[0].x",
            ),
            (
                json!({"type": "function", "name": "f", "strict": true}),
                "tools[0].parameters",
            ),
            (
                json!({"type": "function", "name": "f", "x": 1}),
                "tools[0].x",
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [], "x": 1}),
                "tools[0].x",
            ),
            (
                json!({"type": "code_interpreter", "container": {"type": "auto"},
                    "x-unknown": 42}),
                "tools[0].x-unknown",
            ),
            (
                json!({"type": "code_interpreter", "container": {"type": "auto"},
                    "allowed_callers": []}),
                "tools[0].allowed_callers",
            ),
            (
                json!({"type": "function", "name": "f", "allowed_callers": ["anyone"]}),
                "tools[0].allowed_callers[0]",
            ),
            (
                code(json!({"type": "auto", "y": 1})),
                "tools[0].container.y",
            ),
            (
                code(json!({"type": "auto", "memory_limit": "2g"})),
                "tools[0].container.memory_limit",
            ),
            (
                code(json!({"type": "auto", "network_policy": {"type": "open"}})),
                "tools[0].container.network_policy.type",
            ),
            (
                code(json!({"type": "auto", "network_policy": {"type": "disabled", "z": 1}})),
                "tools[0].container.network_policy.z",
            ),
            (
                code(json!({"type": "auto", "network_policy": {"type": "allowlist"}})),
                "tools[0].container.network_policy.allowed_domains",
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [],
                    "ranking_options": {"ranker": "best"}}),
                "tools[0].ranking_options.ranker",
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [], "filters": {}}),
                "tools[0].filters.type",
            ),
            (
                json!({"type": "file_search", "vector_store_ids": [],
                    "ranking_options": {"hybrid_search": {"text_weight": 1}}}),
                "tools[0].ranking_options.hybrid_search.embedding_weight",
            ),
        ] {
            let e = parsed(json!({"model": "m", "input": "x", "tools": [tool]})).unwrap_err();
            assert_eq!(e.param(), Some(param), "{e}");
        }
    }

    #[test]
    fn tools_become_the_engines() {
        let r = parsed(json!({"model": "m", "input": "x", "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 3},
            {"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-1"]}},
        ], "tool_choice": {"type": "function", "name": "f"},
           "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}}}))
        .unwrap();
        assert_eq!(r.tools.len(), 3);
        assert_eq!(r.vector_store_ids, vec!["vs_1".to_string()]);
        assert_eq!(r.container_file_ids, vec!["file-1".to_string()]);
        assert_eq!(r.tool_choice["function"]["name"], "f");
        assert_eq!(r.response_format["json_schema"]["strict"], true);
        assert_eq!(r.echo["tools"][0]["strict"], true);
    }

    #[test]
    fn allowed_tools_offer_only_the_named_ones() {
        let r = parsed(json!({"model": "m", "input": "x", "tools": [
            {"type": "function", "name": "f", "parameters": null},
            {"type": "function", "name": "g", "parameters": null},
            {"type": "file_search", "vector_store_ids": []}],
            "tool_choice": {"type": "allowed_tools", "mode": "required",
                            "tools": [{"type": "function", "name": "g"}]}}))
        .unwrap();
        assert_eq!(r.tool_choice, json!("required"));
        assert!(matches!(&r.tools[..], [Tool::Function { function }] if function.name == "g"));
        assert_eq!(r.echo["tools"].as_array().map(Vec::len), Some(3));
    }
}
