//! Submitting tool outputs: the outputs of a run's pending client calls are checked against
//! its last tool round, the tool step completes and the run's next turn is queued.

use super::run_steps::write_tool_step;
use super::runs::enqueue_step;
use super::threads;
use super::validate::{self, parse_body};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{Kind, RunId, ThreadId};
use crate::model::now_ms;
use crate::model::run::{RunRecord, RunStatus};
use crate::model::step::StepStatus;
use crate::store::{self, keys, Update};
use serde::Deserialize;
use utoipa::ToSchema;

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

/// Accepts the outputs of the pending tool calls and queues the run's next turn.
/// Returns the updated record and whether the client asked for a stream.
pub async fn submit(
    ctx: &Ctx,
    thread_id: &ThreadId,
    run_id: &RunId,
    body: &[u8],
    enqueue: impl Fn(bool) -> bool,
) -> Result<(RunRecord, bool), ApiError> {
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
