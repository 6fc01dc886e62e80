//! The run record: the run object plus what the engine keeps about it (its turn counter, the
//! tool rounds it replays to the model, the claimed thread), and the ids a turn's writes get.

use super::thread::ThreadRecord;
use super::values::{Metadata, Tool};
use crate::ids::{derived_id, Kind};
use crate::llm::Usage;
use crate::queue::RunTurn;
use crate::store::ETag;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// The run object as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    #[schema(schema_with = super::schemas::run_object)]
    pub object: String,
    pub created_at: i64,
    pub thread_id: String,
    pub assistant_id: String,
    #[schema(value_type = super::schemas::RunStatus)]
    pub status: RunStatus,
    #[schema(value_type = Option<super::schemas::RequiredAction>, required)]
    pub required_action: Option<Value>,
    #[schema(value_type = Option<super::schemas::RunLastError>, required)]
    pub last_error: Option<Value>,
    #[schema(required)]
    pub expires_at: Option<i64>,
    #[schema(required)]
    pub started_at: Option<i64>,
    #[schema(required)]
    pub cancelled_at: Option<i64>,
    #[schema(required)]
    pub failed_at: Option<i64>,
    #[schema(required)]
    pub completed_at: Option<i64>,
    #[schema(value_type = Option<super::schemas::RunIncompleteDetails>, required)]
    pub incomplete_details: Option<Value>,
    pub model: String,
    pub instructions: String,
    pub tools: Vec<Tool>,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
    #[schema(required)]
    pub usage: Option<Usage>,
    #[schema(required)]
    pub temperature: Option<f64>,
    #[schema(required)]
    pub top_p: Option<f64>,
    #[schema(required)]
    pub max_prompt_tokens: Option<u64>,
    #[schema(required)]
    pub max_completion_tokens: Option<u64>,
    #[schema(value_type = super::schemas::TruncationStrategy)]
    pub truncation_strategy: Value,
    #[schema(value_type = super::schemas::ToolChoice)]
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    #[schema(value_type = super::schemas::ResponseFormat)]
    pub response_format: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::ReasoningEffort>)]
    pub reasoning_effort: Option<String>,
}

/// One call of a tool round, with its output once submitted (or, for a tool the server
/// runs itself, once run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoundCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub output: Option<String>,
    /// Set when the server ran the call (a built-in tool); `None` for a function the
    /// client runs and answers through `submit_tool_outputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCall>,
}

impl RoundCall {
    /// Whether the client must submit this call's output.
    pub fn is_client_call(&self) -> bool {
        self.server.is_none()
    }
}

/// What the server did for a built-in tool call, as its run step shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerCall {
    FileSearch {
        ranking_options: Value,
        results: Vec<SearchHit>,
    },
    /// A cell run in the thread's Python session.
    CodeInterpreter {
        /// The code as run.
        input: String,
        /// The step's outputs: `{"type": "logs", "logs"}` and `{"type": "image", "image":
        /// {"file_id"}}`, in that order.
        outputs: Vec<Value>,
        /// Files the cell wrote to `/mnt/data`, stored as `assistants_output` files.
        #[serde(default)]
        files: Vec<OutputFile>,
    },
}

/// A file a `code_interpreter` cell wrote, as the service stored it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputFile {
    /// Relative to `/mnt/data`.
    pub path: String,
    pub file_id: String,
}

/// One `file_search` result: the chunk's text is stored, and shown only when the request
/// asks for it (`include[]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchHit {
    pub file_id: String,
    pub file_name: String,
    pub score: f32,
    pub text: String,
}

/// A turn that ended in tool calls: replayed to the model on every later turn of the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolRound {
    pub step_id: String,
    /// Text the model wrote along with the calls.
    pub text: Option<String>,
    pub calls: Vec<RoundCall>,
}

/// The run as stored: the object plus the engine's state. Internal fields start with `_`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub run: Run,
    #[serde(rename = "_additional_instructions", default)]
    pub additional_instructions: Option<String>,
    /// Turns taken so far; a work item for another turn is stale.
    #[serde(rename = "_seq", default)]
    pub seq: u32,
    #[serde(rename = "_rounds", default)]
    pub rounds: Vec<ToolRound>,
    /// Last change, Unix milliseconds (for the stall check).
    #[serde(rename = "_updated_ms", default)]
    pub updated_ms: u64,
    /// The run was created with `include[]` asking for `file_search` result content (its
    /// stream shows it).
    #[serde(rename = "_include_search_content", default)]
    pub include_search_content: bool,
    /// The thread as this run's claim left it, with its ETag: the run releases the claim
    /// from it without reading the thread again (when nothing changed the thread since).
    #[serde(
        rename = "_claimed_thread",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub claimed_thread: Option<ClaimedThread>,
    /// Set when the run is a response (`model::response`): its face on the Responses API.
    #[serde(rename = "_response", default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseFace>,
}

/// What a run that is a response keeps beyond the run (`model::response` builds the
/// response object from it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResponseFace {
    /// The request fields the response object echoes, as given or defaulted
    /// (`instructions`, `tools`, `tool_choice`, `text`, `reasoning`, `truncation`, ...).
    pub echo: Map<String, Value>,
    pub store: bool,
    pub background: bool,
    /// Created with `stream: true` (its stream can be resumed when it is also background).
    #[serde(default)]
    pub stream: bool,
    /// The conversation (a thread id) the response runs in; `None`: the response has a
    /// thread of its own, which no one else sees.
    #[serde(default)]
    pub conversation: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    /// The vector stores its `file_search` tool searches, and the attribute filter.
    #[serde(default)]
    pub vector_store_ids: Vec<String>,
    #[serde(default)]
    pub filters: Option<Value>,
    /// The files its code interpreter's container starts with.
    #[serde(default)]
    pub container_file_ids: Vec<String>,
    /// Built-in tool calls allowed across the response (`max_tool_calls`).
    #[serde(default)]
    pub max_tool_calls: Option<u64>,
    /// The output items so far, in order.
    #[serde(default)]
    pub output: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedThread {
    pub record: ThreadRecord,
    pub etag: String,
}

impl RunRecord {
    /// The claimed thread and its ETag, for `threads::release_active_run_from`.
    pub fn claimed_thread(&self) -> Option<(ThreadRecord, ETag)> {
        self.claimed_thread
            .as_ref()
            .map(|c| (c.record.clone(), ETag(c.etag.clone())))
    }
}

impl RunRecord {
    /// This run at its next turn (what a `step` work item takes).
    pub fn next_turn(&self, tenant: &str) -> RunTurn {
        RunTurn {
            tenant: tenant.to_string(),
            thread_id: self.run.thread_id.clone(),
            run_id: self.run.id.clone(),
            seq: self.seq,
        }
    }
}

/// Where a run is in its life, stored and answered as today's strings (`"in_progress"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    InProgress,
    RequiresAction,
    Cancelling,
    Cancelled,
    Failed,
    Completed,
    Incomplete,
    Expired,
}

impl RunStatus {
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Queued,
        RunStatus::InProgress,
        RunStatus::RequiresAction,
        RunStatus::Cancelling,
        RunStatus::Cancelled,
        RunStatus::Failed,
        RunStatus::Completed,
        RunStatus::Incomplete,
        RunStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::InProgress => "in_progress",
            RunStatus::RequiresAction => "requires_action",
            RunStatus::Cancelling => "cancelling",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Completed => "completed",
            RunStatus::Incomplete => "incomplete",
            RunStatus::Expired => "expired",
        }
    }

    /// A run that ended: nothing moves it any more, and its thread is free.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Cancelled
                | RunStatus::Failed
                | RunStatus::Completed
                | RunStatus::Incomplete
                | RunStatus::Expired
        )
    }

    /// Whether a run in this status may move to `next`: the state machine of ARCHITECTURE.md
    /// ("Runs"), every move the engine and the api make and no other.
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, next),
            // A turn starts.
            (Queued, InProgress)
                // A cancel while a turn may be in flight: the engine finishes it.
                | (Queued | InProgress, Cancelling)
                // The engine ends a run early (an error, a limit), or gives up on it; a run
                // whose work could not be queued fails.
                | (Queued | InProgress, Failed | Incomplete)
                // A turn ends (or stops at the token limit: `Incomplete`, above).
                | (InProgress, RequiresAction | Completed)
                // Tool outputs submitted; a cancel; no outputs in time.
                | (RequiresAction, Queued | Cancelled | Expired)
                // The engine finishes a cancel.
                | (Cancelling, Cancelled)
                // A run whose creation failed after a cancel came in.
                | (Cancelling, Failed)
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Run {
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// Model calls one turn may make (`LLM_MAX_ATTEMPTS` is capped to it): each attempt of a
/// turn has its own derived ids.
pub const MAX_ATTEMPTS: u32 = 8;

/// Ids of what attempt `attempt` (from 0) of turn `seq` writes: derived from the run, the
/// turn and the attempt, so a repeated delivery writes the same objects again, and in
/// creation order (turn, then attempt, then message before tool calls).
pub fn message_step_id(run_id: &str, seq: u32, attempt: u32) -> String {
    derived_id(Kind::Step, run_id, (seq * MAX_ATTEMPTS + attempt) * 2 + 1)
}
pub fn tool_step_id(run_id: &str, seq: u32, attempt: u32) -> String {
    derived_id(Kind::Step, run_id, (seq * MAX_ATTEMPTS + attempt) * 2 + 2)
}
pub fn answer_message_id(run_id: &str, seq: u32, attempt: u32) -> String {
    derived_id(Kind::Message, run_id, seq * MAX_ATTEMPTS + attempt + 1)
}

/// The `step_details` of a tool round (as stored: `file_search` results with content).
pub fn tool_step_details(round: &ToolRound) -> Value {
    json!({
        "type": "tool_calls",
        "tool_calls": round.calls.iter().map(tool_call_details).collect::<Vec<_>>(),
    })
}

/// One call as a step shows it: a function with its output, or a built-in tool's record.
pub fn tool_call_details(c: &RoundCall) -> Value {
    match &c.server {
        None => json!({
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments, "output": c.output},
        }),
        Some(ServerCall::FileSearch {
            ranking_options,
            results,
        }) => json!({
            "id": c.id,
            "type": "file_search",
            "file_search": {
                "ranking_options": ranking_options,
                "results": results.iter().map(|r| json!({
                    "file_id": r.file_id,
                    "file_name": r.file_name,
                    "score": r.score,
                    "content": [{"type": "text", "text": r.text}],
                })).collect::<Vec<_>>(),
            },
        }),
        Some(ServerCall::CodeInterpreter { input, outputs, .. }) => json!({
            "id": c.id,
            "type": "code_interpreter",
            "code_interpreter": {"input": input, "outputs": outputs},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::{self, *};

    /// Every move the engine and the api make (see `can_become`'s comments).
    const MADE: &[(RunStatus, RunStatus)] = &[
        (Queued, InProgress),
        (Queued, Cancelling),
        (InProgress, Cancelling),
        (Queued, Failed),
        (InProgress, Failed),
        (Queued, Incomplete),
        (InProgress, Incomplete),
        (InProgress, RequiresAction),
        (InProgress, Completed),
        (RequiresAction, Queued),
        (RequiresAction, Cancelled),
        (RequiresAction, Expired),
        (Cancelling, Cancelled),
        (Cancelling, Failed),
    ];

    #[test]
    fn the_moves_made_are_allowed_and_no_other() {
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    MADE.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_runs_never_move_and_the_refused_moves_are_refused() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(
                RunStatus::ALL.iter().all(|to| !from.can_become(*to)),
                "{from}"
            );
        }
        for (from, to) in [
            (Queued, Completed),
            (Queued, RequiresAction),
            (RequiresAction, InProgress),
            (RequiresAction, Cancelling),
            (Cancelling, InProgress),
            (Cancelling, Queued),
            (Completed, Queued),
            (Expired, Queued),
        ] {
            assert!(!from.can_become(to), "{from} -> {to}");
        }
    }

    #[test]
    fn statuses_are_stored_as_the_strings_they_always_were() {
        let strings = [
            "queued",
            "in_progress",
            "requires_action",
            "cancelling",
            "cancelled",
            "failed",
            "completed",
            "incomplete",
            "expired",
        ];
        for (status, s) in RunStatus::ALL.into_iter().zip(strings) {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(s))
            );
            assert_eq!(status.as_str(), s);
            let back: Option<RunStatus> = serde_json::from_value(serde_json::json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        assert!(serde_json::from_value::<RunStatus>(serde_json::json!("done")).is_err());
    }
}
