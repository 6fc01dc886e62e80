//! The thread record: the thread object plus its claim (`active_run_id`).

use super::values::{Metadata, ToolResources};
use crate::ids::{self, Kind};
use crate::store::{self, keys, ETag, Store, StoreError, Update};
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
    if !ids::is_valid(Kind::Thread, id) {
        return Ok(None);
    }
    store::get_json(store, &keys::thread(tenant, id)).await
}

/// What claiming a thread for a run found.
#[derive(Debug)]
pub enum Claim {
    /// The thread is the run's (just now, or already): as claimed, with its ETag (the run
    /// keeps it to release the claim without a read).
    Claimed(ThreadRecord, ETag),
    /// Another run is active on the thread.
    Held { active_run_id: String },
    /// There is no such thread.
    Missing,
}

/// Marks `run_id` as the thread's active run unless another run is active: the one place
/// that takes the claim (one active run per thread). `known`: the thread as the caller read
/// it, with its ETag (saves a read).
pub async fn claim_active_run(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    run_id: &str,
    known: Option<(ThreadRecord, ETag)>,
) -> Result<Claim, StoreError> {
    let key = keys::thread(tenant, thread_id);
    let found = store::update_json_from(store, &key, known, |mut t: ThreadRecord| {
        Ok::<_, StoreError>(match &t.active_run_id {
            Some(active) if active != run_id => Update::Keep(Err(active.clone())),
            Some(_) => Update::Keep(Ok(t)),
            None => {
                t.active_run_id = Some(run_id.to_string());
                Update::Write(t.clone(), Ok(t))
            }
        })
    })
    .await?;
    Ok(match found {
        Some((Ok(thread), etag)) => Claim::Claimed(thread, etag),
        Some((Err(active_run_id), _)) => Claim::Held { active_run_id },
        None => Claim::Missing,
    })
}

/// Clears the thread's active run if it is still `run_id`: the one place that gives the
/// claim back. `known`: the thread as the run claimed it (no read when it has not changed
/// since).
pub async fn release_active_run(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    run_id: &str,
    known: Option<(ThreadRecord, ETag)>,
) -> Result<(), StoreError> {
    let key = keys::thread(tenant, thread_id);
    store::update_json_from(store, &key, known, |mut t: ThreadRecord| {
        if t.active_run_id.as_deref() == Some(run_id) {
            t.active_run_id = None;
            Ok::<_, StoreError>(Update::Write(t, ()))
        } else {
            Ok(Update::Keep(()))
        }
    })
    .await?;
    Ok(())
}
