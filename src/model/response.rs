//! The response face of a run record. A response is a run of the one turn machine: it is
//! stored as a `RunRecord` whose `_response` field keeps what the Responses API adds (the
//! request as the response object echoes it, its output items, where its context comes
//! from), and the response object is built from that record. Output items are appended as
//! each turn commits, so reading a response is one read.

pub use super::run::ResponseFace;
use super::run::{RoundCall, RunRecord, RunStatus, ServerCall, ToolRound};
use super::values::ContentPart;
use crate::ids::{created_micros, keyed_id, Kind};
use crate::llm::Usage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A response's input as stored beside it (`keys::response_input`): the context it
/// continues (the input and output of the response it follows, when it names one) and its
/// own input items, with ids. `GET /responses/{id}/input_items` lists them all, as OpenAI
/// does for a chained response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResponseInput {
    pub items: Vec<Value>,
    /// Where the response's own input starts in `items`.
    pub own_from: usize,
}

/// A response's stored input (empty when there is none).
pub async fn load_input(
    store: &dyn crate::store::Store,
    tenant: &str,
    response_id: &str,
) -> Result<ResponseInput, crate::store::StoreError> {
    let key = crate::store::keys::response_input(tenant, response_id);
    Ok(crate::store::get_json::<ResponseInput>(store, &key)
        .await?
        .map(|(input, _)| input)
        .unwrap_or_default())
}

impl ResponseInput {
    /// The response's own input items.
    pub fn own(&self) -> &[Value] {
        self.items.get(self.own_from..).unwrap_or(&[])
    }
}

/// The response's status for a run status. A run's `requires_action` and `expired` do not
/// happen to responses (a response ends with its function calls); a cancel being carried
/// out already answers `cancelled`.
pub fn status(run: RunStatus) -> &'static str {
    match run {
        RunStatus::Queued => "queued",
        RunStatus::InProgress => "in_progress",
        RunStatus::RequiresAction | RunStatus::Completed => "completed",
        RunStatus::Cancelling | RunStatus::Cancelled => "cancelled",
        RunStatus::Failed | RunStatus::Expired => "failed",
        RunStatus::Incomplete => "incomplete",
    }
}

/// Whether the response has ended.
pub fn is_terminal(run: RunStatus) -> bool {
    !matches!(run, RunStatus::Queued | RunStatus::InProgress)
}

/// The Responses usage object for a run's usage.
pub fn usage(u: Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    })
}

/// The response object of `record` (a run with a response face), with the optional item
/// payloads `include` asks for. `None` for a run without one.
pub fn object(record: &RunRecord, include: &[String]) -> Option<Value> {
    let face = record.response.as_ref()?;
    let run = &record.run;
    let mut o = face.echo.clone();
    o.insert("id".into(), json!(run.id));
    o.insert("object".into(), json!("response"));
    o.insert("created_at".into(), json!(run.created_at));
    o.insert("status".into(), json!(status(run.status)));
    o.insert("background".into(), json!(face.background));
    o.insert("completed_at".into(), json!(run.completed_at));
    let error = run.last_error.as_ref().map(
        |e| json!({"code": e["code"].as_str().unwrap_or("server_error"), "message": e["message"]}),
    );
    o.insert("error".into(), json!(error));
    let incomplete = run.incomplete_details.as_ref().map(|d| {
        let reason = match d["reason"].as_str() {
            Some("content_filter") => "content_filter",
            _ => "max_output_tokens",
        };
        json!({ "reason": reason })
    });
    o.insert("incomplete_details".into(), json!(incomplete));
    o.insert("model".into(), json!(run.model));
    let output: Vec<Value> = face
        .output
        .iter()
        .map(|item| shape_item(item.clone(), include))
        .collect();
    o.insert("output".into(), Value::Array(output));
    let conversation = face.conversation.as_ref().map(|id| json!({ "id": id }));
    o.insert("conversation".into(), json!(conversation));
    o.insert("store".into(), json!(face.store));
    o.insert("metadata".into(), json!(run.metadata));
    // Omitted, not null, until the response ends (the spec types `usage` as an object).
    match (is_terminal(run.status), run.usage) {
        (true, Some(u)) => o.insert("usage".into(), usage(u)),
        (true, None) => o.insert("usage".into(), usage(Usage::default())),
        (false, _) => o.remove("usage"),
    };
    Some(Value::Object(o))
}

/// An item as clients see it: the payloads `include` does not ask for are null.
pub fn shape_item(mut item: Value, include: &[String]) -> Value {
    let wants = |name: &str| include.iter().any(|i| i == name);
    match item["type"].as_str() {
        Some("file_search_call") if !wants("file_search_call.results") => {
            item["results"] = Value::Null;
        }
        Some("code_interpreter_call") if !wants("code_interpreter_call.outputs") => {
            item["outputs"] = Value::Null;
        }
        _ => {}
    }
    if let Some(map) = item.as_object_mut() {
        map.retain(|k, _| !k.starts_with('_'));
    }
    item
}

/// The id of the item that shows the tool call `call_id` of a response's turn, whose
/// `tool_calls` step is `step_id`: the same wherever it is computed (the stream names it
/// before the turn is stored). Its time part is that of the turn's message (see
/// `run::answer_message_id`, `run::tool_step_id`), so that in a conversation, listed in time
/// order, a turn's calls come after its text and before the next turn's.
pub fn call_item_id(kind: Kind, response_id: &str, step_id: &str, call_id: &str) -> String {
    let base = created_micros(response_id).unwrap_or(0);
    // A tool step is `(seq * MAX_ATTEMPTS + attempt) * 2 + 2` after the run, its message
    // `seq * MAX_ATTEMPTS + attempt + 1`.
    let turn = created_micros(step_id)
        .map(|t| t.saturating_sub(base).saturating_sub(2) / 2)
        .unwrap_or(0);
    keyed_id(kind, base + turn + 1, &format!("{step_id}/{call_id}"))
}

/// The code interpreter container a response's calls ran in (its thread's session).
pub fn container_id(response_id: &str) -> String {
    keyed_id(
        Kind::Container,
        created_micros(response_id).unwrap_or(0),
        response_id,
    )
}

/// An assistant message as an output item.
pub fn message_item(id: &str, status: &str, content: &[ContentPart]) -> Value {
    let parts: Vec<Value> = content.iter().filter_map(output_part).collect();
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": parts})
}

/// An Assistants content part of an answer as an output content part (images the code
/// drew are shown by the code interpreter call's outputs instead).
pub fn output_part(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text { text } => Some(json!({
            "type": "output_text",
            "text": text.value,
            "annotations": text.annotations.iter().filter_map(annotation).collect::<Vec<_>>(),
            "logprobs": [],
        })),
        ContentPart::Refusal { refusal } => Some(json!({"type": "refusal", "refusal": refusal})),
        ContentPart::ImageFile { .. } | ContentPart::ImageUrl { .. } => None,
    }
}

/// An Assistants annotation (`file_citation` / `file_path` with start and end) as the
/// Responses one (a single `index`; the cited file's name from the marker).
pub fn annotation(a: &Value) -> Option<Value> {
    let index = a["start_index"].as_u64().unwrap_or(0);
    match a["type"].as_str()? {
        "file_citation" => {
            let marker = a["text"].as_str().unwrap_or_default();
            let filename = marker
                .split('†')
                .nth(1)
                .map(|s| s.trim_end_matches('】'))
                .unwrap_or_default();
            Some(json!({
                "type": "file_citation",
                "file_id": a["file_citation"]["file_id"],
                "filename": filename,
                "index": index,
            }))
        }
        "file_path" => Some(json!({
            "type": "file_path",
            "file_id": a["file_path"]["file_id"],
            "index": index,
        })),
        _ => None,
    }
}

/// The items of a tool round, in the order the model called them.
pub fn round_items(response_id: &str, round: &ToolRound) -> Vec<Value> {
    round
        .calls
        .iter()
        .map(|c| call_item(response_id, &round.step_id, c))
        .collect()
}

/// One call of the round whose step is `step_id` as its output item.
pub fn call_item(response_id: &str, step_id: &str, c: &RoundCall) -> Value {
    let id = |kind| call_item_id(kind, response_id, step_id, &c.id);
    match &c.server {
        None => json!({
            "id": id(Kind::FunctionCall),
            "type": "function_call",
            "status": "completed",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.arguments,
        }),
        Some(ServerCall::FileSearch { results, .. }) => json!({
            "id": id(Kind::FileSearchCall),
            "type": "file_search_call",
            "status": "completed",
            "queries": search_queries(&c.arguments),
            "results": results.iter().map(|r| json!({
                "file_id": r.file_id,
                "filename": r.file_name,
                "score": r.score,
                "text": r.text,
                "attributes": {},
            })).collect::<Vec<_>>(),
        }),
        Some(ServerCall::CodeInterpreter { input, outputs, .. }) => json!({
            "id": id(Kind::CodeInterpreterCall),
            "type": "code_interpreter_call",
            "status": "completed",
            "container_id": container_id(response_id),
            "code": input,
            "outputs": outputs.iter().filter_map(code_output).collect::<Vec<_>>(),
        }),
    }
}

/// A code interpreter output as the Responses API shows it: logs, or an image by URL (the
/// file's content on this server).
fn code_output(o: &Value) -> Option<Value> {
    match o["type"].as_str()? {
        "logs" => Some(json!({"type": "logs", "logs": o["logs"]})),
        "image" => {
            let file_id = o["image"]["file_id"].as_str()?;
            Some(json!({"type": "image", "url": format!("/v1/files/{file_id}/content")}))
        }
        _ => None,
    }
}

/// The queries of a `file_search` call's arguments (`{"queries": [...]}`), leniently.
pub fn search_queries(arguments: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<Value>(arguments) else {
        return Vec::new();
    };
    let queries = match &value {
        Value::Object(o) => o.get("queries").or_else(|| o.get("query")),
        // A model that sends the query alone.
        Value::String(_) => Some(&value),
        _ => None,
    };
    match queries {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::values::text_part;

    #[test]
    fn statuses_map_to_the_responses_vocabulary() {
        assert_eq!(status(RunStatus::Queued), "queued");
        assert_eq!(status(RunStatus::RequiresAction), "completed");
        assert_eq!(status(RunStatus::Cancelling), "cancelled");
        assert_eq!(status(RunStatus::Expired), "failed");
        assert!(!is_terminal(RunStatus::InProgress));
        assert!(is_terminal(RunStatus::Incomplete));
    }

    #[test]
    fn call_items_have_stable_ids_of_their_kind() {
        let call = RoundCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{}".into(),
            output: None,
            server: None,
        };
        let resp = crate::ids::new_id(Kind::Response);
        let step = crate::model::run::tool_step_id(&resp, 2, 1);
        let message = crate::model::run::answer_message_id(&resp, 2, 1);
        let a = call_item(&resp, &step, &call);
        let b = call_item(&resp, &step, &call);
        assert_eq!(a, b);
        let id = a["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("fc_"));
        assert_eq!(a["call_id"], "call_1");
        // At the time of the turn's message: after it, before the next turn's.
        assert_eq!(created_micros(id), created_micros(&message));
        let next = crate::model::run::answer_message_id(&resp, 3, 0);
        assert!(created_micros(id) < created_micros(&next));
    }

    #[test]
    fn citations_keep_the_start_and_the_file_name() {
        let a = json!({"type": "file_citation", "text": "【0:1†doc.pdf】", "start_index": 5,
                       "end_index": 18, "file_citation": {"file_id": "file-x"}});
        assert_eq!(
            annotation(&a),
            Some(
                json!({"type": "file_citation", "file_id": "file-x", "filename": "doc.pdf", "index": 5})
            )
        );
        let item = message_item("msg_1", "completed", &[text_part("hi".into())]);
        assert_eq!(item["content"][0]["type"], "output_text");
        assert_eq!(item["content"][0]["logprobs"], json!([]));
    }
}
