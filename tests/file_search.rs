//! `file_search` inside runs: the tool offered to the model as a function, the search run
//! by the engine over the assistant's and the thread's vector stores, the completed
//! `tool_calls` step with its results (content only with `include[]`), citations turned
//! into `file_citation` annotations, thread stores from attachments and from the
//! `vector_stores` helper, streaming, and file_search mixed with a client function.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, say, spawn_app, Backend, TestApp};

const INCLUDE: &str = "include[]=step_details.tool_calls[*].file_search.results[*].content";

const OSLO: &str =
    "Oslo is the capital of Norway. The capital city lies at the head of the Oslofjord.";
const SOUP: &str =
    "To cook tomato soup, simmer tomatoes with onion, garlic and basil for twenty minutes.";

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn run_with_citations_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let soup = app.upload(SOUP.as_bytes(), "soup.md").await;
    let vs = app.ready_store(&[&oslo, &soup]).await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "instructions": "Be brief.", "tools": [{"type": "file_search"}],
                   "tool_resources": {"file_search": {"vector_store_ids": [vs]}}}),
        )
        .await
        .ok());
    let thread = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "What is the capital of Norway?"}]}),
        )
        .await
        .ok());
    let answer = "The capital is Oslo【0:0†norway.txt】.";
    app.llm.script(
        None,
        vec![
            call(&[("file_search", r#"{"queries": ["capital of Norway"]}"#)]),
            say(answer),
        ],
    );
    let run = app
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = app
        .wait_run(&thread, &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let run_id = id(&run);
    // Usage adds up both model calls.
    assert!(run["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // What the model was offered and told.
    let requests = app.chat_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let tools = requests[0]["tools"].as_array().expect("tools offered");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["function"]["name"], "file_search");
    assert!(requests[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with("Be brief."));
    let second = requests[1]["messages"].as_array().unwrap();
    let tool_message = second
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("tool output");
    let output = tool_message["content"].as_str().unwrap();
    assert!(output.contains("【0:0†norway.txt】"), "{output}");
    assert!(output.contains("Oslo is the capital of Norway"), "{output}");
    assert!(!output.contains("tomato") || output.find("Oslo") < output.find("tomato"));

    // Steps: the completed file_search step, then the message.
    let steps = app
        .get(&format!("/threads/{thread}/runs/{run_id}/steps?order=asc"))
        .await
        .ok();
    let steps = steps["data"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0]["type"], "tool_calls");
    assert_eq!(steps[0]["status"], "completed");
    let search = &steps[0]["step_details"]["tool_calls"][0];
    assert_eq!(search["type"], "file_search");
    assert_eq!(
        search["file_search"]["ranking_options"]["ranker"],
        "default_2024_08_21"
    );
    let results = search["file_search"]["results"].as_array().unwrap();
    assert_eq!(results[0]["file_id"], oslo.as_str());
    assert_eq!(results[0]["file_name"], "norway.txt");
    let score = results[0]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score) && score > 0.0);
    assert!(
        results[0].get("content").is_none(),
        "content without include"
    );
    assert_eq!(steps[1]["type"], "message_creation");

    // With include[], the content is there (list and retrieve).
    let with = app
        .get(&format!(
            "/threads/{thread}/runs/{run_id}/steps/{}?{INCLUDE}",
            id(&steps[0])
        ))
        .await
        .ok();
    let text = with["step_details"]["tool_calls"][0]["file_search"]["results"][0]["content"][0]
        ["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Oslo is the capital"), "{with}");
    let listed = app
        .get(&format!("/threads/{thread}/runs/{run_id}/steps?{INCLUDE}"))
        .await
        .ok();
    let found = listed["data"].as_array().unwrap().iter().any(|s| {
        s["step_details"]["tool_calls"][0]["file_search"]["results"][0]["content"].is_array()
    });
    assert!(found, "{listed}");

    // The answer's marker became a file_citation annotation.
    let messages = app
        .get(&format!("/threads/{thread}/messages?run_id={run_id}"))
        .await
        .ok();
    let message = &messages["data"][0];
    let part = &message["content"][0]["text"];
    assert_eq!(part["value"], answer);
    let annotations = part["annotations"].as_array().unwrap();
    assert_eq!(annotations.len(), 1, "{part}");
    let a = &annotations[0];
    assert_eq!(a["type"], "file_citation");
    assert_eq!(a["file_citation"]["file_id"], oslo.as_str());
    assert_eq!(a["text"], "【0:0†norway.txt】");
    let chars: Vec<char> = answer.chars().collect();
    let (s, e) = (
        a["start_index"].as_u64().unwrap() as usize,
        a["end_index"].as_u64().unwrap() as usize,
    );
    assert_eq!(chars[s..e].iter().collect::<String>(), "【0:0†norway.txt】");
}
both_backends!(run_with_citations, run_with_citations_test);

async fn attachments_make_a_thread_store_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let soup = app.upload(SOUP.as_bytes(), "soup.md").await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "file_search"}]}),
        )
        .await
        .ok());
    // A file that does not exist is refused before anything is stored.
    let e = app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "x",
                "attachments": [{"file_id": "file-doesnotexist000000000000", "tools": [{"type": "file_search"}]}]}]}),
        )
        .await
        .error(400);
    assert!(e["param"].as_str().unwrap().contains("attachments"), "{e}");

    let thread = app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "How do I cook tomato soup?",
            "attachments": [
                {"file_id": oslo, "tools": [{"type": "file_search"}]},
                {"file_id": soup, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
            ]}]}),
        )
        .await
        .ok();
    let thread_id = id(&thread);
    let thread = app.get(&format!("/threads/{thread_id}")).await.ok();
    let stores = thread["tool_resources"]["file_search"]["vector_store_ids"]
        .as_array()
        .expect("a thread vector store")
        .clone();
    assert_eq!(stores.len(), 1);
    assert_eq!(
        thread["tool_resources"]["code_interpreter"]["file_ids"],
        json!([soup])
    );
    let vs_id = stores[0].as_str().unwrap().to_string();
    let vs = app.get(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(vs["file_counts"]["total"], 2);
    assert_eq!(vs["expires_after"]["days"], 7);

    // A second message's attachment goes into the same store.
    let third = app.upload("Basil is a herb.".as_bytes(), "herbs.txt").await;
    app.post(
        &format!("/threads/{thread_id}/messages"),
        json!({"role": "user", "content": "and basil?",
               "attachments": [{"file_id": third, "tools": [{"type": "file_search"}]}]}),
    )
    .await
    .ok();
    let vs = app.get(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(vs["file_counts"]["total"], 3);

    // The run starts at once; it waits for the files to be searchable.
    app.llm.script(
        None,
        vec![
            call(&[("file_search", r#"{"queries": ["tomato soup recipe"]}"#)]),
            say("Simmer tomatoes【0:0†soup.md】."),
        ],
    );
    let run = app
        .post(
            &format!("/threads/{thread_id}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = app
        .wait_run(&thread_id, &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let steps = app
        .get(&format!(
            "/threads/{thread_id}/runs/{}/steps?order=asc",
            id(&run)
        ))
        .await
        .ok();
    let results = &steps["data"][0]["step_details"]["tool_calls"][0]["file_search"]["results"];
    assert_eq!(results[0]["file_id"], soup.as_str(), "{results}");
    let messages = app
        .get(&format!("/threads/{thread_id}/messages?limit=1"))
        .await
        .ok();
    let annotations = &messages["data"][0]["content"][0]["text"]["annotations"];
    assert_eq!(annotations[0]["file_citation"]["file_id"], soup.as_str());
}
both_backends!(
    attachments_make_a_thread_store,
    attachments_make_a_thread_store_test
);

async fn vector_stores_helper_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let thread = app
        .post(
            "/threads",
            json!({"tool_resources": {"file_search": {"vector_stores": [
                {"file_ids": [oslo], "metadata": {"made": "by helper"},
                 "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}}
            ]}}}),
        )
        .await
        .ok();
    let vs_id = thread["tool_resources"]["file_search"]["vector_store_ids"][0]
        .as_str()
        .expect("store made by the helper")
        .to_string();
    let vs = app.get(&format!("/vector_stores/{vs_id}")).await.ok();
    assert_eq!(vs["metadata"]["made"], "by helper");
    let file = app
        .get(&format!("/vector_stores/{vs_id}/files/{oslo}"))
        .await
        .ok();
    assert_eq!(
        file["chunking_strategy"]["static"]["max_chunk_size_tokens"],
        200
    );
    // On assistants too.
    let asst = app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "file_search"}],
                   "tool_resources": {"file_search": {"vector_stores": [{"file_ids": [oslo]}]}}}),
        )
        .await
        .ok();
    assert!(asst["tool_resources"]["file_search"]["vector_store_ids"][0]
        .as_str()
        .unwrap()
        .starts_with("vs_"));
    // An empty helper list asks for no store (the spec allows it, as it allows no ids).
    let empty = app
        .post(
            "/threads",
            json!({"tool_resources": {"file_search": {"vector_stores": []}}}),
        )
        .await
        .ok();
    assert_eq!(
        empty["tool_resources"]["file_search"]["vector_store_ids"],
        json!([])
    );
    // Both forms at once, more than one store, unknown fields, unknown files: 400.
    for bad in [
        json!({"vector_store_ids": ["vs_abc"], "vector_stores": [{"file_ids": []}]}),
        json!({"vector_stores": [{"file_ids": []}, {"file_ids": []}]}),
        json!({"vector_stores": [{"file_ids": [], "nope": 1}]}),
        json!({"vector_stores": [{"file_ids": ["file-doesnotexist000000000000"]}]}),
    ] {
        app.post("/threads", json!({"tool_resources": {"file_search": bad}}))
            .await
            .error(400);
    }
    // Modify takes ids only.
    let thread_id = id(&thread);
    app.post(
        &format!("/threads/{thread_id}"),
        json!({"tool_resources": {"file_search": {"vector_stores": [{"file_ids": []}]}}}),
    )
    .await
    .error(400);
}
both_backends!(vector_stores_helper, vector_stores_helper_test);

/// Posts with `stream: true` and returns the events.
async fn stream(app: &TestApp, path: &str, mut body: Value) -> Vec<(String, Value)> {
    body["stream"] = json!(true);
    let response = app
        .raw(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data = Some(v.trim().to_string());
            }
        }
        if let (Some(n), Some(d)) = (name, data) {
            let value = serde_json::from_str(&d).unwrap_or(Value::String(d));
            events.push((n, value));
        }
    }
    events
}

async fn streamed_search_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let vs = app.ready_store(&[&oslo]).await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "file_search"}],
                   "tool_resources": {"file_search": {"vector_store_ids": [vs]}}}),
        )
        .await
        .ok());
    let thread = id(&app.post("/threads", json!({})).await.ok());
    app.post(
        &format!("/threads/{thread}/messages"),
        json!({"role": "user", "content": "capital of Norway?"}),
    )
    .await
    .ok();
    app.llm.script(
        None,
        vec![
            call(&[("file_search", r#"{"queries": ["Norway capital"]}"#)]),
            say("Oslo【0:0†norway.txt】 it is."),
        ],
    );
    let events = stream(
        &app,
        &format!("/threads/{thread}/runs?{INCLUDE}"),
        json!({"assistant_id": asst}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let expected_start = [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.completed",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    ];
    assert_eq!(&names[..expected_start.len()], &expected_start, "{names:?}");
    assert_eq!(
        &names[names.len() - 4..],
        &[
            "thread.message.completed",
            "thread.run.step.completed",
            "thread.run.completed",
            "done"
        ],
        "{names:?}"
    );
    let delta = &events[5].1["delta"]["step_details"]["tool_calls"][0];
    assert_eq!(delta["type"], "file_search", "{delta}");
    assert_eq!(delta["index"], 0);
    assert!(delta["id"].as_str().is_some_and(|s| !s.is_empty()));
    let completed = &events[6].1;
    assert_eq!(completed["type"], "tool_calls");
    let results = &completed["step_details"]["tool_calls"][0]["file_search"]["results"];
    assert!(
        results[0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Oslo"),
        "include[] shows content in the stream: {completed}"
    );
    // The citation streams as an annotation delta once its marker is complete.
    let annotation = events
        .iter()
        .filter(|(n, _)| n == "thread.message.delta")
        .find_map(|(_, v)| {
            v["delta"]["content"][0]["text"]["annotations"]
                .as_array()
                .filter(|a| !a.is_empty())
                .cloned()
        })
        .expect("an annotation delta");
    assert_eq!(annotation[0]["index"], 0);
    assert_eq!(annotation[0]["file_citation"]["file_id"], oslo.as_str());
    let (_, message) = events
        .iter()
        .find(|(n, _)| n == "thread.message.completed")
        .unwrap();
    assert_eq!(
        message["content"][0]["text"]["annotations"][0]["start_index"],
        4
    );
}
both_backends!(streamed_search, streamed_search_test);

async fn search_with_a_client_function_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let vs = app.ready_store(&[&oslo]).await;
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m",
                   "tools": [{"type": "file_search", "file_search": {"max_num_results": 1}},
                             {"type": "function", "function": {"name": "get_weather"}}],
                   "tool_resources": {"file_search": {"vector_store_ids": [vs]}}}),
        )
        .await
        .ok());
    let thread = id(&app.post("/threads", json!({})).await.ok());
    app.llm.script(
        None,
        vec![
            call(&[
                ("file_search", r#"{"queries": ["Oslo"]}"#),
                ("get_weather", r#"{"city": "Oslo"}"#),
            ]),
            say("Sunny in Oslo【0:0†norway.txt】."),
        ],
    );
    let run = app
        .post(
            &format!("/threads/{thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run_id = id(&run);
    let run = app
        .wait_run(&thread, &run_id, &["requires_action", "failed"])
        .await;
    assert_eq!(run["status"], "requires_action", "{run}");
    // Only the client's function is asked for.
    let asked = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["function"]["name"], "get_weather");
    let steps = app
        .get(&format!("/threads/{thread}/runs/{run_id}/steps"))
        .await
        .ok();
    let calls = steps["data"][0]["step_details"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls[0]["type"], "file_search");
    assert_eq!(
        calls[0]["file_search"]["results"].as_array().unwrap().len(),
        1
    );
    assert_eq!(calls[1]["type"], "function");
    // The search call's id is not the client's to answer.
    let e = app
        .post(
            &format!("/threads/{thread}/runs/{run_id}/submit_tool_outputs"),
            json!({"tool_outputs": [{"tool_call_id": calls[0]["id"], "output": "x"}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "tool_outputs");
    app.post(
        &format!("/threads/{thread}/runs/{run_id}/submit_tool_outputs"),
        json!({"tool_outputs": [{"tool_call_id": asked[0]["id"], "output": "sunny"}]}),
    )
    .await
    .ok();
    let run = app
        .wait_run(&thread, &run_id, &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let requests = app.chat_requests();
    let last = requests.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    let outputs: Vec<&str> = last
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(outputs.len(), 2);
    assert!(outputs[0].contains("Oslo is the capital"));
    assert_eq!(outputs[1], "sunny");
    let messages = app
        .get(&format!("/threads/{thread}/messages?run_id={run_id}"))
        .await
        .ok();
    assert_eq!(
        messages["data"][0]["content"][0]["text"]["annotations"][0]["file_citation"]["file_id"],
        oslo.as_str()
    );
}
both_backends!(
    search_with_a_client_function,
    search_with_a_client_function_test
);

/// Issue 18: a thread created with `file_search` attachments answers with the vector store
/// its messages made, as the following GET shows it (OpenAI's file-search guide prints
/// `thread.tool_resources.file_search` straight from the create); the same for the thread a
/// streamed create-thread-and-run announces in `thread.created`.
async fn created_threads_show_their_attachment_store_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app.upload(OSLO.as_bytes(), "norway.txt").await;
    let soup = app.upload(SOUP.as_bytes(), "soup.md").await;
    let messages = json!([{"role": "user", "content": "How do I cook tomato soup?",
    "attachments": [
        {"file_id": oslo, "tools": [{"type": "file_search"}]},
        {"file_id": soup, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}
    ]}]);
    let created = app
        .post("/threads", json!({"messages": messages}))
        .await
        .ok();
    assert!(
        created["tool_resources"]["file_search"]["vector_store_ids"][0].is_string(),
        "{created}"
    );
    let read = app.get(&format!("/threads/{}", id(&created))).await.ok();
    assert_eq!(created, read);

    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "file_search"}]}),
        )
        .await
        .ok());
    app.llm.script(None, vec![say("Simmer them.")]);
    let events = stream(
        &app,
        "/threads/runs",
        json!({"assistant_id": asst, "thread": {"messages": messages}}),
    )
    .await;
    let (_, announced) = events
        .iter()
        .find(|(name, _)| name == "thread.created")
        .expect("thread.created")
        .clone();
    assert!(
        announced["tool_resources"]["file_search"]["vector_store_ids"][0].is_string(),
        "{announced}"
    );
    let read = app.get(&format!("/threads/{}", id(&announced))).await.ok();
    assert_eq!(announced, read);
}
both_backends!(
    created_threads_show_their_attachment_store,
    created_threads_show_their_attachment_store_test
);
