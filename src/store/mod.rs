//! The object store: named byte blobs with ETags, conditional writes and prefix listing.
//!
//! Everything the service keeps lives in one of these. Keys are `/`-separated paths built
//! only from validated ids and fixed words (see `keys`), so no client string ever becomes a
//! path by itself. Two backends:
//! - `local`: a directory on disk (the embedded default), atomic writes by rename;
//! - `azure`: Azure Blob Storage (or Azurite) through `azure_storage_blobs`;
//!   `connection_string`: Azure Storage connection strings (Azurite's too) read into what
//!   the clients need;
//! - `keys`: the key of every object; `schema`: the schema version of JSON documents.
//!
//! Every update is conditional (`PutMode::IfMatch`) or create-only (`PutMode::Create`); the
//! `update_json` helper re-reads and retries on a lost race, so no change is ever lost.
//! JSON documents carry a schema version and are upgraded as they are read (`schema`).

pub mod azure;
pub mod connection_string;
pub mod keys;
pub mod local;
pub mod schema;

use async_trait::async_trait;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An opaque version tag of a stored object, returned by reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(pub String);

/// How a write treats an existing object.
#[derive(Debug, Clone)]
pub enum PutMode {
    /// Only if no object has the key (If-None-Match: *); otherwise `StoreError::Conflict`.
    Create,
    /// Only if the object still has this ETag (If-Match); otherwise `StoreError::Conflict`.
    IfMatch(ETag),
    /// Unconditionally. Only for objects a single writer owns (derived ids, idempotent steps).
    Overwrite,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the object exists (Create) or changed (IfMatch).
    #[error("precondition failed")]
    Conflict,
    /// The object to update is gone.
    #[error("not found")]
    NotFound,
    /// The backend cannot be reached or is overloaded; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a bug, a corrupt object, a misconfiguration).
    #[error("storage error: {0}")]
    Other(String),
}

/// One page of a prefix listing: keys in ascending byte order, and where to continue.
#[derive(Debug, Default)]
pub struct ListPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// Counts of backend operations, for the benchmarks' cost figures.
#[derive(Debug, Default)]
pub struct OpCounters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OpCounts {
    pub reads: u64,
    pub writes: u64,
    pub lists: u64,
    pub deletes: u64,
}

impl OpCounters {
    pub fn snapshot(&self) -> OpCounts {
        OpCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
        }
    }
    pub(crate) fn read(&self) {
        self.read_many(1);
    }
    pub(crate) fn read_many(&self, n: usize) {
        self.reads.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn list(&self) {
        self.lists.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn delete(&self) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The object and its ETag, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<(Bytes, ETag)>, StoreError>;
    /// Several objects, in the order of `keys` (`None` for one that does not exist); one
    /// read each. The default makes the gets concurrently; a backend that can batch them
    /// overrides it (the local store reads them all in one blocking task).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<(Bytes, ETag)>>, StoreError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        // Collected first: a lazily mapped iterator here makes the future's lifetimes too
        // general for the compiler to prove it `Send`.
        let gets: Vec<_> = keys.iter().map(|key| self.get(key)).collect();
        stream::iter(gets)
            .buffered(GET_MANY_CONCURRENCY)
            .try_collect()
            .await
    }
    /// Writes the object under `mode`; returns the new ETag.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag, StoreError>;
    /// Keys under `prefix` in ascending order, at most `max` of them, from `marker` on.
    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<String>,
        max: usize,
    ) -> Result<ListPage, StoreError>;
    /// Deletes the object; `Ok(false)` when there was none.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Writes a large object from a stream of chunks without holding it whole in memory
    /// (uploaded files), replacing any object of that name; returns its size. An error from
    /// the stream aborts the write and is returned.
    async fn put_stream(&self, key: &str, chunks: ByteStream<'_>) -> Result<u64, StoreError>;
    /// Reads a large object as a stream of chunks, each read when the one before has been
    /// taken (file downloads): memory per reader stays a chunk or two whatever the size.
    /// Its size and the chunks, or `None` when there is no object. The chunks are all of one
    /// version: an object replaced meanwhile ends the stream with an error.
    async fn get_stream(&self, key: &str)
        -> Result<Option<(u64, ByteStream<'static>)>, StoreError>;
    /// Operation counts since start.
    fn counts(&self) -> OpCounts;
    /// A short name for logs ("local", "azure").
    fn name(&self) -> &'static str;
}

/// A stream of byte chunks (an upload on its way into the store, a download out of it).
pub type ByteStream<'a> = futures::stream::BoxStream<'a, Result<Bytes, StoreError>>;

/// The shared handle every layer holds.
pub type DynStore = Arc<dyn Store>;

/// How many gets the default `get_many` has in flight at once.
const GET_MANY_CONCURRENCY: usize = 16;

/// How many keys to ask for per listing call (Azure's maximum page size).
const LIST_PAGE: usize = 5000;

/// All keys under `prefix`, ascending.
pub async fn list_all(store: &dyn Store, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    let mut marker = None;
    loop {
        let page = store.list_page(prefix, marker, LIST_PAGE).await?;
        keys.extend(page.keys);
        match page.next {
            Some(next) => marker = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Deletes every object under `prefix`; returns how many were deleted.
pub async fn delete_prefix(store: &DynStore, prefix: &str) -> Result<usize, StoreError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let keys = list_all(store.as_ref(), prefix).await?;
    let deletes: Vec<_> = keys
        .into_iter()
        .map(|key| {
            let store = store.clone();
            async move { store.delete(&key).await }
        })
        .collect();
    let deleted: Vec<bool> = stream::iter(deletes)
        .buffer_unordered(16)
        .try_collect()
        .await?;
    Ok(deleted.into_iter().filter(|d| *d).count())
}

/// Reads and parses a JSON object.
pub async fn get_json<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<(T, ETag)>, StoreError> {
    match store.get(key).await? {
        None => Ok(None),
        Some((bytes, etag)) => Ok(Some((parse_json(key, &bytes)?, etag))),
    }
}

/// Reads the objects under `prefix` named by `ids` (each the last key segment), in order,
/// with one `get_many` (one blocking task on the local store, concurrent gets on Azure).
/// Objects deleted meanwhile are left out.
pub async fn read_all<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
    ids: &[String],
) -> Result<Vec<T>, StoreError> {
    let keys: Vec<String> = ids.iter().map(|id| format!("{prefix}{id}")).collect();
    let found = store.get_many(&keys).await?;
    let mut out = Vec::with_capacity(ids.len());
    for (key, object) in keys.iter().zip(found) {
        if let Some((bytes, _)) = object {
            out.push(parse_json(key, &bytes)?);
        }
    }
    Ok(out)
}

/// Parses a stored JSON object read from `key`, upgraded to the current schema version
/// (`schema`: an older document is upgraded, a newer one refused).
pub fn parse_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Other(format!("corrupt object {key}: {e}"));
    let document = schema::upgrade(key, serde_json::from_slice(bytes).map_err(corrupt)?)?;
    serde_json::from_value(document).map_err(corrupt)
}

/// A value serialised as it is stored: its JSON with the current schema version.
pub fn to_stored_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(schema::stamp(bytes))
}

/// Serialises and writes a JSON object.
pub async fn put_json<T: Serialize>(
    store: &dyn Store,
    key: &str,
    value: &T,
    mode: PutMode,
) -> Result<ETag, StoreError> {
    store
        .put(key, Bytes::from(to_stored_json(value)?), mode)
        .await
}

/// What an update closure decides.
pub enum Update<T, R> {
    /// Write this new value, then return `R`.
    Write(T, R),
    /// Leave the object as it is and return `R`.
    Keep(R),
}

/// How often a conditional update re-reads after losing a race before it gives up.
const UPDATE_ATTEMPTS: usize = 64;

/// Read-modify-write under the object's ETag, retried on a lost race. `change` sees the
/// current value each time (so it must be a pure function of it) and may return an error to
/// abort. `Ok(None)` when the object does not exist.
pub async fn update_json<T, R, E, F>(
    store: &dyn Store,
    key: &str,
    change: F,
) -> Result<Option<R>, E>
where
    T: Serialize + DeserializeOwned,
    E: From<StoreError>,
    F: FnMut(T) -> Result<Update<T, R>, E>,
{
    Ok(update_json_from(store, key, None, change)
        .await?
        .map(|(result, _)| result))
}

/// `update_json` that starts from a value and its ETag the caller holds already (one it just
/// read or wrote), so the usual case is one write and no read; the object is re-read only
/// when that write loses (the value changed meanwhile). A `Keep` decided on `known` is as
/// fresh as `known`. Also returns the object's ETag after the update (unchanged when the
/// change kept it), so a later update can start from it.
pub async fn update_json_from<T, R, E, F>(
    store: &dyn Store,
    key: &str,
    mut known: Option<(T, ETag)>,
    mut change: F,
) -> Result<Option<(R, ETag)>, E>
where
    T: Serialize + DeserializeOwned,
    E: From<StoreError>,
    F: FnMut(T) -> Result<Update<T, R>, E>,
{
    for attempt in 0..UPDATE_ATTEMPTS {
        let from_known = known.is_some();
        let (current, etag) = match known.take() {
            Some(k) => k,
            None => match get_json::<T>(store, key).await? {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        match change(current)? {
            Update::Keep(result) => return Ok(Some((result, etag))),
            Update::Write(next, result) => {
                match put_json(store, key, &next, PutMode::IfMatch(etag)).await {
                    Ok(new_etag) => return Ok(Some((result, new_etag))),
                    Err(StoreError::Conflict) if from_known => {
                        // The known value was already stale: re-read at once.
                    }
                    Err(StoreError::Conflict) => {
                        // Someone else wrote in between: back off a little and re-read.
                        let jitter = rand::random::<u64>() % (2 + attempt as u64 * 2);
                        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    }
                    Err(StoreError::NotFound) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(StoreError::Other(format!("update of {key} kept conflicting")).into())
}
