//! Schema-only types for the OpenAPI document (`http::openapi`) that describe the stored
//! records' JSON: the documented shape of the fields the records hold as `serde_json` values
//! or plain strings (options, step details, annotations, errors, string constants) and the
//! `object` constants. The records point here with `#[schema(value_type = ...)]`; nothing
//! here is constructed. The request-side ones live in `api::schemas`, which re-exports
//! these. The Python conformance test (`tests/sdk/python/test_openapi.py`) validates real
//! responses against the served document, so these shapes cannot silently drift from what
//! the server sends.
//! - here: the helpers, string enums, `object` constants, metadata, attributes;
//! - `runs`: assistant and run options, run steps, message parts;
//! - `vector_stores`: expiry, chunking and ingestion errors of vector stores and their files.
#![allow(dead_code)]

use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A string that is always `value`.
pub(crate) fn constant(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

pub(crate) fn string_of(values: &[&str], description: &str) -> Object {
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

pub(crate) use string_enum;

string_enum!(
    /// How a reasoning model spends effort (passed on to the model).
    ReasoningEffort = crate::model::assistant::REASONING_EFFORTS
);
string_enum!(
    /// What a file is for: an upload's purpose, or `assistants_output` for a file the
    /// service made (the code_interpreter tool's figures and written files).
    FileObjectPurpose = crate::model::file::OBJECT_PURPOSES
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

pub(crate) use object_constants;

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

/// One of `options` (named components): `oneOf` references to them.
pub(crate) fn one_of_refs(
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

mod runs;
mod vector_stores;

pub use runs::*;
pub use vector_stores::*;
