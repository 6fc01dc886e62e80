//! Test helpers: start the real server in-process on a free port, on a fresh local store or
//! on Azurite (a fresh container), and talk to it over HTTP.
#![allow(dead_code)]

pub mod faulty_queue;
pub mod faulty_store;
pub mod hostile;
pub mod remote;

use assistants::app::{App, Wrappers};
use assistants::config::Settings;
use assistants::queue::DynQueue;
use assistants::store::DynStore;
use llm_standin::StandIn;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Azurite,
}

pub const KEY_A: &str = "sk-test-a";
pub const KEY_B: &str = "sk-test-b";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub key: String,
    pub store: DynStore,
    pub engine: std::sync::Arc<assistants::engine::Engine>,
    /// The scripted model this app talks to.
    pub llm: StandIn,
    _data_dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The Azurite connection string `scripts/test.sh` exports. Missing is a failure: the
/// Azurite half of the suite must not pass silently.
pub fn azurite_connection_string() -> String {
    std::env::var("AZURITE_CONNECTION_STRING").unwrap_or_else(|_| {
        panic!("AZURITE_CONNECTION_STRING is not set: run the suite with scripts/test.sh, which starts Azurite")
    })
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Settings for a test server on `backend`, plus the temporary directory if local.
pub fn test_settings(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (Settings, Option<tempfile::TempDir>) {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "ASSISTANTS_API_KEYS".into(),
        format!("{KEY_A}=tenanta,{KEY_B}=tenantb"),
    );
    let dir = match backend {
        Backend::Local => {
            let dir = tempfile::tempdir().expect("tempdir");
            env.insert("STORAGE".into(), "local".into());
            env.insert("DATA_DIR".into(), dir.path().display().to_string());
            Some(dir)
        }
        Backend::Azurite => {
            env.insert("STORAGE".into(), "azure".into());
            env.insert(
                "STORAGE_CONNECTION_STRING".into(),
                azurite_connection_string(),
            );
            env.insert("STORAGE_CONTAINER".into(), unique_name("t"));
            env.insert("QUEUE_NAME".into(), unique_name("w"));
            None
        }
    };
    // Documents are extracted by the service binary in a child process; the test binary
    // that holds this in-process server is not it.
    env.insert(
        "INGEST_EXTRACTOR".into(),
        env!("CARGO_BIN_EXE_assistants-service").into(),
    );
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
    (settings, dir)
}

/// A proxy instance (BACKEND=proxy) in front of `upstream` (`…/v1`), with its own keys
/// (`KEY_A`, `KEY_B`); returns its base URL and a shutdown guard.
pub async fn spawn_proxy(
    upstream: &str,
    upstream_key: &str,
    extra: &[(&str, &str)],
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "ASSISTANTS_API_KEYS".into(),
        format!("{KEY_A}=tenanta,{KEY_B}=tenantb"),
    );
    env.insert("BACKEND".into(), "proxy".into());
    env.insert("UPSTREAM_BASE_URL".into(), upstream.to_string());
    env.insert("UPSTREAM_API_KEY".into(), upstream_key.to_string());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("proxy settings");
    let app = App::new(&settings).expect("proxy app");
    assert!(app.stored.is_none());
    let listener = assistants::app::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(listener, async {
        let _ = rx.await;
    }));
    (format!("http://{addr}/v1"), tx)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_wrapped(backend, extra, Wrappers::default()).await
}

/// The fault injectors of an app made by `spawn_faulty_app`, armed by the test.
pub struct Faults {
    pub store: Arc<faulty_store::FaultyStore>,
    pub queue: Arc<faulty_queue::FaultyQueue>,
}

/// An app whose store and work queue inject faults when the test arms them
/// (`faulty_store`, `faulty_queue`).
pub async fn spawn_faulty_app(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, Faults) {
    let store = Arc::new(std::sync::Mutex::new(None));
    let queue = Arc::new(std::sync::Mutex::new(None));
    let (store_slot, queue_slot) = (store.clone(), queue.clone());
    let wrappers = Wrappers {
        store: Box::new(move |inner| {
            let wrapped = faulty_store::FaultyStore::wrap(inner);
            *store_slot.lock().unwrap() = Some(wrapped.clone());
            wrapped as DynStore
        }),
        queue: Box::new(move |inner| {
            let wrapped = faulty_queue::FaultyQueue::wrap(inner);
            *queue_slot.lock().unwrap() = Some(wrapped.clone());
            wrapped as DynQueue
        }),
    };
    let app = spawn_app_wrapped(backend, extra, wrappers).await;
    let faults = Faults {
        store: store
            .lock()
            .unwrap()
            .take()
            .expect("the app's store was wrapped"),
        queue: queue
            .lock()
            .unwrap()
            .take()
            .expect("the app's queue was wrapped"),
    };
    (app, faults)
}

async fn spawn_app_wrapped(backend: Backend, extra: &[(&str, &str)], wrap: Wrappers) -> TestApp {
    let llm = StandIn::new();
    let llm_addr = llm
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("stand-in");
    let base_url = format!("http://{llm_addr}/v1");
    let mut extra: Vec<(&str, &str)> = extra.to_vec();
    if !extra.iter().any(|(k, _)| *k == "OPENAI_BASE_URL") {
        extra.push(("OPENAI_BASE_URL", &base_url));
    }
    let (settings, dir) = test_settings(backend, &extra);
    let app = App::with_wrappers(&settings, wrap).expect("app");
    let stored = app.stored.as_ref().expect("the stored backend");
    let store = stored.store.clone();
    let engine = stored.engine.clone();
    let listener = assistants::app::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // The server and its work-queue consumer, until the app is dropped (which stops both).
    tokio::spawn(app.run(listener, async {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}/v1"),
        client: Client::new(),
        key: KEY_A.to_string(),
        store,
        engine,
        llm,
        _data_dir: dir,
        shutdown: Some(tx),
    }
}

/// Asserts that an answered object (or each object of a list) carries none of the fields
/// records keep for the service alone (`_`-prefixed: `_schema_version`, `_seq`, ...).
pub fn assert_no_internal_fields(body: &Value) {
    let items = match body.get("data").and_then(Value::as_array) {
        Some(data) if body["object"] == "list" => data.iter().collect(),
        _ => vec![body],
    };
    for item in items {
        if let Some(object) = item.as_object() {
            let internal: Vec<&String> = object.keys().filter(|k| k.starts_with('_')).collect();
            assert!(
                internal.is_empty(),
                "internal fields {internal:?} answered: {body}"
            );
        }
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The body of a 200, or a panic that shows what came instead.
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        assert_no_internal_fields(&self.body);
        self.body
    }

    /// Asserts an OpenAI-shaped error with this status and returns its error object.
    pub fn error(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        let e = &self.body["error"];
        for field in ["message", "type", "param", "code"] {
            assert!(e.get(field).is_some(), "error lacks {field}: {}", self.body);
        }
        assert!(e["message"].is_string());
        e.clone()
    }
}

impl TestApp {
    /// A client of this server for the helpers in `remote` (same key).
    pub fn api(&self) -> remote::Api {
        remote::Api::new(&self.base, &self.key)
    }

    pub fn with_key(&self, key: &str) -> TestAppKey<'_> {
        TestAppKey {
            app: self,
            key: key.to_string(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.with_key(&self.key.clone())
            .call(method, path, body)
            .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// A raw request (for headers, bodies and methods the helpers above don't make).
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
    }

    /// Uploads `bytes` as `filename` with purpose `assistants` (must answer 200): its id.
    pub async fn upload(&self, bytes: &[u8], filename: &str) -> String {
        let form = reqwest::multipart::Form::new()
            .text("purpose", "assistants")
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(filename.to_string()),
            );
        let answer = self
            .raw(Method::POST, "/files")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let file: Value = answer.json().await.unwrap();
        file["id"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// Creates a vector store of `file_ids` and waits (10 s at most) until every file is
    /// ingested: its id.
    pub async fn ready_store(&self, file_ids: &[&str]) -> String {
        let store = self
            .post(
                "/vector_stores",
                json!({"name": "kb", "file_ids": file_ids}),
            )
            .await
            .ok();
        let vs = store["id"].as_str().expect("id").to_string();
        for _ in 0..400 {
            let v = self.get(&format!("/vector_stores/{vs}")).await.ok();
            if v["status"] == "completed" {
                assert_eq!(v["file_counts"]["completed"], file_ids.len());
                return vs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("vector store {vs} never completed");
    }

    /// The chat requests the stand-in received, in order.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.llm
            .requests()
            .into_iter()
            .filter(|r| {
                r["_path"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("/chat/completions")
            })
            .collect()
    }

    /// Polls a run until its status is one of `until` (20 s at most).
    pub async fn wait_run(&self, thread_id: &str, run_id: &str, until: &[&str]) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let run = self
                .get(&format!("/threads/{thread_id}/runs/{run_id}"))
                .await
                .ok();
            if until.contains(&run["status"].as_str().unwrap_or_default()) {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run stayed {} (waiting for {until:?}): {run}",
                run["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A scripted text answer.
pub fn say(text: &str) -> llm_standin::Response {
    llm_standin::Response {
        text: Some(text.to_string()),
        ..Default::default()
    }
}

/// A scripted answer of tool calls (`(name, arguments)`).
pub fn call(calls: &[(&str, &str)]) -> llm_standin::Response {
    llm_standin::Response {
        tool_calls: calls
            .iter()
            .map(|(name, arguments)| llm_standin::ScriptedToolCall {
                name: name.to_string(),
                arguments: arguments.to_string(),
                id: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// A scripted HTTP error from the model endpoint.
pub fn fail_with(status: u16, retry_after: Option<f64>) -> llm_standin::Response {
    llm_standin::Response {
        error: Some(llm_standin::ScriptedError {
            status,
            message: Some(format!("scripted {status}")),
            retry_after,
        }),
        ..Default::default()
    }
}

pub struct TestAppKey<'a> {
    app: &'a TestApp,
    key: String,
}

impl TestAppKey<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .app
            .client
            .request(method, format!("{}{}", self.app.base, path))
            .bearer_auth(&self.key)
            .header("OpenAI-Beta", "assistants=v2");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

/// Runs an async test body once per backend, as `<name>::local` and `<name>::azurite`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                ($body)($crate::support::Backend::Local).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azurite() {
                ($body)($crate::support::Backend::Azurite).await;
            }
        }
    };
}
