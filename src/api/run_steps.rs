//! Run steps: listing and reading them (with `include[]`), and the step writes the api
//! makes outside the engine (a tool step's outputs, a cancelled step).

use super::pagination::{list_objects, ListQuery, Query};
pub use super::run_options::check_include;
use super::runs;
use super::to_value;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{Kind, RunId, StepId, ThreadId};
use crate::model::now;
use crate::model::run::{tool_step_details, RunRecord, ToolRound};
use crate::model::step::{shape_step, RunStep, StepStatus};
use crate::model::values::Metadata;
use crate::store::{self, keys, PutMode};
use serde_json::Value;

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

/// A step listing's query, checked (before the path's ids, as it always was): whether it
/// includes search result content, and the page.
pub fn list_query(query: &Query) -> Result<(bool, ListQuery), ApiError> {
    Ok((check_include(query)?, ListQuery::parse(query, 100, 20)?))
}

pub async fn list(
    ctx: &Ctx,
    thread_id: &ThreadId,
    run_id: &RunId,
    (include_content, q): (bool, ListQuery),
) -> Result<Value, ApiError> {
    runs::load(ctx, thread_id, run_id).await?;
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

pub async fn get(
    ctx: &Ctx,
    thread_id: &ThreadId,
    run_id: &RunId,
    step_id: &StepId,
    include_content: bool,
) -> Result<Value, ApiError> {
    runs::load(ctx, thread_id, run_id).await?;
    let key = keys::step(&ctx.tenant, thread_id, run_id, step_id);
    match store::get_json::<RunStep>(ctx.store.as_ref(), &key).await? {
        Some((s, _)) => Ok(shape_step(to_value(&s)?, include_content)),
        None => Err(ApiError::not_found(Kind::Step, step_id.as_str())),
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
