//! Ingestion of one file into one vector store (a work item of kind `ingest`): read the
//! file, extract its text, chunk it, embed the chunks, store the chunk set, and mark the
//! vector-store file `completed` (or `failed` with `last_error`). Idempotent: a file that
//! is no longer `in_progress` (done, failed, cancelled, detached) is left alone, and the
//! chunk set has a fixed name, so a repeated delivery overwrites it.
//!
//! The file is untrusted: its text is extracted in a child process with limits
//! (`extractor`), and tokenized off the async workers in bounded memory (`crate::tokens`),
//! both under one of the tenant-fair ingestion slots (`Retrieval::ingest_slots`); a file
//! beyond `INGEST_MAX_TEXT_MB` or `INGEST_MAX_TOKENS` fails.

use super::chunk::chunk;
use super::extract::ExtractError;
use super::extractor::extract_isolated;
use super::index::ChunkSet;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::llm::LlmError;
use crate::model::file;
use crate::model::vector_store::{self, VectorStoreFileRecord, VectorStoreFileStatus};
use crate::queue::FileIngest;
use crate::store::{self, keys, PutMode, Update};
use futures::StreamExt;
use serde_json::json;

/// Why an ingestion did not finish.
pub enum IngestStop {
    /// Transient (storage, the embeddings endpoint): deliver the item again.
    Retry(String),
}

impl From<ApiError> for IngestStop {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Internal(cause) => IngestStop::Retry(cause),
            other => IngestStop::Retry(other.to_string()),
        }
    }
}

impl From<store::StoreError> for IngestStop {
    fn from(e: store::StoreError) -> Self {
        IngestStop::Retry(e.to_string())
    }
}

/// Moves the vector-store file from `in_progress` to `status`; the store's counts follow.
/// Returns false when it was no longer in progress.
pub async fn finish(
    ctx: &Ctx,
    item: &FileIngest,
    status: VectorStoreFileStatus,
    error: Option<(&str, &str)>,
    usage: u64,
) -> Result<bool, ApiError> {
    let key = keys::vector_store_file(&ctx.tenant, &item.vector_store_id, &item.file_id);
    let moved = store::update_json(ctx.store.as_ref(), &key, |mut r: VectorStoreFileRecord| {
        if !r.file.status.can_become(status) {
            return Ok::<_, ApiError>(Update::Keep(None));
        }
        r.file.status = status;
        r.file.usage_bytes = usage;
        r.file.last_error = error.map(|(code, message)| json!({"code": code, "message": message}));
        Ok(Update::Write(r.clone(), Some(r)))
    })
    .await?;
    if let Some(Some(record)) = moved {
        vector_store::update(
            ctx.store.as_ref(),
            &ctx.tenant,
            &item.vector_store_id,
            |r| {
                r.store
                    .file_counts
                    .moved(Some(VectorStoreFileStatus::InProgress), Some(status));
                r.store.usage_bytes += usage;
                if status == VectorStoreFileStatus::Completed {
                    r.version += 1;
                }
            },
        )
        .await?;
        notify(ctx, &record).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Queues the webhook event of a file that ended (see `crate::webhooks`); when it cannot,
/// the item is retried and its next delivery queues it.
async fn notify(ctx: &Ctx, record: &VectorStoreFileRecord) -> Result<(), ApiError> {
    crate::webhooks::file_changed(ctx, record)
        .await
        .map_err(ApiError::Internal)
}

pub async fn ingest(ctx: &Ctx, item: &FileIngest) -> Result<(), IngestStop> {
    let key = keys::vector_store_file(&ctx.tenant, &item.vector_store_id, &item.file_id);
    let Some((record, _)) =
        store::get_json::<VectorStoreFileRecord>(ctx.store.as_ref(), &key).await?
    else {
        return Ok(());
    };
    if record.file.status != VectorStoreFileStatus::InProgress {
        // Ended by an earlier delivery, which may have stopped before queueing its event.
        if crate::webhooks::file_has_event(record.file.status) {
            notify(ctx, &record).await?;
        }
        return Ok(());
    }
    let fail = |code: &'static str, message: String| async move {
        log::info!(
            "file {} in {}: {code}: {message}",
            item.file_id,
            item.vector_store_id
        );
        finish(
            ctx,
            item,
            VectorStoreFileStatus::Failed,
            Some((code, &message)),
            0,
        )
        .await
        .map(|_| ())
    };
    let Some(file) = file::load(ctx.store.as_ref(), &ctx.tenant, &item.file_id).await? else {
        return Ok(fail("invalid_file", "The file was deleted.".into()).await?);
    };
    // Extraction and tokenizing are CPU work on untrusted input: in a child process and
    // on a blocking thread, a bounded number at once, fairly between tenants. The file
    // streams from the store into the child: it is never whole in this process.
    let slot = ctx.retrieval.ingest_slots.acquire(&ctx.tenant).await;
    let limits = &ctx.retrieval.ingest;
    let Some((_, content)) = ctx
        .store
        .get_stream(&keys::file_data(&ctx.tenant, &item.file_id))
        .await?
    else {
        return Ok(fail("invalid_file", "The file's content is missing.".into()).await?);
    };
    let input = content.map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    let extracted = extract_isolated(limits, &file.file.filename, &file.content_type, input).await;
    let text = match extracted {
        Ok(t) => t,
        Err(ExtractError::Unavailable(why)) => return Err(IngestStop::Retry(why)),
        Err(e) => return Ok(fail(e.code(), e.message().to_string()).await?),
    };
    let strategy = &record.file.chunking_strategy["static"];
    let max_tokens = strategy["max_chunk_size_tokens"].as_u64().unwrap_or(800) as usize;
    let overlap = strategy["chunk_overlap_tokens"].as_u64().unwrap_or(400) as usize;
    let token_limit = limits.max_tokens;
    let chunked =
        tokio::task::spawn_blocking(move || chunk(&text, max_tokens, overlap, token_limit)).await;
    drop(slot);
    let chunks = match chunked {
        Ok(Some(chunks)) => chunks,
        Ok(None) => {
            let message = format!(
                "{} has more than the {token_limit} tokens a file may have.",
                file.file.filename
            );
            return Ok(fail("invalid_file", message).await?);
        }
        Err(e) => return Err(IngestStop::Retry(format!("chunking stopped: {e}"))),
    };
    let vectors = match ctx.retrieval.embedder.embed(&chunks).await {
        Ok(v) => v,
        Err(LlmError::Rejected { message }) => return Ok(fail("server_error", message).await?),
        Err(e @ LlmError::Retryable { .. }) => return Err(IngestStop::Retry(e.to_string())),
    };
    let dims = vectors.first().map(Vec::len).unwrap_or(0);
    let set = ChunkSet {
        file_id: item.file_id.clone(),
        filename: file.file.filename.clone(),
        dims,
        chunks,
        vectors: vectors.into_iter().flatten().collect(),
    };
    let encoded = set.encode();
    let usage = encoded.len() as u64;
    let chunk_key = keys::vector_store_chunk_set(&ctx.tenant, &item.vector_store_id, &item.file_id);
    ctx.store
        .put(&chunk_key, encoded.into(), PutMode::Overwrite)
        .await?;
    if !finish(ctx, item, VectorStoreFileStatus::Completed, None, usage).await? {
        // Cancelled or detached meanwhile: keep nothing.
        let still_attached = store::get_json::<VectorStoreFileRecord>(ctx.store.as_ref(), &key)
            .await?
            .is_some_and(|(r, _)| r.file.status == VectorStoreFileStatus::Completed);
        if !still_attached {
            ctx.store.delete(&chunk_key).await?;
        }
    }
    Ok(())
}
