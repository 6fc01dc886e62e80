//! Storage going away under a running service: an Azurite of the test's own (own ports,
//! data on disk) is stopped while a run's model is answering, and started again. While it
//! is down, requests answer 503 with `Retry-After` within seconds, in the OpenAI error
//! shape and without storage internals; once it is back, the run ends cleanly (its turn is
//! delivered again when its lease runs out) and the service works as before. Then storage
//! that is there but does not answer (the process stopped with SIGSTOP): 503 too, after the
//! transport's read timeout, never a request held forever.

mod support;

use llm_standin::Response;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use support::remote::{check_run, PrivateAzurite, TERMINAL};
use support::{spawn_app_with, Backend};

/// What must never reach a client: where and how storage is reached.
fn assert_no_internals(body: &str, azurite: &PrivateAzurite, container: &str) {
    for secret in [
        "127.0.0.1",
        &azurite.blob_port.to_string(),
        &azurite.queue_port.to_string(),
        "devstoreaccount1",
        "AccountKey",
        "blob",
        container,
        support::remote::AZURITE_KEY,
    ] {
        assert!(!body.contains(secret), "{secret:?} in an answer: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_stopped_during_a_run_and_started_again() {
    let mut azurite = PrivateAzurite::start().await;
    let connection = azurite.connection_string();
    let container = support::unique_name("outage");
    let app = spawn_app_with(
        Backend::Azurite,
        &[
            ("STORAGE_CONNECTION_STRING", &connection),
            ("STORAGE_CONTAINER", &container),
            // A turn taken before the outage comes back 5 s after its last lease renewal.
            ("WORK_LEASE_SECONDS", "5"),
            ("QUEUE_POLL_MAX_MS", "200"),
        ],
    )
    .await;
    let api = app.api();
    // The model answers slowly: the outage starts while it is still answering. The turn
    // that could not store its answer is done again, so the model answers twice.
    let slow = Response {
        text: Some("an answer that takes a while to arrive in full".into()),
        chunk_delay_ms: 300,
        ..Default::default()
    };
    app.llm.script(None, vec![slow.clone(), slow]);
    let asst = api.post("/assistants", json!({"model": "m"})).await.ok();
    let asst = asst["id"].as_str().unwrap().to_string();
    let (tid, rid) = api.create_thread_and_run(&asst, None, "q").await;
    api.wait_run(&tid, &rid, &["in_progress"], Duration::from_secs(20))
        .await;

    azurite.pause();
    let probes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/threads/{tid}/runs/{rid}"), None),
        (Method::GET, format!("/threads/{tid}/messages"), None),
        (Method::GET, "/assistants".into(), None),
        (
            Method::POST,
            "/assistants".into(),
            Some(json!({"model": "m"})),
        ),
        (
            Method::POST,
            format!("/threads/{tid}/messages"),
            Some(json!({"role": "user", "content": "x"})),
        ),
        (Method::DELETE, format!("/assistants/{asst}"), None),
        (
            Method::POST,
            "/threads/runs".into(),
            Some(json!({"assistant_id": asst})),
        ),
    ];
    for (method, path, body) in probes {
        let started = Instant::now();
        let answer = api.call(method.clone(), &path, body).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(15),
            "{method} {path} took {took:?} while storage was down"
        );
        let text = answer.body.to_string();
        let retry_after = answer.headers.get("retry-after").is_some();
        let error = answer.error(503);
        assert_eq!(error["type"], "server_error");
        assert_eq!(
            error["code"], "service_unavailable",
            "{method} {path}: {error}"
        );
        assert!(retry_after, "{method} {path}: no Retry-After");
        assert_no_internals(&text, &azurite, &container);
    }
    // Long enough for the model to finish (and the turn to fail to store it).
    tokio::time::sleep(Duration::from_secs(3)).await;

    azurite.resume().await;
    // The turn comes back when its lease runs out, takes the run over and ends it.
    let done = api
        .wait_run(&tid, &rid, TERMINAL, Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let state = check_run(&api, &tid, &rid).await;
    assert_eq!(
        state.answers(),
        vec!["an answer that takes a while to arrive in full"]
    );
    // Nothing that was refused during the outage was half-done: one assistant, one user
    // message plus the answer.
    let assistants = api.list_all("/assistants").await;
    assert_eq!(assistants.len(), 1, "{assistants:?}");
    let messages = api.list_all(&format!("/threads/{tid}/messages")).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    // And the service works as before.
    let (tid2, rid2) = api.create_thread_and_run(&asst, None, "again").await;
    let done = api
        .wait_run(&tid2, &rid2, TERMINAL, Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "completed");
    check_run(&api, &tid2, &rid2).await;

    // Storage that accepts connections but does not answer (SIGSTOP): the same 503s, after
    // the transport's read timeout, instead of requests held forever.
    azurite.freeze();
    let probes = [
        (Method::GET, format!("/assistants/{asst}"), None),
        (
            Method::POST,
            format!("/assistants/{asst}"),
            Some(json!({"metadata": {"k": "v"}})),
        ),
    ];
    let answers = futures::future::join_all(probes.into_iter().map(|(method, path, body)| {
        let api = api.clone();
        async move {
            let started = Instant::now();
            let answer = api.call(method, &path, body).await;
            (path, answer, started.elapsed())
        }
    }))
    .await;
    azurite.thaw();
    for (path, answer, took) in answers {
        assert!(
            took < Duration::from_secs(45),
            "{path} took {took:?} while storage was frozen"
        );
        let text = answer.body.to_string();
        assert!(answer.headers.get("retry-after").is_some(), "{path}");
        answer.error(503);
        assert_no_internals(&text, &azurite, &container);
    }
    let back = api.get(&format!("/assistants/{asst}")).await.ok();
    assert_eq!(back["metadata"], json!({}), "{back}");
}
