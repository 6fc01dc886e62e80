//! Bad input and security:
//! - hostile requests on the wire (path tricks, NUL, very long ids and URLs, non-UTF-8 and
//!   huge bodies, huge headers, deeply nested JSON, wrong content types) get a 4xx (the
//!   server's own answers in the OpenAI error shape), never a 5xx or a hang, and the server
//!   keeps serving;
//! - tenant isolation over every route of the router table: a second tenant gets 404 on
//!   every object of the first, sees none of them in lists, and changes nothing;
//! - API keys, the model key and the storage key never appear in the log, even at debug;
//! - error answers never carry storage internals (paths, container, endpoints), even when
//!   a stored object is corrupt (500).

mod support;

use assistants::http::router::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::remote::{Api, ServerProcess, TERMINAL};
use support::{azurite_connection_string, call, say, spawn_app, unique_name, Backend, TestApp};
use support::{KEY_A, KEY_B};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// What came back for a raw request: the status (0 when the connection closed without
/// one), the head, and the body.
struct RawAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawAnswer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` as bytes on a new connection and reads until the server closes it.
async fn raw(app: &TestApp, request: &[u8]) -> RawAnswer {
    let addr = app
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    // Written while the answer is read: the server may answer (413) and close before it
    // read everything, which is not an error here.
    let request = request.to_vec();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writing.abort();
    assert!(read.is_ok(), "no end of answer within 20 s");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (text[..i].to_string(), out[i + 4..].to_vec()),
        None => (text.clone(), Vec::new()),
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawAnswer { status, head, body }
}

type Headers = [(&'static str, &'static str)];

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Authorization: Bearer {KEY_A}\r\nOpenAI-Beta: assistants=v2\r\n\
         Content-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The server's own 4xx: OpenAI-shaped, with the status and (if given) a message part.
fn assert_api_error(answer: &RawAnswer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.head);
    let body = answer.json();
    for field in ["message", "type", "param", "code"] {
        assert!(
            body["error"].get(field).is_some(),
            "{what}: not an OpenAI error: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
}

async fn still_serving(app: &TestApp) {
    app.get("/assistants").await.ok();
}

async fn hostile_requests_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let asst = id(&app.post("/assistants", json!({"model": "m"})).await.ok());
    let json_ct = [("Content-Type", "application/json")];

    // Paths: dot segments, encoded slashes, NUL, other prefixes, very long ids. None may
    // reach another object (or the store's namespace): all 400/404 from the server.
    let long_id = format!("asst_{}", "a".repeat(5000));
    let paths: Vec<(String, u16)> = vec![
        (format!("/v1/assistants/{asst}/.."), 404),
        ("/v1/assistants/../threads".into(), 404),
        (format!("/v1/threads/../assistants/{asst}"), 404),
        ("/v1/assistants/..%2F..%2Fthreads".into(), 404),
        (format!("/v1/assistants/{asst}%2F.."), 404),
        ("/v1/assistants/%2e%2e".into(), 404),
        ("/v1/assistants/asst_abc%00def".into(), 404),
        ("/v1/assistants/%00".into(), 404),
        (format!("/v1/assistants/{long_id}"), 404),
        ("/v1/threads/asst_abcdefghijklmnopqrstuvwx".into(), 400),
        ("/v1/files/..%2F..%2F..%2Fetc%2Fpasswd/content".into(), 404),
        ("/v1//assistants//".into(), 200),
    ];
    for (path, status) in &paths {
        let answer = raw(&app, &request("GET", path, &[], b"")).await;
        match status {
            200 => assert_eq!(answer.status, 200, "{path}"),
            // A malformed id is a 404, one with another kind's prefix a 400.
            _ if answer.status == 400 => assert_api_error(&answer, 400, path),
            _ => assert_api_error(&answer, *status, path),
        }
    }
    // A raw NUL byte or a space in the request line is not HTTP: the HTTP library refuses
    // it (400) before the API sees it.
    let answer = raw(
        &app,
        b"GET /v1/assistants/a\0b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.head);
    // A very long URL and very large headers: refused by the HTTP layer (414 / 431), or
    // answered 404 by the server; never a 5xx or a hang.
    let long_path = format!("/v1/assistants/{}", "x".repeat(200_000));
    let answer = raw(&app, &request("GET", &long_path, &[], b"")).await;
    assert!(
        [404, 414, 431, 400].contains(&answer.status),
        "long URL: {}",
        answer.head
    );
    let big = "v".repeat(1 << 20);
    let answer = raw(
        &app,
        &request("GET", "/v1/assistants", &[("X-Big", &big)], b""),
    )
    .await;
    assert!([431, 400].contains(&answer.status), "{}", answer.head);
    let many: Vec<(String, String)> = (0..500).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = raw(&app, &request("GET", "/v1/assistants", &many, b"")).await;
    assert!([431, 400].contains(&answer.status), "{}", answer.head);
    still_serving(&app).await;

    // Bodies.
    let bodies: Vec<(&str, Vec<u8>, &Headers)> = vec![
        ("non-UTF-8", vec![0xff, 0xfe, 0x7b, 0x80, 0x7d], &json_ct),
        (
            "non-UTF-8 inside a string",
            b"{\"model\": \"m\xff\xfe\"}".to_vec(),
            &json_ct,
        ),
        (
            "lone surrogate",
            br#"{"model": "\ud800"}"#.to_vec(),
            &json_ct,
        ),
        ("truncated", br#"{"model": "m""#.to_vec(), &json_ct),
        ("not an object", b"[1, 2, 3]".to_vec(), &json_ct),
        ("a bare string", b"\"model\"".to_vec(), &json_ct),
        (
            "deeply nested arrays",
            format!(
                "{{\"model\": \"m\", \"metadata\": {}{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            &json_ct,
        ),
        (
            "deeply nested objects",
            format!(
                "{{\"model\": \"m\", \"response_format\": {}1{}}}",
                "{\"a\":".repeat(50_000),
                "}".repeat(50_000)
            )
            .into_bytes(),
            &json_ct,
        ),
        (
            "text/plain",
            br#"{"model": "m"}"#.to_vec(),
            &[("Content-Type", "text/plain")],
        ),
        (
            "form data",
            b"model=m".to_vec(),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        ),
        (
            "multipart on a JSON route",
            b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n".to_vec(),
            &[("Content-Type", "multipart/form-data; boundary=x")],
        ),
        (
            "a key with 1 MB",
            format!("{{\"{}\": 1}}", "k".repeat(1 << 20)).into_bytes(),
            &json_ct,
        ),
    ];
    for (what, body, headers) in &bodies {
        let answer = raw(&app, &request("POST", "/v1/assistants", headers, body)).await;
        assert_api_error(&answer, 400, what);
    }
    // Larger than MAX_REQUEST_BYTES (8 MiB): 413, declared or chunked.
    let huge = format!(
        "{{\"model\": \"m\", \"name\": \"{}\"}}",
        "n".repeat(9 << 20)
    );
    let answer = raw(
        &app,
        &request("POST", "/v1/assistants", &json_ct, huge.as_bytes()),
    )
    .await;
    assert_api_error(&answer, 413, "huge body");
    let mut chunked = format!(
        "POST /v1/assistants HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {KEY_A}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in huge.as_bytes().chunks(1 << 20) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&app, &chunked).await;
    assert_api_error(&answer, 413, "huge chunked body");
    // An upload that is not multipart.
    let answer = raw(
        &app,
        &request(
            "POST",
            "/v1/files",
            &json_ct,
            br#"{"purpose": "assistants"}"#,
        ),
    )
    .await;
    assert_api_error(&answer, 400, "JSON upload");
    // Query strings.
    for query in [
        "limit=abc",
        "limit=%ff",
        "limit=-1",
        "order=sideways",
        "after=%00",
    ] {
        let answer = raw(
            &app,
            &request("GET", &format!("/v1/assistants?{query}"), &[], b""),
        )
        .await;
        assert!(
            answer.status == 400 || answer.status == 200,
            "{query}: {}",
            answer.head
        );
        if answer.status == 400 {
            assert_api_error(&answer, 400, query);
        }
    }
    // Methods and keys.
    let answer = raw(&app, &request("BREW", "/v1/assistants", &[], b"")).await;
    assert_api_error(&answer, 405, "unknown method");
    let answer = raw(
        &app,
        b"GET /v1/assistants HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    )
    .await;
    assert_api_error(&answer, 401, "non-UTF-8 key");
    // Nothing was created by any of it, and the server still serves.
    let listed = app.get("/assistants").await.ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}
both_backends!(hostile_requests, hostile_requests_test);

/// Tenant A's objects, one of each kind, named by the placeholders of `ROUTES` paths.
async fn tenant_a_objects(app: &TestApp) -> HashMap<&'static str, String> {
    let api = app.api();
    let tool =
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}});
    app.llm.script(None, vec![call(&[("f", "{}")])]);
    let asst = id(&api
        .post("/assistants", json!({"model": "m", "tools": [tool]}))
        .await
        .ok());
    let (tid, rid) = api.create_thread_and_run(&asst, None, "q").await;
    api.wait_run(&tid, &rid, &["requires_action"], Duration::from_secs(20))
        .await;
    let message = api.list_all(&format!("/threads/{tid}/messages")).await;
    let step = api
        .list_all(&format!("/threads/{tid}/runs/{rid}/steps"))
        .await;
    let file = app.upload(b"tenant a's secret notes", "a.txt").await;
    let vs = id(&api.post("/vector_stores", json!({"name": "a"})).await.ok());
    api.post(
        &format!("/vector_stores/{vs}/files"),
        json!({"file_id": file}),
    )
    .await
    .ok();
    let batch = api
        .post(
            &format!("/vector_stores/{vs}/file_batches"),
            json!({"file_ids": [file]}),
        )
        .await
        .ok();
    let conv = api
        .post(
            "/conversations",
            json!({"items": [{"role": "user", "content": "a's words"}]}),
        )
        .await
        .ok();
    let conv = id(&conv);
    let items = api.get(&format!("/conversations/{conv}/items")).await.ok();
    app.llm.script(None, vec![say("a's answer")]);
    let response = api
        .post("/responses", json!({"model": "m", "input": "a's question"}))
        .await
        .ok();
    HashMap::from([
        ("p", id(&response)),
        ("c", conv),
        ("i", id(&items["data"][0])),
        ("a", asst),
        ("t", tid),
        ("m", id(&message[0])),
        ("r", rid),
        ("s", id(&step[0])),
        ("f", file),
        ("v", vs),
        ("b", id(&batch)),
    ])
}

/// A valid body for each operation that takes one (so that a 404 is about the object, not
/// the body); `objects` are tenant A's.
fn body_for(operation: &str, objects: &HashMap<&str, String>) -> Option<Value> {
    Some(match operation {
        "createAssistant" | "createThread" | "createVectorStore" | "createFile"
        | "createConversation" => return None,
        "updateConversation" => json!({"metadata": {"by": "b"}}),
        "createConversationItems" => json!({"items": [{"role": "user", "content": "from b"}]}),
        // Naming A's conversation.
        "createResponse" | "Getinputtokencounts" => {
            json!({"model": "m", "input": "from b", "conversation": objects["c"]})
        }
        "cancelResponse" => json!({}),
        "modifyAssistant" | "modifyThread" | "modifyMessage" | "modifyRun"
        | "modifyVectorStore" => json!({"metadata": {"by": "b"}}),
        "createThreadAndRun" => json!({"assistant_id": objects["a"]}),
        "createMessage" => json!({"role": "user", "content": "from b"}),
        "createRun" => json!({"assistant_id": objects["a"]}),
        "cancelRun" | "cancelVectorStoreFileBatch" => json!({}),
        "submitToolOuputsToRun" => {
            json!({"tool_outputs": [{"tool_call_id": "call_x", "output": "o"}]})
        }
        "searchVectorStore" => json!({"query": "secret"}),
        "createVectorStoreFile" => json!({"file_id": objects["f"]}),
        "updateVectorStoreFileAttributes" => json!({"attributes": {"by": "b"}}),
        "createVectorStoreFileBatch" => json!({"file_ids": [objects["f"]]}),
        other => panic!("no request body for {other}: add one to body_for"),
    })
}

/// Every route of the router table, with tenant B's key on tenant A's objects: 404 (or,
/// for the collection routes without an id, nothing of A's visible or reachable), and
/// afterwards A's objects are exactly as before.
async fn tenant_isolation_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let objects = tenant_a_objects(&app).await;
    let a = app.api();
    let b = Api::new(&app.base, KEY_B);
    let snapshot = |api: Api, objects: HashMap<&'static str, String>| async move {
        let (t, r, v) = (&objects["t"], &objects["r"], &objects["v"]);
        let mut out = Vec::new();
        for path in [
            format!("/assistants/{}", objects["a"]),
            format!("/threads/{t}"),
            format!("/threads/{t}/messages/{}", objects["m"]),
            format!("/threads/{t}/runs/{r}"),
            format!("/threads/{t}/runs/{r}/steps/{}", objects["s"]),
            format!("/files/{}", objects["f"]),
            format!("/vector_stores/{v}"),
            format!("/vector_stores/{v}/files/{}", objects["f"]),
            format!("/vector_stores/{v}/file_batches/{}", objects["b"]),
            format!("/conversations/{}", objects["c"]),
            format!("/conversations/{}/items/{}", objects["c"], objects["i"]),
            format!("/responses/{}", objects["p"]),
            format!("/responses/{}/input_items", objects["p"]),
        ] {
            let mut value = api.get(&path).await.ok();
            // Counters and activity times may move on by themselves (ingestion).
            for moving in ["last_active_at", "file_counts", "status", "usage_bytes"] {
                value.as_object_mut().unwrap().remove(moving);
            }
            out.push(value);
        }
        out
    };
    let before = snapshot(a.clone(), objects.clone()).await;
    let a_ids: Vec<&String> = objects.values().collect();

    let mut covered = 0;
    for &(method, sample, operation) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let segments: Vec<String> = sample
            .split('/')
            .map(|s| match s {
                "a" | "t" | "m" | "r" | "s" | "f" | "v" | "b" | "c" | "i" | "p" => {
                    objects[s].clone()
                }
                other => other.to_string(),
            })
            .collect();
        let path = segments.join("/");
        let has_id = sample.split('/').any(|s| s.len() == 1);
        if operation == "createFile" {
            // Nothing of A's to name: B's upload is B's (checked with the lists below).
            covered += 1;
            continue;
        }
        let body = if method == Method::POST {
            body_for(operation, &objects)
        } else {
            None
        };
        if !has_id && method == Method::POST && body.is_none() {
            // A create that names nothing of A's: it makes B's own object.
            let answer = b
                .call(
                    method.clone(),
                    &path,
                    Some(match operation {
                        "createAssistant" => json!({"model": "m"}),
                        _ => json!({}),
                    }),
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{operation}: {}",
                answer.body
            );
            covered += 1;
            continue;
        }
        let answer = b
            .call(
                method.clone(),
                &path,
                body.or_else(|| (method == Method::POST).then(|| json!({}))),
            )
            .await;
        let names_a = matches!(
            operation,
            "createThreadAndRun" | "createResponse" | "Getinputtokencounts"
        );
        if has_id || names_a {
            let error = answer.error(404);
            let message = error["message"].as_str().unwrap();
            // The Assistants API's wording, or the Responses and Conversations APIs'.
            assert!(
                message.starts_with("No ") || message.ends_with(" not found."),
                "{operation}: {error}"
            );
        } else {
            // A list: answered, and none of A's objects in it.
            assert_eq!(answer.status, StatusCode::OK, "{operation}");
            let text = answer.body.to_string();
            for id in &a_ids {
                assert!(
                    !text.contains(id.as_str()),
                    "{operation} shows {id}: {text}"
                );
            }
        }
        covered += 1;
    }
    assert_eq!(covered, ROUTES.len());
    // B's own lists hold none of A's objects (B made an assistant, a thread, a store).
    for list in ["/assistants", "/files", "/vector_stores"] {
        let text = b.get(list).await.ok().to_string();
        for id in &a_ids {
            assert!(!text.contains(id.as_str()), "{list} shows {id}");
        }
    }
    let after = snapshot(a.clone(), objects.clone()).await;
    assert_eq!(before, after, "tenant B changed tenant A's objects");
    // A's run is still waiting for A's outputs, and the file's bytes are A's.
    let run = a
        .get(&format!("/threads/{}/runs/{}", objects["t"], objects["r"]))
        .await
        .ok();
    assert_eq!(run["status"], "requires_action");
    // B cannot put A's file into a store of B's either.
    let own = id(&b.post("/vector_stores", json!({})).await.ok());
    b.post(
        &format!("/vector_stores/{own}/files"),
        json!({"file_id": objects["f"]}),
    )
    .await
    .error(404);
    b.post(
        &format!("/vector_stores/{own}/file_batches"),
        json!({"file_ids": [objects["f"]]}),
    )
    .await
    .error(404);
    b.post("/vector_stores", json!({"file_ids": [objects["f"]]}))
        .await
        .error(404);
    let content = app
        .raw(Method::GET, &format!("/files/{}/content", objects["f"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(content, "tenant a's secret notes");
}
both_backends!(tenant_isolation, tenant_isolation_test);

/// HMAC-SHA256 (RFC 2104), for signing a SAS token below.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A connection string for the suite's Azurite that authenticates with an account SAS
/// (blob and queue) instead of the account key, and the SAS signature: a SAS travels in
/// request URLs, which the Azure SDK logs at debug.
fn sas_connection_string() -> (String, String) {
    use base64::Engine as _;
    let with_key = azurite_connection_string();
    let part = |name: &str| {
        with_key
            .split(';')
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {with_key}"))
            .to_string()
    };
    let (account, key) = (part("AccountName="), part("AccountKey="));
    let (version, permissions, expiry) = ("2019-02-02", "rwdlacup", "2099-01-01T00:00:00Z");
    let to_sign = format!("{account}\n{permissions}\nbq\nsco\n\n{expiry}\n\n\n{version}\n");
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    let signature = url_encode(
        &base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes())),
    );
    let token = format!("sv={version}&ss=bq&srt=sco&sp={permissions}&se={expiry}&sig={signature}");
    let connection = format!(
        "AccountName={account};BlobEndpoint={};QueueEndpoint={};SharedAccessSignature={token}",
        part("BlobEndpoint="),
        part("QueueEndpoint=")
    );
    (connection, signature)
}

/// No secret in the log at debug level: the API keys (used and refused ones), the model
/// endpoint's key, the storage credential (a SAS token, which the Azure SDK would log with
/// every request URL at debug).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_reach_the_log() {
    let llm = llm_standin::StandIn::new();
    let llm_addr = llm.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base_url = format!("http://{llm_addr}/v1");
    let (connection, sas_signature) = sas_connection_string();

    let logs = tempfile::tempdir().unwrap();
    let secret_a = "sk-tenant-a-0123456789abcdefSECRET";
    let secret_b = "sk-tenant-b-0123456789abcdefSECRET";
    let model_key = "sk-model-endpoint-0123456789SECRET";
    let wrong = "sk-wrong-key-0123456789abcdefSECRET";
    let keys = format!("{secret_a}=tenanta,{secret_b}=tenantb");
    let container = unique_name("logs");
    let mut server = ServerProcess::start(
        &[
            ("ASSISTANTS_API_KEYS", &keys),
            ("STORAGE", "azure"),
            ("STORAGE_CONNECTION_STRING", &connection),
            ("STORAGE_CONTAINER", &container),
            ("QUEUE_NAME", &unique_name("logs")),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_KEY", model_key),
            ("RUST_LOG", "debug"),
        ],
        &logs.path().join("server.log"),
    )
    .await;
    let api = server.api(secret_a);
    llm.script(None, vec![call(&[("f", "{}")]), support::say("done")]);
    let tool =
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}});
    let asst = id(&api
        .post("/assistants", json!({"model": "m", "tools": [tool]}))
        .await
        .ok());
    let (tid, rid) = api.create_thread_and_run(&asst, None, "q").await;
    let waiting = api
        .wait_run(&tid, &rid, &["requires_action"], Duration::from_secs(30))
        .await;
    let call_id = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"].clone();
    api.post(
        &format!("/threads/{tid}/runs/{rid}/submit_tool_outputs"),
        json!({"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}),
    )
    .await
    .ok();
    api.wait_run(&tid, &rid, TERMINAL, Duration::from_secs(30))
        .await;
    server.api(secret_b).get("/assistants").await.ok();
    server.api(wrong).get("/assistants").await.error(401);
    server.api("").get("/assistants").await.error(401);
    // A streamed run, too (its own code path).
    let streamed = server
        .api(secret_a)
        .http
        .post(format!("{}/threads/runs", api.base))
        .bearer_auth(secret_a)
        .json(&json!({"assistant_id": asst, "stream": true,
                      "thread": {"messages": [{"role": "user", "content": "q"}]}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streamed.contains("thread.run."));
    // The model endpoint got its key (so it was in use)...
    assert!(llm
        .requests()
        .iter()
        .any(|r| r["_authorization"] == format!("Bearer {model_key}")));
    server.stop();
    let log = server.log_text();
    assert!(log.contains("DEBUG"), "the log is at debug level");
    // ...and none of the secrets is in the log.
    let account_key = support::remote::AZURITE_KEY;
    for secret in [
        secret_a,
        secret_b,
        model_key,
        wrong,
        account_key,
        &account_key[..20],
        &sas_signature,
        "sig=",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    assert!(
        !log.contains("SharedAccessSignature") && !log.contains("AccountKey"),
        "connection string in the log"
    );
}

/// Error answers carry no storage internals: not for a missing object, a refused request,
/// or a corrupt stored object (500), whose cause goes to the log only.
async fn errors_hide_storage_internals_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let asst = id(&app.post("/assistants", json!({"model": "m"})).await.ok());
    let tid = id(&app.post("/threads", json!({})).await.ok());
    // Corrupt the stored assistant and thread.
    for key in [
        assistants::store::keys::assistant("tenanta", &asst),
        assistants::store::keys::thread("tenanta", &tid),
    ] {
        app.store
            .put(
                &key,
                bytes::Bytes::from_static(b"{not json"),
                assistants::store::PutMode::Overwrite,
            )
            .await
            .unwrap();
    }
    let mut answers = vec![
        (app.get(&format!("/assistants/{asst}")).await, 500),
        (app.get("/assistants").await, 500),
        (app.get(&format!("/threads/{tid}")).await, 500),
        (
            app.post(
                &format!("/threads/{tid}/messages"),
                json!({"role": "user", "content": "x"}),
            )
            .await,
            500,
        ),
        (
            app.get("/assistants/asst_abcdefghijklmnopqrstuvwx").await,
            404,
        ),
        (
            app.get("/threads/thread_abcdefghijklmnopqrstuvwx/runs")
                .await,
            404,
        ),
        (app.post("/assistants", json!({"model": 5})).await, 400),
    ];
    let internals: Vec<String> = vec![
        "t/tenanta".into(),
        "tenanta".into(),
        "objects".into(),
        "corrupt".into(),
        "127.0.0.1".into(),
        "devstoreaccount1".into(),
        "blob".into(),
        "key must be".into(),
        std::env::temp_dir().display().to_string(),
    ];
    for (answer, status) in answers.drain(..) {
        let text = answer.body.to_string();
        answer.error(status);
        for internal in &internals {
            assert!(!text.contains(internal.as_str()), "{internal:?} in {text}");
        }
    }
    // The service goes on serving everything else.
    app.post("/assistants", json!({"model": "m"})).await.ok();
}
both_backends!(
    errors_hide_storage_internals,
    errors_hide_storage_internals_test
);
