//! Streamed runs on the wire: the SSE format, keep-alives while the model is silent, and a
//! streamed run leaving exactly the stored state a queued one does.

mod support;

use llm_standin::Response;
use reqwest::Method;
use serde_json::{json, Value};
use support::{call, say, spawn_app, spawn_app_with, Backend, TestApp};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Posts with `stream: true` and returns the raw SSE text and its events.
async fn stream(app: &TestApp, path: &str, mut body: Value) -> (String, Vec<(String, Value)>) {
    body["stream"] = json!(true);
    let response = app
        .raw(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
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
            let value = if d == "[DONE]" {
                Value::String(d)
            } else {
                serde_json::from_str(&d).unwrap()
            };
            events.push((n, value));
        }
    }
    (text, events)
}

/// Streams a run of a new assistant (model `m`) on a new thread holding one user message;
/// returns the thread id, the raw SSE text and its events.
async fn stream_a_new_run(app: &TestApp) -> (String, String, Vec<(String, Value)>) {
    let asst = id(&app.post("/assistants", json!({"model": "m"})).await.ok());
    let tid = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "q"}]}),
        )
        .await
        .ok());
    let (text, events) = stream(
        app,
        &format!("/threads/{tid}/runs"),
        json!({"assistant_id": asst}),
    )
    .await;
    (tid, text, events)
}

async fn wire_format_and_keep_alive_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("SSE_KEEPALIVE_SECONDS", "0.2")]).await;
    app.llm.script(
        None,
        vec![Response {
            text: Some("after a pause".into()),
            first_chunk_delay_ms: 1200,
            ..Default::default()
        }],
    );
    let (_, text, events) = stream_a_new_run(&app).await;
    // Comment lines keep the connection alive while the model says nothing.
    let first_delta = text.find("thread.message.delta").expect("a delta");
    let keep_alives = text[..first_delta]
        .lines()
        .filter(|l| l.starts_with(':'))
        .count();
    assert!(
        keep_alives >= 2,
        "no keep-alive before the first delta:\n{text}"
    );
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        &[
            "thread.run.created",
            "thread.run.queued",
            "thread.run.in_progress"
        ]
    );
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert_eq!(names[names.len() - 2], "thread.run.completed");
    assert!(text.trim_end().ends_with("data:[DONE]"));
}
both_backends!(wire_format_and_keep_alive, wire_format_and_keep_alive_test);

/// Messages and steps of a run with ids, times and run-specific fields blanked.
async fn stored_state(app: &TestApp, tid: &str, rid: &str) -> Value {
    fn blank(v: &mut Value) {
        if let Some(obj) = v.as_object_mut() {
            for (k, field) in obj.iter_mut() {
                let is_id = k == "id" || k.ends_with("_id") || k == "message_id";
                if is_id || k.ends_with("_at") {
                    *field = Value::Null;
                } else {
                    blank(field);
                }
            }
        } else if let Some(items) = v.as_array_mut() {
            items.iter_mut().for_each(blank);
        }
    }
    let mut run = app.get(&format!("/threads/{tid}/runs/{rid}")).await.ok();
    let mut steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps?order=asc"))
        .await
        .ok()["data"]
        .clone();
    let mut messages = app
        .get(&format!("/threads/{tid}/messages?order=asc"))
        .await
        .ok()["data"]
        .clone();
    for v in [&mut run, &mut steps, &mut messages] {
        blank(v);
    }
    json!({"run": run, "steps": steps, "messages": messages})
}

async fn streamed_and_queued_runs_store_the_same_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let tool = json!({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}});
    let asst = id(&app
        .post("/assistants", json!({"model": "m", "tools": [tool]}))
        .await
        .ok());
    let script = || {
        vec![
            call(&[("lookup", r#"{"q":"x"}"#)]),
            say("Found it: x is 42."),
        ]
    };
    let new_thread = || async {
        id(&app
            .post(
                "/threads",
                json!({"messages": [{"role": "user", "content": "what is x?"}]}),
            )
            .await
            .ok())
    };

    // Queued.
    app.llm.script(None, script());
    let queued_thread = new_thread().await;
    let queued = id(&app
        .post(
            &format!("/threads/{queued_thread}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let waiting = app
        .wait_run(&queued_thread, &queued, &["requires_action"])
        .await;
    let call_id = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
    app.post(
        &format!("/threads/{queued_thread}/runs/{queued}/submit_tool_outputs"),
        json!({"tool_outputs": [{"tool_call_id": call_id, "output": "42"}]}),
    )
    .await
    .ok();
    app.wait_run(&queued_thread, &queued, &["completed"]).await;

    // Streamed.
    app.llm.script(None, script());
    let streamed_thread = new_thread().await;
    let (_, events) = stream(
        &app,
        &format!("/threads/{streamed_thread}/runs"),
        json!({"assistant_id": asst}),
    )
    .await;
    let waiting = &events
        .iter()
        .find(|(n, _)| n == "thread.run.requires_action")
        .expect("requires_action")
        .1;
    let streamed = id(waiting);
    let call_id = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
    let (_, events) = stream(
        &app,
        &format!("/threads/{streamed_thread}/runs/{streamed}/submit_tool_outputs"),
        json!({"tool_outputs": [{"tool_call_id": call_id, "output": "42"}]}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        &[
            "thread.run.step.completed",
            "thread.run.queued",
            "thread.run.in_progress"
        ]
    );
    assert_eq!(names[names.len() - 2], "thread.run.completed");

    let a = stored_state(&app, &queued_thread, &queued).await;
    let b = stored_state(&app, &streamed_thread, &streamed).await;
    assert_eq!(a, b);
    assert_eq!(a["steps"].as_array().unwrap().len(), 2);
    assert_eq!(a["messages"].as_array().unwrap().len(), 2);
}
both_backends!(
    streamed_and_queued_runs_store_the_same,
    streamed_and_queued_runs_store_the_same_test
);

/// Two deliveries of one turn: a streamed turn whose model is slow (past `RUN_STALL_SECONDS`)
/// is taken over by its watchdog copy, which answers first and ends the run. The stream's
/// own answer comes later, under the same ids: it must not overwrite the stored one. The
/// run keeps the copy's message and steps, and its usage is the sum of theirs.
async fn a_late_delivery_keeps_the_first_answer_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("RUN_STALL_SECONDS", "1")]).await;
    let usage =
        |p: u64, c: u64| json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    app.llm.script(
        None,
        vec![
            Response {
                text: Some("the stream's slow answer".into()),
                first_chunk_delay_ms: 5000,
                usage: Some(usage(100, 50)),
                ..Default::default()
            },
            Response {
                text: Some("the watchdog's answer".into()),
                usage: Some(usage(10, 5)),
                ..Default::default()
            },
        ],
    );
    let (tid, _, events) = stream_a_new_run(&app).await;
    let rid = id(&events[0].1);
    let run = app.wait_run(&tid, &rid, &["completed"]).await;
    // Both deliveries asked the model; the stream's answer came last.
    assert_eq!(app.llm.requests().len(), 2);

    let messages = app.get(&format!("/threads/{tid}/messages")).await.ok();
    let answers: Vec<&Value> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(answers.len(), 1, "{messages}");
    assert_eq!(
        answers[0]["content"][0]["text"]["value"],
        "the watchdog's answer"
    );
    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    let steps = steps["data"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["usage"]["total_tokens"], 15);
    assert_eq!(run["usage"]["total_tokens"], 15, "{run}");
}
both_backends!(
    a_late_delivery_keeps_the_first_answer,
    a_late_delivery_keeps_the_first_answer_test
);
