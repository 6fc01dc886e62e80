//! Messages of a thread: create, list (with the `run_id` filter), retrieve, modify, delete.

use super::pagination::{list_objects, query_value, ListQuery, Query};
use super::threads;
use super::to_value;
use super::types::CreateMessage;
use super::validate::{metadata, nullable, parse_body, parse_required_body};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::{new_id, Kind};
use crate::ids::{MessageId, ThreadId};
use crate::model::claim;
use crate::model::message::Message;
use crate::model::values::Metadata;
use crate::store::{self, keys, Update};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyMessage {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
}

pub async fn create(ctx: &Ctx, thread_id: &ThreadId, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateMessage = parse_body(body)?;
    let new = req.validate("")?;
    let thread = threads::load_record(ctx, thread_id).await?;
    if let Some(run_id) = &thread.active_run_id {
        if !claim::is_live(ctx.store.as_ref(), &ctx.tenant, thread_id, run_id).await? {
            // A claim left behind by a crash does not block the thread.
            let message = new.into_message(thread_id, new_id(Kind::Message));
            threads::insert_message(ctx, &message).await?;
            return to_value(&message);
        }
        return Err(ApiError::invalid(
            format!("Can't add messages to {thread_id} while a run {run_id} is active."),
            None,
        ));
    }
    let message = new.into_message(thread_id, new_id(Kind::Message));
    threads::insert_message(ctx, &message).await?;
    to_value(&message)
}

pub async fn load(
    ctx: &Ctx,
    thread_id: &ThreadId,
    message_id: &MessageId,
) -> Result<Message, ApiError> {
    let key = keys::message(&ctx.tenant, thread_id, message_id);
    match store::get_json::<Message>(ctx.store.as_ref(), &key).await? {
        Some((m, _)) => Ok(m),
        None => {
            // Say which of the two is missing, as the API does.
            threads::load_record(ctx, thread_id).await?;
            Err(ApiError::not_found(Kind::Message, message_id))
        }
    }
}

pub async fn get(
    ctx: &Ctx,
    thread_id: &ThreadId,
    message_id: &MessageId,
) -> Result<Value, ApiError> {
    to_value(&load(ctx, thread_id, message_id).await?)
}

pub async fn modify(
    ctx: &Ctx,
    thread_id: &ThreadId,
    message_id: &MessageId,
    body: &[u8],
) -> Result<Value, ApiError> {
    let req: ModifyMessage = parse_required_body(body)?;
    if let Some(Some(m)) = &req.metadata {
        metadata("metadata", m)?;
    }
    let key = keys::message(&ctx.tenant, thread_id, message_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut m: Message| {
        match &req.metadata {
            Some(meta) => {
                m.metadata = meta.clone().unwrap_or_default();
                Ok::<_, ApiError>(Update::Write(m.clone(), m))
            }
            None => Ok(Update::Keep(m)),
        }
    })
    .await?;
    match updated {
        Some(m) => to_value(&m),
        None => {
            threads::load_record(ctx, thread_id).await?;
            Err(ApiError::not_found(Kind::Message, message_id))
        }
    }
}

pub async fn delete(
    ctx: &Ctx,
    thread_id: &ThreadId,
    message_id: &MessageId,
) -> Result<Value, ApiError> {
    let key = keys::message(&ctx.tenant, thread_id, message_id);
    if !ctx.store.delete(&key).await? {
        threads::load_record(ctx, thread_id).await?;
        return Err(ApiError::not_found(Kind::Message, message_id));
    }
    Ok(json!({"id": message_id, "object": "thread.message.deleted", "deleted": true}))
}

pub async fn list(ctx: &Ctx, thread_id: &ThreadId, query: &Query) -> Result<Value, ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    // One read to tell an empty thread from a missing one.
    threads::load_record(ctx, thread_id).await?;
    let run_filter = query_value(query, "run_id").map(str::to_string);
    let prefix = keys::messages(&ctx.tenant, thread_id);
    match run_filter {
        None => {
            list_objects(
                &ctx.store,
                &prefix,
                &q,
                |m: &Message| &m.id,
                None::<fn(&Message) -> bool>,
            )
            .await
        }
        Some(run_id) => {
            list_objects(
                &ctx.store,
                &prefix,
                &q,
                |m: &Message| &m.id,
                Some(|m: &Message| m.run_id.as_deref() == Some(run_id.as_str())),
            )
            .await
        }
    }
}
