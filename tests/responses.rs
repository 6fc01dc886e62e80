//! The Responses API over HTTP, with a scripted model: text answers, function calls across
//! responses, `previous_response_id`, conversations (an Assistants thread continued),
//! `store: false`, limits and failures, background responses with cancel, the stream's
//! event order, and the errors. Each on the local store and on Azurite.

mod support;

use llm_standin::Response;
use reqwest::Method;
use serde_json::{json, Value};
use support::{call, fail_with, say, spawn_app, Backend, TestApp};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Posts a streamed response: its events (type, data), in order.
async fn stream(app: &TestApp, mut body: Value) -> (String, Vec<(String, Value)>) {
    body["stream"] = json!(true);
    let response = app
        .raw(Method::POST, "/responses")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events = events_of(&text);
    (text, events)
}

async fn wait_response(app: &TestApp, id: &str, until: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = app.get(&format!("/responses/{id}")).await.ok();
        if until.contains(&r["status"].as_str().unwrap_or_default()) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "stayed {r}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn weather() -> Value {
    json!({"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

async fn text_answer_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("Hello there.")]);
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "hi", "instructions": "Be kind.",
                   "metadata": {"k": "v"}}),
        )
        .await
        .ok();
    assert_eq!(r["object"], "response");
    assert!(id(&r).starts_with("resp_"));
    assert_eq!(r["status"], "completed");
    assert_eq!(r["instructions"], "Be kind.");
    assert_eq!(r["metadata"], json!({"k": "v"}));
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(r["output"][0]["role"], "assistant");
    assert_eq!(r["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hello there.");
    assert!(r["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0);
    for field in [
        "error",
        "incomplete_details",
        "previous_response_id",
        "conversation",
    ] {
        assert!(r[field].is_null(), "{field}: {r}");
    }
    // The model got the instructions and the input.
    let sent = &app.llm.requests()[0]["messages"];
    assert_eq!(sent[0], json!({"role": "system", "content": "Be kind."}));
    assert_eq!(sent[1], json!({"role": "user", "content": "hi"}));
    // Stored: read back the same.
    let got = app.get(&format!("/responses/{}", id(&r))).await.ok();
    assert_eq!(got, r);
    let items = app
        .get(&format!("/responses/{}/input_items", id(&r)))
        .await
        .ok();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"][0]["role"], "user");
    assert_eq!(items["data"][0]["content"][0]["text"], "hi");
    assert_eq!(items["first_id"], items["data"][0]["id"]);
    // Deleted: gone.
    let deleted = app.delete(&format!("/responses/{}", id(&r))).await.ok();
    assert_eq!(deleted["deleted"], true);
    app.get(&format!("/responses/{}", id(&r))).await.error(404);
}
both_backends!(text_answer, text_answer_test);

async fn function_calls_across_responses_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(
        None,
        vec![
            call(&[
                ("get_weather", r#"{"city":"Paris"}"#),
                ("get_weather", r#"{"city":"Rome"}"#),
            ]),
            say("Sunny in Paris, rain in Rome."),
        ],
    );
    let first = app
        .post(
            "/responses",
            json!({"model": "m", "input": "weather?", "tools": [weather()]}),
        )
        .await
        .ok();
    assert_eq!(first["status"], "completed");
    let calls: Vec<&Value> = first["output"].as_array().unwrap().iter().collect();
    assert_eq!(calls.len(), 2, "{first}");
    for c in &calls {
        assert_eq!(c["type"], "function_call");
        assert!(c["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(c["name"], "get_weather");
        assert_eq!(c["status"], "completed");
    }
    let outputs: Vec<Value> = calls
        .iter()
        .zip(["sun", "rain"])
        .map(|(c, o)| json!({"type": "function_call_output", "call_id": c["call_id"], "output": o}))
        .collect();
    let second = app
        .post(
            "/responses",
            json!({"model": "m", "previous_response_id": id(&first), "input": outputs,
                   "tools": [weather()]}),
        )
        .await
        .ok();
    assert_eq!(second["status"], "completed");
    assert_eq!(second["previous_response_id"], id(&first));
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "Sunny in Paris, rain in Rome."
    );
    // The model saw the question, both calls in one message, and both outputs.
    let sent = &app.llm.requests()[1]["messages"];
    assert_eq!(sent[0]["content"], "weather?");
    assert_eq!(sent[1]["tool_calls"].as_array().map(Vec::len), Some(2));
    assert_eq!(sent[2]["role"], "tool");
    assert_eq!(sent[3]["content"], "rain");
    // Its input items: the context it continued, then its own.
    let items = app
        .get(&format!("/responses/{}/input_items?order=asc", id(&second)))
        .await
        .ok();
    let types: Vec<&str> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        [
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output"
        ]
    );
    // An output for a call nobody made is refused.
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "previous_response_id": id(&first), "input": [
                {"type": "function_call_output", "call_id": "call_nope", "output": "x"}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "input[0].call_id");
}
both_backends!(
    function_calls_across_responses,
    function_calls_across_responses_test
);

async fn a_thread_continued_as_a_conversation_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let thread = app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "My name is Ada."}]}),
        )
        .await
        .ok();
    app.llm.script(None, vec![say("Hello Ada.")]);
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": id(&thread), "input": "What is my name?"}),
        )
        .await
        .ok();
    assert_eq!(r["conversation"], json!({"id": id(&thread)}));
    assert_eq!(r["output"][0]["content"][0]["text"], "Hello Ada.");
    // The model saw the thread's message before the input.
    let sent = &app.llm.requests()[0]["messages"];
    assert_eq!(sent[0]["content"], "My name is Ada.");
    assert_eq!(sent[1]["content"], "What is my name?");
    // The answer is the thread's, as a message of its Assistants view.
    let messages = app
        .get(&format!("/threads/{}/messages?order=asc", id(&thread)))
        .await
        .ok();
    let texts: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["content"][0]["text"]["value"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert!(texts.contains(&"Hello Ada."), "{messages}");
    let answer = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap();
    assert!(answer["assistant_id"].is_null(), "{answer}");
    assert_eq!(answer["run_id"], id(&r));
    // The question is the thread's too, before the answer.
    let roles: Vec<(&str, &str)> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default(),
                m["content"][0]["text"]["value"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("user", "My name is Ada."),
            ("user", "What is my name?"),
            ("assistant", "Hello Ada.")
        ]
    );
    // Back to the Assistants API: a run on the thread sees what the response added.
    let asst = id(&app.post("/assistants", json!({"model": "m"})).await.ok());
    app.llm.script(None, vec![say("You are Ada.")]);
    let run = app
        .post(
            &format!("/threads/{}/runs", id(&thread)),
            json!({"assistant_id": asst}),
        )
        .await
        .ok();
    let run = app
        .wait_run(&id(&thread), &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let sent: Vec<Value> = app.llm.requests()[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        sent,
        [
            json!("My name is Ada."),
            json!("What is my name?"),
            json!("Hello Ada.")
        ]
    );
    // And the run's answer is the conversation's next item.
    app.llm.script(None, vec![say("Still Ada.")]);
    app.post(
        "/responses",
        json!({"model": "m", "conversation": {"id": id(&thread)}, "input": "Again?"}),
    )
    .await
    .ok();
    let last = app.llm.requests()[2]["messages"].clone();
    assert_eq!(last[3]["content"], "You are Ada.", "{last}");
    // A conversation nobody has is a 404.
    app.post(
        "/responses",
        json!({"model": "m", "conversation": "conv_000000000000000000000000", "input": "x"}),
    )
    .await
    .error(404);
}
both_backends!(
    a_thread_continued_as_a_conversation,
    a_thread_continued_as_a_conversation_test
);

async fn unstored_limits_and_failures_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("Forget me.")]);
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "store": false}),
        )
        .await
        .ok();
    assert_eq!(r["status"], "completed");
    assert_eq!(r["store"], false);
    app.get(&format!("/responses/{}", id(&r))).await.error(404);
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "previous_response_id": id(&r)}),
        )
        .await
        .error(400);
    assert_eq!(e["code"], "previous_response_not_found");

    app.llm.script(
        None,
        vec![Response {
            text: Some("Once upon a".into()),
            finish_reason: Some("length".into()),
            ..Default::default()
        }],
    );
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "a story", "max_output_tokens": 16}),
        )
        .await
        .ok();
    assert_eq!(r["status"], "incomplete");
    assert_eq!(
        r["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(r["output"][0]["status"], "incomplete");
    assert_eq!(app.llm.requests()[1]["max_completion_tokens"], 16);

    app.llm.script(None, vec![fail_with(400, None)]);
    let r = app
        .post("/responses", json!({"model": "m", "input": "x"}))
        .await
        .ok();
    assert_eq!(r["status"], "failed");
    assert!(r["error"]["code"].is_string(), "{r}");
    assert!(r["error"]["message"].is_string(), "{r}");

    app.llm.script(None, vec![say(r#"{"answer": 42}"#)]);
    let format = json!({"type": "json_schema", "name": "out", "strict": true,
                        "schema": {"type": "object", "properties": {"answer": {"type": "integer"}}}});
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "text": {"format": format}}),
        )
        .await
        .ok();
    assert_eq!(r["text"]["format"]["name"], "out");
    let sent = &app.llm.requests()[3];
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "out");
}
both_backends!(
    unstored_limits_and_failures,
    unstored_limits_and_failures_test
);

async fn background_and_cancel_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("Done in the background.")]);
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "background": true}),
        )
        .await
        .ok();
    assert_eq!(r["status"], "queued");
    assert_eq!(r["background"], true);
    assert!(r.get("usage").is_none(), "no usage until it ends: {r}");
    let done = wait_response(&app, &id(&r), &["completed"]).await;
    assert_eq!(
        done["output"][0]["content"][0]["text"],
        "Done in the background."
    );
    // Cancelling an ended response answers it as it is.
    let again = app
        .post(&format!("/responses/{}/cancel", id(&r)), json!({}))
        .await
        .ok();
    assert_eq!(again["status"], "completed");

    app.llm.script(
        None,
        vec![Response {
            text: Some("slow".into()),
            first_chunk_delay_ms: 3_000,
            ..Default::default()
        }],
    );
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "background": true}),
        )
        .await
        .ok();
    let cancelled = app
        .post(&format!("/responses/{}/cancel", id(&r)), json!({}))
        .await
        .ok();
    assert_eq!(cancelled["status"], "cancelled");
    let ended = wait_response(&app, &id(&r), &["cancelled"]).await;
    assert_eq!(ended["output"], json!([]));
    // Still running responses cannot be deleted; a foreground one cannot be cancelled.
    app.llm.script(None, vec![say("fg")]);
    let fg = app
        .post("/responses", json!({"model": "m", "input": "x"}))
        .await
        .ok();
    let e = app
        .post(&format!("/responses/{}/cancel", id(&fg)), json!({}))
        .await
        .error(400);
    assert_eq!(e["message"], "Cannot cancel a synchronous response.");
}
both_backends!(background_and_cancel, background_and_cancel_test);

async fn stream_event_order_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(
        None,
        vec![Response {
            text: Some("Hello world".into()),
            ..Default::default()
        }],
    );
    let (text, events) = stream(&app, json!({"model": "m", "input": "hi"})).await;
    assert!(!text.contains("[DONE]"), "no [DONE] in a Responses stream");
    for (n, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], n as u64, "{name}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..5],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ]
    );
    assert_eq!(
        names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(deltas, "Hello world");
    let completed = &events.last().unwrap().1["response"];
    let item_id = &events[2].1["item"]["id"];
    assert_eq!(&completed["output"][0]["id"], item_id);
    // What the stream ended with is what is stored.
    let stored = app.get(&format!("/responses/{}", id(completed))).await.ok();
    assert_eq!(&stored, completed);

    // A function call streams as its item and arguments.
    app.llm
        .script(None, vec![call(&[("get_weather", r#"{"city":"Paris"}"#)])]);
    let (_, events) = stream(
        &app,
        json!({"model": "m", "input": "weather?", "tools": [weather()]}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"response.function_call_arguments.delta"),
        "{names:?}"
    );
    let added = events
        .iter()
        .find(|(n, _)| n == "response.output_item.added")
        .unwrap();
    let done = events
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap();
    assert_eq!(added.1["item"]["id"], done.1["item"]["id"]);
    assert_eq!(done.1["item"]["arguments"], r#"{"city":"Paris"}"#);
    let completed = &events.last().unwrap().1;
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(
        completed["response"]["output"][0]["id"],
        done.1["item"]["id"]
    );
}
both_backends!(stream_event_order, stream_event_order_test);

async fn request_errors_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let e = app
        .post("/responses", json!({"input": "x"}))
        .await
        .error(400);
    assert_eq!(e["param"], "model");
    assert_eq!(e["code"], "missing_required_parameter");
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "previous_response_id": "resp_x", "conversation": "conv_x"}),
        )
        .await
        .error(400);
    assert_eq!(e["code"], "mutually_exclusive_parameters");
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "previous_response_id": "resp_nope"}),
        )
        .await
        .error(400);
    assert_eq!(e["code"], "previous_response_not_found");
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "tools[0].type");
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "temperature": 3}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "temperature");
    app.get("/responses/resp_000000000000000000000000")
        .await
        .error(404);
    app.get("/responses/nonsense").await.error(404);
    app.delete("/responses/resp_000000000000000000000000")
        .await
        .error(404);
    assert!(
        app.llm.requests().is_empty(),
        "no model call for a bad request"
    );
}
both_backends!(request_errors, request_errors_test);

/// Reads an SSE body into (event, data) pairs.
fn events_of(text: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let (mut name, mut data) = (None, None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data = Some(v.trim().to_string());
            }
        }
        if let (Some(n), Some(d)) = (name, data) {
            events.push((n, serde_json::from_str(&d).unwrap_or(Value::String(d))));
        }
    }
    events
}

async fn resumed_streams_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(
        None,
        vec![Response {
            text: Some("one two three four five".into()),
            chunk_delay_ms: 30,
            ..Default::default()
        }],
    );
    let (_, live) = stream(
        &app,
        json!({"model": "m", "input": "x", "background": true}),
    )
    .await;
    let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        [
            "response.created",
            "response.queued",
            "response.in_progress"
        ]
    );
    assert_eq!(live[0].1["response"]["status"], "queued");
    assert_eq!(names.last(), Some(&"response.completed"));
    let id = id_of(&live[0].1["response"]);
    // The whole stream again: the same events, the same numbers.
    let replayed = app
        .raw(Method::GET, &format!("/responses/{id}?stream=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    let replayed = events_of(&replayed.text().await.unwrap());
    assert_eq!(replayed, live);
    // From event 5 on.
    let tail = app
        .raw(
            Method::GET,
            &format!("/responses/{id}?stream=true&starting_after=5"),
        )
        .send()
        .await
        .unwrap();
    let tail = events_of(&tail.text().await.unwrap());
    assert_eq!(tail[..], live[6..]);
    // Any integer is a position: all events follow a negative one, none one beyond the end.
    for (after, expected) in [("-3", &live[..]), ("99999999999999999999999", &live[..0])] {
        let got = app
            .raw(
                Method::GET,
                &format!("/responses/{id}?stream=true&starting_after={after}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(
            events_of(&got.text().await.unwrap())[..],
            *expected,
            "{after}"
        );
    }

    // A client that drops the stream early resumes it while the response still runs.
    app.llm.script(
        None,
        vec![Response {
            text: Some("a slow answer in many words that keeps coming".into()),
            chunk_delay_ms: 60,
            ..Default::default()
        }],
    );
    let mut first = app
        .raw(Method::POST, "/responses")
        .json(&json!({"model": "m", "input": "x", "background": true, "stream": true}))
        .send()
        .await
        .unwrap();
    let mut head = String::new();
    while !head.contains("response.output_text.delta") {
        let chunk = first.chunk().await.unwrap().expect("stream ended early");
        head.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(first);
    let seen = events_of(&head);
    let (_, created) = &seen[0];
    let id = id_of(&created["response"]);
    let last = seen.last().unwrap().1["sequence_number"].as_u64().unwrap();
    let rest = app
        .raw(
            Method::GET,
            &format!("/responses/{id}?stream=true&starting_after={last}"),
        )
        .send()
        .await
        .unwrap();
    let rest = events_of(&rest.text().await.unwrap());
    assert_eq!(rest[0].1["sequence_number"], last + 1, "{rest:?}");
    for pair in rest.windows(2) {
        assert_eq!(
            pair[1].1["sequence_number"].as_u64(),
            pair[0].1["sequence_number"].as_u64().map(|n| n + 1)
        );
    }
    let done = &rest.last().unwrap().1;
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        "a slow answer in many words that keeps coming"
    );

    // Only streamed background responses have a stream to resume.
    app.llm.script(None, vec![say("fg")]);
    let fg = app
        .post("/responses", json!({"model": "m", "input": "x"}))
        .await
        .ok();
    let e = app
        .get(&format!("/responses/{}?stream=true", id_of(&fg)))
        .await
        .error(400);
    assert_eq!(e["param"], "stream");
    let e = app
        .get(&format!("/responses/{id}?stream=true&starting_after=x"))
        .await
        .error(400);
    assert_eq!(e["param"], "starting_after");
}
both_backends!(resumed_streams, resumed_streams_test);

fn id_of(v: &Value) -> String {
    id(v)
}

async fn input_tokens_are_counted_without_a_model_call_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let short = app
        .post(
            "/responses/input_tokens",
            json!({"model": "m", "input": "hello"}),
        )
        .await
        .ok();
    assert_eq!(short["object"], "response.input_tokens");
    let long = app
        .post(
            "/responses/input_tokens",
            json!({"model": "m", "input": "hello ".repeat(50), "instructions": "Be brief.",
                   "tools": [weather()]}),
        )
        .await
        .ok();
    let (short, long) = (
        short["input_tokens"].as_u64().unwrap(),
        long["input_tokens"].as_u64().unwrap(),
    );
    assert!(short > 0 && long > short + 50, "{short} {long}");
    assert!(app.llm.requests().is_empty());
}
both_backends!(
    input_tokens_are_counted_without_a_model_call,
    input_tokens_are_counted_without_a_model_call_test
);

async fn file_search_with_results_and_citations_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let oslo = app
        .upload(
            b"Oslo is the capital of Norway, at the head of the Oslofjord.",
            "norway.txt",
        )
        .await;
    let vs = app.ready_store(&[&oslo]).await;
    app.llm.script(
        None,
        vec![
            call(&[("file_search", r#"{"queries": ["capital of Norway"]}"#)]),
            say("The capital is Oslo 【0:0†norway.txt】."),
        ],
    );
    let tool = json!({"type": "file_search", "vector_store_ids": [vs], "max_num_results": 3});
    let r = app
        .post(
            "/responses",
            json!({"model": "m", "input": "Capital of Norway?", "tools": [tool],
                   "include": ["file_search_call.results"], "max_tool_calls": 1}),
        )
        .await
        .ok();
    assert_eq!(r["status"], "completed", "{r}");
    let search = &r["output"][0];
    assert_eq!(search["type"], "file_search_call");
    assert!(search["id"].as_str().unwrap().starts_with("fs_"));
    assert_eq!(search["queries"], json!(["capital of Norway"]));
    assert_eq!(search["results"][0]["file_id"], oslo.as_str());
    assert_eq!(search["results"][0]["filename"], "norway.txt");
    let message = &r["output"][1];
    let annotation = &message["content"][0]["annotations"][0];
    assert_eq!(annotation["type"], "file_citation");
    assert_eq!(annotation["file_id"], oslo.as_str());
    assert_eq!(annotation["filename"], "norway.txt");
    // Without include[] the results are not shown; with it on GET they are.
    let plain = app.get(&format!("/responses/{}", id(&r))).await.ok();
    assert_eq!(plain["output"][0]["results"], r["output"][0]["results"]);
    // max_tool_calls: 1: the second model call was not offered the search again.
    let requests = app.chat_requests();
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "file_search");
    assert!(requests[1].get("tools").is_none(), "{}", requests[1]);
    let tool_message = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    assert!(tool_message["content"]
        .as_str()
        .unwrap()
        .contains("Oslo is the capital"));
}
both_backends!(
    file_search_with_results_and_citations,
    file_search_with_results_and_citations_test
);

async fn item_references_are_resolved_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm
        .script(None, vec![say("First answer."), say("Second.")]);
    let first = app
        .post("/responses", json!({"model": "m", "input": "one"}))
        .await
        .ok();
    let answer_id = first["output"][0]["id"].clone();
    let second = app
        .post(
            "/responses",
            json!({"model": "m", "previous_response_id": id(&first), "input": [
                {"type": "item_reference", "id": answer_id},
                {"role": "user", "content": "two"}]}),
        )
        .await
        .ok();
    assert_eq!(second["status"], "completed");
    let sent = &app.llm.requests()[1]["messages"];
    let contents: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(contents, ["one", "First answer.", "First answer.", "two"]);
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": [{"type": "item_reference", "id": answer_id}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "input[0].id");
}
both_backends!(
    item_references_are_resolved,
    item_references_are_resolved_test
);

/// Input items that are not objects, messages without a known role, function calls without a
/// name are refused by name (an item that is a string once made the handler panic: a 500; a
/// call without a name went to the model with a null name).
async fn input_item_errors_test(backend: Backend) {
    let app = spawn_app(backend).await;
    for (input, param, code) in [
        (json!(["hi"]), "input[0]", "invalid_type"),
        (
            json!([{"role": "user", "content": "a"}, 3]),
            "input[1]",
            "invalid_type",
        ),
        (
            json!([{"role": "robot", "content": "a"}]),
            "input[0].role",
            "invalid_value",
        ),
        (
            json!([{"type": "message", "content": "a"}]),
            "input[0].role",
            "missing_required_parameter",
        ),
        (
            json!([{"type": "function_call", "call_id": "c"}]),
            "input[0].name",
            "missing_required_parameter",
        ),
    ] {
        let e = app
            .post("/responses", json!({"model": "m", "input": input}))
            .await
            .error(400);
        assert_eq!(e["param"], param, "{input}");
        assert_eq!(e["code"], code, "{input}");
    }
    assert!(
        app.llm.requests().is_empty(),
        "no model call for a bad request"
    );
}
both_backends!(input_item_errors, input_item_errors_test);

async fn code_interpreter_unavailable_is_refused_at_once_test(backend: Backend) {
    let app = support::spawn_app_with(backend, &[("CODE_INTERPRETER", "off")]).await;
    let e = app
        .post(
            "/responses",
            json!({"model": "m", "input": "x", "tools": [
                {"type": "function", "name": "f", "parameters": null},
                {"type": "code_interpreter", "container": {"type": "auto"}}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "tools[1].type");
    assert!(
        e["message"].as_str().unwrap().contains("not available"),
        "{e}"
    );
    assert!(app.llm.requests().is_empty());
}
both_backends!(
    code_interpreter_unavailable_is_refused_at_once,
    code_interpreter_unavailable_is_refused_at_once_test
);

async fn input_items_are_paginated_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("ok")]);
    let input: Vec<Value> = (0..5)
        .map(|i| json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let r = app
        .post("/responses", json!({"model": "m", "input": input}))
        .await
        .ok();
    let path = format!("/responses/{}/input_items", id(&r));
    let texts = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    // Newest first by default.
    let first = app.get(&format!("{path}?limit=2")).await.ok();
    assert_eq!(texts(&first), ["m4", "m3"]);
    assert_eq!(first["has_more"], true);
    let next = app
        .get(&format!(
            "{path}?limit=2&after={}",
            first["last_id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(texts(&next), ["m2", "m1"]);
    let last = app
        .get(&format!(
            "{path}?limit=2&after={}",
            next["last_id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(texts(&last), ["m0"]);
    assert_eq!(last["has_more"], false);
    let asc = app.get(&format!("{path}?order=asc&limit=3")).await.ok();
    assert_eq!(texts(&asc), ["m0", "m1", "m2"]);
    let e = app.get(&format!("{path}?limit=0")).await.error(400);
    assert_eq!(e["param"], "limit");
    app.get("/responses/resp_000000000000000000000000/input_items")
        .await
        .error(404);
}
both_backends!(input_items_are_paginated, input_items_are_paginated_test);
