//! Faults of the model endpoint, each scripted on the stand-in (which speaks the real wire
//! protocol and, for resets, really resets the TCP connection): 429 with Retry-After, 500,
//! a connection reset before the answer and in the middle of it, no answer in time, a
//! stream that goes silent, a stream cut off, a malformed chunk. Every fault once then a
//! good answer: the run completes; every fault on every attempt: the run fails with the
//! right `last_error`. Nothing hangs (each run ends within a bound), and the stored
//! messages and steps agree with the run's status (`remote::check_run`). The scenarios of a
//! test run at once, each on a model of its own.

mod support;

use futures::future::join_all;
use llm_standin::{Reset, Response};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::remote::{check_run, RunState, TERMINAL};
use support::{fail_with, say, spawn_app_with, Backend, TestApp};

/// Settings of these tests: short timeouts so faults end quickly.
const SETTINGS: &[(&str, &str)] = &[
    ("LLM_MAX_ATTEMPTS", "3"),
    ("LLM_TIMEOUT_SECONDS", "1"),
    ("LLM_MAX_RETRY_WAIT_SECONDS", "5"),
];

fn reset_at_once() -> Response {
    Response {
        reset: Some(Reset::AtOnce),
        ..Default::default()
    }
}

fn reset_mid_stream(text: &str) -> Response {
    Response {
        text: Some(text.into()),
        reset: Some(Reset::MidStream),
        ..Default::default()
    }
}

/// Headers never come within the timeout.
fn silent() -> Response {
    Response {
        text: Some("too late".into()),
        answer_delay_ms: 2500,
        ..Default::default()
    }
}

/// The stream starts, shows some text, then goes quiet for longer than the timeout.
fn stalls() -> Response {
    Response {
        text: Some("slow words".into()),
        stall_ms: 2500,
        ..Default::default()
    }
}

fn cut_off(text: &str) -> Response {
    Response {
        text: Some(text.into()),
        cut_off: true,
        ..Default::default()
    }
}

fn malformed(text: &str) -> Response {
    Response {
        text: Some(text.into()),
        malformed: true,
        ..Default::default()
    }
}

struct Outcome {
    state: RunState,
    /// When each model request of the scenario arrived (µs).
    requests: Vec<u64>,
    took: Duration,
}

/// Runs one scenario: `script` for `model`, a run on a fresh thread, waited for (at most
/// `bound`), checked.
async fn scenario(app: &TestApp, asst: &str, model: &str, script: Vec<Response>) -> Outcome {
    app.llm.script(Some(model), script);
    let api = app.api();
    let tid = api
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": format!("question for {model}")}]}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let run = api
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst, "model": model}),
        )
        .await
        .ok();
    let rid = run["id"].as_str().unwrap().to_string();
    // Three attempts with a 1 s timeout and back-offs of 1 s and 2 s take about 6 s; the
    // bounds leave room for a loaded machine, but a hang would blow them.
    api.wait_run(&tid, &rid, TERMINAL, Duration::from_secs(40))
        .await;
    let took = started.elapsed();
    let state = check_run(&api, &tid, &rid).await;
    let requests = app
        .llm
        .requests()
        .iter()
        .filter(|r| r["model"] == model)
        .map(|r| r["received_us"].as_u64().unwrap())
        .collect();
    Outcome {
        state,
        requests,
        took,
    }
}

async fn assistant(app: &TestApp) -> String {
    app.post("/assistants", json!({"model": "m"})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn gap_ms(requests: &[u64]) -> u64 {
    (requests[1] - requests[0]) / 1000
}

async fn one_fault_then_an_answer_test(backend: Backend) {
    let app = spawn_app_with(backend, SETTINGS).await;
    let asst = assistant(&app).await;
    let scenarios: Vec<(&str, Response)> = vec![
        ("rate-limited", fail_with(429, Some(1.5))),
        ("server-error", fail_with(500, None)),
        ("reset", reset_at_once()),
        ("reset-mid-stream", reset_mid_stream("the first words")),
        ("silent", silent()),
        ("stalls", stalls()),
        ("cut-off", cut_off("the first words")),
        ("malformed", malformed("the first words")),
    ];
    let outcomes = join_all(scenarios.into_iter().map(|(model, fault)| {
        let (app, asst) = (&app, &asst);
        async move {
            let outcome = scenario(app, asst, model, vec![fault, say("the whole answer")]).await;
            (model, outcome)
        }
    }))
    .await;
    for (model, o) in outcomes {
        let run = &o.state.run;
        assert_eq!(run["status"], "completed", "{model}: {run}");
        assert_eq!(run["last_error"], Value::Null, "{model}");
        assert_eq!(o.requests.len(), 2, "{model}: one retry");
        assert_eq!(o.state.answers(), vec!["the whole answer"], "{model}");
        match model {
            // Retry-After (1.5 s) is honoured rather than the 1 s default back-off.
            "rate-limited" => assert!(gap_ms(&o.requests) >= 1500, "{model}: {:?}", o.requests),
            // The timeout (1 s) ended the attempt; then the back-off (1 s).
            "silent" | "stalls" => {
                assert!(gap_ms(&o.requests) >= 1900, "{model}: {:?}", o.requests)
            }
            _ => assert!(gap_ms(&o.requests) >= 900, "{model}: {:?}", o.requests),
        }
        // What the broken attempt had shown is kept as an incomplete message of a failed
        // step (check_run pairs them); attempts that showed nothing leave nothing.
        let failed_steps: Vec<&Value> = o
            .state
            .steps
            .iter()
            .filter(|s| s["status"] == "failed")
            .collect();
        match model {
            "reset-mid-stream" | "cut-off" | "malformed" | "stalls" => {
                assert_eq!(failed_steps.len(), 1, "{model}: {:?}", o.state.steps);
                assert_eq!(failed_steps[0]["last_error"]["code"], "server_error");
                let partial: Vec<&Value> = o
                    .state
                    .messages
                    .iter()
                    .filter(|m| m["status"] == "incomplete")
                    .collect();
                assert_eq!(partial.len(), 1, "{model}");
                assert_eq!(partial[0]["incomplete_details"]["reason"], "run_failed");
            }
            _ => assert!(failed_steps.is_empty(), "{model}: {:?}", o.state.steps),
        }
        assert!(
            o.took < Duration::from_secs(20),
            "{model} took {:?}",
            o.took
        );
    }
}
both_backends!(one_fault_then_an_answer, one_fault_then_an_answer_test);

async fn a_fault_on_every_attempt_fails_the_run_test(backend: Backend) {
    let app = spawn_app_with(backend, SETTINGS).await;
    let asst = assistant(&app).await;
    let three = |r: Response| vec![r.clone(), r.clone(), r];
    let scenarios: Vec<(&str, Vec<Response>, &str, &str)> = vec![
        (
            "server-error",
            three(fail_with(500, None)),
            "server_error",
            "500",
        ),
        (
            "rate-limited",
            three(fail_with(429, Some(0.2))),
            "rate_limit_exceeded",
            "429",
        ),
        // Asked to wait longer than LLM_MAX_RETRY_WAIT_SECONDS: fails at once.
        (
            "wait-too-long",
            vec![fail_with(429, Some(60.0))],
            "rate_limit_exceeded",
            "429",
        ),
        (
            "refused",
            vec![fail_with(400, None)],
            "invalid_prompt",
            "400",
        ),
        (
            "reset",
            three(reset_at_once()),
            "server_error",
            "could not be reached",
        ),
        (
            "reset-mid-stream",
            three(reset_mid_stream("some words")),
            "server_error",
            "broke off",
        ),
        (
            "silent",
            three(silent()),
            "server_error",
            "did not answer in time",
        ),
        ("stalls", three(stalls()), "server_error", "stopped sending"),
        (
            "cut-off",
            three(cut_off("some words")),
            "server_error",
            "ended before the answer was complete",
        ),
        (
            "malformed",
            three(malformed("some words")),
            "server_error",
            "malformed",
        ),
    ];
    let outcomes = join_all(scenarios.into_iter().map(|(model, script, code, says)| {
        let (app, asst) = (&app, &asst);
        let attempts = script.len();
        async move {
            let outcome = scenario(app, asst, model, script).await;
            (model, attempts, code, says, outcome)
        }
    }))
    .await;
    for (model, attempts, code, says, o) in outcomes {
        let run = &o.state.run;
        assert_eq!(run["status"], "failed", "{model}: {run}");
        assert_eq!(run["last_error"]["code"], code, "{model}: {run}");
        let message = run["last_error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{model}: {message}");
        assert!(
            !message.contains("127.0.0.1") && !message.contains("http://"),
            "{model}: the model endpoint's address leaks: {message}"
        );
        assert_eq!(o.requests.len(), attempts, "{model}");
        assert!(o.state.answers().is_empty(), "{model}");
        // Every attempt that showed text left one incomplete message and a failed step.
        let shown = match model {
            "reset-mid-stream" | "cut-off" | "malformed" | "stalls" => attempts,
            _ => 0,
        };
        assert_eq!(o.state.messages.len(), shown, "{model}");
        assert_eq!(o.state.steps.len(), shown, "{model}");
        assert!(
            o.took < Duration::from_secs(25),
            "{model} took {:?}",
            o.took
        );
    }
    // The model endpoint's failures left the service itself healthy.
    let o = scenario(&app, &asst, "healthy", vec![say("fine")]).await;
    assert_eq!(o.state.answers(), vec!["fine"]);
}
both_backends!(
    a_fault_on_every_attempt_fails_the_run,
    a_fault_on_every_attempt_fails_the_run_test
);

/// Posts with `stream: true`; returns the event names in order (the stream must end by
/// itself within `bound`).
async fn stream_events(app: &TestApp, path: &str, body: Value, bound: Duration) -> Vec<String> {
    let response = app
        .raw(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(bound, response.text())
        .await
        .expect("the stream ended")
        .unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("event:").map(|e| e.trim().to_string()))
        })
        .collect()
}

/// A streamed run sees a reset attempt closed (its message incomplete, its step failed)
/// before the retry's answer, and a run whose every attempt is reset ends its stream with
/// `thread.run.failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_runs_close_what_a_broken_attempt_opened() {
    let app = spawn_app_with(Backend::Local, SETTINGS).await;
    let asst = assistant(&app).await;
    app.llm.script(
        Some("retried"),
        vec![reset_mid_stream("the first words"), say("the whole answer")],
    );
    let body = |model: &str| {
        json!({"assistant_id": asst, "model": model, "stream": true,
               "thread": {"messages": [{"role": "user", "content": "q"}]}})
    };
    let events = stream_events(
        &app,
        "/threads/runs",
        body("retried"),
        Duration::from_secs(15),
    )
    .await;
    let first_fail = events
        .iter()
        .position(|e| e == "thread.message.incomplete")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        events[first_fail + 1],
        "thread.run.step.failed",
        "{events:?}"
    );
    let completed = events
        .iter()
        .position(|e| e == "thread.message.completed")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(completed > first_fail);
    assert_eq!(
        &events[events.len() - 2..],
        &["thread.run.completed", "done"],
        "{events:?}"
    );

    app.llm.script(
        Some("broken"),
        vec![reset_at_once(), reset_at_once(), reset_at_once()],
    );
    let events = stream_events(
        &app,
        "/threads/runs",
        body("broken"),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        &events[events.len() - 2..],
        &["thread.run.failed", "done"],
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("thread.message")));
}
