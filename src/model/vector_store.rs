//! The records of vector stores: the store (with its file counts and search version), a file
//! in a store, a file batch.

use super::now;
use super::values::Metadata;
use crate::ids::{self, Kind};
use crate::store::{self, keys, Store, StoreError, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Files by ingestion status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FileCounts {
    pub in_progress: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub total: u64,
}

impl FileCounts {
    fn slot(&mut self, status: &str) -> Option<&mut u64> {
        match status {
            "in_progress" => Some(&mut self.in_progress),
            "completed" => Some(&mut self.completed),
            "failed" => Some(&mut self.failed),
            "cancelled" => Some(&mut self.cancelled),
            _ => None,
        }
    }

    /// A file moved from `from` (None: newly added) to `to` (None: removed).
    pub fn moved(&mut self, from: Option<&str>, to: Option<&str>) {
        if let Some(slot) = from.and_then(|f| self.slot(f)) {
            *slot = slot.saturating_sub(1);
        }
        if let Some(slot) = to.and_then(|t| self.slot(t)) {
            *slot += 1;
        }
        self.total = self.in_progress + self.completed + self.failed + self.cancelled;
    }
}

/// A vector store: files chunked and embedded for search.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VectorStore {
    pub id: String,
    #[schema(schema_with = super::schemas::vector_store_object)]
    pub object: String,
    pub created_at: i64,
    pub name: String,
    /// Bytes of the stored chunks.
    pub usage_bytes: u64,
    pub file_counts: FileCounts,
    #[schema(value_type = super::schemas::VectorStoreStatus)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = super::schemas::VectorStoreExpiresAfter)]
    pub expires_after: Option<Value>,
    #[schema(required)]
    pub expires_at: Option<i64>,
    #[schema(required)]
    pub last_active_at: Option<i64>,
    #[schema(value_type = super::schemas::Metadata)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorStoreRecord {
    #[serde(flatten)]
    pub store: VectorStore,
    #[serde(rename = "_description", default)]
    pub description: Option<String>,
    /// Bumped whenever what a search sees changes (files completed or removed, attributes).
    #[serde(rename = "_version", default)]
    pub version: u64,
}

impl VectorStoreRecord {
    /// `status` as the counts and the expiry make it.
    pub fn refresh_status(&mut self) {
        let s = &mut self.store;
        s.status = if s.expires_at.is_some_and(|t| t <= now()) {
            "expired"
        } else if s.file_counts.in_progress > 0 {
            "in_progress"
        } else {
            "completed"
        }
        .into();
    }
}

/// A file in a vector store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VectorStoreFile {
    /// The file's id.
    pub id: String,
    #[schema(schema_with = super::schemas::vector_store_file_object)]
    pub object: String,
    pub usage_bytes: u64,
    pub created_at: i64,
    pub vector_store_id: String,
    #[schema(value_type = super::schemas::VectorStoreFileStatus)]
    pub status: String,
    #[schema(value_type = Option<super::schemas::VectorStoreFileError>, required)]
    pub last_error: Option<Value>,
    #[schema(value_type = super::schemas::ChunkingStrategy)]
    pub chunking_strategy: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = super::schemas::Attributes)]
    pub attributes: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorStoreFileRecord {
    #[serde(flatten)]
    pub file: VectorStoreFile,
    #[serde(rename = "_batch_id", default)]
    pub batch_id: Option<String>,
}

/// A batch of files added to a vector store together.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileBatch {
    pub id: String,
    #[schema(schema_with = super::schemas::file_batch_object)]
    pub object: String,
    pub created_at: i64,
    pub vector_store_id: String,
    #[schema(value_type = super::schemas::FileBatchStatus)]
    pub status: String,
    pub file_counts: FileCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileBatchRecord {
    #[serde(flatten)]
    pub batch: FileBatch,
    #[serde(rename = "_cancelled", default)]
    pub cancelled: bool,
}

/// When a store with `expires_after` expires, counted from its last activity.
pub fn expires_at(expires_after: Option<&Value>, last_active: i64) -> Option<i64> {
    expires_after
        .and_then(|e| e["days"].as_i64())
        .map(|d| last_active + d * 86_400)
}

/// Reads a vector store of this tenant, its status brought up to date: `None` when there is
/// none (or the id can name none).
pub async fn load(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<Option<VectorStoreRecord>, StoreError> {
    if !ids::is_valid(Kind::VectorStore, id) {
        return Ok(None);
    }
    Ok(
        store::get_json::<VectorStoreRecord>(store, &keys::vector_store(tenant, id))
            .await?
            .map(|(mut r, _)| {
                r.refresh_status();
                r
            }),
    )
}

/// Applies a change to the store record's counts (and version), retried on races; a store
/// deleted meanwhile is left alone.
pub async fn update(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    change: impl Fn(&mut VectorStoreRecord),
) -> Result<(), StoreError> {
    store::update_json(
        store,
        &keys::vector_store(tenant, id),
        |mut r: VectorStoreRecord| {
            change(&mut r);
            r.refresh_status();
            Ok::<_, StoreError>(Update::Write(r, ()))
        },
    )
    .await?;
    Ok(())
}
