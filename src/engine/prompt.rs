//! Builds the Chat Completions request of a run's turn: instructions, the thread's messages
//! in order (truncated as the run asks), this run's earlier tool rounds, tools and options.

use crate::model::message::Message;
use crate::model::run::RunRecord;
use crate::model::values::{ContentPart, Tool};
use serde_json::{json, Value};

/// Counts tokens the way current OpenAI models do (o200k_base; see `crate::tokens`).
pub fn count_tokens(text: &str) -> u64 {
    crate::tokens::count(text)
}

/// Chat format overhead per message (role and separators), as OpenAI's cookbook counts it.
const PER_MESSAGE: u64 = 4;

fn message_tokens(message: &Value) -> u64 {
    let content = match &message["content"] {
        Value::String(s) => count_tokens(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => count_tokens(p["text"].as_str().unwrap_or_default()),
                // An image costs what a low-detail image does.
                _ => 85,
            })
            .sum(),
        _ => 0,
    };
    let calls = message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    count_tokens(c["function"]["name"].as_str().unwrap_or_default())
                        + count_tokens(c["function"]["arguments"].as_str().unwrap_or_default())
                })
                .sum()
        })
        .unwrap_or(0);
    PER_MESSAGE + content + calls
}

pub fn prompt_tokens(messages: &[Value]) -> u64 {
    messages.iter().map(message_tokens).sum::<u64>() + 3
}

/// A thread message in chat form.
fn chat_message(m: &Message) -> Value {
    let mut parts: Vec<Value> = Vec::new();
    for part in &m.content {
        match part {
            ContentPart::Text { text } => parts.push(json!({"type": "text", "text": text.value})),
            ContentPart::Refusal { refusal } => parts.push(json!({"type": "text", "text": refusal})),
            ContentPart::ImageUrl { image_url } => {
                let mut image = json!({"url": image_url.url});
                if let Some(d) = &image_url.detail {
                    image["detail"] = json!(d);
                }
                parts.push(json!({"type": "image_url", "image_url": image}));
            }
            ContentPart::ImageFile { image_file } => parts.push(json!({
                "type": "text",
                "text": format!("[image file {} is attached; this server cannot show file images to the model yet]", image_file.file_id),
            })),
        }
    }
    json!({"role": m.role, "content": chat_content(parts, m.role == "assistant")})
}

/// A chat message's content from its parts (`text` and `image_url`): the text parts joined
/// by newlines into one string when they are all text or the role takes only text
/// (`text_only`), the parts as they are otherwise.
pub(super) fn chat_content(parts: Vec<Value>, text_only: bool) -> Value {
    let only_text = parts.iter().all(|p| p["type"] == "text");
    if only_text || text_only {
        Value::String(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    } else {
        Value::Array(parts)
    }
}

pub struct Prompt {
    pub body: Value,
    /// Counted only when the run has a prompt budget (the tokenizer is not free).
    pub prompt_tokens: Option<u64>,
}

#[derive(Debug, PartialEq)]
pub enum PromptError {
    /// Even truncated, the prompt exceeds what `max_prompt_tokens` leaves.
    TooLong,
    /// The run asks for a tool the engine cannot run.
    UnsupportedTool(&'static str),
    /// Nothing more may be generated under `max_completion_tokens`.
    NoCompletionBudget,
}

/// The `code_interpreter` tool as a turn offers it.
pub struct CodeTool {
    pub name: &'static str,
    /// The function definition (`code_interpreter::prompt::tool_definition`).
    pub definition: Value,
    /// What the instructions add (the files in `/mnt/data`).
    pub instructions: Option<String>,
}

/// Builds the request of the run's next turn from its history in chat form (a thread's
/// messages, `thread_history`; a response's items, `engine::response::history`).
/// `code` is the code interpreter when the run has it and the server can run it.
pub fn build(
    record: &RunRecord,
    mut history: Vec<Value>,
    code: Option<&CodeTool>,
) -> Result<Prompt, PromptError> {
    let run = &record.run;
    let (functions, tool_choice) = tools(record, code)?;
    let system = system_text(record, code);
    let head: Vec<Value> = if system.is_empty() {
        Vec::new()
    } else {
        vec![json!({"role": "system", "content": system})]
    };
    let tail = rounds_tail(record);
    let used = record.run.usage.unwrap_or_default();
    let mut tokens = None;
    if let Some(max) = run.max_prompt_tokens {
        let budget = max.saturating_sub(used.prompt_tokens);
        let (dropped, total) = fit_budget(record, &head, &history, &tail, budget)?;
        history.drain(..dropped);
        tokens = Some(total);
    }
    let messages: Vec<Value> = head.into_iter().chain(history).chain(tail).collect();

    let mut body = json!({"model": run.model, "messages": messages});
    if !functions.is_empty() {
        body["tools"] = Value::Array(functions);
        body["tool_choice"] = tool_choice;
        body["parallel_tool_calls"] = json!(run.parallel_tool_calls);
    }
    if let Some(t) = run.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = run.top_p {
        body["top_p"] = json!(p);
    }
    if run.response_format.is_object() {
        body["response_format"] = run.response_format.clone();
    }
    if let Some(effort) = &run.reasoning_effort {
        body["reasoning_effort"] = json!(effort);
    }
    if let Some(max) = run.max_completion_tokens {
        let left = max.saturating_sub(used.completion_tokens);
        if left == 0 {
            return Err(PromptError::NoCompletionBudget);
        }
        body["max_completion_tokens"] = json!(left);
    }
    Ok(Prompt {
        body,
        prompt_tokens: tokens,
    })
}

/// The functions offered (the run's, then the built-in tools') and the tool choice.
fn tools(record: &RunRecord, code: Option<&CodeTool>) -> Result<(Vec<Value>, Value), PromptError> {
    let run = &record.run;
    // A response's `max_tool_calls` caps its built-in calls: past it, they are not offered.
    let built_in = built_in_allowed(record);
    let search = super::file_search::function_name(record).filter(|_| built_in);
    let code = code.filter(|_| built_in);
    let mut functions = Vec::new();
    for tool in &run.tools {
        match tool {
            Tool::Function { function } => {
                let mut f = json!({"name": function.name});
                if let Some(d) = &function.description {
                    f["description"] = json!(d);
                }
                f["parameters"] = function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                if let Some(s) = function.strict {
                    f["strict"] = json!(s);
                }
                functions.push(json!({"type": "function", "function": f}));
            }
            Tool::CodeInterpreter {} => match code {
                Some(code) => functions.push(code.definition.clone()),
                None if !built_in => {}
                None => return Err(PromptError::UnsupportedTool("code_interpreter")),
            },
            // Offered below, once, as the engine's own function.
            Tool::FileSearch { .. } => {}
        }
    }
    if let Some(name) = search {
        functions.push(super::file_search::function_definition(name));
    }
    let mut tool_choice = run.tool_choice.clone();
    if !built_in && functions.is_empty() {
        tool_choice = json!("none");
    }
    match run.tool_choice.get("type").and_then(Value::as_str) {
        Some("code_interpreter" | "file_search") if !built_in => tool_choice = json!("auto"),
        Some("code_interpreter") => match code {
            Some(code) => {
                tool_choice = json!({"type": "function", "function": {"name": code.name}})
            }
            None => return Err(PromptError::UnsupportedTool("code_interpreter")),
        },
        Some("file_search") => match search {
            Some(name) => tool_choice = json!({"type": "function", "function": {"name": name}}),
            None => return Err(PromptError::UnsupportedTool("file_search")),
        },
        _ => {}
    }
    Ok((functions, tool_choice))
}

/// Whether the run may still call built-in tools: always, but for a response that made the
/// `max_tool_calls` it allows.
fn built_in_allowed(record: &RunRecord) -> bool {
    let Some(max) = record.response.as_ref().and_then(|f| f.max_tool_calls) else {
        return true;
    };
    let made = record
        .rounds
        .iter()
        .flat_map(|r| &r.calls)
        .filter(|c| c.server.is_some())
        .count() as u64;
    made < max
}

/// The system message: the run's instructions, the additional ones, and what the built-in
/// tools add.
fn system_text(record: &RunRecord, code: Option<&CodeTool>) -> String {
    let mut system = record.run.instructions.clone();
    let search = super::file_search::function_name(record).map(super::file_search::instructions);
    let extras = [
        record
            .additional_instructions
            .clone()
            .filter(|s| !s.is_empty()),
        search,
        code.and_then(|c| c.instructions.clone()),
    ];
    for extra in extras.into_iter().flatten() {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(&extra);
    }
    system
}

/// The thread's messages (ascending) in chat form (not this run's own), truncated as the
/// run asks.
pub fn thread_history(record: &RunRecord, thread_messages: &[Message]) -> Vec<Value> {
    let run = &record.run;
    let mut history: Vec<Value> = thread_messages
        .iter()
        .filter(|m| m.run_id.as_deref() != Some(run.id.as_str()))
        .map(chat_message)
        .collect();
    if run.truncation_strategy["type"] == "last_messages" {
        if let Some(n) = run.truncation_strategy["last_messages"].as_u64() {
            let n = n as usize;
            if history.len() > n {
                history.drain(..history.len() - n);
            }
        }
    }
    history
}

/// This run's earlier tool rounds: each the model's calls and their outputs.
fn rounds_tail(record: &RunRecord) -> Vec<Value> {
    let mut tail: Vec<Value> = Vec::new();
    for round in &record.rounds {
        tail.push(json!({
            "role": "assistant",
            "content": round.text,
            "tool_calls": round.calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })).collect::<Vec<_>>(),
        }));
        for call in &round.calls {
            tail.push(json!({
                "role": "tool",
                "tool_call_id": call.id,
                "content": call.output.clone().unwrap_or_default(),
            }));
        }
    }
    tail
}

/// How many of the oldest history messages to drop to fit `budget`, and the prompt's
/// tokens then. `auto` drops the oldest messages (keeping the latest one); otherwise the
/// run cannot continue within its budget.
fn fit_budget(
    record: &RunRecord,
    head: &[Value],
    history: &[Value],
    tail: &[Value],
    budget: u64,
) -> Result<(usize, u64), PromptError> {
    // Each message is counted once: dropping the oldest subtracts its count (recounting
    // the whole prompt per dropped message was quadratic in the thread's length).
    let fixed = prompt_tokens(head) + tail.iter().map(message_tokens).sum::<u64>();
    let counts: Vec<u64> = history.iter().map(message_tokens).collect();
    let mut total = fixed + counts.iter().sum::<u64>();
    let mut dropped = 0;
    while total > budget {
        if record.run.truncation_strategy["type"] == "auto" && history.len() - dropped > 1 {
            total -= counts[dropped];
            dropped += 1;
            continue;
        }
        return Err(PromptError::TooLong);
    }
    Ok((dropped, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parts_are_joined_and_images_kept_where_the_role_takes_them() {
        let text = |t: &str| json!({"type": "text", "text": t});
        let image = json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}});
        assert_eq!(
            chat_content(vec![text("a"), text("b")], false),
            json!("a\nb")
        );
        assert_eq!(
            chat_content(vec![text("a"), image.clone()], false),
            json!([text("a"), image])
        );
        assert_eq!(chat_content(vec![text("a"), image], true), json!("a"));
        assert_eq!(chat_content(Vec::new(), false), json!(""));
    }

    #[test]
    fn tokens_are_counted_with_a_real_tokenizer() {
        assert_eq!(count_tokens("hello world"), 2);
        assert!(count_tokens(&"word ".repeat(100)) >= 100);
    }
}
