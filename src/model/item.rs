//! Conversation items: a conversation is a thread, its `message` items (role user or
//! assistant) are the thread's `Message` records, converted here on the way in and out; its
//! other items (function calls and their outputs, tool calls, reasoning, system and developer
//! messages, messages a `Message` cannot hold) are JSON values under `items/<item_id>`.
//! Listing a conversation merges the two listings by the ids' time part (at the same time a
//! message first), so items come in creation order whichever of the two holds them.

use super::message::{Message, MessageStatus};
use super::values::{Attachment, ContentPart, ImageFile, ImageUrl, TextContent};
use crate::ids::{self, Kind};
use crate::store::{self, keys, PutMode, Store, StoreError};
use serde_json::{json, Map, Value};

/// The id kinds a conversation item can have.
pub const ITEM_KINDS: [Kind; 7] = [
    Kind::Message,
    Kind::FunctionCall,
    Kind::FunctionCallOutput,
    Kind::FileSearchCall,
    Kind::CodeInterpreterCall,
    Kind::Reasoning,
    Kind::Item,
];

/// Whether `id` is a well-formed id of an item kind (only those can name a stored item).
pub fn is_item_id(id: &str) -> bool {
    ITEM_KINDS.iter().any(|kind| ids::is_valid(*kind, id))
}

/// `include` values that show what items keep hidden otherwise.
pub const INCLUDE_FILE_SEARCH_RESULTS: &str = "file_search_call.results";
pub const INCLUDE_CODE_OUTPUTS: &str = "code_interpreter_call.outputs";
pub const INCLUDE_LOGPROBS: &str = "message.output_text.logprobs";
pub const INCLUDE_ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// A thread message as a Responses `message` item.
pub fn message_item(m: &Message) -> Value {
    let assistant = m.role == "assistant";
    let mut content: Vec<Value> = m
        .content
        .iter()
        .map(|part| match part {
            ContentPart::Text { text } if assistant => json!({
                "type": "output_text",
                "text": text.value,
                "annotations": text.annotations.iter().filter_map(annotation_out).collect::<Vec<_>>(),
                "logprobs": [],
            }),
            ContentPart::Text { text } => json!({"type": "input_text", "text": text.value}),
            ContentPart::ImageFile { image_file } => json!({
                "type": "input_image",
                "file_id": image_file.file_id,
                "detail": image_file.detail.as_deref().unwrap_or("auto"),
                "image_url": null,
            }),
            ContentPart::ImageUrl { image_url } => json!({
                "type": "input_image",
                "image_url": image_url.url,
                "detail": image_url.detail.as_deref().unwrap_or("auto"),
            }),
            ContentPart::Refusal { refusal } => json!({"type": "refusal", "refusal": refusal}),
        })
        .collect();
    for a in &m.attachments {
        content.push(json!({"type": "input_file", "file_id": a.file_id}));
    }
    json!({
        "type": "message",
        "id": m.id,
        "status": m.status.as_str(),
        "role": m.role,
        "content": content,
    })
}

/// An Assistants annotation as a Responses one (`file_citation {file_id, filename, index}`,
/// `file_path {file_id, index}`); others are left out.
fn annotation_out(a: &Value) -> Option<Value> {
    let index = a.get("start_index").cloned().unwrap_or(json!(0));
    match a.get("type").and_then(Value::as_str)? {
        "file_citation" => Some(json!({
            "type": "file_citation",
            "file_id": a.pointer("/file_citation/file_id")?,
            "filename": "",
            "index": index,
        })),
        "file_path" => Some(json!({
            "type": "file_path",
            "file_id": a.pointer("/file_path/file_id")?,
            "index": index,
        })),
        _ => None,
    }
}

/// A Responses annotation as an Assistants one, or `None` when it has no Assistants form.
fn annotation_in(a: &Value) -> Option<Value> {
    let file_id = a.get("file_id")?.as_str()?;
    let index = a.get("index").and_then(Value::as_i64).unwrap_or(0);
    let kind = a.get("type")?.as_str()?;
    if kind != "file_citation" && kind != "file_path" {
        return None;
    }
    let mut out = json!({
        "type": kind,
        "text": "",
        "start_index": index,
        "end_index": index,
    });
    out[kind] = json!({"file_id": file_id});
    Some(out)
}

/// Whether the object has no fields but `allowed` (nulls aside).
fn only(part: &Map<String, Value>, allowed: &[&str]) -> bool {
    part.iter()
        .all(|(k, v)| allowed.contains(&k.as_str()) || v.is_null())
}

fn detail_in(part: &Map<String, Value>) -> Option<Option<String>> {
    match part.get("detail") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(d)) if ["auto", "low", "high"].contains(&d.as_str()) => {
            Some(Some(d.clone()))
        }
        Some(_) => None,
    }
}

/// A normalised `message` item (role user or assistant, with its `msg_` id) as the thread
/// message to store: its id is the item's, no run or assistant, `completed` unless the item
/// says otherwise. `None` for any other item, and for a message a `Message` cannot hold
/// without losing something (system and developer roles, `input_file` parts with more than a
/// file id, annotations other than file citations and paths, ...): those are stored as JSON
/// items.
pub fn message_from_item(item: &Value, thread_id: &str, created_at: i64) -> Option<Message> {
    let obj = item.as_object()?;
    if obj.get("type")?.as_str()? != "message" {
        return None;
    }
    let id = obj.get("id")?.as_str()?;
    if !ids::is_valid(Kind::Message, id) {
        return None;
    }
    let role = obj.get("role")?.as_str()?;
    let assistant = match role {
        "user" => false,
        "assistant" => true,
        _ => return None,
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => MessageStatus::Completed,
        Some(s) => serde_json::from_value::<MessageStatus>(s.clone()).ok()?,
    };
    let mut content = Vec::new();
    let mut attachments = Vec::new();
    for part in obj.get("content")?.as_array()? {
        let part = part.as_object()?;
        let text = |field: &str| part.get(field).and_then(Value::as_str).map(str::to_string);
        match (part.get("type")?.as_str()?, assistant) {
            ("input_text", false) if only(part, &["type", "text"]) => {
                content.push(super::values::text_part(text("text")?));
            }
            ("output_text", true) if only(part, &["type", "text", "annotations", "logprobs"]) => {
                let mut annotations = Vec::new();
                if let Some(list) = part.get("annotations").filter(|v| !v.is_null()) {
                    for a in list.as_array()? {
                        annotations.push(annotation_in(a)?);
                    }
                }
                content.push(ContentPart::Text {
                    text: TextContent {
                        value: text("text")?,
                        annotations,
                    },
                });
            }
            ("refusal", true) if only(part, &["type", "refusal"]) => {
                content.push(ContentPart::Refusal {
                    refusal: text("refusal")?,
                });
            }
            ("input_image", false) if only(part, &["type", "file_id", "image_url", "detail"]) => {
                let detail = detail_in(part)?;
                match (text("file_id"), text("image_url")) {
                    (Some(file_id), None) => content.push(ContentPart::ImageFile {
                        image_file: ImageFile { file_id, detail },
                    }),
                    (None, Some(url))
                        if url.starts_with("http://")
                            || url.starts_with("https://")
                            || url.starts_with("data:") =>
                    {
                        content.push(ContentPart::ImageUrl {
                            image_url: ImageUrl { url, detail },
                        })
                    }
                    _ => return None,
                }
            }
            ("input_file", false) if only(part, &["type", "file_id"]) => {
                attachments.push(Attachment {
                    file_id: text("file_id")?,
                    tools: Vec::new(),
                });
            }
            _ => return None,
        }
    }
    Some(Message {
        id: id.to_string(),
        object: "thread.message".into(),
        created_at,
        thread_id: thread_id.to_string(),
        status,
        incomplete_details: None,
        completed_at: (status == MessageStatus::Completed).then_some(created_at),
        incomplete_at: (status == MessageStatus::Incomplete).then_some(created_at),
        role: role.to_string(),
        content,
        assistant_id: None,
        run_id: None,
        attachments,
        metadata: Default::default(),
    })
}

/// What clients see of a stored item: no `_` field; `file_search_call.results`,
/// `code_interpreter_call.outputs`, `output_text` logprobs and reasoning's
/// `encrypted_content` only when `include` asks for them.
pub fn shape_item(mut item: Value, include: &[String]) -> Value {
    let wants = |what: &str| include.iter().any(|i| i == what);
    let Some(obj) = item.as_object_mut() else {
        return item;
    };
    obj.retain(|k, _| !k.starts_with('_'));
    match obj.get("type").and_then(Value::as_str) {
        Some("file_search_call") if !wants(INCLUDE_FILE_SEARCH_RESULTS) => {
            obj.insert("results".into(), Value::Null);
        }
        Some("code_interpreter_call") if !wants(INCLUDE_CODE_OUTPUTS) => {
            obj.insert("outputs".into(), Value::Null);
        }
        Some("reasoning") if !wants(INCLUDE_ENCRYPTED_REASONING) => {
            obj.remove("encrypted_content");
        }
        Some("message") => {
            let keep = wants(INCLUDE_LOGPROBS);
            if let Some(parts) = obj.get_mut("content").and_then(Value::as_array_mut) {
                for part in parts {
                    if part.get("type").and_then(Value::as_str) == Some("output_text") {
                        let has = part.get("logprobs").is_some_and(Value::is_array);
                        if !keep || !has {
                            part["logprobs"] = json!([]);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    item
}

/// Where an item sorts across the two listings: by the time part of its id; at the same
/// time a message (`msg_`) before other items (a turn's message and the call items of that
/// turn share their time, and the message came first: a prompt replays them as one
/// assistant message with its tool calls); then by id.
fn order_key(id: &str) -> (u64, bool, String) {
    (
        ids::created_micros(id).unwrap_or(0),
        !id.starts_with(Kind::Message.prefix()),
        id.to_string(),
    )
}

/// Where a listed item is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Message,
    Item,
}

/// The ids of a conversation's items, ascending by creation: one listing of its messages and
/// one of its other items.
async fn item_ids(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
) -> Result<Vec<(String, Source)>, StoreError> {
    let mut all = Vec::new();
    for (prefix, source) in [
        (keys::messages(tenant, thread_id), Source::Message),
        (keys::items(tenant, thread_id), Source::Item),
    ] {
        for key in store::list_all(store, &prefix).await? {
            let rest = &key[prefix.len()..];
            if !rest.contains('/') {
                all.push((rest.to_string(), source.clone()));
            }
        }
    }
    all.sort_by_cached_key(|(id, _)| order_key(id));
    Ok(all)
}

/// Reads the listed items in one `get_many`, as items (messages converted); items deleted
/// meanwhile, and the messages the run `excluded_run` wrote, are left out.
async fn read_items(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    listed: &[(String, Source)],
    excluded_run: Option<&str>,
) -> Result<Vec<Value>, StoreError> {
    let keys: Vec<String> = listed
        .iter()
        .map(|(id, source)| match source {
            Source::Message => keys::message(tenant, thread_id, id),
            Source::Item => keys::item(tenant, thread_id, id),
        })
        .collect();
    let found = store.get_many(&keys).await?;
    let mut out = Vec::with_capacity(listed.len());
    for ((key, (_, source)), object) in keys.iter().zip(listed).zip(found) {
        let Some((bytes, _)) = object else { continue };
        out.push(match source {
            Source::Message => {
                let message = store::parse_json::<Message>(key, &bytes)?;
                if excluded_run.is_some() && message.run_id.as_deref() == excluded_run {
                    continue;
                }
                message_item(&message)
            }
            Source::Item => store::parse_json::<Value>(key, &bytes)?,
        });
    }
    Ok(out)
}

/// Every item of a conversation, ascending by creation (messages converted). Stored values,
/// not yet shaped for a client (`shape_item`).
pub async fn list(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let listed = item_ids(store, tenant, thread_id).await?;
    read_items(store, tenant, thread_id, &listed, None).await
}

/// Every item of a conversation but the messages the run `run_id` wrote, ascending by
/// creation: the history a response's prompt starts from (its own answers are replayed from
/// its rounds instead).
pub async fn list_excluding_run(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    run_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let listed = item_ids(store, tenant, thread_id).await?;
    read_items(store, tenant, thread_id, &listed, Some(run_id)).await
}

/// One page of a conversation's items.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// At most this many items (1..=100, checked by the caller).
    pub limit: usize,
    /// Newest first.
    pub descending: bool,
    /// Items after this one in the list's order (an item id).
    pub after: Option<String>,
}

/// A page of items (stored values, not yet shaped) and whether more follow. Reads only the
/// page's objects.
pub async fn list_page(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    query: &PageQuery,
) -> Result<(Vec<Value>, bool), StoreError> {
    let mut listed = item_ids(store, tenant, thread_id).await?;
    if query.descending {
        listed.reverse();
    }
    if let Some(after) = &query.after {
        let cursor = order_key(after);
        listed.retain(|(id, _)| {
            let key = order_key(id);
            if query.descending {
                key < cursor
            } else {
                key > cursor
            }
        });
    }
    let has_more = listed.len() > query.limit;
    listed.truncate(query.limit);
    let items = read_items(store, tenant, thread_id, &listed, None).await?;
    Ok((items, has_more))
}

/// Stores normalised items (ids set): messages that a `Message` can hold as thread messages,
/// everything else under `items/`. Written with `Overwrite`: the ids are fixed, so a repeat
/// writes the same objects again.
pub async fn put_items(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    items: &[Value],
) -> Result<(), StoreError> {
    let created_at = super::now();
    for item in items {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        if !is_item_id(id) {
            return Err(StoreError::Other(format!(
                "a conversation item without an item id: {}",
                crate::error::shown(id)
            )));
        }
        match message_from_item(item, thread_id, created_at) {
            Some(message) => {
                let key = keys::message(tenant, thread_id, id);
                store::put_json(store, &key, &message, PutMode::Overwrite).await?;
            }
            None => {
                let key = keys::item(tenant, thread_id, id);
                store::put_json(store, &key, item, PutMode::Overwrite).await?;
            }
        }
    }
    Ok(())
}

/// One item (stored value, not yet shaped), or `None`.
pub async fn get(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    item_id: &str,
) -> Result<Option<Value>, StoreError> {
    if !is_item_id(item_id) {
        return Ok(None);
    }
    let item_key = keys::item(tenant, thread_id, item_id);
    if !ids::is_valid(Kind::Message, item_id) {
        return Ok(match store.get(&item_key).await? {
            Some((bytes, _)) => Some(store::parse_json::<Value>(&item_key, &bytes)?),
            None => None,
        });
    }
    // A `msg_` item is a thread message or (system, developer, ...) a JSON item.
    let message_key = keys::message(tenant, thread_id, item_id);
    let found = store
        .get_many(&[message_key.clone(), item_key.clone()])
        .await?;
    let mut found = found.into_iter();
    if let Some(Some((bytes, _))) = found.next() {
        let m: Message = store::parse_json(&message_key, &bytes)?;
        return Ok(Some(message_item(&m)));
    }
    if let Some(Some((bytes, _))) = found.next() {
        return Ok(Some(store::parse_json::<Value>(&item_key, &bytes)?));
    }
    Ok(None)
}

/// Deletes one item; `Ok(false)` when there was none.
pub async fn delete(
    store: &dyn Store,
    tenant: &str,
    thread_id: &str,
    item_id: &str,
) -> Result<bool, StoreError> {
    if !is_item_id(item_id) {
        return Ok(false);
    }
    if ids::is_valid(Kind::Message, item_id)
        && store
            .delete(&keys::message(tenant, thread_id, item_id))
            .await?
    {
        return Ok(true);
    }
    store.delete(&keys::item(tenant, thread_id, item_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::values::AttachmentTool;

    fn message(role: &str, content: Vec<ContentPart>, attachments: Vec<Attachment>) -> Message {
        Message {
            id: ids::new_id(Kind::Message),
            object: "thread.message".into(),
            created_at: 1_700_000_000,
            thread_id: "thread_x".into(),
            status: MessageStatus::Completed,
            incomplete_details: None,
            completed_at: Some(1_700_000_000),
            incomplete_at: None,
            role: role.into(),
            content,
            assistant_id: None,
            run_id: None,
            attachments,
            metadata: Default::default(),
        }
    }

    #[test]
    fn a_user_message_becomes_input_parts_and_back() {
        let m = message(
            "user",
            vec![
                super::super::values::text_part("hello".into()),
                ContentPart::ImageFile {
                    image_file: ImageFile {
                        file_id: "file-abc".into(),
                        detail: Some("low".into()),
                    },
                },
                ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url: "https://example.com/a.png".into(),
                        detail: None,
                    },
                },
            ],
            vec![Attachment {
                file_id: "file-doc".into(),
                tools: vec![AttachmentTool::FileSearch {}],
            }],
        );
        let item = message_item(&m);
        assert_eq!(
            item,
            json!({
                "type": "message", "id": m.id, "status": "completed", "role": "user",
                "content": [
                    {"type": "input_text", "text": "hello"},
                    {"type": "input_image", "file_id": "file-abc", "detail": "low", "image_url": null},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
                    {"type": "input_file", "file_id": "file-doc"},
                ]
            })
        );
        let back = message_from_item(&item, "conv_y", 1_800_000_000).unwrap();
        assert_eq!(back.id, m.id);
        assert_eq!(back.thread_id, "conv_y");
        assert_eq!(back.created_at, 1_800_000_000);
        assert_eq!(back.completed_at, Some(1_800_000_000));
        assert_eq!(back.role, "user");
        assert_eq!(back.content[0], m.content[0]);
        assert_eq!(back.content[1], m.content[1]);
        assert_eq!(
            back.content[2],
            ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: "https://example.com/a.png".into(),
                    detail: Some("auto".into()),
                },
            }
        );
        assert_eq!(back.attachments[0].file_id, "file-doc");
        assert!(back.run_id.is_none() && back.assistant_id.is_none());
        // And once more: a stable round trip.
        assert_eq!(message_item(&back), item);
    }

    #[test]
    fn an_assistant_message_becomes_output_text_with_converted_annotations() {
        let m = message(
            "assistant",
            vec![
                ContentPart::Text {
                    text: TextContent {
                        value: "see [1] and link".into(),
                        annotations: vec![
                            json!({"type": "file_citation", "text": "[1]", "start_index": 4,
                                   "end_index": 7, "file_citation": {"file_id": "file-a"}}),
                            json!({"type": "file_path", "text": "sandbox:/mnt/data/x",
                                   "start_index": 12, "end_index": 16,
                                   "file_path": {"file_id": "file-b"}}),
                        ],
                    },
                },
                ContentPart::Refusal {
                    refusal: "no".into(),
                },
            ],
            vec![],
        );
        let item = message_item(&m);
        assert_eq!(
            item["content"],
            json!([
                {"type": "output_text", "text": "see [1] and link", "logprobs": [], "annotations": [
                    {"type": "file_citation", "file_id": "file-a", "filename": "", "index": 4},
                    {"type": "file_path", "file_id": "file-b", "index": 12},
                ]},
                {"type": "refusal", "refusal": "no"},
            ])
        );
        let back = message_from_item(&item, "thread_x", 5).unwrap();
        assert_eq!(back.role, "assistant");
        let ContentPart::Text { text } = &back.content[0] else {
            panic!("{:?}", back.content)
        };
        assert_eq!(text.value, "see [1] and link");
        assert_eq!(text.annotations[0]["file_citation"]["file_id"], "file-a");
        assert_eq!(text.annotations[0]["start_index"], 4);
        assert_eq!(text.annotations[1]["file_path"]["file_id"], "file-b");
        assert_eq!(back.content[1], m.content[1]);
        assert_eq!(message_item(&back)["content"], item["content"]);
    }

    #[test]
    fn items_a_message_cannot_hold_stay_items() {
        let id = ids::new_id(Kind::Message);
        let not = |item: Value| assert!(message_from_item(&item, "t", 1).is_none(), "{item}");
        not(json!({"type": "message", "id": id, "role": "system",
                   "content": [{"type": "input_text", "text": "be brief"}]}));
        not(json!({"type": "message", "id": id, "role": "developer", "content": []}));
        not(
            json!({"type": "function_call", "id": ids::new_id(Kind::FunctionCall),
                   "call_id": "call_1", "name": "f", "arguments": "{}"}),
        );
        not(json!({"type": "message", "id": id, "role": "user",
                   "content": [{"type": "input_file", "file_url": "https://x/y.pdf"}]}));
        not(json!({"type": "message", "id": id, "role": "user",
                   "content": [{"type": "input_file", "file_id": "file-a", "filename": "a.pdf"}]}));
        not(
            json!({"type": "message", "id": id, "role": "assistant", "content": [
            {"type": "output_text", "text": "x", "annotations": [
                {"type": "url_citation", "url": "https://x", "title": "t",
                 "start_index": 0, "end_index": 1}]}]}),
        );
        not(json!({"type": "message", "id": "msg_short", "role": "user", "content": []}));
        let ok = json!({"type": "message", "id": id, "role": "user", "status": "incomplete",
                        "content": [{"type": "input_text", "text": "hi"}]});
        let m = message_from_item(&ok, "t", 9).unwrap();
        assert_eq!(m.status, MessageStatus::Incomplete);
        assert_eq!(m.incomplete_at, Some(9));
        assert_eq!(m.completed_at, None);
    }

    #[test]
    fn shaping_hides_what_include_does_not_ask_for() {
        let fs = json!({"type": "file_search_call", "id": "fs_1", "status": "completed",
                        "queries": ["q"], "results": [{"file_id": "file-a"}], "_internal": 1});
        let shaped = shape_item(fs.clone(), &[]);
        assert_eq!(shaped["results"], Value::Null);
        assert!(shaped.get("_internal").is_none());
        let shaped = shape_item(fs, &[INCLUDE_FILE_SEARCH_RESULTS.to_string()]);
        assert_eq!(shaped["results"][0]["file_id"], "file-a");
        let ci = json!({"type": "code_interpreter_call", "id": "ci_1", "code": "1",
                        "outputs": [{"type": "logs", "logs": "1"}]});
        assert_eq!(shape_item(ci.clone(), &[])["outputs"], Value::Null);
        assert_eq!(
            shape_item(ci, &[INCLUDE_CODE_OUTPUTS.to_string()])["outputs"][0]["logs"],
            "1"
        );
        let msg = json!({"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "x", "annotations": [], "logprobs": [{"token": "x"}]}]});
        assert_eq!(
            shape_item(msg.clone(), &[])["content"][0]["logprobs"],
            json!([])
        );
        assert_eq!(
            shape_item(msg, &[INCLUDE_LOGPROBS.to_string()])["content"][0]["logprobs"][0]["token"],
            "x"
        );
        let rs =
            json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"});
        assert!(shape_item(rs.clone(), &[])
            .get("encrypted_content")
            .is_none());
        assert_eq!(
            shape_item(rs, &[INCLUDE_ENCRYPTED_REASONING.to_string()])["encrypted_content"],
            "e"
        );
    }

    #[tokio::test]
    async fn messages_and_items_list_in_creation_order_and_page_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::open(dir.path()).unwrap();
        let thread = ids::new_id(Kind::Conversation);
        let mut items = Vec::new();
        for i in 0..5 {
            items.push(json!({"type": "message", "id": ids::new_id(Kind::Message),
                "status": "completed", "role": "user",
                "content": [{"type": "input_text", "text": format!("m{i}")}]}));
            items.push(
                json!({"type": "function_call", "id": ids::new_id(Kind::FunctionCall),
                "status": "completed", "call_id": format!("call_{i}"), "name": "f",
                "arguments": "{}"}),
            );
        }
        items.push(json!({"type": "message", "id": ids::new_id(Kind::Message),
            "status": "completed", "role": "system",
            "content": [{"type": "input_text", "text": "sys"}]}));
        put_items(&store, "t1", &thread, &items).await.unwrap();
        // A repeat writes the same objects again.
        put_items(&store, "t1", &thread, &items).await.unwrap();
        // Five messages are thread messages, the system message and the calls are items.
        assert_eq!(
            store::list_all(&store, &keys::messages("t1", &thread))
                .await
                .unwrap()
                .len(),
            5
        );
        let all = list(&store, "t1", &thread).await.unwrap();
        let want: Vec<&Value> = items.iter().map(|i| &i["id"]).collect();
        let got: Vec<&Value> = all.iter().map(|i| &i["id"]).collect();
        assert_eq!(got, want);
        assert_eq!(all[0], items[0]);
        assert_eq!(all[10], items[10]);

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let q = PageQuery {
                limit: 3,
                descending: true,
                after: after.clone(),
            };
            let (page, more) = list_page(&store, "t1", &thread, &q).await.unwrap();
            seen.extend(page.iter().map(|i| i["id"].clone()));
            after = page.last().map(|i| i["id"].as_str().unwrap().to_string());
            if !more {
                break;
            }
        }
        let mut reversed: Vec<Value> = want.into_iter().cloned().collect();
        reversed.reverse();
        assert_eq!(seen, reversed);

        let first = items[2]["id"].as_str().unwrap().to_string();
        let q = PageQuery {
            limit: 2,
            descending: false,
            after: Some(first),
        };
        let (page, more) = list_page(&store, "t1", &thread, &q).await.unwrap();
        assert!(more);
        assert_eq!(page[0]["id"], items[3]["id"]);
        assert_eq!(page[1]["id"], items[4]["id"]);

        let sys = items[10]["id"].as_str().unwrap();
        assert_eq!(
            get(&store, "t1", &thread, sys).await.unwrap(),
            Some(items[10].clone())
        );
        let m0 = items[0]["id"].as_str().unwrap();
        assert_eq!(
            get(&store, "t1", &thread, m0).await.unwrap(),
            Some(items[0].clone())
        );
        assert!(delete(&store, "t1", &thread, m0).await.unwrap());
        assert!(delete(&store, "t1", &thread, sys).await.unwrap());
        assert!(!delete(&store, "t1", &thread, sys).await.unwrap());
        assert_eq!(get(&store, "t1", &thread, m0).await.unwrap(), None);
        assert_eq!(list(&store, "t1", &thread).await.unwrap().len(), 9);
    }

    #[tokio::test]
    async fn a_runs_own_messages_can_be_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::open(dir.path()).unwrap();
        let thread = ids::new_id(Kind::Conversation);
        let question = message(
            "user",
            vec![super::super::values::text_part("q".into())],
            vec![],
        );
        let mut answer = message("assistant", vec![], vec![]);
        answer.run_id = Some("resp_own".into());
        let mut earlier = message("assistant", vec![], vec![]);
        earlier.run_id = Some("resp_earlier".into());
        for m in [&question, &answer, &earlier] {
            let key = keys::message("t1", &thread, &m.id);
            store::put_json(&store, &key, m, PutMode::Create)
                .await
                .unwrap();
        }
        let call = json!({"type": "function_call", "id": ids::new_id(Kind::FunctionCall),
                          "status": "completed", "call_id": "c", "name": "f", "arguments": "{}"});
        put_items(&store, "t1", &thread, std::slice::from_ref(&call))
            .await
            .unwrap();
        let ids_of = |items: Vec<Value>| -> Vec<Value> {
            items.into_iter().map(|i| i["id"].clone()).collect()
        };
        assert_eq!(
            ids_of(list(&store, "t1", &thread).await.unwrap()),
            [&question.id, &answer.id, &earlier.id]
                .iter()
                .map(|id| json!(id))
                .chain([call["id"].clone()])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            ids_of(
                list_excluding_run(&store, "t1", &thread, "resp_own")
                    .await
                    .unwrap()
            ),
            vec![json!(question.id), json!(earlier.id), call["id"].clone()]
        );
    }

    #[tokio::test]
    async fn at_the_same_time_a_message_lists_before_other_items() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::open(dir.path()).unwrap();
        let thread = ids::new_id(Kind::Conversation);
        // A turn's message and its call share their time (`response::call_item_id`); the
        // call's id sorts first as a string.
        let micros = ids::created_micros(&ids::new_id(Kind::Message)).unwrap();
        let call_id = ids::keyed_id(Kind::FunctionCall, micros, "call");
        let message_id = ids::keyed_id(Kind::Message, micros, "message");
        assert!(call_id < message_id);
        let items = [
            json!({"type": "function_call", "id": call_id, "status": "completed",
                   "call_id": "call_1", "name": "f", "arguments": "{}"}),
            json!({"type": "message", "id": message_id, "status": "completed",
                   "role": "assistant", "content": [
                       {"type": "output_text", "text": "Let me look.", "annotations": []}]}),
        ];
        put_items(&store, "t1", &thread, &items).await.unwrap();
        let listed: Vec<Value> = list(&store, "t1", &thread)
            .await
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        assert_eq!(listed, vec![json!(message_id), json!(call_id)]);
        // Pages agree, both ways.
        for (descending, after, want) in [
            (false, &message_id, &call_id),
            (true, &call_id, &message_id),
        ] {
            let q = PageQuery {
                limit: 5,
                descending,
                after: Some(after.clone()),
            };
            let (page, more) = list_page(&store, "t1", &thread, &q).await.unwrap();
            assert!(!more);
            assert_eq!(page.len(), 1);
            assert_eq!(page[0]["id"], want.as_str());
        }
    }
}
