//! `POST /responses`: the request, checked field by field in OpenAI's words, and what it
//! comes to: the run the engine takes (its tools, tool choice and response format in the
//! engine's terms) and the fields the response object echoes.

use super::fields::{bad, boolean, coded, field, integer, number, one_of, string};
use super::tools::{names, tool_choice, tools};
use crate::api::items::{known_fields, unknown, wrong_type, INCLUDE_VALUES};
use crate::api::types::valid_function_name;
use crate::error::ApiError;
use crate::model::values::{Metadata, Tool};
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

/// The `text` object: `format` (each type with its own fields; `response_format` checks
/// their values) and `verbosity`.
fn text_fields(o: &Map<String, Value>) -> Result<(), ApiError> {
    known_fields(o, "text", &["format", "verbosity"])?;
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
    known_fields(format, "text.format", fields)
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

/// The Chat Completions `response_format` of `text.format`.
fn response_format(format: &Value) -> Result<Value, ApiError> {
    match format["type"].as_str() {
        Some("text") | None => Ok(json!("auto")),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => {
            let name = format["name"].as_str().unwrap_or_default();
            if !valid_function_name(name) {
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

/// `parse` of a JSON body without `include[]`, for the unit tests here and in `tools`.
#[cfg(test)]
pub(super) fn parsed(body: Value) -> Result<NewResponse, ApiError> {
    parse(body.to_string().as_bytes(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
