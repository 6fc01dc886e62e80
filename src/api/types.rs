//! The request side of the value types several resources share (tools, tool resources,
//! content parts, attachments, response formats, chunking strategies): their checks, and the
//! request forms that differ from the stored ones (`model::values`); the message request form
//! (`CreateMessage`) that thread creation, message creation and runs' `additional_messages`
//! share.

use super::validate::{self, max_chars, max_items, range};
use crate::error::ApiError;
use crate::ids::{FileId, VectorStoreId};
use crate::model::message::{Message, MessageStatus};
use crate::model::now;
use crate::model::values::{
    text_part, Attachment, CodeInterpreterResources, ContentPart, FileSearchResources, ImageFile,
    ImageUrl, Metadata, Tool, ToolResources,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// A function name as the model endpoints take it: `^[a-zA-Z0-9_-]{1,64}$` (also the
/// rule of a `json_schema` format's name).
pub(crate) fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a tools array (`param` is its field name, `max` its length limit).
pub fn validate_tools(param: &str, tools: &[Tool], max: usize) -> Result<(), ApiError> {
    max_items(param, tools, max)?;
    let mut names = std::collections::HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        match tool {
            Tool::CodeInterpreter {} => {}
            Tool::FileSearch { file_search } => {
                if let Some(options) = file_search {
                    if let Some(n) = options.max_num_results {
                        if !(1..=50).contains(&n) {
                            return Err(ApiError::invalid_param(
                                &format!("{param}[{i}].file_search.max_num_results"),
                                format!(
                                    "Invalid '{param}[{i}].file_search.max_num_results': {n} \
                                     is out of range. Expected a value between 1 and 50."
                                ),
                            ));
                        }
                    }
                    if let Some(ranking) = &options.ranking_options {
                        let p = format!("{param}[{i}].file_search.ranking_options");
                        range(
                            &format!("{p}.score_threshold"),
                            ranking.score_threshold,
                            0.0,
                            1.0,
                        )?;
                        if let Some(ranker) = &ranking.ranker {
                            one_of(
                                &format!("{p}.ranker"),
                                ranker,
                                &["auto", "default_2024_08_21"],
                            )?;
                        }
                    }
                }
            }
            Tool::Function { function } => {
                let p = format!("{param}[{i}].function.name");
                if !valid_function_name(&function.name) {
                    return Err(ApiError::invalid_param(
                        &p,
                        format!(
                            "Invalid '{p}': string does not match pattern. Expected a string \
                             that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
                        ),
                    ));
                }
                if !names.insert(function.name.clone()) {
                    return Err(ApiError::invalid_param(
                        &p,
                        format!("Duplicate function name '{}' in '{param}'.", function.name),
                    ));
                }
                if let Some(params) = &function.parameters {
                    if !params.is_object() {
                        let p = format!("{param}[{i}].function.parameters");
                        return Err(ApiError::invalid_param(
                            &p,
                            format!("Invalid '{p}': expected an object (a JSON Schema)."),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn one_of(param: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let list = allowed
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::invalid_param(
        param,
        format!(
            "Invalid value: '{}'. Supported values are: {list}.",
            crate::error::shown(value)
        ),
    ))
}

/// `tool_resources` as requests send them (the `vector_stores` helper included).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolResourcesRequest {
    #[serde(default)]
    pub code_interpreter: Option<CodeInterpreterResources>,
    #[serde(default)]
    pub file_search: Option<FileSearchResourcesRequest>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSearchResourcesRequest {
    #[serde(default)]
    #[schema(max_items = 1)]
    pub vector_store_ids: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<super::schemas::VectorStoreHelper>>, max_items = 1)]
    pub vector_stores: Option<Vec<Value>>,
}

/// One entry of the `file_search.vector_stores` helper, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewVectorStore {
    pub file_ids: Vec<String>,
    /// The stored form of the chunking strategy.
    pub chunking_strategy: Value,
    pub metadata: Metadata,
}

/// `tool_resources` of a create request, checked: the stored form, and the vector stores
/// its `file_search.vector_stores` helper asks for (created, and their ids added, by
/// `vector_stores::create_requested`).
#[derive(Debug, Clone, Default)]
pub struct NewToolResources {
    pub resources: ToolResources,
    pub new_vector_stores: Vec<NewVectorStore>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorStoreHelper {
    #[serde(default)]
    file_ids: Vec<String>,
    #[serde(default)]
    chunking_strategy: Option<Value>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Parses the `vector_stores` helper (at most one store of at most 10,000 files).
fn vector_store_helpers(param: &str, items: Vec<Value>) -> Result<Vec<NewVectorStore>, ApiError> {
    max_items(param, &items, 1)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("{param}[{i}]");
        let helper: VectorStoreHelper = serde_json::from_value(item).map_err(|e| {
            let e = super::validate::shorten_quoted(&e.to_string());
            ApiError::invalid_param(&p, format!("Invalid '{p}': {e}."))
        })?;
        max_items(&format!("{p}.file_ids"), &helper.file_ids, 10_000)?;
        for (j, id) in helper.file_ids.iter().enumerate() {
            validate::id::<FileId>(&format!("{p}.file_ids[{j}]"), id)?;
        }
        let chunking_strategy = chunking(
            &format!("{p}.chunking_strategy"),
            helper.chunking_strategy.as_ref(),
        )?;
        let metadata = helper.metadata.unwrap_or_default();
        validate::metadata(&format!("{p}.metadata"), &metadata)?;
        out.push(NewVectorStore {
            file_ids: helper.file_ids,
            chunking_strategy,
            metadata,
        });
    }
    Ok(out)
}

impl ToolResourcesRequest {
    /// Validates and converts to the stored form. On create, `file_search` must name its
    /// vector stores (or ask for new ones); on modify an empty `file_search` clears them.
    pub fn resolve(self, param: &str) -> Result<NewToolResources, ApiError> {
        self.resolve_as(param, true)
    }

    pub fn resolve_for_modify(self, param: &str) -> Result<ToolResources, ApiError> {
        Ok(self.resolve_as(param, false)?.resources)
    }

    fn resolve_as(self, param: &str, ids_required: bool) -> Result<NewToolResources, ApiError> {
        let code_interpreter = match self.code_interpreter {
            Some(ci) => {
                let p = format!("{param}.code_interpreter.file_ids");
                max_items(&p, &ci.file_ids, 20)?;
                for (i, id) in ci.file_ids.iter().enumerate() {
                    validate::id::<FileId>(&format!("{p}[{i}]"), id)?;
                }
                Some(ci)
            }
            None => None,
        };
        let mut new_vector_stores = Vec::new();
        let file_search = match self.file_search {
            Some(fs) => {
                // `vector_stores: []` asks for no store: as valid as `vector_store_ids: []`.
                let helpers_given = fs.vector_stores.is_some();
                let helpers = fs.vector_stores.filter(|v| !v.is_empty());
                let p = format!("{param}.file_search.vector_store_ids");
                let ids = match (fs.vector_store_ids, helpers) {
                    (Some(ids), Some(_)) if !ids.is_empty() => {
                        return Err(ApiError::invalid_param(
                            &format!("{param}.file_search"),
                            format!(
                                "Invalid '{param}.file_search': give either 'vector_store_ids' \
                                 or 'vector_stores', not both."
                            ),
                        ))
                    }
                    (_, Some(helpers)) if ids_required => {
                        new_vector_stores = vector_store_helpers(
                            &format!("{param}.file_search.vector_stores"),
                            helpers,
                        )?;
                        Vec::new()
                    }
                    (_, Some(_)) => {
                        return Err(ApiError::invalid_param(
                            &format!("{param}.file_search.vector_stores"),
                            format!(
                                "Invalid '{param}.file_search.vector_stores': stores can be \
                                 created this way only on create; pass 'vector_store_ids'."
                            ),
                        ))
                    }
                    (Some(ids), None) => ids,
                    (None, None) if !ids_required || helpers_given => Vec::new(),
                    (None, None) => {
                        return Err(ApiError::invalid_param(
                            &p,
                            format!("Missing required parameter: '{p}'."),
                        ))
                    }
                };
                max_items(&p, &ids, 1)?;
                for (i, id) in ids.iter().enumerate() {
                    validate::id::<VectorStoreId>(&format!("{p}[{i}]"), id)?;
                }
                Some(FileSearchResources {
                    vector_store_ids: ids,
                })
            }
            None => None,
        };
        Ok(NewToolResources {
            resources: ToolResources {
                code_interpreter,
                file_search,
            },
            new_vector_stores,
        })
    }
}

/// `response_format`: "auto", or `{type: text|json_object|json_schema, ...}`.
pub fn validate_response_format(param: &str, value: &Value) -> Result<(), ApiError> {
    match value {
        Value::String(s) => one_of(param, s, &["auto"]),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}.type"),
                    format!("Missing required parameter: '{param}.type'."),
                )
            })?;
            one_of(
                &format!("{param}.type"),
                kind,
                &["text", "json_object", "json_schema"],
            )?;
            let allowed: &[&str] = if kind == "json_schema" {
                &["type", "json_schema"]
            } else {
                &["type"]
            };
            if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(ApiError::invalid(
                    format!(
                        "Unrecognized request argument supplied: {param}.{}",
                        crate::error::shown(extra)
                    ),
                    None,
                ));
            }
            if kind == "json_schema" {
                let p = format!("{param}.json_schema");
                let schema = map
                    .get("json_schema")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        ApiError::invalid_param(&p, format!("Missing required parameter: '{p}'."))
                    })?;
                if let Some(extra) = schema
                    .keys()
                    .find(|k| !["name", "description", "schema", "strict"].contains(&k.as_str()))
                {
                    return Err(ApiError::invalid(
                        format!(
                            "Unrecognized request argument supplied: {p}.{}",
                            crate::error::shown(extra)
                        ),
                        None,
                    ));
                }
                let name = schema.get("name").and_then(Value::as_str).unwrap_or("");
                if !valid_function_name(name) {
                    return Err(ApiError::invalid_param(
                        &format!("{p}.name"),
                        format!(
                            "Invalid '{p}.name': expected a string matching \
                             '^[a-zA-Z0-9_-]{{1,64}}$'."
                        ),
                    ));
                }
                if schema.get("schema").is_some_and(|s| !s.is_object()) {
                    return Err(ApiError::invalid_param(
                        &format!("{p}.schema"),
                        format!("Invalid '{p}.schema': expected an object."),
                    ));
                }
                if schema
                    .get("strict")
                    .is_some_and(|s| !(s.is_boolean() || s.is_null()))
                {
                    return Err(ApiError::invalid_param(
                        &format!("{p}.strict"),
                        format!("Invalid '{p}.strict': expected a boolean."),
                    ));
                }
                if schema.get("description").is_some_and(|s| !s.is_string()) {
                    return Err(ApiError::invalid_param(
                        &format!("{p}.description"),
                        format!("Invalid '{p}.description': expected a string."),
                    ));
                }
            }
            Ok(())
        }
        _ => Err(ApiError::invalid_param(
            param,
            format!("Invalid '{param}': expected \"auto\" or an object."),
        )),
    }
}

/// A content part as requests send it: text is a plain string there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum InputPart {
    Text {
        #[schema(max_length = 256000)]
        text: String,
    },
    ImageFile {
        image_file: ImageFile,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
}

fn part_error(param: &str, e: serde_json::Error) -> ApiError {
    let message = e.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ApiError::invalid(
            format!(
                "Unrecognized request argument supplied: {param}.{}",
                crate::error::shown(field)
            ),
            None,
        );
    }
    ApiError::invalid_param(
        param,
        format!(
            "Invalid '{param}': {}.",
            super::validate::shorten_quoted(&message)
        ),
    )
}

/// Message `content` of a request: a string or a non-empty array of parts.
pub fn parse_content(param: &str, content: &Value) -> Result<Vec<ContentPart>, ApiError> {
    match content {
        Value::String(s) => {
            max_chars(param, s, 256_000)?;
            Ok(vec![text_part(s.clone())])
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::invalid_param(
                    param,
                    format!(
                        "Invalid '{param}': empty array. Expected an array with minimum length \
                         1, but got an empty array instead."
                    ),
                ));
            }
            let mut parts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{param}[{i}]");
                let part: InputPart =
                    serde_json::from_value(item.clone()).map_err(|e| part_error(&p, e))?;
                parts.push(match part {
                    InputPart::Text { text } => {
                        max_chars(&format!("{p}.text"), &text, 256_000)?;
                        text_part(text)
                    }
                    InputPart::ImageFile { image_file } => {
                        validate::id::<FileId>(
                            &format!("{p}.image_file.file_id"),
                            &image_file.file_id,
                        )?;
                        detail(
                            &format!("{p}.image_file.detail"),
                            image_file.detail.as_deref(),
                        )?;
                        ContentPart::ImageFile { image_file }
                    }
                    InputPart::ImageUrl { image_url } => {
                        let u = &image_url.url;
                        if !(u.starts_with("http://")
                            || u.starts_with("https://")
                            || u.starts_with("data:"))
                        {
                            return Err(ApiError::invalid_param(
                                &format!("{p}.image_url.url"),
                                format!("Invalid '{p}.image_url.url': expected a URL."),
                            ));
                        }
                        detail(
                            &format!("{p}.image_url.detail"),
                            image_url.detail.as_deref(),
                        )?;
                        ContentPart::ImageUrl { image_url }
                    }
                });
            }
            Ok(parts)
        }
        Value::Null => Err(ApiError::invalid_param(
            param,
            format!("Missing required parameter: '{param}'."),
        )),
        _ => Err(ApiError::invalid_param(
            param,
            format!("Invalid '{param}': expected a string or an array of content parts."),
        )),
    }
}

fn detail(param: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(d) => one_of(param, d, &["auto", "low", "high"]),
        None => Ok(()),
    }
}

pub fn validate_attachments(param: &str, attachments: &[Attachment]) -> Result<(), ApiError> {
    for (i, a) in attachments.iter().enumerate() {
        validate::id::<FileId>(&format!("{param}[{i}].file_id"), &a.file_id)?;
    }
    Ok(())
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
pub fn reject_unknown(value: &Value, param: &str, allowed: &[&str]) -> Result<(), ApiError> {
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

/// A message as create-message (and thread creation, and `additional_messages`) send it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    #[schema(value_type = super::schemas::MessageRole)]
    pub role: String,
    #[schema(value_type = super::schemas::MessageContentInput)]
    pub content: Value,
    #[serde(default)]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Metadata>)]
    pub metadata: Option<Metadata>,
}

/// A validated message ready to be stored on a thread.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: String,
    pub content: Vec<ContentPart>,
    pub attachments: Vec<Attachment>,
    pub metadata: Metadata,
}

impl CreateMessage {
    /// Validates the request; `param` prefixes field names (e.g. `messages[2]`).
    pub fn validate(self, param: &str) -> Result<NewMessage, ApiError> {
        let field = |name: &str| {
            if param.is_empty() {
                name.to_string()
            } else {
                format!("{param}.{name}")
            }
        };
        one_of(&field("role"), &self.role, &["user", "assistant"])?;
        let content = parse_content(&field("content"), &self.content)?;
        let attachments = self.attachments.unwrap_or_default();
        validate_attachments(&field("attachments"), &attachments)?;
        let meta = self.metadata.unwrap_or_default();
        validate::metadata(&field("metadata"), &meta)?;
        Ok(NewMessage {
            role: self.role,
            content,
            attachments,
            metadata: meta,
        })
    }
}

impl NewMessage {
    /// The stored message, completed at creation (messages from the API are never partial).
    pub fn into_message(self, thread_id: &str, id: String) -> Message {
        let created_at = now();
        Message {
            id,
            object: "thread.message".into(),
            created_at,
            thread_id: thread_id.to_string(),
            status: MessageStatus::Completed,
            incomplete_details: None,
            completed_at: Some(created_at),
            incomplete_at: None,
            role: self.role,
            content: self.content,
            assistant_id: None,
            run_id: None,
            attachments: self.attachments,
            metadata: self.metadata,
        }
    }
}
