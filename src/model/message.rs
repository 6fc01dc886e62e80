//! The message record: stored as it is answered.

use super::values::{Attachment, ContentPart, Metadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

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
    pub status: String,
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
