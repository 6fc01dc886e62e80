//! Helpers for the reliability tests: the server as a separate process (so it can be
//! killed), a private Azurite that can be stopped and started again, an HTTP client for any
//! base URL, and the check that a run's stored state agrees with its status.
#![allow(dead_code)]

use super::{Answer, KEY_A, KEY_B};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A client of one server (in-process or not) with one key.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub http: Client,
    /// How often `wait_run` looks.
    pub poll: Duration,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        Api {
            base: base.to_string(),
            key: key.to_string(),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            poll: Duration::from_millis(50),
        }
    }

    pub fn with_key(&self, key: &str) -> Api {
        Api {
            key: key.to_string(),
            ..self.clone()
        }
    }

    /// A request; `Err` only when no HTTP answer came at all (connection refused, reset).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
            .header("OpenAI-Beta", "assistants=v2");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("not JSON ({status}) from {path}: {text}"));
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer: {e}"))
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

    /// Every object of a list (all pages, ascending).
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page_path = match &after {
                Some(a) => format!("{path}{sep}order=asc&limit=100&after={a}"),
                None => format!("{path}{sep}order=asc&limit=100"),
            };
            let page = self.get(&page_path).await.ok();
            let data = page["data"].as_array().cloned().unwrap_or_default();
            after = data.last().and_then(|o| o["id"].as_str()).map(String::from);
            out.extend(data);
            if page["has_more"] != json!(true) || after.is_none() {
                return out;
            }
        }
    }

    /// `POST /threads/runs`: a run of `assistant_id` (on `model`, if given) on a new thread
    /// holding one user message; `(thread id, run id)`.
    pub async fn create_thread_and_run(
        &self,
        assistant_id: &str,
        model: Option<&str>,
        content: &str,
    ) -> (String, String) {
        let mut body = json!({"assistant_id": assistant_id,
            "thread": {"messages": [{"role": "user", "content": content}]}});
        if let Some(model) = model {
            body["model"] = json!(model);
        }
        let run = self.post("/threads/runs", body).await.ok();
        (
            run["thread_id"].as_str().unwrap().to_string(),
            run["id"].as_str().unwrap().to_string(),
        )
    }

    /// Polls a run until its status is one of `until` (`timeout` at most).
    pub async fn wait_run(
        &self,
        thread_id: &str,
        run_id: &str,
        until: &[&str],
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self
                .try_call(
                    Method::GET,
                    &format!("/threads/{thread_id}/runs/{run_id}"),
                    None,
                )
                .await;
            if let Ok(answer) = answer {
                if answer.status == StatusCode::OK {
                    let status = answer.body["status"].as_str().unwrap_or_default();
                    if until.contains(&status) {
                        return answer.body;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "run {run_id} did not reach {until:?} in {timeout:?}: {} {}",
                    answer.status,
                    answer.body
                );
            } else {
                assert!(
                    Instant::now() < deadline,
                    "run {run_id}: no answer for {timeout:?}"
                );
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

pub const TERMINAL: &[&str] = &["completed", "failed", "cancelled", "expired", "incomplete"];

/// Reads objects with `read` every `every` until each one's `status` is one of `until`, and
/// returns them; after `within` fails, naming those that are not. `read` answers one object
/// per awaited id (`{"id": …}` without a status for one it could not see).
pub async fn wait_all<F, Fut>(
    until: &[&str],
    within: Duration,
    every: Duration,
    mut read: F,
) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<Value>>,
{
    let deadline = Instant::now() + within;
    loop {
        let all = read().await;
        let pending: Vec<(&Value, &Value)> = all
            .iter()
            .filter(|o| !until.contains(&o["status"].as_str().unwrap_or_default()))
            .map(|o| (&o["id"], &o["status"]))
            .collect();
        if pending.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "not {until:?} after {within:?}: {pending:?}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Checks that what a run stored agrees with its status, and returns its steps and
/// messages (ascending):
/// - no step is left `in_progress` unless the run waits for tool outputs (then exactly its
///   last `tool_calls` step is);
/// - every `message_creation` step names a stored message of the run, and their statuses
///   agree (a completed step's message is completed, or incomplete when the run is; a failed
///   or cancelled step's message is incomplete); no message of the run lacks its step;
/// - a completed run has exactly one completed `message_creation` step, and its usage is the
///   sum of its steps'; a failed run has a `last_error` and no completed message step after
///   its last completed tool step;
/// - a terminal run has released its thread (a message can be added).
pub async fn check_run(api: &Api, thread_id: &str, run_id: &str) -> RunState {
    let run = api
        .get(&format!("/threads/{thread_id}/runs/{run_id}"))
        .await
        .ok();
    let status = run["status"].as_str().unwrap_or_default().to_string();
    let steps = api
        .list_all(&format!("/threads/{thread_id}/runs/{run_id}/steps"))
        .await;
    let messages: Vec<Value> = api
        .list_all(&format!("/threads/{thread_id}/messages?run_id={run_id}"))
        .await;
    let by_id: HashMap<&str, &Value> = messages
        .iter()
        .map(|m| (m["id"].as_str().unwrap_or_default(), m))
        .collect();
    let context = || format!("run {run}\nsteps {steps:?}\nmessages {messages:?}");

    let open: Vec<&Value> = steps
        .iter()
        .filter(|s| s["status"] == "in_progress")
        .collect();
    if status == "requires_action" {
        assert_eq!(open.len(), 1, "one open tool step: {}", context());
        assert_eq!(open[0]["type"], "tool_calls", "{}", context());
    } else {
        assert!(open.is_empty(), "steps left open: {}", context());
    }

    let mut referenced = Vec::new();
    let mut completed_message_steps = 0;
    for step in steps.iter().filter(|s| s["type"] == "message_creation") {
        let message_id = step["step_details"]["message_creation"]["message_id"]
            .as_str()
            .unwrap_or_default();
        let message = by_id.get(message_id).unwrap_or_else(|| {
            panic!("step {} names a missing message: {}", step["id"], context())
        });
        referenced.push(message_id);
        let want: &[&str] = match step["status"].as_str().unwrap_or_default() {
            "completed" => {
                completed_message_steps += 1;
                &["completed", "incomplete"]
            }
            "failed" | "cancelled" | "expired" => &["incomplete"],
            other => panic!("message step status {other}: {}", context()),
        };
        assert!(
            want.contains(&message["status"].as_str().unwrap_or_default()),
            "step {} is {} but its message is {}: {}",
            step["id"],
            step["status"],
            message["status"],
            context()
        );
        assert_eq!(message["role"], "assistant");
    }
    for message in &messages {
        let id = message["id"].as_str().unwrap_or_default();
        assert!(
            referenced.contains(&id),
            "message {id} of the run has no step: {}",
            context()
        );
    }
    match status.as_str() {
        "completed" => {
            assert_eq!(
                completed_message_steps,
                1,
                "a completed run has one answer: {}",
                context()
            );
            let total: u64 = steps
                .iter()
                .filter_map(|s| s["usage"]["total_tokens"].as_u64())
                .sum();
            assert_eq!(
                run["usage"]["total_tokens"].as_u64(),
                Some(total),
                "run usage is the sum of its steps': {}",
                context()
            );
        }
        "failed" => {
            assert!(run["last_error"]["code"].is_string(), "{}", context());
            assert!(run["failed_at"].is_i64(), "{}", context());
        }
        _ => {}
    }
    if TERMINAL.contains(&status.as_str()) {
        // The thread is free: a message can be added (and is removed again).
        let added = api
            .post(
                &format!("/threads/{thread_id}/messages"),
                json!({"role": "user", "content": "probe"}),
            )
            .await;
        assert_eq!(added.status, 200, "thread still claimed: {}", added.body);
        let probe = added.body["id"].as_str().unwrap_or_default().to_string();
        api.delete(&format!("/threads/{thread_id}/messages/{probe}"))
            .await
            .ok();
    }
    RunState {
        run,
        steps,
        messages,
    }
}

pub struct RunState {
    pub run: Value,
    pub steps: Vec<Value>,
    pub messages: Vec<Value>,
}

impl RunState {
    /// The text of the run's completed answer messages.
    pub fn answers(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| m["status"] == "completed")
            .map(|m| {
                m["content"][0]["text"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The server binary as a child process, its stderr kept in a file.
pub struct ServerProcess {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    /// RLIMIT_NOFILE for the process (the hostile-input tests run it with few descriptors).
    nofile: Option<u64>,
}

impl ServerProcess {
    /// Starts `assistants-service` on a free port with `env` (keys `KEY_A`/`KEY_B` unless
    /// `env` sets `ASSISTANTS_API_KEYS`); waits until it answers.
    pub async fn start(env: &[(&str, &str)], log: &Path) -> ServerProcess {
        Self::start_limited(env, log, None).await
    }

    /// `start` with the process's open-file limit (RLIMIT_NOFILE) set to `nofile`.
    pub async fn start_with_nofile(env: &[(&str, &str)], log: &Path, nofile: u64) -> ServerProcess {
        Self::start_limited(env, log, Some(nofile)).await
    }

    async fn start_limited(env: &[(&str, &str)], log: &Path, nofile: Option<u64>) -> ServerProcess {
        let mut server = ServerProcess {
            child: None,
            port: free_port(),
            log: log.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nofile,
        };
        server.restart().await;
        server
    }

    /// Starts it (again) with the same settings and port, appending to the same log.
    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_assistants-service"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .env("BIND", "127.0.0.1")
            .env(
                "ASSISTANTS_API_KEYS",
                format!("{KEY_A}=tenanta,{KEY_B}=tenantb"),
            )
            .env("RUST_LOG", "info");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if let Some(nofile) = self.nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            // Between fork and exec: only the async-signal-safe setrlimit.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start assistants-service");
        self.child = Some(child);
        let api = self.api(KEY_A);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if api
                .http
                .get(format!("http://127.0.0.1:{}/", self.port))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            if let Some(Ok(Some(code))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the server exited ({code}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn api(&self, key: &str) -> Api {
        Api::new(&format!("http://127.0.0.1:{}/v1", self.port), key)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    /// SIGTERM, and how the process exited: `None` when it was still running after
    /// `within` (it is then killed).
    pub fn terminate_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Azurite account key (public: the emulator's well-known development key).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite of the test's own, on its own ports, keeping its data on disk (`--location`)
/// so that it can be stopped and started again with everything still there.
pub struct PrivateAzurite {
    child: Option<Child>,
    pub blob_port: u16,
    pub queue_port: u16,
    table_port: u16,
    dir: tempfile::TempDir,
}

impl PrivateAzurite {
    /// The project's Azurite (`npm ci` installs it), or `AZURITE_BIN`.
    pub fn bin() -> PathBuf {
        match std::env::var_os("AZURITE_BIN") {
            Some(bin) => PathBuf::from(bin),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/azurite"),
        }
    }

    pub async fn start() -> PrivateAzurite {
        let mut azurite = PrivateAzurite {
            child: None,
            blob_port: free_port(),
            queue_port: free_port(),
            table_port: free_port(),
            dir: tempfile::tempdir().expect("azurite dir"),
        };
        azurite.resume().await;
        azurite
    }

    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};\
             BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;\
             QueueEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            self.blob_port, self.queue_port
        )
    }

    /// Starts Azurite (again) on the same ports and data directory.
    pub async fn resume(&mut self) {
        let bin = Self::bin();
        assert!(
            bin.exists(),
            "{} is missing: run `npm ci` (scripts/test.sh does)",
            bin.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("azurite.log"))
            .expect("azurite log");
        let data = self.dir.path().join("data");
        let child = Command::new(bin)
            .current_dir(self.dir.path())
            .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
            .arg("--location")
            .arg(&data)
            .args(["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1"])
            .args(["--tableHost", "127.0.0.1"])
            .args(["--blobPort", &self.blob_port.to_string()])
            .args(["--queuePort", &self.queue_port.to_string()])
            .args(["--tablePort", &self.table_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start azurite");
        self.child = Some(child);
        // Seconds on an idle machine; much longer on a busy one.
        let deadline = Instant::now() + Duration::from_secs(90);
        for port in [self.blob_port, self.queue_port] {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(Instant::now() < deadline, "azurite did not start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Freezes Azurite (SIGSTOP): connections are accepted, nothing is answered.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGSTOP);
            }
        }
    }

    /// Lets a frozen Azurite go on (SIGCONT).
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
        }
    }

    /// Stops Azurite (SIGTERM, so it saves its data; SIGKILL after 10 s).
    pub fn pause(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

impl Drop for PrivateAzurite {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then SIGKILL if the process has not exited within 10 s.
fn terminate(mut child: Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
