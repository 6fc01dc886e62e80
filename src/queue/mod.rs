//! The work queue: small items that name a run and the step the engine should take next.
//!
//! Delivery is at least once (an item may come twice, or late), so items carry what the
//! engine expects (`seq`, the run's turn counter) and the engine ignores an item whose run
//! has moved on. Two implementations:
//! - `local`: in-process, persisted as files in the data directory (the embedded default);
//! - `azure`: an Azure Storage Queue (`work`), message text base64-encoded as the Functions
//!   queue trigger expects, with a poller for standalone mode.

pub mod azure;
pub mod fair;
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
    /// Deliveries of this item made before it was queued again as this copy (an Azure
    /// queue's dequeue count starts again with a copy: see `azure::defer`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WorkItem {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What the item is about, for the log.
    pub fn describe(&self) -> String {
        match self.kind {
            WorkKind::Ingest => format!(
                "ingest {} into {} ({})",
                self.file_id, self.vector_store_id, self.tenant
            ),
            WorkKind::Step => format!("step {} turn {} ({})", self.run_id, self.seq, self.tenant),
            WorkKind::Expire => {
                format!("expire {} turn {} ({})", self.run_id, self.seq, self.tenant)
            }
        }
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

/// The one delivery policy of every consumer (the in-process queue, the Azure queue poller,
/// the Functions `work` trigger): the `attempt`-th delivery of `item` (counted from 1, and
/// counted *before* processing) is processed; a failure on the last allowed attempt ends
/// the item's object cleanly; and an item delivered more often than allowed is not
/// processed at all but ended at once: its earlier deliveries never finished, because the
/// process died while processing them, and processing it again could kill the process
/// again, on every restart.
pub async fn deliver(
    handler: &dyn WorkHandler,
    item: &WorkItem,
    attempt: u32,
    max_attempts: u32,
) -> Outcome {
    if attempt > max_attempts {
        log::warn!(
            "work item {} delivered {attempt} times without finishing; abandoned",
            item.describe()
        );
        abandon(handler, item).await;
        return Outcome::Done;
    }
    match handler.process(item, attempt).await {
        Outcome::Done => Outcome::Done,
        Outcome::Retry(reason) if attempt >= max_attempts => {
            log::warn!(
                "work item {} failed {attempt} times, giving up: {reason}",
                item.describe()
            );
            handler.give_up(item, &reason).await;
            Outcome::Done
        }
        Outcome::Retry(reason) => {
            log::info!(
                "work item {} will be retried (attempt {attempt}): {reason}",
                item.describe()
            );
            Outcome::Retry(reason)
        }
    }
}

/// Ends the object of an item whose deliveries never finished (see `deliver`; under the
/// Functions host, the poison queue's trigger).
pub async fn abandon(handler: &dyn WorkHandler, item: &WorkItem) {
    handler
        .give_up(
            item,
            "its processing never finished (the process stopped while processing it)",
        )
        .await;
}

/// How long to wait before delivering a failed item again (attempt counts from 1).
pub fn retry_backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}
