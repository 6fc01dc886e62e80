//! `POST /responses`: the request, checked field by field in OpenAI's words, and what it
//! comes to: the run the engine takes (its tools, tool choice and response format in the
//! engine's terms) and the fields the response object echoes.

use crate::api::items::{unknown, unsupported, wrong_type, INCLUDE_VALUES};
use crate::error::ApiError;
use crate::model::values::{FileSearchOptions, FunctionDef, Metadata, RankingOptions, Tool};
use serde_json::{json, Map, Value};

/// Request fields accepted and ignored: they concern OpenAI's own models or platform.
/// (`user`, `safety_identifier`, `prompt_cache_key`, `prompt_cache_retention` and
/// `service_tier` are also echoed.)
pub const IGNORED: &[&str] = &[
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "stream_options",
    "moderation",
    "context_management",
    "background_options",
    "access_programs",
    "image",
    "verbosity",
];

/// A checked `POST /responses` request.
#[derive(Debug)]
pub struct NewResponse {
    pub model: String,
    pub input: Option<Value>,
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    pub conversation: Option<String>,
    pub store: bool,
    pub background: bool,
    pub stream: bool,
    pub tools: Vec<Tool>,
    /// The engine's tool choice (Assistants form).
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    /// The Chat Completions `response_format`, or `"auto"`.
    pub response_format: Value,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub metadata: Metadata,
    pub include: Vec<String>,
    pub reasoning_effort: Option<String>,
    pub vector_store_ids: Vec<String>,
    pub filters: Option<Value>,
    pub container_file_ids: Vec<String>,
    /// What the response object echoes of the request.
    pub echo: Map<String, Value>,
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(param, message)
}

fn coded(param: Option<&str>, message: impl Into<String>, code: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: message.into(),
        param: param.map(str::to_string),
        code: Some(code.to_string()),
    }
}

/// `value` must be one of `allowed`.
fn one_of(param: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(unsupported(param, value, allowed))
}

/// The field `name` of `body`, `None` when absent or null.
fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

fn string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

fn boolean(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(name, "a boolean", other)),
    }
}

fn number(
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

fn integer(
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

/// The `reasoning` object: the spec's fields (`Reasoning`) only, each of its type and,
/// where the spec lists them, one of its values (`mode` is any string).
fn reasoning_fields(o: &Map<String, Value>) -> Result<(), ApiError> {
    let summaries: &[&str] = &["auto", "concise", "detailed"];
    let enums: [(&str, &[&str]); 4] = [
        (
            "effort",
            &["none", "minimal", "low", "medium", "high", "xhigh", "max"],
        ),
        ("summary", summaries),
        ("generate_summary", summaries),
        ("context", &["auto", "current_turn", "all_turns"]),
    ];
    for (name, value) in o {
        let param = format!("reasoning.{name}");
        match (name.as_str(), value) {
            ("mode", Value::String(_)) => {}
            ("mode", other) => return Err(wrong_type(&param, "a string", other)),
            (field, value) => {
                let Some((_, allowed)) = enums.iter().find(|(f, _)| *f == field) else {
                    return Err(unknown(&param));
                };
                match value {
                    Value::Null => {}
                    Value::String(v) => one_of(&param, v, allowed)?,
                    other => return Err(wrong_type(&param, "a string", other)),
                }
            }
        }
    }
    Ok(())
}

/// Refuses fields of `o` other than `allowed` (`param` names `o`).
fn known(o: &Map<String, Value>, param: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unknown(&format!("{param}.{k}"))),
        None => Ok(()),
    }
}

/// The `text` object: `format` (each type with its own fields; `response_format` checks
/// their values) and `verbosity`.
fn text_fields(o: &Map<String, Value>) -> Result<(), ApiError> {
    known(o, "text", &["format", "verbosity"])?;
    if let Some(Value::String(v)) = o.get("verbosity") {
        one_of("text.verbosity", v, &["low", "medium", "high"])?;
    }
    let Some(Value::Object(format)) = o.get("format") else {
        return Ok(());
    };
    let fields: &[&str] = match format.get("type") {
        None | Some(Value::Null) => {
            return Err(coded(
                Some("text.format.type"),
                "Missing required parameter: 'text.format.type'.",
                "missing_required_parameter",
            ))
        }
        Some(Value::String(t)) if t == "json_schema" => {
            &["type", "name", "schema", "description", "strict"]
        }
        // Any other type is refused (or taken) by `response_format`.
        Some(_) => &["type"],
    };
    known(format, "text.format", fields)
}

/// Parses and checks the request body.
pub fn parse(body: &[u8], include: Vec<String>) -> Result<NewResponse, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means \
                 you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
                 payload, but what was sent was not valid JSON.",
                None,
            )
        })?
    };
    let Value::Object(body) = value else {
        return Err(ApiError::invalid(
            "Invalid request body: expected a JSON object.",
            None,
        ));
    };
    let model = string(&body, "model")?.ok_or_else(|| {
        coded(
            Some("model"),
            "Missing required parameter: 'model'.",
            "missing_required_parameter",
        )
    })?;
    let input = field(&body, "input").cloned();
    // Its items are checked where they are parsed (`api::items::parse_input`).
    if let Some(i) = &input {
        if !i.is_string() && !i.is_array() {
            return Err(wrong_type("input", "a string or an array", i));
        }
    }
    let instructions = match field(&body, "instructions") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong_type("instructions", "a string", other)),
    };
    let previous_response_id = string(&body, "previous_response_id")?;
    let conversation = match field(&body, "conversation") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => match o.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                return Err(coded(
                    Some("conversation.id"),
                    "Missing required parameter: 'conversation.id'.",
                    "missing_required_parameter",
                ))
            }
        },
        Some(other) => return Err(wrong_type("conversation", "a string or an object", other)),
    };
    if previous_response_id.is_some() && conversation.is_some() {
        return Err(coded(
            None,
            "Mutually exclusive parameters: Ensure you are only providing one of: \
             'previous_response_id' or 'conversation'.",
            "mutually_exclusive_parameters",
        ));
    }
    if input.is_none() && previous_response_id.is_none() && conversation.is_none() {
        return Err(coded(
            Some("input"),
            "Missing required parameter: 'input'.",
            "missing_required_parameter",
        ));
    }
    let store = boolean(&body, "store")?.unwrap_or(true);
    let background = boolean(&body, "background")?.unwrap_or(false);
    let stream = boolean(&body, "stream")?.unwrap_or(false);
    if background && !store {
        return Err(coded(
            Some("background"),
            "Background responses must be stored: 'background' requires 'store' to be true.",
            "invalid_value",
        ));
    }
    let temperature = number(&body, "temperature", 0.0, 2.0)?;
    let top_p = number(&body, "top_p", 0.0, 1.0)?;
    let top_logprobs = integer(&body, "top_logprobs", 0, 20)?;
    let max_output_tokens = integer(&body, "max_output_tokens", 16, u32::MAX as u64)?;
    let max_tool_calls = integer(&body, "max_tool_calls", 0, u32::MAX as u64)?;
    let parallel_tool_calls = boolean(&body, "parallel_tool_calls")?.unwrap_or(true);
    let truncation = string(&body, "truncation")?.unwrap_or_else(|| "disabled".into());
    one_of("truncation", &truncation, &["auto", "disabled"])?;
    let metadata: Metadata = match field(&body, "metadata") {
        None => Metadata::new(),
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).map_err(|_| {
            bad(
                "metadata",
                "Invalid 'metadata': values must be strings of at most 512 characters.",
            )
        })?,
        Some(other) => return Err(wrong_type("metadata", "an object", other)),
    };
    crate::api::validate::metadata("metadata", &metadata)?;
    for (i, name) in include.iter().enumerate() {
        one_of(&format!("include[{i}]"), name, &INCLUDE_VALUES)?;
    }
    let mut include = include;
    if let Some(list) = field(&body, "include") {
        let Some(list) = list.as_array() else {
            return Err(wrong_type("include", "an array", list));
        };
        for (i, v) in list.iter().enumerate() {
            let param = format!("include[{i}]");
            let Some(name) = v.as_str() else {
                return Err(wrong_type(&param, "a string", v));
            };
            one_of(&param, name, &INCLUDE_VALUES)?;
            include.push(name.to_string());
        }
    }
    let reasoning = match field(&body, "reasoning") {
        None => json!({"effort": null, "summary": null}),
        Some(Value::Object(o)) => {
            reasoning_fields(o)?;
            let effort = o.get("effort").cloned().unwrap_or(Value::Null);
            let summary = o.get("summary").cloned().unwrap_or(Value::Null);
            json!({"effort": effort, "summary": summary})
        }
        Some(other) => return Err(wrong_type("reasoning", "an object", other)),
    };
    let reasoning_effort = reasoning["effort"].as_str().map(str::to_string);
    let tools_given = match field(&body, "tools") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut parsed = tools(&tools_given)?;
    let tool_choice_given = field(&body, "tool_choice")
        .cloned()
        .unwrap_or(json!("auto"));
    let tool_choice = tool_choice(&tool_choice_given, &parsed.tools)?;
    if tool_choice_given["type"] == "allowed_tools" {
        // Only the tools it names are offered (the others stay in `tools`, as echoed).
        let allowed = tool_choice_given["tools"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        parsed.tools.retain(|t| allowed.iter().any(|a| names(a, t)));
    }
    let text = match field(&body, "text") {
        None => json!({"format": {"type": "text"}, "verbosity": "medium"}),
        Some(Value::Object(o)) => {
            text_fields(o)?;
            let mut text = Value::Object(o.clone());
            if text.get("format").is_none_or(Value::is_null) {
                text["format"] = json!({"type": "text"});
            }
            if text.get("verbosity").is_none_or(Value::is_null) {
                text["verbosity"] = json!("medium");
            }
            text
        }
        Some(other) => return Err(wrong_type("text", "an object", other)),
    };
    let response_format = response_format(&text["format"])?;
    if field(&body, "prompt").is_some() {
        return Err(bad(
            "prompt",
            "Prompt templates ('prompt') are not supported by this server: send 'instructions' \
             and 'input' instead.",
        ));
    }

    let mut echo = Map::new();
    echo.insert("instructions".into(), json!(instructions));
    echo.insert("max_output_tokens".into(), json!(max_output_tokens));
    echo.insert("max_tool_calls".into(), json!(max_tool_calls));
    echo.insert("parallel_tool_calls".into(), json!(parallel_tool_calls));
    echo.insert("previous_response_id".into(), json!(previous_response_id));
    echo.insert("reasoning".into(), reasoning);
    echo.insert("temperature".into(), json!(temperature.unwrap_or(1.0)));
    echo.insert("top_p".into(), json!(top_p.unwrap_or(1.0)));
    echo.insert("top_logprobs".into(), json!(top_logprobs.unwrap_or(0)));
    echo.insert("text".into(), text);
    echo.insert("tool_choice".into(), tool_choice_given);
    echo.insert("tools".into(), Value::Array(parsed.echo));
    echo.insert("truncation".into(), json!(truncation));
    echo.insert(
        "service_tier".into(),
        json!(string(&body, "service_tier")?.unwrap_or_else(|| "default".into())),
    );
    echo.insert(
        "safety_identifier".into(),
        json!(string(&body, "safety_identifier")?),
    );
    echo.insert(
        "prompt_cache_key".into(),
        json!(string(&body, "prompt_cache_key")?),
    );
    for optional in ["user", "prompt_cache_retention"] {
        if let Some(v) = string(&body, optional)? {
            echo.insert(optional.into(), json!(v));
        }
    }
    Ok(NewResponse {
        model,
        input,
        instructions,
        previous_response_id,
        conversation,
        store,
        background,
        stream,
        tools: parsed.tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        max_output_tokens,
        max_tool_calls,
        temperature,
        top_p,
        metadata,
        include,
        reasoning_effort,
        vector_store_ids: parsed.vector_store_ids,
        filters: parsed.filters,
        container_file_ids: parsed.container_file_ids,
        echo,
    })
}

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
    known(r, param, &["ranker", "score_threshold", "hybrid_search"])?;
    if let Some(Value::String(ranker)) = r.get("ranker") {
        one_of(
            &format!("{param}.ranker"),
            ranker,
            &["auto", "default-2024-11-15"],
        )?;
    }
    if let Some(Value::Object(h)) = r.get("hybrid_search") {
        let at = format!("{param}.hybrid_search");
        known(h, &at, &["embedding_weight", "text_weight"])?;
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
    known(
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
        Some("disabled") => known(policy, &at, &["type"]),
        Some("allowlist") => {
            known(policy, &at, &["type", "allowed_domains", "domain_secrets"])?;
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
                known(secret, &p, &fields)?;
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

struct Tools {
    tools: Vec<Tool>,
    /// The tools as the response echoes them.
    echo: Vec<Value>,
    vector_store_ids: Vec<String>,
    filters: Option<Value>,
    container_file_ids: Vec<String>,
}

/// The request's tools in the engine's terms. Function names follow Chat Completions'
/// rule (the model behind is one), and are unique.
fn tools(given: &[Value]) -> Result<Tools, ApiError> {
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
            known(o, &format!("tools[{i}]"), fields)?;
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
                let valid = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
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
fn names(entry: &Value, tool: &Tool) -> bool {
    match tool {
        Tool::Function { function } => {
            entry["type"] == "function" && entry["name"] == function.name.as_str()
        }
        Tool::FileSearch { .. } => entry["type"] == "file_search",
        Tool::CodeInterpreter {} => entry["type"] == "code_interpreter",
    }
}

/// The engine's tool choice for the request's `tool_choice`.
fn tool_choice(given: &Value, tools: &[Tool]) -> Result<Value, ApiError> {
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

/// The Chat Completions `response_format` of `text.format`.
fn response_format(format: &Value) -> Result<Value, ApiError> {
    match format["type"].as_str() {
        Some("text") | None => Ok(json!("auto")),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => {
            let name = format["name"].as_str().unwrap_or_default();
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(coded(
                    Some("text.format.name"),
                    "Invalid 'text.format.name': expected a string matching \
                     '^[A-Za-z0-9_-]{1,64}$'.",
                    "invalid_value",
                ));
            }
            if !format["schema"].is_object() {
                return Err(coded(
                    Some("text.format.schema"),
                    "Missing required parameter: 'text.format.schema'.",
                    "missing_required_parameter",
                ));
            }
            let mut schema = json!({"name": name, "schema": format["schema"]});
            if let Some(d) = format["description"].as_str() {
                schema["description"] = json!(d);
            }
            if let Some(s) = format["strict"].as_bool() {
                schema["strict"] = json!(s);
            }
            Ok(json!({"type": "json_schema", "json_schema": schema}))
        }
        Some(other) => Err(coded(
            Some("text.format.type"),
            format!(
                "Invalid value: '{}'. Supported values are: 'text', 'json_object' and \
                 'json_schema'.",
                crate::error::shown(other)
            ),
            "invalid_value",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Value) -> Result<NewResponse, ApiError> {
        parse(body.to_string().as_bytes(), Vec::new())
    }

    #[test]
    fn defaults_are_echoed() {
        let r = parsed(json!({"model": "m", "input": "hi"})).unwrap();
        assert!(r.store && !r.background && !r.stream);
        assert_eq!(r.echo["tool_choice"], "auto");
        assert_eq!(r.echo["truncation"], "disabled");
        assert_eq!(r.echo["text"]["format"]["type"], "text");
        assert_eq!(r.response_format, json!("auto"));
    }

    #[test]
    fn checks_name_the_field_and_code() {
        let e = parsed(json!({"input": "hi"})).unwrap_err();
        assert_eq!(e.param(), Some("model"));
        let e = parsed(json!({"model": "m", "input": "x", "max_output_tokens": 5})).unwrap_err();
        assert_eq!(e.code(), Some("integer_below_min_value"));
        let e = parsed(json!({"model": "m", "input": "x", "temperature": 3})).unwrap_err();
        assert_eq!(e.code(), Some("decimal_above_max_value"));
        let e = parsed(
            json!({"model": "m", "input": "x", "previous_response_id": "resp_a",
                              "conversation": "conv_a"}),
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("mutually_exclusive_parameters"));
        let e = parsed(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
            .unwrap_err();
        assert_eq!(e.param(), Some("tools[0].type"));
        let e = parsed(json!({"model": "m", "input": "x", "background": true, "store": false}))
            .unwrap_err();
        assert_eq!(e.param(), Some("background"));
    }

    #[test]
    fn reasoning_takes_its_spec_fields() {
        let r = parsed(json!({"model": "m", "input": "x", "reasoning": {
            "effort": "low", "summary": null, "context": "all_turns", "mode": "",
            "generate_summary": "concise"}}))
        .unwrap();
        assert_eq!(r.echo["reasoning"]["effort"], "low");
        for (reasoning, param) in [
            (
                json!({"effort": null, "x-unknown": 42}),
                "reasoning.x-unknown",
            ),
            (json!({"summary": "brief"}), "reasoning.summary"),
            (json!({"context": 1}), "reasoning.context"),
            (json!({"mode": null}), "reasoning.mode"),
            (json!({"effort": "extreme"}), "reasoning.effort"),
        ] {
            let e =
                parsed(json!({"model": "m", "input": "x", "reasoning": reasoning})).unwrap_err();
            assert_eq!(e.param(), Some(param), "{e}");
        }
    }

    #[test]
    fn text_takes_its_spec_fields() {
        let r = parsed(
            json!({"model": "m", "input": "x", "text": {"verbosity": null,
            "format": {"type": "json_schema", "name": "n", "schema": {}, "strict": null,
                       "description": "d"}}}),
        )
        .unwrap();
        assert_eq!(r.response_format["json_schema"]["name"], "n");
        for (text, param) in [
            (
                json!({"format": {"type": "text"}, "x-unknown": 42}),
                "text.x-unknown",
            ),
            (
                json!({"format": {"type": "text", "name": "n"}}),
                "text.format.name",
            ),
            (
                json!({"format": {"name": "n", "schema": {}}}),
                "text.format.type",
            ),
            (json!({"verbosity": "loud"}), "text.verbosity"),
            (
                json!({"format": {"type": "json_schema", "name": "n", "schema": {}, "x": 1}}),
                "text.format.x",
            ),
        ] {
            let e = parsed(json!({"model": "m", "input": "x", "text": text})).unwrap_err();
            assert_eq!(e.param(), Some(param), "{e}");
        }
    }

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
