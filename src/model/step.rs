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
    pub status: StepStatus,
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

/// Where a run step is, stored and answered as today's strings (`"in_progress"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    InProgress,
    Cancelled,
    Failed,
    Completed,
    Expired,
}

impl StepStatus {
    pub const ALL: [StepStatus; 5] = [
        StepStatus::InProgress,
        StepStatus::Cancelled,
        StepStatus::Failed,
        StepStatus::Completed,
        StepStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::InProgress => "in_progress",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Failed => "failed",
            StepStatus::Completed => "completed",
            StepStatus::Expired => "expired",
        }
    }

    /// Whether a stored step in this status may be ended with `next`: only a step in progress
    /// ends, once. (A tool step the client's outputs complete is rewritten whole from its
    /// round, the round being the truth, and a turn's steps are written in their first
    /// status.)
    pub fn can_become(self, next: StepStatus) -> bool {
        self == StepStatus::InProgress && next != StepStatus::InProgress
    }

    /// The stream event that announces a step that reached this status.
    pub fn event(self) -> &'static str {
        match self {
            StepStatus::Failed => "thread.run.step.failed",
            StepStatus::Cancelled => "thread.run.step.cancelled",
            StepStatus::Expired => "thread.run.step.expired",
            StepStatus::InProgress | StepStatus::Completed => "thread.run.step.completed",
        }
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunStep {
    /// Sets the timestamp of the status the step has now reached (none for `in_progress`).
    pub fn stamp(&mut self, at: i64) {
        let at = Some(at);
        match self.status {
            StepStatus::Completed => self.completed_at = at,
            StepStatus::Failed => self.failed_at = at,
            StepStatus::Cancelled => self.cancelled_at = at,
            StepStatus::Expired => self.expired_at = at,
            StepStatus::InProgress => {}
        }
    }
}

/// Ends a stored step still `in_progress` with `status` (and its timestamp); a step that
/// already ended, or is gone, is left as it is.
pub async fn finish(store: &dyn Store, key: &str, status: StepStatus) -> Result<(), StoreError> {
    store::update_json(store, key, |mut s: RunStep| {
        if !s.status.can_become(status) {
            return Ok::<_, StoreError>(Update::Keep(()));
        }
        s.status = status;
        s.stamp(now());
        Ok(Update::Write(s, ()))
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::StepStatus::{self, *};

    #[test]
    fn only_a_step_in_progress_ends_and_only_once() {
        for to in [Cancelled, Failed, Completed, Expired] {
            assert!(InProgress.can_become(to), "{to}");
        }
        assert!(!InProgress.can_become(InProgress));
        for from in [Cancelled, Failed, Completed, Expired] {
            for to in StepStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn statuses_are_stored_as_the_strings_they_always_were() {
        let strings = ["in_progress", "cancelled", "failed", "completed", "expired"];
        for (status, s) in StepStatus::ALL.into_iter().zip(strings) {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(s))
            );
            assert_eq!(status.as_str(), s);
        }
        assert!(serde_json::from_value::<StepStatus>(serde_json::json!("queued")).is_err());
    }
}
