//! Runs: the operations clients call on them (create, create thread and run, list,
//! retrieve, modify, cancel). What a run is asked to be and its validation are in
//! `run_options`, its steps in `run_steps`, tool outputs in `tool_outputs`. The engine
//! (`crate::engine`) advances runs; these modules only start, read and steer them.

use super::assistants;
use super::pagination::{list_objects, without_internal_fields, ListQuery, Query};
use super::run_options::{check_include, plan_run, CreateRun, CreateThreadAndRun, RunPlan};
use super::threads;
use super::to_value;
use super::validate::{self, metadata, nullable, parse_body, parse_required_body};
use super::Reply;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{AssistantId, Kind, RunId, ThreadId};
use crate::model::run::{ClaimedThread, RunRecord, RunStatus};
use crate::model::step::StepStatus;
use crate::model::thread::{Thread, ThreadRecord};
use crate::model::values::Metadata;
use crate::model::{now, now_ms};
use crate::queue::WorkItem;
use crate::store::{self, keys, PutMode, Update};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyRun {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
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
        response: None,
    };
    let written = async {
        for (id, new) in plan.additional_messages {
            let message = new.into_message(&thread_id, id.into_string());
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
    thread_id: &ThreadId,
    query: &Query,
    body: &[u8],
    enqueue: impl Fn(bool) -> bool,
) -> Result<(RunRecord, bool), ApiError> {
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
    // Check the assistant before creating anything.
    let assistant_id: AssistantId = validate::existing_id("assistant_id", &req.assistant_id)?;
    assistants::load(ctx, &assistant_id).await?;
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

pub async fn load(ctx: &Ctx, thread_id: &ThreadId, run_id: &RunId) -> Result<RunRecord, ApiError> {
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

pub async fn get(ctx: &Ctx, thread_id: &ThreadId, run_id: &RunId) -> Result<Reply, ApiError> {
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

pub async fn list(ctx: &Ctx, thread_id: &ThreadId, query: &Query) -> Result<Value, ApiError> {
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
    thread_id: &ThreadId,
    run_id: &RunId,
    body: &[u8],
) -> Result<Reply, ApiError> {
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
pub async fn cancel(ctx: &Ctx, thread_id: &ThreadId, run_id: &RunId) -> Result<Reply, ApiError> {
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
