//! Background responses under faults, as runs are tested (crash_recovery.rs,
//! concurrency.rs), on Azure storage and the Azure queue (Azurite): the server killed
//! (SIGKILL) in the middle of queued and streamed background responses, then restarted: every
//! response ends `completed` on its own with one answer; and two instances sharing one
//! container and queue: every response answered once, with one model call.

mod support;

use futures::StreamExt;
use llm_standin::{Response, StandIn};
use serde_json::{json, Value};
use std::time::Duration;
use support::remote::{self, Api, ServerProcess};
use support::{azurite_connection_string, say, unique_name, KEY_A};

fn slow(text: &str) -> Response {
    Response {
        text: Some(format!("{text}, said slowly, one word after the other")),
        chunk_delay_ms: 250,
        ..Default::default()
    }
}

/// Waits until every response is one of `until`; returns them.
async fn wait_all(api: &Api, ids: &[String], until: &[&str], within: Duration) -> Vec<Value> {
    let read = move || async move {
        let mut all = Vec::new();
        for id in ids {
            all.push(api.get(&format!("/responses/{id}")).await.ok());
        }
        all
    };
    remote::wait_all(until, within, Duration::from_millis(300), read).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_responses_survive_a_killed_server() {
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base_url = format!("http://{llm_addr}/v1");
    let connection = azurite_connection_string();
    let (container, queue) = (unique_name("rcrash"), unique_name("rcrash"));
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
    let mut ids = Vec::new();
    // Queued ones, and streamed ones (their turns run inside their requests).
    for i in 0..6 {
        let model = format!("bg-{i}");
        llm.script(
            Some(&model),
            vec![slow(&format!("answer {i}")), slow(&format!("answer {i}"))],
        );
        let streamed = i % 2 == 1;
        let body = json!({"model": model, "input": format!("q {i}"), "background": true,
                          "stream": streamed});
        if streamed {
            let response = api
                .http
                .post(format!("{}/responses", api.base))
                .bearer_auth(&api.key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let mut events = response.bytes_stream();
            let mut head = String::new();
            while !head.contains("response.created") {
                let chunk = events.next().await.unwrap().unwrap();
                head.push_str(&String::from_utf8_lossy(&chunk));
            }
            let data = head.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
            let created: Value = serde_json::from_str(data.trim()).unwrap();
            ids.push(created["response"]["id"].as_str().unwrap().to_string());
            // Keep reading until the server dies.
            tokio::spawn(async move { while let Some(Ok(_)) = events.next().await {} });
        } else {
            let r = api.post("/responses", body).await.ok();
            ids.push(r["id"].as_str().unwrap().to_string());
        }
    }
    // In the middle of the answers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    server.restart().await;
    let api = server.api(KEY_A);
    let ended = wait_all(&api, &ids, &["completed"], Duration::from_secs(90)).await;
    for (i, r) in ended.iter().enumerate() {
        let output = r["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "one answer: {r}");
        let text = output[0]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.starts_with(&format!("answer {i}")), "{r}");
        assert!(r["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_background_responses() {
    const RESPONSES: usize = 40;
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let connection = azurite_connection_string();
    let (container, queue) = (unique_name("rtwin"), unique_name("rtwin"));
    let logs = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        let base_url = format!("http://{llm_addr}/v1");
        servers.push(
            ServerProcess::start(
                &[
                    ("STORAGE", "azure"),
                    ("STORAGE_CONNECTION_STRING", &connection),
                    ("STORAGE_CONTAINER", &container),
                    ("QUEUE_NAME", &queue),
                    ("OPENAI_BASE_URL", &base_url),
                    ("QUEUE_POLL_MAX_MS", "100"),
                ],
                &logs.path().join(format!("{name}.log")),
            )
            .await,
        );
    }
    let apis: Vec<Api> = servers.iter().map(|s| s.api(KEY_A)).collect();
    for i in 0..RESPONSES {
        llm.script(Some(&format!("m-{i}")), vec![say(&format!("answer {i}"))]);
    }
    let ids: Vec<String> = futures::stream::iter(0..RESPONSES)
        .map(|i| {
            let api = apis[i % 2].clone();
            async move {
                let body = json!({"model": format!("m-{i}"), "input": format!("q {i}"),
                                  "background": true});
                let r = api.post("/responses", body).await.ok();
                r["id"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let ended = wait_all(&apis[1], &ids, &["completed"], Duration::from_secs(120)).await;
    let requests = llm.requests();
    for r in &ended {
        let model = r["model"].as_str().unwrap();
        let calls = requests.iter().filter(|q| q["model"] == model).count();
        assert_eq!(calls, 1, "one model call for {model}");
        let n = model.trim_start_matches("m-");
        assert_eq!(r["output"].as_array().map(Vec::len), Some(1), "{r}");
        assert_eq!(r["output"][0]["content"][0]["text"], format!("answer {n}"));
    }
}
