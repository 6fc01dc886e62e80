//! The work queue: small items that name a run turn (or a file to ingest, or a webhook event
//! to post), and the one policy
//! by which every consumer delivers them.
//!
//! Delivery is at least once (an item may come twice, or late), so items carry what the
//! engine expects (`seq`, the run's turn counter) and the engine ignores an item whose run
//! has moved on.
//! - `delivery`: the policy every consumer shares (`Policy::settle`): attempts, give-up,
//!   deferral of a tenant over its share, retry back-off, what becomes of the message, and
//!   its release at shutdown;
//! - `local`: in-process, persisted as files in the data directory (the embedded default),
//!   with its consumer;
//! - `azure`: an Azure Storage Queue (`work`), message text base64-encoded as the Functions
//!   queue trigger expects, with a poller for standalone mode;
//! - `fair`: slots shared fairly between tenants.

pub mod azure;
pub mod delivery;
pub mod fair;
pub mod local;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// One unit of work, of one of three kinds, each with only the fields it needs. Small (ids
/// only) so it always fits a queue message (64 KiB).
///
/// On the wire it is one flat JSON object tagged by `kind` (`{"kind": "step", "tenant": …,
/// "thread_id": …, "run_id": …, "seq": …}`), as it was when this was one struct with every
/// field: messages written before are read (fields a kind does not have are ignored), and
/// what is written now reads the same with the old struct (its missing fields defaulted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkItem {
    /// Take the run's next turn (an LLM call and its writes).
    Step(RunTurn),
    /// Expire the run if it is still waiting for tool outputs of turn `seq`.
    Expire(RunTurn),
    /// Read, chunk and embed a file added to a vector store.
    Ingest(FileIngest),
    /// Post an event to its tenant's webhook endpoint (one attempt).
    Webhook(WebhookPost),
}

/// One attempt at delivering a webhook event: the event as it is sent, byte for byte on
/// every attempt (`body`), and what the retry schedule needs. The endpoint, its secret and
/// the signature come from the settings at each attempt, never from the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPost {
    pub tenant: String,
    /// The event's `id` (`evt_…`); the `webhook-id` header is derived from it.
    pub event_id: String,
    /// The event's `type`, for the log.
    pub event_type: String,
    /// The event's `created_at` (Unix seconds): attempts stop `WEBHOOK_RETRY_HOURS` after.
    pub created_at: i64,
    /// The event's JSON text, as signed and sent.
    pub body: String,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

/// A run at one turn: what a `step` or `expire` item is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTurn {
    pub tenant: String,
    pub thread_id: String,
    pub run_id: String,
    /// The run's turn counter when the item was made.
    #[serde(default)]
    pub seq: u32,
}

/// A file to ingest into a vector store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIngest {
    pub tenant: String,
    pub vector_store_id: String,
    pub file_id: String,
}

impl WorkItem {
    pub fn tenant(&self) -> &str {
        match self {
            WorkItem::Step(turn) | WorkItem::Expire(turn) => &turn.tenant,
            WorkItem::Ingest(file) => &file.tenant,
            WorkItem::Webhook(post) => &post.tenant,
        }
    }

    /// A webhook delivery: it has slots of its own, apart from the runs' (a slow receiver
    /// must not hold up runs).
    pub fn is_webhook(&self) -> bool {
        matches!(self, WorkItem::Webhook(_))
    }

    /// What the item is about, for the log.
    pub fn describe(&self) -> String {
        match self {
            WorkItem::Ingest(f) => format!(
                "ingest {} into {} ({})",
                f.file_id, f.vector_store_id, f.tenant
            ),
            WorkItem::Step(t) => format!("step {} turn {} ({})", t.run_id, t.seq, t.tenant),
            WorkItem::Expire(t) => format!("expire {} turn {} ({})", t.run_id, t.seq, t.tenant),
            WorkItem::Webhook(w) => format!(
                "webhook {} {} attempt {} ({})",
                w.event_type, w.event_id, w.attempt, w.tenant
            ),
        }
    }
}

/// A work item as a queue holds it: the item and, for a copy put back to the queue, the
/// deliveries made before the copy (an Azure queue's dequeue count starts again with a
/// copy: see `delivery::Policy::settle`). Serialised as the item's own JSON object with
/// `prior_attempts` beside its fields, when there were any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub item: WorkItem,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Queued {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl From<WorkItem> for Queued {
    fn from(item: WorkItem) -> Self {
        Queued {
            item,
            prior_attempts: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("work queue: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Adds a message, to be delivered after `delay`.
    async fn put(&self, message: &Queued, delay: Duration) -> Result<(), QueueError>;

    /// Adds an item, to be delivered after `delay`.
    async fn enqueue(&self, item: &WorkItem, delay: Duration) -> Result<(), QueueError> {
        self.put(&Queued::from(item.clone()), delay).await
    }
}

pub type DynQueue = Arc<dyn WorkQueue>;

/// What processing one item came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or nothing to do): remove the item.
    Done,
    /// A transient failure: deliver the item again later.
    Retry(String),
    /// Done with this delivery, and `item` (its next step: a webhook's next attempt) is
    /// to be delivered after the delay, as a fresh message whose deliveries count anew.
    Later(Box<WorkItem>, Duration),
}

/// The consumer side: the engine.
#[async_trait]
pub trait WorkHandler: Send + Sync + 'static {
    /// Processes one delivery; `attempt` counts from 1.
    async fn process(&self, item: &WorkItem, attempt: u32) -> Outcome;
    /// Called when an item failed its last attempt: end its run cleanly.
    async fn give_up(&self, item: &WorkItem, reason: &str);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(seq: u32) -> RunTurn {
        RunTurn {
            tenant: "t".into(),
            thread_id: "thread_x".into(),
            run_id: "run_x".into(),
            seq,
        }
    }

    /// Messages as the code before the enum wrote them (one struct with every field; an
    /// ingest item carried empty run fields), as they may still sit in a queue after an
    /// upgrade: each is read as its kind.
    #[test]
    fn messages_written_before_the_enum_are_read() {
        let cases = [
            (
                r#"{"kind":"step","tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":3}"#,
                WorkItem::Step(turn(3)),
                0,
            ),
            (
                r#"{"kind":"expire","tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":1}"#,
                WorkItem::Expire(turn(1)),
                0,
            ),
            (
                r#"{"kind":"step","tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":0,"prior_attempts":2}"#,
                WorkItem::Step(turn(0)),
                2,
            ),
            (
                r#"{"kind":"ingest","tenant":"t","thread_id":"","run_id":"","seq":0,"vector_store_id":"vs_x","file_id":"file-x"}"#,
                WorkItem::Ingest(FileIngest {
                    tenant: "t".into(),
                    vector_store_id: "vs_x".into(),
                    file_id: "file-x".into(),
                }),
                0,
            ),
            (
                r#"{"kind":"ingest","tenant":"t","thread_id":"","run_id":"","seq":0,"vector_store_id":"vs_x","file_id":"file-x","prior_attempts":4}"#,
                WorkItem::Ingest(FileIngest {
                    tenant: "t".into(),
                    vector_store_id: "vs_x".into(),
                    file_id: "file-x".into(),
                }),
                4,
            ),
        ];
        for (text, item, prior_attempts) in cases {
            let queued: Queued = serde_json::from_str(text).expect(text);
            assert_eq!(
                queued,
                Queued {
                    item,
                    prior_attempts
                },
                "{text}"
            );
        }
        // A kind nobody knows, or a run item without its run, is not a work item.
        for text in [
            r#"{"kind":"compact","tenant":"t"}"#,
            r#"{"kind":"step","tenant":"t"}"#,
            r#"{"tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":0}"#,
        ] {
            assert!(serde_json::from_str::<Queued>(text).is_err(), "{text}");
        }
    }

    /// The work item as the code before the enum read it, to check that what is written
    /// now can still be read by an instance not yet upgraded (a rolling upgrade).
    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct OldWorkItem {
        kind: String,
        tenant: String,
        #[serde(default)]
        thread_id: String,
        #[serde(default)]
        run_id: String,
        #[serde(default)]
        seq: u32,
        #[serde(default)]
        vector_store_id: String,
        #[serde(default)]
        file_id: String,
        #[serde(default)]
        prior_attempts: u32,
    }

    #[test]
    fn messages_written_now_read_as_before() {
        let step = Queued::from(WorkItem::Step(turn(3)));
        // Byte for byte what the struct wrote.
        assert_eq!(
            step.to_json(),
            r#"{"kind":"step","tenant":"t","thread_id":"thread_x","run_id":"run_x","seq":3}"#
        );
        let old: OldWorkItem = serde_json::from_str(&step.to_json()).unwrap();
        assert_eq!(
            old,
            OldWorkItem {
                kind: "step".into(),
                tenant: "t".into(),
                thread_id: "thread_x".into(),
                run_id: "run_x".into(),
                seq: 3,
                ..OldWorkItem::default()
            }
        );
        let copy = Queued {
            item: WorkItem::Expire(turn(2)),
            prior_attempts: 3,
        };
        let old: OldWorkItem = serde_json::from_str(&copy.to_json()).unwrap();
        assert_eq!(
            (old.kind.as_str(), old.seq, old.prior_attempts),
            ("expire", 2, 3)
        );
        let ingest = Queued::from(WorkItem::Ingest(FileIngest {
            tenant: "t".into(),
            vector_store_id: "vs_x".into(),
            file_id: "file-x".into(),
        }));
        assert_eq!(
            ingest.to_json(),
            r#"{"kind":"ingest","tenant":"t","vector_store_id":"vs_x","file_id":"file-x"}"#
        );
        let old: OldWorkItem = serde_json::from_str(&ingest.to_json()).unwrap();
        assert_eq!(
            (
                old.kind.as_str(),
                old.vector_store_id.as_str(),
                old.file_id.as_str()
            ),
            ("ingest", "vs_x", "file-x")
        );
        for queued in [step, copy, ingest] {
            assert_eq!(
                serde_json::from_str::<Queued>(&queued.to_json()).unwrap(),
                queued
            );
        }
    }

    /// A webhook attempt is an item of its own kind, its fields beside `kind` as the other
    /// kinds' are; what the other kinds write is unchanged (above).
    #[test]
    fn webhook_items_round_trip() {
        let post = Queued::from(WorkItem::Webhook(WebhookPost {
            tenant: "t".into(),
            event_id: "evt_x".into(),
            event_type: "thread.run.completed".into(),
            created_at: 1_750_000_000,
            body: r#"{"id":"evt_x"}"#.into(),
            attempt: 2,
        }));
        let text = post.to_json();
        assert!(
            text.starts_with(r#"{"kind":"webhook","tenant":"t","event_id":"evt_x""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Queued>(&text).unwrap(), post);
        assert!(post.item.is_webhook());
        assert_eq!(post.item.tenant(), "t");
    }
}
