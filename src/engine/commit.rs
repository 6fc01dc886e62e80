//! The performer of a turn: runs the built-in tool calls of the model's answer, asks
//! `turn::decide` what the turn comes to, writes it (message, steps), moves the run, and only
//! then tells the stream, so that it never announces what a cancel then takes back.

use super::code_interpreter::{self, CodeTurn};
use super::live::{Close, LiveTurn};
use super::turn::{self, Answer, MessageWrite, RunMove, ToolsRan, TurnOutcome, Writes};
use super::{file_search, run_value, Engine, Moved, Stop};
use crate::context::Ctx;
use crate::ids::{derived_id, Kind};
use crate::llm::{Completion, Usage};
use crate::model::message::{Message, MessageStatus};
use crate::model::now;
use crate::model::run::{
    self as run_ids, answer_message_id, RoundCall, RunRecord, RunStatus, ToolRound,
};
use crate::model::step::{RunStep, StepStatus};
use crate::queue::{RunTurn, WorkItem};
use crate::store::{self, keys, ETag, PutMode};
use serde_json::json;
use std::time::Instant;

/// What a turn works on: the run as the turn began and the code interpreter, if offered.
pub(super) struct Turn<'t> {
    pub ctx: &'t Ctx,
    pub item: &'t RunTurn,
    pub record: &'t RunRecord,
    pub code: Option<&'t CodeTurn<'t>>,
    /// Until when no other delivery can have begun this turn (`None`: one may have, or one
    /// began it before this one did): see `Engine::alone_until`.
    pub alone_until: Option<Instant>,
}

/// The model's answer and its usage.
pub(super) struct Answered {
    pub completion: Completion,
    pub usage: Usage,
}

/// A tool round with its built-in calls run.
struct RanRound {
    round: ToolRound,
    /// Store keys of the files its calls wrote (to take back if a cancel wins).
    written: Vec<String>,
    /// A built-in tool failed in a way the run cannot go on from.
    fatal: Option<String>,
}

/// What the turn stored, to announce once the run has moved.
struct Stored {
    message: Option<(Message, RunStep)>,
    tool_step: Option<RunStep>,
}

pub(super) fn step_key(ctx: &Ctx, step: &RunStep) -> String {
    keys::step(&ctx.tenant, &step.thread_id, &step.run_id, &step.id)
}

impl Engine {
    /// Performs the turn the model answered: built-in tool calls run, the decision written,
    /// the run moved on, the stream told. `Some(next)` when the run goes on with another
    /// turn at once.
    pub(super) async fn commit(
        &self,
        turn: &Turn<'_>,
        known: Option<(RunRecord, ETag)>,
        answered: Answered,
        mut live: LiveTurn<'_>,
    ) -> Result<Option<RunTurn>, Stop> {
        let completion = &answered.completion;
        let code_fn = turn.code.map(|c| c.name);
        if let Some(message) = turn::refused_call(turn.record, completion, code_fn) {
            return self.fail_turn(turn, &mut live, &[], &message).await;
        }
        // Another delivery of this turn (a watchdog copy, a lease that ran out) may have
        // finished it while this one waited for the model. Its answer stands: this one's,
        // other words with other usage, must not overwrite it under the same ids.
        if self.answered_elsewhere(turn).await? {
            return Err(Stop::Nothing);
        }
        let ran = if completion.tool_calls.is_empty() {
            None
        } else {
            let (step_id, attempt) = (live.tool_step_id(), live.attempt);
            Some(self.run_tools(turn, completion, step_id, attempt).await?)
        };
        // What this turn wrote, to take back if a cancel wins the race for the run.
        let mut written: Vec<String> = ran.as_ref().map(|r| r.written.clone()).unwrap_or_default();
        let tools = ran.as_ref().map(|r| match &r.fatal {
            Some(message) => ToolsRan::Fatal(message),
            None => ToolsRan::Round(&r.round),
        });
        let answer = Answer {
            completion,
            usage: answered.usage,
            code_fn,
            tools,
        };
        let writes = match turn::decide(turn.record, &answer) {
            TurnOutcome::Failed(message) => {
                return self.fail_turn(turn, &mut live, &written, &message).await
            }
            TurnOutcome::Write(writes) => writes,
        };
        let stored = self
            .write(turn.ctx, &writes, &mut live, &mut written)
            .await?;
        // A response's output items of this turn join the record in the same move.
        let items = match &turn.record.response {
            Some(_) => {
                let message = stored.message.as_ref().map(|(m, _)| m);
                let items = super::response::turn_items(turn.record, message, &writes.run);
                super::response::append_to_conversation(turn.ctx, turn.record, &writes.run, &items)
                    .await?;
                items
            }
            None => Vec::new(),
        };
        match self
            .move_for(turn, known, &writes.run, writes.usage, &items)
            .await?
        {
            Moved::Applied(record) => self.announce(turn, &record, &writes, stored, live).await,
            Moved::Cancelling => {
                self.take_back(turn.ctx, &written).await;
                self.close_unfinished(turn.ctx, &mut live, Close::Cancelled, "")
                    .await?;
                self.finish_cancel(turn.ctx, turn.item, live.sink)
                    .await
                    .map(|()| None)
            }
            Moved::Stale => {
                self.settle_stale(turn, &written, &mut live).await?;
                Err(Stop::Nothing)
            }
        }
    }

    /// The turn cannot be used: what it wrote is taken back, what the stream opened is
    /// stored and closed as failed, and the run fails with `message`.
    async fn fail_turn(
        &self,
        turn: &Turn<'_>,
        live: &mut LiveTurn<'_>,
        written: &[String],
        message: &str,
    ) -> Result<Option<RunTurn>, Stop> {
        self.take_back(turn.ctx, written).await;
        self.close_unfinished(turn.ctx, live, Close::Failed, message)
            .await?;
        self.fail(turn.ctx, turn.item, "server_error", message, live.sink)
            .await
            .map(|()| None)
    }

    /// Writes the turn's message (and its step) and its `tool_calls` step, noting their
    /// keys in `written`.
    async fn write(
        &self,
        ctx: &Ctx,
        writes: &Writes,
        live: &mut LiveTurn<'_>,
        written: &mut Vec<String>,
    ) -> Result<Stored, Stop> {
        let mut stored = Stored {
            message: None,
            tool_step: None,
        };
        if let Some(m) = &writes.message {
            let message = answer_message(live, m);
            let key = keys::message(&ctx.tenant, &message.thread_id, &message.id);
            self.put(ctx, &key, &message).await?;
            written.push(key);
            let step = live.message_step(StepStatus::Completed, m.step_usage);
            let key = step_key(ctx, &step);
            self.put(ctx, &key, &step).await?;
            written.push(key);
            stored.message = Some((message, step));
        }
        if let Some(t) = &writes.tool_step {
            let step = live.tool_step(t.details.clone(), t.status, Some(writes.usage));
            let key = step_key(ctx, &step);
            self.put(ctx, &key, &step).await?;
            written.push(key);
            stored.tool_step = Some(step);
        }
        Ok(stored)
    }

    /// Moves the run from `in_progress` as the turn decided (from the run as the turn
    /// last knew it, `known`).
    async fn move_for(
        &self,
        turn: &Turn<'_>,
        known: Option<(RunRecord, ETag)>,
        run_move: &RunMove,
        usage: Usage,
        items: &[serde_json::Value],
    ) -> Result<Moved, Stop> {
        let expiry = self.settings.expiry;
        let (ctx, item) = (turn.ctx, turn.item);
        let from = &[RunStatus::InProgress];
        let moved = self
            .move_run_from(ctx, item, from, known, |r| {
                apply_move(r, run_move, expiry);
                super::add_usage(&mut r.run.usage, usage);
                if let Some(face) = r.response.as_mut() {
                    face.output.extend(items.iter().cloned());
                }
                r.seq += 1;
            })
            .await?;
        Ok(moved.0)
    }

    /// The run moved on: now the stream hears of what the turn stored, and the run goes
    /// on (`Some(next)`), waits for tool outputs (its expiry queued), or ends.
    async fn announce(
        &self,
        turn: &Turn<'_>,
        record: &RunRecord,
        writes: &Writes,
        stored: Stored,
        mut live: LiveTurn<'_>,
    ) -> Result<Option<RunTurn>, Stop> {
        if let Some((message, step)) = &stored.message {
            live.open_message();
            live.close_message(message, step);
        }
        let round = match &writes.run {
            RunMove::RequiresAction { round, .. }
            | RunMove::NextRound { round }
            | RunMove::CompletedWithCalls { round } => Some(round),
            RunMove::Completed | RunMove::Incomplete => None,
        };
        if let Some(round) = round {
            // What the code the engine ran printed and drew, before the step completes.
            live.open_tool_step();
            live.code_outputs(round);
        }
        match (&writes.run, &stored.tool_step) {
            (RunMove::NextRound { .. }, Some(step)) => {
                // Built-in calls done: the step is complete and the run goes on.
                live.close_tool_step(step);
                return Ok(Some(record.next_turn(&turn.ctx.tenant)));
            }
            (RunMove::RequiresAction { .. }, _) | (RunMove::NextRound { .. }, None) => {
                live.open_tool_step();
                self.queue_expiry(turn.item, record).await;
                live.sink
                    .emit("thread.run.requires_action", run_value(record));
            }
            (RunMove::Completed | RunMove::Incomplete | RunMove::CompletedWithCalls { .. }, _) => {
                if let Some(step) = &stored.tool_step {
                    live.close_tool_step(step);
                }
                let item = turn.item;
                super::release_thread(
                    turn.ctx,
                    &item.thread_id,
                    &item.run_id,
                    record.claimed_thread(),
                )
                .await?;
                let event = if writes.run == RunMove::Incomplete {
                    "thread.run.incomplete"
                } else {
                    "thread.run.completed"
                };
                live.sink.emit(event, run_value(record));
            }
        }
        // Last, so that an event that cannot be queued retries the item with nothing else
        // left undone (the redelivery finds the run moved and queues the event then).
        super::notify_run(turn.ctx, record).await.map(|()| None)
    }

    /// Queues the expiry of a run that now waits for tool outputs.
    async fn queue_expiry(&self, item: &RunTurn, record: &RunRecord) {
        let expire = WorkItem::Expire(RunTurn {
            seq: record.seq,
            ..item.clone()
        });
        if let Err(e) = self.queue.enqueue(&expire, self.settings.expiry).await {
            log::warn!("cannot schedule the expiry of {}: {e}", record.run.id);
        }
    }

    /// The run went on without this delivery: if it ended meanwhile (cancelled, failed,
    /// expired), what the turn wrote is taken back and the stream closed as the run ended.
    async fn settle_stale(
        &self,
        turn: &Turn<'_>,
        written: &[String],
        live: &mut LiveTurn<'_>,
    ) -> Result<(), Stop> {
        let Some(ended) = self.take_back_if_ended(turn.ctx, turn.item, written).await else {
            return Ok(());
        };
        let how = if ended.run.status == RunStatus::Cancelled {
            Close::Cancelled
        } else {
            Close::Failed
        };
        self.close_unfinished(turn.ctx, live, how, "").await?;
        let event = match ended.run.status {
            RunStatus::Cancelled => "thread.run.cancelled",
            RunStatus::Expired => "thread.run.expired",
            _ => "thread.run.failed",
        };
        live.sink.emit(event, run_value(&ended));
        super::notify_run(turn.ctx, &ended).await
    }

    /// The tool round of a completion: client calls as they came, built-in calls run.
    async fn run_tools(
        &self,
        turn: &Turn<'_>,
        completion: &Completion,
        step_id: String,
        attempt: u32,
    ) -> Result<RanRound, Stop> {
        let (ctx, record) = (turn.ctx, turn.record);
        let search_fn = file_search::function_name(record);
        let mut searches = file_search::searches_so_far(record);
        let mut calls = Vec::with_capacity(completion.tool_calls.len());
        let mut written = Vec::new();
        let mut code_calls = 0;
        for (i, c) in completion.tool_calls.iter().enumerate() {
            let id = call_id(record, attempt, i, &c.id);
            if search_fn == Some(c.name.as_str()) {
                calls.push(
                    file_search::run_call(ctx, record, id, &c.name, &c.arguments, searches).await?,
                );
                searches += 1;
            } else if let Some(code) = turn.code.filter(|t| t.name == c.name) {
                let call = code_interpreter::CallToRun {
                    id,
                    arguments: &c.arguments,
                    first_of_turn: code_calls == 0,
                    number: code_interpreter::call_number(record, attempt, i),
                };
                code_calls += 1;
                match code_interpreter::run_call(ctx, code, record, call).await? {
                    Ok(ran) => {
                        calls.push(ran.call);
                        written.extend(ran.written);
                    }
                    Err(code_interpreter::Fatal(message)) => {
                        let round = ToolRound {
                            step_id,
                            text: None,
                            calls,
                        };
                        let fatal = Some(message);
                        return Ok(RanRound {
                            round,
                            written,
                            fatal,
                        });
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
        let text = (!completion.text.is_empty()).then(|| completion.text.clone());
        Ok(RanRound {
            round: ToolRound {
                step_id,
                text,
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
    /// remain for two deliveries to overlap. No read while no other delivery can have begun
    /// the turn yet (`Turn::alone_until`): the usual turn, answered in seconds.
    async fn answered_elsewhere(&self, turn: &Turn<'_>) -> Result<bool, Stop> {
        if turn.alone_until.is_some_and(|until| Instant::now() < until) {
            return Ok(false);
        }
        let (ctx, item) = (turn.ctx, turn.item);
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

    /// Stores and closes what an attempt opened but did not finish.
    pub(super) async fn close_unfinished(
        &self,
        ctx: &Ctx,
        live: &mut LiveTurn<'_>,
        how: Close,
        error: &str,
    ) -> Result<(), Stop> {
        let (message, tool_step) = live.unfinished(how, error);
        if let Some((message, step)) = &message {
            if how == Close::Failed {
                let key = keys::message(&ctx.tenant, &message.thread_id, &message.id);
                self.put(ctx, &key, message).await?;
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

    /// After this delivery committed a turn that another delivery had begun: deletes what
    /// that delivery stored under attempts this one did not reach (`after` and later).
    /// Attempts up to `after` have the same names as ours and were overwritten. One listing;
    /// deletes only of what exists. Done after the commit, never before, so a turn another
    /// delivery already committed is never left without its answer.
    pub(super) async fn purge_other_attempts(
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
}

/// The assistant message of this attempt as the turn decided it.
fn answer_message(live: &LiveTurn<'_>, m: &MessageWrite) -> Message {
    let (status, reason) = if m.incomplete {
        (MessageStatus::Incomplete, Some("max_tokens"))
    } else {
        (MessageStatus::Completed, None)
    };
    live.message(m.content.clone(), status, reason)
}

/// The id of the answer's call `index`: the model's, or one derived from the turn when the
/// model gave none.
fn call_id(record: &RunRecord, attempt: u32, index: usize, given: &str) -> String {
    if !given.is_empty() {
        return given.to_string();
    }
    let n = (record.seq * run_ids::MAX_ATTEMPTS + attempt) * 64 + index as u32;
    derived_id(Kind::ToolCall, &record.run.id, n)
}

/// The run's fields as the move sets them (the usage and the turn are the caller's).
fn apply_move(r: &mut RunRecord, run_move: &RunMove, expiry: std::time::Duration) {
    match run_move {
        RunMove::NextRound { round } => r.rounds.push(round.clone()),
        RunMove::RequiresAction {
            required_action,
            round,
        } => {
            r.run.status = RunStatus::RequiresAction;
            r.run.required_action = Some(required_action.clone());
            r.run.expires_at = Some(now() + expiry.as_secs().max(1) as i64);
            r.rounds.push(round.clone());
        }
        RunMove::CompletedWithCalls { round } => {
            r.run.status = RunStatus::Completed;
            r.run.completed_at = Some(now());
            r.run.required_action = None;
            r.rounds.push(round.clone());
        }
        RunMove::Completed | RunMove::Incomplete => {
            let truncated = *run_move == RunMove::Incomplete;
            r.run.status = if truncated {
                RunStatus::Incomplete
            } else {
                RunStatus::Completed
            };
            r.run.incomplete_details =
                truncated.then(|| json!({"reason": "max_completion_tokens"}));
            if !truncated {
                r.run.completed_at = Some(now());
            }
            r.run.required_action = None;
        }
    }
}
