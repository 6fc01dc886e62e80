//! Assistants: create, list, retrieve, modify, delete.

use super::pagination::{list_objects, ListQuery, Query};
use super::to_value;
use super::types::{validate_response_format, validate_tools, ToolResourcesRequest};
use super::validate::{
    self, max_chars, metadata, nullable, parse_body, parse_required_body, range,
};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::AssistantId;
use crate::ids::{new_id, Kind};
use crate::model::assistant::{Assistant, REASONING_EFFORTS};
use crate::model::now;
use crate::model::values::Metadata;
use crate::model::values::Tool;
use crate::store::{self, keys, PutMode, Update};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAssistant {
    /// The model (or Azure OpenAI deployment) runs use unless they name another.
    #[schema(min_length = 1, max_length = 256)]
    model: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 512)]
    description: Option<String>,
    /// The system instructions of its runs.
    #[serde(default)]
    #[schema(max_length = 256000)]
    instructions: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ReasoningEffort>)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    #[schema(max_items = 128)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    tool_resources: Option<ToolResourcesRequest>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Metadata>,
    /// Sampling temperature; 1 when not given.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 2.0)]
    temperature: Option<f64>,
    /// Nucleus sampling; 1 when not given.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    top_p: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ResponseFormat>)]
    response_format: Option<Value>,
}

/// Modify: every field optional; an explicit `null` clears a nullable field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModifyAssistant {
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256)]
    model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 512)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256000)]
    instructions: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::ReasoningEffort>)]
    reasoning_effort: Option<Option<String>>,
    #[serde(default)]
    #[schema(max_items = 128)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    tool_resources: Option<ToolResourcesRequest>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    metadata: Option<Option<Metadata>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 2.0)]
    temperature: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 1.0)]
    top_p: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<super::schemas::ResponseFormat>)]
    response_format: Option<Option<Value>>,
}

pub fn validate_model(model: &str) -> Result<(), ApiError> {
    validate::non_empty("model", model)?;
    max_chars("model", model, 256)
}

/// The fields create and modify share, as sent (each `None` when not given or null).
struct SharedFields<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    instructions: Option<&'a str>,
    reasoning_effort: Option<&'a str>,
    tools: Option<&'a [Tool]>,
    meta: Option<&'a Metadata>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    response_format: Option<&'a Value>,
}

/// Checks the fields create and modify share.
fn validate_fields(fields: SharedFields<'_>) -> Result<(), ApiError> {
    let SharedFields {
        name,
        description,
        instructions,
        reasoning_effort,
        tools,
        meta,
        temperature,
        top_p,
        response_format,
    } = fields;
    if let Some(v) = name {
        max_chars("name", v, 256)?;
    }
    if let Some(v) = description {
        max_chars("description", v, 512)?;
    }
    if let Some(v) = instructions {
        max_chars("instructions", v, 256_000)?;
    }
    if let Some(v) = reasoning_effort {
        super::types::one_of("reasoning_effort", v, REASONING_EFFORTS)?;
    }
    if let Some(t) = tools {
        validate_tools("tools", t, 128)?;
    }
    if let Some(m) = meta {
        metadata("metadata", m)?;
    }
    if let Some(t) = temperature {
        range("temperature", t, 0.0, 2.0)?;
    }
    if let Some(p) = top_p {
        range("top_p", p, 0.0, 1.0)?;
    }
    if let Some(f) = response_format {
        validate_response_format("response_format", f)?;
    }
    Ok(())
}

pub async fn create(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateAssistant = parse_body(body)?;
    validate_model(&req.model)?;
    validate_fields(SharedFields {
        name: req.name.as_deref(),
        description: req.description.as_deref(),
        instructions: req.instructions.as_deref(),
        reasoning_effort: req.reasoning_effort.as_deref(),
        tools: req.tools.as_deref(),
        meta: req.metadata.as_ref(),
        temperature: req.temperature,
        top_p: req.top_p,
        response_format: req.response_format.as_ref(),
    })?;
    let requested = req
        .tool_resources
        .unwrap_or_default()
        .resolve("tool_resources")?;
    let tool_resources =
        super::vector_stores::create_requested(ctx, requested, "tool_resources").await?;
    let assistant = Assistant {
        id: new_id(Kind::Assistant),
        object: "assistant".into(),
        created_at: now(),
        name: req.name,
        description: req.description,
        model: req.model,
        instructions: req.instructions,
        tools: req.tools.unwrap_or_default(),
        tool_resources,
        metadata: req.metadata.unwrap_or_default(),
        temperature: Some(req.temperature.unwrap_or(1.0)),
        top_p: Some(req.top_p.unwrap_or(1.0)),
        response_format: req.response_format.unwrap_or_else(|| json!("auto")),
        reasoning_effort: req.reasoning_effort,
    };
    let key = keys::assistant(&ctx.tenant, &assistant.id);
    store::put_json(ctx.store.as_ref(), &key, &assistant, PutMode::Create).await?;
    to_value(&assistant)
}

/// Reads an assistant of this tenant, or the 404.
pub async fn load(ctx: &Ctx, assistant_id: &AssistantId) -> Result<Assistant, ApiError> {
    crate::model::assistant::load(ctx.store.as_ref(), &ctx.tenant, assistant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(Kind::Assistant, assistant_id))
}

pub async fn get(ctx: &Ctx, assistant_id: &AssistantId) -> Result<Value, ApiError> {
    to_value(&load(ctx, assistant_id).await?)
}

pub async fn modify(ctx: &Ctx, assistant_id: &AssistantId, body: &[u8]) -> Result<Value, ApiError> {
    let req: ModifyAssistant = parse_required_body(body)?;
    if let Some(model) = &req.model {
        validate_model(model)?;
    }
    validate_fields(SharedFields {
        name: req.name.as_ref().and_then(Option::as_deref),
        description: req.description.as_ref().and_then(Option::as_deref),
        instructions: req.instructions.as_ref().and_then(Option::as_deref),
        reasoning_effort: req.reasoning_effort.as_ref().and_then(Option::as_deref),
        tools: req.tools.as_deref(),
        meta: req.metadata.as_ref().and_then(Option::as_ref),
        temperature: req.temperature.flatten(),
        top_p: req.top_p.flatten(),
        response_format: req.response_format.as_ref().and_then(Option::as_ref),
    })?;
    let tool_resources = match req.tool_resources.clone() {
        Some(tr) => Some(tr.resolve_for_modify("tool_resources")?),
        None => None,
    };
    let key = keys::assistant(&ctx.tenant, assistant_id);
    let updated = store::update_json(ctx.store.as_ref(), &key, |mut a: Assistant| {
        if let Some(v) = &req.model {
            a.model = v.clone();
        }
        if let Some(v) = &req.name {
            a.name = v.clone();
        }
        if let Some(v) = &req.description {
            a.description = v.clone();
        }
        if let Some(v) = &req.instructions {
            a.instructions = v.clone();
        }
        if let Some(v) = &req.reasoning_effort {
            a.reasoning_effort = v.clone();
        }
        if let Some(v) = &req.tools {
            a.tools = v.clone();
        }
        if let Some(v) = &tool_resources {
            a.tool_resources = v.clone();
        }
        if let Some(v) = &req.metadata {
            a.metadata = v.clone().unwrap_or_default();
        }
        if let Some(v) = req.temperature {
            a.temperature = Some(v.unwrap_or(1.0));
        }
        if let Some(v) = req.top_p {
            a.top_p = Some(v.unwrap_or(1.0));
        }
        if let Some(v) = &req.response_format {
            a.response_format = v.clone().unwrap_or_else(|| json!("auto"));
        }
        Ok::<_, ApiError>(Update::Write(a.clone(), a))
    })
    .await?;
    match updated {
        Some(a) => to_value(&a),
        None => Err(ApiError::not_found(Kind::Assistant, assistant_id)),
    }
}

pub async fn delete(ctx: &Ctx, assistant_id: &AssistantId) -> Result<Value, ApiError> {
    let key = keys::assistant(&ctx.tenant, assistant_id);
    if !ctx.store.delete(&key).await? {
        return Err(ApiError::not_found(Kind::Assistant, assistant_id));
    }
    Ok(json!({"id": assistant_id, "object": "assistant.deleted", "deleted": true}))
}

pub async fn list(ctx: &Ctx, query: &Query) -> Result<Value, ApiError> {
    let q = ListQuery::parse(query, 100, 20)?;
    list_objects(
        &ctx.store,
        &keys::assistants(&ctx.tenant),
        &q,
        |a: &Assistant| &a.id,
        None::<fn(&Assistant) -> bool>,
    )
    .await
}
