//! Vector search: a store's index built (and cached) from its completed files' chunk sets,
//! and the search of it with attribute filters, for the search operation and `file_search`.

use super::index::{Index, IndexBuilder};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::model::vector_store::{VectorStoreFileRecord, VectorStoreFileStatus, VectorStoreRecord};
use crate::store::{self, keys};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Whether a file's attributes pass a comparison or compound filter.
pub fn filter_matches(
    filter: &Value,
    attributes: Option<&Map<String, Value>>,
) -> Result<bool, ApiError> {
    let kind = filter["type"].as_str().unwrap_or("");
    match kind {
        "and" | "or" => {
            let parts = filter["filters"].as_array().ok_or_else(|| ApiError::invalid_param("filters.filters", "Invalid 'filters.filters': expected an array."))?;
            let mut results = Vec::with_capacity(parts.len());
            for p in parts {
                results.push(filter_matches(p, attributes)?);
            }
            Ok(if kind == "and" { results.iter().all(|r| *r) } else { results.iter().any(|r| *r) })
        }
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "in" | "nin" => {
            let key = filter["key"].as_str().ok_or_else(|| ApiError::invalid_param("filters.key", "Missing required parameter: 'filters.key'."))?;
            let wanted = &filter["value"];
            let actual = attributes.and_then(|a| a.get(key));
            let cmp = |a: &Value, b: &Value| -> Option<std::cmp::Ordering> {
                match (a, b) {
                    (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
                    (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                    (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
                    _ => None,
                }
            };
            Ok(match kind {
                "eq" => actual.is_some_and(|a| cmp(a, wanted) == Some(std::cmp::Ordering::Equal)),
                "ne" => actual.is_none_or(|a| cmp(a, wanted) != Some(std::cmp::Ordering::Equal)),
                "gt" => actual.is_some_and(|a| cmp(a, wanted) == Some(std::cmp::Ordering::Greater)),
                "gte" => actual.is_some_and(|a| matches!(cmp(a, wanted), Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal))),
                "lt" => actual.is_some_and(|a| cmp(a, wanted) == Some(std::cmp::Ordering::Less)),
                "lte" => actual.is_some_and(|a| matches!(cmp(a, wanted), Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal))),
                "in" => actual.is_some_and(|a| wanted.as_array().is_some_and(|list| list.iter().any(|w| cmp(a, w) == Some(std::cmp::Ordering::Equal)))),
                _ => actual.is_none_or(|a| !wanted.as_array().is_some_and(|list| list.iter().any(|w| cmp(a, w) == Some(std::cmp::Ordering::Equal)))),
            })
        }
        other => Err(ApiError::invalid_param(
            "filters.type",
            format!("Invalid value: '{}'. Supported values are: 'eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'nin', 'and', 'or'.", crate::error::shown(other)),
        )),
    }
}

/// Chunk-set reads in flight while an index is built.
const CHUNK_SET_READS: usize = 8;

/// The index of a store, built (and cached) from its completed files' chunk sets.
pub async fn index_of(ctx: &Ctx, record: &VectorStoreRecord) -> Result<Arc<Index>, ApiError> {
    let vs_id = &record.store.id;
    let cache_key = format!("{}/{vs_id}", ctx.tenant);
    if let Some(index) = ctx.retrieval.cache.get(&cache_key, record.version) {
        return Ok(index);
    }
    let file_prefix = keys::vector_store_files(&ctx.tenant, vs_id);
    let ids: Vec<String> = store::list_all(ctx.store.as_ref(), &file_prefix)
        .await?
        .iter()
        .map(|k| keys::last_segment(k).to_string())
        .collect();
    let records: Vec<VectorStoreFileRecord> =
        store::read_all(ctx.store.as_ref(), &file_prefix, &ids).await?;
    // Chunk sets are read a few at a time and quantised as they arrive, so a large store
    // neither waits on one read after another nor holds all its f32 vectors at once.
    let reads = records
        .into_iter()
        .filter(|r| r.file.status == VectorStoreFileStatus::Completed)
        .map(|r| async move {
            let key = keys::vector_store_chunk_set(&ctx.tenant, vs_id, &r.file.id);
            let bytes = ctx.store.get(&key).await?.map(|(b, _)| b);
            Ok::<_, ApiError>((bytes, r.file.attributes))
        });
    let mut reads = futures::stream::iter(reads).buffered(CHUNK_SET_READS);
    let mut builder = IndexBuilder::new();
    while let Some(read) = reads.next().await {
        if let (Some(bytes), attributes) = read? {
            builder.add_encoded(&bytes, attributes);
        }
    }
    let index = Arc::new(builder.finish());
    ctx.retrieval
        .cache
        .put(&cache_key, record.version, index.clone());
    Ok(index)
}

/// Searches a store: the best chunks for `queries`, as search results. `filters` must have
/// passed the api's `validate_filter` (a part it cannot read matches nothing).
pub async fn search_store(
    ctx: &Ctx,
    record: &VectorStoreRecord,
    queries: &[String],
    limit: usize,
    min_score: f32,
    filters: Option<&Value>,
) -> Result<Vec<Value>, ApiError> {
    let index = index_of(ctx, record).await?;
    if index.entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut vectors = ctx
        .retrieval
        .embedder
        .embed(&[queries.join("\n")])
        .await
        .map_err(|e| {
            log::warn!("query embedding failed: {e}");
            ApiError::Unavailable
        })?;
    let query = vectors.pop().unwrap_or_default();
    // A large index takes milliseconds of CPU to scan: off the async workers.
    let filters = filters.cloned();
    let searched = index.clone();
    let hits = tokio::task::spawn_blocking(move || {
        searched.search(&query, limit, min_score, |e| {
            filters
                .as_ref()
                .is_none_or(|f| filter_matches(f, e.attributes.as_ref()).unwrap_or(false))
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("search task: {e}")))?;
    Ok(hits
        .into_iter()
        .map(|(i, score)| {
            let e = &index.entries[i];
            json!({
                "file_id": e.file_id, "filename": e.filename, "score": score,
                "attributes": e.attributes, "content": [{"type": "text", "text": e.text}],
            })
        })
        .collect())
}
