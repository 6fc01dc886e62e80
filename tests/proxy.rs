//! The proxy backend in front of a stored instance: the same API passed through, our own
//! keys in front, upstream statuses, bodies, headers and streams relayed, and the
//! documented errors when the upstream is unreachable or slow.

mod support;

use serde_json::{json, Value};
use support::{say, spawn_app, spawn_proxy, Backend, KEY_A, KEY_B};

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = client
        .request(method, url)
        .bearer_auth(key)
        .header("OpenAI-Beta", "assistants=v2");
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_passes_through_a_proxy() {
    let upstream = spawn_app(Backend::Local).await;
    upstream
        .llm
        .script(None, vec![say("proxied answer"), say("streamed through")]);
    // The proxy's clients use their own keys; the proxy uses the upstream's, per tenant.
    let (proxy, _guard) = spawn_proxy(
        &upstream.base,
        KEY_A,
        &[("UPSTREAM_TENANT_KEYS", "tenantb=sk-test-a")],
    )
    .await;
    let client = reqwest::Client::new();
    use reqwest::Method;

    let r = call(
        &client,
        Method::POST,
        format!("{proxy}/assistants"),
        KEY_B,
        Some(json!({"model": "m", "name": "via proxy"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let asst: Value = r.json().await.unwrap();
    // It landed upstream, in the tenant of the upstream key mapped to tenant B.
    let direct = upstream
        .get(&format!("/assistants/{}", asst["id"].as_str().unwrap()))
        .await
        .ok();
    assert_eq!(direct["name"], "via proxy");

    // Errors come back as the upstream sent them.
    let r = call(
        &client,
        Method::GET,
        format!("{proxy}/assistants/asst_abcdefghijklmnopqrstuvwx"),
        KEY_B,
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "No assistant found with id 'asst_abcdefghijklmnopqrstuvwx'."
    );
    let r = call(
        &client,
        Method::POST,
        format!("{proxy}/assistants"),
        KEY_B,
        Some(json!({"model": "m", "temperature": 9})),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "temperature");
    // Our keys apply in front: a wrong key never reaches the upstream.
    let r = call(
        &client,
        Method::GET,
        format!("{proxy}/assistants"),
        "sk-wrong",
        None,
    )
    .await;
    assert_eq!(r.status(), 401);

    // A run, polled through the proxy, with the poll header passed back.
    let thread: Value = call(
        &client,
        Method::POST,
        format!("{proxy}/threads"),
        KEY_B,
        Some(json!({"messages": [{"role": "user", "content": "hi"}]})),
    )
    .await
    .json()
    .await
    .unwrap();
    let tid = thread["id"].as_str().unwrap().to_string();
    let run: Value = call(
        &client,
        Method::POST,
        format!("{proxy}/threads/{tid}/runs"),
        KEY_B,
        Some(json!({"assistant_id": asst["id"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    let rid = run["id"].as_str().unwrap().to_string();
    let mut status = String::new();
    for _ in 0..200 {
        let r = call(
            &client,
            Method::GET,
            format!("{proxy}/threads/{tid}/runs/{rid}"),
            KEY_B,
            None,
        )
        .await;
        assert_eq!(r.headers()["openai-poll-after-ms"], "200");
        let run: Value = r.json().await.unwrap();
        status = run["status"].as_str().unwrap().to_string();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "completed");

    // A stream, relayed event by event, ending with done.
    let r = call(&client, Method::POST, format!("{proxy}/threads/runs"), KEY_B,
        Some(json!({"assistant_id": asst["id"], "stream": true, "thread": {"messages": [{"role": "user", "content": "s"}]}}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .collect();
    assert_eq!(names.first(), Some(&"thread.created"));
    assert!(names.contains(&"thread.message.delta"));
    assert_eq!(&names[names.len() - 2..], &["thread.run.completed", "done"]);
    assert_eq!(text.matches("[DONE]").count(), 1);

    // A multipart upload streams through, and the download comes back byte for byte.
    let form = reqwest::multipart::Form::new()
        .text("purpose", "assistants")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"proxied bytes".to_vec()).file_name("p.txt"),
        );
    let r = client
        .post(format!("{proxy}/files"))
        .bearer_auth(KEY_B)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let file: Value = r.json().await.unwrap();
    let content = format!("{proxy}/files/{}/content", file["id"].as_str().unwrap());
    let r = call(&client, Method::GET, content, KEY_B, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(&r.bytes().await.unwrap()[..], b"proxied bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_slow_upstream_gives_502_or_504() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (proxy, _guard) = spawn_proxy(&format!("http://127.0.0.1:{port}/v1"), "k", &[]).await;
    let client = reqwest::Client::new();
    let r = call(
        &client,
        reqwest::Method::GET,
        format!("{proxy}/assistants"),
        KEY_A,
        None,
    )
    .await;
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "server_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("upstream"));

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (proxy, _guard2) = spawn_proxy(
        &format!("http://127.0.0.1:{silent_port}/v1"),
        "k",
        &[("UPSTREAM_TIMEOUT_SECONDS", "0.5")],
    )
    .await;
    let started = std::time::Instant::now();
    let r = call(
        &client,
        reqwest::Method::GET,
        format!("{proxy}/assistants"),
        KEY_A,
        None,
    )
    .await;
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "server_error");
}
