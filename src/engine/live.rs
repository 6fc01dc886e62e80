//! What one attempt of a turn has shown so far, so that stream events come in the order
//! clients require and whatever was opened is closed: a message (and its
//! `message_creation` step) opens on the first text, a `tool_calls` step on the first call.
//! The same tracking runs for queued turns (with a discarding sink), so a queued and a
//! streamed run store the same objects.

use super::events::EventSink;
use super::partial_json::{string_field_prefix, FieldStream};
use super::{citations, code_interpreter, file_search};
use crate::llm::{Delta, ToolCall, Usage};
use crate::model::message::{Message, MessageStatus};
use crate::model::now;
use crate::model::run::{
    answer_message_id, message_step_id, tool_step_id, RunRecord, ServerCall, ToolRound,
};
use crate::model::step::{shape_step, RunStep, StepStatus};
use crate::model::values::{text_part, ContentPart, Metadata};
use serde_json::{json, Value};

pub struct LiveTurn<'a> {
    pub sink: &'a mut dyn EventSink,
    run_id: String,
    thread_id: String,
    assistant_id: String,
    seq: u32,
    /// The model call this is (from 0): ids differ per attempt.
    pub attempt: u32,
    /// Text streamed by this attempt.
    pub text: String,
    /// Tool calls streamed by this attempt (possibly partial).
    pub calls: Vec<ToolCall>,
    message_open: bool,
    tool_step_open: bool,
    /// A tool step that began while a message was open: announced once the message is
    /// closed (clients allow one open step at a time), with its deltas.
    pending_tool_step: Option<Value>,
    pending_deltas: Vec<Value>,
    /// The name `file_search` has for the model (its calls stream as `file_search`).
    search_fn: Option<&'static str>,
    /// The name `code_interpreter` has for the model (its calls stream as
    /// `code_interpreter`, the code as `input` deltas while it arrives).
    code_fn: Option<&'static str>,
    /// The code of each call so far, decoded from its streamed arguments.
    code_streams: Vec<FieldStream>,
    /// Figures the run's code drew since its last message: the message's first parts.
    images: Vec<String>,
    include_search_content: bool,
    /// The run's earlier search results, for citation annotations.
    sources: Vec<Vec<String>>,
    /// Text before this byte offset has been scanned for citation markers.
    cited_upto: usize,
    annotations_sent: usize,
}

/// How an attempt's open message and steps end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Stored and complete.
    Done,
    /// The model's answer broke off (the run retries or fails).
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl<'a> LiveTurn<'a> {
    pub fn new(record: &RunRecord, sink: &'a mut dyn EventSink) -> Self {
        LiveTurn {
            sink,
            run_id: record.run.id.clone(),
            thread_id: record.run.thread_id.clone(),
            assistant_id: record.run.assistant_id.clone(),
            seq: record.seq,
            attempt: 0,
            text: String::new(),
            calls: Vec::new(),
            message_open: false,
            tool_step_open: false,
            pending_tool_step: None,
            pending_deltas: Vec::new(),
            search_fn: file_search::function_name(record),
            code_fn: code_interpreter::function_name(record),
            code_streams: Vec::new(),
            images: code_interpreter::outputs_so_far(record).1,
            include_search_content: record.include_search_content,
            sources: file_search::sources(record),
            cited_upto: 0,
            annotations_sent: 0,
        }
    }

    /// The run's earlier search results, for citation annotations.
    pub fn sources(&self) -> &[Vec<String>] {
        &self.sources
    }

    /// Whether `name` is a tool the server runs itself.
    pub fn is_server_tool(&self, name: &str) -> bool {
        self.search_fn == Some(name) || self.code_fn == Some(name)
    }

    /// How a built-in call shows in a step while it has not run: its tool and what is known.
    fn server_call_value(&self, name: &str, id: &str, arguments: &str) -> Value {
        if self.code_fn == Some(name) {
            let input = string_field_prefix(arguments, "code").unwrap_or_default();
            json!({"id": id, "type": "code_interpreter",
                   "code_interpreter": {"input": input, "outputs": []}})
        } else {
            json!({"id": id, "type": "file_search", "file_search": {}})
        }
    }

    /// The index of the message's text part (after its figures).
    fn text_index(&self) -> usize {
        self.images.len()
    }

    /// A step as clients see it (search result content only when asked for).
    fn step_value(&self, step: &RunStep) -> Value {
        shape_step(
            serde_json::to_value(step).unwrap_or(Value::Null),
            self.include_search_content,
        )
    }

    pub fn message_id(&self) -> String {
        answer_message_id(&self.run_id, self.seq, self.attempt)
    }
    pub fn message_step_id(&self) -> String {
        message_step_id(&self.run_id, self.seq, self.attempt)
    }
    pub fn tool_step_id(&self) -> String {
        tool_step_id(&self.run_id, self.seq, self.attempt)
    }

    pub fn message_opened(&self) -> bool {
        self.message_open
    }
    pub fn tool_step_opened(&self) -> bool {
        self.tool_step_open
    }

    /// Starts the next attempt with fresh ids and nothing open.
    pub fn next_attempt(&mut self) {
        self.attempt += 1;
        self.text.clear();
        self.calls.clear();
        self.message_open = false;
        self.tool_step_open = false;
        self.pending_tool_step = None;
        self.pending_deltas.clear();
        self.code_streams.clear();
        self.cited_upto = 0;
        self.annotations_sent = 0;
    }

    fn step_object(&self, id: String, details: Value, status: StepStatus) -> RunStep {
        RunStep {
            id,
            object: "thread.run.step".into(),
            created_at: now(),
            assistant_id: self.assistant_id.clone(),
            thread_id: self.thread_id.clone(),
            run_id: self.run_id.clone(),
            step_type: details["type"].as_str().unwrap_or_default().to_string(),
            status,
            step_details: details,
            last_error: None,
            expired_at: None,
            cancelled_at: None,
            failed_at: None,
            completed_at: None,
            metadata: Metadata::new(),
            usage: None,
        }
    }

    /// The message of this attempt with `content` and `status`.
    pub fn message(
        &self,
        content: Vec<ContentPart>,
        status: MessageStatus,
        reason: Option<&str>,
    ) -> Message {
        let at = now();
        Message {
            id: self.message_id(),
            object: "thread.message".into(),
            created_at: at,
            thread_id: self.thread_id.clone(),
            status,
            incomplete_details: reason.map(|r| json!({"reason": r})),
            completed_at: (status == MessageStatus::Completed).then_some(at),
            incomplete_at: (status == MessageStatus::Incomplete).then_some(at),
            role: "assistant".into(),
            content,
            // A response has no assistant: its messages in a thread show none.
            assistant_id: (!self.assistant_id.is_empty()).then(|| self.assistant_id.clone()),
            run_id: Some(self.run_id.clone()),
            attachments: Vec::new(),
            metadata: Metadata::new(),
        }
    }

    /// The `message_creation` step of this attempt.
    pub fn message_step(&self, status: StepStatus, usage: Option<Usage>) -> RunStep {
        let mut step = self.step_object(
            self.message_step_id(),
            json!({"type": "message_creation", "message_creation": {"message_id": self.message_id()}}),
            status,
        );
        step.usage = usage;
        step.stamp(now());
        step
    }

    /// The `tool_calls` step of this attempt with `details`.
    pub fn tool_step(&self, details: Value, status: StepStatus, usage: Option<Usage>) -> RunStep {
        let mut step = self.step_object(self.tool_step_id(), details, status);
        step.usage = usage;
        step.stamp(now());
        step
    }

    /// Announces the message and its step (if not yet).
    pub fn open_message(&mut self) {
        if self.message_open {
            return;
        }
        let step = self.message_step(StepStatus::InProgress, None);
        let step = serde_json::to_value(&step).unwrap_or(Value::Null);
        self.sink.emit("thread.run.step.created", step.clone());
        self.sink.emit("thread.run.step.in_progress", step);
        let mut message = self.message(Vec::new(), MessageStatus::InProgress, None);
        message.completed_at = None;
        let message = serde_json::to_value(&message).unwrap_or(Value::Null);
        self.sink.emit("thread.message.created", message.clone());
        self.sink.emit("thread.message.in_progress", message);
        for (index, file_id) in self.images.iter().enumerate() {
            self.sink.emit(
                "thread.message.delta",
                json!({"id": self.message_id(), "object": "thread.message.delta", "delta": {
                    "content": [{"index": index, "type": "image_file", "image_file": {"file_id": file_id}}],
                }}),
            );
        }
        self.message_open = true;
    }

    /// Announces the tool step (if not yet); held back while a message is open.
    pub fn open_tool_step(&mut self) {
        if self.tool_step_open {
            return;
        }
        let step = self.tool_step(
            json!({"type": "tool_calls", "tool_calls": []}),
            StepStatus::InProgress,
            None,
        );
        let step = serde_json::to_value(&step).unwrap_or(Value::Null);
        if self.message_open {
            self.pending_tool_step = Some(step);
        } else {
            self.sink.emit("thread.run.step.created", step.clone());
            self.sink.emit("thread.run.step.in_progress", step);
        }
        self.tool_step_open = true;
    }

    pub fn delta(&mut self, delta: Delta) {
        match delta {
            Delta::Text(text) => {
                if self.tool_step_open {
                    // Text after tool calls: kept with the calls, not streamed as a message.
                    self.text.push_str(&text);
                    return;
                }
                self.open_message();
                self.text.push_str(&text);
                self.sink.emit(
                    "thread.message.delta",
                    json!({"id": self.message_id(), "object": "thread.message.delta", "delta": {
                        "content": [{"index": self.text_index(), "type": "text", "text": {"value": text, "annotations": []}}],
                    }}),
                );
                self.stream_citations();
            }
            Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                self.open_tool_step();
                while self.calls.len() <= index {
                    self.calls.push(ToolCall::default());
                }
                let slot = &mut self.calls[index];
                if let Some(id) = &id {
                    slot.id = id.clone();
                }
                if let Some(name) = &name {
                    slot.name.push_str(name);
                }
                slot.arguments.push_str(&arguments);
                let (slot_name, slot_id) = (slot.name.clone(), slot.id.clone());
                if self.code_fn == Some(slot_name.as_str()) {
                    // The code shows as it arrives, decoded from the `{"code": ...}` arguments.
                    if name.is_some() {
                        let head = json!({"index": index, "id": slot_id, "type": "code_interpreter",
                                          "code_interpreter": {"input": "", "outputs": []}});
                        self.step_delta(head);
                    }
                    while self.code_streams.len() <= index {
                        self.code_streams.push(FieldStream::default());
                    }
                    if let Some(new) = self.code_streams[index].push(&arguments, "code") {
                        self.step_delta(json!({"index": index, "type": "code_interpreter",
                                               "code_interpreter": {"input": new}}));
                    }
                    return;
                }
                let server = self.is_server_tool(&slot_name);
                let call = if server {
                    // A built-in call shows as its tool, announced once; its arguments are
                    // the engine's business ("always empty for now", as OpenAI streamed it).
                    if name.is_none() {
                        return;
                    }
                    json!({"index": index, "id": slot_id, "type": "file_search", "file_search": {}})
                } else {
                    let mut call = json!({"index": index, "type": "function", "function": {"arguments": arguments}});
                    if let Some(id) = id {
                        call["id"] = json!(id);
                    }
                    if let Some(name) = name {
                        call["function"]["name"] = json!(name);
                        call["function"]["output"] = Value::Null;
                    }
                    call
                };
                self.step_delta(call);
            }
        }
    }

    /// A `thread.run.step.delta` of the tool step with one call (held back with the step
    /// while a message is open).
    fn step_delta(&mut self, call: Value) {
        let delta = json!({"id": self.tool_step_id(), "object": "thread.run.step.delta", "delta": {
            "step_details": {"type": "tool_calls", "tool_calls": [call]},
        }});
        if self.pending_tool_step.is_some() {
            self.pending_deltas.push(delta);
        } else {
            self.sink.emit("thread.run.step.delta", delta);
        }
    }

    /// One delta per `code_interpreter` call of the round with its outputs (logs, images),
    /// sent once the engine has run the code and before the step completes.
    pub fn code_outputs(&mut self, round: &ToolRound) {
        for (index, call) in round.calls.iter().enumerate() {
            if let Some(ServerCall::CodeInterpreter { outputs, .. }) = &call.server {
                let outputs: Vec<Value> = outputs
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let mut o = o.clone();
                        o["index"] = json!(i);
                        o
                    })
                    .collect();
                self.step_delta(json!({"index": index, "type": "code_interpreter",
                                       "code_interpreter": {"outputs": outputs}}));
            }
        }
    }

    /// Announces citation markers completed by the latest text, as annotation deltas.
    fn stream_citations(&mut self) {
        let (found, settled) = citations::scan(&self.text, self.cited_upto, &self.sources);
        self.cited_upto = settled;
        for f in found {
            self.stream_annotation(f.annotation);
        }
    }

    /// Sends one annotation of the open message's text as a delta, numbered in the order
    /// sent (citations while the text arrives, `file_path` ones at the end).
    fn stream_annotation(&mut self, mut annotation: Value) {
        annotation["index"] = json!(self.annotations_sent);
        self.annotations_sent += 1;
        self.sink.emit(
            "thread.message.delta",
            json!({"id": self.message_id(), "object": "thread.message.delta", "delta": {
                "content": [{"index": self.text_index(), "type": "text", "text": {"annotations": [annotation]}}],
            }}),
        );
    }

    /// Ends the open message with its final (stored) form. Its `file_path` annotations
    /// (known once the answer is whole) are streamed first, after the citations.
    pub fn close_message(&mut self, message: &Message, step: &RunStep) {
        if !self.message_open {
            return;
        }
        for part in &message.content {
            let ContentPart::Text { text } = part else {
                continue;
            };
            for annotation in text.annotations.iter().filter(|a| a["type"] == "file_path") {
                self.stream_annotation(annotation.clone());
            }
        }
        let event = if message.status == MessageStatus::Incomplete {
            "thread.message.incomplete"
        } else {
            "thread.message.completed"
        };
        self.sink
            .emit(event, serde_json::to_value(message).unwrap_or(Value::Null));
        self.sink.emit(
            step.status.event(),
            serde_json::to_value(step).unwrap_or(Value::Null),
        );
        self.message_open = false;
        if let Some(step) = self.pending_tool_step.take() {
            self.sink.emit("thread.run.step.created", step.clone());
            self.sink.emit("thread.run.step.in_progress", step);
            for delta in std::mem::take(&mut self.pending_deltas) {
                self.sink.emit("thread.run.step.delta", delta);
            }
        }
    }

    /// Ends the open tool step with its final form (a stored step with outputs pending is
    /// left open: the run then waits in `requires_action`).
    pub fn close_tool_step(&mut self, step: &RunStep) {
        if !self.tool_step_open || step.status == StepStatus::InProgress {
            return;
        }
        let value = self.step_value(step);
        self.sink.emit(step.status.event(), value);
        self.tool_step_open = false;
    }

    /// The message and steps that end an attempt that did not complete (`how` is Failed or
    /// Cancelled), built from what was streamed: the caller stores them (Failed) and then
    /// calls `close_message` / `close_tool_step`.
    pub fn unfinished(
        &self,
        how: Close,
        error: &str,
    ) -> (Option<(Message, RunStep)>, Option<RunStep>) {
        let (step_status, reason) = match how {
            Close::Cancelled => (StepStatus::Cancelled, "run_cancelled"),
            _ => (StepStatus::Failed, "run_failed"),
        };
        let last_error =
            (how == Close::Failed).then(|| json!({"code": "server_error", "message": error}));
        let message = self.message_open.then(|| {
            let message = self.message(
                vec![text_part(self.text.clone())],
                MessageStatus::Incomplete,
                Some(reason),
            );
            let mut step = self.message_step(step_status, None);
            step.last_error = last_error.clone();
            (message, step)
        });
        let tool = self.tool_step_open.then(|| {
            let details = json!({"type": "tool_calls", "tool_calls": self.calls.iter().map(|c| {
                if self.is_server_tool(&c.name) {
                    self.server_call_value(&c.name, &c.id, &c.arguments)
                } else {
                    json!({
                        "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments, "output": null},
                    })
                }
            }).collect::<Vec<_>>()});
            let mut step = self.tool_step(details, step_status, None);
            step.last_error = last_error.clone();
            step
        });
        (message, tool)
    }
}
