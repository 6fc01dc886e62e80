//! Vector stores: the stores themselves, their files and file batches, and search.
//! Files are ingested (extracted, chunked, embedded) asynchronously through the work queue
//! (`retrieval::ingest`); `status` and `file_counts` follow.

use super::assistants::to_value;
use super::files;
use super::pagination::{list_objects, query_value, without_internal_fields, ListQuery, Query};
use super::types::one_of;
use super::validate::{
    self, max_chars, max_items, metadata, nullable, parse_body, parse_required_body,
};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::model::now;
use crate::model::values::Metadata;
use crate::model::vector_store::{
    self, expires_at, FileBatch, FileBatchRecord, FileCounts, VectorStore, VectorStoreFile,
    VectorStoreFileRecord, VectorStoreRecord,
};
use crate::queue::{WorkItem, WorkKind};
use crate::retrieval::index::ChunkSet;
use crate::retrieval::search;
use crate::store::{self, keys, PutMode, Update};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateVectorStore {
    /// Files to add (and ingest) at once.
    #[serde(default)]
    #[schema(max_items = 500)]
    file_ids: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 512)]
    description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::VectorStoreExpiresAfter>)]
    expires_after: Option<Value>,
    /// For `file_ids`; `auto` when not given.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ChunkingStrategyRequest>)]
    chunking_strategy: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyVectorStore {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::VectorStoreExpiresAfter>)]
    expires_after: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
}

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

/// One file of a batch: its id, chunking strategy and attributes.
type BatchEntry = (String, Value, Option<Map<String, Value>>);

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    #[schema(value_type = super::schemas::SearchQuery)]
    query: Value,
    /// Accepted and ignored: queries are searched as given.
    #[serde(default)]
    rewrite_query: Option<bool>,
    /// 10 when not given.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50)]
    max_num_results: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Filter>)]
    filters: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::SearchRankingOptions>)]
    ranking_options: Option<Value>,
}

/// `chunking_strategy` as stored and shown: always the static form (auto = 800 / 400).
pub fn chunking(param: &str, value: Option<&Value>) -> Result<Value, ApiError> {
    let auto = json!({"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}});
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(auto);
    };
    match v.get("type").and_then(Value::as_str) {
        Some("auto") => {
            reject_unknown(v, param, &["type"])?;
            Ok(auto)
        }
        Some("static") => {
            let s = &v["static"];
            reject_unknown(v, param, &["type", "static"])?;
            reject_unknown(
                s,
                &format!("{param}.static"),
                &["max_chunk_size_tokens", "chunk_overlap_tokens"],
            )?;
            let max = s["max_chunk_size_tokens"].as_u64().filter(|n| (100..=4096).contains(n)).ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}.static.max_chunk_size_tokens"),
                    format!("Invalid '{param}.static.max_chunk_size_tokens': expected an integer between 100 and 4096."),
                )
            })?;
            let overlap = s["chunk_overlap_tokens"].as_u64().filter(|n| *n <= max / 2).ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}.static.chunk_overlap_tokens"),
                    format!("Invalid '{param}.static.chunk_overlap_tokens': expected an integer of at most half of max_chunk_size_tokens."),
                )
            })?;
            Ok(
                json!({"type": "static", "static": {"max_chunk_size_tokens": max, "chunk_overlap_tokens": overlap}}),
            )
        }
        Some(other) => one_of(&format!("{param}.type"), other, &["auto", "static"]).map(|_| auto),
        None => Err(ApiError::invalid_param(
            &format!("{param}.type"),
            format!("Missing required parameter: '{param}.type'."),
        )),
    }
}

/// Refuses fields of a JSON object (request part) other than `allowed`.
fn reject_unknown(value: &Value, param: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match value
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        Some(extra) => Err(ApiError::invalid(
            format!(
                "Unrecognized request argument supplied: {param}.{}",
                crate::error::shown(extra)
            ),
            None,
        )),
        None => Ok(()),
    }
}

/// File attributes: at most 16, keys up to 64 characters, values strings (≤ 512), numbers
/// or booleans.
fn validate_attributes(param: &str, attributes: &Map<String, Value>) -> Result<(), ApiError> {
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

fn expiry(value: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    reject_unknown(v, "expires_after", &["anchor", "days"])?;
    one_of(
        "expires_after.anchor",
        v["anchor"].as_str().unwrap_or(""),
        &["last_active_at"],
    )?;
    let days = v["days"]
        .as_u64()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| {
            ApiError::invalid_param(
                "expires_after.days",
                "Invalid 'expires_after.days': expected an integer between 1 and 365.",
            )
        })?;
    Ok(Some(json!({"anchor": "last_active_at", "days": days})))
}

pub async fn load(ctx: &Ctx, vs_id: &str) -> Result<VectorStoreRecord, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    vector_store::load(ctx.store.as_ref(), &ctx.tenant, vs_id)
        .await?
        .ok_or_else(|| ApiError::not_found(Kind::VectorStore, vs_id))
}

pub async fn create(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateVectorStore = parse_required_body(body)?;
    let file_ids = req.file_ids.unwrap_or_default();
    max_items("file_ids", &file_ids, 500)?;
    if let Some(n) = &req.name {
        max_chars("name", n, 256)?;
    }
    if let Some(d) = &req.description {
        max_chars("description", d, 512)?;
    }
    let meta = req.metadata.unwrap_or_default();
    metadata("metadata", &meta)?;
    let expires_after = expiry(req.expires_after.as_ref())?;
    let strategy = chunking("chunking_strategy", req.chunking_strategy.as_ref())?;
    for (i, id) in file_ids.iter().enumerate() {
        validate::id(&format!("file_ids[{i}]"), Kind::File, id)?;
        files::load(ctx, id).await?;
    }
    let new = NewStore {
        name: req.name.unwrap_or_default(),
        description: req.description,
        file_ids,
        expires_after,
        strategy,
        metadata: meta,
    };
    let (record, _) = create_store(ctx, new_id(Kind::VectorStore), new).await?;
    to_value(&record.store)
}

/// A vector store to create, validated.
pub struct NewStore {
    pub name: String,
    pub description: Option<String>,
    pub file_ids: Vec<String>,
    pub expires_after: Option<Value>,
    /// The stored form (`chunking`).
    pub strategy: Value,
    pub metadata: Metadata,
}

/// Stores a new vector store `id` (create-only) with its files, queued for ingestion.
/// If `id` exists already (a thread's store another request made), that one is answered
/// and the flag is false.
pub async fn create_store(
    ctx: &Ctx,
    id: String,
    new: NewStore,
) -> Result<(VectorStoreRecord, bool), ApiError> {
    let at = now();
    let mut record = VectorStoreRecord {
        store: VectorStore {
            id,
            object: "vector_store".into(),
            created_at: at,
            name: new.name,
            usage_bytes: 0,
            file_counts: FileCounts::default(),
            status: "completed".into(),
            expires_at: expires_at(new.expires_after.as_ref(), at),
            expires_after: new.expires_after,
            last_active_at: Some(at),
            metadata: new.metadata,
        },
        description: new.description,
        version: 0,
    };
    let mut unique: Vec<String> = Vec::with_capacity(new.file_ids.len());
    for id in &new.file_ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    for _ in &unique {
        record.store.file_counts.moved(None, Some("in_progress"));
    }
    record.refresh_status();
    let key = keys::vector_store(&ctx.tenant, &record.store.id);
    match store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await {
        Ok(_) => {}
        Err(store::StoreError::Conflict) => {
            return Ok((load(ctx, &record.store.id).await?, false));
        }
        Err(e) => return Err(e.into()),
    }
    for file_id in &unique {
        write_file_record(
            ctx,
            &record.store.id,
            file_id,
            new.strategy.clone(),
            None,
            None,
        )
        .await?;
    }
    enqueue_ingestion(ctx, &record.store.id, &unique).await?;
    Ok((record, true))
}

/// Adds files to a store (those it has already are left as they are) and queues their
/// ingestion: what message attachments do to a thread's store.
pub async fn add_files(
    ctx: &Ctx,
    vs_id: &str,
    file_ids: &[String],
    strategy: Value,
) -> Result<(), ApiError> {
    let mut added = Vec::new();
    for file_id in file_ids {
        let (_, new) = write_file_record(ctx, vs_id, file_id, strategy.clone(), None, None).await?;
        if new && !added.contains(file_id) {
            added.push(file_id.clone());
        }
    }
    if added.is_empty() {
        return Ok(());
    }
    update_store(ctx, vs_id, |r| {
        for _ in &added {
            r.store.file_counts.moved(None, Some("in_progress"));
        }
    })
    .await?;
    enqueue_ingestion(ctx, vs_id, &added).await
}

/// The stores a `tool_resources.file_search.vector_stores` helper asks for: created, and
/// their ids added to the resources.
pub async fn create_requested(
    ctx: &Ctx,
    requested: super::types::NewToolResources,
    param: &str,
) -> Result<crate::model::values::ToolResources, ApiError> {
    let mut resources = requested.resources;
    for (i, r) in requested.new_vector_stores.into_iter().enumerate() {
        for (j, id) in r.file_ids.iter().enumerate() {
            files::load(ctx, id).await.map_err(|e| match e {
                ApiError::NotFound { .. } => ApiError::invalid_param(
                    &format!("{param}.file_search.vector_stores[{i}].file_ids[{j}]"),
                    format!("No file found with id '{}'.", crate::error::shown(id)),
                ),
                other => other,
            })?;
        }
        let new = NewStore {
            name: String::new(),
            description: None,
            file_ids: r.file_ids,
            expires_after: None,
            strategy: r.chunking_strategy,
            metadata: r.metadata,
        };
        let (record, _) = create_store(ctx, new_id(Kind::VectorStore), new).await?;
        resources
            .file_search
            .get_or_insert_with(Default::default)
            .vector_store_ids
            .push(record.store.id);
    }
    Ok(resources)
}

/// Stores a vector-store file in progress (counts and queueing are the caller's business).
/// An existing record is left as it is; the flag says whether the file was added.
async fn write_file_record(
    ctx: &Ctx,
    vs_id: &str,
    file_id: &str,
    strategy: Value,
    attributes: Option<Map<String, Value>>,
    batch_id: Option<String>,
) -> Result<(VectorStoreFileRecord, bool), ApiError> {
    let record = VectorStoreFileRecord {
        file: VectorStoreFile {
            id: file_id.to_string(),
            object: "vector_store.file".into(),
            usage_bytes: 0,
            created_at: now(),
            vector_store_id: vs_id.to_string(),
            status: "in_progress".into(),
            last_error: None,
            chunking_strategy: strategy,
            attributes,
        },
        batch_id,
    };
    let key = keys::vector_store_file(&ctx.tenant, vs_id, file_id);
    match store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await {
        Ok(_) => {}
        Err(store::StoreError::Conflict) => {
            let existing =
                store::get_json::<VectorStoreFileRecord>(ctx.store.as_ref(), &key).await?;
            return Ok((existing.map(|(r, _)| r).unwrap_or(record), false));
        }
        Err(e) => return Err(e.into()),
    }
    // The file remembers its stores, so deleting it can detach it everywhere.
    store::put_json(
        ctx.store.as_ref(),
        &keys::file_link(&ctx.tenant, file_id, vs_id),
        &json!({}),
        PutMode::Overwrite,
    )
    .await?;
    Ok((record, true))
}

/// Queues the ingestion of files just added (after the store's counts include them, so
/// an ingestion that finishes at once moves a file that is already counted).
async fn enqueue_ingestion(ctx: &Ctx, vs_id: &str, file_ids: &[String]) -> Result<(), ApiError> {
    for file_id in file_ids {
        let item = WorkItem {
            kind: WorkKind::Ingest,
            tenant: ctx.tenant.clone(),
            vector_store_id: vs_id.to_string(),
            file_id: file_id.clone(),
            ..WorkItem::default()
        };
        ctx.queue
            .enqueue(&item, Duration::ZERO)
            .await
            .map_err(|e| {
                log::warn!("{e}");
                ApiError::Unavailable
            })?;
    }
    Ok(())
}

/// Applies a change to the store record's counts (and version), retried on races.
pub async fn update_store(
    ctx: &Ctx,
    vs_id: &str,
    change: impl Fn(&mut VectorStoreRecord),
) -> Result<(), ApiError> {
    vector_store::update(ctx.store.as_ref(), &ctx.tenant, vs_id, change).await?;
    Ok(())
}

pub async fn get(ctx: &Ctx, vs_id: &str) -> Result<Value, ApiError> {
    to_value(&load(ctx, vs_id).await?.store)
}

pub async fn modify(ctx: &Ctx, vs_id: &str, body: &[u8]) -> Result<Value, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    let req: ModifyVectorStore = parse_required_body(body)?;
    if let Some(Some(n)) = &req.name {
        max_chars("name", n, 256)?;
    }
    if let Some(Some(m)) = &req.metadata {
        metadata("metadata", m)?;
    }
    let expires_after = match &req.expires_after {
        Some(v) => Some(expiry(v.as_ref())?),
        None => None,
    };
    let updated = store::update_json(
        ctx.store.as_ref(),
        &keys::vector_store(&ctx.tenant, vs_id),
        |mut r: VectorStoreRecord| {
            if let Some(n) = &req.name {
                r.store.name = n.clone().unwrap_or_default();
            }
            if let Some(m) = &req.metadata {
                r.store.metadata = m.clone().unwrap_or_default();
            }
            if let Some(e) = &expires_after {
                r.store.expires_after = e.clone();
                r.store.expires_at =
                    expires_at(e.as_ref(), r.store.last_active_at.unwrap_or_else(now));
            }
            r.refresh_status();
            Ok::<_, ApiError>(Update::Write(r.clone(), r))
        },
    )
    .await?;
    match updated {
        Some(r) => to_value(&r.store),
        None => Err(ApiError::not_found(Kind::VectorStore, vs_id)),
    }
}

pub async fn delete(ctx: &Ctx, vs_id: &str) -> Result<Value, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    if !ctx
        .store
        .delete(&keys::vector_store(&ctx.tenant, vs_id))
        .await?
    {
        return Err(ApiError::not_found(Kind::VectorStore, vs_id));
    }
    let file_prefix = keys::vector_store_files(&ctx.tenant, vs_id);
    for key in store::list_all(ctx.store.as_ref(), &file_prefix).await? {
        let file_id = keys::last_segment(&key);
        ctx.store
            .delete(&keys::file_link(&ctx.tenant, file_id, vs_id))
            .await?;
    }
    for prefix in [
        file_prefix,
        keys::vector_store_chunks(&ctx.tenant, vs_id),
        keys::vector_store_batches(&ctx.tenant, vs_id),
    ] {
        store::delete_prefix(&ctx.store, &prefix).await?;
    }
    ctx.retrieval
        .cache
        .forget(&format!("{}/{vs_id}", ctx.tenant));
    Ok(json!({"id": vs_id, "object": "vector_store.deleted", "deleted": true}))
}

pub async fn list(ctx: &Ctx, query: &Query) -> Result<Value, ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    let mut page = list_objects(
        &ctx.store,
        &keys::vector_stores(&ctx.tenant),
        &q,
        |r: &VectorStoreRecord| &r.store.id,
        None::<fn(&VectorStoreRecord) -> bool>,
    )
    .await?;
    // Status as counts and expiry make it now.
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for item in data.iter_mut() {
            if let Ok(mut r) = serde_json::from_value::<VectorStoreRecord>(item.clone()) {
                r.refresh_status();
                item["status"] = json!(r.store.status);
            }
        }
    }
    Ok(without_internal_fields(page))
}

/// Attaches one file (`POST /vector_stores/{id}/files`).
pub async fn create_file(ctx: &Ctx, vs_id: &str, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateVectorStoreFile = parse_body(body)?;
    validate::id("file_id", Kind::File, &req.file_id)?;
    let strategy = chunking("chunking_strategy", req.chunking_strategy.as_ref())?;
    if let Some(a) = &req.attributes {
        validate_attributes("attributes", a)?;
    }
    load(ctx, vs_id).await?;
    files::load(ctx, &req.file_id).await?;
    let (record, added) =
        write_file_record(ctx, vs_id, &req.file_id, strategy, req.attributes, None).await?;
    if added {
        update_store(ctx, vs_id, |r| {
            r.store.file_counts.moved(None, Some("in_progress"))
        })
        .await?;
        enqueue_ingestion(ctx, vs_id, std::slice::from_ref(&req.file_id)).await?;
    }
    to_value(&record.file)
}

pub async fn load_file(
    ctx: &Ctx,
    vs_id: &str,
    file_id: &str,
) -> Result<VectorStoreFileRecord, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    super::path_id(Kind::File, file_id)?;
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

pub async fn get_file(ctx: &Ctx, vs_id: &str, file_id: &str) -> Result<super::Reply, ApiError> {
    let record = load_file(ctx, vs_id, file_id).await?;
    Ok(super::Reply::Json {
        body: to_value(&record.file)?,
        headers: vec![("openai-poll-after-ms", ctx.runs.poll_after_ms.to_string())],
    })
}

pub async fn update_file(
    ctx: &Ctx,
    vs_id: &str,
    file_id: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let req: UpdateAttributes = parse_body(body)?;
    if let Some(a) = &req.attributes {
        validate_attributes("attributes", a)?;
    }
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
    let status = record.file.status.clone();
    let bytes = record.file.usage_bytes;
    let vs_key = keys::vector_store(&ctx.tenant, vs_id);
    store::update_json(ctx.store.as_ref(), &vs_key, |mut r: VectorStoreRecord| {
        r.store.file_counts.moved(Some(&status), None);
        r.store.usage_bytes = r.store.usage_bytes.saturating_sub(bytes);
        r.version += 1;
        r.refresh_status();
        Ok::<_, ApiError>(Update::Write(r, ()))
    })
    .await?;
    Ok(true)
}

pub async fn delete_file(ctx: &Ctx, vs_id: &str, file_id: &str) -> Result<Value, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    super::path_id(Kind::File, file_id)?;
    if !detach(ctx, vs_id, file_id).await? {
        load(ctx, vs_id).await?;
        return Err(ApiError::not_found(Kind::File, file_id));
    }
    Ok(json!({"id": file_id, "object": "vector_store.file.deleted", "deleted": true}))
}

/// Detaches a (deleted) file from every store that has it.
pub async fn detach_everywhere(ctx: &Ctx, file_id: &str) -> Result<(), ApiError> {
    for key in store::list_all(ctx.store.as_ref(), &keys::file_links(&ctx.tenant, file_id)).await? {
        let vs_id = keys::last_segment(&key).to_string();
        detach(ctx, &vs_id, file_id).await?;
        ctx.store.delete(&key).await?;
    }
    Ok(())
}

fn status_filter(query: &Query) -> Result<Option<String>, ApiError> {
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

pub async fn list_files(ctx: &Ctx, vs_id: &str, query: &Query) -> Result<Value, ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    let filter = status_filter(query)?;
    load(ctx, vs_id).await?;
    let page = list_objects(
        &ctx.store,
        &keys::vector_store_files(&ctx.tenant, vs_id),
        &q,
        |r: &VectorStoreFileRecord| &r.file.id,
        Some(|r: &VectorStoreFileRecord| filter.as_deref().is_none_or(|f| r.file.status == f)),
    )
    .await?;
    Ok(without_internal_fields(page))
}

pub async fn file_content(ctx: &Ctx, vs_id: &str, file_id: &str) -> Result<Value, ApiError> {
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

pub async fn create_batch(ctx: &Ctx, vs_id: &str, body: &[u8]) -> Result<Value, ApiError> {
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
    load(ctx, vs_id).await?;
    for (i, (id, _, _)) in entries.iter().enumerate() {
        validate::id(&format!("file_ids[{i}]"), Kind::File, id)?;
        files::load(ctx, id).await?;
    }
    let batch = FileBatchRecord {
        batch: FileBatch {
            id: new_id(Kind::FileBatch),
            object: "vector_store.files_batch".into(),
            created_at: now(),
            vector_store_id: vs_id.to_string(),
            status: "in_progress".into(),
            file_counts: FileCounts::default(),
        },
        cancelled: false,
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
            r.store.file_counts.moved(None, Some("in_progress"));
        }
    })
    .await?;
    enqueue_ingestion(ctx, vs_id, &added).await?;
    batch_value(ctx, vs_id, &batch.batch.id).await
}

async fn batch_files(
    ctx: &Ctx,
    vs_id: &str,
    batch_id: &str,
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

async fn load_batch(ctx: &Ctx, vs_id: &str, batch_id: &str) -> Result<FileBatchRecord, ApiError> {
    super::path_id(Kind::VectorStore, vs_id)?;
    super::path_id(Kind::FileBatch, batch_id)?;
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
async fn batch_value(ctx: &Ctx, vs_id: &str, batch_id: &str) -> Result<Value, ApiError> {
    let mut record = load_batch(ctx, vs_id, batch_id).await?;
    let mut counts = FileCounts::default();
    for f in batch_files(ctx, vs_id, batch_id).await? {
        counts.moved(None, Some(&f.file.status));
    }
    record.batch.status = if record.cancelled {
        "cancelled"
    } else if counts.in_progress > 0 {
        "in_progress"
    } else if counts.total > 0 && counts.failed == counts.total {
        "failed"
    } else {
        "completed"
    }
    .into();
    record.batch.file_counts = counts;
    to_value(&record.batch)
}

pub async fn get_batch(ctx: &Ctx, vs_id: &str, batch_id: &str) -> Result<super::Reply, ApiError> {
    Ok(super::Reply::Json {
        body: batch_value(ctx, vs_id, batch_id).await?,
        headers: vec![("openai-poll-after-ms", ctx.runs.poll_after_ms.to_string())],
    })
}

pub async fn cancel_batch(ctx: &Ctx, vs_id: &str, batch_id: &str) -> Result<Value, ApiError> {
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
        if f.file.status != "in_progress" {
            continue;
        }
        let key = keys::vector_store_file(&ctx.tenant, vs_id, &f.file.id);
        let moved = store::update_json(ctx.store.as_ref(), &key, |mut r: VectorStoreFileRecord| {
            if r.file.status != "in_progress" {
                return Ok::<_, ApiError>(Update::Keep(false));
            }
            r.file.status = "cancelled".into();
            Ok(Update::Write(r, true))
        })
        .await?;
        if moved == Some(true) {
            update_store(ctx, vs_id, |r| {
                r.store
                    .file_counts
                    .moved(Some("in_progress"), Some("cancelled"))
            })
            .await?;
        }
    }
    batch_value(ctx, vs_id, batch_id).await
}

pub async fn list_batch_files(
    ctx: &Ctx,
    vs_id: &str,
    batch_id: &str,
    query: &Query,
) -> Result<Value, ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    let filter = status_filter(query)?;
    load_batch(ctx, vs_id, batch_id).await?;
    let page = list_objects(
        &ctx.store,
        &keys::vector_store_files(&ctx.tenant, vs_id),
        &q,
        |r: &VectorStoreFileRecord| &r.file.id,
        Some(|r: &VectorStoreFileRecord| {
            r.batch_id.as_deref() == Some(batch_id)
                && filter.as_deref().is_none_or(|f| r.file.status == f)
        }),
    )
    .await?;
    Ok(without_internal_fields(page))
}

/// Checks a filter's shape: a comparison `{type, key, value}` or a compound
/// `{type: and|or, filters: [...]}`, nothing else.
pub fn validate_filter(filter: &Value, param: &str) -> Result<(), ApiError> {
    let obj = filter.as_object().ok_or_else(|| {
        ApiError::invalid_param(param, format!("Invalid '{param}': expected an object."))
    })?;
    let kind = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid_param(
            &format!("{param}.type"),
            format!("Missing required parameter: '{param}.type'."),
        )
    })?;
    let compound = matches!(kind, "and" | "or");
    one_of(
        &format!("{param}.type"),
        kind,
        &[
            "eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "and", "or",
        ],
    )?;
    let allowed: &[&str] = if compound {
        &["type", "filters"]
    } else {
        &["type", "key", "value"]
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!(
                "Unrecognized request argument supplied: {param}.{}",
                crate::error::shown(extra)
            ),
            None,
        ));
    }
    if compound {
        let parts = obj
            .get("filters")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}.filters"),
                    format!("Invalid '{param}.filters': expected an array."),
                )
            })?;
        for (i, part) in parts.iter().enumerate() {
            validate_filter(part, &format!("{param}.filters[{i}]"))?;
        }
        return Ok(());
    }
    if !obj.get("key").is_some_and(Value::is_string) {
        return Err(ApiError::invalid_param(
            &format!("{param}.key"),
            format!("Invalid '{param}.key': expected a string."),
        ));
    }
    let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
    let value_ok = match obj.get("value") {
        Some(Value::Array(items)) => matches!(kind, "in" | "nin") && items.iter().all(scalar),
        Some(v) => scalar(v) && !matches!(kind, "in" | "nin"),
        None => false,
    };
    if !value_ok {
        return Err(ApiError::invalid_param(
            &format!("{param}.value"),
            format!("Invalid '{param}.value': expected a string, number or boolean (an array of them for 'in' and 'nin')."),
        ));
    }
    Ok(())
}

pub async fn search(ctx: &Ctx, vs_id: &str, body: &[u8]) -> Result<Value, ApiError> {
    let req: SearchRequest = parse_body(body)?;
    // Checked here, before the search: `search_store` takes the filter as valid.
    if let Some(f) = &req.filters {
        validate_filter(f, "filters")?;
    }
    let queries: Vec<String> = match &req.query {
        Value::String(s) if !s.trim().is_empty() => vec![s.clone()],
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
        {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        }
        _ => {
            return Err(ApiError::invalid_param(
                "query",
                "Invalid 'query': expected a non-empty string or array of strings.",
            ))
        }
    };
    let limit = match req.max_num_results {
        None => 10,
        Some(n) if (1..=50).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "max_num_results",
                "Invalid 'max_num_results': expected an integer between 1 and 50.",
            ))
        }
    };
    let min_score = match &req.ranking_options {
        None => 0.0,
        Some(r) => {
            if let Some(ranker) = r.get("ranker").and_then(Value::as_str) {
                one_of(
                    "ranking_options.ranker",
                    ranker,
                    &["none", "auto", "default-2024-11-15"],
                )?;
            }
            reject_unknown(r, "ranking_options", &["ranker", "score_threshold"])?;
            let t = match r.get("score_threshold") {
                None | Some(Value::Null) => 0.0,
                Some(v) => v.as_f64().ok_or_else(|| {
                    ApiError::invalid_param(
                        "ranking_options.score_threshold",
                        "Invalid 'ranking_options.score_threshold': expected a number.",
                    )
                })?,
            };
            validate::range("ranking_options.score_threshold", t, 0.0, 1.0)?;
            t as f32
        }
    };
    let _ = req.rewrite_query;
    let record = load(ctx, vs_id).await?;
    let data = search::search_store(
        ctx,
        &record,
        &queries,
        limit,
        min_score,
        req.filters.as_ref(),
    )
    .await?;
    // Searching keeps the store active (its expiry counts from the last activity).
    let at = now();
    update_store(ctx, vs_id, |r| {
        r.store.last_active_at = Some(at);
        r.store.expires_at = expires_at(r.store.expires_after.as_ref(), at);
    })
    .await?;
    Ok(json!({
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": data,
        "has_more": false,
        "next_page": null,
    }))
}
