//! Resumable streams (`GET /responses/{id}?stream=true[&starting_after=N]`) of background
//! responses created with `stream: true`. While such a response streams inside its
//! request, its events are also kept: a flusher writes what arrived every
//! `FLUSH_EVERY` as one chunk (`keys::response_events`, named by its first event's number).
//! A replay reads the chunks in order, sends the events after `starting_after`, and follows
//! new chunks until the terminal event. If the response ended without its stream (its turn
//! was taken over by another instance), the replay ends it from the stored response.

use super::Reply;
use crate::api::events::{channel, ChannelSink};
use crate::context::Ctx;
use crate::engine::events::EventSink;
use crate::error::ApiError;
use crate::model::now_ms;
use crate::model::response;
use crate::model::run::{RunRecord, RunStatus};
use crate::shutdown::Shutdown;
use crate::store::{self, keys, PutMode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FLUSH_EVERY: Duration = Duration::from_millis(200);
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a replay follows a response that does not end (it is bounded like any work).
const LONGEST_REPLAY: Duration = Duration::from_secs(30 * 60);
/// A response that ended this long ago without its stream's last event has lost it.
const SETTLED_MS: u64 = 2_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEvent {
    event: String,
    data: Value,
}

/// The events of one stream not yet written.
#[derive(Default)]
pub struct EventLog {
    pending: Mutex<Vec<StoredEvent>>,
    done: AtomicBool,
}

impl EventLog {
    fn take(&self) -> Vec<StoredEvent> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *pending)
    }

    /// The stream ended: the flusher writes what is left and stops.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// A sink that sends each event on and, when it has a log, keeps it there too.
pub struct Recorded<S: EventSink> {
    pub out: S,
    pub log: Option<Arc<EventLog>>,
}

impl<S: EventSink> EventSink for Recorded<S> {
    fn emit(&mut self, event: &'static str, data: Value) {
        if let Some(log) = &self.log {
            log.pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(StoredEvent {
                    event: event.to_string(),
                    data: data.clone(),
                });
        }
        self.out.emit(event, data);
    }
}

/// Writes `log` to the store every `FLUSH_EVERY` until it is finished (then once more).
pub fn spawn_flusher(shutdown: &Shutdown, ctx: &Ctx, response_id: &str, log: Arc<EventLog>) {
    let prefix = keys::response_events(&ctx.tenant, response_id);
    let store = ctx.store.clone();
    shutdown.spawn(async move {
        loop {
            let last = log.done.load(Ordering::SeqCst);
            let batch = log.take();
            if let Some(first) = batch.first() {
                let n = first.data["sequence_number"].as_u64().unwrap_or(0);
                let key = format!("{prefix}{n:010}");
                if let Err(e) =
                    store::put_json(store.as_ref(), &key, &batch, PutMode::Overwrite).await
                {
                    log::warn!("cannot keep the events of {prefix}: {e}");
                }
            }
            if last {
                return;
            }
            tokio::time::sleep(FLUSH_EVERY).await;
        }
    });
}

/// Checks the query of a resumed stream: `starting_after`, when given. Any integer is a
/// position: every event comes after a negative one, none after one beyond the largest.
pub fn starting_after(query: &[(String, String)]) -> Result<Option<u64>, ApiError> {
    let Some(v) = super::super::pagination::query_value(query, "starting_after") else {
        return Ok(None);
    };
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_param(
            "starting_after",
            format!(
                "Invalid 'starting_after': expected an integer, but got '{}' instead.",
                crate::error::shown(v)
            ),
        ));
    }
    if v.starts_with('-') {
        return Ok(None);
    }
    Ok(Some(v.parse::<u64>().unwrap_or(u64::MAX)))
}

/// Streams the stored events of `record` after `after`, following the response live.
pub fn replay(
    shutdown: &Shutdown,
    ctx: &Ctx,
    record: &RunRecord,
    after: Option<u64>,
    buffer: usize,
) -> Result<Reply, ApiError> {
    let resumable = record
        .response
        .as_ref()
        .is_some_and(|f| f.background && f.stream);
    if !resumable {
        return Err(ApiError::invalid_param(
            "stream",
            "This response cannot be streamed: only a background response created with \
             'stream': true can be (retrieve it without 'stream' instead).",
        ));
    }
    let (tx, rx) = channel(buffer, format!("replay of {}", record.run.id));
    let mut out = ChannelSink(tx);
    let (ctx, id) = (ctx.clone(), record.run.id.clone());
    let include = record
        .response
        .as_ref()
        .map(|f| f.include.clone())
        .unwrap_or_default();
    shutdown.spawn(async move {
        let started = Instant::now();
        let prefix = keys::response_events(&ctx.tenant, &id);
        let mut next: u64 = 0;
        let mut read: Vec<String> = Vec::new();
        while started.elapsed() < LONGEST_REPLAY && out.0.is_open() {
            let Ok(mut names) = store::list_all(ctx.store.as_ref(), &prefix).await else {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            };
            names.sort_unstable();
            let new: Vec<String> = names.into_iter().filter(|n| !read.contains(n)).collect();
            for name in &new {
                let chunk = store::get_json::<Vec<StoredEvent>>(ctx.store.as_ref(), name).await;
                let Ok(Some((events, _))) = chunk else {
                    continue;
                };
                read.push(name.clone());
                for e in events {
                    let n = e.data["sequence_number"].as_u64().unwrap_or(0);
                    if n < next {
                        continue;
                    }
                    next = n + 1;
                    // The live stream's break-off notice: the response went on in the queue,
                    // and the replay follows it there.
                    if e.event == "error" {
                        continue;
                    }
                    let terminal = is_terminal_event(&e.event);
                    if after.is_none_or(|a| n > a) {
                        out.emit(static_name(&e.event), e.data);
                    }
                    if terminal {
                        return;
                    }
                }
            }
            if new.is_empty()
                && ended_without_its_stream(&ctx, &id, &include, next, after, &mut out).await
            {
                return;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    });
    Ok(Reply::Events {
        events: rx,
        headers: Vec::new(),
        done: false,
    })
}

/// The response ended some time ago and its stream's last event never came (its turn was
/// finished elsewhere): the stream ends with the stored response (no event for a cancel).
async fn ended_without_its_stream(
    ctx: &Ctx,
    id: &str,
    include: &[String],
    next: u64,
    after: Option<u64>,
    out: &mut ChannelSink,
) -> bool {
    let key = keys::response(&ctx.tenant, id);
    let Ok(Some((record, _))) = store::get_json::<RunRecord>(ctx.store.as_ref(), &key).await else {
        return true;
    };
    let settled = now_ms().saturating_sub(record.updated_ms) > SETTLED_MS;
    if !response::is_terminal(record.run.status) || !settled {
        return false;
    }
    let name = match record.run.status {
        RunStatus::Completed | RunStatus::RequiresAction => "response.completed",
        RunStatus::Incomplete => "response.incomplete",
        RunStatus::Failed | RunStatus::Expired => "response.failed",
        _ => return true,
    };
    if after.is_none_or(|a| next > a) {
        let object = response::object(&record, include).unwrap_or(Value::Null);
        out.emit(
            name,
            json!({"type": name, "sequence_number": next, "response": object}),
        );
    }
    true
}

fn is_terminal_event(name: &str) -> bool {
    matches!(
        name,
        "response.completed" | "response.failed" | "response.incomplete"
    )
}

/// The event names a Responses stream has (`EventSink` takes static names).
fn static_name(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.failed",
        "response.incomplete",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_text.annotation.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "error",
    ];
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("error")
}
