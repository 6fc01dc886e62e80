//! The `file_search` tool inside runs: offered to the model as a function, run by the
//! engine itself (never `requires_action`) over the vector stores of the assistant and the
//! thread, and answered to the model as numbered passages it can cite.
//!
//! Each search of a run has a number (its order among the run's searches) and each passage
//! a marker `【search:result†file name】`, the form OpenAI's models cited in. The final
//! answer's markers become `file_citation` annotations (`citations`).

use crate::context::Ctx;
use crate::error::ApiError;
use crate::model::run::{RoundCall, RunRecord, SearchHit, ServerCall};
use crate::model::values::Tool;
use crate::model::vector_store::VectorStoreStatus;
use crate::model::{assistant, vector_store};
use serde_json::{json, Value};
use std::time::Duration;

/// Results a search gives by default (OpenAI's default for current models).
const DEFAULT_MAX_RESULTS: usize = 20;

/// How long a run waits for files still being ingested into its stores before it starts
/// anyway (OpenAI's documented fallback: 60 seconds).
pub const READINESS_WAIT: Duration = Duration::from_secs(60);

/// The function name the model sees for `file_search`, if the run has the tool. A client
/// function may already use the name; the built-in then takes another.
pub fn function_name(record: &RunRecord) -> Option<&'static str> {
    let tools = &record.run.tools;
    if !tools.iter().any(|t| matches!(t, Tool::FileSearch { .. })) {
        return None;
    }
    let taken = |name: &str| {
        tools
            .iter()
            .any(|t| matches!(t, Tool::Function { function } if function.name == name))
    };
    Some(if taken("file_search") {
        "msearch"
    } else {
        "file_search"
    })
}

/// The function definition offered to the model.
pub fn function_definition(name: &str) -> Value {
    json!({"type": "function", "function": {
        "name": name,
        "description": "Search the files made available to you (the user's uploaded documents and \
            the assistant's knowledge files) and get the passages most relevant to the queries. \
            Use it whenever the answer may depend on those files. Each passage comes with a \
            marker like 【0:1†name】; when your answer uses a passage, put its marker right \
            after the statement it supports, exactly as given.",
        "parameters": {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "One to five self-contained search queries (rephrase the \
                        user's question; include the key terms).",
                },
            },
            "required": ["queries"],
        },
    }})
}

/// What a run tells the model about the tool, after its instructions.
pub fn instructions(name: &str) -> String {
    format!(
        "You have a `{name}` tool that searches the files available in this conversation. \
         Cite passages you use with their markers (for example 【0:1†report.pdf】) exactly as \
         the tool gives them."
    )
}

/// The vector stores a run searches: the assistant's, then the thread's (a response's: its
/// `file_search` tool's).
pub async fn vector_store_ids(ctx: &Ctx, record: &RunRecord) -> Result<Vec<String>, ApiError> {
    // A response names its stores in its request.
    if let Some(face) = &record.response {
        return Ok(face.vector_store_ids.clone());
    }
    let mut ids = Vec::new();
    // A deleted assistant leaves the thread's stores.
    if let Some(a) =
        assistant::load(ctx.store.as_ref(), &ctx.tenant, &record.run.assistant_id).await?
    {
        if let Some(fs) = a.tool_resources.file_search {
            ids.extend(fs.vector_store_ids);
        }
    }
    let thread = super::load_thread(ctx, &record.run.thread_id).await?;
    if let Some(fs) = thread.thread.tool_resources.file_search {
        for id in fs.vector_store_ids {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Waits (up to `READINESS_WAIT` from the run's creation) while files of the run's vector
/// stores are still being ingested, so a run started right after an upload sees them.
pub async fn wait_until_ready(ctx: &Ctx, record: &RunRecord) -> Result<(), ApiError> {
    if function_name(record).is_none() {
        return Ok(());
    }
    let deadline = record.run.created_at + READINESS_WAIT.as_secs() as i64;
    loop {
        let mut pending = false;
        for id in vector_store_ids(ctx, record).await? {
            let found = vector_store::load(ctx.store.as_ref(), &ctx.tenant, &id).await?;
            if found.is_some_and(|s| s.store.status == VectorStoreStatus::InProgress) {
                pending = true;
            }
        }
        if !pending || crate::model::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The queries in the model's arguments: `{"queries": [...]}` (also a single `query`, or a
/// bare string, which models sometimes send).
fn queries(arguments: &str) -> Option<Vec<String>> {
    let list = crate::model::response::search_queries(arguments);
    let list: Vec<String> = list
        .into_iter()
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
        .take(5)
        .collect();
    (!list.is_empty()).then_some(list)
}

/// The run's `file_search` options: results per search and the score threshold.
fn options(record: &RunRecord) -> (usize, f32, Value) {
    let options = record.run.tools.iter().find_map(|t| match t {
        Tool::FileSearch { file_search } => file_search.clone(),
        _ => None,
    });
    let max = options
        .as_ref()
        .and_then(|o| o.max_num_results)
        .map(|n| n.clamp(1, 50) as usize)
        .unwrap_or(DEFAULT_MAX_RESULTS);
    let ranking = options.and_then(|o| o.ranking_options);
    let threshold = ranking.as_ref().map(|r| r.score_threshold).unwrap_or(0.0);
    let ranker = match ranking.as_ref().and_then(|r| r.ranker.as_deref()) {
        Some(r) if r != "auto" => r.to_string(),
        _ => "default_2024_08_21".into(),
    };
    (
        max,
        threshold as f32,
        json!({"ranker": ranker, "score_threshold": threshold}),
    )
}

/// Runs one `file_search` call (the `number`-th search of the run): the search itself, the
/// step record and the text returned to the model.
pub async fn run_call(
    ctx: &Ctx,
    record: &RunRecord,
    id: String,
    name: &str,
    arguments: &str,
    number: usize,
) -> Result<RoundCall, ApiError> {
    let (max, threshold, ranking_options) = options(record);
    let call = |output: String, results: Vec<SearchHit>| RoundCall {
        id: id.clone(),
        name: name.to_string(),
        arguments: arguments.to_string(),
        output: Some(output),
        server: Some(ServerCall::FileSearch {
            ranking_options: ranking_options.clone(),
            results,
        }),
    };
    let Some(queries) = queries(arguments) else {
        return Ok(call(
            "The search was not run: the arguments must be a JSON object like \
             {\"queries\": [\"...\"]} with at least one non-empty query."
                .into(),
            Vec::new(),
        ));
    };
    let mut hits: Vec<SearchHit> = Vec::new();
    for vs_id in vector_store_ids(ctx, record).await? {
        let store = match vector_store::load(ctx.store.as_ref(), &ctx.tenant, &vs_id).await? {
            Some(s) if s.store.status != VectorStoreStatus::Expired => s,
            _ => continue,
        };
        let filters = record.response.as_ref().and_then(|f| f.filters.as_ref());
        let found =
            crate::retrieval::search::search_store(ctx, &store, &queries, max, threshold, filters)
                .await?;
        hits.extend(found.into_iter().map(|r| {
            SearchHit {
                file_id: r["file_id"].as_str().unwrap_or_default().to_string(),
                file_name: r["filename"].as_str().unwrap_or_default().to_string(),
                score: r["score"].as_f64().unwrap_or(0.0) as f32,
                text: r["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
        }));
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(max);
    Ok(call(model_output(number, &queries, &hits), hits))
}

/// The passages as the model reads them, each under its citation marker.
fn model_output(number: usize, queries: &[String], hits: &[SearchHit]) -> String {
    if hits.is_empty() {
        return format!("No passages in the files matched {queries:?}.");
    }
    let mut out = format!(
        "Passages from the files for {queries:?}, most relevant first. Cite a passage you use \
         with its marker.\n"
    );
    for (i, hit) in hits.iter().enumerate() {
        out.push_str(&format!(
            "\n{} (file: {}, relevance {:.2})\n{}\n",
            marker(number, i, &hit.file_name),
            hit.file_name,
            hit.score,
            hit.text.trim()
        ));
    }
    out
}

/// The marker of result `result` of search `number`.
pub fn marker(number: usize, result: usize, file_name: &str) -> String {
    format!("【{number}:{result}†{file_name}】")
}

/// The results of the run's searches so far, by search number (for citations).
pub fn sources(record: &RunRecord) -> Vec<Vec<String>> {
    record
        .rounds
        .iter()
        .flat_map(|r| &r.calls)
        .filter_map(|c| match &c.server {
            Some(ServerCall::FileSearch { results, .. }) => {
                Some(results.iter().map(|h| h.file_id.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

/// How many searches the run made before this turn.
pub fn searches_so_far(record: &RunRecord) -> usize {
    sources(record).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_leniently() {
        assert_eq!(
            queries(r#"{"queries": ["a", " ", "b"]}"#),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(queries(r#"{"query": "x"}"#), Some(vec!["x".to_string()]));
        assert_eq!(queries(r#""plain""#), Some(vec!["plain".to_string()]));
        assert_eq!(queries(r#"{"queries": []}"#), None);
        assert_eq!(queries("not json"), None);
    }

    #[test]
    fn output_carries_markers() {
        let hits = vec![SearchHit {
            file_id: "file-a".into(),
            file_name: "a.txt".into(),
            score: 0.5,
            text: "alpha".into(),
        }];
        let out = model_output(2, &["q".to_string()], &hits);
        assert!(out.contains("【2:0†a.txt】"), "{out}");
        assert!(out.contains("alpha"));
    }
}
