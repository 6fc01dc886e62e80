//! The Conversations API: a conversation is a thread (`conv_` id when made here; an
//! Assistants `thread_` id works too), its items the thread's messages plus the JSON items
//! under `items/` (`model::item`). Create, retrieve, update, delete; items: list, create,
//! retrieve, delete.

use super::items::{missing, parse_include, parse_input, unknown, wrong_type};
use super::pagination::{query_value, ListQuery, Order, Query};
use super::validate::{max_items, metadata, parse_body, parse_required_body};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{ConversationId, Kind};
use crate::model::thread::{self, Thread, ThreadRecord};
use crate::model::values::Metadata;
use crate::model::{claim, item, now};
use crate::store::{self, keys, PutMode, Update};
use serde_json::{json, Map, Value};

/// Most items one request may add.
const MAX_ITEMS: usize = 20;

/// A conversation id from the path: a malformed one (or another kind's) names nothing.
pub fn conversation_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).ok_or_else(|| ApiError::not_found(Kind::Conversation, id))
}

/// An item id from the path: only ids of item kinds can name an item.
pub fn item_id(id: &str) -> Result<String, ApiError> {
    if item::is_item_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::not_found(Kind::Item, id))
    }
}

/// The conversation face of a thread record.
pub fn view(record: &ThreadRecord) -> Value {
    json!({
        "id": record.thread.id,
        "object": "conversation",
        "created_at": record.thread.created_at,
        "metadata": record.thread.metadata,
    })
}

/// Reads the conversation (a thread record), or its 404.
pub async fn load(ctx: &Ctx, id: &ConversationId) -> Result<ThreadRecord, ApiError> {
    match thread::load(ctx.store.as_ref(), &ctx.tenant, id).await? {
        Some((record, _)) => Ok(record),
        None => Err(ApiError::not_found(Kind::Conversation, id.as_str())),
    }
}

/// The run or response active on the conversation, if one is (a claim a crash left behind
/// does not count).
async fn active(ctx: &Ctx, record: &ThreadRecord) -> Result<Option<String>, ApiError> {
    if let Some(run_id) = &record.active_run_id {
        if claim::is_live(ctx.store.as_ref(), &ctx.tenant, &record.thread.id, run_id).await? {
            return Ok(Some(run_id.clone()));
        }
    }
    Ok(None)
}

/// `a run run_x` or `a response resp_x`.
fn what(active: &str) -> String {
    if active.starts_with(Kind::Response.prefix()) {
        format!("a response {active}")
    } else {
        format!("a run {active}")
    }
}

/// Refuses to change the items of a conversation while a run or response writes to it, as
/// the Assistants API refuses a new message then (400).
async fn check_idle(ctx: &Ctx, record: &ThreadRecord, doing: &str) -> Result<(), ApiError> {
    match active(ctx, record).await? {
        Some(run_id) => Err(ApiError::invalid(
            format!(
                "Can't {doing} {} while {} is active.",
                record.thread.id,
                what(&run_id)
            ),
            None,
        )),
        None => Ok(()),
    }
}

/// `metadata` of a request: absent or `null` is empty.
fn parse_metadata(value: Option<&Value>) -> Result<Metadata, ApiError> {
    let meta = match value {
        None | Some(Value::Null) => Metadata::new(),
        Some(Value::Object(map)) => {
            let mut meta = Metadata::new();
            for (k, v) in map {
                match v {
                    Value::String(s) => {
                        meta.insert(k.clone(), s.clone());
                    }
                    other => return Err(wrong_type(&format!("metadata.{k}"), "a string", other)),
                }
            }
            meta
        }
        Some(other) => return Err(wrong_type("metadata", "an object", other)),
    };
    metadata("metadata", &meta)?;
    Ok(meta)
}

/// Items a request adds (`items`, 1..=20 or, at creation, 0..=20), checked and normalised.
fn parse_items(value: Option<&Value>, required: bool) -> Result<Vec<Value>, ApiError> {
    let list = match value {
        None | Some(Value::Null) if required => return Err(missing("items")),
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong_type("items", "an array", other)),
    };
    if required && list.is_empty() {
        return Err(ApiError::invalid_param(
            "items",
            "Invalid 'items': empty array. Expected an array with minimum length 1, but got an \
             empty array instead.",
        ));
    }
    max_items("items", list, MAX_ITEMS)?;
    let items = parse_input(&Value::Array(list.clone()), "items")?;
    for (i, it) in items.iter().enumerate() {
        if it["type"] == "item_reference" {
            return Err(ApiError::invalid_param(
                &format!("items[{i}].type"),
                "Item references cannot be added to a conversation: add the item itself.",
            ));
        }
    }
    Ok(items)
}

fn known(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unknown(k)),
        None => Ok(()),
    }
}

pub async fn create(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let req: Map<String, Value> = parse_body(body)?;
    known(&req, &["items", "metadata"])?;
    let meta = parse_metadata(req.get("metadata"))?;
    let items = parse_items(req.get("items"), false)?;
    let record = ThreadRecord {
        thread: Thread {
            id: ConversationId::new().to_string(),
            object: "thread".into(),
            created_at: now(),
            tool_resources: Default::default(),
            metadata: meta,
        },
        active_run_id: None,
    };
    let key = keys::thread(&ctx.tenant, &record.thread.id);
    store::put_json(ctx.store.as_ref(), &key, &record, PutMode::Create).await?;
    item::put_items(ctx.store.as_ref(), &ctx.tenant, &record.thread.id, &items).await?;
    Ok(view(&record))
}

pub async fn get(ctx: &Ctx, id: &ConversationId) -> Result<Value, ApiError> {
    Ok(view(&load(ctx, id).await?))
}

pub async fn update(ctx: &Ctx, id: &ConversationId, body: &[u8]) -> Result<Value, ApiError> {
    let req: Map<String, Value> = parse_required_body(body)?;
    known(&req, &["metadata"])?;
    if !req.contains_key("metadata") {
        return Err(missing("metadata"));
    }
    let meta = parse_metadata(req.get("metadata"))?;
    let key = keys::thread(&ctx.tenant, id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut t: ThreadRecord| {
        t.thread.metadata = meta.clone();
        Ok::<_, ApiError>(Update::Write(t.clone(), t))
    })
    .await?;
    match updated {
        Some(t) => Ok(view(&t)),
        None => Err(ApiError::not_found(Kind::Conversation, id.as_str())),
    }
}

/// Deletes the conversation and its items (the thread and everything under it), refused
/// (409) while a run or response is active on it.
pub async fn delete(ctx: &Ctx, id: &ConversationId) -> Result<Value, ApiError> {
    let record = load(ctx, id).await?;
    if let Some(run_id) = active(ctx, &record).await? {
        return Err(ApiError::Conflict(format!(
            "Can't delete {id} while {} is active.",
            what(&run_id)
        )));
    }
    // The record goes first, so the conversation is gone for every reader at once.
    let key = keys::thread(&ctx.tenant, id);
    if !ctx.store.delete(&key).await? {
        return Err(ApiError::not_found(Kind::Conversation, id.as_str()));
    }
    store::delete_prefix(&ctx.store, &keys::thread_prefix(&ctx.tenant, id)).await?;
    if let Some((ci, executor)) = ctx
        .code_interpreter
        .started()
        .and_then(|ci| ci.executor().map(|e| (ci, e)))
    {
        let session = ci.session_id(&ctx.tenant, id);
        if let Err(e) = executor.end_session(&session).await {
            log::warn!("cannot end the code_interpreter session of a deleted conversation: {e}");
        }
    }
    Ok(json!({"id": id, "object": "conversation.deleted", "deleted": true}))
}

/// The list body of conversation items (`first_id`/`last_id` null on an empty page).
fn list_body(items: Vec<Value>, has_more: bool) -> Value {
    let first = items.first().map(|i| i["id"].clone());
    let last = items.last().map(|i| i["id"].clone());
    json!({
        "object": "list",
        "data": items,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    })
}

/// The query of the items list: `limit` 1..=100 (20), `order` (desc), `after`, `include[]`.
pub fn check_list_query(query: &Query) -> Result<(item::PageQuery, Vec<String>), ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    let include = parse_include(query)?;
    let page = item::PageQuery {
        limit: q.limit,
        descending: q.order == Order::Desc,
        after: query_value(query, "after")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
    };
    Ok((page, include))
}

pub async fn list_items(
    ctx: &Ctx,
    id: &ConversationId,
    page: item::PageQuery,
    include: &[String],
) -> Result<Value, ApiError> {
    load(ctx, id).await?;
    let (items, has_more) = item::list_page(ctx.store.as_ref(), &ctx.tenant, id, &page).await?;
    let items = items
        .into_iter()
        .map(|i| item::shape_item(i, include))
        .collect();
    Ok(list_body(items, has_more))
}

/// The body of an items create: `items` (1..=20).
pub fn check_create_items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let req: Map<String, Value> = parse_required_body(body)?;
    known(&req, &["items"])?;
    parse_items(req.get("items"), true)
}

pub async fn create_items(
    ctx: &Ctx,
    id: &ConversationId,
    items: Vec<Value>,
    include: &[String],
) -> Result<Value, ApiError> {
    let record = load(ctx, id).await?;
    check_idle(ctx, &record, "add items to").await?;
    item::put_items(ctx.store.as_ref(), &ctx.tenant, id, &items).await?;
    let items = items
        .into_iter()
        .map(|i| item::shape_item(i, include))
        .collect();
    Ok(list_body(items, false))
}

pub async fn get_item(
    ctx: &Ctx,
    id: &ConversationId,
    item_id: &str,
    include: &[String],
) -> Result<Value, ApiError> {
    match item::get(ctx.store.as_ref(), &ctx.tenant, id, item_id).await? {
        Some(found) => Ok(item::shape_item(found, include)),
        None => {
            // Say which of the two is missing.
            load(ctx, id).await?;
            Err(ApiError::not_found(Kind::Item, item_id))
        }
    }
}

/// Deletes an item; answers the conversation.
pub async fn delete_item(ctx: &Ctx, id: &ConversationId, item_id: &str) -> Result<Value, ApiError> {
    let record = load(ctx, id).await?;
    check_idle(ctx, &record, "delete items of").await?;
    if !item::delete(ctx.store.as_ref(), &ctx.tenant, id, item_id).await? {
        return Err(ApiError::not_found(Kind::Item, item_id));
    }
    Ok(view(&record))
}
