//! Vector stores: the stores themselves (create, with files; read, modify, delete, list),
//! and what their files and batches share (writing a file record, queueing ingestion).
//! Their files, batches and search are `vector_store_files`, `file_batches` and
//! `vector_search`.
//! Files are ingested (extracted, chunked, embedded) asynchronously through the work queue
//! (`retrieval::ingest`); `status` and `file_counts` follow.

use super::files;
use super::pagination::{list_objects, without_internal_fields, ListQuery, Query};
use super::to_value;
use super::types::{chunking, one_of, reject_unknown};
use super::validate::{self, max_chars, max_items, metadata, nullable, parse_required_body};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::ids::{FileId, VectorStoreId};
use crate::model::now;
use crate::model::values::Metadata;
use crate::model::vector_store::{
    self, expires_at, FileCounts, VectorStore, VectorStoreFile, VectorStoreFileRecord,
    VectorStoreFileStatus, VectorStoreRecord, VectorStoreStatus,
};
use crate::queue::{FileIngest, WorkItem};
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

/// One file of a batch: its id, chunking strategy and attributes.
pub(super) type BatchEntry = (String, Value, Option<Map<String, Value>>);

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

pub async fn load(ctx: &Ctx, vs_id: &VectorStoreId) -> Result<VectorStoreRecord, ApiError> {
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
        let id: FileId = validate::existing_id(&format!("file_ids[{i}]"), id)?;
        files::load(ctx, &id).await?;
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
            status: VectorStoreStatus::Completed,
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
        record
            .store
            .file_counts
            .moved(None, Some(VectorStoreFileStatus::InProgress));
    }
    record.refresh_status();
    let key = keys::vector_store(&ctx.tenant, &record.store.id);
    match store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await {
        Ok(_) => {}
        Err(store::StoreError::Conflict) => {
            return Ok((load(ctx, &super::known_id(&record.store.id)?).await?, false));
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
            r.store
                .file_counts
                .moved(None, Some(VectorStoreFileStatus::InProgress));
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
            let file = match super::known_id::<FileId>(id) {
                Ok(file_id) => files::load(ctx, &file_id).await.map(|_| ()),
                Err(e) => Err(e),
            };
            file.map_err(|e| match e {
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
pub(super) async fn write_file_record(
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
            status: VectorStoreFileStatus::InProgress,
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
pub(super) async fn enqueue_ingestion(
    ctx: &Ctx,
    vs_id: &str,
    file_ids: &[String],
) -> Result<(), ApiError> {
    for file_id in file_ids {
        let item = WorkItem::Ingest(FileIngest {
            tenant: ctx.tenant.clone(),
            vector_store_id: vs_id.to_string(),
            file_id: file_id.clone(),
        });
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

pub async fn get(ctx: &Ctx, vs_id: &VectorStoreId) -> Result<Value, ApiError> {
    to_value(&load(ctx, vs_id).await?.store)
}

pub async fn modify(ctx: &Ctx, vs_id: &VectorStoreId, body: &[u8]) -> Result<Value, ApiError> {
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

pub async fn delete(ctx: &Ctx, vs_id: &VectorStoreId) -> Result<Value, ApiError> {
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
        keys::vector_store_webhooks(&ctx.tenant, vs_id),
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
