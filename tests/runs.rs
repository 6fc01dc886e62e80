//! Runs through the engine with a scripted model: answers, function calling, cancel,
//! expiry, failures, limits, at-least-once delivery. Each runs on the local store (with the
//! in-process queue) and on Azurite (with the Azure queue).

mod support;

use assistants::queue::{Outcome, RunTurn, WorkItem};
use llm_standin::Response;
use serde_json::{json, Value};
use support::{
    call, fail_with, say, spawn_app, spawn_app_with, spawn_faulty_app, Backend, TestApp,
};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn assistant(app: &TestApp, body: Value) -> String {
    id(&app.post("/assistants", body).await.ok())
}

async fn thread_with(app: &TestApp, texts: &[&str]) -> String {
    let messages: Vec<Value> = texts
        .iter()
        .map(|t| json!({"role": "user", "content": t}))
        .collect();
    id(&app
        .post("/threads", json!({"messages": messages}))
        .await
        .ok())
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
}

async fn text_run_completes_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("The answer is 42.")]);
    let asst = assistant(
        &app,
        json!({"model": "gpt-test", "instructions": "Be brief."}),
    )
    .await;
    let tid = thread_with(&app, &["first question", "second question"]).await;
    let run = app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({
                "assistant_id": asst,
                "additional_instructions": "Answer in English.",
                "additional_messages": [{"role": "user", "content": "third question"}],
                "metadata": {"k": "v"}, "temperature": 0.3,
            }),
        )
        .await;
    assert_eq!(run.headers["openai-poll-after-ms"], "200");
    let run = run.ok();
    assert_eq!(run["status"], "queued");
    assert_eq!(run["object"], "thread.run");
    assert_eq!(run["model"], "gpt-test");
    assert_eq!(run["instructions"], "Be brief.");
    assert_eq!(run["metadata"], json!({"k": "v"}));
    assert_eq!(run["usage"], Value::Null);
    assert!(run["expires_at"].as_i64().unwrap() > run["created_at"].as_i64().unwrap());
    let rid = id(&run);
    let done = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["completed_at"].is_i64() && done["started_at"].is_i64());
    let usage = &done["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // The model saw the instructions (run's plus additional) and the history in order.
    let requests = app.llm.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0]["messages"].as_array().unwrap();
    assert_eq!(
        sent[0],
        json!({"role": "system", "content": "Be brief.\n\nAnswer in English."})
    );
    let users: Vec<&str> = sent[1..]
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        vec!["first question", "second question", "third question"]
    );
    assert_eq!(requests[0]["model"], "gpt-test");
    assert_eq!(requests[0]["temperature"], 0.3);
    assert_eq!(requests[0]["stream"], true);
    assert_eq!(requests[0]["stream_options"]["include_usage"], true);

    // The answer is the newest message, from the assistant, tied to the run.
    let messages = app.get(&format!("/threads/{tid}/messages")).await.ok();
    let newest = &messages["data"][0];
    assert_eq!(newest["role"], "assistant");
    assert_eq!(newest["content"][0]["text"]["value"], "The answer is 42.");
    assert_eq!(newest["run_id"], rid.as_str());
    assert_eq!(newest["assistant_id"], asst.as_str());
    assert_eq!(newest["status"], "completed");
    assert_eq!(messages["data"].as_array().unwrap().len(), 4);
    let by_run = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(by_run["data"].as_array().unwrap().len(), 1);

    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    let steps = steps["data"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["type"], "message_creation");
    assert_eq!(steps[0]["status"], "completed");
    assert_eq!(
        steps[0]["step_details"]["message_creation"]["message_id"],
        newest["id"]
    );
    assert_eq!(steps[0]["usage"], done["usage"]);
    let step = app
        .get(&format!(
            "/threads/{tid}/runs/{rid}/steps/{}",
            id(&steps[0])
        ))
        .await
        .ok();
    assert_eq!(step, steps[0]);

    // The thread is free again.
    app.post(
        &format!("/threads/{tid}/messages"),
        json!({"role": "user", "content": "more"}),
    )
    .await
    .ok();
    let listed = app.get(&format!("/threads/{tid}/runs")).await.ok();
    assert_eq!(listed["data"][0]["id"], rid.as_str());
    assert!(
        listed["data"][0].get("_seq").is_none(),
        "internal fields leak: {}",
        listed["data"][0]
    );
}
both_backends!(text_run_completes, text_run_completes_test);

async fn function_calling_loop_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(
        None,
        vec![
            call(&[
                ("get_weather", r#"{"city":"Oslo"}"#),
                ("get_weather", r#"{"city":"Paris"}"#),
            ]),
            say("Oslo is cold, Paris is mild."),
        ],
    );
    let asst = assistant(&app, json!({"model": "m", "tools": [weather_tool()]})).await;
    let tid = thread_with(&app, &["weather in Oslo and Paris?"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app
        .wait_run(&tid, &rid, &["requires_action", "failed"])
        .await;
    assert_eq!(run["status"], "requires_action", "{run}");
    let calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(run["required_action"]["type"], "submit_tool_outputs");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[1]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert!(run["usage"].is_object());
    let (c0, c1) = (id(&calls[0]), id(&calls[1]));

    // The tool step is in progress with the calls and no outputs yet.
    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    assert_eq!(steps["data"][0]["type"], "tool_calls");
    assert_eq!(steps["data"][0]["status"], "in_progress");
    assert_eq!(
        steps["data"][0]["step_details"]["tool_calls"][0]["function"]["output"],
        Value::Null
    );

    let path = format!("/threads/{tid}/runs/{rid}/submit_tool_outputs");
    let e = app
        .post(
            &path,
            json!({"tool_outputs": [{"tool_call_id": c0, "output": "1"}]}),
        )
        .await
        .error(400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Expected tool outputs"),
        "{e}"
    );
    app.post(
        &path,
        json!({"tool_outputs": [
        {"tool_call_id": c0, "output": "1"}, {"tool_call_id": "call_unknown", "output": "2"}]}),
    )
    .await
    .error(400);
    app.post(
        &path,
        json!({"tool_outputs": [
        {"tool_call_id": c0, "output": "1"}, {"tool_call_id": c0, "output": "2"}]}),
    )
    .await
    .error(400);
    // A message while the run waits is refused, and so is a second run.
    app.post(
        &format!("/threads/{tid}/messages"),
        json!({"role": "user", "content": "x"}),
    )
    .await
    .error(400);
    app.post(
        &format!("/threads/{tid}/runs"),
        json!({"assistant_id": asst}),
    )
    .await
    .error(400);

    let submitted = app
        .post(
            &path,
            json!({"tool_outputs": [
            {"tool_call_id": c1, "output": "mild"}, {"tool_call_id": c0, "output": "cold"}]}),
        )
        .await
        .ok();
    assert_eq!(submitted["status"], "queued");
    assert_eq!(submitted["required_action"], Value::Null);
    let done = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    // A second submission is refused now.
    app.post(
        &path,
        json!({"tool_outputs": [{"tool_call_id": c0, "output": "1"}]}),
    )
    .await
    .error(400);

    // The second model call carried the calls and their outputs.
    let requests = app.llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "get_weather");
    let sent = requests[1]["messages"].as_array().unwrap();
    let n = sent.len();
    assert_eq!(sent[n - 3]["role"], "assistant");
    assert_eq!(sent[n - 3]["tool_calls"][0]["id"], c0.as_str());
    assert_eq!(
        sent[n - 2],
        json!({"role": "tool", "tool_call_id": c0, "content": "cold"})
    );
    assert_eq!(
        sent[n - 1],
        json!({"role": "tool", "tool_call_id": c1, "content": "mild"})
    );

    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps?order=asc"))
        .await
        .ok();
    let steps = steps["data"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["type"], "tool_calls");
    assert_eq!(steps[0]["status"], "completed");
    assert_eq!(
        steps[0]["step_details"]["tool_calls"][0]["function"]["output"],
        "cold"
    );
    assert_eq!(steps[1]["type"], "message_creation");
    let total = done["usage"]["total_tokens"].as_u64().unwrap();
    let per_step: u64 = steps
        .iter()
        .map(|s| s["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(total, per_step);
}
both_backends!(function_calling_loop, function_calling_loop_test);

async fn cancel_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let asst = assistant(&app, json!({"model": "m", "tools": [weather_tool()]})).await;
    // Cancel while waiting for tool outputs: cancelled at once.
    app.llm.script(None, vec![call(&[("get_weather", "{}")])]);
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["requires_action"]).await;
    let cancelled = app
        .post(&format!("/threads/{tid}/runs/{rid}/cancel"), json!({}))
        .await
        .ok();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_i64());
    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    assert_eq!(steps["data"][0]["status"], "cancelled");
    let e = app
        .post(&format!("/threads/{tid}/runs/{rid}/cancel"), json!({}))
        .await
        .error(400);
    assert_eq!(e["message"], "Cannot cancel run with status 'cancelled'.");

    // Cancel while the model is answering slowly: cancelling, then cancelled, and the late
    // answer does not overwrite it.
    app.llm.script(
        None,
        vec![Response {
            text: Some("a slow answer that comes in many pieces".into()),
            chunk_delay_ms: 60,
            ..Default::default()
        }],
    );
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["in_progress"]).await;
    let cancelling = app
        .post(&format!("/threads/{tid}/runs/{rid}/cancel"), json!({}))
        .await
        .ok();
    assert!(["cancelling", "cancelled"].contains(&cancelling["status"].as_str().unwrap()));
    let end = app
        .wait_run(&tid, &rid, &["cancelled", "completed", "failed"])
        .await;
    assert_eq!(end["status"], "cancelled");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let later = app.get(&format!("/threads/{tid}/runs/{rid}")).await.ok();
    assert_eq!(later["status"], "cancelled");
    let by_run = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(by_run["data"], json!([]));
    // The thread is free.
    app.post(
        &format!("/threads/{tid}/messages"),
        json!({"role": "user", "content": "ok"}),
    )
    .await
    .ok();
}
both_backends!(cancel, cancel_test);

async fn expiry_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("RUN_EXPIRY_SECONDS", "1")]).await;
    app.llm.script(None, vec![call(&[("get_weather", "{}")])]);
    let asst = assistant(&app, json!({"model": "m", "tools": [weather_tool()]})).await;
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let waiting = app.wait_run(&tid, &rid, &["requires_action"]).await;
    assert!(waiting["expires_at"].as_i64().unwrap() <= waiting["created_at"].as_i64().unwrap() + 3);
    let expired = app.wait_run(&tid, &rid, &["expired"]).await;
    assert_eq!(expired["required_action"], Value::Null);
    // The step is marked right after the run (a moment later under load).
    let mut steps = Value::Null;
    for _ in 0..100 {
        steps = app
            .get(&format!("/threads/{tid}/runs/{rid}/steps"))
            .await
            .ok();
        if steps["data"][0]["status"] == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(steps["data"][0]["status"], "expired", "{steps}");
    let call_id = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
    app.post(
        &format!("/threads/{tid}/runs/{rid}/submit_tool_outputs"),
        json!({"tool_outputs": [{"tool_call_id": call_id, "output": "late"}]}),
    )
    .await
    .error(400);
    app.post(
        &format!("/threads/{tid}/messages"),
        json!({"role": "user", "content": "ok"}),
    )
    .await
    .ok();
}
both_backends!(expiry, expiry_test);

async fn model_failures_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("LLM_MAX_ATTEMPTS", "3")]).await;
    let asst = assistant(&app, json!({"model": "m"})).await;

    // 429 with Retry-After, then an answer: retried and completed.
    app.llm.script(
        None,
        vec![fail_with(429, Some(0.2)), say("after the limit")],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");

    // Three 500s: failed with server_error.
    app.llm.script(
        None,
        vec![
            fail_with(500, None),
            fail_with(500, None),
            fail_with(500, None),
        ],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["last_error"]["code"], "server_error");
    assert!(run["failed_at"].is_i64());
    assert!(run["last_error"]["message"]
        .as_str()
        .unwrap()
        .contains("500"));

    // Rate limited every time: rate_limit_exceeded.
    app.llm.script(
        None,
        vec![
            fail_with(429, Some(0.1)),
            fail_with(429, Some(0.1)),
            fail_with(429, Some(0.1)),
        ],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["last_error"]["code"], "rate_limit_exceeded");

    // A refused prompt (400): no retry, invalid_prompt.
    let before = app.llm.requests().len();
    app.llm.script(None, vec![fail_with(400, None)]);
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["last_error"]["code"], "invalid_prompt");
    assert_eq!(app.llm.requests().len(), before + 1);

    // A stream cut off mid-answer, then a good one: retried.
    app.llm.script(
        None,
        vec![
            Response {
                text: Some("partial answer".into()),
                cut_off: true,
                ..Default::default()
            },
            Response {
                malformed: true,
                text: Some("bad".into()),
                ..Default::default()
            },
            say("whole answer"),
        ],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");
    let messages = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(
        messages["data"][0]["content"][0]["text"]["value"],
        "whole answer"
    );
    // (A run whose tool this server cannot run, code_interpreter without a sandbox, fails
    // at once with the reason: tests/code_interpreter_runs.rs.)
}
both_backends!(model_failures, model_failures_test);

async fn token_limits_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let asst = assistant(&app, json!({"model": "m"})).await;

    // The model stops at its length limit: incomplete, and so is the message.
    app.llm.script(
        None,
        vec![Response {
            text: Some("cut short".into()),
            finish_reason: Some("length".into()),
            ..Default::default()
        }],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst, "max_completion_tokens": 256}),
        )
        .await
        .ok());
    let run = app
        .wait_run(&tid, &rid, &["completed", "incomplete", "failed"])
        .await;
    assert_eq!(run["status"], "incomplete");
    assert_eq!(
        run["incomplete_details"],
        json!({"reason": "max_completion_tokens"})
    );
    assert_eq!(run["max_completion_tokens"], 256);
    assert_eq!(
        app.llm.requests().last().unwrap()["max_completion_tokens"],
        256
    );
    let m = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(m["data"][0]["status"], "incomplete");
    assert_eq!(m["data"][0]["incomplete_details"]["reason"], "max_tokens");

    // A thread longer than max_prompt_tokens: `auto` drops the oldest messages.
    let long = "lorem ipsum dolor sit amet ".repeat(40);
    let texts: Vec<String> = (0..6).map(|i| format!("{i} {long}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tid = thread_with(&app, &refs).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst, "max_prompt_tokens": 700}),
        )
        .await
        .ok());
    let run = app
        .wait_run(&tid, &rid, &["completed", "incomplete", "failed"])
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    let sent = app.llm.requests().last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        sent.len() < 6,
        "auto truncation kept {} messages",
        sent.len()
    );
    assert!(sent.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .starts_with("5 "));

    // `last_messages` keeps the newest N.
    let tid = thread_with(&app, &["one", "two", "three"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst,
            "truncation_strategy": {"type": "last_messages", "last_messages": 1}}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["completed"]).await;
    let sent = app.llm.requests().last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sent, vec![json!({"role": "user", "content": "three"})]);

    // One message alone above the budget with last_messages: incomplete (max_prompt_tokens).
    let tid = thread_with(&app, &[&long.repeat(3)]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst, "max_prompt_tokens": 256,
            "truncation_strategy": {"type": "last_messages", "last_messages": 1}}),
        )
        .await
        .ok());
    let run = app
        .wait_run(&tid, &rid, &["completed", "incomplete", "failed"])
        .await;
    assert_eq!(run["status"], "incomplete");
    assert_eq!(
        run["incomplete_details"],
        json!({"reason": "max_prompt_tokens"})
    );

    // Bad limits are 400s.
    let e = app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst, "max_prompt_tokens": 10}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "max_prompt_tokens");
}
both_backends!(token_limits, token_limits_test);

async fn run_options_reach_the_model_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let asst = assistant(
        &app,
        json!({"model": "base-model", "instructions": "assistant's",
        "tools": [weather_tool()], "response_format": {"type": "json_object"}}),
    )
    .await;
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(&format!("/threads/{tid}/runs"), json!({
            "assistant_id": asst, "model": "run-model", "instructions": "run's",
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false, "top_p": 0.5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
        }))
        .await
        .ok());
    app.llm.script(None, vec![]);
    app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    let sent = app.llm.requests().last().unwrap().clone();
    assert_eq!(sent["model"], "run-model");
    assert_eq!(sent["messages"][0]["content"], "run's");
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(sent["parallel_tool_calls"], false);
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);

    // Validation of run parameters.
    let runs = format!("/threads/{tid}/runs");
    let e = app.post(&runs, json!({"assistant_id": asst, "tool_choice": {"type": "function", "function": {"name": "nope"}}})).await.error(400);
    assert_eq!(e["param"], "tool_choice.function.name");
    app.post(
        &runs,
        json!({"assistant_id": asst, "truncation_strategy": {"type": "last_messages"}}),
    )
    .await
    .error(400);
    app.post(
        &runs,
        json!({"assistant_id": "asst_abcdefghijklmnopqrstuvwx"}),
    )
    .await
    .error(404);
    app.post(&runs, json!({"assistant_id": "nope"}))
        .await
        .error(400);
    app.post(&runs, json!({})).await.error(400);
    app.post(
        "/threads/thread_abcdefghijklmnopqrstuvwx/runs",
        json!({"assistant_id": asst}),
    )
    .await
    .error(404);
    app.get(&format!("{runs}/run_abcdefghijklmnopqrstuvwx"))
        .await
        .error(404);
}
both_backends!(
    run_options_reach_the_model,
    run_options_reach_the_model_test
);

async fn create_thread_and_run_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![say("hello back")]);
    let asst = assistant(&app, json!({"model": "m"})).await;
    let run = app
        .post(
            "/threads/runs",
            json!({"assistant_id": asst,
            "thread": {"messages": [{"role": "user", "content": "hello"}], "metadata": {"a": "b"}},
            "metadata": {"r": "1"}}),
        )
        .await
        .ok();
    let tid = run["thread_id"].as_str().unwrap().to_string();
    let done = app
        .wait_run(&tid, &id(&run), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["metadata"], json!({"r": "1"}));
    let thread = app.get(&format!("/threads/{tid}")).await.ok();
    assert_eq!(thread["metadata"], json!({"a": "b"}));
    let messages = app
        .get(&format!("/threads/{tid}/messages?order=asc"))
        .await
        .ok();
    let values: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["hello", "hello back"]);
    // Modify the run's metadata; list runs and steps with paging.
    let modified = app
        .post(
            &format!("/threads/{tid}/runs/{}", id(&run)),
            json!({"metadata": {"r": "2"}}),
        )
        .await
        .ok();
    assert_eq!(modified["metadata"], json!({"r": "2"}));
    let page = app
        .get(&format!("/threads/{tid}/runs?limit=1&order=asc"))
        .await
        .ok();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], false);
    app.post(
        "/threads/runs",
        json!({"assistant_id": "asst_abcdefghijklmnopqrstuvwx"}),
    )
    .await
    .error(404);
}
both_backends!(create_thread_and_run, create_thread_and_run_test);

async fn repeated_delivery_is_harmless_test(backend: Backend) {
    let (app, faults) = spawn_faulty_app(backend, &[]).await;
    let asst = assistant(&app, json!({"model": "m"})).await;

    // A turn interrupted between the model's answer and the run update (as by a crash):
    // its message is stored, the write answers with an error, the queue delivers the turn
    // again, and the end has exactly one answer.
    app.llm
        .script(None, vec![say("first attempt"), say("second attempt")]);
    let tid = thread_with(&app, &["q"]).await;
    faults
        .store
        .fail_once_after_write(|key| key.contains("/messages/"));
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");
    let answers = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    let answers = answers["data"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["content"][0]["text"]["value"], "second attempt");
    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    assert_eq!(steps["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.llm.requests().len(), 2);

    // The same work item delivered again after the run completed: nothing happens.
    let turn = RunTurn {
        tenant: "tenanta".into(),
        thread_id: tid.clone(),
        run_id: rid.clone(),
        seq: 0,
    };
    let item = WorkItem::Step(turn.clone());
    let mut sink = assistants::engine::events::Discard;
    assert_eq!(app.engine.run_turn(&item, &mut sink).await, Outcome::Done);
    assert_eq!(app.engine.run_turn(&item, &mut sink).await, Outcome::Done);
    assert_eq!(
        app.llm.requests().len(),
        2,
        "a stale item must not call the model"
    );
    let after = app.get(&format!("/threads/{tid}/runs/{rid}")).await.ok();
    assert_eq!(after, run);
    let answers = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(answers["data"].as_array().unwrap().len(), 1);

    // Two deliveries of a fresh run's item at once: one answer, consistent steps.
    app.llm.script(
        None,
        vec![
            Response {
                text: Some("slow".into()),
                chunk_delay_ms: 50,
                ..Default::default()
            },
            Response {
                text: Some("slow".into()),
                chunk_delay_ms: 50,
                ..Default::default()
            },
        ],
    );
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let item = WorkItem::Step(RunTurn {
        thread_id: tid.clone(),
        run_id: rid.clone(),
        ..turn
    });
    let engine = app.engine.clone();
    let twin = tokio::spawn(async move {
        let mut sink = assistants::engine::events::Discard;
        engine.run_turn(&item, &mut sink).await
    });
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    let _ = twin.await;
    assert_eq!(run["status"], "completed");
    let answers = app
        .get(&format!("/threads/{tid}/messages?run_id={rid}"))
        .await
        .ok();
    assert_eq!(answers["data"].as_array().unwrap().len(), 1);
    let steps = app
        .get(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await
        .ok();
    assert_eq!(steps["data"].as_array().unwrap().len(), 1);
}
both_backends!(
    repeated_delivery_is_harmless,
    repeated_delivery_is_harmless_test
);

async fn one_active_run_per_thread_test(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    app.llm.script(
        None,
        vec![Response {
            text: Some("slow".into()),
            chunk_delay_ms: 100,
            ..Default::default()
        }],
    );
    let asst = assistant(&app, json!({"model": "m"})).await;
    let tid = thread_with(&app, &["q"]).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let app = app.clone();
            let (tid, asst) = (tid.clone(), asst.clone());
            tokio::spawn(async move {
                app.post(
                    &format!("/threads/{tid}/runs"),
                    json!({"assistant_id": asst}),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        let answer = t.await.unwrap();
        match answer.status.as_u16() {
            200 => ok += 1,
            400 => {
                let e = answer.error(400);
                assert!(e["message"]
                    .as_str()
                    .unwrap()
                    .contains("already has an active run"));
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (1, 9));
    let runs = app.get(&format!("/threads/{tid}/runs")).await.ok();
    assert_eq!(runs["data"].as_array().unwrap().len(), 1);
}
both_backends!(one_active_run_per_thread, one_active_run_per_thread_test);

async fn model_backends_test(backend: Backend) {
    // Azure OpenAI: the deployment path, `api-key`, `api-version`, model → deployment.
    let llm = llm_standin::StandIn::new();
    let addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let endpoint = format!("http://{addr}");
    let app = spawn_app_with(
        backend,
        &[
            ("AZURE_OPENAI_ENDPOINT", endpoint.as_str()),
            ("AZURE_OPENAI_API_KEY", "azure-secret"),
            ("AZURE_OPENAI_API_VERSION", "2024-10-21"),
            ("AZURE_OPENAI_DEPLOYMENTS", "gpt-4o=prod-4o"),
        ],
    )
    .await;
    llm.script(None, vec![say("from azure")]);
    let asst = assistant(&app, json!({"model": "gpt-4o"})).await;
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    let run = app.wait_run(&tid, &rid, &["completed", "failed"]).await;
    assert_eq!(run["status"], "completed", "{run}");
    let sent = llm.requests().pop().unwrap();
    assert_eq!(
        sent["_path"],
        "/openai/deployments/prod-4o/chat/completions"
    );
    assert_eq!(sent["_query"], "api-version=2024-10-21");
    assert_eq!(sent["_api_key"], "azure-secret");
    assert_eq!(sent["_authorization"], Value::Null);

    // OpenAI-compatible: `Authorization: Bearer OPENAI_API_KEY` on /chat/completions.
    let llm = llm_standin::StandIn::new();
    let addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base = format!("http://{addr}/v1");
    let app = spawn_app_with(
        backend,
        &[
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-upstream"),
        ],
    )
    .await;
    let asst = assistant(&app, json!({"model": "m"})).await;
    let tid = thread_with(&app, &["q"]).await;
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["completed"]).await;
    let sent = llm.requests().pop().unwrap();
    assert_eq!(sent["_path"], "/v1/chat/completions");
    assert_eq!(sent["_authorization"], "Bearer sk-upstream");
}
both_backends!(model_backends, model_backends_test);
