//! Schema-only types for the OpenAPI document (`http::openapi`): the documented shape of the
//! JSON that operations build as `serde_json` values (lists, deleted objects, step details,
//! filters...) and of the string constants and free-form objects the request and response
//! types hold as `String` or `Value`. The real types point here with
//! `#[schema(value_type = ...)]`; nothing here is constructed. The Python conformance test
//! (`tests/sdk/python/test_openapi.py`) validates real responses against the served document,
//! so these shapes cannot silently drift from what the server sends.
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

// ---- Lists and deleted objects ----

/// A page of a list, as every list endpoint answers.
macro_rules! list_page {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, " (`limit`, `order`, `after`, `before`).")]
        #[derive(ToSchema)]
        pub struct $name {
            #[schema(schema_with = list_object)]
            object: String,
            data: Vec<$item>,
            /// The id of the first object of the page (null when the page is empty).
            #[schema(required)]
            first_id: Option<String>,
            /// The id of the last object; pass it as `after` for the next page.
            #[schema(required)]
            last_id: Option<String>,
            /// Whether more objects follow in this order.
            has_more: bool,
        }
    };
}

list_page!(
    AssistantList,
    crate::api::assistants::Assistant,
    "assistants"
);
list_page!(MessageList, crate::api::messages::Message, "messages");
list_page!(RunList, crate::api::runs::Run, "runs");
list_page!(RunStepList, crate::api::runs::RunStep, "run steps");
list_page!(FileList, crate::api::files::FileObject, "files");
list_page!(
    VectorStoreList,
    crate::api::vector_stores::VectorStore,
    "vector stores"
);
list_page!(
    VectorStoreFileList,
    crate::api::vector_stores::VectorStoreFile,
    "vector store files"
);

/// The answer of a delete.
macro_rules! deleted {
    ($name:ident, $object:literal) => {
        #[doc = concat!("The answer of a delete (`object`: `", $object, "`).")]
        #[derive(ToSchema)]
        pub struct $name {
            id: String,
            #[schema(schema_with = $name::object)]
            object: String,
            deleted: bool,
        }
        impl $name {
            fn object() -> Object {
                constant($object)
            }
        }
    };
}

deleted!(AssistantDeleted, "assistant.deleted");
deleted!(ThreadDeleted, "thread.deleted");
deleted!(MessageDeleted, "thread.message.deleted");
deleted!(FileDeleted, "file");
deleted!(VectorStoreDeleted, "vector_store.deleted");
deleted!(VectorStoreFileDeleted, "vector_store.file.deleted");

// ---- Query parameters ----

/// Paging of every list but files.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many objects to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// Sort by `created_at`; `desc` by default.
    #[param(value_type = Option<ListOrder>, inline)]
    order: Option<String>,
    /// A cursor: the object id after which the page starts (`last_id` of the previous page).
    after: Option<String>,
    /// A cursor: the object id before which the page ends (`first_id` of the next page).
    before: Option<String>,
}

/// Paging of the file list (no `before`; a larger `limit`) and its `purpose` filter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileListParams {
    /// Only files with this purpose (any string; one that is no purpose matches nothing).
    purpose: Option<String>,
    /// How many files to return.
    #[param(minimum = 1, maximum = 10000, default = 10000)]
    limit: Option<i64>,
    /// Sort by `created_at`; `desc` by default.
    #[param(value_type = Option<ListOrder>, inline)]
    order: Option<String>,
    /// A cursor: the file id after which the page starts.
    after: Option<String>,
}

/// The `run_id` filter of the message list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    /// Only the messages this run wrote.
    run_id: Option<String>,
}

/// The `filter` of vector store file lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VectorStoreFileListParams {
    /// Only files with this status.
    #[param(value_type = Option<VectorStoreFileStatus>, inline)]
    filter: Option<String>,
}

/// Step fields to add (`include[]=...`), on run creation and step reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeParams {
    /// Additional fields to include in the run steps.
    #[param(rename = "include[]", value_type = Option<Vec<RunStepInclude>>, inline)]
    include: Option<Vec<String>>,
}

// ---- Assistants and runs: options held as JSON values ----

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

/// `"auto"`, or `{"type": "text" | "json_object"}`, or a JSON schema the answer must follow.
pub struct ResponseFormat;

impl PartialSchema for ResponseFormat {
    fn schema() -> RefOr<Schema> {
        one_of_refs(
            "`auto` (the model's default), `{\"type\": \"text\"}`, `{\"type\": \"json_object\"}` \
             or `{\"type\": \"json_schema\", \"json_schema\": {...}}`.",
            &[ResponseFormatObject::name()],
            Some(constant("auto")),
        )
    }
}

impl ToSchema for ResponseFormat {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            ResponseFormatObject::name().into(),
            ResponseFormatObject::schema(),
        ));
        ResponseFormatObject::schemas(schemas);
    }
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormatObject {
    Text {},
    JsonObject {},
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    name: String,
    description: Option<String>,
    /// A JSON Schema object.
    #[schema(value_type = Option<Object>)]
    schema: Option<serde_json::Value>,
    strict: Option<bool>,
}

/// `"none"`, `"auto"`, `"required"`, or the one tool the model must call.
pub struct ToolChoice;

impl PartialSchema for ToolChoice {
    fn schema() -> RefOr<Schema> {
        one_of_refs(
            "`none` (no tools), `auto` (the model decides), `required` (some tool), or \
             `{\"type\": \"function\", \"function\": {\"name\": ...}}` for one function.",
            &[NamedToolChoice::name()],
            Some(tool_choice_mode()),
        )
    }
}

impl ToSchema for ToolChoice {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((NamedToolChoice::name().into(), NamedToolChoice::schema()));
        NamedToolChoice::schemas(schemas);
    }
}

fn tool_choice_mode() -> Object {
    string_of(&["none", "auto", "required"], "")
}

#[derive(ToSchema)]
pub struct NamedToolChoice {
    #[schema(rename = "type", schema_with = tool_choice_type)]
    kind: String,
    /// With `type: function`: which one (a function of the run's tools).
    function: Option<FunctionName>,
}

fn tool_choice_type() -> Object {
    string_of(&["function", "code_interpreter", "file_search"], "")
}

#[derive(ToSchema)]
pub struct FunctionName {
    name: String,
}

/// Which messages go to the model: all that fit (`auto`) or the last `last_messages`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TruncationStrategy {
    #[schema(rename = "type", schema_with = truncation_type)]
    kind: String,
    /// With `type: last_messages`: how many of the most recent messages (at least 1).
    #[schema(minimum = 1)]
    last_messages: Option<u64>,
}

fn truncation_type() -> Object {
    string_of(&["auto", "last_messages"], "")
}

/// What a run in `requires_action` waits for.
#[derive(ToSchema)]
pub struct RequiredAction {
    #[schema(rename = "type", schema_with = submit_tool_outputs_type)]
    kind: String,
    submit_tool_outputs: SubmitToolOutputsAction,
}

fn submit_tool_outputs_type() -> Object {
    constant("submit_tool_outputs")
}

#[derive(ToSchema)]
pub struct SubmitToolOutputsAction {
    /// The calls to answer with `submit_tool_outputs`.
    tool_calls: Vec<RequiredToolCall>,
}

#[derive(ToSchema)]
pub struct RequiredToolCall {
    /// Pass it as `tool_call_id` with the output.
    id: String,
    #[schema(rename = "type", schema_with = function_type)]
    kind: String,
    function: FunctionCallRequest,
}

fn function_type() -> Object {
    constant("function")
}

#[derive(ToSchema)]
pub struct FunctionCallRequest {
    name: String,
    /// The arguments, a JSON object as a string.
    arguments: String,
}

/// Why a run failed.
#[derive(ToSchema)]
pub struct RunLastError {
    #[schema(schema_with = run_error_code)]
    code: String,
    message: String,
}

fn run_error_code() -> Object {
    string_of(
        &["server_error", "rate_limit_exceeded", "invalid_prompt"],
        "`rate_limit_exceeded` when the model kept answering 429, `invalid_prompt` when it \
         refused the request, `server_error` otherwise.",
    )
}

/// Why a run ended `incomplete`.
#[derive(ToSchema)]
pub struct RunIncompleteDetails {
    #[schema(schema_with = run_incomplete_reason)]
    reason: String,
}

fn run_incomplete_reason() -> Object {
    string_of(&["max_completion_tokens", "max_prompt_tokens"], "")
}

/// Why a message ended `incomplete`.
#[derive(ToSchema)]
pub struct MessageIncompleteDetails {
    #[schema(schema_with = message_incomplete_reason)]
    reason: String,
}

fn message_incomplete_reason() -> Object {
    string_of(
        &[
            "content_filter",
            "max_tokens",
            "run_cancelled",
            "run_expired",
            "run_failed",
        ],
        "",
    )
}

// ---- Run steps ----

/// What a step did: wrote a message, or called tools.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepDetails {
    MessageCreation {
        message_creation: MessageCreation,
    },
    ToolCalls {
        /// The calls of this step (with their outputs once known).
        tool_calls: Vec<StepToolCall>,
    },
}

#[derive(ToSchema)]
pub struct MessageCreation {
    message_id: String,
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepToolCall {
    Function {
        id: String,
        function: StepFunctionCall,
    },
    FileSearch {
        id: String,
        file_search: StepFileSearch,
    },
    CodeInterpreter {
        id: String,
        code_interpreter: StepCodeInterpreter,
    },
}

#[derive(ToSchema)]
pub struct StepFunctionCall {
    name: String,
    arguments: String,
    /// The submitted output; null until then.
    #[schema(required)]
    output: Option<String>,
}

#[derive(ToSchema)]
pub struct StepFileSearch {
    ranking_options: Option<crate::api::types::RankingOptions>,
    results: Option<Vec<FileSearchResult>>,
}

#[derive(ToSchema)]
pub struct FileSearchResult {
    file_id: String,
    file_name: String,
    #[schema(minimum = 0.0, maximum = 1.0)]
    score: f64,
    /// Present with `include[]=step_details.tool_calls[*].file_search.results[*].content`.
    content: Option<Vec<TextChunk>>,
}

#[derive(ToSchema)]
pub struct StepCodeInterpreter {
    input: String,
    outputs: Vec<CodeInterpreterOutput>,
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CodeInterpreterOutput {
    Logs { logs: String },
    Image { image: FileRef },
}

#[derive(ToSchema)]
pub struct FileRef {
    file_id: String,
}

// ---- Messages ----

/// A citation or a file path in a message's text.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Annotation {
    FileCitation {
        /// The text in the message that the annotation replaces.
        text: String,
        file_citation: FileRef,
        start_index: u64,
        end_index: u64,
    },
    FilePath {
        text: String,
        file_path: FileRef,
        start_index: u64,
        end_index: u64,
    },
}

/// Message content in a request: a string, or an array of text and image parts.
pub struct MessageContentInput;

impl PartialSchema for MessageContentInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "The text (at most 256,000 characters), or an array of content parts (text, \
                 image_file, image_url).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(256_000)),
            )
            .item(
                ArrayBuilder::new()
                    .items(crate::api::types::InputPart::schema())
                    .min_items(Some(1)),
            )
            .into()
    }
}

impl ToSchema for MessageContentInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        crate::api::types::InputPart::schemas(schemas);
    }
}

// ---- Files ----

/// The multipart form of an upload.
#[derive(ToSchema)]
pub struct CreateFileRequest {
    /// The file's bytes (its part's filename is kept, without any directory).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    #[schema(value_type = FilePurpose)]
    purpose: String,
    expires_after: Option<FileExpiresAfter>,
}

/// When an uploaded file expires (it is gone after that).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExpiresAfter {
    #[schema(schema_with = created_at_anchor)]
    anchor: String,
    /// Seconds after the anchor: one hour to 30 days.
    #[schema(minimum = 3600, maximum = 2592000)]
    seconds: i64,
}

fn created_at_anchor() -> Object {
    constant("created_at")
}

// ---- Vector stores ----

/// When a vector store expires: `days` after its last activity.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorStoreExpiresAfter {
    #[schema(schema_with = last_active_at_anchor)]
    anchor: String,
    #[schema(minimum = 1, maximum = 365)]
    days: i64,
}

fn last_active_at_anchor() -> Object {
    constant("last_active_at")
}

/// How files are cut into chunks: `auto` (800 tokens, 400 overlapping) or `static`.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChunkingStrategyRequest {
    Auto {},
    Static {
        #[serde(rename = "static")]
        sizes: StaticChunking,
    },
}

/// The chunking a file was ingested with (`auto` is shown as its static sizes).
#[derive(ToSchema)]
pub struct ChunkingStrategy {
    #[schema(rename = "type", schema_with = static_type)]
    kind: String,
    #[schema(rename = "static")]
    sizes: StaticChunking,
}

fn static_type() -> Object {
    constant("static")
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticChunking {
    /// Tokens per chunk.
    #[schema(minimum = 100, maximum = 4096)]
    max_chunk_size_tokens: u64,
    /// Tokens shared by neighbouring chunks: at most half of `max_chunk_size_tokens`.
    #[schema(minimum = 0)]
    chunk_overlap_tokens: u64,
}

/// Why a file could not be ingested.
#[derive(ToSchema)]
pub struct VectorStoreFileError {
    #[schema(schema_with = file_error_code)]
    code: String,
    message: String,
}

fn file_error_code() -> Object {
    string_of(&["server_error", "unsupported_file", "invalid_file"], "")
}

/// What a search looks for: a string, or several.
pub struct SearchQuery;

impl PartialSchema for SearchQuery {
    fn schema() -> RefOr<Schema> {
        let text = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
        };
        OneOfBuilder::new()
            .item(text())
            .item(ArrayBuilder::new().items(text()).min_items(Some(1)))
            .into()
    }
}

impl ToSchema for SearchQuery {}

/// A filter on file attributes: a comparison, or `and` / `or` of filters.
pub struct Filter;

impl PartialSchema for Filter {
    fn schema() -> RefOr<Schema> {
        one_of_refs(
            "A comparison of one attribute, or `and` / `or` of filters.",
            &[ComparisonFilter::name(), CompoundFilter::name()],
            None,
        )
    }
}

impl ToSchema for Filter {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ComparisonFilter::name().into(), ComparisonFilter::schema()));
        schemas.push((CompoundFilter::name().into(), CompoundFilter::schema()));
    }
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComparisonFilter {
    #[schema(rename = "type", schema_with = comparison_type)]
    kind: String,
    /// The attribute to compare.
    key: String,
    /// A string, number or boolean (an array of them for `in` and `nin`).
    #[schema(schema_with = comparison_value)]
    value: String,
}

fn comparison_type() -> Object {
    string_of(&["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"], "")
}

fn comparison_value() -> RefOr<Schema> {
    let scalar = || {
        ObjectBuilder::new().schema_type(SchemaType::Array(vec![
            Type::String,
            Type::Number,
            Type::Boolean,
        ]))
    };
    OneOfBuilder::new()
        .item(scalar())
        .item(ArrayBuilder::new().items(scalar()))
        .into()
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompoundFilter {
    #[schema(rename = "type", schema_with = compound_type)]
    kind: String,
    #[schema(no_recursion)]
    filters: Vec<Filter>,
}

fn compound_type() -> Object {
    string_of(&["and", "or"], "")
}

/// Search ranking: results below `score_threshold` are left out.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRankingOptions {
    #[schema(schema_with = search_ranker)]
    ranker: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    score_threshold: Option<f64>,
}

fn search_ranker() -> Object {
    string_of(&["none", "auto", "default-2024-11-15"], "")
}

/// The answer of a vector store search.
#[derive(ToSchema)]
pub struct SearchResultsPage {
    #[schema(schema_with = search_results_page_object)]
    object: String,
    /// The queries searched for.
    search_query: Vec<String>,
    data: Vec<SearchResult>,
    has_more: bool,
    #[schema(required)]
    next_page: Option<String>,
}

#[derive(ToSchema)]
pub struct SearchResult {
    file_id: String,
    filename: String,
    /// Cosine similarity of the chunk to the query.
    score: f64,
    #[schema(value_type = Option<Attributes>, required)]
    attributes: Option<serde_json::Value>,
    content: Vec<TextChunk>,
}

#[derive(ToSchema)]
pub struct TextChunk {
    #[schema(rename = "type", schema_with = text_type)]
    kind: String,
    text: String,
}

fn text_type() -> Object {
    constant("text")
}

/// The chunks of a file in a vector store.
#[derive(ToSchema)]
pub struct FileContentPage {
    #[schema(schema_with = file_content_page_object)]
    object: String,
    data: Vec<TextChunk>,
    has_more: bool,
    #[schema(required)]
    next_page: Option<String>,
}

/// `tool_resources.file_search.vector_stores[]`: a vector store to create with the thread or
/// assistant.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorStoreHelper {
    #[schema(max_items = 10000)]
    file_ids: Option<Vec<String>>,
    chunking_strategy: Option<ChunkingStrategyRequest>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
}

/// Server-Sent Events (`event:` / `data:` lines) of a streamed run, in this order:
/// `thread.created` (create thread and run only), `thread.run.created`, `thread.run.queued`,
/// `thread.run.in_progress`, `thread.run.step.created` / `in_progress`,
/// `thread.message.created` / `in_progress`, `thread.message.delta`...,
/// `thread.message.completed`, `thread.run.step.completed`, then `thread.run.completed` (or
/// `thread.run.step.delta`... and `thread.run.requires_action` for tool calls,
/// `thread.run.incomplete`, `thread.run.failed`, `thread.run.cancelled`); `error` if the
/// stream breaks; `done` with data `[DONE]` last. `: keep-alive` comments keep a silent stream
/// open.
pub struct EventStream;

impl PartialSchema for EventStream {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "`event: <name>` and `data: <JSON object>` lines per event; `event: done` with \
                 `data: [DONE]` ends the stream.",
            ))
            .into()
    }
}

impl ToSchema for EventStream {}

/// The stored bytes of a file, with the content type it was uploaded with.
pub struct FileBytes;

impl PartialSchema for FileBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for FileBytes {}
