//! The thread record: the thread object plus its claim (`active_run_id`).

use super::values::{Metadata, ToolResources};
use crate::ids;
use crate::store::{self, keys, ETag, Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The thread object as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Thread {
    pub id: String,
    #[schema(schema_with = super::schemas::thread_object)]
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    pub tool_resources: ToolResources,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
}

/// The thread as stored: the object plus what the service keeps about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadRecord {
    #[serde(flatten)]
    pub thread: Thread,
    /// The run that is not yet terminal, if any: a thread has at most one. Changed only
    /// under the record's ETag, so two runs can never both become active.
    #[serde(default)]
    pub active_run_id: Option<String>,
}

/// Reads a thread record of this tenant with its ETag (for a conditional update without
/// another read): `None` when there is none (or the id can name none).
pub async fn load(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<(ThreadRecord, ETag)>, StoreError> {
    if ids::ConversationId::parse(id).is_none() {
        return Ok(None);
    }
    store::get_json(store, &keys::thread(tenant, id)).await
}
