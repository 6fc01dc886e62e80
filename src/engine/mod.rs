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
//! - `turn`: what the model's answer comes to (what to write, how the run moves), decided
//!   as plain data, without I/O;
//! - `commit`: performs it (built-in calls run, writes, the run's move, stream events);
//! - `prompt`: the Chat Completions request of a turn;
//! - `file_search`, `citations`: the built-in search tool and its citation annotations;
//! - `code_interpreter`: the built-in Python tool (the thread's session, files in and out);
//!   `partial_json`: the code it is given, read out of arguments still streaming;
//! - `live`: what an attempt has streamed so far;
//! - `events`: stream events, discarded for queued runs, forwarded for streamed ones;
//! - `response`: what a run that is a response does differently (history from items,
//!   output items, its conversation).

pub mod citations;
pub mod code_interpreter;
mod commit;
pub mod events;
pub mod file_search;
pub mod live;
pub mod partial_json;
pub mod prompt;
pub mod response;
pub mod turn;

use crate::code_interpreter::SharedCodeInterpreter;
use crate::config::RunSettings;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::Kind;
use crate::llm::{Completion, Delta, LlmClient, LlmError, Usage};
use crate::model::claim;
use crate::model::message::Message;
use crate::model::run::{RunRecord, RunStatus};
use crate::model::step::{self, StepStatus};
use crate::model::thread::{self, ThreadRecord};
use crate::model::{now, now_ms};
use crate::queue::{DynQueue, FileIngest, Outcome, RunTurn, WorkHandler, WorkItem};
use crate::retrieval::Retrieval;
use crate::shutdown::Shutdown;
use crate::store::{self, keys, DynStore, ETag, Update};
use crate::webhooks::Webhooks;
use async_trait::async_trait;
use code_interpreter::CodeTurn;
use events::{Discard, EventSink};
use live::{Close, LiveTurn};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
}

/// Why a model call did not give an answer.
enum Failure {
    /// The model failed for good: the run fails with this.
    Model(LlmError),
    /// Storage trouble while handling an attempt: retry the work item.
    Stop(Stop),
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

/// A turn taken up: the run in progress, its ETag when known, and whether another delivery
/// had begun the turn.
struct Begun {
    record: RunRecord,
    etag: Option<ETag>,
    redelivered: bool,
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
        }
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

    /// The `code_interpreter` tool's executor, shared with the API.
    pub fn code_interpreter(&self) -> &Arc<SharedCodeInterpreter> {
        &self.code_interpreter
    }

    /// The process's shutdown, which owns the tasks that run streamed turns.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
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

    /// For a turn this delivery began itself (the run was `queued`, or at its turn's start,
    /// when read): the instant before which no other delivery can have begun it. Another
    /// one comes only once this one's lease runs out without renewal (`work_lease`, from a
    /// receipt just before), or after `stall_after` with no change to the run (a stalled
    /// run's read, a streamed turn's watchdog copy); a quarter of the shorter leaves room.
    fn alone_until(&self) -> Instant {
        let shortest = self.settings.work_lease.min(self.settings.stall_after);
        Instant::now() + shortest / 4
    }

    /// One turn; `Some(next)` when the run goes on at once with another turn.
    async fn step(
        &self,
        item: &RunTurn,
        sink: &mut dyn EventSink,
    ) -> Result<Option<RunTurn>, Stop> {
        let ctx = self.ctx(&item.tenant);
        let Some(Begun {
            record,
            etag,
            redelivered,
        }) = self.begin(&ctx, item, sink).await?
        else {
            return Ok(None);
        };
        let alone_until = (!redelivered).then(|| self.alone_until());
        let history = match &record.response {
            Some(_) => response::history(&ctx, &record).await?,
            None => prompt::thread_history(&record, &thread_messages(&ctx, &item.thread_id).await?),
        };
        let code_turn = match self.code_turn(&ctx, &record).await? {
            Ok(code_turn) => code_turn,
            Err(message) => {
                return self
                    .fail(&ctx, item, "server_error", &message, sink)
                    .await
                    .map(|()| None)
            }
        };
        let code_tool = code_turn.as_ref().map(code_interpreter::prompt_tool);
        let prompt = match prompt::build(&record, history, code_tool.as_ref()) {
            Ok(p) => p,
            Err(e) => return self.refuse_prompt(&ctx, item, e, sink).await.map(|()| None),
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
        let usage = usage_of(&completion, &prompt);
        let attempt = live.attempt;
        let known = etag.map(|etag| (record.clone(), etag));
        let turn = commit::Turn {
            ctx: &ctx,
            item,
            record: &record,
            code: code_turn.as_ref(),
            alone_until,
        };
        let answered = commit::Answered { completion, usage };
        let next = self.commit(&turn, known, answered, live).await?;
        if redelivered {
            self.purge_other_attempts(&ctx, &record, attempt).await?;
        }
        Ok(next)
    }

    /// Takes the turn up: a queued run starts (`in_progress`), a run another delivery began
    /// is taken over (what that delivery stored of the turn is settled when we commit), a
    /// run being cancelled is cancelled. `None` when the turn is over (the cancel done).
    async fn begin(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        sink: &mut dyn EventSink,
    ) -> Result<Option<Begun>, Stop> {
        let key = keys::run(&ctx.tenant, &item.thread_id, &item.run_id);
        let Some((record, etag)) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await?
        else {
            return Err(Stop::Nothing);
        };
        if record.seq != item.seq {
            return notify_found(ctx, item, &record).await;
        }
        if record.run.status == RunStatus::Queued && record.seq == 0 {
            file_search::wait_until_ready(ctx, &record).await?;
        }
        let begun = |record, etag, redelivered| {
            Ok(Some(Begun {
                record,
                etag,
                redelivered,
            }))
        };
        match record.run.status {
            RunStatus::Cancelling => self.finish_cancel(ctx, item, sink).await.map(|()| None),
            RunStatus::Queued => {
                let known = Some((record, etag));
                let started = self
                    .move_run_from(ctx, item, &[RunStatus::Queued], known, |r| {
                        r.run.status = RunStatus::InProgress;
                        r.run.started_at.get_or_insert_with(now);
                    })
                    .await?;
                match started {
                    (Moved::Applied(r), etag) => {
                        sink.emit("thread.run.in_progress", run_value(&r));
                        begun(*r, etag, false)
                    }
                    (Moved::Cancelling, _) => {
                        self.finish_cancel(ctx, item, sink).await.map(|()| None)
                    }
                    (Moved::Stale, _) => Err(Stop::Nothing),
                }
            }
            // Another delivery began this turn (it crashed, or timed out, or runs still).
            RunStatus::InProgress => begun(record, Some(etag), true),
            _ => notify_found(ctx, item, &record).await,
        }
    }

    /// The code interpreter, when the run has it; `Err` says why a run that needs it cannot
    /// have it on this server (the run then fails at once, saying so).
    async fn code_turn(
        &self,
        ctx: &Ctx,
        record: &RunRecord,
    ) -> Result<Result<Option<CodeTurn<'_>>, String>, Stop> {
        let Some(name) = code_interpreter::function_name(record) else {
            return Ok(Ok(None));
        };
        let ci = self.code_interpreter.get().await;
        let Some(executor) = ci.executor() else {
            return Ok(Err(format!(
                "The code_interpreter tool is not available on this server: {}.",
                ci.unavailable_reason().unwrap_or("it is not configured")
            )));
        };
        let files = code_interpreter::input_files(ctx, record).await?;
        Ok(Ok(Some(CodeTurn {
            ci,
            executor: executor.as_ref(),
            name,
            files,
        })))
    }

    /// A prompt that cannot be built ends the run: a tool the server cannot run fails it,
    /// a budget it cannot meet leaves it incomplete.
    async fn refuse_prompt(
        &self,
        ctx: &Ctx,
        item: &RunTurn,
        error: prompt::PromptError,
        sink: &mut dyn EventSink,
    ) -> Result<(), Stop> {
        match error {
            prompt::PromptError::UnsupportedTool(tool) => {
                let message = format!(
                    "The {tool} tool is not supported by this server yet; remove it from the \
                     assistant's or the run's tools."
                );
                self.fail(ctx, item, "server_error", &message, sink).await
            }
            prompt::PromptError::TooLong => {
                self.end_incomplete(ctx, item, "max_prompt_tokens", sink)
                    .await
            }
            prompt::PromptError::NoCompletionBudget => {
                self.end_incomplete(ctx, item, "max_completion_tokens", sink)
                    .await
            }
        }
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
            return notify_found(&ctx, item, &record).await;
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

/// The thread's messages, oldest first.
async fn thread_messages(ctx: &Ctx, thread_id: &str) -> Result<Vec<Message>, Stop> {
    let message_prefix = keys::messages(&ctx.tenant, thread_id);
    let mut ids: Vec<String> = store::list_all(ctx.store.as_ref(), &message_prefix)
        .await?
        .iter()
        .map(|k| keys::last_segment(k).to_string())
        .collect();
    ids.sort_unstable();
    Ok(store::read_all(ctx.store.as_ref(), &message_prefix, &ids).await?)
}

/// The usage of a model call: as reported, or (when the endpoint reported none) counted
/// from what was sent and received.
fn usage_of(completion: &Completion, prompt: &prompt::Prompt) -> Usage {
    if let Some(usage) = completion.usage {
        return usage;
    }
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
async fn notify_found<T>(ctx: &Ctx, item: &RunTurn, record: &RunRecord) -> Result<T, Stop> {
    if record.seq == item.seq || record.seq == item.seq.wrapping_add(1) {
        notify_run(ctx, record).await?;
    }
    Err(Stop::Nothing)
}

/// A run's event data: the run object; for a response, the whole record (its stream's
/// translator, `api::response_stream`, makes the response object of it).
fn run_value(record: &RunRecord) -> Value {
    if record.response.is_some() {
        return serde_json::to_value(record).unwrap_or(Value::Null);
    }
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
