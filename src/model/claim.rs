//! The thread claim, in one place: a thread has at most one active run. A run claims its
//! thread when it is created (`claim`) and gives it back when it ends (`release`); the
//! claim is the thread record's `active_run_id`, changed only under the record's ETag, so
//! two runs can never both hold it. A claim a crash left behind (its run ended, or was
//! never stored) is taken over (`is_live`).

use super::now_ms;
use super::run::RunRecord;
use super::thread::{self, ThreadRecord};
use crate::store::{self, keys, ETag, Store, StoreError, Update};

/// How long a claim may point at a run that is not stored yet (it is being created).
const CLAIM_GRACE_MICROS: u64 = 60_000_000;

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

/// Whether the thread's claim by `active` still holds: its run is stored and not terminal,
/// or is still being created (the run id tells when its creation began).
pub async fn is_live(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    active: &str,
) -> Result<bool, StoreError> {
    let key = keys::run(tenant, thread_id, active);
    Ok(match store::get_json::<RunRecord>(store, &key).await? {
        Some((r, _)) => !r.run.is_terminal(),
        None => crate::ids::created_micros(active)
            .is_some_and(|t| (now_ms() * 1000).saturating_sub(t) <= CLAIM_GRACE_MICROS),
    })
}

/// Claims the thread for `run_id`. A claim left by a crash is taken over: one held by a run
/// that is already terminal, or by a run that was never stored although its creation began
/// more than a minute ago. `known`: the thread as the caller read it, with its ETag (saves
/// a read).
pub async fn claim(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    run_id: &str,
    mut known: Option<(ThreadRecord, ETag)>,
) -> Result<Claim, StoreError> {
    loop {
        let active_run_id = match mark(store, tenant, thread_id, run_id, known.take()).await? {
            Claim::Held { active_run_id } => active_run_id,
            done => return Ok(done),
        };
        let Some((thread, _)) = thread::load(store, tenant, thread_id).await? else {
            return Ok(Claim::Missing);
        };
        // Released meanwhile: claim again.
        let Some(active) = thread.active_run_id else {
            continue;
        };
        if is_live(store, tenant, thread_id, &active).await? {
            return Ok(Claim::Held { active_run_id });
        }
        release(store, tenant, thread_id, &active, None).await?;
        return mark(store, tenant, thread_id, run_id, None).await;
    }
}

/// Marks `run_id` as the thread's active run unless another run is active.
async fn mark(
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

/// Clears the thread's active run if it is still `run_id`. `known`: the thread as the run
/// claimed it (no read when it has not changed since).
pub async fn release(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{new_id, Kind};
    use crate::store::local::LocalStore;
    use crate::store::PutMode;

    const THREAD: &str =
        include_str!("../../tests/fixtures/records/v1/thread_with_active_run.json");
    const LIVE_RUN: &str = include_str!("../../tests/fixtures/records/v1/run_requires_action.json");
    const ENDED_RUN: &str =
        include_str!("../../tests/fixtures/records/v1/run_completed_with_rounds.json");

    async fn put(store: &dyn Store, key: &str, json: &str) {
        let put = store.put(key, json.as_bytes().to_vec().into(), PutMode::Overwrite);
        assert!(put.await.is_ok(), "{key}");
    }

    async fn holder(store: &dyn Store, thread_id: &str) -> Option<String> {
        let found = thread::load(store, "t", thread_id).await.ok().flatten();
        found.and_then(|(t, _)| t.active_run_id)
    }

    #[tokio::test]
    async fn one_run_holds_a_thread_and_a_claim_left_behind_is_taken_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(dir.path()).expect("store");
        let store: &dyn Store = &store;
        let (thread, _) = serde_json::from_str::<ThreadRecord>(THREAD)
            .map(|t| (t.thread.id.clone(), t))
            .expect("fixture");
        let first = serde_json::from_str::<ThreadRecord>(THREAD)
            .ok()
            .and_then(|t| t.active_run_id)
            .expect("fixture has a claim");
        let thread = thread.as_str();
        put(store, &keys::thread("t", thread), THREAD).await;
        let first_run = keys::run("t", thread, &first);
        let (b, c) = (new_id(Kind::Run), new_id(Kind::Run));
        let claim = |run: String| async move { claim(store, "t", thread, &run, None).await };

        // Its run waits for tool outputs: the claim holds.
        put(store, &first_run, LIVE_RUN).await;
        assert!(
            matches!(claim(b.clone()).await, Ok(Claim::Held { active_run_id }) if active_run_id == first)
        );
        // Its run ended without giving the thread back (a crash): taken over.
        put(store, &first_run, ENDED_RUN).await;
        assert!(
            matches!(claim(b.clone()).await, Ok(Claim::Claimed(t, _)) if t.active_run_id == Some(b.clone()))
        );
        // Claiming again is a no-op; a run still being created (not stored yet) holds.
        assert!(matches!(claim(b.clone()).await, Ok(Claim::Claimed(..))));
        assert!(
            matches!(claim(c.clone()).await, Ok(Claim::Held { active_run_id }) if active_run_id == b)
        );
        // Only the holder gives it back.
        assert!(release(store, "t", thread, &c, None).await.is_ok());
        assert_eq!(holder(store, thread).await, Some(b.clone()));
        assert!(release(store, "t", thread, &b, None).await.is_ok());
        assert_eq!(holder(store, thread).await, None);
        // A claim by a run never stored, whose creation began long ago: taken over.
        put(store, &keys::thread("t", thread), THREAD).await;
        assert!(store.delete(&first_run).await.is_ok());
        assert!(matches!(claim(c.clone()).await, Ok(Claim::Claimed(..))));
        assert_eq!(holder(store, thread).await, Some(c));
        // No thread, no claim.
        let missing = claim_missing(store).await;
        assert!(matches!(missing, Ok(Claim::Missing)));
    }

    async fn claim_missing(store: &dyn Store) -> Result<Claim, StoreError> {
        claim(store, "t", &new_id(Kind::Thread), &new_id(Kind::Run), None).await
    }
}
