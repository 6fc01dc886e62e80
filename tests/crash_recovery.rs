//! The server killed (SIGKILL) in the middle of runs, twice, with Azure storage and the
//! Azure queue (on Azurite): queued runs, runs in their second turn after tool outputs,
//! streamed runs, streamed runs in their second turn after a `file_search` call (the stream
//! goes on in the same request), and message creates in flight. After each restart every
//! run reaches a terminal status on its own: queued turns come back when their lease runs
//! out (`WORK_LEASE_SECONDS`), streamed ones through their turn's watchdog item
//! (`RUN_STALL_SECONDS`).
//! Runs are watched through list calls, which (unlike a run read) never re-queue anything.
//! Afterwards each run has exactly one answer and consistent steps, and every message whose
//! create was answered 200 is there, once.
//!
//! And the server stopped by SIGTERM in the middle of queued and streamed runs: it exits 0
//! within its grace, and what it did not finish is taken again at once after a restart.

mod support;

use futures::StreamExt;
use llm_standin::{Response, StandIn};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::remote::{self, check_run, Api, ServerProcess, TERMINAL};
use support::{azurite_connection_string, call, unique_name, KEY_A};

const QUEUED: usize = 10;
const WITH_TOOLS: usize = 4;
const STREAMED: usize = 4;
const STREAMED_SEARCH: usize = 2;

/// A slow answer (about 3 s): the turns are in the middle of it when the server dies.
fn slow(text: &str) -> Response {
    Response {
        text: Some(format!(
            "{text}, an answer of many words that the model sends one at a time"
        )),
        chunk_delay_ms: 250,
        ..Default::default()
    }
}

/// An answer slower than any test waits for (about 14 s).
fn very_slow(text: &str) -> Response {
    Response {
        chunk_delay_ms: 1000,
        ..slow(text)
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
}

/// Starts a streamed run on a new thread; returns (thread, run) as soon as the run is
/// announced and keeps reading the stream (until the server dies) in the background.
async fn start_streamed(api: &Api, asst: &str, model: &str) -> (String, String) {
    let response = api
        .http
        .post(format!("{}/threads/runs", api.base))
        .bearer_auth(&api.key)
        .header("OpenAI-Beta", "assistants=v2")
        .json(
            &json!({"assistant_id": asst, "model": model, "stream": true,
            "thread": {"messages": [{"role": "user", "content": format!("streamed {model}")}]}}),
        )
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut decoder = assistants::llm::sse::Decoder::default();
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        for (event, data) in decoder.feed_events(&chunk) {
            if event.as_deref() == Some("thread.run.created") {
                let run: Value = serde_json::from_str(&data).expect("run");
                tokio::spawn(async move { while body.next().await.is_some() {} });
                return (
                    run["thread_id"].as_str().unwrap().to_string(),
                    run["id"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    panic!("no thread.run.created in {text}");
}

/// The status of every run, read through list calls only.
async fn statuses(api: &Api, runs: &[(String, String)]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (tid, rid) in runs {
        if let Ok(answer) = api
            .try_call(reqwest::Method::GET, &format!("/threads/{tid}/runs"), None)
            .await
        {
            for run in answer.body["data"].as_array().cloned().unwrap_or_default() {
                if run["id"] == rid.as_str() {
                    out.insert(rid.clone(), run["status"].as_str().unwrap().to_string());
                }
            }
        }
    }
    out
}

/// Waits until every run is one of `until`, watching them through list calls only.
async fn wait_all(api: &Api, runs: &[(String, String)], until: &[&str], timeout: Duration) {
    let read = move || async move {
        let now = statuses(api, runs).await;
        runs.iter()
            .map(|(_, rid)| json!({"id": rid, "status": now.get(rid)}))
            .collect()
    };
    remote::wait_all(until, timeout, Duration::from_millis(200), read).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_in_the_middle_of_runs_twice() {
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base_url = format!("http://{llm_addr}/v1");
    let connection = azurite_connection_string();
    let (container, queue) = (unique_name("crash"), unique_name("crash"));
    let logs = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        &[
            ("STORAGE", "azure"),
            ("STORAGE_CONNECTION_STRING", &connection),
            ("STORAGE_CONTAINER", &container),
            ("QUEUE_NAME", &queue),
            ("OPENAI_BASE_URL", &base_url),
            ("WORK_LEASE_SECONDS", "3"),
            ("RUN_STALL_SECONDS", "6"),
            ("QUEUE_POLL_MAX_MS", "200"),
        ],
        &logs.path().join("server.log"),
    )
    .await;
    let api = server.api(KEY_A);
    let asst = api
        .post(
            "/assistants",
            json!({"model": "m", "tools": [weather_tool()]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Each run has a model of its own; every turn of it answers slowly twice (the first
    // delivery and the one after the first crash), then the stand-in echoes.
    let mut runs: Vec<(String, String)> = Vec::new();
    let mut tool_runs: Vec<(String, String)> = Vec::new();
    for i in 0..WITH_TOOLS {
        let model = format!("tools-{i}");
        llm.script(
            Some(&model),
            vec![
                call(&[("get_weather", r#"{"city":"Oslo"}"#)]),
                slow(&format!("cold in Oslo {i}")),
                slow(&format!("cold in Oslo {i}")),
            ],
        );
        tool_runs.push(
            api.create_thread_and_run(&asst, Some(&model), &format!("weather {i}"))
                .await,
        );
    }
    wait_all(
        &api,
        &tool_runs,
        &["requires_action"],
        Duration::from_secs(60),
    )
    .await;
    for (tid, rid) in &tool_runs {
        let run = api.get(&format!("/threads/{tid}/runs/{rid}")).await.ok();
        let call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
        api.post(
            &format!("/threads/{tid}/runs/{rid}/submit_tool_outputs"),
            json!({"tool_outputs": [{"tool_call_id": call_id, "output": "-3 C"}]}),
        )
        .await
        .ok();
    }
    runs.extend(tool_runs.iter().cloned());
    for i in 0..QUEUED {
        let model = format!("queued-{i}");
        llm.script(
            Some(&model),
            vec![slow(&format!("answer {i}")), slow(&format!("answer {i}"))],
        );
        runs.push(
            api.create_thread_and_run(&asst, Some(&model), &format!("question {i}"))
                .await,
        );
    }
    for i in 0..STREAMED {
        let model = format!("streamed-{i}");
        llm.script(
            Some(&model),
            vec![
                slow(&format!("streamed answer {i}")),
                slow(&format!("streamed answer {i}")),
            ],
        );
        runs.push(start_streamed(&api, &asst, &model).await);
    }
    // Streamed runs whose first turn is a quick search (of no stores): the stream takes
    // the second, slow turn at once, in the same request.
    let search_asst = api
        .post(
            "/assistants",
            json!({"model": "m", "tools": [{"type": "file_search"}]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut search_runs: Vec<(String, String)> = Vec::new();
    for i in 0..STREAMED_SEARCH {
        let model = format!("search-{i}");
        llm.script(
            Some(&model),
            vec![
                call(&[("file_search", r#"{"queries":["anything"]}"#)]),
                slow(&format!("found nothing {i}")),
                slow(&format!("found nothing {i}")),
            ],
        );
        search_runs.push(start_streamed(&api, &search_asst, &model).await);
    }
    runs.extend(search_runs.iter().cloned());

    // Messages created on threads of their own, up to the moment of the crash; those
    // answered 200 must all survive.
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let side_thread = api.post("/threads", json!({})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let writer = {
        let (api, acknowledged, tid) = (api.clone(), acknowledged.clone(), side_thread.clone());
        tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"role": "user", "content": format!("note {i}")});
                match api
                    .try_call(
                        reqwest::Method::POST,
                        &format!("/threads/{tid}/messages"),
                        Some(body),
                    )
                    .await
                {
                    Ok(a) if a.status == 200 => acknowledged.lock().unwrap().push((
                        a.body["id"].as_str().unwrap().to_string(),
                        format!("note {i}"),
                    )),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    };

    // Kill once most turns are under way.
    wait_all(
        &api,
        &runs[..WITH_TOOLS + QUEUED / 2],
        &["in_progress", "completed"],
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Which streamed search runs are in their second turn (the search step completed).
    let mut in_second_turn = 0;
    for (tid, rid) in &search_runs {
        let steps = api
            .list_all(&format!("/threads/{tid}/runs/{rid}/steps"))
            .await;
        if steps
            .iter()
            .any(|s| s["type"] == "tool_calls" && s["status"] == "completed")
        {
            in_second_turn += 1;
        }
    }
    let before = statuses(&api, &runs).await;
    server.kill();
    assert!(
        in_second_turn >= 1,
        "no streamed search run in its second turn at the crash: {before:?}"
    );
    let interrupted = before.values().filter(|s| *s == "in_progress").count();
    assert!(
        interrupted >= 3,
        "few turns under way at the crash: {before:?}"
    );
    server.restart().await;
    // Kill again while the recovered turns run.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    server.kill();
    server.restart().await;

    wait_all(&api, &runs, TERMINAL, Duration::from_secs(120)).await;
    writer.abort();

    for (tid, rid) in &runs {
        let state = check_run(&api, tid, rid).await;
        assert_eq!(state.run["status"], "completed", "{}", state.run);
        assert_eq!(state.answers().len(), 1, "one answer: {:?}", state.messages);
        // The thread holds its user message(s) and the one answer, nothing twice.
        let messages = api.list_all(&format!("/threads/{tid}/messages")).await;
        let ids: HashSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), messages.len(), "duplicate ids: {messages:?}");
        let users = messages.iter().filter(|m| m["role"] == "user").count();
        assert_eq!(users, 1, "{messages:?}");
        assert_eq!(messages.len(), 2, "{messages:?}");
    }
    for (tid, rid) in &tool_runs {
        let steps = api
            .list_all(&format!("/threads/{tid}/runs/{rid}/steps"))
            .await;
        let kinds: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s["type"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("tool_calls", "completed"),
                ("message_creation", "completed")
            ],
            "{steps:?}"
        );
        assert_eq!(
            steps[0]["step_details"]["tool_calls"][0]["function"]["output"],
            "-3 C"
        );
    }
    for (tid, rid) in &search_runs {
        let steps = api
            .list_all(&format!("/threads/{tid}/runs/{rid}/steps"))
            .await;
        let kinds: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s["type"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("tool_calls", "completed"),
                ("message_creation", "completed")
            ],
            "{steps:?}"
        );
        assert_eq!(
            steps[0]["step_details"]["tool_calls"][0]["type"],
            "file_search"
        );
    }
    // The interrupted turns were answered again: more model calls than turns.
    let turns = runs.len() + tool_runs.len() + search_runs.len();
    assert!(
        llm.requests().len() >= turns + interrupted,
        "{} model calls for {turns} turns, {interrupted} interrupted",
        llm.requests().len()
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    let stored = api
        .list_all(&format!("/threads/{side_thread}/messages"))
        .await;
    let stored: HashMap<&str, &str> = stored
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap(),
                m["content"][0]["text"]["value"].as_str().unwrap(),
            )
        })
        .collect();
    for (id, text) in &acknowledged {
        assert_eq!(stored.get(id.as_str()), Some(&text.as_str()), "lost {id}");
    }
    server.stop();
}

/// SIGTERM in the middle of queued and streamed runs, with Azure storage and the Azure
/// queue (on Azurite): the process stops taking work, gives the turns in progress its grace
/// (`SHUTDOWN_GRACE_SECONDS`, shorter here than any turn), releases those still running to
/// the queue, and exits 0. Restarted, it completes every run at once: with a lease and a
/// watchdog delay far longer than the test waits, only the released messages can bring the
/// interrupted turns back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_by_sigterm_in_the_middle_of_runs() {
    const GRACE_SECONDS: u64 = 1;
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base_url = format!("http://{llm_addr}/v1");
    let connection = azurite_connection_string();
    let (container, queue) = (unique_name("sigterm"), unique_name("sigterm"));
    let logs = tempfile::tempdir().unwrap();
    let grace = GRACE_SECONDS.to_string();
    let mut server = ServerProcess::start(
        &[
            ("STORAGE", "azure"),
            ("STORAGE_CONNECTION_STRING", &connection),
            ("STORAGE_CONTAINER", &container),
            ("QUEUE_NAME", &queue),
            ("OPENAI_BASE_URL", &base_url),
            ("WORK_LEASE_SECONDS", "300"),
            ("RUN_STALL_SECONDS", "300"),
            ("QUEUE_POLL_MAX_MS", "200"),
            ("SHUTDOWN_GRACE_SECONDS", &grace),
        ],
        &logs.path().join("server.log"),
    )
    .await;
    let api = server.api(KEY_A);
    let asst = api.post("/assistants", json!({"model": "m"})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Every turn's first answer takes far longer than the grace (about 14 s): the shutdown
    // cuts it off; after the restart it is answered again, quicker.
    let mut runs: Vec<(String, String)> = Vec::new();
    for i in 0..QUEUED / 2 {
        let model = format!("queued-{i}");
        llm.script(
            Some(&model),
            vec![
                very_slow(&format!("answer {i}")),
                slow(&format!("answer {i}")),
            ],
        );
        runs.push(
            api.create_thread_and_run(&asst, Some(&model), &format!("question {i}"))
                .await,
        );
    }
    for i in 0..STREAMED {
        let model = format!("streamed-{i}");
        llm.script(
            Some(&model),
            vec![
                very_slow(&format!("streamed answer {i}")),
                slow(&format!("streamed answer {i}")),
            ],
        );
        runs.push(start_streamed(&api, &asst, &model).await);
    }
    wait_all(&api, &runs, &["in_progress"], Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = statuses(&api, &runs).await;
    assert!(
        before.values().all(|s| s == "in_progress"),
        "every turn is under way at the signal: {before:?}"
    );

    let signalled = Instant::now();
    let exit = server.terminate_within(Duration::from_secs(30));
    let took = signalled.elapsed();
    let log = server.log_text();
    assert!(exit.is_some_and(|e| e.success()), "exit {exit:?}: {log}");
    // The grace, then releasing what did not finish and answering the last requests.
    assert!(
        took >= Duration::from_secs(GRACE_SECONDS) && took < Duration::from_secs(10),
        "stopped after {took:?}"
    );
    assert!(log.contains("released"), "{log}");
    let unfinished = statuses(&api, &runs).await;
    assert!(unfinished.is_empty(), "the server is down: {unfinished:?}");

    server.restart().await;
    wait_all(&api, &runs, TERMINAL, Duration::from_secs(45)).await;
    for (tid, rid) in &runs {
        let state = check_run(&api, tid, rid).await;
        assert_eq!(state.run["status"], "completed", "{}", state.run);
        assert_eq!(state.answers().len(), 1, "one answer: {:?}", state.messages);
        let messages = api.list_all(&format!("/threads/{tid}/messages")).await;
        assert_eq!(messages.len(), 2, "{messages:?}");
    }
    // Each turn was answered twice: cut off once, then taken again.
    assert!(llm.requests().len() >= 2 * runs.len());
    let exit = server.terminate_within(Duration::from_secs(30));
    assert!(exit.is_some_and(|e| e.success()), "exit {exit:?}");
}
