//! Vector stores: files ingested through the work queue (extracted, chunked, embedded by
//! the stand-in's embeddings), search with filters, file batches, detaching, deleting.

mod support;

use serde_json::{json, Value};
use support::{spawn_app, Backend, TestApp};

async fn wait_for(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let v = app.get(path).await.ok();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{path} never got there: {}", app.get(path).await.body);
}

const OSLO: &str =
    "Oslo is the capital of Norway. The capital city lies at the head of the Oslofjord.";
const RUST: &str = "Rust is a systems programming language focused on memory safety and speed.";
const SOUP: &str =
    "To cook tomato soup, simmer tomatoes with onion, garlic and basil for twenty minutes.";

async fn ingest_and_search_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let rust = app.upload(RUST.as_bytes(), "rust.md").await;
    let soup = app
        .upload(
            format!("<html><body><h1>Soup</h1><p>{SOUP}</p></body></html>").as_bytes(),
            "soup.html",
        )
        .await;
    let vs = app
        .post(
            "/vector_stores",
            json!({"name": "kb", "file_ids": [oslo, rust, soup], "metadata": {"k": "v"},
            "expires_after": {"anchor": "last_active_at", "days": 7}}),
        )
        .await
        .ok();
    let vs_id = vs["id"].as_str().unwrap().to_string();
    assert!(vs_id.starts_with("vs_"));
    assert_eq!(vs["object"], "vector_store");
    assert_eq!(vs["file_counts"]["total"], 3);
    assert_eq!(vs["expires_after"]["days"], 7);
    let done = wait_for(&app, &format!("/vector_stores/{vs_id}"), |v| {
        v["status"] == "completed"
    })
    .await;
    assert_eq!(
        done["file_counts"],
        json!({"in_progress": 0, "completed": 3, "failed": 0, "cancelled": 0, "total": 3})
    );
    assert!(done["usage_bytes"].as_u64().unwrap() > 0);

    let files = app
        .get(&format!("/vector_stores/{vs_id}/files?filter=completed"))
        .await
        .ok();
    assert_eq!(files["data"].as_array().unwrap().len(), 3);
    let f = &files["data"][0];
    assert_eq!(f["object"], "vector_store.file");
    assert_eq!(f["vector_store_id"], vs_id.as_str());
    assert_eq!(
        f["chunking_strategy"]["static"]["max_chunk_size_tokens"],
        800
    );
    assert!(f.get("_batch_id").is_none());

    // The relevant file comes first.
    let found = app
        .post(
            &format!("/vector_stores/{vs_id}/search"),
            json!({"query": "What is the capital of Norway?", "max_num_results": 2}),
        )
        .await
        .ok();
    assert_eq!(found["object"], "vector_store.search_results.page");
    assert_eq!(
        found["search_query"],
        json!(["What is the capital of Norway?"])
    );
    let data = found["data"].as_array().unwrap();
    assert!(data.len() <= 2 && !data.is_empty());
    assert_eq!(data[0]["file_id"], oslo.as_str());
    assert_eq!(data[0]["filename"], "norway.txt");
    assert!(data[0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Oslo"));
    let score = data[0]["score"].as_f64().unwrap();
    assert!(score > 0.0 && score <= 1.0);
    let found = app
        .post(
            &format!("/vector_stores/{vs_id}/search"),
            json!({"query": "how do I cook tomato soup"}),
        )
        .await
        .ok();
    assert_eq!(found["data"][0]["file_id"], soup.as_str());
    // HTML lost its markup on the way in.
    let content = app
        .get(&format!("/vector_stores/{vs_id}/files/{soup}/content"))
        .await
        .ok();
    let text = content["data"][0]["text"].as_str().unwrap();
    assert!(text.contains("Soup") && !text.contains("<h1>"), "{text}");

    // Attributes and filters.
    app.post(
        &format!("/vector_stores/{vs_id}/files/{rust}"),
        json!({"attributes": {"topic": "code", "year": 2015}}),
    )
    .await
    .ok();
    let filtered = app
        .post(&format!("/vector_stores/{vs_id}/search"), json!({"query": "capital of Norway",
            "filters": {"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "code"}, {"type": "gte", "key": "year", "value": 2000}]}}))
        .await
        .ok();
    let data = filtered["data"].as_array().unwrap();
    assert!(!data.is_empty());
    assert!(
        data.iter().all(|d| d["file_id"] == rust.as_str()),
        "{filtered}"
    );
    assert_eq!(data[0]["attributes"]["topic"], "code");
    app.post(
        &format!("/vector_stores/{vs_id}/search"),
        json!({"query": "x", "filters": {"type": "near", "key": "a", "value": 1}}),
    )
    .await
    .error(400);
    app.post(
        &format!("/vector_stores/{vs_id}/search"),
        json!({"query": ""}),
    )
    .await
    .error(400);
    for bad in [
        json!({"query": "x", "filters": {"A": [1], "key": {}}}),
        json!({"query": "x", "filters": {"type": "eq", "key": "a", "value": 1, "extra": true}}),
        json!({"query": "x", "filters": {"type": "in", "key": "a", "value": 1}}),
    ] {
        app.post(&format!("/vector_stores/{vs_id}/search"), bad)
            .await
            .error(400);
    }
    app.post(
        &format!("/vector_stores/{vs_id}/search"),
        json!({"query": "x", "max_num_results": 51}),
    )
    .await
    .error(400);

    // Deleting a file detaches it everywhere; the store's counts follow.
    app.delete(&format!("/files/{oslo}")).await.ok();
    app.get(&format!("/vector_stores/{vs_id}/files/{oslo}"))
        .await
        .error(404);
    let after = app.get(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(after["file_counts"]["total"], 2);
    let found = app
        .post(
            &format!("/vector_stores/{vs_id}/search"),
            json!({"query": "capital of Norway"}),
        )
        .await
        .ok();
    assert!(found["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["file_id"] != oslo.as_str()));
    // Detaching one file keeps the file.
    let detached = app
        .delete(&format!("/vector_stores/{vs_id}/files/{rust}"))
        .await
        .ok();
    assert_eq!(
        detached,
        json!({"id": rust, "object": "vector_store.file.deleted", "deleted": true})
    );
    app.get(&format!("/files/{rust}")).await.ok();

    // Modify, list, delete the store.
    let modified = app
        .post(
            &format!("/vector_stores/{vs_id}"),
            json!({"name": "renamed"}),
        )
        .await
        .ok();
    assert_eq!(modified["name"], "renamed");
    let listed = app.get("/vector_stores").await.ok();
    assert_eq!(listed["data"][0]["id"], vs_id.as_str());
    let deleted = app.delete(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(deleted["object"], "vector_store.deleted");
    app.get(&format!("/vector_stores/{vs_id}")).await.error(404);
    let left =
        assistants::store::list_all(app.store.as_ref(), &format!("t/tenanta/vs-chunks/{vs_id}/"))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
}
both_backends!(ingest_and_search, ingest_and_search_test);

async fn batches_and_bad_files_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let good = app.upload(OSLO.as_bytes(), "a.txt").await;
    let binary = app.upload(&[0u8, 159, 146, 150, 0, 1], "blob.bin").await;
    let broken_json = app.upload(b"{\"unterminated\": ", "data.json").await;
    let vs_id = app.post("/vector_stores", json!({})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = app
        .post(&format!("/vector_stores/{vs_id}/file_batches"), json!({"file_ids": [good, binary, broken_json],
            "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}}}))
        .await
        .ok();
    let batch_id = batch["id"].as_str().unwrap().to_string();
    assert!(batch_id.starts_with("vsfb_"));
    assert_eq!(batch["object"], "vector_store.files_batch");
    let done = wait_for(
        &app,
        &format!("/vector_stores/{vs_id}/file_batches/{batch_id}"),
        |b| b["status"] != "in_progress",
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["file_counts"],
        json!({"in_progress": 0, "completed": 1, "failed": 2, "cancelled": 0, "total": 3})
    );
    let failed = app
        .get(&format!(
            "/vector_stores/{vs_id}/file_batches/{batch_id}/files?filter=failed"
        ))
        .await
        .ok();
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    let codes: Vec<&str> = failed
        .iter()
        .map(|f| f["last_error"]["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"unsupported_file") && codes.contains(&"invalid_file"),
        "{codes:?}"
    );
    let good_file = app
        .get(&format!("/vector_stores/{vs_id}/files/{good}"))
        .await
        .ok();
    assert_eq!(
        good_file["chunking_strategy"]["static"]["max_chunk_size_tokens"],
        100
    );
    let vs = app.get(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(vs["file_counts"]["failed"], 2);
    assert_eq!(vs["status"], "completed");

    // Validation.
    let base = format!("/vector_stores/{vs_id}/file_batches");
    app.post(&base, json!({})).await.error(400);
    app.post(
        &base,
        json!({"file_ids": [good], "files": [{"file_id": good}]}),
    )
    .await
    .error(400);
    app.post(
        &base,
        json!({"file_ids": ["file-abcdefghijklmnopqrstuvwx"]}),
    )
    .await
    .error(404);
    app.post(&format!("/vector_stores/{vs_id}/files"), json!({"file_id": good,
        "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}}}))
        .await
        .error(400);
    app.post(
        "/vector_stores",
        json!({"expires_after": {"anchor": "created_at", "days": 1}}),
    )
    .await
    .error(400);
    app.get("/vector_stores/vs_abcdefghijklmnopqrstuvwx")
        .await
        .error(404);
    let cancelled = app
        .post(&format!("{base}/{batch_id}/cancel"), json!({}))
        .await
        .ok();
    assert_eq!(cancelled["status"], "cancelled");
}
both_backends!(batches_and_bad_files, batches_and_bad_files_test);
