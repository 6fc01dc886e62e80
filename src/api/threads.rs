//! Threads: create (with messages), retrieve, modify, delete (with everything under it).

use super::assistants::to_value;
use super::messages::{self, CreateMessage};
use super::types::{now, ToolResources, ToolResourcesRequest};
use super::validate::{max_items, metadata, nullable, parse_body, parse_required_body, Metadata};
use super::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::store::{self, keys, PutMode, Update};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateThread {
    /// Messages to start the thread with.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub messages: Option<Vec<CreateMessage>>,
    #[serde(default)]
    pub tool_resources: Option<ToolResourcesRequest>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyThread {
    #[serde(default)]
    tool_resources: Option<ToolResourcesRequest>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
}

/// Creates a thread and its initial messages; `param` prefixes field names (`thread` when
/// it comes from create-thread-and-run).
pub async fn create_from(
    ctx: &Ctx,
    req: CreateThread,
    param: &str,
) -> Result<ThreadRecord, ApiError> {
    let field = |name: &str| {
        if param.is_empty() {
            name.to_string()
        } else {
            format!("{param}.{name}")
        }
    };
    let meta = req.metadata.unwrap_or_default();
    metadata(&field("metadata"), &meta)?;
    let tool_resources = req
        .tool_resources
        .unwrap_or_default()
        .resolve(&field("tool_resources"))?;
    let requested = req.messages.unwrap_or_default();
    max_items(&field("messages"), &requested, 32)?;
    let mut new_messages = Vec::with_capacity(requested.len());
    for (i, m) in requested.into_iter().enumerate() {
        new_messages.push(m.validate(&format!("{}[{i}]", field("messages")))?);
    }
    let record = ThreadRecord {
        thread: Thread {
            id: new_id(Kind::Thread),
            object: "thread".into(),
            created_at: now(),
            tool_resources,
            metadata: meta,
        },
        active_run_id: None,
    };
    let key = keys::thread(&ctx.tenant, &record.thread.id);
    store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await?;
    for new in new_messages {
        let message = new.into_message(&record.thread.id, new_id(Kind::Message));
        messages::insert(ctx, &message).await?;
    }
    Ok(record)
}

pub async fn create(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateThread = parse_body(body)?;
    to_value(&create_from(ctx, req, "").await?.thread)
}

/// Reads a thread record of this tenant, or the 404.
pub async fn load_record(ctx: &Ctx, thread_id: &str) -> Result<ThreadRecord, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    let key = keys::thread(&ctx.tenant, thread_id);
    match store::get_json::<ThreadRecord>(ctx.store.as_ref(), &key).await? {
        Some((t, _)) => Ok(t),
        None => Err(ApiError::not_found(Kind::Thread, thread_id)),
    }
}

pub async fn get(ctx: &Ctx, thread_id: &str) -> Result<Value, ApiError> {
    to_value(&load_record(ctx, thread_id).await?.thread)
}

pub async fn modify(ctx: &Ctx, thread_id: &str, body: &[u8]) -> Result<Value, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    let req: ModifyThread = parse_required_body(body)?;
    if let Some(Some(m)) = &req.metadata {
        metadata("metadata", m)?;
    }
    let tool_resources = match req.tool_resources {
        Some(tr) => Some(tr.resolve_for_modify("tool_resources")?),
        None => None,
    };
    let key = keys::thread(&ctx.tenant, thread_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut t: ThreadRecord| {
        if let Some(meta) = &req.metadata {
            t.thread.metadata = meta.clone().unwrap_or_default();
        }
        if let Some(tr) = &tool_resources {
            t.thread.tool_resources = tr.clone();
        }
        Ok::<_, ApiError>(Update::Write(t.clone(), t))
    })
    .await?;
    match updated {
        Some(t) => to_value(&t.thread),
        None => Err(ApiError::not_found(Kind::Thread, thread_id)),
    }
}

pub async fn delete(ctx: &Ctx, thread_id: &str) -> Result<Value, ApiError> {
    super::path_id(Kind::Thread, thread_id)?;
    // The record goes first, so the thread is gone for every reader at once; then whatever
    // was under it (messages, runs, steps).
    let key = keys::thread(&ctx.tenant, thread_id);
    if !ctx.store.delete(&key).await? {
        return Err(ApiError::not_found(Kind::Thread, thread_id));
    }
    store::delete_prefix(&ctx.store, &keys::thread_prefix(&ctx.tenant, thread_id)).await?;
    Ok(json!({"id": thread_id, "object": "thread.deleted", "deleted": true}))
}

/// Marks `run_id` as the thread's active run, unless another run is active (400).
pub async fn claim_active_run(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<(), ApiError> {
    let key = keys::thread(&ctx.tenant, thread_id);
    let claimed = store::update_json(ctx.store.as_ref(), &key, |mut t: ThreadRecord| {
        match &t.active_run_id {
            Some(active) if active != run_id => Err(ApiError::invalid(
                format!("Thread {thread_id} already has an active run {active}."),
                None,
            )),
            Some(_) => Ok(Update::Keep(())),
            None => {
                t.active_run_id = Some(run_id.to_string());
                Ok(Update::Write(t, ()))
            }
        }
    })
    .await?;
    claimed.ok_or_else(|| ApiError::not_found(Kind::Thread, thread_id))
}

/// Clears the thread's active run if it is still `run_id`.
pub async fn release_active_run(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<(), ApiError> {
    let key = keys::thread(&ctx.tenant, thread_id);
    store::update_json(ctx.store.as_ref(), &key, |mut t: ThreadRecord| {
        if t.active_run_id.as_deref() == Some(run_id) {
            t.active_run_id = None;
            Ok::<_, ApiError>(Update::Write(t, ()))
        } else {
            Ok(Update::Keep(()))
        }
    })
    .await?;
    Ok(())
}
