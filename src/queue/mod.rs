//! The work queue: small items that name a run and the step the engine should take next.
//!
//! Delivery is at least once (an item may come twice, or late), so items carry what the
//! engine expects (`seq`, the run's turn counter) and the engine ignores an item whose run
//! has moved on. Two implementations:
//! - `local`: in-process, persisted as files in the data directory (the embedded default);
//! - `azure`: an Azure Storage Queue (`work`), message text base64-encoded as the Functions
//!   queue trigger expects, with a poller for standalone mode.

pub mod azure;
pub mod local;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Take the run's next turn (an LLM call and its writes).
    #[default]
    Step,
    /// Expire the run if it is still waiting for tool outputs of turn `seq`.
    Expire,
    /// Read, chunk and embed a file added to a vector store.
    Ingest,
}

/// One unit of work. Small (ids only) so it always fits a queue message (64 KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub kind: WorkKind,
    pub tenant: String,
    /// Run items: the run and its thread.
    #[serde(default)]
    pub thread_id: String,
    #[serde(default)]
    pub run_id: String,
    /// The run's turn counter when the item was made.
    #[serde(default)]
    pub seq: u32,
    /// Ingest items: the vector store and the file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vector_store_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_id: String,
}

impl WorkItem {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("work queue: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Adds an item, to be delivered after `delay`.
    async fn enqueue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError>;
}

pub type DynQueue = Arc<dyn WorkQueue>;

/// What processing one item came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or nothing to do): remove the item.
    Done,
    /// A transient failure: deliver the item again later.
    Retry(String),
}

/// The consumer side: the engine.
#[async_trait]
pub trait WorkHandler: Send + Sync + 'static {
    /// Processes one delivery; `attempt` counts from 1.
    async fn process(&self, item: &WorkItem, attempt: u32) -> Outcome;
    /// Called when an item failed its last attempt: end its run cleanly.
    async fn give_up(&self, item: &WorkItem, reason: &str);
}

/// How long to wait before delivering a failed item again (attempt counts from 1).
pub fn retry_backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}
