//! The run step record: stored as it is answered, but for `file_search` result content,
//! which is shown only when asked for.

use super::now;
use super::values::Metadata;
use crate::llm::Usage;
use crate::store::{self, Store, StoreError, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The run step object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunStep {
    pub id: String,
    #[schema(schema_with = super::schemas::run_step_object)]
    pub object: String,
    pub created_at: i64,
    pub assistant_id: String,
    pub thread_id: String,
    pub run_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = super::schemas::RunStepType)]
    pub step_type: String,
    #[schema(value_type = super::schemas::RunStepStatus)]
    pub status: String,
    #[schema(value_type = super::schemas::StepDetails)]
    pub step_details: Value,
    #[schema(value_type = Option<super::schemas::RunLastError>, required)]
    pub last_error: Option<Value>,
    #[schema(required)]
    pub expired_at: Option<i64>,
    #[schema(required)]
    pub cancelled_at: Option<i64>,
    #[schema(required)]
    pub failed_at: Option<i64>,
    #[schema(required)]
    pub completed_at: Option<i64>,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
    #[schema(required)]
    pub usage: Option<Usage>,
}

/// Drops `file_search` result content from a step (JSON) unless it was asked for.
pub fn shape_step(mut step: Value, include_content: bool) -> Value {
    if include_content {
        return step;
    }
    if let Some(calls) = step
        .pointer_mut("/step_details/tool_calls")
        .and_then(Value::as_array_mut)
    {
        for call in calls {
            if let Some(results) = call
                .pointer_mut("/file_search/results")
                .and_then(Value::as_array_mut)
            {
                for r in results {
                    if let Some(r) = r.as_object_mut() {
                        r.remove("content");
                    }
                }
            }
        }
    }
    step
}

/// Ends a stored step still `in_progress` with `status` (and its timestamp); a step that
/// already ended, or is gone, is left as it is.
pub async fn finish(store: &dyn Store, key: &str, status: &str) -> Result<(), StoreError> {
    store::update_json(store, key, |mut s: RunStep| {
        if s.status != "in_progress" {
            return Ok::<_, StoreError>(Update::Keep(()));
        }
        s.status = status.to_string();
        let t = Some(now());
        match status {
            "cancelled" => s.cancelled_at = t,
            "expired" => s.expired_at = t,
            "failed" => s.failed_at = t,
            _ => s.completed_at = t,
        }
        Ok(Update::Write(s, ()))
    })
    .await?;
    Ok(())
}
