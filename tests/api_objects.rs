//! HTTP-level tests of assistants, threads and messages: every endpoint, the error classes,
//! pagination, auth and tenants, concurrency. Each runs on the local store and on Azurite.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{spawn_app, spawn_app_with, Backend, KEY_B};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn assistant_lifecycle_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .post(
            "/assistants",
            json!({
                "model": "gpt-4o",
                "name": "Math tutor",
                "description": "helps",
                "instructions": "You are a tutor.",
                "tools": [
                    {"type": "code_interpreter"},
                    {"type": "file_search", "file_search": {"max_num_results": 5}},
                    {"type": "function", "function": {"name": "get_weather", "description": "w",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                      "strict": true}}
                ],
                "tool_resources": {"code_interpreter": {"file_ids": ["file-abc"]}},
                "metadata": {"team": "a"},
                "temperature": 0.5,
                "top_p": 0.9,
                "response_format": {"type": "json_object"},
                "reasoning_effort": "low"
            }),
        )
        .await
        .ok();
    let asst = id(&created);
    assert!(asst.starts_with("asst_") && asst.len() == 29, "{asst}");
    assert_eq!(created["object"], "assistant");
    assert_eq!(created["name"], "Math tutor");
    assert_eq!(created["tools"][2]["function"]["strict"], true);
    assert_eq!(
        created["tool_resources"]["code_interpreter"]["file_ids"][0],
        "file-abc"
    );
    assert_eq!(created["temperature"], 0.5);
    assert_eq!(created["response_format"]["type"], "json_object");
    assert!(created["created_at"].as_i64().unwrap() > 1_700_000_000);

    let fetched = app.get(&format!("/assistants/{asst}")).await.ok();
    assert_eq!(fetched, created);

    let modified = app
        .post(
            &format!("/assistants/{asst}"),
            json!({"name": "Renamed", "description": null, "metadata": {"team": "b"}, "tools": []}),
        )
        .await
        .ok();
    assert_eq!(modified["name"], "Renamed");
    assert_eq!(modified["description"], Value::Null);
    assert_eq!(modified["metadata"], json!({"team": "b"}));
    assert_eq!(modified["tools"], json!([]));
    assert_eq!(modified["instructions"], "You are a tutor.");
    assert_eq!(app.get(&format!("/assistants/{asst}")).await.ok(), modified);

    let listed = app.get("/assistants").await.ok();
    assert_eq!(listed["object"], "list");
    assert_eq!(listed["data"][0]["id"], asst.as_str());

    let deleted = app.delete(&format!("/assistants/{asst}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": asst, "object": "assistant.deleted", "deleted": true})
    );
    let e = app.get(&format!("/assistants/{asst}")).await.error(404);
    assert_eq!(
        e["message"],
        format!("No assistant found with id '{asst}'.")
    );
    assert_eq!(e["type"], "invalid_request_error");
    app.delete(&format!("/assistants/{asst}")).await.error(404);
    app.post(&format!("/assistants/{asst}"), json!({"name": "x"}))
        .await
        .error(404);
}
both_backends!(assistant_lifecycle, assistant_lifecycle_test);

async fn thread_lifecycle_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let thread = app
        .post(
            "/threads",
            json!({
                "messages": [
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": [{"type": "text", "text": "second"}],
                     "metadata": {"k": "v"}}
                ],
                "tool_resources": {"file_search": {"vector_store_ids": ["vs_abc"]}},
                "metadata": {"user": "u1"}
            }),
        )
        .await
        .ok();
    let tid = id(&thread);
    assert_eq!(thread["object"], "thread");
    assert_eq!(thread["metadata"], json!({"user": "u1"}));
    assert_eq!(
        thread["tool_resources"]["file_search"]["vector_store_ids"],
        json!(["vs_abc"])
    );
    assert_eq!(app.get(&format!("/threads/{tid}")).await.ok(), thread);

    let messages = app
        .get(&format!("/threads/{tid}/messages?order=asc"))
        .await
        .ok();
    let data = messages["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["content"][0]["text"]["value"], "first");
    assert_eq!(data[1]["role"], "assistant");
    assert_eq!(data[1]["metadata"], json!({"k": "v"}));
    assert_eq!(data[0]["thread_id"], tid.as_str());

    let modified = app
        .post(
            &format!("/threads/{tid}"),
            json!({"metadata": {"user": "u2"}}),
        )
        .await
        .ok();
    assert_eq!(modified["metadata"], json!({"user": "u2"}));
    assert_eq!(modified["tool_resources"], thread["tool_resources"]);

    // An empty body is a valid create.
    let empty = app.raw(Method::POST, "/threads").send().await.unwrap();
    assert_eq!(empty.status(), 200);

    let deleted = app.delete(&format!("/threads/{tid}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": tid, "object": "thread.deleted", "deleted": true})
    );
    app.get(&format!("/threads/{tid}")).await.error(404);
    let e = app
        .get(&format!("/threads/{tid}/messages"))
        .await
        .error(404);
    assert_eq!(e["message"], format!("No thread found with id '{tid}'."));
    // Nothing of the thread is left in the store.
    let left =
        assistants::store::list_all(app.store.as_ref(), &format!("t/tenanta/threads/{tid}/"))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
}
both_backends!(thread_lifecycle, thread_lifecycle_test);

async fn message_lifecycle_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let tid = id(&app.post("/threads", json!({})).await.ok());
    let m1 = app
        .post(
            &format!("/threads/{tid}/messages"),
            json!({"role": "user", "content": "hello"}),
        )
        .await
        .ok();
    assert_eq!(m1["object"], "thread.message");
    assert_eq!(m1["status"], "completed");
    assert_eq!(
        m1["content"],
        json!([{"type": "text", "text": {"value": "hello", "annotations": []}}])
    );
    assert_eq!(m1["assistant_id"], Value::Null);
    assert_eq!(m1["run_id"], Value::Null);
    assert_eq!(m1["attachments"], json!([]));
    // Attached files must exist.
    let e = app
        .post(
            &format!("/threads/{tid}/messages"),
            json!({"role": "user", "content": "x",
                   "attachments": [{"file_id": "file-xyz", "tools": [{"type": "file_search"}]}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "attachments[0].file_id");
    let file_id = app.upload(b"notes", "notes.txt").await;
    let m2 = app
        .post(
            &format!("/threads/{tid}/messages"),
            json!({"role": "user",
                   "content": [{"type": "text", "text": "look"},
                               {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                               {"type": "image_file", "image_file": {"file_id": "file-123"}}],
                   "attachments": [{"file_id": file_id, "tools": [{"type": "file_search"}]}],
                   "metadata": {"a": "1"}}),
        )
        .await
        .ok();
    assert_eq!(m2["content"][1]["image_url"]["detail"], "low");
    assert_eq!(m2["content"][2]["image_file"]["file_id"], "file-123");
    assert_eq!(m2["attachments"][0]["tools"][0]["type"], "file_search");
    let (m1_id, m2_id) = (id(&m1), id(&m2));

    assert_eq!(
        app.get(&format!("/threads/{tid}/messages/{m2_id}"))
            .await
            .ok(),
        m2
    );
    let modified = app
        .post(
            &format!("/threads/{tid}/messages/{m2_id}"),
            json!({"metadata": {"a": "2"}}),
        )
        .await
        .ok();
    assert_eq!(modified["metadata"], json!({"a": "2"}));
    assert_eq!(modified["content"], m2["content"]);
    app.post(
        &format!("/threads/{tid}/messages/{m2_id}"),
        json!({"content": "no"}),
    )
    .await
    .error(400);

    let desc = app.get(&format!("/threads/{tid}/messages")).await.ok();
    let ids: Vec<&str> = desc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![m2_id.as_str(), m1_id.as_str()]);
    let by_run = app
        .get(&format!(
            "/threads/{tid}/messages?run_id=run_abcdefghijklmnopqrstuvwx"
        ))
        .await
        .ok();
    assert_eq!(by_run["data"], json!([]));
    assert_eq!(by_run["has_more"], false);
    assert_eq!(by_run["first_id"], Value::Null);

    let deleted = app
        .delete(&format!("/threads/{tid}/messages/{m1_id}"))
        .await
        .ok();
    assert_eq!(
        deleted,
        json!({"id": m1_id, "object": "thread.message.deleted", "deleted": true})
    );
    let e = app
        .get(&format!("/threads/{tid}/messages/{m1_id}"))
        .await
        .error(404);
    assert_eq!(e["message"], format!("No message found with id '{m1_id}'."));
    // A message of another thread is not found through this one.
    let other = id(&app.post("/threads", json!({})).await.ok());
    app.get(&format!("/threads/{other}/messages/{m2_id}"))
        .await
        .error(404);
    // Messages on a missing thread.
    app.post(
        "/threads/thread_abcdefghijklmnopqrstuvwx/messages",
        json!({"role": "user", "content": "x"}),
    )
    .await
    .error(404);
}
both_backends!(message_lifecycle, message_lifecycle_test);

async fn collect_pages(
    app: &support::TestApp,
    path: &str,
    order: &str,
) -> (Vec<String>, Vec<usize>) {
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit=20&order={order}");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page = app.get(&url).await.ok();
        let data = page["data"].as_array().unwrap();
        let ids: Vec<String> = data.iter().map(id).collect();
        assert_eq!(page["first_id"].as_str(), ids.first().map(String::as_str));
        assert_eq!(page["last_id"].as_str(), ids.last().map(String::as_str));
        sizes.push(ids.len());
        all.extend(ids.clone());
        if !page["has_more"].as_bool().unwrap() {
            return (all, sizes);
        }
        after = ids.last().cloned();
    }
}

async fn pagination_of_45_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let tid = id(&app.post("/threads", json!({})).await.ok());
    let mut created = Vec::new();
    for i in 0..45 {
        let m = app
            .post(
                &format!("/threads/{tid}/messages"),
                json!({"role": "user", "content": format!("m{i}")}),
            )
            .await
            .ok();
        created.push(id(&m));
    }
    let path = format!("/threads/{tid}/messages");
    let (asc, sizes) = collect_pages(&app, &path, "asc").await;
    assert_eq!(sizes, vec![20, 20, 5]);
    assert_eq!(asc, created);
    let (desc, sizes) = collect_pages(&app, &path, "desc").await;
    assert_eq!(sizes, vec![20, 20, 5]);
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(desc, reversed);

    // `before` pages back towards the start: the 20 items just before the cursor.
    let page = app
        .get(&format!("{path}?order=asc&limit=20&before={}", created[30]))
        .await
        .ok();
    let ids: Vec<String> = page["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, created[10..30].to_vec());
    assert_eq!(page["has_more"], true);
    // Default limit is 20, default order desc.
    let page = app.get(&path).await.ok();
    assert_eq!(page["data"].as_array().unwrap().len(), 20);
    assert_eq!(page["first_id"], created[44].as_str());
    // `after` and `before` together bound the window.
    let page = app
        .get(&format!(
            "{path}?order=asc&after={}&before={}",
            created[5], created[9]
        ))
        .await
        .ok();
    let ids: Vec<String> = page["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, created[6..9].to_vec());
    assert_eq!(page["has_more"], false);
}
both_backends!(pagination_of_45, pagination_of_45_test);

async fn invalid_requests_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_REQUEST_BYTES", "4096")]).await;
    let e = app
        .post("/assistants", json!({"model": "m", "bogus": 1}))
        .await
        .error(400);
    assert_eq!(
        e["message"],
        "Unrecognized request argument supplied: bogus"
    );
    let e = app.post("/assistants", json!({})).await.error(400);
    assert_eq!(e["param"], "model");
    let e = app
        .post("/assistants", json!({"model": "m", "temperature": 2.5}))
        .await
        .error(400);
    assert_eq!(e["param"], "temperature");
    let e = app
        .post("/assistants", json!({"model": "m", "top_p": "x"}))
        .await
        .error(400);
    assert_eq!(e["param"], "top_p");
    let e = app
        .post(
            "/assistants",
            json!({"model": "m", "name": "n".repeat(257)}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "name");
    let e = app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "browser"}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "tools[0].type");
    let e = app
        .post("/assistants", json!({"model": "m", "tools": [{"type": "function", "function": {"name": "bad name"}}]}))
        .await
        .error(400);
    assert_eq!(e["param"], "tools[0].function.name");
    let e = app
        .post(
            "/assistants",
            json!({"model": "m", "response_format": {"type": "yaml"}}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "response_format.type");
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = app
        .post("/assistants", json!({"model": "m", "metadata": many}))
        .await
        .error(400);
    assert_eq!(e["param"], "metadata");
    let e = app
        .post(
            "/assistants",
            json!({"model": "m", "metadata": {"k": "v".repeat(513)}}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "metadata.k");
    let e = app
        .post(
            "/threads",
            json!({"messages": [{"role": "robot", "content": "x"}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "messages[0].role");
    let e = app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": []}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "messages[0].content");

    // Malformed JSON, a wrong content type, a body over the limit.
    let r = app
        .raw(Method::POST, "/assistants")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("could not parse the JSON body"));
    let r = app
        .raw(Method::POST, "/assistants")
        .header("content-type", "text/plain")
        .body("{\"model\": \"m\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .raw(Method::POST, "/assistants")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"model\": \"m\", \"instructions\": \"{}\"}}",
            "x".repeat(5000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // Non-UTF-8 bytes in a JSON body.
    let r = app
        .raw(Method::POST, "/assistants")
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Bodies must be JSON objects; modify operations need one.
    let r = app
        .raw(Method::POST, "/assistants")
        .header("content-type", "application/json")
        .body(r#"["m2", "name"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let asst = app.post("/assistants", json!({"model": "m"})).await.ok();
    let r = app
        .raw(
            Method::POST,
            &format!("/assistants/{}", asst["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Unknown fields are refused at any depth.
    let e = app
        .post(
            "/assistants",
            json!({"model": "m", "response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "extra": 42}}}),
        )
        .await
        .error(400);
    assert!(e["message"].as_str().unwrap().contains("extra"));
    app.post("/threads", json!({"messages": [{"role": "user", "content": "x",
        "attachments": [{"file_id": "file-abc", "tools": [{"type": "code_interpreter", "extra": 1}]}]}]}))
        .await
        .error(400);
    app.post(
        "/assistants",
        json!({"model": "m", "tool_resources": {"file_search": {}}}),
    )
    .await
    .error(400);

    // Paging parameters.
    app.get("/assistants?limit=0").await.error(400);
    app.get("/assistants?limit=101").await.error(400);
    let e = app.get("/assistants?order=sideways").await.error(400);
    assert_eq!(e["param"], "order");

    // Routes, methods and ids.
    let e = app.get("/nothing/here").await.error(404);
    assert_eq!(e["message"], "Invalid URL (GET /v1/nothing/here)");
    let answer = app.call(Method::PUT, "/assistants", None).await;
    assert_eq!(answer.headers["allow"], "GET, POST");
    answer.error(405);
    app.call(Method::GET, "/threads", None).await.error(405);
    let e = app.get("/threads/undefined").await.error(400);
    assert_eq!(
        e["message"],
        "Invalid 'thread_id': 'undefined'. Expected an ID that begins with 'thread'."
    );
    app.get("/threads/thread_..%2F..%2Fsecrets")
        .await
        .error(404);
    app.get(&format!("/assistants/asst_{}", "a".repeat(5000)))
        .await
        .error(404);
    let e = app
        .get("/assistants/asst_abcdefghijklmnopqrstuvwx")
        .await
        .error(404);
    assert_eq!(
        e["message"],
        "No assistant found with id 'asst_abcdefghijklmnopqrstuvwx'."
    );

    // A request wrong in both its path ids and its query or body: which error comes first is
    // each operation's own order (ids parsed at the dispatch keep it).
    let e = app.get("/threads/undefined/runs?limit=0").await.error(400);
    assert_eq!(e["param"], "thread_id");
    let e = app
        .get("/threads/undefined/runs/undefined/steps?limit=0")
        .await
        .error(400);
    assert_eq!(e["param"], "limit");
    let e = app
        .get("/threads/undefined/runs/undefined/steps/undefined?include[]=x")
        .await
        .error(400);
    assert_eq!(e["param"], "include");
    let e = app
        .get("/threads/undefined/runs/undefined/steps/undefined")
        .await
        .error(400);
    assert_eq!(e["param"], "step_id");
    let e = app
        .get("/vector_stores/undefined/files?limit=0")
        .await
        .error(400);
    assert_eq!(e["param"], "limit");
    let e = app
        .post("/vector_stores/undefined/files", json!({"file_id": "x"}))
        .await
        .error(400);
    assert_eq!(e["param"], "file_id");
    let e = app
        .post("/vector_stores/undefined/search", json!({"query": ""}))
        .await
        .error(400);
    assert_eq!(e["param"], "query");
    let e = app
        .post("/vector_stores/undefined", json!({"name": "n".repeat(257)}))
        .await
        .error(400);
    assert_eq!(e["param"], "vector_store_id");
}
both_backends!(invalid_requests, invalid_requests_test);

async fn auth_and_headers_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .client
        .get(format!("{}/assistants", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You didn't provide an API key"));
    let e = app
        .with_key("sk-wrong-key-9876")
        .get("/assistants")
        .await
        .error(401);
    assert_eq!(e["code"], "invalid_api_key");
    assert!(!e["message"].as_str().unwrap().contains("sk-wrong"));
    let r = app
        .raw(Method::GET, "/assistants")
        .header("OpenAI-Beta", "assistants=v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_beta");

    let answer = app.get("/assistants").await;
    assert!(answer.headers["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    assert!(answer.headers["openai-processing-ms"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert_eq!(answer.headers["content-type"], "application/json");
    answer.ok();
}
both_backends!(auth_and_headers, auth_and_headers_test);

async fn tenants_are_isolated_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = app.with_key(KEY_B);
    let asst = id(&app.post("/assistants", json!({"model": "m"})).await.ok());
    let tid = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "secret"}]}),
        )
        .await
        .ok());
    let mid = id(&app.get(&format!("/threads/{tid}/messages")).await.ok()["data"][0]);

    b.get(&format!("/assistants/{asst}")).await.error(404);
    b.post(&format!("/assistants/{asst}"), json!({"name": "x"}))
        .await
        .error(404);
    b.delete(&format!("/assistants/{asst}")).await.error(404);
    assert_eq!(b.get("/assistants").await.ok()["data"], json!([]));
    b.get(&format!("/threads/{tid}")).await.error(404);
    b.post(&format!("/threads/{tid}"), json!({"metadata": {}}))
        .await
        .error(404);
    b.get(&format!("/threads/{tid}/messages")).await.error(404);
    b.post(
        &format!("/threads/{tid}/messages"),
        json!({"role": "user", "content": "x"}),
    )
    .await
    .error(404);
    b.get(&format!("/threads/{tid}/messages/{mid}"))
        .await
        .error(404);
    b.post(
        &format!("/threads/{tid}/messages/{mid}"),
        json!({"metadata": {}}),
    )
    .await
    .error(404);
    b.delete(&format!("/threads/{tid}/messages/{mid}"))
        .await
        .error(404);
    b.delete(&format!("/threads/{tid}")).await.error(404);

    // Tenant A's objects are intact.
    app.get(&format!("/assistants/{asst}")).await.ok();
    app.get(&format!("/threads/{tid}/messages/{mid}"))
        .await
        .ok();
}
both_backends!(tenants_are_isolated, tenants_are_isolated_test);

async fn parallel_writes_lose_nothing_test(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let tid = id(&app.post("/threads", json!({})).await.ok());
    let creates = (0..20).map(|i| {
        let app = app.clone();
        let tid = tid.clone();
        tokio::spawn(async move {
            id(&app
                .post(
                    &format!("/threads/{tid}/messages"),
                    json!({"role": "user", "content": format!("p{i}")}),
                )
                .await
                .ok())
        })
    });
    let mut created: Vec<String> = Vec::new();
    for handle in creates {
        created.push(handle.await.unwrap());
    }
    let listed = app
        .get(&format!("/threads/{tid}/messages?order=asc&limit=100"))
        .await
        .ok();
    let data = listed["data"].as_array().unwrap();
    let ids: Vec<String> = data.iter().map(id).collect();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(ids, expected, "all 20 kept, in creation (id) order");
    let times: Vec<i64> = data
        .iter()
        .map(|m| m["created_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    // 20 parallel modifies of one assistant: each lands (none fails on the race), and each
    // answer shows its own change on top of a complete object.
    let asst = id(&app
        .post("/assistants", json!({"model": "m", "instructions": "keep"}))
        .await
        .ok());
    let modifies = (0..20).map(|i| {
        let app = app.clone();
        let asst = asst.clone();
        tokio::spawn(async move {
            app.post(
                &format!("/assistants/{asst}"),
                json!({"metadata": {"writer": i.to_string()}, "name": format!("n{i}")}),
            )
            .await
            .ok()
        })
    });
    let mut names = std::collections::HashSet::new();
    for (i, handle) in modifies.enumerate() {
        let answer = handle.await.unwrap();
        assert_eq!(answer["name"], format!("n{i}"));
        assert_eq!(answer["metadata"]["writer"], i.to_string());
        assert_eq!(answer["instructions"], "keep");
        names.insert(answer["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 20);
    let last = app.get(&format!("/assistants/{asst}")).await.ok();
    assert!(names.contains(last["name"].as_str().unwrap()));
    assert_eq!(
        last["metadata"]["writer"].as_str().unwrap(),
        &last["name"].as_str().unwrap()[1..]
    );
}
both_backends!(
    parallel_writes_lose_nothing,
    parallel_writes_lose_nothing_test
);
