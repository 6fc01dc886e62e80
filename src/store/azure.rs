//! The Azure Blob Storage backend (also Azurite): one block blob per object in one container.
//!
//! ETags are the blob ETags; `PutMode::IfMatch` sends `If-Match`, `PutMode::Create` sends
//! `If-None-Match: *`, so concurrent writers from any number of instances stay consistent.
//! The container is created on first use.

use super::connection_string::StorageAccount;
use super::{ByteStream, ETag, ListPage, OpCounters, OpCounts, PutMode, Store, StoreError};
use async_trait::async_trait;
use azure_core::request_options::{IfMatchCondition, NextMarker};
use azure_core::{ExponentialRetryOptions, RetryOptions};
use azure_storage_blobs::prelude::{ClientBuilder, ContainerClient};
use bytes::Bytes;
use futures::StreamExt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Uploads are staged in blocks of this size.
const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// One read fetches the whole object (our objects are small JSON documents).
const READ_CHUNK: u64 = 256 * 1024 * 1024;

/// Streamed reads (downloads) ask for ranges of this size, one after the other. Not less:
/// the SDK asks for a CRC64 of ranges under 4 MiB, which Azurite does not give.
const STREAM_RANGE: u64 = 4 * 1024 * 1024;

pub struct AzureBlobStore {
    container: ContainerClient,
    container_ready: AtomicBool,
    counters: OpCounters,
}

/// Longest silence from storage while a call waits for (or reads) its answer. The SDK's
/// transport has none, so storage that accepts connections but does not answer (overloaded,
/// frozen, a network black hole) would hold a request forever; with it the call fails and
/// the request answers 503 (after at most two tries: ~20 s). Azure answers in milliseconds
/// from the same region; a 4 MiB block upload needs more than 3 Mbit/s.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle storage connection is kept for reuse (see `http_client`).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The HTTP client for Azure Storage calls, shared by one app's blob store and queue (one
/// connection pool, one TLS configuration). azure_core 0.21's default transport turns
/// connection reuse off (`pool_max_idle_per_host(0)`, a workaround for an old hyper hang),
/// so every storage call would open a new connection (on Azure: a TCP and a TLS handshake);
/// this one keeps them open between calls. Build one per app, not one per process: hyper's
/// connections belong to the tokio runtime that opened them.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        // Drop idle connections before the server does: Azure's load balancers keep them
        // for minutes, Azurite (Node's default keep-alive) for 5 s. A pooled connection the
        // server already closed fails the request that takes it with an I/O error, and after
        // a burst the pool holds dozens of them: a quiet spell longer than the server's
        // keep-alive made every retry of a request take another dead one, so requests failed
        // in batches with "retry policy expired" (seen in the soak and under the Functions
        // emulator). 4 s is below both.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the storage HTTP client: {e}"))
}

/// The SDK transport over `http`.
pub fn transport(http: &reqwest::Client) -> azure_core::TransportOptions {
    azure_core::TransportOptions::new(Arc::new(http.clone()))
}

/// Retries for calls on a request path: a few quick ones, so a storage outage becomes a 503
/// in seconds instead of hanging the client for the SDK's default minute.
pub fn request_retry() -> RetryOptions {
    RetryOptions::exponential(
        ExponentialRetryOptions::default()
            .initial_delay(Duration::from_millis(100))
            .max_retries(3u32)
            .max_total_elapsed(Duration::from_secs(8))
            .max_delay(Duration::from_secs(2)),
    )
}

fn status_of(e: &azure_core::Error) -> Option<(u16, Option<String>)> {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { status, error_code } => {
            Some((*status as u16, error_code.clone()))
        }
        _ => None,
    }
}

/// Maps an SDK error to ours without letting account names or URLs reach a client.
fn map_error(op: &str, e: azure_core::Error) -> StoreError {
    match status_of(&e) {
        Some((409 | 412, _)) => StoreError::Conflict,
        Some((404, _)) => StoreError::NotFound,
        Some((408 | 429 | 500..=599, code)) => {
            StoreError::Unavailable(format!("{op}: HTTP status with code {code:?}"))
        }
        Some((status, code)) => StoreError::Other(format!("{op}: HTTP {status} {code:?}")),
        None => match e.kind() {
            azure_core::error::ErrorKind::Io => StoreError::Unavailable(format!("{op}: {e}")),
            _ => StoreError::Other(format!("{op}: {e}")),
        },
    }
}

fn is_container_missing(e: &azure_core::Error) -> bool {
    matches!(status_of(e), Some((404, Some(code))) if code == "ContainerNotFound")
}

impl AzureBlobStore {
    /// A store on `container` whose calls go through `http` (see `http_client`).
    pub fn new(
        account: &StorageAccount,
        container: &str,
        retry: RetryOptions,
        http: &reqwest::Client,
    ) -> Result<Self, String> {
        let credentials = account.credentials()?;
        let container = ClientBuilder::with_location(account.blob_location(), credentials)
            .retry(retry)
            .transport(transport(http))
            .container_client(container);
        Ok(AzureBlobStore {
            container,
            container_ready: AtomicBool::new(false),
            counters: OpCounters::default(),
        })
    }

    async fn ensure_container(&self) -> Result<(), StoreError> {
        if self.container_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.container.create().await {
            Ok(_) => {}
            Err(e) if matches!(status_of(&e), Some((409, _))) => {}
            Err(e) => return Err(map_error("create container", e)),
        }
        self.container_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn put_once(&self, key: &str, data: Bytes, mode: &PutMode) -> azure_core::Result<ETag> {
        let blob = self.container.blob_client(key);
        let mut put = blob.put_block_blob(data).content_type("application/json");
        match mode {
            PutMode::Create => put = put.if_match(IfMatchCondition::NotMatch("*".into())),
            PutMode::IfMatch(etag) => put = put.if_match(IfMatchCondition::Match(etag.0.clone())),
            PutMode::Overwrite => {}
        }
        Ok(ETag(put.await?.etag))
    }
}

#[async_trait]
impl Store for AzureBlobStore {
    async fn get(&self, key: &str) -> Result<Option<(Bytes, ETag)>, StoreError> {
        self.counters.read();
        let mut stream = self
            .container
            .blob_client(key)
            .get()
            .chunk_size(READ_CHUNK)
            .into_stream();
        let mut data = Vec::new();
        let mut etag: Option<String> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) if matches!(status_of(&e), Some((404, _))) => return Ok(None),
                Err(e) => return Err(map_error("get", e)),
            };
            let chunk_etag = chunk.blob.properties.etag.to_string();
            if etag.as_ref().is_some_and(|first| *first != chunk_etag) {
                return Err(StoreError::Unavailable(format!("{key} changed while read")));
            }
            etag = Some(chunk_etag);
            let bytes = chunk
                .data
                .collect()
                .await
                .map_err(|e| map_error("get body", e))?;
            data.extend_from_slice(&bytes);
        }
        Ok(etag.map(|etag| (Bytes::from(data), ETag(etag))))
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag, StoreError> {
        self.counters.write();
        self.ensure_container().await?;
        match self.put_once(key, data.clone(), &mode).await {
            Ok(etag) => Ok(etag),
            Err(e) if is_container_missing(&e) => {
                // Deleted behind our back: create it again and retry once.
                self.container_ready.store(false, Ordering::Relaxed);
                self.ensure_container().await?;
                self.put_once(key, data, &mode)
                    .await
                    .map_err(|e| map_error("put", e))
            }
            Err(e) => match (map_error("put", e), &mode) {
                // If-Match on a missing blob answers 404 (Azure) or 412 (Azurite): not found.
                (StoreError::NotFound, PutMode::IfMatch(_)) => Err(StoreError::NotFound),
                (other, _) => Err(other),
            },
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        marker: Option<String>,
        max: usize,
    ) -> Result<ListPage, StoreError> {
        self.counters.list();
        let max = NonZeroU32::new(max.clamp(1, 5000) as u32).unwrap_or(NonZeroU32::MIN);
        let mut request = self
            .container
            .list_blobs()
            .prefix(prefix.to_string())
            .max_results(max);
        if let Some(marker) = marker {
            request = request.marker(NextMarker::new(marker));
        }
        let mut stream = request.into_stream();
        match stream.next().await {
            None => Ok(ListPage::default()),
            Some(Ok(page)) => Ok(ListPage {
                keys: page.blobs.blobs().map(|b| b.name.clone()).collect(),
                next: page.next_marker.map(|m| m.as_str().to_string()),
            }),
            Some(Err(e)) if is_container_missing(&e) => Ok(ListPage::default()),
            Some(Err(e)) => Err(map_error("list", e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.counters.delete();
        match self.container.blob_client(key).delete().await {
            Ok(_) => Ok(true),
            Err(e) if matches!(status_of(&e), Some((404, _))) => Ok(false),
            Err(e) => Err(map_error("delete", e)),
        }
    }

    async fn put_stream(&self, key: &str, mut chunks: ByteStream<'_>) -> Result<u64, StoreError> {
        use azure_storage_blobs::blob::{BlobBlockType, BlockList};
        use azure_storage_blobs::prelude::BlockId;
        self.ensure_container().await?;
        let blob = self.container.blob_client(key);
        let mut blocks: Vec<BlobBlockType> = Vec::new();
        let mut pending: Vec<u8> = Vec::with_capacity(BLOCK_SIZE);
        let mut size = 0u64;
        // Stage blocks of BLOCK_SIZE as they fill, then commit the list: at most one block
        // is held in memory.
        loop {
            let next = chunks.next().await.transpose()?;
            if let Some(chunk) = &next {
                size += chunk.len() as u64;
                pending.extend_from_slice(chunk);
            }
            let last = next.is_none();
            while pending.len() >= BLOCK_SIZE || (last && !pending.is_empty()) {
                let take = pending.len().min(BLOCK_SIZE);
                let data: Vec<u8> = pending.drain(..take).collect();
                let id = BlockId::new(Bytes::from(format!("block-{:08}", blocks.len())));
                self.counters.write();
                blob.put_block(id.clone(), data)
                    .await
                    .map_err(|e| map_error("put block", e))?;
                blocks.push(BlobBlockType::Uncommitted(id));
            }
            if last {
                break;
            }
        }
        self.counters.write();
        if blocks.is_empty() {
            blob.put_block_blob(Bytes::new())
                .await
                .map_err(|e| map_error("put", e))?;
        } else {
            blob.put_block_list(BlockList { blocks })
                .await
                .map_err(|e| map_error("put block list", e))?;
        }
        Ok(size)
    }

    async fn get_stream(
        &self,
        key: &str,
    ) -> Result<Option<(u64, ByteStream<'static>)>, StoreError> {
        use azure_core::prelude::Range;
        self.counters.read();
        let blob = self.container.blob_client(key);
        let properties = match blob.get_properties().await {
            Ok(p) => p.blob.properties,
            Err(e) if matches!(status_of(&e), Some((404, _))) => return Ok(None),
            Err(e) => return Err(map_error("get properties", e)),
        };
        let size = properties.content_length;
        let etag = properties.etag.to_string();
        // Each range is asked for when the one before has been read, under the ETag seen
        // first (a blob replaced meanwhile fails the stream with 412, it is never mixed).
        // A range's body streams as it arrives; one cut short is continued where it ended.
        struct Reading {
            blob: azure_storage_blobs::prelude::BlobClient,
            etag: String,
            at: u64,
            size: u64,
            body: Option<azure_core::ResponseBody>,
            got_some: bool,
        }
        let start = Reading {
            blob,
            etag,
            at: 0,
            size,
            body: None,
            got_some: false,
        };
        let chunks = futures::stream::try_unfold(start, |mut r| async move {
            loop {
                if let Some(body) = r.body.as_mut() {
                    match body.next().await {
                        Some(Ok(bytes)) if bytes.is_empty() => continue,
                        Some(Ok(bytes)) => {
                            r.at += bytes.len() as u64;
                            r.got_some = true;
                            return Ok(Some((bytes, r)));
                        }
                        Some(Err(e)) => return Err(map_error("get range body", e)),
                        None if !r.got_some => {
                            return Err(StoreError::Other("an empty range answer".into()))
                        }
                        None => r.body = None,
                    }
                }
                if r.at >= r.size {
                    return Ok(None);
                }
                let range = Range::new(r.at, r.at + STREAM_RANGE);
                let answer = r
                    .blob
                    .get()
                    .range(range)
                    .chunk_size(STREAM_RANGE)
                    .if_match(IfMatchCondition::Match(r.etag.clone()))
                    .into_stream()
                    .next()
                    .await;
                match answer {
                    Some(Ok(part)) => {
                        r.body = Some(part.data);
                        r.got_some = false;
                    }
                    Some(Err(e)) => return Err(map_error("get range", e)),
                    None => return Err(StoreError::Other("no answer to a range".into())),
                }
            }
        });
        Ok(Some((size, Box::pin(chunks))))
    }

    fn counts(&self) -> OpCounts {
        self.counters.snapshot()
    }

    fn name(&self) -> &'static str {
        "azure"
    }
}
