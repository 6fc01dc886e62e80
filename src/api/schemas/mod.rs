//! Schema-only types for the OpenAPI document (`http::openapi`): the documented shape of the
//! JSON that operations build as `serde_json` values (lists, deleted objects, step details,
//! filters...) and of the string constants and free-form objects the request and response
//! types hold as `String` or `Value`. The real types point here with
//! `#[schema(value_type = ...)]`; nothing here is constructed. The Python conformance test
//! (`tests/sdk/python/test_openapi.py`) validates real responses against the served document,
//! so these shapes cannot silently drift from what the server sends.
//! Those that describe the stored records' fields are the model's (`model::schemas`, all
//! re-exported here); these are the request side's and the list pages'.
//! - here: the request-side string enums and `object` constants, errors;
//! - `conversations`: the Conversations API's objects, items, bodies and parameters;
//! - `lists`: list pages, deleted objects, query parameters;
//! - `runs`: message content as requests send it;
//! - `vector_stores`: uploads, chunking and filters in requests, search.
#![allow(dead_code)]

pub use crate::model::schemas::*;
use crate::model::schemas::{constant, object_constants, one_of_refs, string_enum, string_of};
use std::borrow::Cow;
use utoipa::openapi::schema::{
    ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

string_enum!(
    /// What a file is for.
    FilePurpose = crate::api::files::PURPOSES
);
string_enum!(
    /// List order by creation time.
    ListOrder = &["asc", "desc"]
);
string_enum!(
    /// Step fields that lists and reads can add: the content of file search results.
    RunStepInclude = &["step_details.tool_calls[*].file_search.results[*].content"]
);

object_constants! {
    list_object = "list",
    file_content_page_object = "vector_store.file_content.page",
    search_results_page_object = "vector_store.search_results.page",
}

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

mod conversations;
mod lists;
mod runs;
mod vector_stores;

pub use conversations::*;
pub use lists::*;
pub use runs::*;
pub use vector_stores::*;
