//! The Responses API: a response is a run of the one engine with a response face
//! (`model::response`). Creating one stores its input and its record and then runs its turns
//! inside the request (foreground, streamed or not) or through the work queue
//! (`background`), exactly as a run's; reading one is one read of its record.
//! - `request`: the request body, checked, in the engine's terms;
//! - `tools`: its `tools` and `tool_choice`;
//! - `fields`: the field checks both share;
//! - `stream`: the translation of the engine's events into the Responses stream;
//! - `replay`: the kept events of streamed background responses, and their replay.

mod fields;
pub mod replay;
pub mod request;
pub mod stream;
mod tools;

use super::events::ChannelSink;
use super::items;
use super::pagination::{ListQuery, Query};
use super::Reply;
use crate::context::Ctx;
use crate::engine::events::Discard;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::ids::{new_id, ConversationId, Kind, ResponseId, TypedId};
use crate::model::now_ms;
use crate::model::response::{self, ResponseFace, ResponseInput};
use crate::model::run::{ClaimedThread, Run, RunRecord, RunStatus};
use crate::model::thread::{Thread, ThreadRecord};
use crate::model::values::ToolResources;
use crate::queue::{Outcome, WorkItem};
use crate::store::{self, keys, PutMode, Update};
use request::NewResponse;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use stream::ResponseStream;

fn previous_not_found(id: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "Previous response with id '{}' not found.",
            crate::error::shown(id)
        ),
        param: Some("previous_response_id".into()),
        code: Some("previous_response_not_found".into()),
    }
}

/// A stored response of this tenant, `None` when there is none (or it was not to be stored).
async fn load(ctx: &Ctx, id: &str) -> Result<Option<(RunRecord, store::ETag)>, ApiError> {
    if ResponseId::parse(id).is_none() {
        return Ok(None);
    }
    let found =
        store::get_json::<RunRecord>(ctx.store.as_ref(), &keys::response(&ctx.tenant, id)).await?;
    Ok(found.filter(|(r, _)| r.response.as_ref().is_some_and(|f| f.store)))
}

async fn load_found(ctx: &Ctx, id: &str) -> Result<RunRecord, ApiError> {
    load(ctx, id)
        .await?
        .map(|(r, _)| r)
        .ok_or_else(|| ApiError::not_found(Kind::Response, id))
}

async fn load_input(ctx: &Ctx, id: &str) -> Result<ResponseInput, ApiError> {
    Ok(response::load_input(ctx.store.as_ref(), &ctx.tenant, id).await?)
}

/// The context a request continues: the previous response's input and output.
async fn previous_context(ctx: &Ctx, id: &str) -> Result<Vec<Value>, ApiError> {
    let (record, _) = load(ctx, id).await?.ok_or_else(|| previous_not_found(id))?;
    if !response::is_terminal(record.run.status) {
        return Err(ApiError::invalid_param(
            "previous_response_id",
            format!("Previous response with id '{id}' is still in progress: wait for it to end."),
        ));
    }
    let mut items = load_input(ctx, id).await?.items;
    if let Some(face) = record.response {
        items.extend(face.output);
    }
    Ok(items)
}

/// A response that asks for `code_interpreter` on a server that cannot run it is refused at
/// once (a run finds out at its first turn; a response need not call the model first).
async fn check_code_interpreter(ctx: &Ctx, req: &NewResponse) -> Result<(), ApiError> {
    let Some(i) = req
        .tools
        .iter()
        .position(|t| matches!(t, crate::model::values::Tool::CodeInterpreter {}))
    else {
        return Ok(());
    };
    let ci = ctx.code_interpreter.get().await;
    if ci.executor().is_some() {
        return Ok(());
    }
    Err(ApiError::invalid_param(
        &format!("tools[{i}].type"),
        format!(
            "The code_interpreter tool is not available on this server: {}.",
            ci.unavailable_reason().unwrap_or("it is not configured")
        ),
    ))
}

/// Replaces each `item_reference` of the input with the item it names: one of the context
/// the request continues, or of its conversation. A reference to nothing is a 400.
async fn resolve_references(
    ctx: &Ctx,
    context: &[Value],
    conversation: Option<&str>,
    input: &mut [Value],
) -> Result<(), ApiError> {
    for (n, item) in input.iter_mut().enumerate() {
        if item["type"] != "item_reference" {
            continue;
        }
        let id = item["id"].as_str().unwrap_or_default().to_string();
        let mut found = context.iter().find(|i| i["id"] == id.as_str()).cloned();
        if let (None, Some(thread)) = (&found, conversation) {
            found = crate::model::item::get(ctx.store.as_ref(), &ctx.tenant, thread, &id).await?;
        }
        match found {
            Some(referenced) => *item = referenced,
            None => {
                return Err(ApiError::invalid_param(
                    &format!("input[{n}].id"),
                    format!("Item with id '{}' not found.", crate::error::shown(&id)),
                ))
            }
        }
    }
    Ok(())
}

/// Every `function_call_output` must answer a call the context or the input makes.
fn check_outputs(context: &[Value], input: &[Value]) -> Result<(), ApiError> {
    let calls: HashSet<&str> = context
        .iter()
        .chain(input)
        .filter(|i| i["type"] == "function_call")
        .filter_map(|i| i["call_id"].as_str())
        .collect();
    for (n, item) in input.iter().enumerate() {
        if item["type"] != "function_call_output" {
            continue;
        }
        let call_id = item["call_id"].as_str().unwrap_or_default();
        if !calls.contains(call_id) {
            return Err(ApiError::invalid_param(
                &format!("input[{n}].call_id"),
                format!(
                    "No tool call found for function call output with call_id {}.",
                    crate::error::shown(call_id)
                ),
            ));
        }
    }
    Ok(())
}

/// How a created response is to be run.
pub struct Created {
    pub record: RunRecord,
    pub stream: bool,
}

/// Checks and stores a new response: its input (with the context it continues), its thread
/// (its conversation, claimed as a run claims a thread, or a thread of its own), its record.
/// A background response's first turn is queued.
pub async fn create(ctx: &Ctx, query: &Query, body: &[u8]) -> Result<Created, ApiError> {
    let include = items::parse_include(query)?;
    let req = request::parse(body, include)?;
    check_code_interpreter(ctx, &req).await?;
    let mut context = match &req.previous_response_id {
        Some(id) => previous_context(ctx, id).await?,
        None => Vec::new(),
    };
    let conversation = match &req.conversation {
        Some(id) => {
            let id = ConversationId::parse(id)
                .ok_or_else(|| ApiError::not_found(Kind::Conversation, id))?;
            let found = crate::model::thread::load(ctx.store.as_ref(), &ctx.tenant, &id).await?;
            Some(found.ok_or_else(|| ApiError::not_found(Kind::Conversation, id.as_str()))?)
        }
        None => None,
    };
    // Input ids are made before the response's, so they sort before its output.
    let mut own = match &req.input {
        Some(input) => items::parse_input(input, "input")?,
        None => Vec::new(),
    };
    let thread_id = conversation.as_ref().map(|(t, _)| t.thread.id.clone());
    resolve_references(ctx, &context, thread_id.as_deref(), &mut own).await?;
    if conversation.is_none() {
        check_outputs(&context, &own)?;
    }
    let response_id = ResponseId::new().into_string();
    let (thread_id, claimed) = match conversation {
        Some((thread, etag)) => {
            let thread_id = thread.thread.id.clone();
            let known = Some((thread, etag));
            let claimed =
                super::threads::claim_active_run(ctx, &thread_id, &response_id, known).await?;
            (thread_id, claimed)
        }
        None => own_thread(ctx, &response_id).await?,
    };
    let own_from = context.len();
    context.extend(own);
    let input = ResponseInput {
        items: context,
        own_from,
    };
    let record = record_of(&req, response_id, thread_id, claimed);
    let written = async {
        let key = keys::response_input(&ctx.tenant, &record.run.id);
        store::put_json(ctx.store.as_ref(), &key, &input, PutMode::Create).await?;
        let key = keys::response(&ctx.tenant, &record.run.id);
        store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await?;
        // A streamed one runs inside its request (its watchdog copies cover a crash).
        if req.background && !req.stream {
            super::runs::enqueue_step(ctx, &record).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = written {
        // Nothing may wait for a turn that was never queued: the response fails (if it was
        // stored) and its thread is free.
        let key = keys::response(&ctx.tenant, &record.run.id);
        let _ = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.run.is_terminal() {
                return Ok::<_, ApiError>(Update::Keep(()));
            }
            r.run.status = RunStatus::Failed;
            r.run.failed_at = Some(crate::model::now());
            r.run.last_error = Some(json!({"code": "server_error",
                                           "message": "The response could not be started."}));
            r.updated_ms = now_ms();
            Ok(Update::Write(r, ()))
        })
        .await;
        let _ =
            super::threads::release_active_run(ctx, &record.run.thread_id, &record.run.id).await;
        return Err(e);
    }
    Ok(Created {
        record,
        stream: req.stream,
    })
}

/// A thread for a response outside any conversation: nobody else sees it; it holds the
/// response's messages and steps, claimed by the response from the start.
async fn own_thread(
    ctx: &Ctx,
    response_id: &str,
) -> Result<(String, (ThreadRecord, store::ETag)), ApiError> {
    let thread = ThreadRecord {
        thread: Thread {
            id: new_id(Kind::Thread),
            object: "thread".into(),
            created_at: crate::model::now(),
            tool_resources: ToolResources::default(),
            metadata: Default::default(),
        },
        active_run_id: Some(response_id.to_string()),
    };
    let key = keys::thread(&ctx.tenant, &thread.thread.id);
    let etag = store::put_json(ctx.store.as_ref(), &key, &thread, PutMode::Create).await?;
    Ok((thread.thread.id.clone(), (thread, etag)))
}

fn record_of(
    req: &NewResponse,
    id: String,
    thread_id: String,
    (claimed, etag): (ThreadRecord, store::ETag),
) -> RunRecord {
    let conversation = req.conversation.as_ref().map(|_| claimed.thread.id.clone());
    RunRecord {
        run: Run {
            id,
            object: "response".into(),
            created_at: crate::model::now(),
            thread_id,
            assistant_id: String::new(),
            status: RunStatus::Queued,
            required_action: None,
            last_error: None,
            expires_at: None,
            started_at: None,
            cancelled_at: None,
            failed_at: None,
            completed_at: None,
            incomplete_details: None,
            model: req.model.clone(),
            instructions: req.instructions.clone().unwrap_or_default(),
            tools: req.tools.clone(),
            metadata: req.metadata.clone(),
            usage: None,
            temperature: req.temperature,
            top_p: req.top_p,
            max_prompt_tokens: None,
            max_completion_tokens: req.max_output_tokens,
            truncation_strategy: json!({"type": "auto", "last_messages": null}),
            tool_choice: req.tool_choice.clone(),
            parallel_tool_calls: req.parallel_tool_calls,
            response_format: req.response_format.clone(),
            reasoning_effort: req.reasoning_effort.clone(),
        },
        additional_instructions: None,
        seq: 0,
        rounds: Vec::new(),
        updated_ms: now_ms(),
        include_search_content: req.include.iter().any(|i| i == "file_search_call.results"),
        claimed_thread: Some(ClaimedThread {
            record: claimed,
            etag: etag.0,
        }),
        response: Some(ResponseFace {
            echo: req.echo.clone(),
            store: req.store,
            background: req.background,
            stream: req.stream,
            conversation,
            include: req.include.clone(),
            vector_store_ids: req.vector_store_ids.clone(),
            filters: req.filters.clone(),
            container_file_ids: req.container_file_ids.clone(),
            max_tool_calls: req.max_tool_calls,
            output: Vec::new(),
        }),
    }
}

fn include_of(record: &RunRecord) -> Vec<String> {
    record
        .response
        .as_ref()
        .map(|f| f.include.clone())
        .unwrap_or_default()
}

/// The response object of a stored record.
fn object_of(record: &RunRecord, include: &[String]) -> Result<Value, ApiError> {
    response::object(record, include)
        .ok_or_else(|| ApiError::internal(format!("{} has no response face", record.run.id)))
}

/// Runs a foreground response's turns inside the request and answers the response as it
/// ended. The turns are owned by the shutdown, so a client that goes away does not stop
/// them; a turn that cannot finish here is queued.
pub async fn run_foreground(
    engine: &Arc<Engine>,
    ctx: &Ctx,
    record: &RunRecord,
) -> Result<Value, ApiError> {
    let item = record.next_turn(&ctx.tenant);
    let (engine2, ctx2) = (engine.clone(), ctx.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Everything after the turns happens in the task too: a client that goes away must not
    // leave a `store: false` response stored.
    engine.shutdown().spawn(async move {
        let (outcome, item) = engine2.run_streamed(item, &mut Discard).await;
        if let Outcome::Retry(reason) = outcome {
            log::warn!("turn of {} failed, queued instead: {reason}", item.run_id);
            let _ = ctx2
                .queue
                .enqueue(&WorkItem::Step(item.clone()), Duration::from_millis(200))
                .await;
        }
        let key = keys::response(&ctx2.tenant, &item.run_id);
        let ended = store::get_json::<RunRecord>(ctx2.store.as_ref(), &key).await;
        let answer = match ended {
            Ok(Some((ended, _))) => {
                let object = object_of(&ended, &include_of(&ended));
                forget_unstored(&ctx2, &ended).await;
                object
            }
            Ok(None) => Err(ApiError::not_found(Kind::Response, &item.run_id)),
            Err(e) => Err(e.into()),
        };
        let _ = tx.send(answer);
    });
    rx.await
        .unwrap_or_else(|_| Err(ApiError::internal("the response's turns were dropped")))
}

/// Streams a response's turns inside the request (a background one too: it was not
/// queued, and its stream's watchdog copies keep it going if this process dies).
pub fn run_streamed(engine: &Arc<Engine>, ctx: &Ctx, record: &RunRecord, buffer: usize) -> Reply {
    let (tx, rx) = super::events::channel(buffer, format!("response {}", record.run.id));
    // A background response's stream can be resumed: its events are kept.
    let resumable = record.response.as_ref().is_some_and(|f| f.background);
    let log = resumable.then(|| Arc::new(replay::EventLog::default()));
    if let Some(log) = &log {
        replay::spawn_flusher(engine.shutdown(), ctx, &record.run.id, log.clone());
    }
    let out = replay::Recorded {
        out: ChannelSink(tx),
        log: log.clone(),
    };
    let mut sink = ResponseStream::open(out, record, include_of(record));
    let item = record.next_turn(&ctx.tenant);
    let (engine2, ctx2) = (engine.clone(), ctx.clone());
    let key = keys::response(&ctx.tenant, &record.run.id);
    engine.shutdown().spawn(async move {
        let (outcome, item) = engine2.run_streamed(item, &mut sink).await;
        if let Outcome::Retry(reason) = outcome {
            log::warn!(
                "streamed turn of {} failed, queued instead: {reason}",
                item.run_id
            );
            let _ = ctx2
                .queue
                .enqueue(&WorkItem::Step(item), Duration::from_millis(200))
                .await;
            sink.error(
                "The stream was interrupted by a server error; the response continues in the \
                 background. Retrieve it for its result.",
            );
        }
        if let Some(log) = log {
            log.finish();
        }
        if let Ok(Some((ended, _))) = store::get_json::<RunRecord>(ctx2.store.as_ref(), &key).await
        {
            forget_unstored(&ctx2, &ended).await;
        }
    });
    Reply::Events {
        events: rx,
        headers: Vec::new(),
        done: false,
    }
}

/// A response created with `store: false` leaves nothing once it has ended: its record,
/// input and thread of its own are deleted (a conversation keeps what it gained).
async fn forget_unstored(ctx: &Ctx, record: &RunRecord) {
    let Some(face) = &record.response else {
        return;
    };
    if face.store || !response::is_terminal(record.run.status) {
        return;
    }
    delete_everything(ctx, record).await;
}

async fn delete_everything(ctx: &Ctx, record: &RunRecord) {
    let own_thread = record
        .response
        .as_ref()
        .is_some_and(|f| f.conversation.is_none());
    let mut prefixes = vec![keys::response_prefix(&ctx.tenant, &record.run.id)];
    if own_thread {
        let _ = ctx
            .store
            .delete(&keys::thread(&ctx.tenant, &record.run.thread_id))
            .await;
        prefixes.push(keys::thread_prefix(&ctx.tenant, &record.run.thread_id));
    }
    for prefix in prefixes {
        if let Err(e) = store::delete_prefix(&ctx.store, &prefix).await {
            log::warn!("cannot delete {prefix}: {e}");
        }
    }
    if own_thread {
        // Its code interpreter's container (the thread's Python session) ends with it.
        super::threads::end_session(ctx, &record.run.thread_id).await;
    }
}

/// The fields of an input token count's body (`personality` is accepted and ignored).
const COUNT_FIELDS: &[&str] = &[
    "model",
    "input",
    "previous_response_id",
    "tools",
    "text",
    "reasoning",
    "truncation",
    "instructions",
    "personality",
    "conversation",
    "tool_choice",
    "parallel_tool_calls",
];

/// `POST /responses/input_tokens`: the tokens the same request's input would take, counted
/// as the engine counts a prompt (same context, same tokenizer), without a model call.
pub async fn count_input_tokens(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    // The model only names the tokenizer, and this server has one.
    let mut value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    if let Some(o) = value.as_object_mut() {
        // Its body is the spec's, closed: the fields a response request adds are refused.
        if let Some(unknown) = o.keys().find(|k| !COUNT_FIELDS.contains(&k.as_str())) {
            return Err(items::unknown(unknown));
        }
        o.remove("personality");
        if o.get("model").is_none_or(Value::is_null) {
            o.insert("model".into(), json!("any"));
        }
    }
    let req = request::parse(value.to_string().as_bytes(), Vec::new())?;
    let mut items = match &req.previous_response_id {
        Some(id) => previous_context(ctx, id).await?,
        None => Vec::new(),
    };
    if let Some(id) = &req.conversation {
        let id =
            ConversationId::parse(id).ok_or_else(|| ApiError::not_found(Kind::Conversation, id))?;
        crate::model::thread::load(ctx.store.as_ref(), &ctx.tenant, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(Kind::Conversation, id.as_str()))?;
        items.extend(crate::model::item::list(ctx.store.as_ref(), &ctx.tenant, &id).await?);
    }
    if let Some(input) = &req.input {
        items.extend(items::parse_input(input, "input")?);
    }
    let mut messages = Vec::new();
    if let Some(instructions) = &req.instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    messages.extend(crate::engine::response::chat_messages(&items));
    let tools = serde_json::to_string(&req.echo["tools"]).unwrap_or_default();
    let tokens = crate::engine::prompt::prompt_tokens(&messages)
        + if req.tools.is_empty() {
            0
        } else {
            crate::engine::prompt::count_tokens(&tools)
        };
    Ok(json!({"object": "response.input_tokens", "input_tokens": tokens}))
}

/// `GET /responses/{id}?stream=true`: the stream of a streamed background response again.
pub async fn get_stream(
    engine: &Arc<Engine>,
    ctx: &Ctx,
    id: &str,
    query: &Query,
    buffer: usize,
) -> Result<Reply, ApiError> {
    let after = replay::starting_after(query)?;
    let record = load_found(ctx, id).await?;
    replay::replay(engine.shutdown(), ctx, &record, after, buffer)
}

/// `GET /responses/{id}`.
pub async fn get(ctx: &Ctx, id: &str, query: &Query) -> Result<Value, ApiError> {
    let include = items::parse_include(query)?;
    let record = load_found(ctx, id).await?;
    let mut include_all = include_of(&record);
    include_all.extend(include);
    object_of(&record, &include_all)
}

/// `DELETE /responses/{id}`: a response still running must be cancelled (or end) first.
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let record = load_found(ctx, id).await?;
    if !response::is_terminal(record.run.status) {
        return Err(ApiError::Conflict(format!(
            "Response {id} is still {}: cancel it or wait for it to end before deleting it.",
            response::status(record.run.status)
        )));
    }
    delete_everything(ctx, &record).await;
    Ok(json!({"id": id, "object": "response", "deleted": true}))
}

/// `POST /responses/{id}/cancel`: background responses only. A queued one is cancelled at
/// once, one in progress when its turn notices; an ended one is answered as it is.
pub async fn cancel(ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let record = load_found(ctx, id).await?;
    if !record.response.as_ref().is_some_and(|f| f.background) {
        return Err(ApiError::invalid(
            "Cannot cancel a synchronous response.",
            None,
        ));
    }
    let key = keys::response(&ctx.tenant, id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
        match r.run.status {
            RunStatus::Queued | RunStatus::InProgress => r.run.status = RunStatus::Cancelling,
            _ => return Ok::<_, ApiError>(Update::Keep(r)),
        }
        r.updated_ms = now_ms();
        Ok(Update::Write(r.clone(), r))
    })
    .await?;
    let record = updated.ok_or_else(|| ApiError::not_found(Kind::Response, id))?;
    object_of(&record, &include_of(&record))
}

/// `GET /responses/{id}/input_items`: the items the response was given (the context it
/// continued, then its own), newest first unless `order=asc`.
pub async fn input_items(ctx: &Ctx, id: &str, query: &Query) -> Result<Value, ApiError> {
    let list = ListQuery::parse(query, 100, 20)?;
    let include = items::parse_include(query)?;
    load_found(ctx, id).await?;
    let input = load_input(ctx, id).await?;
    let mut all: Vec<Value> = input
        .items
        .into_iter()
        .map(|i| response::shape_item(i, &include))
        .collect();
    if list.order == super::pagination::Order::Desc {
        all.reverse();
    }
    let start = match &list.after {
        Some(after) => all
            .iter()
            .position(|i| i["id"] == after.as_str())
            .map(|p| p + 1)
            .unwrap_or(all.len()),
        None => 0,
    };
    let rest = &all[start.min(all.len())..];
    let page: Vec<Value> = rest.iter().take(list.limit).cloned().collect();
    let has_more = rest.len() > page.len();
    Ok(json!({
        "object": "list",
        "first_id": page.first().map(|i| i["id"].clone()),
        "last_id": page.last().map(|i| i["id"].clone()),
        "has_more": has_more,
        "data": page,
    }))
}
