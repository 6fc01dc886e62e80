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

/// What the scripted upstream below received: method, target (path and query), body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// The events a response's stream carries, as an upstream writes them: no `[DONE]`.
const RESPONSE_EVENTS: &[&str] = &[
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hel\",\"logprobs\":[]}\n\n",
    ": keep-alive\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"lo\",\"logprobs\":[]}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[]}}\n\n",
];

/// A scripted upstream for the Responses and Conversations paths: it records each request
/// and answers a response's stream in two parts (the second once `go` is notified), a
/// conversation as JSON, and a 404 for an unknown one.
async fn scripted_upstream(go: std::sync::Arc<tokio::sync::Notify>) -> (String, Received) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Default::default();
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            let go = go.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the request ended early");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut words = head.split_whitespace();
                let method = words.next().unwrap().to_string();
                let target = words.next().unwrap().to_string();
                let body = buf[head_end..head_end + length].to_vec();
                log.lock()
                    .unwrap()
                    .push((method.clone(), target.clone(), body));
                let path = target.split('?').next().unwrap().to_string();
                let json = |status: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         x-request-id: req_upstream\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let conversation = r#"{"id":"conv_abcdefghijklmnopqrstuvwx","object":"conversation","created_at":1,"metadata":{"topic":"x"}}"#;
                match (method.as_str(), path.as_str()) {
                    ("POST", "/v1/responses") | ("GET", "/v1/responses/resp_1") => {
                        let (first, rest) = if method == "GET" {
                            // A replay after `starting_after=1`.
                            (&RESPONSE_EVENTS[3..4], &RESPONSE_EVENTS[4..])
                        } else {
                            (&RESPONSE_EVENTS[..2], &RESPONSE_EVENTS[2..])
                        };
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                    x-request-id: req_upstream\r\nconnection: close\r\n\r\n";
                        socket.write_all(head.as_bytes()).await.unwrap();
                        socket.write_all(first.concat().as_bytes()).await.unwrap();
                        socket.flush().await.unwrap();
                        if method == "POST" {
                            tokio::time::timeout(std::time::Duration::from_secs(10), go.notified())
                                .await
                                .expect("the client never saw the first events");
                        }
                        for event in rest {
                            socket.write_all(event.as_bytes()).await.unwrap();
                        }
                    }
                    ("POST", "/v1/conversations") => {
                        let reply = json("200 OK", conversation);
                        socket.write_all(reply.as_bytes()).await.unwrap();
                    }
                    ("GET", "/v1/conversations/conv_abcdefghijklmnopqrstuvwx") => {
                        let reply = json("200 OK", conversation);
                        socket.write_all(reply.as_bytes()).await.unwrap();
                    }
                    _ => {
                        let e = r#"{"error":{"message":"Conversation with id 'conv_x' not found.","type":"invalid_request_error","param":null,"code":null}}"#;
                        socket
                            .write_all(json("404 Not Found", e).as_bytes())
                            .await
                            .unwrap();
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/v1"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_and_conversations_pass_through_as_they_came() {
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let (upstream, received) = scripted_upstream(go.clone()).await;
    let (proxy, _guard) = spawn_proxy(&upstream, "sk-upstream", &[]).await;
    let client = reqwest::Client::new();

    // A response's stream: its first events reach the client while the upstream still
    // holds the rest, and the whole comes through byte for byte, with no `[DONE]` added.
    let body = json!({"model": "m", "input": "hi", "stream": true});
    let mut r = client
        .post(format!("{proxy}/responses"))
        .bearer_auth(KEY_A)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = Vec::new();
    let first = RESPONSE_EVENTS[..2].concat();
    while text.len() < first.len() {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
            .await
            .expect("the first events were held back")
            .unwrap()
            .expect("the stream ended early");
        text.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8_lossy(&text), first);
    go.notify_one();
    while let Some(chunk) = r.chunk().await.unwrap() {
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text, RESPONSE_EVENTS.concat());
    assert!(!text.contains("[DONE]") && !text.contains("event: done"));

    // A stream resumed with `GET /responses/{id}?stream=true&starting_after=1`: the query
    // reaches the upstream as it was.
    let r = client
        .get(format!(
            "{proxy}/responses/resp_1?stream=true&starting_after=1"
        ))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), RESPONSE_EVENTS[3..].concat());

    // A conversation created and read back; an unknown one is the upstream's 404.
    let create = json!({"metadata": {"topic": "x"}, "items": [{"type": "message", "role": "user", "content": "hi"}]});
    let r = call(
        &client,
        reqwest::Method::POST,
        format!("{proxy}/conversations"),
        KEY_A,
        Some(create.clone()),
    )
    .await;
    assert_eq!(r.status(), 200);
    let conversation: Value = r.json().await.unwrap();
    assert_eq!(conversation["object"], "conversation");
    let id = conversation["id"].as_str().unwrap().to_string();
    let r = call(
        &client,
        reqwest::Method::GET,
        format!("{proxy}/conversations/{id}"),
        KEY_A,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req_upstream");
    assert_eq!(r.json::<Value>().await.unwrap(), conversation);
    let r = call(
        &client,
        reqwest::Method::GET,
        format!("{proxy}/conversations/conv_x"),
        KEY_A,
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "Conversation with id 'conv_x' not found."
    );

    // Each request reached the upstream as the client sent it.
    let received = received.lock().unwrap().clone();
    let seen: Vec<(&str, &str)> = received
        .iter()
        .map(|(m, t, _)| (m.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v1/responses"),
            ("GET", "/v1/responses/resp_1?stream=true&starting_after=1"),
            ("POST", "/v1/conversations"),
            ("GET", "/v1/conversations/conv_abcdefghijklmnopqrstuvwx"),
            ("GET", "/v1/conversations/conv_x"),
        ]
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&received[0].2).unwrap(),
        body
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&received[2].2).unwrap(),
        create
    );
}
