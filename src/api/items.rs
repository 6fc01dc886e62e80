//! Request items (placeholder until the conversations work lands).

use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use serde_json::{json, Value};

/// `input` as items with fresh ids.
pub fn parse_input(value: &Value, param: &str) -> Result<Vec<Value>, ApiError> {
    let list = match value {
        Value::String(s) => vec![json!({"role": "user", "content": s})],
        Value::Array(items) => items.clone(),
        _ => {
            return Err(ApiError::invalid_param(
                param,
                "expected a string or an array",
            ))
        }
    };
    let mut out = Vec::new();
    for mut item in list {
        let kind = item["type"].as_str().unwrap_or("message").to_string();
        item["type"] = json!(kind);
        if kind == "message" {
            if let Some(text) = item["content"].as_str() {
                let part = if item["role"] == "assistant" {
                    "output_text"
                } else {
                    "input_text"
                };
                item["content"] = json!([{"type": part, "text": text}]);
            }
        }
        let id_kind = match kind.as_str() {
            "message" => Kind::Message,
            "function_call" => Kind::FunctionCall,
            "function_call_output" => Kind::FunctionCallOutput,
            _ => Kind::Item,
        };
        item["id"] = json!(new_id(id_kind));
        item["status"] = json!("completed");
        out.push(item);
    }
    Ok(out)
}

/// `include[]` from a query.
pub fn parse_include(query: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    Ok(query
        .iter()
        .filter(|(k, _)| k == "include[]" || k == "include")
        .map(|(_, v)| v.clone())
        .collect())
}
