//! A response's stream: the engine reports a turn as Assistants events (`EventSink`); this
//! sink translates them into the Responses events, numbered from 0 (`sequence_number`), in
//! the order the SDKs' stream accumulators require (protocol notes §9): `response.created`
//! first, an item added before anything names its `output_index`, a content part added
//! before its deltas, every item done before `response.completed`. One engine, two
//! translations of what it reports.

use crate::engine::events::EventSink;
use crate::ids::Kind;
use crate::model::message::Message;
use crate::model::response::{self, call_item_id};
use crate::model::run::RunRecord;
use crate::model::values::ContentPart;
use serde_json::{json, Value};

/// The message item being streamed.
struct OpenMessage {
    id: String,
    index: usize,
    text: String,
    annotations: usize,
    part_open: bool,
}

/// A call of the tool step being streamed.
struct OpenCall {
    index: usize,
    item: Value,
}

pub struct ResponseStream<S: EventSink> {
    out: S,
    seq: u64,
    response_id: String,
    include: Vec<String>,
    /// The response as last announced (for lifecycle events).
    snapshot: Value,
    output: Vec<Value>,
    message: Option<OpenMessage>,
    step_id: String,
    calls: Vec<Option<OpenCall>>,
    ended: bool,
}

impl<S: EventSink> ResponseStream<S> {
    /// Starts the stream of `record`: `response.created` (and `response.queued` for a
    /// background response, which waits in the queue first).
    pub fn open(out: S, record: &RunRecord, include: Vec<String>) -> Self {
        let snapshot = response::object(record, &include).unwrap_or(Value::Null);
        let mut stream = ResponseStream {
            out,
            seq: 0,
            response_id: record.run.id.clone(),
            include,
            snapshot,
            output: Vec::new(),
            message: None,
            step_id: String::new(),
            calls: Vec::new(),
            ended: false,
        };
        let background = record.response.as_ref().is_some_and(|f| f.background);
        if !background {
            // A foreground response is generating from the start.
            stream.snapshot["status"] = json!("in_progress");
        }
        stream.lifecycle("response.created");
        if background {
            stream.lifecycle("response.queued");
        }
        stream
    }

    /// Whether the response's terminal event was sent (or the stream ended otherwise).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The flat `error` event (the stream broke off: the response goes on in the queue).
    pub fn error(&mut self, message: &str) {
        self.send(
            "error",
            json!({"code": "server_error", "message": message, "param": null}),
        );
        self.ended = true;
    }

    fn send(&mut self, name: &'static str, mut data: Value) {
        if self.ended {
            return;
        }
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.out.emit(name, data);
    }

    fn lifecycle(&mut self, name: &'static str) {
        let mut snapshot = self.snapshot.clone();
        snapshot["output"] = Value::Array(self.output.clone());
        self.send(name, json!({ "response": snapshot }));
    }

    /// The record an engine event carries (a response's run events carry the record).
    fn record_of(data: &Value) -> Option<RunRecord> {
        serde_json::from_value(data.clone()).ok()
    }

    fn add_item(&mut self, item: Value) -> usize {
        let index = self.output.len();
        self.output.push(item.clone());
        self.send(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        index
    }

    fn done_item(&mut self, index: usize, item: Value) {
        if let Some(slot) = self.output.get_mut(index) {
            *slot = item.clone();
        }
        self.send(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
    }

    fn open_part(&mut self) {
        let Some(m) = self.message.as_mut() else {
            return;
        };
        if m.part_open {
            return;
        }
        m.part_open = true;
        let (id, index) = (m.id.clone(), m.index);
        self.send(
            "response.content_part.added",
            json!({"item_id": id, "output_index": index, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
        );
    }

    fn message_created(&mut self, data: &Value) {
        let id = data["id"].as_str().unwrap_or_default().to_string();
        let item = json!({"id": id, "type": "message", "status": "in_progress",
                          "role": "assistant", "content": []});
        let index = self.add_item(item);
        self.message = Some(OpenMessage {
            id,
            index,
            text: String::new(),
            annotations: 0,
            part_open: false,
        });
    }

    fn message_delta(&mut self, data: &Value) {
        let parts = data["delta"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for part in parts.iter().filter(|p| p["type"] == "text") {
            if let Some(delta) = part["text"]["value"].as_str().filter(|d| !d.is_empty()) {
                self.open_part();
                let Some(m) = self.message.as_mut() else {
                    return;
                };
                m.text.push_str(delta);
                let (id, index) = (m.id.clone(), m.index);
                self.send(
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                           "delta": delta, "logprobs": []}),
                );
            }
            for a in part["text"]["annotations"].as_array().into_iter().flatten() {
                let Some(annotation) = response::annotation(a) else {
                    continue;
                };
                self.open_part();
                let Some(m) = self.message.as_mut() else {
                    return;
                };
                let n = m.annotations;
                m.annotations += 1;
                let (id, index) = (m.id.clone(), m.index);
                self.send(
                    "response.output_text.annotation.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                           "annotation_index": n, "annotation": annotation}),
                );
            }
        }
    }

    fn message_done(&mut self, data: &Value) {
        let Ok(message) = serde_json::from_value::<Message>(data.clone()) else {
            return;
        };
        if self.message.as_ref().map(|m| m.id.as_str()) != Some(message.id.as_str()) {
            return;
        }
        let item = response::message_item(&message.id, message.status.as_str(), &message.content);
        let index = self.message.as_ref().map(|m| m.index).unwrap_or(0);
        let id = message.id.clone();
        for part in &message.content {
            match part {
                ContentPart::Text { .. } => {
                    self.open_part();
                    let final_part = item["content"][0].clone();
                    self.send(
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "text": final_part["text"], "logprobs": []}),
                    );
                    self.send(
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "part": final_part}),
                    );
                }
                ContentPart::Refusal { refusal } => {
                    let part = json!({"type": "refusal", "refusal": ""});
                    self.send(
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                    );
                    self.send(
                        "response.refusal.delta",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "delta": refusal}),
                    );
                    self.send(
                        "response.refusal.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "refusal": refusal}),
                    );
                    self.send(
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                               "part": {"type": "refusal", "refusal": refusal}}),
                    );
                }
                ContentPart::ImageFile { .. } | ContentPart::ImageUrl { .. } => {}
            }
        }
        self.done_item(index, item);
        self.message = None;
    }

    fn step_created(&mut self, data: &Value) {
        if data["step_details"]["type"] == "tool_calls" {
            self.step_id = data["id"].as_str().unwrap_or_default().to_string();
            self.calls.clear();
        }
    }

    fn item_id(&self, kind: Kind, call_id: &str) -> String {
        call_item_id(kind, &self.response_id, &self.step_id, call_id)
    }

    fn step_delta(&mut self, data: &Value) {
        let calls = data["delta"]["step_details"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for call in calls {
            let n = call["index"].as_u64().unwrap_or(0) as usize;
            while self.calls.len() <= n {
                self.calls.push(None);
            }
            if self.calls[n].is_none() {
                self.start_call(n, &call);
            }
            let Some(open) = self.calls[n].as_ref() else {
                continue;
            };
            let (id, index) = (open.item["id"].clone(), open.index);
            match call["type"].as_str() {
                Some("function") => {
                    if let Some(d) = call["function"]["arguments"]
                        .as_str()
                        .filter(|d| !d.is_empty())
                    {
                        self.send(
                            "response.function_call_arguments.delta",
                            json!({"item_id": id, "output_index": index, "delta": d}),
                        );
                    }
                }
                Some("code_interpreter") => {
                    if let Some(d) = call["code_interpreter"]["input"]
                        .as_str()
                        .filter(|d| !d.is_empty())
                    {
                        self.send(
                            "response.code_interpreter_call_code.delta",
                            json!({"item_id": id, "output_index": index, "delta": d}),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn start_call(&mut self, n: usize, call: &Value) {
        let call_id = call["id"].as_str().unwrap_or_default();
        let item = match call["type"].as_str() {
            Some("function") => json!({
                "id": self.item_id(Kind::FunctionCall, call_id), "type": "function_call",
                "status": "in_progress", "call_id": call_id,
                "name": call["function"]["name"], "arguments": "",
            }),
            Some("file_search") => json!({
                "id": self.item_id(Kind::FileSearchCall, call_id), "type": "file_search_call",
                "status": "in_progress", "queries": [], "results": null,
            }),
            Some("code_interpreter") => json!({
                "id": self.item_id(Kind::CodeInterpreterCall, call_id),
                "type": "code_interpreter_call", "status": "in_progress",
                "container_id": response::container_id(&self.response_id),
                "code": "", "outputs": null,
            }),
            _ => return,
        };
        let id = item["id"].clone();
        let kind = item["type"].as_str().unwrap_or_default().to_string();
        let index = self.add_item(item.clone());
        let at = json!({"item_id": id, "output_index": index});
        match kind.as_str() {
            "file_search_call" => {
                self.send("response.file_search_call.in_progress", at.clone());
                self.send("response.file_search_call.searching", at);
            }
            "code_interpreter_call" => {
                self.send("response.code_interpreter_call.in_progress", at);
            }
            _ => {}
        }
        self.calls[n] = Some(OpenCall { index, item });
    }

    fn step_done(&mut self, data: &Value) {
        if data["step_details"]["type"] != "tool_calls" {
            return;
        }
        let details = data["step_details"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (n, call) in details.iter().enumerate() {
            if self.calls.get(n).is_none_or(Option::is_none) {
                self.start_call(n, call);
            }
            let Some(open) = self.calls.get_mut(n).and_then(Option::take) else {
                continue;
            };
            let (id, index) = (open.item["id"].clone(), open.index);
            let at = json!({"item_id": id, "output_index": index});
            let mut item = open.item;
            item["status"] = json!("completed");
            match call["type"].as_str() {
                Some("function") => {
                    let (name, arguments) =
                        (&call["function"]["name"], &call["function"]["arguments"]);
                    item["arguments"] = arguments.clone();
                    self.send(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments}),
                    );
                }
                Some("file_search") => {
                    let results: Vec<Value> = call["file_search"]["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            json!({"file_id": r["file_id"], "filename": r["file_name"],
                                        "score": r["score"], "text": r["content"][0]["text"],
                                        "attributes": {}})
                        })
                        .collect();
                    item["results"] = json!(results);
                    item = response::shape_item(item, &self.include);
                    self.send("response.file_search_call.completed", at);
                }
                Some("code_interpreter") => {
                    let code = call["code_interpreter"]["input"].clone();
                    item["code"] = code.clone();
                    self.send(
                        "response.code_interpreter_call_code.done",
                        json!({"item_id": id, "output_index": index, "code": code}),
                    );
                    self.send("response.code_interpreter_call.interpreting", at.clone());
                    self.send("response.code_interpreter_call.completed", at);
                }
                _ => {}
            }
            self.done_item(index, item);
        }
    }

    fn ended_with(&mut self, name: &'static str, data: &Value) {
        if let Some(record) = Self::record_of(data) {
            if let Some(object) = response::object(&record, &self.include) {
                self.snapshot = object;
            }
        }
        let snapshot = self.snapshot.clone();
        self.send(name, json!({ "response": snapshot }));
        self.ended = true;
    }
}

impl<S: EventSink> EventSink for ResponseStream<S> {
    fn emit(&mut self, event: &'static str, data: Value) {
        match event {
            "thread.run.in_progress" => {
                self.snapshot["status"] = json!("in_progress");
                self.lifecycle("response.in_progress");
            }
            "thread.message.created" => self.message_created(&data),
            "thread.message.delta" => self.message_delta(&data),
            "thread.message.completed" | "thread.message.incomplete" => self.message_done(&data),
            "thread.run.step.created" => self.step_created(&data),
            "thread.run.step.delta" => self.step_delta(&data),
            "thread.run.step.completed" => self.step_done(&data),
            "thread.run.completed" | "thread.run.requires_action" => {
                self.ended_with("response.completed", &data)
            }
            "thread.run.incomplete" => self.ended_with("response.incomplete", &data),
            "thread.run.failed" | "thread.run.expired" => self.ended_with("response.failed", &data),
            // There is no `response.cancelled` event: the stream ends.
            "thread.run.cancelled" => self.ended = true,
            _ => {}
        }
    }
}
