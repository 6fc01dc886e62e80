//! Searching a vector store: the request, its filter checks, and the search operation
//! (the index and the search itself are `retrieval::search`).

use super::types::one_of;
use super::types::reject_unknown;
use super::validate::{self, parse_body};
use super::vector_stores::{load, update_store};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::ids::VectorStoreId;
use crate::model::now;
use crate::model::vector_store::expires_at;
use crate::retrieval::search;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    #[schema(value_type = super::schemas::SearchQuery)]
    query: Value,
    /// Accepted and ignored: queries are searched as given.
    #[serde(default)]
    rewrite_query: Option<bool>,
    /// 10 when not given.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50)]
    max_num_results: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::Filter>)]
    filters: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::SearchRankingOptions>)]
    ranking_options: Option<Value>,
}

/// Checks a filter's shape: a comparison `{type, key, value}` or a compound
/// `{type: and|or, filters: [...]}`, nothing else.
pub fn validate_filter(filter: &Value, param: &str) -> Result<(), ApiError> {
    let obj = filter.as_object().ok_or_else(|| {
        ApiError::invalid_param(param, format!("Invalid '{param}': expected an object."))
    })?;
    let kind = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid_param(
            &format!("{param}.type"),
            format!("Missing required parameter: '{param}.type'."),
        )
    })?;
    let compound = matches!(kind, "and" | "or");
    one_of(
        &format!("{param}.type"),
        kind,
        &[
            "eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "and", "or",
        ],
    )?;
    let allowed: &[&str] = if compound {
        &["type", "filters"]
    } else {
        &["type", "key", "value"]
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!(
                "Unrecognized request argument supplied: {param}.{}",
                crate::error::shown(extra)
            ),
            None,
        ));
    }
    if compound {
        let parts = obj
            .get("filters")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}.filters"),
                    format!("Invalid '{param}.filters': expected an array."),
                )
            })?;
        for (i, part) in parts.iter().enumerate() {
            validate_filter(part, &format!("{param}.filters[{i}]"))?;
        }
        return Ok(());
    }
    if !obj.get("key").is_some_and(Value::is_string) {
        return Err(ApiError::invalid_param(
            &format!("{param}.key"),
            format!("Invalid '{param}.key': expected a string."),
        ));
    }
    let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
    let value_ok = match obj.get("value") {
        Some(Value::Array(items)) => matches!(kind, "in" | "nin") && items.iter().all(scalar),
        Some(v) => scalar(v) && !matches!(kind, "in" | "nin"),
        None => false,
    };
    if !value_ok {
        return Err(ApiError::invalid_param(
            &format!("{param}.value"),
            format!("Invalid '{param}.value': expected a string, number or boolean (an array of them for 'in' and 'nin')."),
        ));
    }
    Ok(())
}

/// A search request, checked (before the path's id, as it always was).
pub struct Search {
    queries: Vec<String>,
    limit: usize,
    min_score: f32,
    filters: Option<Value>,
}

/// Checks a search request.
pub fn check(body: &[u8]) -> Result<Search, ApiError> {
    let req: SearchRequest = parse_body(body)?;
    // Checked here, before the search: `search_store` takes the filter as valid.
    if let Some(f) = &req.filters {
        validate_filter(f, "filters")?;
    }
    let queries: Vec<String> = match &req.query {
        Value::String(s) if !s.trim().is_empty() => vec![s.clone()],
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
        {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        }
        _ => {
            return Err(ApiError::invalid_param(
                "query",
                "Invalid 'query': expected a non-empty string or array of strings.",
            ))
        }
    };
    let limit = match req.max_num_results {
        None => 10,
        Some(n) if (1..=50).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "max_num_results",
                "Invalid 'max_num_results': expected an integer between 1 and 50.",
            ))
        }
    };
    let min_score = match &req.ranking_options {
        None => 0.0,
        Some(r) => {
            if let Some(ranker) = r.get("ranker").and_then(Value::as_str) {
                one_of(
                    "ranking_options.ranker",
                    ranker,
                    &["none", "auto", "default-2024-11-15"],
                )?;
            }
            reject_unknown(r, "ranking_options", &["ranker", "score_threshold"])?;
            let t = match r.get("score_threshold") {
                None | Some(Value::Null) => 0.0,
                Some(v) => v.as_f64().ok_or_else(|| {
                    ApiError::invalid_param(
                        "ranking_options.score_threshold",
                        "Invalid 'ranking_options.score_threshold': expected a number.",
                    )
                })?,
            };
            validate::range("ranking_options.score_threshold", t, 0.0, 1.0)?;
            t as f32
        }
    };
    let _ = req.rewrite_query;
    Ok(Search {
        queries,
        limit,
        min_score,
        filters: req.filters,
    })
}

pub async fn search(ctx: &Ctx, vs_id: &VectorStoreId, request: Search) -> Result<Value, ApiError> {
    let Search {
        queries,
        limit,
        min_score,
        filters,
    } = request;
    let record = load(ctx, vs_id).await?;
    let data =
        search::search_store(ctx, &record, &queries, limit, min_score, filters.as_ref()).await?;
    // Searching keeps the store active (its expiry counts from the last activity).
    let at = now();
    update_store(ctx, vs_id, |r| {
        r.store.last_active_at = Some(at);
        r.store.expires_at = expires_at(r.store.expires_after.as_ref(), at);
    })
    .await?;
    Ok(json!({
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": data,
        "has_more": false,
        "next_page": null,
    }))
}
