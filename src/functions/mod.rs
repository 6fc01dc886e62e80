//! The Azure Functions custom-handler side: queue-trigger invocations in, the host's
//! `{"Outputs","Logs","ReturnValue"}` envelope out.
//!
//! The host delivers each message of the `work` queue as `POST /work` with
//! `{"Data": {"msg": ...}, "Metadata": {"DequeueCount": ..., ...}}`. The message may arrive as
//! a JSON object, as a JSON string holding JSON (the host serialises non-object values), or
//! still base64-encoded, so decoding is lenient. A transient failure answers 500 so the host
//! retries; on the last attempt the run is ended cleanly and the invocation succeeds, so
//! nothing is left for the poison queue to hide.

use crate::queue::{azure::decode, Outcome, WorkHandler, WorkItem};
use serde_json::{json, Value};

/// The function folder (and so the path) of the queue trigger.
pub const WORK_FUNCTION: &str = "work";

#[derive(Debug, PartialEq)]
pub struct Invocation {
    pub item: WorkItem,
    pub dequeue_count: u32,
}

/// Unwraps JSON strings holding JSON (one or more levels) down to the work item.
fn item_from(value: &Value) -> Option<WorkItem> {
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
    let item = item_from(message)?;
    let dequeue_count = count_from(envelope.get("Metadata").and_then(|m| m.get("DequeueCount")));
    Some(Invocation {
        item,
        dequeue_count: dequeue_count.max(1),
    })
}

/// What to answer the host: the status and the envelope.
pub async fn handle_work(
    handler: &dyn WorkHandler,
    body: &[u8],
    max_attempts: u32,
) -> (u16, Value) {
    let Some(invocation) = parse_invocation(body) else {
        // Retrying cannot make an unreadable message readable: drop it.
        log::warn!("work invocation without a readable work item; dropped");
        return (
            200,
            envelope(vec!["dropped an unreadable work item".into()]),
        );
    };
    let item = &invocation.item;
    let outcome = handler.process(item, invocation.dequeue_count).await;
    match outcome {
        Outcome::Done => (
            200,
            envelope(vec![format!("run {}: turn {} done", item.run_id, item.seq)]),
        ),
        Outcome::Retry(reason) if invocation.dequeue_count >= max_attempts => {
            handler.give_up(item, &reason).await;
            (
                200,
                envelope(vec![format!(
                    "run {} ended after {} attempts: {reason}",
                    item.run_id, invocation.dequeue_count
                )]),
            )
        }
        Outcome::Retry(reason) => {
            log::info!(
                "work item for {} failed, the host will retry: {reason}",
                item.run_id
            );
            (
                500,
                envelope(vec![format!("run {}: will be retried", item.run_id)]),
            )
        }
    }
}

fn envelope(logs: Vec<String>) -> Value {
    json!({"Outputs": {}, "Logs": logs, "ReturnValue": null})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::azure::encode;
    use crate::queue::WorkKind;

    fn item() -> WorkItem {
        WorkItem {
            kind: WorkKind::Step,
            tenant: "t".into(),
            thread_id: "thread_x".into(),
            run_id: "run_x".into(),
            seq: 2,
            ..WorkItem::default()
        }
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
                    item: item(),
                    dequeue_count: 3
                },
                "{body}"
            );
        }
        assert!(parse_invocation(b"{\"Data\":{\"msg\":\"nonsense\"}}").is_none());
        assert!(parse_invocation(b"not json").is_none());
    }
}
