//! Uploads, vector stores, their files, filters and search.

use super::*;

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
