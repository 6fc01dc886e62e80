//! The events: OpenAI's envelope (`{"id": "evt_…", "type", "created_at", "data": {"id", …},
//! "object": "event"}`), their types, and their ids, derived from the state change they
//! report so that every emission of one change carries the same id (and `webhook-id`).

use crate::ids::{derived_id, Kind};
use crate::model::run::{RunRecord, RunStatus};
use crate::model::vector_store::{FileBatchStatus, VectorStoreFileStatus};
use serde::Serialize;
use serde_json::{json, Value};

/// One event as it is sent.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub created_at: i64,
    pub data: Value,
    pub object: &'static str,
}

/// The `webhook-id` header of an event: the same on every attempt, so receivers dedupe.
pub fn webhook_id(event_id: &str) -> String {
    format!("wh_{}", event_id.strip_prefix("evt_").unwrap_or(event_id))
}

/// A 32-bit FNV-1a hash, to fold a tenant (and a store) into a derived id.
fn fold(text: &str) -> u32 {
    let mut hash: u32 = 0x811c9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x01000193);
    }
    hash
}

/// The id of the event about `parent` reaching state `n`, in `scope` (tenant, store).
fn event_id(parent: &str, scope: &str, n: u32) -> String {
    derived_id(Kind::Event, parent, n ^ (fold(scope) & 0x7fff_0000))
}

/// The event type of a run's status, for the statuses that have one, with a number of its
/// own (for the event id).
pub fn run_event_type(status: RunStatus) -> Option<(&'static str, u32)> {
    Some(match status {
        RunStatus::RequiresAction => ("thread.run.requires_action", 1),
        RunStatus::Completed => ("thread.run.completed", 2),
        RunStatus::Failed => ("thread.run.failed", 3),
        RunStatus::Cancelled => ("thread.run.cancelled", 4),
        RunStatus::Expired => ("thread.run.expired", 5),
        RunStatus::Incomplete => ("thread.run.incomplete", 6),
        _ => return None,
    })
}

/// The event type of a background response's status (OpenAI sends these for background
/// responses only), with its number.
pub fn response_event_type(status: RunStatus) -> Option<(&'static str, u32)> {
    Some(match status {
        RunStatus::Completed | RunStatus::RequiresAction => ("response.completed", 2),
        RunStatus::Failed | RunStatus::Expired => ("response.failed", 3),
        RunStatus::Cancelled => ("response.cancelled", 4),
        RunStatus::Incomplete => ("response.incomplete", 6),
        _ => return None,
    })
}

/// The event of a run's stored status, if the status has one. Its id comes from the tenant,
/// the run, the run's turn counter and the status: the change stored, not who reports it.
/// A response's run has the response events (`data` is `{"id"}`), if it is a background one.
pub fn run_event(tenant: &str, record: &RunRecord) -> Option<Event> {
    let run = &record.run;
    if let Some(face) = &record.response {
        let (kind, status_code) = response_event_type(run.status).filter(|_| face.background)?;
        return Some(Event {
            id: event_id(&run.id, tenant, (record.seq.min(0x0fff) << 3) | status_code),
            kind,
            created_at: (record.updated_ms / 1000) as i64,
            data: json!({ "id": run.id }),
            object: "event",
        });
    }
    let (kind, status_code) = run_event_type(run.status)?;
    Some(Event {
        id: event_id(&run.id, tenant, (record.seq.min(0x0fff) << 3) | status_code),
        kind,
        // When the change was stored: the same for every report of it.
        created_at: (record.updated_ms / 1000) as i64,
        data: json!({"id": run.id, "thread_id": run.thread_id, "status": run.status}),
        object: "event",
    })
}

/// The event of a vector-store file that ended `status`. `attached_at` (the vector-store
/// file's `created_at`) is part of its id: a file detached and attached again is a new
/// change, whose event its first attachment's marker must not hold back.
pub fn file_event(
    tenant: &str,
    vector_store_id: &str,
    (file_id, attached_at): (&str, i64),
    status: VectorStoreFileStatus,
    now: i64,
) -> Option<Event> {
    let (kind, n) = match status {
        VectorStoreFileStatus::Completed => ("vector_store.file.completed", 1),
        VectorStoreFileStatus::Failed => ("vector_store.file.failed", 2),
        _ => return None,
    };
    Some(Event {
        id: event_id(
            &format!("{file_id}.{attached_at}"),
            &format!("{tenant}/{vector_store_id}"),
            n,
        ),
        kind,
        created_at: now,
        data: json!({"id": file_id, "vector_store_id": vector_store_id}),
        object: "event",
    })
}

/// The event of a file batch whose files all ended.
pub fn batch_event(
    tenant: &str,
    vector_store_id: &str,
    batch_id: &str,
    status: FileBatchStatus,
    now: i64,
) -> Option<Event> {
    let (kind, n) = match status {
        FileBatchStatus::Completed => ("vector_store.file_batch.completed", 1),
        FileBatchStatus::Failed => ("vector_store.file_batch.failed", 2),
        _ => return None,
    };
    Some(Event {
        id: event_id(batch_id, tenant, n),
        kind,
        created_at: now,
        data: json!({"id": batch_id, "vector_store_id": vector_store_id}),
        object: "event",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{is_valid, new_id};

    #[test]
    fn one_change_has_one_id_and_others_another() {
        let run = new_id(Kind::Run);
        let a = event_id(&run, "tenanta", (3 << 3) | 2);
        assert!(is_valid(Kind::Event, &a), "{a}");
        assert_eq!(a, event_id(&run, "tenanta", (3 << 3) | 2));
        assert_ne!(a, event_id(&run, "tenanta", (3 << 3) | 3));
        assert_ne!(a, event_id(&run, "tenanta", (4 << 3) | 2));
        assert_ne!(a, event_id(&run, "tenantb", (3 << 3) | 2));
        assert_eq!(webhook_id("evt_abc"), "wh_abc");
    }

    #[test]
    fn a_file_attached_again_is_another_event() {
        let file = new_id(Kind::File);
        let event = |attached_at| {
            file_event(
                "t",
                "vs_abc",
                (&file, attached_at),
                VectorStoreFileStatus::Completed,
                1,
            )
            .map(|e| e.id)
        };
        assert_eq!(event(100), event(100));
        assert_ne!(event(100), event(101));
    }
}
