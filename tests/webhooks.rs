//! Webhooks (issue #21): run and vector-store events posted to a receiver that verifies each
//! with the official Python SDK (`client.webhooks.unwrap`, `tests/webhooks/receiver.py`, run
//! with the test venv's python), through the local queue, two instances on one Azurite, a
//! server killed and restarted, and the Functions host emulation.

mod support;

use assistants::queue::WorkItem;
use llm_standin::StandIn;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::remote::{free_port, ServerProcess};
use support::{
    azurite_connection_string, call, fail_with, say, spawn_app_with, spawn_faulty_app, unique_name,
    Backend, TestApp, KEY_A,
};

/// The worked example's secret (key `0123456789abcdef0123456789abcdef`).
const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The test venv's python (made by scripts/test.sh), with the official SDK.
fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    assert!(
        path.exists(),
        "{} is missing: scripts/test.sh makes it (python3 -m venv .venv-test; pip install -r \
         tests/sdk/requirements.txt)",
        path.display()
    );
    path
}

/// `tests/webhooks/receiver.py`, recording what it receives.
struct Receiver {
    child: Child,
    port: u16,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// A receiver on `port` (0: any free one), answering `statuses` first, or never
    /// answering (`hang`).
    fn start(port: u16, statuses: &str, hang: bool) -> Receiver {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("received.jsonl");
        let mut command = Command::new(python());
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py"))
            .args(["--secret", SECRET, "--port", &port.to_string()])
            .arg("--record")
            .arg(&record)
            .args(["--statuses", statuses]);
        if hang {
            command.arg("--hang");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the receiver's port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver said {line:?}"));
        Receiver {
            child,
            port,
            record,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// What it received so far, in order.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (`within`) until `done` holds for what was received; returns it.
    async fn wait(&self, within: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get what was expected: {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The event a received delivery carries.
fn event(delivery: &Value) -> Value {
    serde_json::from_str(delivery["body"].as_str().unwrap()).unwrap()
}

/// The verified deliveries of events about object `id` of `kind`.
fn about<'a>(received: &'a [Value], kind: &str, id: &str) -> Vec<&'a Value> {
    received
        .iter()
        .filter(|d| d["verified"] == true && d["type"] == kind && event(d)["data"]["id"] == id)
        .collect()
}

fn webhook_settings<'a>(
    receiver_url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("WEBHOOK_URL", receiver_url),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_RETRY_BASE_MS", "200"),
        ("WEBHOOK_TIMEOUT_SECONDS", "3"),
    ];
    env.extend_from_slice(extra);
    env
}

async fn assistant(app: &TestApp, model: &str) -> String {
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    app.post("/assistants", json!({"model": model, "tools": [tool]}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A new thread and run of `asst` (queued): (thread id, run id).
async fn start_run(app: &TestApp, asst: &str) -> (String, String) {
    let run = app
        .post(
            "/threads/runs",
            json!({"assistant_id": asst, "thread": {"messages": [{"role": "user", "content": "hi"}]}}),
        )
        .await
        .ok();
    (
        run["thread_id"].as_str().unwrap().to_string(),
        run["id"].as_str().unwrap().to_string(),
    )
}

/// Checks one verified delivery of run `run_id`'s event `kind`: the envelope, its data and
/// the `webhook-id` derived from the event id.
fn check_run_event(delivery: &Value, kind: &str, thread_id: &str, run_id: &str, status: &str) {
    assert_eq!(delivery["verified"], true, "{delivery}");
    let event = event(delivery);
    let id = event["id"].as_str().unwrap();
    assert!(id.starts_with("evt_"), "{event}");
    assert_eq!(
        delivery["webhook_id"].as_str().unwrap(),
        format!("wh_{}", &id[4..])
    );
    assert_eq!(event["type"], kind);
    assert_eq!(event["object"], "event");
    assert!(event["created_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        event["data"],
        json!({"id": run_id, "thread_id": thread_id, "status": status})
    );
}

/// 1. A completed, a failed, a requires_action and a cancelled run each deliver their
///    event, verified by the SDK; a delivery with a wrong signature is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_are_delivered_and_verified_by_the_sdk() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let app = spawn_app_with(Backend::Local, &webhook_settings(&url, &[])).await;
    app.llm.script(Some("ok"), vec![say("hello")]);
    app.llm.script(Some("broken"), vec![fail_with(400, None)]);
    app.llm.script(
        Some("tools"),
        vec![call(&[("get_weather", r#"{"city":"Oslo"}"#)])],
    );
    app.llm.script(
        Some("tools-2"),
        vec![call(&[("get_weather", r#"{"city":"Oslo"}"#)])],
    );
    let (t_ok, r_ok) = start_run(&app, &assistant(&app, "ok").await).await;
    let (t_bad, r_bad) = start_run(&app, &assistant(&app, "broken").await).await;
    let (t_act, r_act) = start_run(&app, &assistant(&app, "tools").await).await;
    let (t_can, r_can) = start_run(&app, &assistant(&app, "tools-2").await).await;
    app.wait_run(&t_ok, &r_ok, &["completed"]).await;
    app.wait_run(&t_bad, &r_bad, &["failed"]).await;
    app.wait_run(&t_act, &r_act, &["requires_action"]).await;
    app.wait_run(&t_can, &r_can, &["requires_action"]).await;
    app.post(&format!("/threads/{t_can}/runs/{r_can}/cancel"), json!({}))
        .await
        .ok();
    let expected = [
        ("thread.run.completed", &t_ok, &r_ok, "completed"),
        ("thread.run.failed", &t_bad, &r_bad, "failed"),
        (
            "thread.run.requires_action",
            &t_act,
            &r_act,
            "requires_action",
        ),
        (
            "thread.run.requires_action",
            &t_can,
            &r_can,
            "requires_action",
        ),
        ("thread.run.cancelled", &t_can, &r_can, "cancelled"),
    ];
    let received = receiver
        .wait(Duration::from_secs(20), |received| {
            expected
                .iter()
                .all(|(kind, _, run, _)| !about(received, kind, run).is_empty())
        })
        .await;
    for (kind, thread, run, status) in expected {
        let deliveries = about(&received, kind, run);
        check_run_event(deliveries[0], kind, thread, run, status);
    }
    // Every delivery verified, none twice (one instance, nothing failed).
    assert!(
        received.iter().all(|d| d["verified"] == true),
        "{received:#?}"
    );
    assert_eq!(received.len(), expected.len(), "{received:#?}");
    // The SDK's union does not know `thread.run.*`: `unwrap` still verifies the signature
    // and parses the envelope into one of its event classes, `type` and `data` as sent.
    eprintln!(
        "SDK classes: {:?}",
        received.iter().map(|d| &d["sdk_class"]).collect::<Vec<_>>()
    );

    // A delivery signed with another secret, or whose body changed after signing, is
    // refused by the receiver (so the checks above can fail).
    let body = received[0]["body"].as_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = b"0123456789abcdef0123456789abcdef";
    let post = |signature: String, body: String| {
        reqwest::Client::new()
            .post(&url)
            .header("webhook-id", "wh_test")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
    };
    let good = assistants::webhooks::signing::signature(key, "wh_test", now, body.as_bytes());
    assert_eq!(
        post(good.clone(), body.clone()).await.unwrap().status(),
        200
    );
    let other =
        assistants::webhooks::signing::signature(b"another key", "wh_test", now, body.as_bytes());
    assert_eq!(post(other, body.clone()).await.unwrap().status(), 400);
    assert_eq!(post(good, format!("{body} ")).await.unwrap().status(), 400);
    let refused: Vec<Value> = receiver
        .received()
        .into_iter()
        .filter(|d| d["verified"] == false)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused.iter().all(|d| d["error"]
        .as_str()
        .unwrap()
        .contains("InvalidWebhookSignatureError")));
}

/// 2. A receiver that answers 500 twice gets the event a third time, with the same
///    `webhook-id` and body each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_event_again_with_the_same_webhook_id() {
    let receiver = Receiver::start(0, "500,500", false);
    let url = receiver.url();
    let app = spawn_app_with(Backend::Local, &webhook_settings(&url, &[])).await;
    app.llm.script(Some("ok"), vec![say("hello")]);
    let (thread, run) = start_run(&app, &assistant(&app, "ok").await).await;
    app.wait_run(&thread, &run, &["completed"]).await;
    let received = receiver
        .wait(Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    let answered: Vec<i64> = received
        .iter()
        .map(|d| d["answered"].as_i64().unwrap())
        .collect();
    assert_eq!(answered, [500, 500, 200]);
    for delivery in &received {
        check_run_event(delivery, "thread.run.completed", &thread, &run, "completed");
        assert_eq!(delivery["webhook_id"], received[0]["webhook_id"]);
        assert_eq!(delivery["body"], received[0]["body"]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3, "delivered, then no more");
}

/// A receiver that never succeeds: once `WEBHOOK_RETRY_HOURS` have passed since the event,
/// it is dead-lettered, readably, under the tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_never_delivered_is_dead_lettered() {
    let receiver = Receiver::start(0, "500,500,500,500,500,500,500,500,500,500", false);
    let url = receiver.url();
    // 3.6 s of retries.
    let app = spawn_app_with(
        Backend::Local,
        &webhook_settings(&url, &[("WEBHOOK_RETRY_HOURS", "0.001")]),
    )
    .await;
    app.llm.script(Some("ok"), vec![say("hello")]);
    let (thread, run) = start_run(&app, &assistant(&app, "ok").await).await;
    app.wait_run(&thread, &run, &["completed"]).await;
    let received = receiver
        .wait(Duration::from_secs(10), |r| !r.is_empty())
        .await;
    let event_id = event(&received[0])["id"].as_str().unwrap().to_string();
    let key = format!("t/tenanta/webhook-dead/{event_id}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead: Value = loop {
        if let Some((dead, _)) = assistants::store::get_json::<Value>(app.store.as_ref(), &key)
            .await
            .unwrap()
        {
            break dead;
        }
        assert!(
            Instant::now() < deadline,
            "not dead-lettered: {:#?}",
            receiver.received()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead["event"], event(&received[0]));
    assert_eq!(dead["webhook_id"], received[0]["webhook_id"]);
    assert_eq!(dead["last_error"], "the endpoint answered 500");
    assert!(dead["attempts"].as_u64().unwrap() >= 2, "{dead}");
    let attempts = receiver.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        attempts,
        "no attempt after the dead letter"
    );
}

/// Vector-store file events (completed, failed) and the batch's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_store_file_and_batch_events_are_delivered() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let app = spawn_app_with(Backend::Local, &webhook_settings(&url, &[])).await;
    let good = app
        .upload(
            b"Oslo is the capital of Norway. It is cold in winter.",
            "a.txt",
        )
        .await;
    let binary = app.upload(&[0u8, 159, 146, 150, 0, 1], "blob.bin").await;
    let vs_id = app.post("/vector_stores", json!({})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = app
        .post(
            &format!("/vector_stores/{vs_id}/file_batches"),
            json!({"file_ids": [good, binary]}),
        )
        .await
        .ok();
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let received = receiver
        .wait(Duration::from_secs(30), |r| {
            !about(r, "vector_store.file.completed", &good).is_empty()
                && !about(r, "vector_store.file.failed", &binary).is_empty()
                && !about(r, "vector_store.file_batch.completed", &batch_id).is_empty()
        })
        .await;
    for (kind, id) in [
        ("vector_store.file.completed", &good),
        ("vector_store.file.failed", &binary),
        ("vector_store.file_batch.completed", &batch_id),
    ] {
        let deliveries = about(&received, kind, id);
        if kind == "vector_store.file_batch.completed" {
            // Two files that end at the same moment may both find the batch done and both
            // queue its event: at least once, always with one webhook-id.
            assert!(
                deliveries
                    .iter()
                    .all(|d| d["webhook_id"] == deliveries[0]["webhook_id"]),
                "{received:#?}"
            );
        } else {
            assert_eq!(deliveries.len(), 1, "{received:#?}");
        }
        let event = event(deliveries[0]);
        assert_eq!(
            event["data"],
            json!({"id": id, "vector_store_id": vs_id}),
            "{event}"
        );
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    }
    assert_eq!(
        received.len(),
        2 + about(&received, "vector_store.file_batch.completed", &batch_id).len(),
        "{received:#?}"
    );

    // Detached and attached again (a second later: another `created_at`), the file's
    // completion is a new change with an event of its own.
    let file_path = format!("/vector_stores/{vs_id}/files");
    let detached = app
        .call(Method::DELETE, &format!("{file_path}/{good}"), None)
        .await;
    assert_eq!(detached.status, 200, "{}", detached.body);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.post(&file_path, json!({"file_id": good})).await.ok();
    let received = receiver
        .wait(Duration::from_secs(30), |r| {
            about(r, "vector_store.file.completed", &good).len() >= 2
        })
        .await;
    let completions = about(&received, "vector_store.file.completed", &good);
    assert_eq!(completions.len(), 2, "{received:#?}");
    assert_ne!(
        event(completions[0])["id"],
        event(completions[1])["id"],
        "{received:#?}"
    );
}

/// 3. The receiver is down when the run completes; the server is killed (SIGKILL) with the
///    event waiting for its next attempt, and restarted; the event arrives after the
///    restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_survives_a_receiver_down_and_a_killed_server() {
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    llm.script(Some("ok"), vec![say("hello")]);
    let base_url = format!("http://{llm_addr}/v1");
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let mut server = ServerProcess::start(
        &webhook_settings(
            &url,
            &[
                ("STORAGE", "local"),
                ("DATA_DIR", &data_dir),
                ("OPENAI_BASE_URL", &base_url),
                ("WEBHOOK_RETRY_BASE_MS", "1000"),
            ],
        ),
        &data.path().join("server.log"),
    )
    .await;
    let api = server.api(KEY_A);
    let asst = api.post("/assistants", json!({"model": "ok"})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (thread, run) = api.create_thread_and_run(&asst, None, "hi").await;
    api.wait_run(&thread, &run, &["completed"], Duration::from_secs(20))
        .await;
    // An attempt failed (nobody listens): the next is queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("failed attempt 1") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    let receiver = Receiver::start(port, "", false);
    server.restart().await;
    let received = receiver
        .wait(Duration::from_secs(30), |r| !r.is_empty())
        .await;
    check_run_event(
        &received[0],
        "thread.run.completed",
        &thread,
        &run,
        "completed",
    );
}

/// 4. Two instances on one Azurite (one container, one queue): each event is delivered
///    once, and every delivery of one event carries one `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_event_once() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let (container, queue) = (unique_name("t"), unique_name("w"));
    let env = webhook_settings(
        &url,
        &[
            ("STORAGE_CONTAINER", &container),
            ("QUEUE_NAME", &queue),
            ("QUEUE_POLL_MAX_MS", "200"),
        ],
    );
    let a = spawn_app_with(Backend::Azurite, &env).await;
    let b = spawn_app_with(Backend::Azurite, &env).await;
    let mut runs = Vec::new();
    for app in [&a, &b] {
        for model in ["one", "two", "three"] {
            app.llm
                .script(Some(model), vec![say("hello"), say("hello")]);
        }
    }
    for (i, app) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let model = ["one", "two", "three"][i % 3];
        runs.push(start_run(app, &assistant(app, model).await).await);
    }
    for (thread, run) in &runs {
        a.wait_run(thread, run, &["completed"]).await;
    }
    receiver
        .wait(Duration::from_secs(30), |r| {
            runs.iter()
                .all(|(_, run)| !about(r, "thread.run.completed", run).is_empty())
        })
        .await;
    // Let any duplicate arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = receiver.received();
    let mut by_event: HashMap<String, Vec<&Value>> = HashMap::new();
    for delivery in &received {
        assert_eq!(delivery["verified"], true, "{delivery}");
        by_event
            .entry(event(delivery)["id"].as_str().unwrap().to_string())
            .or_default()
            .push(delivery);
    }
    for deliveries in by_event.values() {
        assert!(
            deliveries
                .iter()
                .all(|d| d["webhook_id"] == deliveries[0]["webhook_id"]),
            "{deliveries:#?}"
        );
    }
    assert_eq!(by_event.len(), runs.len(), "{received:#?}");
    assert_eq!(received.len(), runs.len(), "each event once: {received:#?}");
}

/// 6. Under the Functions host emulation (the `work` queue on Azurite delivered as
///    `POST /work`): the webhook items are delivered like any item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_under_the_functions_host() {
    let receiver = Receiver::start(0, "500", false);
    let url = receiver.url();
    let llm = StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    llm.script(Some("ok"), vec![say("hello")]);
    let port = free_port();
    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("emulator.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_functions-host-emulator"));
    command
        .arg(env!("CARGO_BIN_EXE_assistants-service"))
        .env("AzureWebJobsStorage", azurite_connection_string())
        .env("STORAGE_CONTAINER", unique_name("t"))
        .env("QUEUE_NAME", unique_name("w"))
        .env("ASSISTANTS_API_KEYS", format!("{KEY_A}=tenanta"))
        .env("OPENAI_BASE_URL", format!("http://{llm_addr}/v1"))
        .env("HANDLER_PORT", port.to_string())
        .env("EMULATOR_VISIBILITY_TIMEOUT_MS", "1000")
        .env_remove("PORT");
    for (k, v) in webhook_settings(&url, &[]) {
        command.env(k, v);
    }
    let mut emulator = command
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the emulator");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut emulator);
    let api = support::remote::Api::new(&format!("http://127.0.0.1:{port}/v1"), KEY_A);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api
        .try_call(Method::GET, "/assistants", None)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the handler did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asst = api.post("/assistants", json!({"model": "ok"})).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (thread, run) = api.create_thread_and_run(&asst, None, "hi").await;
    api.wait_run(&thread, &run, &["completed"], Duration::from_secs(30))
        .await;
    // The first attempt is answered 500: the next comes as a fresh queue item.
    let received = receiver
        .wait(Duration::from_secs(30), |r| r.len() >= 2)
        .await;
    for delivery in &received {
        check_run_event(delivery, "thread.run.completed", &thread, &run, "completed");
        assert_eq!(delivery["webhook_id"], received[0]["webhook_id"]);
    }
    assert_eq!(received[1]["answered"], 200);
}

/// The process dies between storing a run's status and queueing its event (a queue that
/// refuses the event stands for the crash): the work item comes again, finds the status
/// stored and queues the event then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_lost_before_queueing_is_queued_by_the_redelivery() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let (app, faults) = spawn_faulty_app(Backend::Local, &webhook_settings(&url, &[])).await;
    app.llm.script(Some("ok"), vec![say("hello")]);
    faults
        .queue
        .refuse_once(|item| matches!(item, WorkItem::Webhook(_)));
    let (thread, run) = start_run(&app, &assistant(&app, "ok").await).await;
    app.wait_run(&thread, &run, &["completed"]).await;
    let received = receiver
        .wait(Duration::from_secs(20), |r| !r.is_empty())
        .await;
    check_run_event(
        &received[0],
        "thread.run.completed",
        &thread,
        &run,
        "completed",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 1);
}

/// A streamed run's event is queued once: its turn's watchdog copy, which comes after the
/// run completed, finds the event queued already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_run_delivers_its_event_once() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let app = spawn_app_with(
        Backend::Local,
        &webhook_settings(&url, &[("RUN_STALL_SECONDS", "1")]),
    )
    .await;
    app.llm.script(Some("ok"), vec![say("hello")]);
    let asst = assistant(&app, "ok").await;
    let stream = app
        .raw(Method::POST, "/threads/runs")
        .header("OpenAI-Beta", "assistants=v2")
        .json(&json!({"assistant_id": asst, "stream": true,
            "thread": {"messages": [{"role": "user", "content": "hi"}]}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(stream.contains("thread.run.completed"), "{stream}");
    let received = receiver
        .wait(Duration::from_secs(20), |r| !r.is_empty())
        .await;
    assert_eq!(received[0]["type"], "thread.run.completed");
    // The watchdog copy is due a second after the turn began.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "{:#?}", receiver.received());
}

/// A `requires_action` run whose outputs never come: `thread.run.expired`, after its
/// `requires_action` event; a tenant's event filter leaves out what it does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_run_delivers_its_event_and_filters_apply() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let app = spawn_app_with(
        Backend::Local,
        &webhook_settings(
            &url,
            &[
                ("RUN_EXPIRY_SECONDS", "1"),
                ("WEBHOOK_TENANT_URLS", &format!("tenantb={url}")),
                ("WEBHOOK_TENANT_EVENTS", "tenantb=thread.run.completed"),
            ],
        ),
    )
    .await;
    app.llm.script(
        Some("tools"),
        vec![call(&[("get_weather", r#"{"city":"Oslo"}"#)])],
    );
    let (thread, run) = start_run(&app, &assistant(&app, "tools").await).await;
    app.wait_run(&thread, &run, &["expired"]).await;
    // Tenant b takes only `thread.run.completed`: its expired run sends nothing.
    let b = app.with_key(support::KEY_B);
    app.llm.script(
        Some("tools-b"),
        vec![call(&[("get_weather", r#"{"city":"Oslo"}"#)])],
    );
    let tool = json!({"type": "function", "function": {"name": "get_weather"}});
    let asst_b = b
        .post("/assistants", json!({"model": "tools-b", "tools": [tool]}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run_b = b
        .post(
            "/threads/runs",
            json!({"assistant_id": asst_b, "thread": {"messages": [{"role": "user", "content": "hi"}]}}),
        )
        .await
        .ok();
    let received = receiver
        .wait(Duration::from_secs(20), |r| {
            !about(r, "thread.run.expired", &run).is_empty()
        })
        .await;
    check_run_event(
        about(&received, "thread.run.requires_action", &run)[0],
        "thread.run.requires_action",
        &thread,
        &run,
        "requires_action",
    );
    check_run_event(
        about(&received, "thread.run.expired", &run)[0],
        "thread.run.expired",
        &thread,
        &run,
        "expired",
    );
    let (tb, rb) = (
        run_b["thread_id"].as_str().unwrap(),
        run_b["id"].as_str().unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.get(&format!("/threads/{tb}/runs/{rb}")).await.ok()["status"] != "expired" {
        assert!(Instant::now() < deadline, "tenant b's run did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    assert!(
        received.iter().all(|d| event(d)["data"]["id"] != rb),
        "{received:#?}"
    );
    assert_eq!(received.len(), 2, "{received:#?}");
}

/// Background responses deliver `response.completed`, `.failed`, `.cancelled` and
/// `.incomplete` (`data` is the response id), verified by the SDK's `unwrap`; a foreground
/// response delivers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_responses_deliver_response_events() {
    let receiver = Receiver::start(0, "", false);
    let url = receiver.url();
    let app = spawn_app_with(Backend::Local, &webhook_settings(&url, &[])).await;
    let background = |input: &str| json!({"model": "m", "input": input, "background": true});
    app.llm.script(None, vec![say("done")]);
    let completed = app.post("/responses", background("a")).await.ok();
    let completed = completed["id"].as_str().unwrap().to_string();
    receiver
        .wait(Duration::from_secs(20), |r| {
            !about(r, "response.completed", &completed).is_empty()
        })
        .await;
    app.llm.script(None, vec![fail_with(400, None)]);
    let failed = app.post("/responses", background("b")).await.ok();
    let failed = failed["id"].as_str().unwrap().to_string();
    app.llm.script(
        None,
        vec![llm_standin::Response {
            text: Some("cut".into()),
            finish_reason: Some("length".into()),
            ..Default::default()
        }],
    );
    let incomplete = app.post("/responses", background("c")).await.ok();
    let incomplete = incomplete["id"].as_str().unwrap().to_string();
    receiver
        .wait(Duration::from_secs(20), |r| {
            !about(r, "response.failed", &failed).is_empty()
                && !about(r, "response.incomplete", &incomplete).is_empty()
        })
        .await;
    app.llm.script(
        None,
        vec![llm_standin::Response {
            text: Some("slow".into()),
            first_chunk_delay_ms: 2_000,
            ..Default::default()
        }],
    );
    let cancelled = app.post("/responses", background("d")).await.ok();
    let cancelled = cancelled["id"].as_str().unwrap().to_string();
    app.post(&format!("/responses/{cancelled}/cancel"), json!({}))
        .await
        .ok();
    let received = receiver
        .wait(Duration::from_secs(20), |r| {
            !about(r, "response.cancelled", &cancelled).is_empty()
        })
        .await;
    let delivery = about(&received, "response.completed", &completed)[0];
    assert_eq!(event(delivery)["data"], json!({"id": completed}));
    assert_eq!(event(delivery)["object"], "event");
    assert_eq!(delivery["sdk_class"], "ResponseCompletedWebhookEvent");
    // A foreground response has no event.
    app.llm.script(None, vec![say("fg")]);
    let fg = app
        .post("/responses", json!({"model": "m", "input": "e"}))
        .await
        .ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fg = fg["id"].as_str().unwrap();
    assert!(
        receiver
            .received()
            .iter()
            .all(|d| event(d)["data"]["id"] != fg),
        "{:#?}",
        receiver.received()
    );
}
