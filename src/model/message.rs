//! The message record: stored as it is answered.

use super::values::{Attachment, ContentPart, Metadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a message is, stored and answered as these strings. Messages from the API are
/// stored `completed`; a run's message is `in_progress` only in the events streamed while
/// it is written, and stored once, `completed` or `incomplete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    InProgress,
    Incomplete,
    Completed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 3] = [
        MessageStatus::InProgress,
        MessageStatus::Incomplete,
        MessageStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::InProgress => "in_progress",
            MessageStatus::Incomplete => "incomplete",
            MessageStatus::Completed => "completed",
        }
    }

    /// Whether a message in this status may move to `next`: only one in progress moves,
    /// once, to `completed` or `incomplete`.
    pub fn can_become(self, next: MessageStatus) -> bool {
        self == MessageStatus::InProgress && next != MessageStatus::InProgress
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message of a thread.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: String,
    #[schema(schema_with = super::schemas::message_object)]
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    pub thread_id: String,
    #[schema(value_type = super::schemas::MessageStatus)]
    pub status: MessageStatus,
    #[schema(value_type = Option<super::schemas::MessageIncompleteDetails>, required)]
    pub incomplete_details: Option<Value>,
    #[schema(required)]
    pub completed_at: Option<i64>,
    #[schema(required)]
    pub incomplete_at: Option<i64>,
    #[schema(value_type = super::schemas::MessageRole)]
    pub role: String,
    pub content: Vec<ContentPart>,
    /// The assistant whose run wrote the message (null for messages from the API).
    #[schema(required)]
    pub assistant_id: Option<String>,
    /// The run that wrote the message (null for messages from the API).
    #[schema(required)]
    pub run_id: Option<String>,
    pub attachments: Vec<Attachment>,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_message_in_progress_moves_and_only_to_an_end() {
        use MessageStatus::*;
        assert!(InProgress.can_become(Completed));
        assert!(InProgress.can_become(Incomplete));
        assert!(!InProgress.can_become(InProgress));
        for end in [Completed, Incomplete] {
            for next in MessageStatus::ALL {
                assert!(!end.can_become(next), "{end} -> {next}");
            }
        }
    }

    #[test]
    fn statuses_are_stored_as_the_strings_they_always_were() {
        let strings = ["in_progress", "incomplete", "completed"];
        for (status, s) in MessageStatus::ALL.into_iter().zip(strings) {
            assert_eq!(serde_json::to_value(status).ok(), Some(json!(s)));
            assert_eq!(status.as_str(), s);
            let back: Option<MessageStatus> = serde_json::from_value(json!(s)).ok();
            assert_eq!(back, Some(status));
        }
        assert!(serde_json::from_value::<MessageStatus>(json!("expired")).is_err());
    }
}
