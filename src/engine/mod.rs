//! The engine: advances a run by one turn per work item.
//!
//! A turn reads the run, builds the prompt, calls the model (retrying transient failures),
//! and writes what came back: an assistant message and a `message_creation` step, or a
//! `tool_calls` step and `requires_action`. Every turn is idempotent: the work item names
//! the turn (`seq`) it expects, objects a turn writes have ids derived from the run and the
//! turn (a repeated turn overwrites them), and the run itself moves on only through a
//! conditional write that checks the turn and the status, so a cancel that lands while the
//! model is answering always wins.
//! A turn whose calls are all built-in tools the engine runs itself (`file_search`,
//! `code_interpreter`) stores them as a completed `tool_calls` step and goes on to the next
//! turn: through the queue, or in the same request when the run is streamed.
//! - `prompt`: the Chat Completions request of a turn;
//! - `file_search`, `citations`: the built-in search tool and its citation annotations;
//! - `code_interpreter`: the built-in Python tool (the thread's session, files in and out);
//! - `live`: what an attempt has streamed so far;
//! - `events`: stream events, discarded for queued runs, forwarded for streamed ones.

pub mod citations;
pub mod code_interpreter;
pub mod events;
pub mod file_search;
pub mod live;
pub mod partial_json;
pub mod prompt;

use crate::code_interpreter::SharedCodeInterpreter;
use crate::config::RunSettings;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{derived_id, Kind};
use crate::llm::{Completion, Delta, LlmClient, LlmError, Usage};
use crate::model::claim;
use crate::model::message::Message;
use crate::model::run::{
    self as run_ids, answer_message_id, RoundCall, RunRecord, RunStatus, ToolRound,
};
use crate::model::step::{self, RunStep, StepStatus};
use crate::model::thread::{self, ThreadRecord};
use crate::model::values::{text_part, ContentPart, ImageFile, Tool};
use crate::model::{now, now_ms};
use crate::queue::{DynQueue, FileIngest, Outcome, RunTurn, WorkHandler, WorkItem};
use crate::retrieval::Retrieval;
use crate::shutdown::Shutdown;
use crate::store::{self, keys, DynStore, ETag, PutMode, Update};
use crate::webhooks::Webhooks;
use async_trait::async_trait;
use code_interpreter::CodeTurn;
use events::{Discard, EventSink};
use live::{Close, LiveTurn};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Engine {
    store: DynStore,
    queue: DynQueue,
    llm: LlmClient,
    settings: Arc<RunSettings>,
    retrieval: Arc<Retrieval>,
    code_interpreter: Arc<SharedCodeInterpreter>,
    /// Where run events go.
    webhooks: Arc<Webhooks>,
    /// The process's shutdown: streamed turns stop at its grace, and background work
    /// (streamed turns, their watchdog items) is tracked by it.
    shutdown: Shutdown,
    /// Test hook: stop a turn right after it wrote its message, as a crash would.
    crash_after_message_write: std::sync::atomic::AtomicBool,
}

/// Why a model call did not give an answer.
enum Failure {
    /// The model failed for good: the run fails with this.
    Model(LlmError),
    /// Storage trouble while handling an attempt: retry the work item.
    Stop(Stop),
}

fn step_key(ctx: &Ctx, step: &RunStep) -> String {
    keys::step(&ctx.tenant, &step.thread_id, &step.run_id, &step.id)
}

/// Gives the thread's claim back if `run_id` still holds it (`known`: the thread as the run
/// claimed it, which saves a read).
async fn release_thread(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    known: Option<(ThreadRecord, ETag)>,
) -> Result<(), ApiError> {
    claim::release(ctx.store.as_ref(), &ctx.tenant, thread_id, run_id, known).await?;
    Ok(())
}

/// Reads the run's thread. A thread gone under its run stops the turn as it always has: its
/// `NotFound` becomes a retry, and the deletion that took the thread takes the run too.
pub(crate) async fn load_thread(ctx: &Ctx, thread_id: &str) -> Result<ThreadRecord, ApiError> {
    thread::load(ctx.store.as_ref(), &ctx.tenant, thread_id)
        .await?
        .map(|(t, _)| t)
        .ok_or_else(|| ApiError::not_found(Kind::Thread, thread_id))
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

/// A tool round with its built-in calls run.
struct RanRound {
    round: ToolRound,
    /// Store keys of the files its calls wrote (to take back if a cancel wins).
    written: Vec<String>,
    /// A built-in tool failed in a way the run cannot go on from.
    fatal: Option<String>,
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
        retrieval: Arc<Retrieval>,
        code_interpreter: Arc<SharedCodeInterpreter>,
        shutdown: Shutdown,
    ) -> Self {
        Engine {
            store,
            queue,
            llm,
            settings,
            retrieval,
            code_interpreter,
            webhooks: Arc::new(Webhooks::disabled()),
            shutdown,
            crash_after_message_write: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The `code_interpreter` tool's executor, shared with the API.
    pub fn code_interpreter(&self) -> &Arc<SharedCodeInterpreter> {
        &self.code_interpreter
    }

    /// Sends run and vector-store events through `webhooks` (none without).
    pub fn with_webhooks(mut self, webhooks: Arc<Webhooks>) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// Where run and vector-store events go, shared with the API.
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// The process's shutdown, which owns the tasks that run streamed turns.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
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
            retrieval: self.retrieval.clone(),
            code_interpreter: self.code_interpreter.clone(),
            webhooks: self.webhooks.clone(),
            tenant: tenant.to_string(),
        }
    }

    /// Takes the turn `item` names, reporting to `sink`. A turn that ran built-in tools
    /// queues the next one.
    pub async fn run_turn(&self, item: &WorkItem, sink: &mut dyn EventSink) -> Outcome {
        let result = match item {
            WorkItem::Step(turn) => match self.step(turn, sink).await {
                Ok(Some(next)) => {
                    let next = WorkItem::Step(next);
                    if let Err(e) = self.queue.enqueue(&next, Duration::ZERO).await {
                        // The run looks stalled until a read of it queues the turn again.
                        log::warn!("cannot queue the next turn: {}: {e}", next.describe());
                    }
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            WorkItem::Expire(turn) => self.expire(turn).await,
            WorkItem::Ingest(file) => {
                let ctx = self.ctx(&file.tenant);
                crate::retrieval::ingest::ingest(&ctx, file).await.map_err(
                    |crate::retrieval::ingest::IngestStop::Retry(reason)| Stop::Retry(reason),
                )
            }
            WorkItem::Webhook(post) => {
                return self.webhooks.deliver(self.store.as_ref(), post).await;
            }
        };
        match result {
            Ok(()) | Err(Stop::Nothing) => Outcome::Done,
            Err(Stop::Retry(reason)) => Outcome::Retry(reason),
        }
    }

    /// Takes the turns of a streamed run from `item` on, inside the request, until the run
    /// stops or waits. Returns the outcome and the turn it ended at (to queue on a retry).
    /// A turn still running when the shutdown's grace is over stops there, to be queued.
    pub async fn run_streamed(
        &self,
        mut item: RunTurn,
        sink: &mut dyn EventSink,
    ) -> (Outcome, RunTurn) {
        loop {
            self.queue_watchdog(&item);
            let step = tokio::select! {
                step = self.step(&item, sink) => step,
                () = self.shutdown.grace_over() => {
                    let reason = "the server stopped before the turn finished";
                    return (Outcome::Retry(reason.into()), item);
                }
            };
            match step {
                Ok(Some(next)) => item = next,
                Ok(None) | Err(Stop::Nothing) => return (Outcome::Done, item),
                Err(Stop::Retry(reason)) => return (Outcome::Retry(reason), item),
            }
        }
    }

    /// Queues a copy of a streamed turn's work item, due after `stall_after`: if this process
    /// dies during the turn, nothing else would take it up; the copy does (and finds nothing
    /// to do if the turn finished). One per turn, as the loop of `run_streamed` goes on.
    fn queue_watchdog(&self, item: &RunTurn) {
        let queue = self.queue.clone();
        let item = WorkItem::Step(item.clone());
        let delay = self.settings.stall_after;
        self.shutdown.spawn(async move {
            if let Err(e) = queue.enqueue(&item, delay).await {
                log::warn!("cannot queue the watchdog of {}: {e}", item.describe());
            }
        });
    }

    /// Applies `change` to the run if it is still at turn `seq` and in one of `from`.
    async fn move_run(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        from: &[RunStatus],
        change: impl Fn(&mut RunRecord),
    ) -> Result<Moved, Stop> {
        Ok(self.move_run_from(ctx, item, from, None, change).await?.0)
    }

    /// `move_run` from the run as the caller last read or wrote it (`known`, with its ETag:
    /// no read when nobody wrote since). Also returns the run's ETag after the move.
    async fn move_run_from(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        from: &[RunStatus],
        known: Option<(RunRecord, ETag)>,
        change: impl Fn(&mut RunRecord),
    ) -> Result<(Moved, Option<ETag>), Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let moved = store::update_json_from(ctx.store.as_ref(), &key, known, |mut r: RunRecord| {
            if r.seq != item.seq {
                return Ok::<_, ApiError>(Update::Keep(Moved::Stale));
            }
            if r.run.status == RunStatus::Cancelling {
                return Ok(Update::Keep(Moved::Cancelling));
            }
            if !from.contains(&r.run.status) {
                return Ok(Update::Keep(Moved::Stale));
            }
            change(&mut r);
            r.updated_ms = now_ms();
            Ok(Update::Write(r.clone(), Moved::Applied(Box::new(r))))
        })
        .await?;
        Ok(match moved {
            Some((m @ Moved::Applied(_), etag)) => (m, Some(etag)),
            Some((m, _)) => (m, None),
            None => (Moved::Stale, None),
        })
    }

    /// One turn; `Some(next)` when the run goes on at once with another turn.
    async fn step(
        &self,
        item: &RunTurn,
        sink: &mut dyn EventSink,
    ) -> Result<Option<RunTurn>, Stop> {
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let Some((record, etag)) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await?
        else {
            return Err(Stop::Nothing);
        };
        if record.seq != item.seq {
            return notify_found(&ctx, item, &record).await;
        }
        let redelivered = record.run.status == RunStatus::InProgress;
        if record.run.status == RunStatus::Queued && record.seq == 0 {
            file_search::wait_until_ready(&ctx, &record).await?;
        }
        let (record, etag) = match record.run.status {
            RunStatus::Cancelling => {
                return self.finish_cancel(&ctx, item, sink).await.map(|_| None)
            }
            RunStatus::Queued => {
                let started = self
                    .move_run_from(
                        &ctx,
                        item,
                        &[RunStatus::Queued],
                        Some((record, etag)),
                        |r| {
                            r.run.status = RunStatus::InProgress;
                            r.run.started_at.get_or_insert_with(now);
                        },
                    )
                    .await?;
                match started {
                    (Moved::Applied(r), etag) => {
                        sink.emit("thread.run.in_progress", run_value(&r));
                        (*r, etag)
                    }
                    (Moved::Cancelling, _) => {
                        return self.finish_cancel(&ctx, item, sink).await.map(|_| None)
                    }
                    (Moved::Stale, _) => return Err(Stop::Nothing),
                }
            }
            // Another delivery began this turn (it crashed, or timed out, or runs still):
            // take it over; what that delivery stored of it is settled when we commit.
            RunStatus::InProgress => (record, Some(etag)),
            _ => return notify_found(&ctx, item, &record).await,
        };

        // The thread's messages, oldest first.
        let message_prefix = keys::messages(&ctx.tenant, &item.thread_id);
        let mut ids: Vec<String> = store::list_all(ctx.store.as_ref(), &message_prefix)
            .await?
            .iter()
            .map(|k| keys::last_segment(k).to_string())
            .collect();
        ids.sort_unstable();
        let thread_messages: Vec<Message> =
            store::read_all(ctx.store.as_ref(), &message_prefix, &ids).await?;

        // The code interpreter, when the run has it: a run that needs it on a server that
        // cannot run code fails at once, saying why.
        let code_turn = match code_interpreter::function_name(&record) {
            None => None,
            Some(name) => {
                let ci = self.code_interpreter.get().await;
                let Some(executor) = ci.executor() else {
                    let message = format!(
                        "The code_interpreter tool is not available on this server: {}.",
                        ci.unavailable_reason().unwrap_or("it is not configured")
                    );
                    return self
                        .fail(&ctx, item, "server_error", &message, sink)
                        .await
                        .map(|()| None);
                };
                let files = code_interpreter::input_files(&ctx, &record).await?;
                Some(CodeTurn {
                    ci,
                    executor: executor.as_ref(),
                    name,
                    files,
                })
            }
        };
        let code_tool = code_turn.as_ref().map(|t| prompt::CodeTool {
            name: t.name,
            definition: crate::code_interpreter::prompt::tool_definition(
                t.name,
                t.ci.cell_timeout(),
                t.executor.kind(),
            ),
            instructions: code_interpreter::instructions(&t.files),
        });

        let prompt = match prompt::build(&record, &thread_messages, code_tool.as_ref()) {
            Ok(p) => p,
            Err(prompt::PromptError::UnsupportedTool(tool)) => {
                let message = format!(
                    "The {tool} tool is not supported by this server yet; remove it from the \
                     assistant's or the run's tools."
                );
                return self
                    .fail(&ctx, item, "server_error", &message, sink)
                    .await
                    .map(|()| None);
            }
            Err(prompt::PromptError::TooLong) => {
                return self
                    .end_incomplete(&ctx, item, "max_prompt_tokens", sink)
                    .await
                    .map(|()| None);
            }
            Err(prompt::PromptError::NoCompletionBudget) => {
                return self
                    .end_incomplete(&ctx, item, "max_completion_tokens", sink)
                    .await
                    .map(|()| None);
            }
        };

        let mut live = LiveTurn::new(&record, sink);
        let completion = match self.call_model(&ctx, &prompt.body, &mut live).await {
            Ok(c) => c,
            Err(Failure::Model(e)) => {
                self.close_unfinished(&ctx, &mut live, Close::Failed, &e.to_string())
                    .await?;
                return self
                    .fail(&ctx, item, e.run_error_code(), &e.to_string(), live.sink)
                    .await
                    .map(|()| None);
            }
            Err(Failure::Stop(stop)) => return Err(stop),
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
        let attempt = live.attempt;
        let known = etag.map(|etag| (record.clone(), etag));
        let next = self
            .commit(
                &ctx,
                item,
                &record,
                known,
                (completion, usage),
                live,
                code_turn.as_ref(),
            )
            .await?;
        if redelivered {
            self.purge_other_attempts(&ctx, &record, attempt).await?;
        }
        Ok(next)
    }

    /// After this delivery committed a turn that another delivery had begun: deletes what
    /// that delivery stored under attempts this one did not reach (`after` and later).
    /// Attempts up to `after` have the same names as ours and were overwritten. One listing;
    /// deletes only of what exists. Done after the commit, never before, so a turn another
    /// delivery already committed is never left without its answer.
    async fn purge_other_attempts(
        &self,
        ctx: &Ctx,
        record: &RunRecord,
        after: u32,
    ) -> Result<(), Stop> {
        let run = &record.run;
        let prefix = keys::steps(&ctx.tenant, &run.thread_id, &run.id);
        let stored: Vec<String> = store::list_all(ctx.store.as_ref(), &prefix)
            .await?
            .iter()
            .map(|k| keys::last_segment(k).to_string())
            .collect();
        for attempt in after + 1..run_ids::MAX_ATTEMPTS {
            for (step_id, message_id) in [
                (
                    run_ids::message_step_id(&run.id, record.seq, attempt),
                    Some(answer_message_id(&run.id, record.seq, attempt)),
                ),
                (run_ids::tool_step_id(&run.id, record.seq, attempt), None),
            ] {
                if !stored.contains(&step_id) {
                    continue;
                }
                if let Some(message_id) = message_id {
                    ctx.store
                        .delete(&keys::message(&ctx.tenant, &run.thread_id, &message_id))
                        .await?;
                }
                ctx.store
                    .delete(&keys::step(&ctx.tenant, &run.thread_id, &run.id, &step_id))
                    .await?;
            }
        }
        Ok(())
    }

    /// Calls the model, retrying transient failures with back-off (honouring Retry-After).
    /// An attempt that broke off after showing something ends it as failed (stored and
    /// announced), and the next attempt starts with fresh ids.
    async fn call_model(
        &self,
        ctx: &Ctx,
        body: &Value,
        live: &mut LiveTurn<'_>,
    ) -> Result<Completion, Failure> {
        loop {
            let mut on_delta = |d: Delta| live.delta(d);
            let error = match self.llm.complete(body.clone(), &mut on_delta).await {
                Ok(c) => return Ok(c),
                Err(e @ LlmError::Rejected { .. }) => return Err(Failure::Model(e)),
                Err(e) if live.attempt + 1 >= self.settings.llm_max_attempts => {
                    return Err(Failure::Model(e))
                }
                Err(e) => e,
            };
            let LlmError::Retryable {
                message,
                retry_after,
                ..
            } = &error
            else {
                return Err(Failure::Model(error));
            };
            let wait = retry_after
                .unwrap_or_else(|| Duration::from_millis(500 << (live.attempt + 1).min(5)));
            if wait > self.settings.llm_max_retry_wait {
                return Err(Failure::Model(error));
            }
            log::info!("model call failed ({message}); retrying in {wait:?}");
            self.close_unfinished(ctx, live, Close::Failed, message)
                .await
                .map_err(Failure::Stop)?;
            live.next_attempt();
            tokio::time::sleep(wait).await;
        }
    }

    /// Stores and closes what an attempt opened but did not finish.
    async fn close_unfinished(
        &self,
        ctx: &Ctx,
        live: &mut LiveTurn<'_>,
        how: Close,
        error: &str,
    ) -> Result<(), Stop> {
        let (message, tool_step) = live.unfinished(how, error);
        if let Some((message, step)) = &message {
            if how == Close::Failed {
                self.put(
                    ctx,
                    &keys::message(&ctx.tenant, &message.thread_id, &message.id),
                    message,
                )
                .await?;
                self.put(ctx, &step_key(ctx, step), step).await?;
            }
            live.close_message(message, step);
        }
        if let Some(step) = &tool_step {
            if how == Close::Failed {
                self.put(ctx, &step_key(ctx, step), step).await?;
            }
            live.close_tool_step(step);
        }
        Ok(())
    }

    async fn put<T: serde::Serialize>(&self, ctx: &Ctx, key: &str, value: &T) -> Result<(), Stop> {
        store::put_json(ctx.store.as_ref(), key, value, PutMode::Overwrite).await?;
        Ok(())
    }

    /// Writes what the model answered and moves the run on; the stream hears of it after
    /// the run has moved, so it never announces what a cancel then takes back. Built-in
    /// tool calls are run here; `Some(next)` when the run goes on with another turn.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        record: &RunRecord,
        known: Option<(RunRecord, ETag)>,
        (completion, usage): (Completion, Usage),
        mut live: LiveTurn<'_>,
        code: Option<&CodeTurn<'_>>,
    ) -> Result<Option<RunTurn>, Stop> {
        let run = &record.run;
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
                .chain(file_search::function_name(record))
                .chain(code.map(|c| c.name))
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
                self.close_unfinished(ctx, &mut live, Close::Failed, &message)
                    .await?;
                return self
                    .fail(ctx, item, "server_error", &message, live.sink)
                    .await
                    .map(|()| None);
            }
        }

        // Another delivery of this turn (a watchdog copy, a lease that ran out) may have
        // finished it while this one waited for the model. Its answer stands: this one's,
        // other words with other usage, must not overwrite it under the same ids.
        if self.answered_elsewhere(ctx, item).await? {
            return Err(Stop::Nothing);
        }
        // What this turn wrote, to take back if a cancel wins the race for the run.
        let mut written: Vec<String> = Vec::new();
        // A message: the whole answer, or the text that came with tool calls.
        let mut stored_message: Option<(Message, RunStep)> = None;
        if !has_calls || !text.is_empty() {
            let status = if !has_calls && truncated {
                "incomplete"
            } else {
                "completed"
            };
            let content = match completion.refusal.as_deref() {
                Some(r) if text.is_empty() => vec![ContentPart::Refusal {
                    refusal: r.to_string(),
                }],
                _ => {
                    // Figures the run's code drew since its last message come first, as
                    // OpenAI's answers had them; links to files its code wrote are
                    // annotated like citations.
                    let (written_files, images) = code_interpreter::outputs_so_far(record);
                    let mut parts: Vec<ContentPart> = images
                        .into_iter()
                        .map(|file_id| ContentPart::ImageFile {
                            image_file: ImageFile {
                                file_id,
                                detail: None,
                            },
                        })
                        .collect();
                    let mut part = text_part(text.clone());
                    if let ContentPart::Text { text: t } = &mut part {
                        let mut annotations = citations::annotate(&text, live.sources());
                        annotations.extend(code_interpreter::file_path_annotations(
                            &text,
                            &written_files,
                        ));
                        annotations.sort_by_key(|a| a["start_index"].as_u64().unwrap_or(0));
                        t.annotations = annotations;
                    }
                    parts.push(part);
                    parts
                }
            };
            let message = live.message(
                content,
                status,
                (status == "incomplete").then_some("max_tokens"),
            );
            let key = keys::message(&ctx.tenant, &item.thread_id, &message.id);
            self.put(ctx, &key, &message).await?;
            written.push(key);
            if self
                .crash_after_message_write
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(Stop::Retry(
                    "simulated crash after the message write".into(),
                ));
            }
            let step = live.message_step(StepStatus::Completed, (!has_calls).then_some(usage));
            let key = step_key(ctx, &step);
            self.put(ctx, &key, &step).await?;
            written.push(key);
            stored_message = Some((message, step));
        }

        let round = if has_calls {
            let (step_id, attempt) = (live.tool_step_id(), live.attempt);
            let ran = self
                .round(ctx, record, &completion, step_id, attempt, code)
                .await?;
            written.extend(ran.written);
            if let Some(message) = ran.fatal {
                self.take_back(ctx, &written).await;
                self.close_unfinished(ctx, &mut live, Close::Failed, &message)
                    .await?;
                return self
                    .fail(ctx, item, "server_error", &message, live.sink)
                    .await
                    .map(|()| None);
            }
            Some(ran.round)
        } else {
            None
        };
        // The client answers its function calls; built-in calls are answered already.
        let waits = round
            .as_ref()
            .is_some_and(|r| r.calls.iter().any(RoundCall::is_client_call));
        let mut tool_step = None;
        if let Some(round) = &round {
            let status = if waits {
                StepStatus::InProgress
            } else {
                StepStatus::Completed
            };
            let step = live.tool_step(run_ids::tool_step_details(round), status, Some(usage));
            let key = step_key(ctx, &step);
            self.put(ctx, &key, &step).await?;
            written.push(key);
            tool_step = Some(step);
        }

        let expiry = self.settings.expiry;
        let moved = match &round {
            Some(round) if !waits => {
                self.move_run_from(ctx, item, &[RunStatus::InProgress], known, |r| {
                    add_usage(&mut r.run.usage, usage);
                    r.rounds.push(round.clone());
                    r.seq += 1;
                })
                .await?
                .0
            }
            Some(round) => {
                let required = json!({
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {"tool_calls": round.calls.iter().filter(|c| c.is_client_call()).map(|c| json!({
                        "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })).collect::<Vec<_>>()},
                });
                self.move_run_from(ctx, item, &[RunStatus::InProgress], known, |r| {
                    r.run.status = RunStatus::RequiresAction;
                    r.run.required_action = Some(required.clone());
                    r.run.expires_at = Some(now() + expiry.as_secs().max(1) as i64);
                    add_usage(&mut r.run.usage, usage);
                    r.rounds.push(round.clone());
                    r.seq += 1;
                })
                .await?
                .0
            }
            None => {
                let status = if truncated {
                    RunStatus::Incomplete
                } else {
                    RunStatus::Completed
                };
                self.move_run_from(ctx, item, &[RunStatus::InProgress], known, |r| {
                    r.run.status = status;
                    r.run.incomplete_details =
                        truncated.then(|| json!({"reason": "max_completion_tokens"}));
                    if !truncated {
                        r.run.completed_at = Some(now());
                    }
                    r.run.required_action = None;
                    add_usage(&mut r.run.usage, usage);
                    r.seq += 1;
                })
                .await?
                .0
            }
        };
        let record = match moved {
            Moved::Applied(r) => r,
            Moved::Cancelling => {
                self.take_back(ctx, &written).await;
                self.close_unfinished(ctx, &mut live, Close::Cancelled, "")
                    .await?;
                return self
                    .finish_cancel(ctx, item, live.sink)
                    .await
                    .map(|()| None);
            }
            Moved::Stale => {
                if let Some(ended) = self.take_back_if_ended(ctx, item, &written).await {
                    // Cancelled (or failed) meanwhile: close the stream as the run ended.
                    let how = if ended.run.status == RunStatus::Cancelled {
                        Close::Cancelled
                    } else {
                        Close::Failed
                    };
                    self.close_unfinished(ctx, &mut live, how, "").await?;
                    let event = match ended.run.status.as_str() {
                        "cancelled" => "thread.run.cancelled",
                        "expired" => "thread.run.expired",
                        _ => "thread.run.failed",
                    };
                    live.sink.emit(event, run_value(&ended));
                    notify_run(ctx, &ended).await?;
                }
                return Err(Stop::Nothing);
            }
        };

        // The run moved on: its webhook event is queued (a failure retries the item once
        // the stream has heard the run; the redelivery finds it moved and queues the event).
        let notified = notify_run(ctx, &record).await;
        // Now the stream may hear it.
        if let Some((message, step)) = &stored_message {
            live.open_message();
            live.close_message(message, step);
        }
        if let Some(round) = &round {
            // What the code the engine ran printed and drew, before the step completes.
            live.open_tool_step();
            live.code_outputs(round);
        }
        if let (Some(step), false) = (&tool_step, waits) {
            // Built-in calls done: the step is complete and the run goes on.
            live.close_tool_step(step);
            return Ok(Some(record.next_turn(&ctx.tenant)));
        }
        if round.is_some() {
            live.open_tool_step();
            if let Some(e) = self
                .queue
                .enqueue(
                    &WorkItem::Expire(RunTurn {
                        seq: record.seq,
                        ..item.clone()
                    }),
                    expiry,
                )
                .await
                .err()
            {
                log::warn!("cannot schedule the expiry of {}: {e}", record.run.id);
            }
            live.sink
                .emit("thread.run.requires_action", run_value(&record));
        } else {
            release_thread(ctx, &item.thread_id, &item.run_id, record.claimed_thread()).await?;
            let event = if truncated {
                "thread.run.incomplete"
            } else {
                "thread.run.completed"
            };
            live.sink.emit(event, run_value(&record));
        }
        notified.map(|()| None)
    }

    /// The tool round of a completion: client calls as they came, built-in calls run.
    async fn round(
        &self,
        ctx: &Ctx,
        record: &RunRecord,
        completion: &Completion,
        step_id: String,
        attempt: u32,
        code: Option<&CodeTurn<'_>>,
    ) -> Result<RanRound, Stop> {
        let run = &record.run;
        let search_fn = file_search::function_name(record);
        let mut searches = file_search::searches_so_far(record);
        let mut calls = Vec::with_capacity(completion.tool_calls.len());
        let mut written = Vec::new();
        let mut code_calls = 0;
        for (i, c) in completion.tool_calls.iter().enumerate() {
            let id = if c.id.is_empty() {
                derived_id(
                    Kind::ToolCall,
                    &run.id,
                    (record.seq * run_ids::MAX_ATTEMPTS + attempt) * 64 + i as u32,
                )
            } else {
                c.id.clone()
            };
            if search_fn == Some(c.name.as_str()) {
                calls.push(
                    file_search::run_call(ctx, record, id, &c.name, &c.arguments, searches).await?,
                );
                searches += 1;
            } else if let Some(code) = code.filter(|t| t.name == c.name) {
                let number = code_interpreter::call_number(record, attempt, i);
                let ran = code_interpreter::run_call(
                    ctx,
                    code,
                    record,
                    id,
                    &c.arguments,
                    code_calls == 0,
                    number,
                )
                .await?;
                code_calls += 1;
                match ran {
                    Ok(ran) => {
                        calls.push(ran.call);
                        written.extend(ran.written);
                    }
                    Err(code_interpreter::Fatal(message)) => {
                        return Ok(RanRound {
                            round: ToolRound {
                                step_id,
                                text: None,
                                calls,
                            },
                            written,
                            fatal: Some(message),
                        })
                    }
                }
            } else {
                calls.push(RoundCall {
                    id,
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                    output: None,
                    server: None,
                });
            }
        }
        Ok(RanRound {
            round: ToolRound {
                step_id,
                text: (!completion.text.is_empty()).then(|| completion.text.clone()),
                calls,
            },
            written,
            fatal: None,
        })
    }

    /// Whether another delivery of this turn already took it: the run went on past it
    /// (ended, waits for tool outputs, or takes its next turn). A run cancelled, failed or
    /// expired meanwhile is left to the move that follows, which closes the stream as the
    /// run ended. Only the few milliseconds between this read and the writes after it
    /// remain for two deliveries to overlap.
    async fn answered_elsewhere(&self, ctx: &Ctx, item: &RunTurn) -> Result<bool, Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        Ok(
            match store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await? {
                Some((r, _)) => {
                    r.seq != item.seq
                        && !matches!(
                            r.run.status,
                            RunStatus::Cancelling
                                | RunStatus::Cancelled
                                | RunStatus::Failed
                                | RunStatus::Expired
                        )
                }
                None => false,
            },
        )
    }

    /// The run moved on while this turn wrote. If another delivery of the same turn
    /// finished it, what we wrote has the same names as what it wrote and stays; if the run
    /// ended otherwise (cancelled, failed, expired), nothing of this turn may remain. Returns
    /// the run in that case.
    async fn take_back_if_ended(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        written: &[String],
    ) -> Option<RunRecord> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        match store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await {
            Ok(Some((r, _)))
                if matches!(
                    r.run.status,
                    RunStatus::Cancelled | RunStatus::Failed | RunStatus::Expired
                ) =>
            {
                self.take_back(ctx, written).await;
                Some(r)
            }
            _ => None,
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

    /// Ends the run as `failed` with `last_error` (unless it already ended).
    async fn fail(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        code: &str,
        message: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let error = json!({"code": code, "message": message});
        let moved = self
            .move_run(
                ctx,
                item,
                &[RunStatus::Queued, RunStatus::InProgress],
                |r| {
                    r.run.status = RunStatus::Failed;
                    r.run.failed_at = Some(now());
                    r.run.required_action = None;
                    r.run.last_error = Some(error.clone());
                    r.seq += 1;
                },
            )
            .await?;
        match moved {
            Moved::Applied(r) => {
                log::info!("run {} failed: {message}", r.run.id);
                release_thread(ctx, &item.thread_id, &item.run_id, None).await?;
                sink.emit("thread.run.failed", run_value(&r));
                notify_run(ctx, &r).await
            }
            Moved::Cancelling => self.finish_cancel(ctx, item, sink).await,
            Moved::Stale => Err(Stop::Nothing),
        }
    }

    async fn end_incomplete(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        reason: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let moved = self
            .move_run(
                ctx,
                item,
                &[RunStatus::Queued, RunStatus::InProgress],
                |r| {
                    r.run.status = RunStatus::Incomplete;
                    r.run.incomplete_details = Some(json!({"reason": reason}));
                    r.run.usage.get_or_insert_with(Usage::default);
                    r.seq += 1;
                },
            )
            .await?;
        match moved {
            Moved::Applied(r) => {
                release_thread(ctx, &item.thread_id, &item.run_id, None).await?;
                sink.emit("thread.run.incomplete", run_value(&r));
                notify_run(ctx, &r).await
            }
            Moved::Cancelling => self.finish_cancel(ctx, item, sink).await,
            Moved::Stale => Err(Stop::Nothing),
        }
    }

    /// `cancelling` → `cancelled`, and the thread is free again.
    async fn finish_cancel(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let done = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.run.status != RunStatus::Cancelling {
                return Ok::<_, ApiError>(Update::Keep(None));
            }
            r.run.status = RunStatus::Cancelled;
            r.run.cancelled_at = Some(now());
            r.run.required_action = None;
            r.seq += 1;
            r.updated_ms = now_ms();
            Ok(Update::Write(r.clone(), Some(r)))
        })
        .await?;
        if let Some(Some(r)) = done {
            release_thread(ctx, &item.thread_id, &item.run_id, None).await?;
            sink.emit("thread.run.cancelled", run_value(&r));
            notify_run(ctx, &r).await?;
        }
        Ok(())
    }

    /// A `requires_action` run whose outputs never came: `expired`.
    async fn expire(&self, item: &RunTurn) -> Result<(), Stop> {
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let Some((record, _)) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await?
        else {
            return Err(Stop::Nothing);
        };
        if record.seq != item.seq || record.run.status != RunStatus::RequiresAction {
            // Cancelled by the API meanwhile (the same turn), or expired by an earlier
            // delivery of this item: its event may not have been queued.
            return notify_found(&ctx, item, &record).await.map(|_| ());
        }
        let due = record.run.expires_at.unwrap_or(0);
        if now() < due {
            // Delivered early (queues cap delays): come back when it is due.
            let wait = Duration::from_secs((due - now()).max(1) as u64);
            self.queue
                .enqueue(&WorkItem::Expire(item.clone()), wait)
                .await
                .map_err(|e| Stop::Retry(e.to_string()))?;
            return Err(Stop::Nothing);
        }
        let moved = self
            .move_run(&ctx, item, &[RunStatus::RequiresAction], |r| {
                r.run.status = RunStatus::Expired;
                r.run.required_action = None;
                r.seq += 1;
            })
            .await?;
        if let Moved::Applied(r) = moved {
            if let Some(round) = r.rounds.last() {
                let key = keys::step(&ctx.tenant, &r.run.thread_id, &r.run.id, &round.step_id);
                step::finish(ctx.store.as_ref(), &key, StepStatus::Expired).await?;
            }
            release_thread(&ctx, &item.thread_id, &item.run_id, None).await?;
            log::info!("run {} expired waiting for tool outputs", r.run.id);
            notify_run(&ctx, &r).await?;
        }
        Ok(())
    }

    /// The last delivery of an item failed: the run must not stay active.
    async fn give_up_on(&self, item: &WorkItem, reason: &str) {
        let item = match item {
            WorkItem::Step(turn) | WorkItem::Expire(turn) => turn,
            WorkItem::Ingest(file) => return self.give_up_on_file(file, reason).await,
            WorkItem::Webhook(post) => {
                if let Err(e) = self
                    .webhooks
                    .dead_letter(self.store.as_ref(), post, reason)
                    .await
                {
                    log::warn!("{e}");
                }
                return;
            }
        };
        let ctx = self.ctx(&item.tenant);
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let message =
            "The run could not be advanced: the service failed repeatedly while processing it.";
        let error = json!({"code": "server_error", "message": message});
        let ended = store::update_json(ctx.store.as_ref(), &key, |mut r: RunRecord| {
            if r.run.is_terminal() || r.run.status == RunStatus::RequiresAction {
                // Ended by an earlier delivery, perhaps without its event.
                let found = (r.seq == item.seq || r.seq == item.seq.wrapping_add(1)).then_some(r);
                return Ok::<_, ApiError>(Update::Keep((false, found)));
            }
            if r.run.status == RunStatus::Cancelling {
                r.run.status = RunStatus::Cancelled;
                r.run.cancelled_at = Some(now());
            } else {
                r.run.status = RunStatus::Failed;
                r.run.failed_at = Some(now());
                r.run.last_error = Some(error.clone());
            }
            r.run.required_action = None;
            r.seq += 1;
            r.updated_ms = now_ms();
            Ok(Update::Write(r.clone(), (true, Some(r))))
        })
        .await;
        match ended {
            Ok(Some((ended, found))) => {
                if let Some(r) = &found {
                    if let Err(Stop::Retry(e)) = notify_run(&ctx, r).await {
                        log::warn!("{e}");
                    }
                }
                if ended {
                    log::warn!(
                        "run {} ended after repeated failures: {reason}",
                        item.run_id
                    );
                    let _ = release_thread(&ctx, &item.thread_id, &item.run_id, None).await;
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!(
                "cannot end run {} after repeated failures: {e}",
                item.run_id
            ),
        }
    }

    /// The last delivery of an ingestion failed: the file must not stay in progress.
    async fn give_up_on_file(&self, item: &FileIngest, reason: &str) {
        let ctx = self.ctx(&item.tenant);
        let message = "The file could not be processed: the service failed repeatedly.";
        if let Err(e) = crate::retrieval::ingest::finish(
            &ctx,
            item,
            crate::model::vector_store::VectorStoreFileStatus::Failed,
            Some(("server_error", message)),
            0,
        )
        .await
        {
            log::warn!(
                "cannot fail file {} after repeated failures: {e}",
                item.file_id
            );
        }
        log::warn!(
            "ingestion of {} ended after repeated failures: {reason}",
            item.file_id
        );
    }
}

fn add_usage(total: &mut Option<Usage>, turn: Usage) {
    total.get_or_insert_with(Usage::default).add(turn);
}

/// Queues the webhook event of the run's stored status, if it has one (see
/// `crate::webhooks`): called after each write that stores a status with an event, and by
/// `notify_found`. An event that cannot be queued retries the work item, whose next
/// delivery finds the status stored and queues it then.
async fn notify_run(ctx: &Ctx, record: &RunRecord) -> Result<(), Stop> {
    crate::webhooks::run_changed(ctx, record)
        .await
        .map_err(Stop::Retry)
}

/// A work item found its run past its turn: if its own turn stored the run's status (the
/// same turn, or the one after), the process may have died before that status's event was
/// queued; queue it (at most once more: see `crate::webhooks`). Then nothing to do.
async fn notify_found(
    ctx: &Ctx,
    item: &RunTurn,
    record: &RunRecord,
) -> Result<Option<RunTurn>, Stop> {
    if record.seq == item.seq || record.seq == item.seq.wrapping_add(1) {
        notify_run(ctx, record).await?;
    }
    Err(Stop::Nothing)
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
