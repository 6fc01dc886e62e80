//! File batches of a vector store: create (attaching each file), read, cancel, list files.
//! A batch's counts are computed from its files when read.

use super::files;
use super::pagination::{list_objects, without_internal_fields, ListQuery};
use super::to_value;
use super::types::chunking;
use super::validate::{self, max_items, parse_body};
use super::vector_stores::{enqueue_ingestion, load, update_store, write_file_record, BatchEntry};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::ids::{FileBatchId, FileId, VectorStoreId};
use crate::model::now;
use crate::model::vector_store::{
    FileBatch, FileBatchRecord, FileBatchStatus, FileCounts, VectorStoreFileRecord,
    VectorStoreFileStatus,
};
use crate::store::{self, keys, PutMode, Update};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::vector_store_files::validate_attributes;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchFile {
    #[schema(pattern = "^file-")]
    file_id: String,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ChunkingStrategyRequest>)]
    chunking_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Attributes>)]
    attributes: Option<Map<String, Value>>,
}

/// Exactly one of `file_ids` and `files`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateFileBatch {
    /// Files with the batch's `chunking_strategy` and `attributes`.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 2000)]
    file_ids: Option<Vec<String>>,
    /// Files each with their own chunking strategy and attributes.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 2000)]
    files: Option<Vec<BatchFile>>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ChunkingStrategyRequest>)]
    chunking_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Attributes>)]
    attributes: Option<Map<String, Value>>,
}

/// Checks a batch request (before the path's ids, as it always was): its files, each with its
/// chunking strategy and attributes. Their ids are checked once the store is found.
pub fn check_create_batch(body: &[u8]) -> Result<Vec<BatchEntry>, ApiError> {
    let req: CreateFileBatch = parse_body(body)?;
    let strategy = chunking("chunking_strategy", req.chunking_strategy.as_ref())?;
    if let Some(a) = &req.attributes {
        validate_attributes("attributes", a)?;
    }
    let entries: Vec<BatchEntry> = match (req.file_ids, req.files) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::invalid_param(
                    "file_ids",
                    "Invalid 'file_ids': expected at least one file id.",
                ));
            }
            max_items("file_ids", &ids, 2000)?;
            ids.into_iter()
                .map(|id| (id, strategy.clone(), req.attributes.clone()))
                .collect()
        }
        (None, Some(files)) => {
            if files.is_empty() {
                return Err(ApiError::invalid_param(
                    "files",
                    "Invalid 'files': expected at least one file.",
                ));
            }
            max_items("files", &files, 2000)?;
            let mut out = Vec::with_capacity(files.len());
            for (i, f) in files.into_iter().enumerate() {
                let s = match f.chunking_strategy {
                    Some(c) => chunking(&format!("files[{i}].chunking_strategy"), Some(&c))?,
                    None => strategy.clone(),
                };
                if let Some(a) = &f.attributes {
                    validate_attributes(&format!("files[{i}].attributes"), a)?;
                }
                out.push((f.file_id, s, f.attributes));
            }
            out
        }
        _ => {
            return Err(ApiError::invalid(
                "Provide exactly one of 'file_ids' and 'files'.",
                None,
            ))
        }
    };
    Ok(entries)
}

pub async fn create_batch(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    entries: Vec<BatchEntry>,
) -> Result<Value, ApiError> {
    load(ctx, vs_id).await?;
    for (i, (id, _, _)) in entries.iter().enumerate() {
        let id: FileId = validate::existing_id(&format!("file_ids[{i}]"), id)?;
        files::load(ctx, &id).await?;
    }
    let batch = FileBatchRecord {
        batch: FileBatch {
            id: new_id(Kind::FileBatch),
            object: "vector_store.files_batch".into(),
            created_at: now(),
            vector_store_id: vs_id.to_string(),
            status: FileBatchStatus::InProgress,
            file_counts: FileCounts::default(),
        },
        cancelled: false,
        open: None,
        files: 0,
        failed: 0,
    };
    store::put_json(
        ctx.store.as_ref(),
        &keys::vector_store_batch(&ctx.tenant, vs_id, &batch.batch.id),
        &batch,
        PutMode::Create,
    )
    .await?;
    let mut added = Vec::new();
    for (file_id, strategy, attributes) in entries {
        let (_, new) = write_file_record(
            ctx,
            vs_id,
            &file_id,
            strategy,
            attributes,
            Some(batch.batch.id.clone()),
        )
        .await?;
        if new {
            added.push(file_id);
        }
    }
    update_store(ctx, vs_id, |r| {
        for _ in &added {
            r.store
                .file_counts
                .moved(None, Some(VectorStoreFileStatus::InProgress));
        }
    })
    .await?;
    // The files in progress, before any can end: the last to end reports the batch's end.
    let batch_key = keys::vector_store_batch(&ctx.tenant, vs_id, &batch.batch.id);
    store::update_json(ctx.store.as_ref(), &batch_key, |mut b: FileBatchRecord| {
        b.open = Some(added.iter().cloned().collect());
        b.files = added.len() as u32;
        Ok::<_, ApiError>(Update::Write(b, ()))
    })
    .await?;
    enqueue_ingestion(ctx, vs_id, &added).await?;
    batch_value(ctx, vs_id, &super::known_id(&batch.batch.id)?).await
}

async fn batch_files(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
) -> Result<Vec<VectorStoreFileRecord>, ApiError> {
    let prefix = keys::vector_store_files(&ctx.tenant, vs_id);
    let ids: Vec<String> = store::list_all(ctx.store.as_ref(), &prefix)
        .await?
        .iter()
        .map(|k| keys::last_segment(k).to_string())
        .collect();
    let all: Vec<VectorStoreFileRecord> =
        store::read_all(ctx.store.as_ref(), &prefix, &ids).await?;
    Ok(all
        .into_iter()
        .filter(|r| r.batch_id.as_deref() == Some(batch_id))
        .collect())
}

async fn load_batch(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
) -> Result<FileBatchRecord, ApiError> {
    match store::get_json::<FileBatchRecord>(
        ctx.store.as_ref(),
        &keys::vector_store_batch(&ctx.tenant, vs_id, batch_id),
    )
    .await?
    {
        Some((b, _)) => Ok(b),
        None => {
            load(ctx, vs_id).await?;
            Err(ApiError::not_found(Kind::FileBatch, batch_id))
        }
    }
}

/// A batch with its counts and status as its files are now.
async fn batch_value(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
) -> Result<Value, ApiError> {
    let mut record = load_batch(ctx, vs_id, batch_id).await?;
    let mut counts = FileCounts::default();
    for f in batch_files(ctx, vs_id, batch_id).await? {
        counts.moved(None, Some(f.file.status));
    }
    record.batch.status = FileBatchStatus::of(&counts, record.cancelled);
    record.batch.file_counts = counts;
    to_value(&record.batch)
}

pub async fn get_batch(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
) -> Result<super::Reply, ApiError> {
    Ok(super::Reply::Json {
        body: batch_value(ctx, vs_id, batch_id).await?,
        headers: vec![("openai-poll-after-ms", ctx.runs.poll_after_ms.to_string())],
    })
}

pub async fn cancel_batch(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
) -> Result<Value, ApiError> {
    load_batch(ctx, vs_id, batch_id).await?;
    store::update_json(
        ctx.store.as_ref(),
        &keys::vector_store_batch(&ctx.tenant, vs_id, batch_id),
        |mut b: FileBatchRecord| {
            b.cancelled = true;
            Ok::<_, ApiError>(Update::Write(b, ()))
        },
    )
    .await?;
    for f in batch_files(ctx, vs_id, batch_id).await? {
        if !f.file.status.can_become(VectorStoreFileStatus::Cancelled) {
            continue;
        }
        let key = keys::vector_store_file(&ctx.tenant, vs_id, &f.file.id);
        let moved = store::update_json(ctx.store.as_ref(), &key, |mut r: VectorStoreFileRecord| {
            if !r.file.status.can_become(VectorStoreFileStatus::Cancelled) {
                return Ok::<_, ApiError>(Update::Keep(false));
            }
            r.file.status = VectorStoreFileStatus::Cancelled;
            Ok(Update::Write(r, true))
        })
        .await?;
        if moved == Some(true) {
            update_store(ctx, vs_id, |r| {
                r.store.file_counts.moved(
                    Some(VectorStoreFileStatus::InProgress),
                    Some(VectorStoreFileStatus::Cancelled),
                )
            })
            .await?;
        }
    }
    batch_value(ctx, vs_id, batch_id).await
}

pub async fn list_batch_files(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    batch_id: &FileBatchId,
    (q, filter): (ListQuery, Option<String>),
) -> Result<Value, ApiError> {
    load_batch(ctx, vs_id, batch_id).await?;
    let page = list_objects(
        &ctx.store,
        &keys::vector_store_files(&ctx.tenant, vs_id),
        &q,
        |r: &VectorStoreFileRecord| &r.file.id,
        Some(|r: &VectorStoreFileRecord| {
            r.batch_id.as_deref() == Some(batch_id)
                && filter
                    .as_deref()
                    .is_none_or(|f| r.file.status.as_str() == f)
        }),
    )
    .await?;
    Ok(without_internal_fields(page))
}
