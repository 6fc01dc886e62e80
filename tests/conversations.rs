//! HTTP-level tests of the Conversations API: every endpoint, paging both ways, `include`,
//! the error classes (404, 400 naming the bad field, busy conversations), and a thread of
//! the Assistants API used as a conversation. Each runs on the local store and on Azurite.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, say, spawn_app, Backend, TestApp, KEY_B};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id)
        .collect()
}

/// Every item id of a conversation, walking pages of `limit` in `order` with `after`.
async fn walk(app: &TestApp, conv: &str, order: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/conversations/{conv}/items?limit={limit}&order={order}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let page = app.get(&path).await.ok();
        let page_ids = ids(&page);
        assert!(page_ids.len() <= limit);
        if let Some(first) = page_ids.first() {
            assert_eq!(page["first_id"], first.as_str());
            assert_eq!(page["last_id"], page_ids.last().unwrap().as_str());
        }
        seen.extend(page_ids.clone());
        if page["has_more"] != true {
            return seen;
        }
        after = page_ids.last().cloned();
    }
}

async fn conversation_lifecycle_test(backend: Backend) {
    let app = spawn_app(backend).await;
    // An empty body is allowed.
    let answer = app
        .raw(Method::POST, "/conversations")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let empty: Value = answer.json().await.unwrap();
    assert!(id(&empty).starts_with("conv_"), "{empty}");
    assert_eq!(empty["object"], "conversation");
    assert_eq!(empty["metadata"], json!({}));
    assert_eq!(
        app.get(&format!("/conversations/{}/items", id(&empty)))
            .await
            .ok(),
        json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false})
    );

    let created = app
        .post(
            "/conversations",
            json!({"metadata": {"topic": "demo"}, "items": [
                {"type": "message", "role": "user", "content": "Hello!"}]}),
        )
        .await
        .ok();
    let conv = id(&created);
    assert_eq!(
        created.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["created_at", "id", "metadata", "object"]
    );
    assert_eq!(created["metadata"], json!({"topic": "demo"}));
    assert!(created["created_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        app.get(&format!("/conversations/{conv}")).await.ok(),
        created
    );

    let updated = app
        .post(
            &format!("/conversations/{conv}"),
            json!({"metadata": {"topic": "other", "k": "v"}}),
        )
        .await
        .ok();
    assert_eq!(updated["metadata"], json!({"k": "v", "topic": "other"}));
    assert_eq!(updated["created_at"], created["created_at"]);
    let e = app
        .post(&format!("/conversations/{conv}"), json!({}))
        .await
        .error(400);
    assert_eq!(e["param"], "metadata");
    let e = app
        .post(
            &format!("/conversations/{conv}"),
            json!({"metadata": {"k": "v"}, "name": "x"}),
        )
        .await
        .error(400);
    assert_eq!(e["message"], "Unknown parameter: 'name'.");
    let long: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = app
        .post(&format!("/conversations/{conv}"), json!({"metadata": long}))
        .await
        .error(400);
    assert_eq!(e["param"], "metadata");
    let cleared = app
        .post(&format!("/conversations/{conv}"), json!({"metadata": null}))
        .await
        .ok();
    assert_eq!(cleared["metadata"], json!({}));

    // Another tenant sees nothing.
    let e = app
        .with_key(KEY_B)
        .call(Method::GET, &format!("/conversations/{conv}"), None)
        .await
        .error(404);
    assert_eq!(
        e["message"],
        format!("Conversation with id '{conv}' not found.")
    );

    let deleted = app.delete(&format!("/conversations/{conv}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": conv, "object": "conversation.deleted", "deleted": true})
    );
    let e = app.get(&format!("/conversations/{conv}")).await.error(404);
    assert_eq!(
        e,
        json!({"message": format!("Conversation with id '{conv}' not found."),
               "type": "invalid_request_error", "param": null, "code": null})
    );
    // Its items went with it.
    let e = app
        .get(&format!("/conversations/{conv}/items"))
        .await
        .error(404);
    assert_eq!(e["param"], Value::Null);
    app.delete(&format!("/conversations/{conv}"))
        .await
        .error(404);
    for bad in ["conv_nope", "asst_abc", "thread_x"] {
        let e = app.get(&format!("/conversations/{bad}")).await.error(404);
        assert_eq!(
            e["message"],
            format!("Conversation with id '{bad}' not found.")
        );
        assert_eq!(e["param"], Value::Null);
    }
}

both_backends!(conversation_lifecycle, conversation_lifecycle_test);

async fn items_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let conv = id(&app
        .post(
            "/conversations",
            json!({"items": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"}]},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "A cat.", "annotations": []}]},
            ]}),
        )
        .await
        .ok());
    let added = app
        .post(
            &format!("/conversations/{conv}/items"),
            json!({"items": [
                {"type": "function_call", "call_id": "call_1", "name": "lookup",
                 "arguments": "{\"q\":\"cats\"}", "id": "fc_client"},
                {"type": "function_call_output", "call_id": "call_1", "output": "many"},
                {"type": "file_search_call", "id": "fs_client", "queries": ["cats"],
                 "status": "completed", "results": [{"file_id": "file-a", "filename": "a.txt", "score": 0.5,
                              "text": "cats", "attributes": {}}]},
                {"type": "reasoning", "id": "rs_client",
                 "summary": [{"type": "summary_text", "text": "hm"}]},
            ]}),
        )
        .await
        .ok();
    assert_eq!(added["object"], "list");
    assert_eq!(added["has_more"], false);
    let added_ids = ids(&added);
    assert_eq!(added_ids.len(), 4);
    for (item_id, prefix) in added_ids.iter().zip(["fc_", "fco_", "fs_", "rs_"]) {
        assert!(item_id.starts_with(prefix), "{item_id}");
    }
    assert_ne!(added_ids[0], "fc_client");
    assert_eq!(added["first_id"], added_ids[0].as_str());
    assert_eq!(added["last_id"], added_ids[3].as_str());
    assert_eq!(added["data"][0]["call_id"], "call_1");
    assert_eq!(added["data"][0]["status"], "completed");
    // Results are shown only when included.
    assert_eq!(added["data"][2]["results"], Value::Null);

    // Newest first by default.
    let listed = app.get(&format!("/conversations/{conv}/items")).await.ok();
    let all = ids(&listed);
    assert_eq!(all.len(), 7);
    assert_eq!(
        all[..4],
        added_ids.iter().rev().cloned().collect::<Vec<_>>()[..]
    );
    let data = listed["data"].as_array().unwrap();
    assert_eq!(
        data[6],
        json!({"type": "message", "id": all[6], "status": "completed", "role": "system",
               "content": [{"type": "input_text", "text": "Be brief."}]})
    );
    assert_eq!(
        data[5]["content"],
        json!([{"type": "input_text", "text": "Look:"},
               {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}])
    );
    assert_eq!(
        data[4]["content"],
        json!([{"type": "output_text", "text": "A cat.", "annotations": [], "logprobs": []}])
    );
    assert_eq!(data[4]["role"], "assistant");

    // Pages of two, both orders, give every item once in order.
    let asc = walk(&app, &conv, "asc", 2).await;
    let mut desc = walk(&app, &conv, "desc", 2).await;
    assert_eq!(desc, all);
    desc.reverse();
    assert_eq!(asc, desc);
    let page = app
        .get(&format!(
            "/conversations/{conv}/items?order=asc&limit=3&after={}",
            all[5]
        ))
        .await
        .ok();
    assert_eq!(
        ids(&page),
        vec![all[4].clone(), all[3].clone(), all[2].clone()]
    );
    assert_eq!(page["has_more"], true);

    // include
    let fs_id = &added_ids[2];
    let plain = app
        .get(&format!("/conversations/{conv}/items/{fs_id}"))
        .await
        .ok();
    assert_eq!(plain["results"], Value::Null);
    assert_eq!(plain["queries"], json!(["cats"]));
    let with = app
        .get(&format!(
            "/conversations/{conv}/items/{fs_id}?include[]=file_search_call.results"
        ))
        .await
        .ok();
    assert_eq!(with["results"][0]["file_id"], "file-a");
    let listed = app
        .get(&format!(
            "/conversations/{conv}/items?include=file_search_call.results"
        ))
        .await
        .ok();
    assert_eq!(listed["data"][1]["results"][0]["text"], "cats");
    let e = app
        .get(&format!("/conversations/{conv}/items?include[]=everything"))
        .await
        .error(400);
    assert_eq!(e["param"], "include");
    assert!(e["message"].as_str().unwrap().contains("'everything'"));

    // Retrieve and delete.
    let fc = app
        .get(&format!("/conversations/{conv}/items/{}", added_ids[0]))
        .await
        .ok();
    assert_eq!(fc["arguments"], "{\"q\":\"cats\"}");
    assert_eq!(fc["name"], "lookup");
    let msg = app
        .get(&format!("/conversations/{conv}/items/{}", all[5]))
        .await
        .ok();
    assert_eq!(msg, data[5]);
    let conversation = app.get(&format!("/conversations/{conv}")).await.ok();
    for gone in [&added_ids[0], &all[5], &all[6]] {
        let answer = app
            .delete(&format!("/conversations/{conv}/items/{gone}"))
            .await
            .ok();
        assert_eq!(answer, conversation);
        let e = app
            .get(&format!("/conversations/{conv}/items/{gone}"))
            .await
            .error(404);
        assert_eq!(e["message"], format!("Item with id '{gone}' not found."));
        app.delete(&format!("/conversations/{conv}/items/{gone}"))
            .await
            .error(404);
    }
    assert_eq!(
        ids(&app.get(&format!("/conversations/{conv}/items")).await.ok()).len(),
        4
    );
    let e = app
        .get(&format!("/conversations/{conv}/items/msg_nope"))
        .await
        .error(404);
    assert_eq!(e["message"], "Item with id 'msg_nope' not found.");
    let e = app
        .get("/conversations/conv_0000000000000000000000000/items/msg_nope")
        .await
        .error(404);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("Conversation with id"));
    let missing_conv = "conv_00000000000000000000000a";
    let e = app
        .get(&format!("/conversations/{missing_conv}/items/{}", all[0]))
        .await
        .error(404);
    assert_eq!(
        e["message"],
        format!("Conversation with id '{missing_conv}' not found.")
    );
}

both_backends!(items, items_test);

async fn bad_items_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let conv = id(&app.post("/conversations", json!({})).await.ok());
    let path = format!("/conversations/{conv}/items");
    let cases = [
        (
            json!({"items": [{"role": "user", "content": "ok"},
                             {"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]}),
            "items[1].content[0].type",
            Some("Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."),
        ),
        (
            json!({"items": [{"role": "critic", "content": "x"}]}),
            "items[0].role",
            None,
        ),
        (
            json!({"items": [{"role": "user", "content": [{"type": "input_image", "detail": "low"}]}]}),
            "items[0].content[0]",
            None,
        ),
        (
            json!({"items": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
            "items[0].arguments",
            Some("Missing required parameter: 'items[0].arguments'."),
        ),
        (
            json!({"items": [{"type": "web_search_call", "status": "completed"}]}),
            "items[0].type",
            None,
        ),
        // Whole message items (an id or a status) take their content as a list.
        (
            json!({"items": [{"type": "message", "role": "user", "status": "completed",
                              "content": "x"}]}),
            "items[0].content",
            None,
        ),
        (
            json!({"items": [{"type": "message", "role": "user", "id": null, "content": []}]}),
            "items[0].id",
            None,
        ),
        // Only an item reference's type may be null.
        (
            json!({"items": [{"type": null, "role": "user", "content": "x"}]}),
            "items[0].type",
            None,
        ),
        // Annotations and log probabilities given back are checked entry by entry.
        (
            json!({"items": [{"type": "message", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": "t", "logprobs": [
                                  {"token": "t", "logprob": 0, "bytes": [], "top_logprobs": [],
                                   "extra": 42}]}]}]}),
            "items[0].content[0].logprobs[0].extra",
            Some("Unknown parameter: 'items[0].content[0].logprobs[0].extra'."),
        ),
        (
            json!({"items": [{"type": "message", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": "t", "annotations": [
                                  {"type": "url_citation", "url": "not a url", "title": "",
                                   "start_index": 0, "end_index": 0}]}]}]}),
            "items[0].content[0].annotations[0].url",
            None,
        ),
        (json!({"items": []}), "items", None),
        (json!({}), "items", None),
        (json!({"items": "hello"}), "items", None),
        (
            json!({"items": (0..21).map(|_| json!({"role": "user", "content": "x"})).collect::<Vec<_>>()}),
            "items",
            None,
        ),
    ];
    for (body, param, message) in cases {
        let e = app.post(&path, body.clone()).await.error(400);
        assert_eq!(e["param"], param, "{body}: {e}");
        assert_eq!(e["type"], "invalid_request_error");
        if let Some(m) = message {
            assert_eq!(e["message"], m);
        }
    }
    // Nothing of a refused request was stored.
    assert_eq!(ids(&app.get(&path).await.ok()).len(), 0);
    // The same checks at creation.
    let e = app
        .post(
            "/conversations",
            json!({"items": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]}),
        )
        .await
        .error(400);
    assert_eq!(e["param"], "items[0].content[0].type");
    let e = app
        .post("/conversations", json!({"items": null, "colour": 1}))
        .await
        .error(400);
    assert_eq!(e["message"], "Unknown parameter: 'colour'.");
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("order=up", "order"),
    ] {
        let e = app.get(&format!("{path}?{query}")).await.error(400);
        assert_eq!(e["param"], param);
    }
}

both_backends!(bad_items, bad_items_test);

/// An output message given back as an item (as the Agents SDK gives it: a status, no id)
/// keeps its annotations and log probabilities; missing ones read as empty lists.
async fn output_message_given_back_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let conv = id(&app.post("/conversations", json!({})).await.ok());
    let cite = json!({"type": "url_citation", "url": "https://example.com/cats", "title": "Cats",
                      "start_index": 0, "end_index": 4});
    let logprob = json!({"token": "Cats", "logprob": -0.25, "bytes": [67, 97, 116, 115],
                         "top_logprobs": [{"token": "Cats", "logprob": -0.25, "bytes": [67]}]});
    let added = app
        .post(
            &format!("/conversations/{conv}/items"),
            json!({"items": [
                {"type": "message", "role": "assistant", "status": "completed", "content": [
                    {"type": "output_text", "text": "Cats.", "annotations": [cite],
                     "logprobs": [logprob]},
                    {"type": "output_text", "text": "More."}]},
            ]}),
        )
        .await
        .ok();
    let content = &added["data"][0]["content"];
    assert_eq!(content[0]["annotations"], json!([cite]));
    // Log probabilities are shown only when included.
    assert_eq!(content[0]["logprobs"], json!([]));
    assert_eq!(content[1]["annotations"], json!([]));
    assert_eq!(content[1]["logprobs"], json!([]));
    let item_id = added["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(item_id.starts_with("msg_"), "{added}");
    let stored = app
        .get(&format!(
            "/conversations/{conv}/items/{item_id}?include=message.output_text.logprobs"
        ))
        .await
        .ok();
    assert_eq!(stored["content"][0]["annotations"], json!([cite]));
    assert_eq!(stored["content"][0]["logprobs"], json!([logprob]));
    assert_eq!(stored["content"][1]["logprobs"], json!([]));
}

both_backends!(output_message_given_back, output_message_given_back_test);

/// A thread made by the Assistants API is a conversation: its messages are message items,
/// and items added as a conversation are its messages.
async fn thread_as_conversation_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let thread = app
        .post(
            "/threads",
            json!({"metadata": {"a": "1"}, "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "second"}]}),
        )
        .await
        .ok();
    let tid = id(&thread);
    let conv = app.get(&format!("/conversations/{tid}")).await.ok();
    assert_eq!(
        conv,
        json!({"id": tid, "object": "conversation", "created_at": thread["created_at"],
               "metadata": {"a": "1"}})
    );
    let messages = app
        .get(&format!("/threads/{tid}/messages?order=asc"))
        .await
        .ok();
    let items = app
        .get(&format!("/conversations/{tid}/items?order=asc"))
        .await
        .ok();
    assert_eq!(ids(&items), ids(&messages));
    assert_eq!(
        items["data"][0]["content"],
        json!([{"type": "input_text", "text": "first"}])
    );
    assert_eq!(items["data"][1]["content"][0]["type"], "output_text");
    assert_eq!(items["data"][1]["content"][0]["text"], "second");

    let added = app
        .post(
            &format!("/conversations/{tid}/items"),
            json!({"items": [
                {"role": "user", "content": [{"type": "input_text", "text": "third"},
                                              {"type": "input_image", "file_id": "file-abc"}]},
                {"role": "developer", "content": "hidden from the Assistants face"},
                {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}]}),
        )
        .await
        .ok();
    let third = id(&added["data"][0]);
    let message = app
        .get(&format!("/threads/{tid}/messages/{third}"))
        .await
        .ok();
    assert_eq!(message["object"], "thread.message");
    assert_eq!(message["thread_id"], tid.as_str());
    assert_eq!(message["role"], "user");
    assert_eq!(message["status"], "completed");
    assert_eq!(message["run_id"], Value::Null);
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": {"value": "third", "annotations": []}},
               {"type": "image_file", "image_file": {"file_id": "file-abc", "detail": "auto"}}])
    );
    // The Assistants face lists messages only.
    let messages = app.get(&format!("/threads/{tid}/messages")).await.ok();
    assert_eq!(ids(&messages).len(), 3);
    assert_eq!(ids(&messages)[0], third);
    assert_eq!(
        ids(&app.get(&format!("/conversations/{tid}/items")).await.ok()).len(),
        5
    );
    // A message deleted as an item is gone from the thread.
    app.delete(&format!("/conversations/{tid}/items/{third}"))
        .await
        .ok();
    app.get(&format!("/threads/{tid}/messages/{third}"))
        .await
        .error(404);
    // A run's answer is an assistant message item.
    app.llm.script(None, vec![say("From the run.")]);
    let asst = id(&app
        .post("/assistants", json!({"model": "gpt-test"}))
        .await
        .ok());
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["completed"]).await;
    let newest = app
        .get(&format!("/conversations/{tid}/items?limit=1"))
        .await
        .ok();
    assert_eq!(newest["data"][0]["role"], "assistant");
    assert_eq!(
        newest["data"][0]["content"],
        json!([{"type": "output_text", "text": "From the run.", "annotations": [],
                "logprobs": []}])
    );
    assert_eq!(newest["has_more"], true);
    // And deleting the conversation deletes the thread.
    app.delete(&format!("/conversations/{tid}")).await.ok();
    app.get(&format!("/threads/{tid}")).await.error(404);
}

both_backends!(thread_as_conversation, thread_as_conversation_test);

/// While a run is active on a thread, its items cannot change and it cannot be deleted.
async fn busy_conversation_test(backend: Backend) {
    let app = spawn_app(backend).await;
    app.llm.script(None, vec![call(&[("get_weather", "{}")])]);
    let asst = id(&app
        .post(
            "/assistants",
            json!({"model": "gpt-test", "tools": [{"type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]}),
        )
        .await
        .ok());
    let tid = id(&app
        .post(
            "/threads",
            json!({"messages": [{"role": "user", "content": "weather?"}]}),
        )
        .await
        .ok());
    let rid = id(&app
        .post(
            &format!("/threads/{tid}/runs"),
            json!({"assistant_id": asst}),
        )
        .await
        .ok());
    app.wait_run(&tid, &rid, &["requires_action"]).await;
    let first = ids(&app.get(&format!("/conversations/{tid}/items")).await.ok())[0].clone();

    let e = app
        .post(
            &format!("/conversations/{tid}/items"),
            json!({"items": [{"role": "user", "content": "more"}]}),
        )
        .await
        .error(400);
    assert_eq!(
        e["message"],
        format!("Can't add items to {tid} while a run {rid} is active.")
    );
    let e = app
        .delete(&format!("/conversations/{tid}/items/{first}"))
        .await
        .error(400);
    assert!(e["message"].as_str().unwrap().contains(&rid), "{e}");
    let e = app
        .delete(&format!("/conversations/{tid}"))
        .await
        .error(409);
    assert_eq!(
        e["message"],
        format!("Can't delete {tid} while a run {rid} is active.")
    );
    // Reads work meanwhile.
    app.get(&format!("/conversations/{tid}/items/{first}"))
        .await
        .ok();

    app.post(&format!("/threads/{tid}/runs/{rid}/cancel"), json!({}))
        .await
        .ok();
    app.wait_run(&tid, &rid, &["cancelled"]).await;
    app.post(
        &format!("/conversations/{tid}/items"),
        json!({"items": [{"role": "user", "content": "more"}]}),
    )
    .await
    .ok();
    app.delete(&format!("/conversations/{tid}")).await.ok();
}

both_backends!(busy_conversation, busy_conversation_test);

/// A conversation made here, continued by responses: its items are the context, the
/// responses' input and output join it in order, and it is busy while a response runs.
async fn conversation_with_responses_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let conv = id(&app
        .post(
            "/conversations",
            json!({"items": [
                {"role": "developer", "content": "Answer in one word."},
                {"role": "user", "content": "My name is Ada."}]}),
        )
        .await
        .ok());
    app.llm.script(
        None,
        vec![call(&[("lookup", "{\"q\":\"ada\"}")]), say("Ada.")],
    );
    let tool = json!({"type": "function", "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}});
    let first = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": conv, "input": "Who am I?", "tools": [tool]}),
        )
        .await
        .ok();
    assert_eq!(first["output"][0]["type"], "function_call", "{first}");
    let call_id = first["output"][0]["call_id"].as_str().unwrap().to_string();
    // The model saw the conversation's items, then the input.
    let sent = &app.llm.requests()[0]["messages"];
    // (A developer message is a system message to Chat Completions.)
    assert_eq!(sent[0]["role"], "system", "{sent}");
    assert_eq!(sent[0]["content"], "Answer in one word.");
    assert_eq!(sent[1]["content"], "My name is Ada.");
    assert_eq!(sent[2]["content"], "Who am I?");

    let second = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": {"id": conv}, "tools": [tool], "input": [
                {"type": "function_call_output", "call_id": call_id, "output": "a person"}]}),
        )
        .await
        .ok();
    assert_eq!(second["output"][0]["content"][0]["text"], "Ada.");

    // In order: the two items it began with, the first response's input and its call, the
    // second's output for it and its answer.
    let items = app
        .get(&format!("/conversations/{conv}/items?order=asc"))
        .await
        .ok();
    let kinds: Vec<(String, String)> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap().to_string(),
                i["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("message", "developer"),
        ("message", "user"),
        ("message", "user"),
        ("function_call", ""),
        ("function_call_output", ""),
        ("message", "assistant"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want, "{items}");
    assert_eq!(items["data"][3]["call_id"], call_id.as_str());
    assert_eq!(items["data"][5]["content"][0]["text"], "Ada.");

    // Busy while a background response runs on it.
    app.llm.script(
        None,
        vec![llm_standin::Response {
            text: Some("Slow.".into()),
            answer_delay_ms: 1500,
            ..Default::default()
        }],
    );
    let background = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": conv, "input": "Slowly?", "background": true}),
        )
        .await
        .ok();
    let rid = id(&background);
    let e = app
        .post(
            &format!("/conversations/{conv}/items"),
            json!({"items": [{"role": "user", "content": "meanwhile"}]}),
        )
        .await
        .error(400);
    assert_eq!(
        e["message"],
        format!("Can't add items to {conv} while a response {rid} is active.")
    );
    let e = app
        .delete(&format!("/conversations/{conv}"))
        .await
        .error(409);
    assert!(e["message"].as_str().unwrap().contains(&rid), "{e}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = app.get(&format!("/responses/{rid}")).await.ok();
        if r["status"] == "completed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.post(
        &format!("/conversations/{conv}/items"),
        json!({"items": [{"role": "user", "content": "afterwards"}]}),
    )
    .await
    .ok();
    app.delete(&format!("/conversations/{conv}")).await.ok();
}

both_backends!(
    conversation_with_responses,
    conversation_with_responses_test
);

/// A turn that answers with text and a function call: its message and its call item share
/// their time, and the message comes first, in the conversation's items as in the
/// response's output; the next response replays them as one assistant message with its tool
/// call, then the call's output.
async fn a_turns_text_and_calls_stay_together_test(backend: Backend) {
    let app = spawn_app(backend).await;
    let conv = id(&app.post("/conversations", json!({})).await.ok());
    app.llm.script(
        None,
        vec![
            llm_standin::Response {
                text: Some("Let me look.".into()),
                ..call(&[("lookup", "{}")])
            },
            say("Found."),
        ],
    );
    let tool = json!({"type": "function", "name": "lookup",
        "parameters": {"type": "object", "properties": {}}});
    let first = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": conv, "input": "Find it.", "tools": [tool]}),
        )
        .await
        .ok();
    assert_eq!(first["output"][0]["type"], "message", "{first}");
    assert_eq!(first["output"][1]["type"], "function_call", "{first}");
    let call_id = first["output"][1]["call_id"].as_str().unwrap().to_string();
    let second = app
        .post(
            "/responses",
            json!({"model": "m", "conversation": conv, "tools": [tool], "input": [
                {"type": "function_call_output", "call_id": call_id, "output": "here"}]}),
        )
        .await
        .ok();
    assert_eq!(
        second["output"][0]["content"][0]["text"], "Found.",
        "{second}"
    );
    let sent = app.llm.requests()[1]["messages"].clone();
    assert_eq!(sent.as_array().map(Vec::len), Some(3), "{sent}");
    assert_eq!(sent[0], json!({"role": "user", "content": "Find it."}));
    assert_eq!(sent[1]["role"], "assistant", "{sent}");
    assert_eq!(sent[1]["content"], "Let me look.", "{sent}");
    assert_eq!(sent[1]["tool_calls"][0]["id"], call_id.as_str(), "{sent}");
    assert_eq!(sent[2]["role"], "tool", "{sent}");
    assert_eq!(sent[2]["tool_call_id"], call_id.as_str(), "{sent}");

    let items = app
        .get(&format!("/conversations/{conv}/items?order=asc"))
        .await
        .ok();
    let listed: Vec<String> = ids(&items);
    let want = vec![
        listed[0].clone(),
        id(&first["output"][0]),
        id(&first["output"][1]),
        listed[3].clone(),
        id(&second["output"][0]),
    ];
    assert_eq!(listed, want, "{items}");
    assert_eq!(items["data"][0]["role"], "user");
    assert_eq!(items["data"][3]["type"], "function_call_output");
}

both_backends!(
    a_turns_text_and_calls_stay_together,
    a_turns_text_and_calls_stay_together_test
);
