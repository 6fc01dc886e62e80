//! The Azure Functions custom-handler side: queue-trigger invocations in, the host's
//! `{"Outputs","Logs","ReturnValue"}` envelope out.
//!
//! The host delivers each message of the `work` queue as `POST /work` with
//! `{"Data": {"msg": ...}, "Metadata": {"DequeueCount": ..., ...}}`. The message may arrive as
//! a JSON object, as a JSON string holding JSON (the host serialises non-object values), or
//! still base64-encoded, so decoding is lenient. Each is settled by the delivery policy every
//! consumer shares (`queue::delivery`), the invocation's answer standing for the message: a
//! transient failure answers 500 so the host retries; on the last attempt the object is
//! ended cleanly and the invocation succeeds. An item of a tenant that already has its share
//! of items in progress on this instance, or one this process cannot finish before it stops,
//! is put back as a copy through the queue and the invocation succeeds (the host then deletes
//! the message), so other tenants' items are not held up behind it and another instance
//! takes what this one leaves.
//!
//! Only an invocation that never answers (the handler died while processing it, or ran past
//! `functionTimeout`) can exhaust `maxDequeueCount`; the host then moves the message to
//! `work-poison`, whose trigger (`POST /work-poison`) ends the item's object as failed, so
//! that nothing stays in progress forever.

use crate::queue::azure::decode;
use crate::queue::delivery::{abandon, Delivered, Policy, PutBack};
use crate::queue::{DynQueue, Queued, WorkHandler};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The function folder (and so the path) of the queue trigger.
pub const WORK_FUNCTION: &str = "work";
/// The function folder of the poison queue's trigger.
pub const POISON_FUNCTION: &str = "work-poison";

/// The queue triggers' consumer, when the Functions host delivers the work queue.
pub struct FunctionsHost {
    /// The delivery policy: its attempts are the host's `maxDequeueCount`, its slots the
    /// items in progress on this instance.
    pub policy: Arc<Policy>,
    /// Where an item put back goes (the queue the host delivers).
    pub queue: DynQueue,
}

impl FunctionsHost {
    /// Whether `path` (`/work`, `/work-poison`) is one of the queue triggers.
    pub fn is_trigger(path: &str) -> bool {
        matches!(
            path.strip_prefix('/'),
            Some(WORK_FUNCTION | POISON_FUNCTION)
        )
    }

    /// Answers one trigger invocation: the status and the envelope.
    pub async fn invoke(&self, path: &str, body: &[u8]) -> (u16, Value) {
        if path.strip_prefix('/') == Some(POISON_FUNCTION) {
            return handle_poison(self.policy.handler().as_ref(), body).await;
        }
        handle_work(self, body).await
    }
}

#[derive(Debug, PartialEq)]
pub struct Invocation {
    pub queued: Queued,
    pub dequeue_count: u32,
}

/// Unwraps JSON strings holding JSON (one or more levels) down to the work item.
fn item_from(value: &Value) -> Option<Queued> {
    let mut current = value.clone();
    for _ in 0..4 {
        match current {
            Value::Object(_) => return serde_json::from_value(current).ok(),
            Value::String(s) => {
                if let Ok(inner) = serde_json::from_str::<Value>(&s) {
                    current = inner;
                } else {
                    return decode(&s);
                }
            }
            _ => return None,
        }
    }
    None
}

fn count_from(value: Option<&Value>) -> u32 {
    let mut v = value.cloned().unwrap_or(Value::Null);
    for _ in 0..3 {
        match v {
            Value::Number(n) => return n.as_u64().unwrap_or(1).min(u64::from(u32::MAX)) as u32,
            Value::String(s) => match s.trim().trim_matches('"').parse::<u32>() {
                Ok(n) => return n,
                Err(_) => v = serde_json::from_str(&s).unwrap_or(Value::Null),
            },
            _ => return 1,
        }
    }
    1
}

/// Parses an invocation body; `None` when it holds no work item.
pub fn parse_invocation(body: &[u8]) -> Option<Invocation> {
    let envelope: Value = serde_json::from_slice(body).ok()?;
    let data = envelope.get("Data")?;
    // The binding is named `msg`; accept any single binding too.
    let message = data
        .get("msg")
        .or_else(|| data.as_object().and_then(|m| m.values().next()))?;
    let queued = item_from(message)?;
    let dequeue_count = count_from(envelope.get("Metadata").and_then(|m| m.get("DequeueCount")));
    Some(Invocation {
        queued,
        dequeue_count: dequeue_count.max(1),
    })
}

/// A `work` invocation: what to answer the host.
pub async fn handle_work(host: &FunctionsHost, body: &[u8]) -> (u16, Value) {
    let Some(invocation) = parse_invocation(body) else {
        // Retrying cannot make an unreadable message readable: drop it.
        log::warn!("work invocation without a readable work item; dropped");
        return (
            200,
            envelope(vec!["dropped an unreadable work item".into()]),
        );
    };
    let queued = &invocation.queued;
    let attempt = queued
        .prior_attempts
        .saturating_add(invocation.dequeue_count);
    let mut answer = Answer {
        queue: &host.queue,
        described: queued.item.describe(),
        status: 500,
        log: String::new(),
    };
    host.policy.settle(queued, attempt, &mut answer).await;
    (answer.status, envelope(vec![answer.log]))
}

/// The answer to one invocation, which stands for the message: the host deletes it after a
/// 2xx and delivers it again after its `visibilityTimeout` otherwise.
struct Answer<'a> {
    queue: &'a DynQueue,
    described: String,
    status: u16,
    log: String,
}

#[async_trait]
impl Delivered for Answer<'_> {
    async fn remove(&mut self) {
        self.status = 200;
        self.log = format!("{} done", self.described);
    }

    /// The host chooses when (`visibilityTimeout`).
    async fn retry_after(&mut self, _delay: Duration) {
        self.status = 500;
        self.log = format!("{}: will be retried", self.described);
    }

    async fn put_back(&mut self, back: PutBack<'_>) {
        (self.status, self.log) = match self.queue.put(back.copy, back.delay).await {
            Ok(()) => (200, format!("{}: {}", self.described, back.why.describe())),
            // Not put back: the host makes the message visible again after a while.
            Err(e) => (500, format!("{}: cannot put it back: {e}", self.described)),
        };
    }
}

/// A `work-poison` invocation: the host gave up on the item after `maxDequeueCount`
/// deliveries that never answered; end its object so that it does not stay in progress.
pub async fn handle_poison(handler: &dyn WorkHandler, body: &[u8]) -> (u16, Value) {
    let Some(invocation) = parse_invocation(body) else {
        log::warn!("work-poison invocation without a readable work item; dropped");
        return (
            200,
            envelope(vec!["dropped an unreadable work item".into()]),
        );
    };
    let item = &invocation.queued.item;
    log::warn!(
        "work item {} reached the poison queue; ending it",
        item.describe()
    );
    abandon(handler, item).await;
    (
        200,
        envelope(vec![format!(
            "{} ended from the poison queue",
            item.describe()
        )]),
    )
}

fn envelope(logs: Vec<String>) -> Value {
    json!({"Outputs": {}, "Logs": logs, "ReturnValue": null})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::azure::encode;
    use crate::queue::{RunTurn, WorkItem};

    fn item() -> Queued {
        Queued::from(WorkItem::Step(RunTurn {
            tenant: "t".into(),
            thread_id: "thread_x".into(),
            run_id: "run_x".into(),
            seq: 2,
        }))
    }

    #[test]
    fn every_encoding_the_host_may_use_is_read() {
        let json = item().to_json();
        let double = serde_json::to_string(&json).unwrap();
        let bodies = [
            json!({"Data": {"msg": serde_json::from_str::<Value>(&json).unwrap()}, "Metadata": {"DequeueCount": 3}}),
            json!({"Data": {"msg": json}, "Metadata": {"DequeueCount": "3"}}),
            json!({"Data": {"msg": double}, "Metadata": {"DequeueCount": "\"3\""}}),
            json!({"Data": {"msg": encode(&item())}, "Metadata": {"DequeueCount": 3}}),
        ];
        for body in bodies {
            let parsed = parse_invocation(body.to_string().as_bytes()).unwrap();
            assert_eq!(
                parsed,
                Invocation {
                    queued: item(),
                    dequeue_count: 3
                },
                "{body}"
            );
        }
        assert!(parse_invocation(b"{\"Data\":{\"msg\":\"nonsense\"}}").is_none());
        assert!(parse_invocation(b"not json").is_none());
    }
}
