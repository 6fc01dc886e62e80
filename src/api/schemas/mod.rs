//! Schema-only types for the OpenAPI document (`http::openapi`): the documented shape of the
//! JSON that operations build as `serde_json` values (lists, deleted objects, step details,
//! filters...) and of the string constants and free-form objects the request and response
//! types hold as `String` or `Value`. The real types point here with
//! `#[schema(value_type = ...)]`; nothing here is constructed. The Python conformance test
//! (`tests/sdk/python/test_openapi.py`) validates real responses against the served document,
//! so these shapes cannot silently drift from what the server sends.
//! - here: helpers, string enums, `object` constants, metadata, attributes, errors;
//! - `lists`: list pages, deleted objects, query parameters;
//! - `runs`: assistant and run options, run steps, messages;
//! - `vector_stores`: uploads, vector stores, search.
#![allow(dead_code)]

use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType,
    Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// A string that is always `value`.
pub fn constant(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

fn string_of(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description.trim()).filter(|d| !d.is_empty()))
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// A named string enum (a component of its own), its values from a list in the code where
/// the code has one.
macro_rules! string_enum {
    ($(#[doc = $doc:literal])* $name:ident = $values:expr) => {
        $(#[doc = $doc])*
        pub struct $name;
        impl $name {
            pub const VALUES: &'static [&'static str] = $values;
        }
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_of(Self::VALUES, concat!($($doc, "\n"),*)).into()
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

string_enum!(
    /// How a reasoning model spends effort (passed on to the model).
    ReasoningEffort = crate::api::assistants::REASONING_EFFORTS
);
string_enum!(
    /// What a file is for.
    FilePurpose = crate::api::files::PURPOSES
);
string_enum!(
    /// `queued` → `in_progress` → `completed`, `incomplete`, `failed`, `requires_action`
    /// (tool outputs wanted), `cancelling` → `cancelled`, or `expired` (tool outputs not
    /// submitted in time).
    RunStatus = &[
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "incomplete",
        "expired",
    ]
);
string_enum!(
    /// The status of a run step.
    RunStepStatus = &["in_progress", "cancelled", "failed", "completed", "expired"]
);
string_enum!(
    /// What a run step did.
    RunStepType = &["message_creation", "tool_calls"]
);
string_enum!(
    /// The status of a message.
    MessageStatus = &["in_progress", "incomplete", "completed"]
);
string_enum!(
    /// Who wrote a message.
    MessageRole = &["user", "assistant"]
);
string_enum!(
    /// Image detail level for vision models.
    ImageDetail = &["auto", "low", "high"]
);
string_enum!(
    /// List order by creation time.
    ListOrder = &["asc", "desc"]
);
string_enum!(
    /// A file's processing status (this server stores files `processed` at once).
    FileStatus = &["uploaded", "processed", "error"]
);
string_enum!(
    /// `in_progress` while files are ingested, `completed` when none is, `expired` after
    /// `expires_at`.
    VectorStoreStatus = &["expired", "in_progress", "completed"]
);
string_enum!(
    /// The ingestion status of a file in a vector store.
    VectorStoreFileStatus = &["in_progress", "completed", "cancelled", "failed"]
);
string_enum!(
    /// The status of a file batch.
    FileBatchStatus = &["in_progress", "completed", "cancelled", "failed"]
);
string_enum!(
    /// The ranker of the `file_search` tool.
    FileSearchRanker = &["auto", "default_2024_08_21"]
);
string_enum!(
    /// Step fields that lists and reads can add: the content of file search results.
    RunStepInclude = &["step_details.tool_calls[*].file_search.results[*].content"]
);

/// `object` constants of the API objects, for `#[schema(schema_with = ...)]`.
macro_rules! object_constants {
    ($($name:ident = $value:literal),* $(,)?) => {
        $(
            #[doc = concat!("Always `", $value, "`.")]
            pub fn $name() -> Object {
                constant($value)
            }
        )*
    };
}

object_constants! {
    assistant_object = "assistant",
    thread_object = "thread",
    message_object = "thread.message",
    run_object = "thread.run",
    run_step_object = "thread.run.step",
    file_object = "file",
    vector_store_object = "vector_store",
    vector_store_file_object = "vector_store.file",
    file_batch_object = "vector_store.files_batch",
    list_object = "list",
    file_content_page_object = "vector_store.file_content.page",
    search_results_page_object = "vector_store.search_results.page",
}

/// Up to 16 key-value pairs: keys at most 64 characters, values strings of at most 512.
pub struct Metadata;

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Set of up to 16 key-value pairs attached to an object: keys are strings of at \
                 most 64 characters, values strings of at most 512.",
            ))
            .max_properties(Some(16))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(64)),
            ))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(512)),
            ))
            .into()
    }
}

impl ToSchema for Metadata {}

/// Vector store file attributes: up to 16 pairs, keys at most 64 characters, values strings
/// (at most 512 characters), numbers or booleans.
pub struct Attributes;

impl PartialSchema for Attributes {
    fn schema() -> RefOr<Schema> {
        let value = OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(512)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Up to 16 key-value pairs for filtering searches: keys of at most 64 \
                 characters, values strings (at most 512 characters), numbers or booleans.",
            ))
            .max_properties(Some(16))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(64)),
            ))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
                value.build(),
            )))))
            .into()
    }
}

impl ToSchema for Attributes {}

// ---- Errors ----

/// The error body of every failed request.
#[derive(ToSchema)]
pub struct ErrorResponse {
    error: ErrorObject,
}

#[derive(ToSchema)]
pub struct ErrorObject {
    /// What went wrong, for people.
    message: String,
    #[schema(rename = "type", schema_with = error_type)]
    kind: String,
    /// The request field the error is about (`tools[0].function.name`), when one is.
    #[schema(required)]
    param: Option<String>,
    /// A machine-readable code (`invalid_api_key`, `invalid_beta`, `service_unavailable`),
    /// when there is one.
    #[schema(required)]
    code: Option<String>,
}

fn error_type() -> Object {
    string_of(
        &["invalid_request_error", "server_error"],
        "`invalid_request_error` for 4xx answers, `server_error` for 5xx.",
    )
}

/// One of `options` (named components): `oneOf` references to them.
fn one_of_refs(
    description: &str,
    names: &[Cow<'static, str>],
    extra: Option<Object>,
) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    if let Some(extra) = extra {
        one_of = one_of.item(extra);
    }
    for name in names {
        one_of = one_of.item(Ref::from_schema_name(name.clone()));
    }
    one_of.into()
}

mod lists;
mod runs;
mod vector_stores;

pub use lists::*;
pub use runs::*;
pub use vector_stores::*;
