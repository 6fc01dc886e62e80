//! What a run is asked to be: the create-run and create-thread-and-run request bodies, the
//! options they share (`RunOptions`), their validation against the limits and the
//! assistant, and the run they plan (`RunPlan`), before anything is written.

use super::assistants::{self, validate_model};
use super::pagination::Query;
use super::threads::CreateThread;
use super::types::{
    one_of, validate_response_format, validate_tools, CreateMessage, NewMessage,
    ToolResourcesRequest,
};
use super::validate::{self, max_items, metadata, range};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{AssistantId, Kind, MessageId, RunId};
use crate::model::assistant::REASONING_EFFORTS;
use crate::model::now;
use crate::model::run::{Run, RunStatus};
use crate::model::values::{Metadata, Tool};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// The `include[]` value that shows `file_search` result content in run steps.
pub const INCLUDE_SEARCH_CONTENT: &str =
    "step_details.tool_calls[*].file_search.results[*].content";

// `CreateRun` and `CreateThreadAndRun` spell out the fields they share rather than
// flattening one struct into both: serde cannot refuse unknown fields (`Unknown parameter`)
// through `#[serde(flatten)]`. Both become one `RunOptions` as soon as they are read.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    #[schema(pattern = "^asst_")]
    pub assistant_id: String,
    /// Overrides the assistant's model for this run.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub model: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ReasoningEffort>)]
    pub reasoning_effort: Option<String>,
    /// Replaces the assistant's instructions for this run.
    #[serde(default)]
    #[schema(max_length = 256000)]
    pub instructions: Option<String>,
    /// Appended to the instructions for this run.
    #[serde(default)]
    #[schema(max_length = 256000)]
    pub additional_instructions: Option<String>,
    /// Messages added to the thread before the run starts.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub additional_messages: Option<Vec<CreateMessage>>,
    /// Replaces the assistant's tools for this run.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f64>,
    /// Answer with Server-Sent Events while the run executes.
    #[serde(default)]
    pub stream: Option<bool>,
    /// The most prompt tokens the run may use over all its turns.
    #[serde(default)]
    #[schema(minimum = 256)]
    pub max_prompt_tokens: Option<i64>,
    /// The most completion tokens the run may use over all its turns.
    #[serde(default)]
    #[schema(minimum = 256)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::TruncationStrategy>)]
    pub truncation_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ToolChoice>)]
    pub tool_choice: Option<Value>,
    /// Whether the model may call several functions at once (true by default).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ResponseFormat>)]
    pub response_format: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateThreadAndRun {
    #[schema(pattern = "^asst_")]
    pub assistant_id: String,
    /// The thread to create (empty when not given).
    #[serde(default)]
    pub thread: Option<CreateThread>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub model: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256000)]
    pub instructions: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tools: Option<Vec<Tool>>,
    /// Become the thread's tool resources (unless `thread.tool_resources` is given).
    #[serde(default)]
    pub tool_resources: Option<ToolResourcesRequest>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    #[schema(minimum = 256)]
    pub max_prompt_tokens: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 256)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::TruncationStrategy>)]
    pub truncation_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ToolChoice>)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ResponseFormat>)]
    pub response_format: Option<Value>,
}

fn token_limit(param: &str, value: Option<i64>) -> Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        Some(n) if n >= 256 => Ok(Some(n as u64)),
        Some(n) => Err(ApiError::invalid_param(
            param,
            format!(
                "Invalid '{param}': integer below minimum value. Expected a value greater than \
                 or equal to 256, but got {n} instead."
            ),
        )),
    }
}

fn truncation(value: Option<Value>) -> Result<Value, ApiError> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(json!({"type": "auto", "last_messages": null}));
    };
    let p = "truncation_strategy";
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid_param(p, format!("Invalid '{p}': expected an object.")))?;
    if let Some(extra) = obj.keys().find(|k| *k != "type" && *k != "last_messages") {
        return Err(ApiError::invalid(
            format!(
                "Unrecognized request argument supplied: {p}.{}",
                crate::error::shown(extra)
            ),
            None,
        ));
    }
    let kind = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid_param(
            &format!("{p}.type"),
            format!("Missing required parameter: '{p}.type'."),
        )
    })?;
    one_of(&format!("{p}.type"), kind, &["auto", "last_messages"])?;
    let last = match obj.get("last_messages") {
        None | Some(Value::Null) => Value::Null,
        Some(n) => match n.as_u64() {
            Some(k) if k >= 1 => json!(k),
            _ => {
                return Err(ApiError::invalid_param(
                    &format!("{p}.last_messages"),
                    format!("Invalid '{p}.last_messages': expected an integer >= 1."),
                ))
            }
        },
    };
    if kind == "last_messages" && last.is_null() {
        return Err(ApiError::invalid_param(
            &format!("{p}.last_messages"),
            format!("'{p}.last_messages' is required when '{p}.type' is 'last_messages'."),
        ));
    }
    Ok(json!({"type": kind, "last_messages": last}))
}

fn tool_choice(value: Option<Value>, tools: &[Tool]) -> Result<Value, ApiError> {
    let p = "tool_choice";
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(json!("auto"));
    };
    match &v {
        Value::String(s) => {
            one_of(p, s, &["none", "auto", "required"])?;
        }
        Value::Object(obj) => {
            let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
            one_of(
                &format!("{p}.type"),
                kind,
                &["function", "code_interpreter", "file_search"],
            )?;
            if kind == "function" {
                let name = obj
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            &format!("{p}.function.name"),
                            format!("Missing required parameter: '{p}.function.name'."),
                        )
                    })?;
                let known = tools
                    .iter()
                    .any(|t| matches!(t, Tool::Function { function } if function.name == name));
                if !known {
                    return Err(ApiError::invalid_param(
                        &format!("{p}.function.name"),
                        format!(
                            "Invalid '{p}': the function '{}' is not one of the run's tools.",
                            crate::error::shown(name)
                        ),
                    ));
                }
            }
        }
        _ => {
            return Err(ApiError::invalid_param(
                p,
                format!("Invalid '{p}': expected a string or an object."),
            ))
        }
    }
    Ok(v)
}

/// Everything a run takes from its request, validated, before anything is written.
pub(super) struct RunPlan {
    pub run: Run,
    pub additional_instructions: Option<String>,
    /// With ids made before the run's, so they sort before the run's answer.
    pub additional_messages: Vec<(MessageId, NewMessage)>,
    pub include_search_content: bool,
}

/// What a run is asked to be: the options create-run and create-thread-and-run share (the
/// latter has no reasoning effort, additional instructions or messages), as sent.
pub(super) struct RunOptions {
    assistant_id: String,
    model: Option<String>,
    reasoning_effort: Option<String>,
    instructions: Option<String>,
    additional_instructions: Option<String>,
    additional_messages: Option<Vec<CreateMessage>>,
    tools: Option<Vec<Tool>>,
    metadata: Option<Metadata>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_prompt_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    truncation_strategy: Option<Value>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<Value>,
}

impl From<CreateRun> for RunOptions {
    fn from(req: CreateRun) -> Self {
        RunOptions {
            assistant_id: req.assistant_id,
            model: req.model,
            reasoning_effort: req.reasoning_effort,
            instructions: req.instructions,
            additional_instructions: req.additional_instructions,
            additional_messages: req.additional_messages,
            tools: req.tools,
            metadata: req.metadata,
            temperature: req.temperature,
            top_p: req.top_p,
            max_prompt_tokens: req.max_prompt_tokens,
            max_completion_tokens: req.max_completion_tokens,
            truncation_strategy: req.truncation_strategy,
            tool_choice: req.tool_choice,
            parallel_tool_calls: req.parallel_tool_calls,
            response_format: req.response_format,
        }
    }
}

impl From<CreateThreadAndRun> for RunOptions {
    fn from(req: CreateThreadAndRun) -> Self {
        RunOptions {
            assistant_id: req.assistant_id,
            model: req.model,
            reasoning_effort: None,
            instructions: req.instructions,
            additional_instructions: None,
            additional_messages: None,
            tools: req.tools,
            metadata: req.metadata,
            temperature: req.temperature,
            top_p: req.top_p,
            max_prompt_tokens: req.max_prompt_tokens,
            max_completion_tokens: req.max_completion_tokens,
            truncation_strategy: req.truncation_strategy,
            tool_choice: req.tool_choice,
            parallel_tool_calls: req.parallel_tool_calls,
            response_format: req.response_format,
        }
    }
}

/// Checks a run's options against the limits and the assistant, and plans the run.
pub(super) async fn plan_run(
    ctx: &Ctx,
    thread_id: &str,
    options: RunOptions,
) -> Result<RunPlan, ApiError> {
    let RunOptions {
        assistant_id,
        model,
        reasoning_effort,
        instructions,
        additional_instructions,
        additional_messages,
        tools,
        metadata: meta,
        temperature,
        top_p,
        max_prompt_tokens,
        max_completion_tokens,
        truncation_strategy,
        tool_choice: tool_choice_value,
        parallel_tool_calls,
        response_format,
    } = options;
    // A malformed id with the right prefix names no assistant: the 404 comes where the
    // assistant is read, after the other options are checked (as before).
    let parsed: Option<AssistantId> = validate::id("assistant_id", &assistant_id)?;
    if let Some(m) = &model {
        validate_model(m)?;
    }
    if let Some(r) = &reasoning_effort {
        one_of("reasoning_effort", r, REASONING_EFFORTS)?;
    }
    if let Some(i) = &instructions {
        validate::max_chars("instructions", i, 256_000)?;
    }
    if let Some(i) = &additional_instructions {
        validate::max_chars("additional_instructions", i, 256_000)?;
    }
    if let Some(t) = &tools {
        validate_tools("tools", t, 20)?;
    }
    let meta = meta.unwrap_or_default();
    metadata("metadata", &meta)?;
    if let Some(t) = temperature {
        range("temperature", t, 0.0, 2.0)?;
    }
    if let Some(t) = top_p {
        range("top_p", t, 0.0, 1.0)?;
    }
    let max_prompt_tokens = token_limit("max_prompt_tokens", max_prompt_tokens)?;
    let max_completion_tokens = token_limit("max_completion_tokens", max_completion_tokens)?;
    let truncation_strategy = truncation(truncation_strategy)?;
    if let Some(f) = response_format.as_ref().filter(|f| !f.is_null()) {
        validate_response_format("response_format", f)?;
    }
    let mut new_messages = Vec::new();
    let requested = additional_messages.unwrap_or_default();
    max_items("additional_messages", &requested, 32)?;
    for (i, m) in requested.into_iter().enumerate() {
        new_messages.push(m.validate(&format!("additional_messages[{i}]"))?);
    }
    let assistant = match parsed {
        Some(id) => assistants::load(ctx, &id).await?,
        None => return Err(ApiError::not_found(Kind::Assistant, assistant_id)),
    };
    let new_messages: Vec<(MessageId, NewMessage)> = new_messages
        .into_iter()
        .map(|m| (MessageId::new(), m))
        .collect();
    let tools = tools.unwrap_or_else(|| assistant.tools.clone());
    let tool_choice_value = tool_choice(tool_choice_value, &tools)?;
    let run = Run {
        id: RunId::new().into_string(),
        object: "thread.run".into(),
        created_at: now(),
        thread_id: thread_id.to_string(),
        assistant_id: assistant.id.clone(),
        status: RunStatus::Queued,
        required_action: None,
        last_error: None,
        expires_at: Some(now() + ctx.runs.expiry.as_secs() as i64),
        started_at: None,
        cancelled_at: None,
        failed_at: None,
        completed_at: None,
        incomplete_details: None,
        model: model.unwrap_or_else(|| assistant.model.clone()),
        instructions: instructions
            .or_else(|| assistant.instructions.clone())
            .unwrap_or_default(),
        tools,
        metadata: meta,
        usage: None,
        temperature: temperature.or(assistant.temperature),
        top_p: top_p.or(assistant.top_p),
        max_prompt_tokens,
        max_completion_tokens,
        truncation_strategy,
        tool_choice: tool_choice_value,
        parallel_tool_calls: parallel_tool_calls.unwrap_or(true),
        response_format: response_format
            .filter(|f| !f.is_null())
            .unwrap_or_else(|| assistant.response_format.clone()),
        reasoning_effort: reasoning_effort.or_else(|| assistant.reasoning_effort.clone()),
    };
    Ok(RunPlan {
        run,
        additional_instructions,
        additional_messages: new_messages,
        include_search_content: false,
    })
}

/// Checks `include[]`; whether it asks for `file_search` result content.
pub fn check_include(query: &Query) -> Result<bool, ApiError> {
    let mut content = false;
    for (k, v) in query {
        if k == "include[]" || k == "include" {
            one_of("include", v, &[INCLUDE_SEARCH_CONTENT])?;
            content = true;
        }
    }
    Ok(content)
}
