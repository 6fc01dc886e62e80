//! Threads: create (with messages), retrieve, modify, delete (with everything under it).

use super::to_value;
use super::types::{CreateMessage, ToolResourcesRequest};
use super::validate::{max_items, metadata, nullable, parse_body, parse_required_body};
use super::vector_stores;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{derived_id, new_id, Kind};
use crate::ids::{FileId, ThreadId};
use crate::model::claim::{self, Claim};
use crate::model::message::Message;
use crate::model::now;
use crate::model::thread::{self, Thread, ThreadRecord};
use crate::model::values::{
    Attachment, AttachmentTool, CodeInterpreterResources, FileSearchResources, Metadata,
};
use crate::store::{self, keys, ETag, PutMode, Update};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

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
    let new_resources = req
        .tool_resources
        .unwrap_or_default()
        .resolve(&field("tool_resources"))?;
    let requested = req.messages.unwrap_or_default();
    max_items(&field("messages"), &requested, 32)?;
    let mut new_messages = Vec::with_capacity(requested.len());
    for (i, m) in requested.into_iter().enumerate() {
        new_messages.push(m.validate(&format!("{}[{i}]", field("messages")))?);
    }
    // Attached files must exist before anything is stored.
    for (i, m) in new_messages.iter().enumerate() {
        for (j, a) in m.attachments.iter().enumerate() {
            let found = match super::known_id::<FileId>(&a.file_id) {
                Ok(id) => super::files::load(ctx, &id).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(ApiError::NotFound { .. }) = found {
                let p = format!("{}[{i}].attachments[{j}].file_id", field("messages"));
                return Err(ApiError::invalid_param(
                    &p,
                    format!(
                        "No file found with id '{}'.",
                        crate::error::shown(&a.file_id)
                    ),
                ));
            }
        }
    }
    let tool_resources =
        vector_stores::create_requested(ctx, new_resources, &field("tool_resources")).await?;
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
    let attached = new_messages.iter().any(|m| !m.attachments.is_empty());
    for new in new_messages {
        let message = new.into_message(&record.thread.id, new_id(Kind::Message));
        insert_message(ctx, &message).await?;
    }
    if attached {
        // The attachments gave the thread a vector store or code_interpreter files after
        // it was written: answer with the thread as stored now, as a GET would show it.
        return load_record(ctx, &super::known_id(&record.thread.id)?).await;
    }
    Ok(record)
}

pub async fn create(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateThread = parse_body(body)?;
    to_value(&create_from(ctx, req, "").await?.thread)
}

/// Reads a thread record of this tenant, or the 404.
pub async fn load_record(ctx: &Ctx, thread_id: &ThreadId) -> Result<ThreadRecord, ApiError> {
    Ok(load_tagged(ctx, thread_id).await?.0)
}

/// `load_record` with the record's ETag (for a conditional update without another read).
pub async fn load_tagged(
    ctx: &Ctx,
    thread_id: &ThreadId,
) -> Result<(ThreadRecord, ETag), ApiError> {
    thread::load(ctx.store.as_ref(), &ctx.tenant, thread_id)
        .await?
        .ok_or_else(|| ApiError::not_found(Kind::Thread, thread_id))
}

pub async fn get(ctx: &Ctx, thread_id: &ThreadId) -> Result<Value, ApiError> {
    to_value(&load_record(ctx, thread_id).await?.thread)
}

pub async fn modify(ctx: &Ctx, thread_id: &ThreadId, body: &[u8]) -> Result<Value, ApiError> {
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

pub async fn delete(ctx: &Ctx, thread_id: &ThreadId) -> Result<Value, ApiError> {
    // The record goes first, so the thread is gone for every reader at once; then whatever
    // was under it (messages, runs, steps).
    let key = keys::thread(&ctx.tenant, thread_id);
    if !ctx.store.delete(&key).await? {
        return Err(ApiError::not_found(Kind::Thread, thread_id));
    }
    store::delete_prefix(&ctx.store, &keys::thread_prefix(&ctx.tenant, thread_id)).await?;
    end_session(ctx, thread_id).await;
    Ok(json!({"id": thread_id, "object": "thread.deleted", "deleted": true}))
}

/// Ends a deleted thread's Python session (code_interpreter), files and all. Only a started
/// executor can have sessions (`main` starts it at start-up).
pub async fn end_session(ctx: &Ctx, thread_id: &str) {
    if let Some((ci, executor)) = ctx
        .code_interpreter
        .started()
        .and_then(|ci| ci.executor().map(|e| (ci, e)))
    {
        let session = ci.session_id(&ctx.tenant, thread_id);
        if let Err(e) = executor.end_session(&session).await {
            log::warn!("cannot end the code_interpreter session of a deleted thread: {e}");
        }
    }
}

/// How long a thread's own vector store (made for message attachments) lives after its
/// last use, as on OpenAI.
const THREAD_STORE_DAYS: u64 = 7;

/// Stores a new message (create-only: one write), after giving its attachments to the
/// thread's tools.
pub async fn insert_message(ctx: &Ctx, message: &Message) -> Result<(), ApiError> {
    if !message.attachments.is_empty() {
        add_attachments(ctx, &message.thread_id, &message.attachments, "attachments").await?;
    }
    let key = keys::message(&ctx.tenant, &message.thread_id, &message.id);
    store::put_json(ctx.store.as_ref(), &key, message, PutMode::Create).await?;
    Ok(())
}

/// Gives the thread's tools the files of a message's attachments: `file_search` files go
/// into the thread's vector store (made on first use, with an id derived from the
/// thread's, so concurrent messages agree on it), `code_interpreter` files into its
/// `code_interpreter` resources. Files must exist (400 otherwise).
pub async fn add_attachments(
    ctx: &Ctx,
    thread_id: &str,
    attachments: &[Attachment],
    param: &str,
) -> Result<(), ApiError> {
    let mut search: Vec<String> = Vec::new();
    let mut code: Vec<String> = Vec::new();
    for (i, a) in attachments.iter().enumerate() {
        let file = match super::known_id::<FileId>(&a.file_id) {
            Ok(id) => super::files::load(ctx, &id).await.map(|_| ()),
            Err(e) => Err(e),
        };
        file.map_err(|e| match e {
            ApiError::NotFound { .. } => ApiError::invalid_param(
                &format!("{param}[{i}].file_id"),
                format!(
                    "No file found with id '{}'.",
                    crate::error::shown(&a.file_id)
                ),
            ),
            other => other,
        })?;
        for tool in &a.tools {
            let list = match tool {
                AttachmentTool::FileSearch {} => &mut search,
                AttachmentTool::CodeInterpreter {} => &mut code,
            };
            if !list.contains(&a.file_id) {
                list.push(a.file_id.clone());
            }
        }
    }
    if search.is_empty() && code.is_empty() {
        return Ok(());
    }
    let thread = load_record(ctx, &super::known_id(thread_id)?).await?;
    let mut store_id = None;
    if !search.is_empty() {
        let strategy = super::types::chunking("chunking_strategy", None)?;
        let existing = thread
            .thread
            .tool_resources
            .file_search
            .as_ref()
            .and_then(|fs| fs.vector_store_ids.first().cloned());
        let usable = match existing {
            Some(id) => match vector_stores::load(ctx, &super::known_id(&id)?).await {
                Ok(_) => Some(id),
                Err(ApiError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let id = match usable {
            Some(id) => {
                vector_stores::add_files(ctx, &id, &search, strategy).await?;
                id
            }
            None => {
                let id = derived_id(Kind::VectorStore, thread_id, 0);
                let new = vector_stores::NewStore {
                    name: String::new(),
                    description: None,
                    file_ids: search.clone(),
                    expires_after: Some(
                        json!({"anchor": "last_active_at", "days": THREAD_STORE_DAYS}),
                    ),
                    strategy: strategy.clone(),
                    metadata: Metadata::new(),
                };
                let (_, created) = vector_stores::create_store(ctx, id.clone(), new).await?;
                if !created {
                    vector_stores::add_files(ctx, &id, &search, strategy).await?;
                }
                id
            }
        };
        store_id = Some(id);
    }
    let key = keys::thread(&ctx.tenant, thread_id);
    store::update_json(ctx.store.as_ref(), &key, |mut t: ThreadRecord| {
        let resources = &mut t.thread.tool_resources;
        let mut changed = false;
        if let Some(id) = &store_id {
            let fs = resources
                .file_search
                .get_or_insert_with(FileSearchResources::default);
            if !fs.vector_store_ids.contains(id) {
                fs.vector_store_ids = vec![id.clone()];
                changed = true;
            }
        }
        if !code.is_empty() {
            let ci = resources
                .code_interpreter
                .get_or_insert_with(CodeInterpreterResources::default);
            for id in &code {
                if !ci.file_ids.contains(id) {
                    ci.file_ids.push(id.clone());
                    changed = true;
                }
            }
        }
        Ok::<_, ApiError>(if changed {
            Update::Write(t, ())
        } else {
            Update::Keep(())
        })
    })
    .await?;
    Ok(())
}

/// Claims the thread for `run_id` (`model::claim::claim`, which takes over a claim a crash
/// left behind): another active run is a 400, no thread the 404. Returns the thread as
/// claimed, with its ETag.
pub async fn claim_active_run(
    ctx: &Ctx,
    thread_id: &str,
    run_id: &str,
    known: Option<(ThreadRecord, ETag)>,
) -> Result<(ThreadRecord, ETag), ApiError> {
    match claim::claim(ctx.store.as_ref(), &ctx.tenant, thread_id, run_id, known).await? {
        Claim::Claimed(t, etag) => Ok((t, etag)),
        Claim::Held { active_run_id } => Err(ApiError::invalid(
            format!("Thread {thread_id} already has an active run {active_run_id}."),
            None,
        )),
        Claim::Missing => Err(ApiError::not_found(Kind::Thread, thread_id)),
    }
}

/// Clears the thread's active run if it is still `run_id`.
pub async fn release_active_run(ctx: &Ctx, thread_id: &str, run_id: &str) -> Result<(), ApiError> {
    claim::release(ctx.store.as_ref(), &ctx.tenant, thread_id, run_id, None).await?;
    Ok(())
}
