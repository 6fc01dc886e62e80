//! A stand-in for the Azure Functions host, for local runs and tests where `func` cannot be
//! installed: it starts the handler with `FUNCTIONS_CUSTOMHANDLER_PORT`, waits until it
//! answers `GET /`, and delivers the `work` queue the way the host's queue trigger does:
//! the base64 message decoded, sent as `POST /work` with `{"Data":{"msg": <JSON string>},
//! "Metadata":{"DequeueCount": n, ...}}`; deleted after a 2xx; made visible again after
//! `visibilityTimeout` on a failure; moved to `work-poison` after `maxDequeueCount` tries.
//! The `work-poison` queue is delivered the same way as `POST /work-poison` (its own poison
//! queue is `work-poison-poison`, as the host names them).
//! HTTP clients talk to the handler's port directly: in proxying mode the host forwards
//! requests unchanged.
//!
//! Usage: `functions-host-emulator <handler binary>`, with the handler's settings in the
//! environment (`AzureWebJobsStorage` is required). Optional: `HANDLER_PORT` (default: a
//! free port), `EMULATOR_VISIBILITY_TIMEOUT_MS` (5000, as host.json), `EMULATOR_MAX_DEQUEUE`
//! (5, as host.json), `EMULATOR_TERMINATE_GRACE_MS` (5000: on Ctrl-C or SIGTERM the
//! emulator stops delivering and sends the handler SIGTERM, then SIGKILL after this long;
//! what the real host does with a custom handler at shutdown is not documented). Prints
//! `handler listening on http://127.0.0.1:PORT/v1` when ready.

use assistants::store::azure::request_retry;
use assistants::store::connection_string::StorageAccount;
use azure_storage_queues::QueueServiceClientBuilder;
use base64::Engine as _;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Some(handler) = std::env::args().nth(1) else {
        eprintln!("usage: functions-host-emulator <handler binary>");
        return ExitCode::from(2);
    };
    let Some(connection) = std::env::var("AzureWebJobsStorage").ok() else {
        eprintln!("functions-host-emulator: AzureWebJobsStorage is required");
        return ExitCode::from(2);
    };
    let account = match StorageAccount::parse(&connection) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("functions-host-emulator: AzureWebJobsStorage: {e}");
            return ExitCode::from(2);
        }
    };
    let port: u16 = match std::env::var("HANDLER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        Some(p) => p,
        None => match free_port() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("functions-host-emulator: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let queue_name = std::env::var("QUEUE_NAME").unwrap_or_else(|_| "work".into());
    let visibility = Duration::from_millis(env_or("EMULATOR_VISIBILITY_TIMEOUT_MS", 5000));
    let max_dequeue: u64 = env_or("EMULATOR_MAX_DEQUEUE", 5);
    let terminate_grace = Duration::from_millis(env_or("EMULATOR_TERMINATE_GRACE_MS", 5000));

    let mut command = tokio::process::Command::new(&handler);
    command
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
            uuid::Uuid::new_v4().to_string(),
        )
        .kill_on_drop(true);
    // SAFETY: prctl(2) only, which is async-signal-safe, between fork and exec. With it the
    // handler dies with the emulator even when the emulator is killed outright (SIGKILL),
    // as a host's worker does; `kill_on_drop` covers only the emulator's own exits.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("functions-host-emulator: cannot start {handler}: {e}");
            return ExitCode::from(2);
        }
    };
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // Readiness: any HTTP answer on `/`, as the host polls.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(format!("{base}/")).send().await.is_ok() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            eprintln!("functions-host-emulator: the handler did not answer within 30 s");
            return ExitCode::from(1);
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("functions-host-emulator: the handler exited: {status}");
            return ExitCode::from(1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("handler listening on {base}/v1");

    let credentials = match account.credentials() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("functions-host-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let service = QueueServiceClientBuilder::with_location(account.queue_location(), credentials)
        .retry(request_retry())
        .build();
    let queue = service.queue_client(queue_name.clone());
    let poison = service.queue_client(format!("{queue_name}-poison"));
    let poison_poison = service.queue_client(format!("{queue_name}-poison-poison"));
    let _ = queue.create().await;
    let _ = poison.create().await;
    let trigger = |queue, poison, function| Trigger {
        queue,
        poison,
        function,
        http: http.clone(),
        base: base.clone(),
        visibility,
        max_dequeue,
    };
    let deliver = futures::future::join(
        trigger(queue, poison.clone(), "work").run(),
        trigger(poison, poison_poison, "work-poison").run(),
    );
    tokio::select! {
        _ = deliver => ExitCode::SUCCESS,
        status = child.wait() => {
            eprintln!("functions-host-emulator: the handler exited: {status:?}");
            ExitCode::from(1)
        }
        _ = stop_signal() => {
            stop_handler(&mut child, terminate_grace).await;
            ExitCode::SUCCESS
        }
    }
}

/// Stops the handler as a host that gives it a grace would: SIGTERM (it then finishes or
/// releases its work items), SIGKILL if it is still running after `grace`.
async fn stop_handler(child: &mut tokio::process::Child, grace: Duration) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        // SAFETY: kill(2) with a pid of our own child, which has not been waited for.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) if status.success() => return,
            Ok(status) => {
                eprintln!("functions-host-emulator: the handler stopped: {status:?}");
                return;
            }
            Err(_) => eprintln!("functions-host-emulator: the handler outlived its grace"),
        }
    }
    let _ = child.kill().await;
}

/// A queue trigger: the messages of `queue` delivered as `POST /<function>`.
struct Trigger {
    queue: azure_storage_queues::QueueClient,
    poison: azure_storage_queues::QueueClient,
    function: &'static str,
    http: reqwest::Client,
    base: String,
    visibility: Duration,
    max_dequeue: u64,
}

impl Trigger {
    async fn run(self) {
        loop {
            let messages = match self
                .queue
                .get_messages()
                .number_of_messages(16u8)
                .visibility_timeout(Duration::from_secs(600))
                .await
            {
                Ok(r) => r.messages,
                Err(e) => {
                    log::warn!("poll failed: {}", e.kind());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            futures::future::join_all(messages.into_iter().map(|m| self.invoke(m))).await;
        }
    }

    async fn invoke(&self, message: azure_storage_queues::operations::Message) {
        // messageEncoding base64: the trigger hands over the decoded text, and the host
        // serialises that string value once more as JSON.
        let text = base64::engine::general_purpose::STANDARD
            .decode(message.message_text.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some(text) = text else {
            log::warn!(
                "message {} is not base64; the host would fail to bind it",
                message.message_id
            );
            return;
        };
        let body = json!({
            "Data": {"msg": serde_json::to_string(&text).unwrap_or_default()},
            "Metadata": {
                "DequeueCount": message.dequeue_count,
                "Id": message.message_id,
                "PopReceipt": message.pop_receipt,
                "sys": {"MethodName": self.function, "UtcNow": "", "RandGuid": uuid::Uuid::new_v4().to_string()},
            },
        });
        let ok = self
            .http
            .post(format!("{}/{}", self.base, self.function))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(&body)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let receipt = self.queue.pop_receipt_client(message.pop_receipt());
        if ok {
            let _ = receipt.delete().await;
        } else if message.dequeue_count >= self.max_dequeue {
            log::warn!("message {} moved to the poison queue", message.message_id);
            let _ = self.poison.create().await;
            let _ = self.poison.put_message(message.message_text.clone()).await;
            let _ = receipt.delete().await;
        } else {
            let _ = receipt
                .update(message.message_text.clone(), self.visibility)
                .await;
        }
    }
}

/// Ctrl-C or SIGTERM: either way the handler must not outlive the emulator.
async fn stop_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
