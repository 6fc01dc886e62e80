//! One conformance suite for every store backend: the local directory and Azure Blob
//! Storage (Azurite).

mod support;

use assistants::store::{self, DynStore, PutMode, StoreError, Update};
use bytes::Bytes;
use serde_json::json;
use support::{spawn_app, Backend};

async fn store_for(backend: Backend) -> (DynStore, support::TestApp) {
    let app = spawn_app(backend).await;
    (app.store.clone(), app)
}

async fn conditional_writes_test(backend: Backend) {
    let (s, _app) = store_for(backend).await;
    assert!(s.get("a/missing").await.unwrap().is_none());
    let e1 = s
        .put("a/x", Bytes::from_static(b"{\"v\":1}"), PutMode::Create)
        .await
        .unwrap();
    assert!(matches!(
        s.put("a/x", Bytes::from_static(b"{\"v\":9}"), PutMode::Create)
            .await,
        Err(StoreError::Conflict)
    ));
    let (data, etag) = s.get("a/x").await.unwrap().unwrap();
    assert_eq!(&data[..], b"{\"v\":1}");
    assert_eq!(etag, e1);
    let e2 = s
        .put(
            "a/x",
            Bytes::from_static(b"{\"v\":2}"),
            PutMode::IfMatch(e1.clone()),
        )
        .await
        .unwrap();
    assert_ne!(e1, e2);
    assert!(matches!(
        s.put(
            "a/x",
            Bytes::from_static(b"{\"v\":3}"),
            PutMode::IfMatch(e1)
        )
        .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(&s.get("a/x").await.unwrap().unwrap().0[..], b"{\"v\":2}");
    let stale = e2.clone();
    assert!(s.delete("a/x").await.unwrap());
    assert!(!s.delete("a/x").await.unwrap());
    assert!(matches!(
        s.put("a/x", Bytes::from_static(b"{}"), PutMode::IfMatch(stale))
            .await,
        Err(StoreError::NotFound) | Err(StoreError::Conflict)
    ));
    s.put("a/y", Bytes::from_static(b"1"), PutMode::Overwrite)
        .await
        .unwrap();
    s.put("a/y", Bytes::from_static(b"2"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(&s.get("a/y").await.unwrap().unwrap().0[..], b"2");
    let counts = s.counts();
    assert!(
        counts.reads >= 4 && counts.writes >= 7 && counts.deletes >= 2,
        "{counts:?}"
    );
}
both_backends!(conditional_writes, conditional_writes_test);

async fn listing_pages_in_order_test(backend: Backend) {
    let (s, _app) = store_for(backend).await;
    for i in (0..7).rev() {
        s.put(
            &format!("p/q/k{i}"),
            Bytes::from_static(b"{}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    }
    s.put("p/q/sub/deeper", Bytes::from_static(b"{}"), PutMode::Create)
        .await
        .unwrap();
    s.put("p/qq/other", Bytes::from_static(b"{}"), PutMode::Create)
        .await
        .unwrap();
    let mut keys = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        let page = s.list_page("p/q/", marker, 3).await.unwrap();
        assert!(page.keys.len() <= 3);
        keys.extend(page.keys);
        pages += 1;
        match page.next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert!(pages >= 3);
    let expected: Vec<String> = (0..7)
        .map(|i| format!("p/q/k{i}"))
        .chain(["p/q/sub/deeper".to_string()])
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(store::list_all(s.as_ref(), "p/q/").await.unwrap(), expected);
    assert!(store::list_all(s.as_ref(), "nothing/")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store::delete_prefix(&s, "p/q/").await.unwrap(), 8);
    assert!(store::list_all(s.as_ref(), "p/q/")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store::list_all(s.as_ref(), "p/").await.unwrap(),
        vec!["p/qq/other"]
    );
}
both_backends!(listing_pages_in_order, listing_pages_in_order_test);

async fn concurrent_updates_lose_nothing_test(backend: Backend) {
    let (s, _app) = store_for(backend).await;
    store::put_json(s.as_ref(), "c/counter", &json!({"n": 0}), PutMode::Create)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                store::update_json(s.as_ref(), "c/counter", |mut v: serde_json::Value| {
                    let n = v["n"].as_i64().unwrap();
                    v["n"] = json!(n + 1);
                    Ok::<_, StoreError>(Update::Write(v, ()))
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    let (v, _) = store::get_json::<serde_json::Value>(s.as_ref(), "c/counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["n"], 20);
    // Concurrent create-only writes of one key: exactly one wins.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.put("c/once", Bytes::from(format!("{i}")), PutMode::Create)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
}
both_backends!(
    concurrent_updates_lose_nothing,
    concurrent_updates_lose_nothing_test
);

async fn get_many_reads_in_order_test(backend: Backend) {
    let (s, _app) = store_for(backend).await;
    let mut etags = Vec::new();
    for i in 0..20 {
        etags.push(
            s.put(
                &format!("m/k{i:02}"),
                Bytes::from(format!("{{\"i\":{i}}}")),
                PutMode::Create,
            )
            .await
            .unwrap(),
        );
    }
    // Out of key order, with a missing key in the middle: answers follow the request.
    let keys: Vec<String> = ["m/k07", "m/k03", "m/missing", "m/k19"]
        .iter()
        .map(|k| k.to_string())
        .chain((0..20).map(|i| format!("m/k{i:02}")))
        .collect();
    let before = s.counts();
    let found = s.get_many(&keys).await.unwrap();
    assert_eq!(s.counts().reads - before.reads, keys.len() as u64);
    assert_eq!(found.len(), keys.len());
    assert_eq!(&found[0].as_ref().unwrap().0[..], b"{\"i\":7}");
    assert_eq!(found[1].as_ref().unwrap().1, etags[3]);
    assert!(found[2].is_none());
    assert_eq!(&found[3].as_ref().unwrap().0[..], b"{\"i\":19}");
    for i in 0..20 {
        let (data, etag) = found[4 + i].as_ref().unwrap();
        assert_eq!(&data[..], format!("{{\"i\":{i}}}").as_bytes());
        assert_eq!(*etag, etags[i]);
    }
    assert!(s.get_many(&[]).await.unwrap().is_empty());
    // A key no backend accepts fails the whole call rather than reading as missing.
    if backend == Backend::Local {
        assert!(s.get_many(&["m/../x".to_string()]).await.is_err());
    }
}
both_backends!(get_many_reads_in_order, get_many_reads_in_order_test);

async fn update_from_a_known_value_test(backend: Backend) {
    let (s, _app) = store_for(backend).await;
    let e1 = store::put_json(s.as_ref(), "u/x", &json!({"n": 1}), PutMode::Create)
        .await
        .unwrap();
    let bump = |mut v: serde_json::Value| {
        let n = v["n"].as_i64().unwrap();
        v["n"] = json!(n + 1);
        Ok::<_, StoreError>(Update::Write(v, n + 1))
    };
    // From a fresh known value: one write, no read; the new ETag comes back.
    let before = s.counts();
    let done =
        store::update_json_from(s.as_ref(), "u/x", Some((json!({"n": 1}), e1.clone())), bump)
            .await
            .unwrap()
            .unwrap();
    let used = s.counts();
    assert_eq!(
        (used.reads - before.reads, used.writes - before.writes),
        (0, 1)
    );
    assert_eq!(done.0, 2);
    let (_, e2) = s.get("u/x").await.unwrap().unwrap();
    assert_eq!(done.1, e2);
    // From a stale known value: the write loses, the object is re-read, nothing is lost.
    let done = store::update_json_from(s.as_ref(), "u/x", Some((json!({"n": 1}), e1)), bump)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.0, 3);
    let (v, etag) = store::get_json::<serde_json::Value>(s.as_ref(), "u/x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["n"], 3);
    assert_eq!(done.1, etag);
    // Keep returns the known ETag and neither reads nor writes.
    let before = s.counts();
    let kept = store::update_json_from(
        s.as_ref(),
        "u/x",
        Some((v, etag.clone())),
        |_: serde_json::Value| Ok::<_, StoreError>(Update::Keep("kept")),
    )
    .await
    .unwrap()
    .unwrap();
    let used = s.counts();
    assert_eq!(
        (used.reads - before.reads, used.writes - before.writes),
        (0, 0)
    );
    assert_eq!(kept, ("kept", etag.clone()));
    // A known value of an object deleted since: not found.
    assert!(s.delete("u/x").await.unwrap());
    let gone = store::update_json_from(s.as_ref(), "u/x", Some((json!({"n": 3}), etag)), bump)
        .await
        .unwrap();
    assert!(gone.is_none());
}
both_backends!(update_from_a_known_value, update_from_a_known_value_test);

/// `get_stream` reads an object in chunks (several ranges on Azure: 9 MiB is three), of one
/// version: an object replaced while it is read ends the stream with an error (local: the
/// version opened is read to its end), never with a mix of the two.
async fn streamed_reads_test(backend: Backend) {
    use futures::StreamExt;
    let (s, _app) = store_for(backend).await;
    assert!(s.get_stream("a/missing").await.unwrap().is_none());
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let chunks = futures::stream::iter(
        big.chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    s.put_stream("a/big", chunks).await.unwrap();
    let (size, mut stream) = s.get_stream("a/big").await.unwrap().unwrap();
    assert_eq!(size, big.len() as u64);
    let mut read = Vec::new();
    let mut pieces = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 4 << 20, "a chunk of {} bytes", chunk.len());
        read.extend_from_slice(&chunk);
        pieces += 1;
    }
    assert!(read == big, "content differs");
    assert!(pieces >= 3, "{pieces} chunks");
    s.put("a/empty", Bytes::new(), PutMode::Overwrite)
        .await
        .unwrap();
    let (size, stream) = s.get_stream("a/empty").await.unwrap().unwrap();
    assert_eq!(size, 0);
    assert_eq!(stream.count().await, 0);

    // Replaced after the first chunk.
    let (_, mut stream) = s.get_stream("a/big").await.unwrap().unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let other = vec![7u8; big.len()];
    s.put("a/big", Bytes::from(other), PutMode::Overwrite)
        .await
        .unwrap();
    let mut read = first.to_vec();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => read.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed || read == big, "a mix of two versions was read");
}
both_backends!(streamed_reads, streamed_reads_test);
