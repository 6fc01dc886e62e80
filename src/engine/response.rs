//! The response face of a turn: what a run that is a response (`model::response`) does
//! differently. Its prompt's history comes from items (its conversation's, then the input
//! it was given) instead of its thread's messages; each turn's output items join its record
//! in the turn's move; and when it ends, its input and output items join its conversation.
//! Everything else (the model call, the tools, the moves, idempotence) is the run's.

use super::prompt::chat_content;
use super::turn::RunMove;
use super::Stop;
use crate::context::Ctx;
use crate::model::item;
use crate::model::message::Message;
use crate::model::response::{self, ResponseInput};
use crate::model::run::RunRecord;
use serde_json::{json, Value};

/// The output items of a turn: its message (the answer, or the text that came with calls),
/// then its calls, in the order the model made them.
pub fn turn_items(record: &RunRecord, message: Option<&Message>, run_move: &RunMove) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(m) = message {
        items.push(response::message_item(&m.id, m.status.as_str(), &m.content));
    }
    match run_move {
        RunMove::NextRound { round }
        | RunMove::CompletedWithCalls { round }
        | RunMove::RequiresAction { round, .. } => {
            items.extend(response::round_items(&record.run.id, round));
        }
        RunMove::Completed | RunMove::Incomplete => {}
    }
    items
}

/// When the response ends (completed or incomplete), its own input items and the output
/// items that are not messages join its conversation (its messages are the thread's
/// already, written by the turns). Ids are fixed, so a repeated turn writes the same.
pub(super) async fn append_to_conversation(
    ctx: &Ctx,
    record: &RunRecord,
    run_move: &RunMove,
    turn_items: &[Value],
) -> Result<(), Stop> {
    let Some(face) = &record.response else {
        return Ok(());
    };
    let Some(conversation) = &face.conversation else {
        return Ok(());
    };
    if matches!(
        run_move,
        RunMove::NextRound { .. } | RunMove::RequiresAction { .. }
    ) {
        return Ok(());
    }
    let input = load_input(ctx, &record.run.id).await?;
    // Output messages are the thread's already (the turns wrote them).
    let output = face.output.iter().chain(turn_items);
    let items: Vec<Value> = input
        .own()
        .iter()
        .chain(output.filter(|item| item["type"] != "message"))
        .cloned()
        .collect();
    item::put_items(ctx.store.as_ref(), &ctx.tenant, conversation, &items).await?;
    Ok(())
}

/// The response's stored input (empty when there is none).
pub(super) async fn load_input(ctx: &Ctx, response_id: &str) -> Result<ResponseInput, Stop> {
    Ok(response::load_input(ctx.store.as_ref(), &ctx.tenant, response_id).await?)
}

/// The history of a response's prompt, in chat form: its conversation's items (not this
/// response's own output, which the rounds replay), then its input.
pub(super) async fn history(ctx: &Ctx, record: &RunRecord) -> Result<Vec<Value>, Stop> {
    let Some(face) = &record.response else {
        return Ok(Vec::new());
    };
    let mut items: Vec<Value> = Vec::new();
    if let Some(conversation) = &face.conversation {
        items = item::list_excluding_run(
            ctx.store.as_ref(),
            &ctx.tenant,
            conversation,
            &record.run.id,
        )
        .await?;
    }
    let input = load_input(ctx, &record.run.id).await?;
    items.extend(input.items);
    Ok(chat_messages(&items))
}

/// Items in Chat Completions form. Consecutive function calls are one assistant message
/// with several tool calls, their outputs tool messages. Built-in tool calls of earlier
/// responses and reasoning items are not replayed (their answers are the messages after
/// them).
pub fn chat_messages(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        match item["type"].as_str().unwrap_or("message") {
            "message" => out.push(chat_message(item)),
            "function_call" => {
                let call = json!({
                    "id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                });
                // The calls of one turn, and the text that came with them, are one
                // assistant message.
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        if !last["tool_calls"].is_array() {
                            last["tool_calls"] = json!([]);
                        }
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => out
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            "function_call_output" => out.push(json!({
                "role": "tool",
                "tool_call_id": item["call_id"],
                "content": output_text(&item["output"]),
            })),
            _ => {}
        }
    }
    out
}

/// A message item in chat form: text parts joined, images as image parts (a file image
/// or file is named, not shown: this server cannot pass files to a model yet).
fn chat_message(item: &Value) -> Value {
    let role = match item["role"].as_str().unwrap_or("user") {
        "developer" => "system",
        other => other,
    };
    let parts: Vec<Value> = match &item["content"] {
        Value::String(text) => vec![json!({"type": "text", "text": text})],
        Value::Array(parts) => parts.iter().filter_map(chat_part).collect(),
        _ => Vec::new(),
    };
    json!({"role": role, "content": chat_content(parts, role != "user")})
}

fn chat_part(part: &Value) -> Option<Value> {
    match part["type"].as_str()? {
        "input_text" | "output_text" => Some(json!({"type": "text", "text": part["text"]})),
        "refusal" => Some(json!({"type": "text", "text": part["refusal"]})),
        "input_image" => match part["image_url"].as_str() {
            Some(url) => Some(json!({"type": "image_url", "image_url": {
                "url": url, "detail": part["detail"].as_str().unwrap_or("auto"),
            }})),
            None => Some(json!({"type": "text", "text": format!(
                "[image file {} is attached; this server cannot show file images to the model yet]",
                part["file_id"].as_str().unwrap_or_default()
            )})),
        },
        "input_file" => Some(json!({"type": "text", "text": format!(
            "[file {} is attached]",
            part["file_id"].as_str().or(part["filename"].as_str()).unwrap_or_default()
        )})),
        _ => None,
    }
}

/// A function call's output as the text a tool message carries.
fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_calls_are_one_assistant_message_and_outputs_follow() {
        let items = vec![
            json!({"type": "message", "role": "user", "content": "weather?"}),
            json!({"type": "function_call", "call_id": "call_a", "name": "w", "arguments": "{}"}),
            json!({"type": "function_call", "call_id": "call_b", "name": "w", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "call_a", "output": "sun"}),
            json!({"type": "function_call_output", "call_id": "call_b",
                   "output": [{"type": "input_text", "text": "rain"}]}),
        ];
        let chat = chat_messages(&items);
        assert_eq!(chat.len(), 4);
        assert_eq!(chat[0], json!({"role": "user", "content": "weather?"}));
        assert_eq!(chat[1]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            chat[3],
            json!({"role": "tool", "tool_call_id": "call_b", "content": "rain"})
        );
    }

    #[test]
    fn text_and_calls_of_one_turn_are_one_message() {
        let items = vec![
            json!({"type": "message", "role": "user", "content": "weather?"}),
            json!({"type": "message", "role": "assistant",
                   "content": [{"type": "output_text", "text": "Let me check."}]}),
            json!({"type": "function_call", "call_id": "call_a", "name": "w", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "call_a", "output": "sun"}),
        ];
        let chat = chat_messages(&items);
        assert_eq!(chat.len(), 3);
        assert_eq!(chat[1]["content"], "Let me check.");
        assert_eq!(chat[1]["tool_calls"][0]["id"], "call_a");
    }

    #[test]
    fn images_by_url_are_shown_and_developer_is_system() {
        let items = vec![
            json!({"type": "message", "role": "developer",
                   "content": [{"type": "input_text", "text": "be brief"}]}),
            json!({"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "what is this?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
            ]}),
        ];
        let chat = chat_messages(&items);
        assert_eq!(chat[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(chat[1]["content"][1]["image_url"]["url"], "https://x/y.png");
    }
}
