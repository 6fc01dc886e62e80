//! Files: multipart uploads streamed into the store, list, retrieve, download, delete.

mod support;

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::Value;
use support::{spawn_app, spawn_app_with, Backend, TestApp, KEY_B};

async fn upload(
    app: &TestApp,
    bytes: Vec<u8>,
    filename: &str,
    purpose: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = Form::new();
    if let Some(p) = purpose {
        form = form.text("purpose", p.to_string());
    }
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part("file", Part::bytes(bytes).file_name(filename.to_string()));
    let r = app
        .raw(Method::POST, "/files")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn file_lifecycle_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let text = b"The capital of Norway is Oslo.\n".to_vec();
    let (status, file) = upload(&app, text.clone(), "facts.txt", Some("assistants"), &[]).await;
    assert_eq!(status, 200, "{file}");
    let id = file["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("file-") && id.len() == 29, "{id}");
    assert_eq!(file["object"], "file");
    assert_eq!(file["bytes"], text.len());
    assert_eq!(file["filename"], "facts.txt");
    assert_eq!(file["purpose"], "assistants");
    assert_eq!(file["status"], "processed");
    assert!(
        file.get("expires_at").is_none(),
        "optional, not nullable: {file}"
    );

    assert_eq!(app.get(&format!("/files/{id}")).await.ok(), file);
    let r = app
        .raw(Method::GET, &format!("/files/{id}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.bytes().await.unwrap().to_vec(), text);

    // A second file with another purpose; the purpose filter, order and paging.
    let (_, image) = upload(
        &app,
        vec![0x89, b'P', b'N', b'G'],
        "dir/../pic.png",
        Some("vision"),
        &[],
    )
    .await;
    assert_eq!(image["filename"], "pic.png");
    let all = app.get("/files").await.ok();
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![image["id"].as_str().unwrap(), id.as_str()]);
    let vision = app.get("/files?purpose=vision").await.ok();
    assert_eq!(vision["data"].as_array().unwrap().len(), 1);
    // `purpose` is a filter: empty is none, unknown matches nothing.
    assert_eq!(
        app.get("/files?purpose=").await.ok()["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get("/files?purpose=nothing").await.ok()["data"],
        serde_json::json!([])
    );
    assert!(file.get("status_details").is_none());
    let page = app.get("/files?limit=1&order=asc").await.ok();
    assert_eq!(page["data"][0]["id"], id.as_str());
    assert_eq!(page["has_more"], true);
    app.get("/files?limit=10001").await.error(400);

    // Another tenant sees none of it.
    let b = app.with_key(KEY_B);
    b.get(&format!("/files/{id}")).await.error(404);
    assert_eq!(b.get("/files").await.ok()["data"], serde_json::json!([]));

    let deleted = app.delete(&format!("/files/{id}")).await.ok();
    assert_eq!(
        deleted,
        serde_json::json!({"id": id, "object": "file", "deleted": true})
    );
    app.get(&format!("/files/{id}")).await.error(404);
    let r = app
        .raw(Method::GET, &format!("/files/{id}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.delete(&format!("/files/{id}")).await.error(404);
}
both_backends!(file_lifecycle, file_lifecycle_test);

async fn large_uploads_stream_and_limits_hold_test(backend: Backend) {
    let app = spawn_app_with(backend, &[("FILE_MAX_BYTES", "6000000")]).await;
    // Larger than one storage block (4 MiB): staged in blocks on Azure.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let (status, file) = upload(&app, big.clone(), "big.bin", Some("assistants"), &[]).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["bytes"], big.len());
    let id = file["id"].as_str().unwrap();
    let r = app
        .raw(Method::GET, &format!("/files/{id}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.bytes().await.unwrap().to_vec() == big, "content differs");

    // Over the limit: 413, and nothing is kept.
    let (status, body) = upload(
        &app,
        vec![1u8; 6_100_000],
        "huge.bin",
        Some("assistants"),
        &[],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let listed = app.get("/files").await.ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let data_keys = assistants::store::list_all(app.store.as_ref(), "t/tenanta/file-data/")
        .await
        .unwrap();
    assert_eq!(data_keys.len(), 1, "{data_keys:?}");
}
both_backends!(
    large_uploads_stream_and_limits_hold,
    large_uploads_stream_and_limits_hold_test
);

async fn bad_uploads_are_400s_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = upload(&app, b"x".to_vec(), "a.txt", None, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "purpose");
    let (status, body) = upload(&app, b"x".to_vec(), "a.txt", Some("homework"), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "purpose");
    let (status, _) = upload(
        &app,
        b"x".to_vec(),
        "a.txt",
        Some("assistants"),
        &[("bogus", "1")],
    )
    .await;
    assert_eq!(status, 400);
    let r = app
        .raw(Method::POST, "/files")
        .multipart(Form::new().text("purpose", "assistants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "file");
    let r = app
        .raw(Method::POST, "/files")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, file) = upload(
        &app,
        b"x".to_vec(),
        "a.txt",
        Some("assistants"),
        &[
            ("expires_after[anchor]", "created_at"),
            ("expires_after[seconds]", "3600"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        file["expires_at"].as_i64().unwrap(),
        file["created_at"].as_i64().unwrap() + 3600
    );
    let (status, body) = upload(
        &app,
        b"x".to_vec(),
        "a.txt",
        Some("assistants"),
        &[
            ("expires_after[anchor]", "created_at"),
            ("expires_after[seconds]", "10"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // The object may also come as one JSON part.
    let (status, file) = upload(
        &app,
        b"y".to_vec(),
        "b.txt",
        Some("assistants"),
        &[(
            "expires_after",
            r#"{"anchor": "created_at", "seconds": 7200}"#,
        )],
    )
    .await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(
        file["expires_at"].as_i64().unwrap(),
        file["created_at"].as_i64().unwrap() + 7200
    );
    // Nothing of the refused uploads was kept.
    let data_keys = assistants::store::list_all(app.store.as_ref(), "t/tenanta/file-data/")
        .await
        .unwrap();
    assert_eq!(data_keys.len(), 2, "{data_keys:?}");
}
both_backends!(bad_uploads_are_400s, bad_uploads_are_400s_test);
