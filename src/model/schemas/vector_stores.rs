//! Expiry, chunking and ingestion errors of vector stores and their files; text chunks.

use super::*;

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

#[derive(ToSchema)]
pub struct TextChunk {
    #[schema(rename = "type", schema_with = text_type)]
    kind: String,
    text: String,
}

fn text_type() -> Object {
    constant("text")
}
