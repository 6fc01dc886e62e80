//! The binary as an Azure Functions custom handler, driven the way the Functions host
//! drives it: HTTP requests proxied to `FUNCTIONS_CUSTOMHANDLER_PORT`, and work items taken
//! from Azurite's `work` queue and delivered as `POST /work` invocations.

mod support;

use assistants::http::router::ROUTES;
use assistants::queue::azure::decode;
use assistants::store::azure::{request_retry, AzureBlobStore};
use assistants::store::connection_string::StorageAccount;
use assistants::store::{PutMode, Store};
use azure_storage_queues::QueueServiceClientBuilder;
use base64::Engine as _;
use bytes::Bytes;
use llm_standin::StandIn;
use serde_json::{json, Value};
use std::time::Duration;
use support::{azurite_connection_string, say, unique_name};

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_route_is_reachable_through_the_function_definitions() {
    let http = read_json("function-defs/openai/function.json");
    let trigger = &http["bindings"][0];
    assert_eq!(trigger["type"], "httpTrigger");
    assert_eq!(trigger["authLevel"], "anonymous");
    let route = trigger["route"].as_str().unwrap();
    assert_eq!(route, "v1/{*path}");
    let prefix = route.trim_end_matches("{*path}");
    let methods: Vec<String> = trigger["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_ascii_uppercase())
        .collect();
    let host = read_json("host.json");
    let route_prefix = host["extensions"]["http"]["routePrefix"].as_str().unwrap();
    for (method, path, name) in ROUTES {
        // What a client requests, as the host sees it (after the empty route prefix).
        let url_path = format!("{route_prefix}v1{path}");
        assert!(
            url_path.trim_start_matches('/').starts_with(prefix),
            "{name}: {url_path} is outside {route}"
        );
        assert!(
            methods.contains(&method.to_string()),
            "{name}: {method} not allowed by the function"
        );
    }
    assert_eq!(http["bindings"][1]["type"], "http");

    let work = read_json("function-defs/work/function.json");
    let queue = &work["bindings"][0];
    assert_eq!(queue["type"], "queueTrigger");
    assert_eq!(queue["name"], "msg");
    assert_eq!(queue["queueName"], "work");
    assert_eq!(queue["connection"], "AzureWebJobsStorage");
    // The host moves what never finished to `<queue>-poison`; its trigger ends the object.
    let poison = read_json("function-defs/work-poison/function.json");
    let queue = &poison["bindings"][0];
    assert_eq!(queue["type"], "queueTrigger");
    assert_eq!(queue["name"], "msg");
    assert_eq!(queue["queueName"], "work-poison");
    assert_eq!(queue["connection"], "AzureWebJobsStorage");

    assert_eq!(host["customHandler"]["enableProxyingHttpRequest"], true);
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "handler"
    );
    let queues = &host["extensions"]["queues"];
    assert_eq!(queues["messageEncoding"], "base64");
    // The handler ends a run on the host's last attempt: both must count the same.
    let defaults = assistants::config::RunSettings::default();
    assert_eq!(queues["maxDequeueCount"], defaults.work_max_attempts);
}

/// Whether an Azure Functions route template (`docs/{*path}`, `v1/{*path}`, `openapi.json`)
/// takes `path` (without the leading `/`): literals must be equal, `{name}` takes one
/// segment, a trailing `{*name}` the rest (empty included).
fn route_takes(template: &str, path: &str) -> bool {
    let mut segments = path.split('/');
    for part in template.split('/') {
        if part.starts_with("{*") {
            return true;
        }
        match segments.next() {
            Some(s) if part.starts_with('{') && !s.is_empty() => {}
            Some(s) if s == part => {}
            _ => return false,
        }
    }
    segments.next().is_none_or(str::is_empty)
}

/// Asserts each of `paths` is served by the handler without a key (`docs::reply` answers
/// it) and taken by an anonymous HTTP function that allows GET.
fn assert_served_to_anyone(paths: &[String]) {
    let host = read_json("host.json");
    let route_prefix = host["extensions"]["http"]["routePrefix"].as_str().unwrap();
    let triggers: Vec<Value> = std::fs::read_dir("function-defs")
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.is_dir())
        .map(|dir| read_json(dir.join("function.json").to_str().unwrap())["bindings"][0].clone())
        .filter(|trigger| trigger["type"] == "httpTrigger")
        .collect();
    let headers = warp::http::HeaderMap::new();
    for path in paths {
        assert!(
            assistants::http::docs::reply(&warp::http::Method::GET, path, &headers).is_some(),
            "{path} is not served"
        );
        let url_path = format!("{route_prefix}{path}");
        let reachable = triggers.iter().any(|t| {
            t["authLevel"] == "anonymous"
                && t["methods"].as_array().unwrap().iter().any(|m| m == "get")
                && route_takes(
                    t["route"].as_str().unwrap(),
                    url_path.trim_start_matches('/'),
                )
        });
        assert!(reachable, "no HTTP function forwards GET {url_path}");
    }
}

/// The API documentation (`/openapi.json`, `/docs`, the page's files) is reachable through the
/// HTTP functions too, without a key (anonymous), for GET.
#[test]
fn documentation_is_reachable_through_the_function_definitions() {
    let mut paths = vec!["/openapi.json".to_string(), "/docs".into(), "/docs/".into()];
    paths.extend(
        assistants::http::docs::PAGE_FILES
            .iter()
            .map(|f| format!("/docs/{f}")),
    );
    assert_served_to_anyone(&paths);
    assert!(route_takes("v1/{*path}", "v1/assistants"));
    assert!(!route_takes("openapi.json", "openapi.json/x"));
    assert!(!route_takes("docs/{*path}", "documents"));
}

/// The playground (`/playground`, its index and every file it loads) is reachable through the
/// HTTP functions too, without a key (anonymous), for GET; the API it calls is the `openai`
/// function's.
#[test]
fn the_playground_is_reachable_through_the_function_definitions() {
    let mut paths = vec!["/playground".to_string(), "/playground/".into()];
    paths.extend(
        assistants::http::playground::PAGE_FILES
            .iter()
            .map(|f| format!("/playground/{}", f.path)),
    );
    assert_served_to_anyone(&paths);
    assert!(route_takes(
        "playground/{*path}",
        "playground/js/views/threads.js"
    ));
    assert!(!route_takes("playground/{*path}", "playgrounds"));
}

struct Handler {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
    queue: azure_storage_queues::QueueClient,
    store: AzureBlobStore,
    _llm: StandIn,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEY: &str = "sk-functions-test";

async fn start_handler(llm: StandIn) -> Handler {
    start_handler_with(llm, &[]).await
}

/// `start_handler` with more settings.
async fn start_handler_with(llm: StandIn, env: &[(&str, &str)]) -> Handler {
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connection = azurite_connection_string();
    let container = unique_name("t");
    let queue_name = unique_name("w");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_assistants-service"))
        .envs(env.iter().copied())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("AzureWebJobsStorage", &connection)
        .env("STORAGE_CONTAINER", &container)
        .env("QUEUE_NAME", &queue_name)
        .env("ASSISTANTS_API_KEYS", KEY)
        .env("OPENAI_BASE_URL", format!("http://{llm_addr}/v1"))
        .env("WORK_MAX_ATTEMPTS", "3")
        .env_remove("PORT")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the handler");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // The host's readiness check: any answer on `/`.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the handler did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let account = StorageAccount::parse(&connection).unwrap();
    let queue = QueueServiceClientBuilder::with_location(
        account.queue_location(),
        account.credentials().unwrap(),
    )
    .build()
    .queue_client(queue_name);
    let storage_http = assistants::store::azure::http_client().unwrap();
    let store = AzureBlobStore::new(&account, &container, request_retry(), &storage_http).unwrap();
    Handler {
        child,
        base,
        http,
        queue,
        store,
        _llm: llm,
    }
}

impl Handler {
    /// A new assistant (model `m`); its id.
    async fn assistant(&self) -> String {
        let body = json!({"model": "m"});
        id(&self
            .api(reqwest::Method::POST, "/assistants", Some(body))
            .await)
    }

    /// A new thread holding one user message; its id.
    async fn thread(&self) -> String {
        let body = json!({"messages": [{"role": "user", "content": "hi"}]});
        id(&self
            .api(reqwest::Method::POST, "/threads", Some(body))
            .await)
    }

    /// A run of `assistant` on `thread` (queued for the host to deliver); its id.
    async fn run(&self, thread: &str, assistant: &str) -> String {
        let path = format!("/threads/{thread}/runs");
        let body = json!({"assistant_id": assistant});
        id(&self.api(reqwest::Method::POST, &path, Some(body)).await)
    }

    /// A request as the host's proxy forwards it: the original path and headers.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}/v1{path}", self.base))
            .bearer_auth(KEY)
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("OpenAI-Beta", "assistants=v2");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let response = r.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// Takes the next message from the `work` queue (as the host's listener does).
    async fn take_message(&self) -> azure_storage_queues::operations::Message {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self
                .queue
                .get_messages()
                .visibility_timeout(Duration::from_secs(60))
                .await
                .unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no work item was queued"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn invoke(&self, msg: Value, dequeue_count: Value) -> (u16, Value) {
        self.invoke_function("work", msg, dequeue_count).await
    }

    /// An invocation of the queue trigger `function` (`work`, `work-poison`).
    async fn invoke_function(
        &self,
        function: &str,
        msg: Value,
        dequeue_count: Value,
    ) -> (u16, Value) {
        let body = json!({"Data": {"msg": msg},
            "Metadata": {"DequeueCount": dequeue_count, "Id": "x", "PopReceipt": "y",
                         "sys": {"MethodName": function, "UtcNow": "2026-11-26T00:00:00Z", "RandGuid": "z"}}});
        let r = self
            .http
            .post(format!("{}/{function}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn run_status(&self, thread: &str, run: &str) -> Value {
        self.api(
            reqwest::Method::GET,
            &format!("/threads/{thread}/runs/{run}"),
            None,
        )
        .await
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_delivers_work_and_runs_complete() {
    let llm = StandIn::new();
    llm.script(None, vec![say("first"), say("second"), say("third")]);
    let h = start_handler(llm).await;
    use reqwest::Method;
    let asst = h.assistant().await;
    let thread = h.thread().await;
    let run = h.run(&thread, &asst).await;

    // No poller runs in this mode: the run waits for the host.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.run_status(&thread, &run).await["status"], "queued");

    // The message is base64 JSON, as the queue trigger expects.
    let message = h.take_message().await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(message.message_text.trim())
        .unwrap();
    let text = String::from_utf8(decoded).unwrap();
    let queued = decode(&message.message_text).unwrap();
    let assistants::queue::WorkItem::Step(turn) = queued.item else {
        panic!("not a step: {queued:?}");
    };
    assert_eq!(turn.run_id, run);
    // Delivered as the host does: the text serialised once more as a JSON string.
    let (status, envelope) = h
        .invoke(json!(serde_json::to_string(&text).unwrap()), json!(1))
        .await;
    assert_eq!(status, 200, "{envelope}");
    assert!(
        envelope["Outputs"].is_object()
            && envelope["Logs"].is_array()
            && envelope["ReturnValue"].is_null()
    );
    assert_eq!(h.run_status(&thread, &run).await["status"], "completed");
    h.queue
        .pop_receipt_client(message.pop_receipt())
        .delete()
        .await
        .unwrap();

    // A retried delivery of the same item does no harm.
    let (status, _) = h.invoke(json!(text), json!("2")).await;
    assert_eq!(status, 200);
    let answers = h
        .api(
            Method::GET,
            &format!("/threads/{thread}/messages?run_id={run}"),
            None,
        )
        .await;
    assert_eq!(answers["data"].as_array().unwrap().len(), 1);
    assert_eq!(answers["data"][0]["content"][0]["text"]["value"], "first");

    // The other encodings: the message still base64, and a plain JSON object.
    let thread2 = id(&h.api(Method::POST, "/threads", Some(json!({}))).await);
    let run2 = id(&h
        .api(
            Method::POST,
            &format!("/threads/{thread2}/runs"),
            Some(json!({"assistant_id": asst})),
        )
        .await);
    let message = h.take_message().await;
    let (status, _) = h.invoke(json!(message.message_text), json!(1)).await;
    assert_eq!(status, 200);
    assert_eq!(h.run_status(&thread2, &run2).await["status"], "completed");
    h.queue
        .pop_receipt_client(message.pop_receipt())
        .delete()
        .await
        .unwrap();
    let thread3 = id(&h.api(Method::POST, "/threads", Some(json!({}))).await);
    let run3 = id(&h
        .api(
            Method::POST,
            &format!("/threads/{thread3}/runs"),
            Some(json!({"assistant_id": asst})),
        )
        .await);
    let message = h.take_message().await;
    let object: Value =
        serde_json::from_str(&decode(&message.message_text).unwrap().to_json()).unwrap();
    let (status, _) = h.invoke(object, json!(1)).await;
    assert_eq!(status, 200);
    assert_eq!(h.run_status(&thread3, &run3).await["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_item_is_retried_then_ends_its_run_on_the_last_attempt() {
    let h = start_handler(StandIn::new()).await;
    use reqwest::Method;
    let asst = h.assistant().await;
    let thread = h.thread().await;
    // A corrupt object under the thread makes every attempt fail (as a storage fault would).
    let tenant_key = format!("t/default/threads/{thread}/messages/msg_zzzzzzzzzzzzzzzzzzzzzzzz");
    h.store
        .put(
            &tenant_key,
            Bytes::from_static(b"{not json"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let run = h.run(&thread, &asst).await;
    let message = h.take_message().await;
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(message.message_text.trim())
            .unwrap(),
    )
    .unwrap();
    let msg = json!(serde_json::to_string(&text).unwrap());

    // Before the last attempt: a failure status, so the host retries.
    for attempt in 1..3 {
        let (status, envelope) = h.invoke(msg.clone(), json!(attempt)).await;
        assert_eq!(status, 500, "attempt {attempt}: {envelope}");
        assert_ne!(h.run_status(&thread, &run).await["status"], "failed");
    }
    // The last attempt (WORK_MAX_ATTEMPTS = 3): the run ends cleanly and the invocation
    // succeeds, so nothing goes to the poison queue.
    let (status, envelope) = h.invoke(msg, json!(3)).await;
    assert_eq!(status, 200, "{envelope}");
    let ended = h.run_status(&thread, &run).await;
    assert_eq!(ended["status"], "failed");
    assert_eq!(ended["last_error"]["code"], "server_error");
    // The thread is free again.
    h.api(
        Method::POST,
        &format!("/threads/{thread}/runs"),
        Some(json!({"assistant_id": asst})),
    )
    .await;

    // An invocation without a readable item is dropped (retrying cannot help).
    let (status, _) = h.invoke(json!("not a work item"), json!(1)).await;
    assert_eq!(status, 200);
}

/// An item that never finished (the handler died while processing it, every time) is not
/// processed again: delivered more often than allowed it is ended at once, and from the
/// poison queue (where the host puts it after `maxDequeueCount`) its object is ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_never_finished_ends_its_run() {
    let h = start_handler(StandIn::new()).await;
    use reqwest::Method;
    let asst = h.assistant().await;
    for function in ["work", "work-poison"] {
        let thread = h.thread().await;
        let run = h.run(&thread, &asst).await;
        let message = h.take_message().await;
        // `work` past WORK_MAX_ATTEMPTS (3), or `work-poison` on its first delivery.
        let count = if function == "work" { 4 } else { 1 };
        let (status, envelope) = h
            .invoke_function(function, json!(message.message_text), json!(count))
            .await;
        assert_eq!(status, 200, "{function}: {envelope}");
        let ended = h.run_status(&thread, &run).await;
        assert_eq!(ended["status"], "failed", "{function}: {ended}");
        assert_eq!(ended["last_error"]["code"], "server_error");
        // Not processed: the model was never asked, and the run has no answer.
        let answers = h
            .api(
                Method::GET,
                &format!("/threads/{thread}/messages?run_id={run}"),
                None,
            )
            .await;
        assert_eq!(answers["data"].as_array().unwrap().len(), 0, "{function}");
        h.queue
            .pop_receipt_client(message.pop_receipt())
            .delete()
            .await
            .unwrap();
    }
}

/// SIGTERM while the handler processes an invocation whose turn outlasts the grace: the
/// invocation still succeeds, after the grace, with the item put back to the queue as a
/// copy (this delivery uncounted), so the host deletes the message and another instance
/// takes the copy at once; the handler exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_puts_back_the_turn_in_progress() {
    let llm = StandIn::new();
    llm.script(
        None,
        vec![llm_standin::Response {
            text: Some("an answer far slower than the grace, one word a second".into()),
            chunk_delay_ms: 1000,
            ..Default::default()
        }],
    );
    let mut h = start_handler_with(llm, &[("SHUTDOWN_GRACE_SECONDS", "1")]).await;
    let asst = h.assistant().await;
    let thread = h.thread().await;
    let run = h.run(&thread, &asst).await;
    let message = h.take_message().await;
    let signal = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while h.run_status(&thread, &run).await["status"] != "in_progress" {
            assert!(
                std::time::Instant::now() < deadline,
                "the turn did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = i32::try_from(h.child.id()).unwrap();
        // SAFETY: kill(2) with the pid of our own child, not yet waited for.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        std::time::Instant::now()
    };
    // The second delivery of the message: the copy carries the first.
    let ((status, envelope), signalled) =
        tokio::join!(h.invoke(json!(message.message_text), json!(2)), signal);
    let took = signalled.elapsed();
    assert_eq!(status, 200, "{envelope}");
    assert!(
        envelope["Logs"][0]
            .as_str()
            .is_some_and(|log| log.contains("released at shutdown")),
        "{envelope}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}"
    );
    let copy = decode(&h.take_message().await.message_text).unwrap();
    let assistants::queue::WorkItem::Step(turn) = &copy.item else {
        panic!("not a step: {copy:?}");
    };
    assert_eq!(
        (turn.run_id.as_str(), copy.prior_attempts),
        (run.as_str(), 1)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = h.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the handler did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
}
