//! The engine: advances a run by one turn per work item.
//!
//! A turn reads the run, builds the prompt, calls the model (retrying transient failures),
//! and writes what came back: an assistant message and a `message_creation` step, or a
//! `tool_calls` step and `requires_action`. Every turn is idempotent: the work item names
//! the turn (`seq`) it expects, objects a turn writes have ids derived from the run and the
//! turn (a repeated turn overwrites them), and the run itself moves on only through a
//! conditional write that checks the turn and the status, so a cancel that lands while the
//! model is answering always wins.
//! - `prompt`: the Chat Completions request of a turn;
//! - `events`: stream events, discarded for queued runs, forwarded for streamed ones.

pub mod events;
pub mod prompt;

use crate::api::messages::Message;
use crate::api::pagination::read_all;
use crate::api::runs::{
    self, answer_message_id, message_step_id, now_ms, tool_step_id, RoundCall, RunRecord, RunStep,
    ToolRound,
};
use crate::api::threads;
use crate::api::types::{now, text_part, Tool};
use crate::api::validate::Metadata;
use crate::api::Ctx;
use crate::config::RunSettings;
use crate::error::ApiError;
use crate::ids::{derived_id, Kind};
use crate::llm::{Completion, Delta, LlmClient, LlmError, Usage};
use crate::queue::{DynQueue, Outcome, WorkHandler, WorkItem, WorkKind};
use crate::store::{self, keys, DynStore, PutMode, Update};
use async_trait::async_trait;
use events::{Discard, EventSink};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Engine {
    store: DynStore,
    queue: DynQueue,
    llm: LlmClient,
    settings: Arc<RunSettings>,
    /// Test hook: stop a turn right after it wrote its message, as a crash would.
    crash_after_message_write: std::sync::atomic::AtomicBool,
}

/// Why a turn stopped early.
enum Stop {
    /// The run moved on, or there is nothing to do.
    Nothing,
    /// Transient: deliver the work item again.
    Retry(String),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        match e {
            // The cause is for the log; clients only ever see the run's `last_error`.
            ApiError::Internal(cause) => Stop::Retry(cause),
            other => Stop::Retry(other.to_string()),
        }
    }
}

impl From<store::StoreError> for Stop {
    fn from(e: store::StoreError) -> Self {
        Stop::Retry(e.to_string())
    }
}

/// What a conditional run update found.
enum Moved {
    /// Applied; the new record.
    Applied(Box<RunRecord>),
    /// The run is being cancelled: finish the cancel instead.
    Cancelling,
    /// The run went on without us (another delivery, a terminal state).
    Stale,
}

impl Engine {
    pub fn new(
        store: DynStore,
        queue: DynQueue,
        llm: LlmClient,
        settings: Arc<RunSettings>,
    ) -> Self {
        Engine {
            store,
            queue,
            llm,
            settings,
            crash_after_message_write: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Test hook: the next turn that writes a message stops right after that write.
    pub fn crash_once_after_message_write(&self) {
        self.crash_after_message_write
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn ctx(&self, tenant: &str) -> Ctx {
        Ctx {
            store: self.store.clone(),
            queue: self.queue.clone(),
            runs: self.settings.clone(),
            tenant: tenant.to_string(),
        }
    }

    /// Takes the turn `item` names, reporting to `sink`.
    pub async fn run_turn(&self, item: &WorkItem, sink: &mut dyn EventSink) -> Outcome {
        let result = match item.kind {
            WorkKind::Step => self.step(item, sink).await,
            WorkKind::Expire => self.expire(item).await,
        };
        match result {
            Ok(()) | Err(Stop::Nothing) => Outcome::Done,
            Err(Stop::Retry(reason)) => Outcome::Retry(reason),
        }
    }

    /// Applies `change` to the run if it is still at turn `seq` and in one of `from`.
    async fn move_run(
        &self,
        ctx: &Ctx,
        item: &WorkItem,
        from: &[&str],
        change: impl Fn(&mut RunRecord),
    ) -> Result<Moved, Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let moved = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.seq != item.seq {
                return Ok::<_, ApiError>(Update::Keep(Moved::Stale));
            }
            if r.run.status == "cancelling" {
                return Ok(Update::Keep(Moved::Cancelling));
            }
            if !from.contains(&r.run.status.as_str()) {
                return Ok(Update::Keep(Moved::Stale));
            }
            change(&mut r);
            r.updated_ms = now_ms();
            Ok(Update::Write(r.clone(), Moved::Applied(Box::new(r))))
        })
        .await?;
        Ok(moved.unwrap_or(Moved::Stale))
    }

    async fn step(&self, item: &WorkItem, sink: &mut dyn EventSink) -> Result<(), Stop> {
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let Some((record, _)) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await?
        else {
            return Err(Stop::Nothing);
        };
        if record.seq != item.seq {
            return Err(Stop::Nothing);
        }
        let record = match record.run.status.as_str() {
            "cancelling" => return self.finish_cancel(&ctx, item, sink).await,
            "queued" => {
                let started = self
                    .move_run(&ctx, item, &["queued"], |r| {
                        r.run.status = "in_progress".into();
                        r.run.started_at.get_or_insert_with(now);
                    })
                    .await?;
                match started {
                    Moved::Applied(r) => {
                        sink.emit("thread.run.in_progress", run_value(&r));
                        *r
                    }
                    Moved::Cancelling => return self.finish_cancel(&ctx, item, sink).await,
                    Moved::Stale => return Err(Stop::Nothing),
                }
            }
            // A delivery of a turn that was already under way (a crash, a retry).
            "in_progress" => record,
            _ => return Err(Stop::Nothing),
        };

        // The thread's messages, oldest first.
        let message_prefix = keys::messages(&ctx.tenant, &item.thread_id);
        let mut ids: Vec<String> = store::list_all(ctx.store.as_ref(), &message_prefix)
            .await?
            .iter()
            .map(|k| keys::last_segment(k).to_string())
            .collect();
        ids.sort_unstable();
        let thread_messages: Vec<Message> = read_all(&ctx.store, &message_prefix, &ids).await?;

        let prompt = match prompt::build(&record, &thread_messages) {
            Ok(p) => p,
            Err(prompt::PromptError::UnsupportedTool(tool)) => {
                let message = format!(
                    "The {tool} tool is not supported by this server yet; remove it from the \
                     assistant's or the run's tools."
                );
                return self.fail(&ctx, item, "server_error", &message, sink).await;
            }
            Err(prompt::PromptError::TooLong) => {
                return self
                    .end_incomplete(&ctx, item, "max_prompt_tokens", None, sink)
                    .await;
            }
            Err(prompt::PromptError::NoCompletionBudget) => {
                return self
                    .end_incomplete(&ctx, item, "max_completion_tokens", None, sink)
                    .await;
            }
        };

        let mut live = LiveTurn::new(&record, sink);
        let completion = match self.call_model(&prompt.body, &mut live).await {
            Ok(c) => c,
            Err(e) => {
                let sink = live.sink;
                return self
                    .fail(&ctx, item, e.run_error_code(), &e.to_string(), sink)
                    .await;
            }
        };
        let usage = completion.usage.unwrap_or_else(|| {
            // The endpoint reported none: count what was sent and received.
            let sent = prompt.prompt_tokens.unwrap_or_else(|| {
                prompt::prompt_tokens(
                    prompt.body["messages"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[]),
                )
            });
            let received = prompt::count_tokens(&completion.text);
            Usage {
                prompt_tokens: sent,
                completion_tokens: received,
                total_tokens: sent + received,
            }
        });
        self.commit(&ctx, item, &record, completion, usage, live)
            .await
    }

    /// Calls the model, retrying transient failures with back-off (honouring Retry-After).
    async fn call_model(
        &self,
        body: &Value,
        live: &mut LiveTurn<'_>,
    ) -> Result<Completion, LlmError> {
        let mut attempt = 1;
        loop {
            let mut on_delta = |d: Delta| live.delta(d);
            match self.llm.complete(body.clone(), &mut on_delta).await {
                Ok(c) => return Ok(c),
                Err(e @ LlmError::Rejected { .. }) => return Err(e),
                Err(e) if attempt >= self.settings.llm_max_attempts => return Err(e),
                Err(LlmError::Retryable {
                    message,
                    rate_limited,
                    retry_after,
                }) => {
                    let wait =
                        retry_after.unwrap_or_else(|| Duration::from_millis(500 << attempt.min(5)));
                    if wait > self.settings.llm_max_retry_wait {
                        return Err(LlmError::Retryable {
                            message,
                            rate_limited,
                            retry_after,
                        });
                    }
                    log::info!("model call failed ({message}); retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Writes what the model answered and moves the run on.
    async fn commit(
        &self,
        ctx: &Ctx,
        item: &WorkItem,
        record: &RunRecord,
        completion: Completion,
        usage: Usage,
        mut live: LiveTurn<'_>,
    ) -> Result<(), Stop> {
        let run = &record.run;
        let seq = item.seq;
        let text = completion.text.clone();
        let has_calls = !completion.tool_calls.is_empty();
        let truncated = completion.finish_reason.as_deref() == Some("length");

        if has_calls {
            let known: Vec<&str> = run
                .tools
                .iter()
                .filter_map(|t| match t {
                    Tool::Function { function } => Some(function.name.as_str()),
                    _ => None,
                })
                .collect();
            if let Some(bad) = completion
                .tool_calls
                .iter()
                .find(|c| !known.contains(&c.name.as_str()))
            {
                let message = format!(
                    "The model called a function '{}' that the run does not define.",
                    bad.name
                );
                return self
                    .fail(ctx, item, "server_error", &message, live.sink)
                    .await;
            }
        }

        // What this turn wrote, to take back if a cancel wins the race for the run.
        let mut written: Vec<String> = Vec::new();
        // A message: the whole answer, or the text that came with tool calls.
        let message_status = if has_calls || !truncated {
            "completed"
        } else {
            "incomplete"
        };
        if !has_calls || !text.is_empty() {
            let message = self.answer_message(
                record,
                seq,
                &text,
                completion.refusal.as_deref(),
                message_status,
            );
            let key = keys::message(&ctx.tenant, &item.thread_id, &message.id);
            store::put_json(ctx.store.as_ref(), &key, &message, PutMode::Overwrite).await?;
            written.push(key);
            if self
                .crash_after_message_write
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(Stop::Retry(
                    "simulated crash after the message write".into(),
                ));
            }
            let step_usage = if has_calls { None } else { Some(usage) };
            let step = self.message_step(record, seq, &message.id, step_usage);
            let key = keys::step(&ctx.tenant, &item.thread_id, &item.run_id, &step.id);
            store::put_json(ctx.store.as_ref(), &key, &step, PutMode::Overwrite).await?;
            written.push(key);
            live.finish_message(&message, &step);
        }

        if has_calls {
            let round = ToolRound {
                step_id: tool_step_id(&run.id, seq),
                text: (!text.is_empty()).then(|| text.clone()),
                calls: completion
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| RoundCall {
                        id: if c.id.is_empty() {
                            derived_id(Kind::ToolCall, &run.id, seq * 64 + i as u32)
                        } else {
                            c.id.clone()
                        },
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                        output: None,
                    })
                    .collect(),
            };
            let step = RunStep {
                id: round.step_id.clone(),
                object: "thread.run.step".into(),
                created_at: now(),
                assistant_id: run.assistant_id.clone(),
                thread_id: run.thread_id.clone(),
                run_id: run.id.clone(),
                step_type: "tool_calls".into(),
                status: "in_progress".into(),
                step_details: runs::tool_step_details(&round),
                last_error: None,
                expired_at: None,
                cancelled_at: None,
                failed_at: None,
                completed_at: None,
                metadata: Metadata::new(),
                usage: Some(usage),
            };
            let key = keys::step(&ctx.tenant, &item.thread_id, &item.run_id, &step.id);
            store::put_json(ctx.store.as_ref(), &key, &step, PutMode::Overwrite).await?;
            written.push(key);
            let required = json!({
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {"tool_calls": round.calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>()},
            });
            let expiry = self.settings.expiry;
            let moved = self
                .move_run(ctx, item, &["in_progress"], |r| {
                    r.run.status = "requires_action".into();
                    r.run.required_action = Some(required.clone());
                    r.run.expires_at = Some(now() + expiry.as_secs().max(1) as i64);
                    add_usage(&mut r.run.usage, usage);
                    r.rounds.push(round.clone());
                    r.seq += 1;
                })
                .await?;
            return match moved {
                Moved::Applied(r) => {
                    let expire = WorkItem {
                        kind: WorkKind::Expire,
                        seq: r.seq,
                        ..item.clone()
                    };
                    if let Err(e) = self.queue.enqueue(&expire, expiry).await {
                        log::warn!("cannot schedule the expiry of {}: {e}", r.run.id);
                    }
                    live.sink.emit("thread.run.requires_action", run_value(&r));
                    Ok(())
                }
                Moved::Cancelling => {
                    self.take_back(ctx, &written).await;
                    self.finish_cancel(ctx, item, live.sink).await
                }
                Moved::Stale => {
                    self.take_back_if_ended(ctx, item, &written).await;
                    Err(Stop::Nothing)
                }
            };
        }

        let (status, details) = if truncated {
            (
                "incomplete",
                Some(json!({"reason": "max_completion_tokens"})),
            )
        } else {
            ("completed", None)
        };
        let moved = self
            .move_run(ctx, item, &["in_progress"], |r| {
                r.run.status = status.into();
                r.run.incomplete_details = details.clone();
                if status == "completed" {
                    r.run.completed_at = Some(now());
                }
                r.run.required_action = None;
                add_usage(&mut r.run.usage, usage);
                r.seq += 1;
            })
            .await?;
        match moved {
            Moved::Applied(r) => {
                threads::release_active_run(ctx, &item.thread_id, &item.run_id).await?;
                let event = if status == "completed" {
                    "thread.run.completed"
                } else {
                    "thread.run.incomplete"
                };
                live.sink.emit(event, run_value(&r));
                Ok(())
            }
            Moved::Cancelling => {
                self.take_back(ctx, &written).await;
                self.finish_cancel(ctx, item, live.sink).await
            }
            Moved::Stale => {
                self.take_back_if_ended(ctx, item, &written).await;
                Err(Stop::Nothing)
            }
        }
    }

    /// The run moved on while this turn wrote. If another delivery of the same turn
    /// finished it, what we wrote has the same names as what it wrote and stays; if the run
    /// ended otherwise (cancelled, failed, expired), nothing of this turn may remain.
    async fn take_back_if_ended(&self, ctx: &Ctx, item: &WorkItem, written: &[String]) {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        if let Ok(Some((r, _))) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await {
            if matches!(
                r.run.status.as_str(),
                "cancelled" | "cancelling" | "failed" | "expired"
            ) {
                self.take_back(ctx, written).await;
            }
        }
    }

    /// Deletes what a turn wrote before a cancel won: a cancelled run keeps no late answer.
    async fn take_back(&self, ctx: &Ctx, written: &[String]) {
        for key in written {
            if let Err(e) = ctx.store.delete(key).await {
                log::warn!("cannot take back {key} after a cancel: {e}");
            }
        }
    }

    fn answer_message(
        &self,
        record: &RunRecord,
        seq: u32,
        text: &str,
        refusal: Option<&str>,
        status: &str,
    ) -> Message {
        let run = &record.run;
        let at = now();
        let content = match refusal {
            Some(r) if text.is_empty() => vec![crate::api::types::ContentPart::Refusal {
                refusal: r.to_string(),
            }],
            _ => vec![text_part(text.to_string())],
        };
        Message {
            id: answer_message_id(&run.id, seq),
            object: "thread.message".into(),
            created_at: at,
            thread_id: run.thread_id.clone(),
            status: status.into(),
            incomplete_details: (status == "incomplete").then(|| json!({"reason": "max_tokens"})),
            completed_at: (status == "completed").then_some(at),
            incomplete_at: (status == "incomplete").then_some(at),
            role: "assistant".into(),
            content,
            assistant_id: Some(run.assistant_id.clone()),
            run_id: Some(run.id.clone()),
            attachments: Vec::new(),
            metadata: Metadata::new(),
        }
    }

    fn message_step(
        &self,
        record: &RunRecord,
        seq: u32,
        message_id: &str,
        usage: Option<Usage>,
    ) -> RunStep {
        let run = &record.run;
        RunStep {
            id: message_step_id(&run.id, seq),
            object: "thread.run.step".into(),
            created_at: now(),
            assistant_id: run.assistant_id.clone(),
            thread_id: run.thread_id.clone(),
            run_id: run.id.clone(),
            step_type: "message_creation".into(),
            status: "completed".into(),
            step_details: json!({"type": "message_creation", "message_creation": {"message_id": message_id}}),
            last_error: None,
            expired_at: None,
            cancelled_at: None,
            failed_at: None,
            completed_at: Some(now()),
            metadata: Metadata::new(),
            usage,
        }
    }

    /// Ends the run as `failed` with `last_error` (unless it already ended).
    async fn fail(
        &self,
        ctx: &Ctx,
        item: &WorkItem,
        code: &str,
        message: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let error = json!({"code": code, "message": message});
        let moved = self
            .move_run(ctx, item, &["queued", "in_progress"], |r| {
                r.run.status = "failed".into();
                r.run.failed_at = Some(now());
                r.run.required_action = None;
                r.run.last_error = Some(error.clone());
                r.seq += 1;
            })
            .await?;
        match moved {
            Moved::Applied(r) => {
                log::info!("run {} failed: {message}", r.run.id);
                threads::release_active_run(ctx, &item.thread_id, &item.run_id).await?;
                sink.emit("thread.run.failed", run_value(&r));
                Ok(())
            }
            Moved::Cancelling => self.finish_cancel(ctx, item, sink).await,
            Moved::Stale => Err(Stop::Nothing),
        }
    }

    async fn end_incomplete(
        &self,
        ctx: &Ctx,
        item: &WorkItem,
        reason: &str,
        usage: Option<Usage>,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let moved = self
            .move_run(ctx, item, &["queued", "in_progress"], |r| {
                r.run.status = "incomplete".into();
                r.run.incomplete_details = Some(json!({"reason": reason}));
                if let Some(u) = usage {
                    add_usage(&mut r.run.usage, u);
                }
                r.run.usage.get_or_insert_with(Usage::default);
                r.seq += 1;
            })
            .await?;
        match moved {
            Moved::Applied(r) => {
                threads::release_active_run(ctx, &item.thread_id, &item.run_id).await?;
                sink.emit("thread.run.incomplete", run_value(&r));
                Ok(())
            }
            Moved::Cancelling => self.finish_cancel(ctx, item, sink).await,
            Moved::Stale => Err(Stop::Nothing),
        }
    }

    /// `cancelling` → `cancelled`, and the thread is free again.
    async fn finish_cancel(
        &self,
        ctx: &Ctx,
        item: &WorkItem,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let done = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.run.status != "cancelling" {
                return Ok::<_, ApiError>(Update::Keep(None));
            }
            r.run.status = "cancelled".into();
            r.run.cancelled_at = Some(now());
            r.run.required_action = None;
            r.seq += 1;
            r.updated_ms = now_ms();
            Ok(Update::Write(r.clone(), Some(r)))
        })
        .await?;
        if let Some(Some(r)) = done {
            threads::release_active_run(ctx, &item.thread_id, &item.run_id).await?;
            sink.emit("thread.run.cancelled", run_value(&r));
        }
        Ok(())
    }

    /// A `requires_action` run whose outputs never came: `expired`.
    async fn expire(&self, item: &WorkItem) -> Result<(), Stop> {
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let Some((record, _)) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await?
        else {
            return Err(Stop::Nothing);
        };
        if record.seq != item.seq || record.run.status != "requires_action" {
            return Err(Stop::Nothing);
        }
        let due = record.run.expires_at.unwrap_or(0);
        if now() < due {
            // Delivered early (queues cap delays): come back when it is due.
            let wait = Duration::from_secs((due - now()).max(1) as u64);
            self.queue
                .enqueue(item, wait)
                .await
                .map_err(|e| Stop::Retry(e.to_string()))?;
            return Err(Stop::Nothing);
        }
        let moved = self
            .move_run(&ctx, item, &["requires_action"], |r| {
                r.run.status = "expired".into();
                r.run.required_action = None;
                r.seq += 1;
            })
            .await?;
        if let Moved::Applied(r) = moved {
            if let Some(round) = r.rounds.last() {
                runs::set_step_status(&ctx, &r, &round.step_id, "expired").await?;
            }
            threads::release_active_run(&ctx, &item.thread_id, &item.run_id).await?;
            log::info!("run {} expired waiting for tool outputs", r.run.id);
        }
        Ok(())
    }

    /// The last delivery of an item failed: the run must not stay active.
    async fn give_up_on(&self, item: &WorkItem, reason: &str) {
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let message =
            "The run could not be advanced: the service failed repeatedly while processing it.";
        let error = json!({"code": "server_error", "message": message});
        let ended = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.run.is_terminal() || r.run.status == "requires_action" {
                return Ok::<_, ApiError>(Update::Keep(false));
            }
            if r.run.status == "cancelling" {
                r.run.status = "cancelled".into();
                r.run.cancelled_at = Some(now());
            } else {
                r.run.status = "failed".into();
                r.run.failed_at = Some(now());
                r.run.last_error = Some(error.clone());
            }
            r.run.required_action = None;
            r.seq += 1;
            r.updated_ms = now_ms();
            Ok(Update::Write(r, true))
        })
        .await;
        match ended {
            Ok(Some(true)) => {
                log::warn!(
                    "run {} ended after repeated failures: {reason}",
                    item.run_id
                );
                let _ = threads::release_active_run(&ctx, &item.thread_id, &item.run_id).await;
            }
            Ok(_) => {}
            Err(e) => log::warn!(
                "cannot end run {} after repeated failures: {e}",
                item.run_id
            ),
        }
    }
}

fn add_usage(total: &mut Option<Usage>, turn: Usage) {
    total.get_or_insert_with(Usage::default).add(turn);
}

fn run_value(record: &RunRecord) -> Value {
    serde_json::to_value(&record.run).unwrap_or(Value::Null)
}

#[async_trait]
impl WorkHandler for Engine {
    async fn process(&self, item: &WorkItem, _attempt: u32) -> Outcome {
        self.run_turn(item, &mut Discard).await
    }

    async fn give_up(&self, item: &WorkItem, reason: &str) {
        self.give_up_on(item, reason).await
    }
}

/// Tracks what a turn has streamed so far, so events come in the order clients expect:
/// a message (and its step) is opened on the first text, a tool step on the first call.
struct LiveTurn<'a> {
    sink: &'a mut dyn EventSink,
    run_id: String,
    thread_id: String,
    assistant_id: String,
    message_id: String,
    message_step_id: String,
    tool_step_id: String,
    message_open: bool,
    tool_step_open: bool,
    /// A tool step that began while a message was open: it is announced after the
    /// message is closed (clients allow one open step at a time), with its deltas.
    pending_tool_step: Option<Value>,
    pending_deltas: Vec<Value>,
}

impl<'a> LiveTurn<'a> {
    fn new(record: &RunRecord, sink: &'a mut dyn EventSink) -> Self {
        LiveTurn {
            sink,
            run_id: record.run.id.clone(),
            thread_id: record.run.thread_id.clone(),
            assistant_id: record.run.assistant_id.clone(),
            message_id: answer_message_id(&record.run.id, record.seq),
            message_step_id: message_step_id(&record.run.id, record.seq),
            tool_step_id: tool_step_id(&record.run.id, record.seq),
            message_open: false,
            tool_step_open: false,
            pending_tool_step: None,
            pending_deltas: Vec::new(),
        }
    }

    fn step_shell(&self, id: &str, details: Value) -> Value {
        json!({
            "id": id, "object": "thread.run.step", "created_at": now(),
            "assistant_id": self.assistant_id, "thread_id": self.thread_id, "run_id": self.run_id,
            "type": details["type"], "status": "in_progress", "step_details": details,
            "last_error": null, "expired_at": null, "cancelled_at": null, "failed_at": null,
            "completed_at": null, "metadata": {}, "usage": null,
        })
    }

    fn delta(&mut self, delta: Delta) {
        match delta {
            Delta::Text(text) => {
                if !self.message_open && !self.tool_step_open {
                    let step = self.step_shell(
                        &self.message_step_id,
                        json!({"type": "message_creation", "message_creation": {"message_id": self.message_id}}),
                    );
                    self.sink.emit("thread.run.step.created", step.clone());
                    self.sink.emit("thread.run.step.in_progress", step);
                    let message = json!({
                        "id": self.message_id, "object": "thread.message", "created_at": now(),
                        "thread_id": self.thread_id, "status": "in_progress",
                        "incomplete_details": null, "completed_at": null, "incomplete_at": null,
                        "role": "assistant", "content": [], "assistant_id": self.assistant_id,
                        "run_id": self.run_id, "attachments": [], "metadata": {},
                    });
                    self.sink.emit("thread.message.created", message.clone());
                    self.sink.emit("thread.message.in_progress", message);
                    self.message_open = true;
                }
                if self.message_open {
                    self.sink.emit(
                        "thread.message.delta",
                        json!({"id": self.message_id, "object": "thread.message.delta", "delta": {
                            "content": [{"index": 0, "type": "text", "text": {"value": text, "annotations": []}}],
                        }}),
                    );
                }
            }
            Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                if !self.tool_step_open {
                    // Text came first: that message is complete once the calls begin; its
                    // final events go out when it is stored (`finish_message`).
                    let step = self.step_shell(
                        &self.tool_step_id,
                        json!({"type": "tool_calls", "tool_calls": []}),
                    );
                    if self.message_open {
                        self.message_open = false;
                        self.pending_tool_step = Some(step);
                    } else {
                        self.sink.emit("thread.run.step.created", step.clone());
                        self.sink.emit("thread.run.step.in_progress", step);
                    }
                    self.tool_step_open = true;
                }
                let mut call = json!({"index": index, "type": "function", "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                    call["function"]["output"] = Value::Null;
                }
                let delta = json!({"id": self.tool_step_id, "object": "thread.run.step.delta", "delta": {
                    "step_details": {"type": "tool_calls", "tool_calls": [call]},
                }});
                if self.pending_tool_step.is_some() {
                    self.pending_deltas.push(delta);
                } else {
                    self.sink.emit("thread.run.step.delta", delta);
                }
            }
        }
    }

    /// The stored message and its step are final: close them in the stream.
    fn finish_message(&mut self, message: &Message, step: &RunStep) {
        let event = if message.status == "incomplete" {
            "thread.message.incomplete"
        } else {
            "thread.message.completed"
        };
        self.sink
            .emit(event, serde_json::to_value(message).unwrap_or(Value::Null));
        self.sink.emit(
            "thread.run.step.completed",
            serde_json::to_value(step).unwrap_or(Value::Null),
        );
        self.message_open = false;
        if let Some(step) = self.pending_tool_step.take() {
            self.sink.emit("thread.run.step.created", step.clone());
            self.sink.emit("thread.run.step.in_progress", step);
            for delta in std::mem::take(&mut self.pending_deltas) {
                self.sink.emit("thread.run.step.delta", delta);
            }
        }
    }
}
