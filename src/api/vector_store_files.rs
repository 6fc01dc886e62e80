//! The files of a vector store: attach, read, update attributes, detach, list, content.
//! Attaching stores the file `in_progress` and queues its ingestion (`vector_stores`).

use super::files;
use super::pagination::{list_objects, query_value, without_internal_fields, ListQuery, Query};
use super::to_value;
use super::types::chunking;
use super::types::one_of;
use super::validate::{self, max_chars, parse_body};
use super::vector_stores::{enqueue_ingestion, load, update_store, write_file_record};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::Kind;
use crate::ids::{FileId, VectorStoreId};
use crate::model::vector_store::{VectorStoreFileRecord, VectorStoreFileStatus, VectorStoreRecord};
use crate::retrieval::index::ChunkSet;
use crate::store::{self, keys, Update};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateVectorStoreFile {
    #[schema(pattern = "^file-")]
    file_id: String,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ChunkingStrategyRequest>)]
    chunking_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Attributes>)]
    attributes: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateAttributes {
    /// The new attributes (null or absent removes them).
    #[schema(value_type = Option<super::schemas::Attributes>)]
    attributes: Option<Map<String, Value>>,
}

/// File attributes: at most 16, keys up to 64 characters, values strings (≤ 512), numbers
/// or booleans.
pub(super) fn validate_attributes(
    param: &str,
    attributes: &Map<String, Value>,
) -> Result<(), ApiError> {
    if attributes.len() > 16 {
        return Err(ApiError::invalid_param(
            param,
            format!("Invalid '{param}': at most 16 attributes."),
        ));
    }
    for (k, v) in attributes {
        if k.chars().count() > 64 {
            return Err(ApiError::invalid_param(
                param,
                format!("Invalid '{param}': keys can be at most 64 characters long."),
            ));
        }
        match v {
            Value::String(s) => max_chars(&format!("{param}.{k}"), s, 512)?,
            Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err(ApiError::invalid_param(
                    &format!("{param}.{k}"),
                    format!("Invalid '{param}.{k}': expected a string, a number or a boolean."),
                ))
            }
        }
    }
    Ok(())
}

/// A request to attach one file, checked (before the path's ids, as it always was).
pub struct NewStoreFile {
    req: CreateVectorStoreFile,
    /// `None`: the id has the prefix but is malformed, the file's 404 where it is read.
    file_id: Option<FileId>,
    strategy: Value,
}

/// Checks a request to attach one file.
pub fn check_create_file(body: &[u8]) -> Result<NewStoreFile, ApiError> {
    let req: CreateVectorStoreFile = parse_body(body)?;
    let file_id: Option<FileId> = validate::id("file_id", &req.file_id)?;
    let strategy = chunking("chunking_strategy", req.chunking_strategy.as_ref())?;
    if let Some(a) = &req.attributes {
        validate_attributes("attributes", a)?;
    }
    Ok(NewStoreFile {
        req,
        file_id,
        strategy,
    })
}

/// Attaches one file (`POST /vector_stores/{id}/files`).
pub async fn create_file(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    new: NewStoreFile,
) -> Result<Value, ApiError> {
    let NewStoreFile {
        req,
        file_id,
        strategy,
    } = new;
    load(ctx, vs_id).await?;
    let file_id = file_id.ok_or_else(|| ApiError::not_found(Kind::File, &req.file_id))?;
    files::load(ctx, &file_id).await?;
    let (record, added) =
        write_file_record(ctx, vs_id, &req.file_id, strategy, req.attributes, None).await?;
    if added {
        update_store(ctx, vs_id, |r| {
            r.store
                .file_counts
                .moved(None, Some(VectorStoreFileStatus::InProgress))
        })
        .await?;
        enqueue_ingestion(ctx, vs_id, std::slice::from_ref(&req.file_id)).await?;
    }
    to_value(&record.file)
}

pub async fn load_file(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    file_id: &FileId,
) -> Result<VectorStoreFileRecord, ApiError> {
    match store::get_json::<VectorStoreFileRecord>(
        ctx.store.as_ref(),
        &keys::vector_store_file(&ctx.tenant, vs_id, file_id),
    )
    .await?
    {
        Some((r, _)) => Ok(r),
        None => {
            load(ctx, vs_id).await?;
            Err(ApiError::not_found(Kind::File, file_id))
        }
    }
}

pub async fn get_file(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    file_id: &FileId,
) -> Result<super::Reply, ApiError> {
    let record = load_file(ctx, vs_id, file_id).await?;
    Ok(super::Reply::Json {
        body: to_value(&record.file)?,
        headers: vec![("openai-poll-after-ms", ctx.runs.poll_after_ms.to_string())],
    })
}

/// Checks a request to change a file's attributes (before the path's ids, as it always was).
pub(crate) fn check_update_file(body: &[u8]) -> Result<UpdateAttributes, ApiError> {
    let req: UpdateAttributes = parse_body(body)?;
    if let Some(a) = &req.attributes {
        validate_attributes("attributes", a)?;
    }
    Ok(req)
}

pub(crate) async fn update_file(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    file_id: &FileId,
    req: UpdateAttributes,
) -> Result<Value, ApiError> {
    load_file(ctx, vs_id, file_id).await?;
    let key = keys::vector_store_file(&ctx.tenant, vs_id, file_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut r: VectorStoreFileRecord| {
        r.file.attributes = req.attributes.clone();
        Ok::<_, ApiError>(Update::Write(r.clone(), r))
    })
    .await?
    .ok_or_else(|| ApiError::not_found(Kind::File, file_id))?;
    update_store(ctx, vs_id, |r| r.version += 1).await?;
    to_value(&updated.file)
}

/// Detaches a file from a store: its record, chunks and link go, the counts follow.
pub async fn detach(ctx: &Ctx, vs_id: &str, file_id: &str) -> Result<bool, ApiError> {
    let key = keys::vector_store_file(&ctx.tenant, vs_id, file_id);
    let Some((record, _)) =
        store::get_json::<VectorStoreFileRecord>(ctx.store.as_ref(), &key).await?
    else {
        return Ok(false);
    };
    if !ctx.store.delete(&key).await? {
        return Ok(false);
    }
    ctx.store
        .delete(&keys::vector_store_chunk_set(&ctx.tenant, vs_id, file_id))
        .await?;
    ctx.store
        .delete(&keys::file_link(&ctx.tenant, file_id, vs_id))
        .await?;
    let status = record.file.status;
    let bytes = record.file.usage_bytes;
    let vs_key = keys::vector_store(&ctx.tenant, vs_id);
    store::update_json(ctx.store.as_ref(), &vs_key, |mut r: VectorStoreRecord| {
        r.store.file_counts.moved(Some(status), None);
        r.store.usage_bytes = r.store.usage_bytes.saturating_sub(bytes);
        r.version += 1;
        r.refresh_status();
        Ok::<_, ApiError>(Update::Write(r, ()))
    })
    .await?;
    // A batch waiting for this file waits no more (its event, if that was its last file).
    if let Err(e) = crate::webhooks::batch_file_detached(ctx, &record).await {
        log::warn!("batch of {file_id} in {vs_id}: {e}");
    }
    Ok(true)
}

pub async fn delete_file(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    file_id: &FileId,
) -> Result<Value, ApiError> {
    if !detach(ctx, vs_id, file_id).await? {
        load(ctx, vs_id).await?;
        return Err(ApiError::not_found(Kind::File, file_id));
    }
    Ok(json!({"id": file_id, "object": "vector_store.file.deleted", "deleted": true}))
}

/// Detaches a (deleted) file from every store that has it.
pub async fn detach_everywhere(ctx: &Ctx, file_id: &FileId) -> Result<(), ApiError> {
    for key in store::list_all(ctx.store.as_ref(), &keys::file_links(&ctx.tenant, file_id)).await? {
        let vs_id = keys::last_segment(&key).to_string();
        detach(ctx, &vs_id, file_id).await?;
        ctx.store.delete(&key).await?;
    }
    Ok(())
}

pub(super) fn status_filter(query: &Query) -> Result<Option<String>, ApiError> {
    match query_value(query, "filter") {
        None => Ok(None),
        Some(f) => {
            one_of(
                "filter",
                f,
                &["in_progress", "completed", "failed", "cancelled"],
            )?;
            Ok(Some(f.to_string()))
        }
    }
}

/// A listing of a store's (or a batch's) files, its query checked (before the path's ids,
/// as it always was): the page and the status filter.
pub fn list_query(query: &Query) -> Result<(ListQuery, Option<String>), ApiError> {
    Ok((ListQuery::parse(query, 100, 20)?, status_filter(query)?))
}

pub async fn list_files(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    (q, filter): (ListQuery, Option<String>),
) -> Result<Value, ApiError> {
    load(ctx, vs_id).await?;
    let page = list_objects(
        &ctx.store,
        &keys::vector_store_files(&ctx.tenant, vs_id),
        &q,
        |r: &VectorStoreFileRecord| &r.file.id,
        Some(|r: &VectorStoreFileRecord| {
            filter
                .as_deref()
                .is_none_or(|f| r.file.status.as_str() == f)
        }),
    )
    .await?;
    Ok(without_internal_fields(page))
}

pub async fn file_content(
    ctx: &Ctx,
    vs_id: &VectorStoreId,
    file_id: &FileId,
) -> Result<Value, ApiError> {
    load_file(ctx, vs_id, file_id).await?;
    let data: Vec<Value> = match ctx
        .store
        .get(&keys::vector_store_chunk_set(&ctx.tenant, vs_id, file_id))
        .await?
    {
        Some((bytes, _)) => ChunkSet::decode(&bytes)
            .map(|set| {
                set.chunks
                    .into_iter()
                    .map(|text| json!({"type": "text", "text": text}))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(
        json!({"object": "vector_store.file_content.page", "data": data, "has_more": false, "next_page": null}),
    )
}
