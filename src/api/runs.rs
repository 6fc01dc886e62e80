//! Runs and run steps: the objects, and the operations clients call on them (create,
//! create thread and run, list, retrieve, modify, cancel, submit tool outputs, steps).
//! The engine (`crate::engine`) advances runs; this module only starts, reads and steers them.

use super::assistants::{self, validate_model};
use super::pagination::{list_objects, without_internal_fields, ListQuery, Query};
use super::threads::{self, CreateThread};
use super::to_value;
use super::types::{
    one_of, validate_response_format, validate_tools, CreateMessage, NewMessage,
    ToolResourcesRequest,
};
use super::validate::{
    self, max_items, metadata, nullable, parse_body, parse_required_body, range,
};
use super::Reply;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::model::assistant::REASONING_EFFORTS;
use crate::model::run::{tool_step_details, ClaimedThread, Run, RunRecord, RunStatus, ToolRound};
use crate::model::step::{shape_step, RunStep, StepStatus};
use crate::model::thread::{Thread, ThreadRecord};
use crate::model::values::Metadata;
use crate::model::values::Tool;
use crate::model::{now, now_ms};
use crate::queue::WorkItem;
use crate::store::{self, keys, PutMode, Update};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// The `include[]` value that shows `file_search` result content in run steps.
pub const INCLUDE_SEARCH_CONTENT: &str =
    "step_details.tool_calls[*].file_search.results[*].content";

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyRun {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitToolOutputs {
    /// One output for each pending call of `required_action`.
    pub tool_outputs: Vec<ToolOutput>,
    #[serde(default)]
    pub stream: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOutput {
    /// The `id` of the call this answers.
    #[serde(default)]
    #[schema(value_type = String, required)]
    pub tool_call_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 512000)]
    pub output: Option<String>,
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
struct RunPlan {
    run: Run,
    additional_instructions: Option<String>,
    /// With ids made before the run's, so they sort before the run's answer.
    additional_messages: Vec<(String, NewMessage)>,
    include_search_content: bool,
}

/// What a run is asked to be: the options create-run and create-thread-and-run share (the
/// latter has no reasoning effort, additional instructions or messages), as sent.
struct RunOptions {
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
async fn plan_run(ctx: &Ctx, thread_id: &str, options: RunOptions) -> Result<RunPlan, ApiError> {
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
    let assistant_id = assistant_id.as_str();
    validate::id("assistant_id", Kind::Assistant, assistant_id)?;
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
    let assistant = assistants::load(ctx, assistant_id).await?;
    let new_messages: Vec<(String, NewMessage)> = new_messages
        .into_iter()
        .map(|m| (new_id(Kind::Message), m))
        .collect();
    let tools = tools.unwrap_or_else(|| assistant.tools.clone());
    let tool_choice_value = tool_choice(tool_choice_value, &tools)?;
    let run = Run {
        id: new_id(Kind::Run),
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

/// Writes a planned run: claims the thread (one active run per thread), adds the extra
/// messages, stores the run and queues its first turn.
async fn start_run(
    ctx: &Ctx,
    plan: RunPlan,
    enqueue: bool,
    thread: Option<(ThreadRecord, store::ETag)>,
) -> Result<RunRecord, ApiError> {
    let thread_id = plan.run.thread_id.clone();
    let run_id = plan.run.id.clone();
    let (claimed, etag) = threads::claim_active_run(ctx, &thread_id, &run_id, thread).await?;
    let record = RunRecord {
        run: plan.run,
        additional_instructions: plan.additional_instructions,
        seq: 0,
        rounds: Vec::new(),
        updated_ms: now_ms(),
        include_search_content: plan.include_search_content,
        claimed_thread: Some(ClaimedThread {
            record: claimed,
            etag: etag.0,
        }),
    };
    let written = async {
        for (id, new) in plan.additional_messages {
            let message = new.into_message(&thread_id, id);
            threads::insert_message(ctx, &message).await?;
        }
        let key = keys::run(&ctx.tenant, &thread_id, &run_id);
        store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await?;
        if enqueue {
            enqueue_step(ctx, &record).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = written {
        // Leave the thread free again; the run (if stored) is failed by `give_up`-like
        // handling below so it does not stay queued.
        let _ = fail_if_active(
            ctx,
            &thread_id,
            &run_id,
            "server_error",
            "The run could not be started.",
        )
        .await;
        let _ = threads::release_active_run(ctx, &thread_id, &run_id).await;
        return Err(e);
    }
    Ok(record)
}

pub async fn enqueue_step(ctx: &Ctx, record: &RunRecord) -> Result<(), ApiError> {
    let item = WorkItem::Step(record.next_turn(&ctx.tenant));
    ctx.queue.enqueue(&item, Duration::ZERO).await.map_err(|e| {
        log::warn!("{e}");
        ApiError::Unavailable
    })
}

/// Fails a run that is still active (used when starting it went wrong half-way).
async fn fail_if_active(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    code: &str,
    message: &str,
) -> Result<(), ApiError> {
    let key = keys::run(&ctx.tenant, thread_id, run_id);
    store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        if r.run.is_terminal() {
            return Ok::<_, ApiError>(Update::Keep(()));
        }
        r.run.status = RunStatus::Failed;
        r.run.failed_at = Some(now());
        r.run.required_action = None;
        r.run.last_error = Some(json!({"code": code, "message": message}));
        r.updated_ms = now_ms();
        Ok(Update::Write(r, ()))
    })
    .await?;
    Ok(())
}

/// Parses and starts a run on an existing thread. Returns the stored record and whether
/// the client asked for a stream.
pub async fn create(
    ctx: &Ctx,
    thread_id: &str,
    query: &Query,
    body: &[u8],
    enqueue: impl Fn(bool) -> bool,
) -> Result<(RunRecord, bool), ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    let include_search_content = check_include(query)?;
    let req: CreateRun = parse_body(body)?;
    let stream = req.stream.unwrap_or(false);
    let thread = threads::load_tagged(ctx, thread_id).await?;
    let mut plan = plan_run(ctx, thread_id, req.into()).await?;
    plan.include_search_content = include_search_content;
    Ok((
        start_run(ctx, plan, enqueue(stream), Some(thread)).await?,
        stream,
    ))
}

/// Creates a thread and starts a run on it. Returns the thread too (streams start with it).
pub async fn create_thread_and_run(
    ctx: &Ctx,
    body: &[u8],
    enqueue: impl Fn(bool) -> bool,
) -> Result<(Thread, RunRecord, bool), ApiError> {
    let mut req: CreateThreadAndRun = parse_body(body)?;
    let stream = req.stream.unwrap_or(false);
    validate::id("assistant_id", Kind::Assistant, &req.assistant_id)?;
    // Check the assistant before creating anything.
    assistants::load(ctx, &req.assistant_id).await?;
    let mut thread_req = req.thread.take().unwrap_or_default();
    if let Some(tr) = req.tool_resources.take() {
        // Checked even when the thread's own win: a bad value is never silently ignored.
        tr.clone().resolve_for_modify("tool_resources")?;
        // The run-level resources become the thread's (the thread's own win if both).
        if thread_req.tool_resources.is_none() {
            thread_req.tool_resources = Some(tr);
        }
    }
    let thread = threads::create_from(ctx, thread_req, "thread").await?;
    let plan = plan_run(ctx, &thread.thread.id, req.into()).await?;
    let record = start_run(ctx, plan, enqueue(stream), None).await?;
    Ok((thread.thread, record, stream))
}

/// Checks `include[]`; whether it asks for `file_search` result content.
fn check_include(query: &Query) -> Result<bool, ApiError> {
    let mut content = false;
    for (k, v) in query {
        if k == "include[]" || k == "include" {
            one_of("include", v, &[INCLUDE_SEARCH_CONTENT])?;
            content = true;
        }
    }
    Ok(content)
}

pub async fn load(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<RunRecord, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    super::path_id(Kind::Run, run_id)?;
    let key = keys::run(&ctx.tenant, thread_id, run_id);
    match store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await? {
        Some((r, _)) => Ok(r),
        None => {
            threads::load_record(ctx, thread_id).await?;
            Err(ApiError::not_found(Kind::Run, run_id))
        }
    }
}

/// A run read answers with the poll interval the SDK helpers honour.
pub fn run_reply(record: &RunRecord, ctx: &Ctx) -> Result<Reply, ApiError> {
    Ok(Reply::Json {
        body: to_value(&record.run)?,
        headers: vec![("openai-poll-after-ms", ctx.runs.poll_after_ms.to_string())],
    })
}

pub async fn get(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<Reply, ApiError> {
    let record = load(ctx, thread_id, run_id).await?;
    let record = heal_if_stalled(ctx, record).await;
    run_reply(&record, ctx)
}

/// A run that is queued, in progress or cancelling but has not changed for a long time
/// lost its work item (a crash between storing it and queueing it): queue it again. The
/// engine ignores duplicates, so this is safe even when the item was only slow.
async fn heal_if_stalled(ctx: &Ctx, record: RunRecord) -> RunRecord {
    let active = matches!(
        record.run.status,
        RunStatus::Queued | RunStatus::InProgress | RunStatus::Cancelling
    );
    let stalled =
        now_ms().saturating_sub(record.updated_ms) > ctx.runs.stall_after.as_millis() as u64;
    if !(active && stalled) {
        return record;
    }
    let key = keys::run(&ctx.tenant, &record.run.thread_id, &record.run.id);
    let seq = record.seq;
    let touched = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        if r.seq != seq || r.run.is_terminal() {
            return Ok::<_, ApiError>(Update::Keep(None));
        }
        r.updated_ms = now_ms();
        Ok(Update::Write(r.clone(), Some(r)))
    })
    .await;
    match touched {
        Ok(Some(Some(r))) => {
            log::warn!("run {} looked stalled; queued it again", r.run.id);
            let _ = enqueue_step(ctx, &r).await;
            r
        }
        _ => record,
    }
}

pub async fn list(ctx: &Ctx, thread_id: &str, query: &Query) -> Result<Value, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    let q = ListQuery::parse(query, 100, 20)?;
    threads::load_record(ctx, thread_id).await?;
    let page = list_objects(
        &ctx.store,
        &keys::runs(&ctx.tenant, thread_id),
        &q,
        |r: &RunRecord| &r.run.id,
        None::<fn(&RunRecord) -> bool>,
    )
    .await?;
    // Answer the run objects, not the records.
    Ok(without_internal_fields(page))
}

pub async fn modify(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    super::path_id(Kind::Run, run_id)?;
    let req: ModifyRun = parse_required_body(body)?;
    if let Some(Some(m)) = &req.metadata {
        metadata("metadata", m)?;
    }
    let key = keys::run(&ctx.tenant, thread_id, run_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        match &req.metadata {
            Some(m) => {
                r.run.metadata = m.clone().unwrap_or_default();
                Ok::<_, ApiError>(Update::Write(r.clone(), r))
            }
            None => Ok(Update::Keep(r)),
        }
    })
    .await?;
    match updated {
        Some(r) => run_reply(&r, ctx),
        None => {
            threads::load_record(ctx, thread_id).await?;
            Err(ApiError::not_found(Kind::Run, run_id))
        }
    }
}

/// Cancels a run: `cancelling` while a turn may be in flight (the engine then finishes the
/// cancel), `cancelled` at once when the run only waits for tool outputs.
pub async fn cancel(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<Reply, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    super::path_id(Kind::Run, run_id)?;
    let key = keys::run(&ctx.tenant, thread_id, run_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        match r.run.status {
            RunStatus::Queued | RunStatus::InProgress => {
                r.run.status = RunStatus::Cancelling;
            }
            RunStatus::RequiresAction => {
                r.run.status = RunStatus::Cancelled;
                r.run.cancelled_at = Some(now());
                r.run.required_action = None;
            }
            RunStatus::Cancelling => return Ok(Update::Keep(r)),
            other => {
                return Err(ApiError::invalid(
                    format!("Cannot cancel run with status '{other}'."),
                    None,
                ))
            }
        }
        r.updated_ms = now_ms();
        Ok(Update::Write(r.clone(), r))
    })
    .await?;
    let Some(record) = updated else {
        threads::load_record(ctx, thread_id).await?;
        return Err(ApiError::not_found(Kind::Run, run_id));
    };
    match record.run.status {
        RunStatus::Cancelled => {
            // It was waiting for tool outputs: its tool step ends as cancelled too.
            if let Some(round) = record.rounds.last() {
                set_step_status(ctx, &record, &round.step_id, StepStatus::Cancelled).await?;
            }
            threads::release_active_run(ctx, thread_id, run_id).await?;
            // The cancel is stored: its event. If it cannot be queued now, the run's pending
            // expire item finds the run cancelled and queues it (the same event id).
            if let Err(e) = crate::webhooks::run_changed(ctx, &record).await {
                log::warn!("{e}");
            }
        }
        RunStatus::Cancelling => {
            // Make sure a turn comes to notice the cancel even if none is pending.
            enqueue_step(ctx, &record).await?;
        }
        _ => {}
    }
    run_reply(&record, ctx)
}

/// Sets a stored step's status (and its timestamp).
pub async fn set_step_status(
    ctx: &Ctx,
    record: &RunRecord,
    step_id: &str,
    status: StepStatus,
) -> Result<(), ApiError> {
    let key = keys::step(&ctx.tenant, &record.run.thread_id, &record.run.id, step_id);
    crate::model::step::finish(ctx.store.as_ref(), &key, status).await?;
    Ok(())
}

/// Accepts the outputs of the pending tool calls and queues the run's next turn.
/// Returns the updated record and whether the client asked for a stream.
pub async fn submit_tool_outputs(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    body: &[u8],
    enqueue: impl Fn(bool) -> bool,
) -> Result<(RunRecord, bool), ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    super::path_id(Kind::Run, run_id)?;
    let req: SubmitToolOutputs = parse_body(body)?;
    let stream = req.stream.unwrap_or(false);
    let mut outputs: Vec<(String, String)> = Vec::with_capacity(req.tool_outputs.len());
    for (i, o) in req.tool_outputs.into_iter().enumerate() {
        let id = o.tool_call_id.ok_or_else(|| {
            ApiError::invalid_param(
                &format!("tool_outputs[{i}].tool_call_id"),
                format!("Missing required parameter: 'tool_outputs[{i}].tool_call_id'."),
            )
        })?;
        if outputs.iter().any(|(seen, _)| *seen == id) {
            return Err(ApiError::invalid_param(
                &format!("tool_outputs[{i}].tool_call_id"),
                format!(
                    "Duplicate tool_call_id '{}' in tool_outputs.",
                    crate::error::shown(&id)
                ),
            ));
        }
        let output = o.output.unwrap_or_default();
        validate::max_chars(&format!("tool_outputs[{i}].output"), &output, 512_000)?;
        outputs.push((id, output));
    }
    let key = keys::run(&ctx.tenant, thread_id, run_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        if r.run.status != RunStatus::RequiresAction {
            return Err(ApiError::invalid(
                format!(
                    "Runs in status \"{}\" do not accept tool outputs.",
                    r.run.status
                ),
                None,
            ));
        }
        let Some(round) = r.rounds.last_mut() else {
            return Err(ApiError::internal("requires_action without a tool round"));
        };
        for (id, _) in &outputs {
            if !round
                .calls
                .iter()
                .any(|c| c.id == *id && c.is_client_call())
            {
                return Err(ApiError::invalid_param(
                    "tool_outputs",
                    format!(
                        "No tool call found with id '{}' in this run's pending tool calls.",
                        crate::error::shown(id)
                    ),
                ));
            }
        }
        let missing: Vec<&str> = round
            .calls
            .iter()
            .filter(|c| c.is_client_call() && !outputs.iter().any(|(id, _)| *id == c.id))
            .map(|c| c.id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::invalid_param(
                "tool_outputs",
                format!(
                    "Expected tool outputs for call_ids {:?}, got values for {:?}.",
                    round
                        .calls
                        .iter()
                        .filter(|c| c.is_client_call())
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>(),
                    outputs
                        .iter()
                        .map(|(id, _)| id.as_str())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        for call in round.calls.iter_mut().filter(|c| c.is_client_call()) {
            call.output = outputs
                .iter()
                .find(|(id, _)| *id == call.id)
                .map(|(_, o)| o.clone());
        }
        r.run.status = RunStatus::Queued;
        r.run.required_action = None;
        r.updated_ms = now_ms();
        Ok(Update::Write(r.clone(), r))
    })
    .await?;
    let Some(record) = updated else {
        threads::load_record(ctx, thread_id).await?;
        return Err(ApiError::not_found(Kind::Run, run_id));
    };
    // The tool step now shows the outputs and is complete.
    if let Some(round) = record.rounds.last() {
        write_tool_step(ctx, &record, round, StepStatus::Completed).await?;
    }
    if enqueue(stream) {
        enqueue_step(ctx, &record).await?;
    }
    Ok((record, stream))
}

/// Writes a tool-calls step from its round (overwriting: the round is the truth).
pub async fn write_tool_step(
    ctx: &Ctx,
    record: &RunRecord,
    round: &ToolRound,
    status: StepStatus,
) -> Result<RunStep, ApiError> {
    let key = keys::step(
        &ctx.tenant,
        &record.run.thread_id,
        &record.run.id,
        &round.step_id,
    );
    let existing = store::get_json::<RunStep>(ctx.store.as_ref(), &key).await?;
    let (created_at, usage) = existing
        .as_ref()
        .map(|(s, _)| (s.created_at, s.usage))
        .unwrap_or((now(), None));
    let step = RunStep {
        id: round.step_id.clone(),
        object: "thread.run.step".into(),
        created_at,
        assistant_id: record.run.assistant_id.clone(),
        thread_id: record.run.thread_id.clone(),
        run_id: record.run.id.clone(),
        step_type: "tool_calls".into(),
        status,
        step_details: tool_step_details(round),
        last_error: None,
        expired_at: None,
        cancelled_at: None,
        failed_at: None,
        completed_at: (status == StepStatus::Completed).then(now),
        metadata: Metadata::new(),
        usage,
    };
    store::put_json(ctx.store.as_ref(), &key, &step, PutMode::Overwrite).await?;
    Ok(step)
}

pub async fn list_steps(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    query: &Query,
) -> Result<Value, ApiError> {
    let include_content = check_include(query)?;
    let q = ListQuery::parse(query, 100, 20)?;
    load(ctx, thread_id, run_id).await?;
    let mut page = list_objects(
        &ctx.store,
        &keys::steps(&ctx.tenant, thread_id, run_id),
        &q,
        |s: &RunStep| &s.id,
        None::<fn(&RunStep) -> bool>,
    )
    .await?;
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for step in data.iter_mut() {
            *step = shape_step(step.take(), include_content);
        }
    }
    Ok(page)
}

pub async fn get_step(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    step_id: &str,
    query: &Query,
) -> Result<Value, ApiError> {
    let include_content = check_include(query)?;
    super::path_id(Kind::Step, step_id)?;
    load(ctx, thread_id, run_id).await?;
    let key = keys::step(&ctx.tenant, thread_id, run_id, step_id);
    match store::get_json::<RunStep>(ctx.store.as_ref(), &key).await? {
        Some((s, _)) => Ok(shape_step(to_value(&s)?, include_content)),
        None => Err(ApiError::not_found(Kind::Step, step_id)),
    }
}

/// A stored step as JSON (for stream events).
pub async fn load_step(ctx: &Ctx, record: &RunRecord, step_id: &str) -> Result<Value, ApiError> {
    let key = keys::step(&ctx.tenant, &record.run.thread_id, &record.run.id, step_id);
    match store::get_json::<RunStep>(ctx.store.as_ref(), &key).await? {
        Some((s, _)) => Ok(shape_step(to_value(&s)?, record.include_search_content)),
        None => Err(ApiError::not_found(Kind::Step, step_id)),
    }
}
